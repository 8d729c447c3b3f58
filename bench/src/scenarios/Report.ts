/**
 * Scenario 7, the report at scale: a synthetic finished run of 1,000,000 records (two models,
 * two scorers, 1 % errors; 100,000 with --quick), made into a report by `prompto report` as a
 * child process, then opened from `file://` in Debian's Chromium. Figures: the file's size, the
 * time to make it (spawn to exit), its peak RSS, and the time to open it (navigation start until
 * the page has drawn every chart and the table's first page).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as SyntheticRun from "../../../packages/core/src/testing/SyntheticRun.js"
import * as Browser from "../../../test/e2e/browser.js"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import * as Prompto from "../Prompto.js"
import { type Context, figure, type Scenario } from "../Scenario.js"

const run = (context: Context) =>
  Prompto.withTempDir("report", context.keep, async (dir) => {
    const records = context.quick ? 100_000 : 1_000_000
    context.progress(`7 report: writing a synthetic run of ${records} records`)
    const written = SyntheticRun.write({ output: path.join(dir, "data", "output"), name: "synthetic", records })
    context.progress(`7 report: ${(written.bytes / 1e6).toFixed(0)} MB written; prompto report`)
    const child = await Prompto.runArgs(["report", written.folder, "-o", "report.html"], dir, Child.baseEnv(), 180_000)
    if (child.status !== 0) throw new Error(Child.describeFailure("prompto report", child))
    const html = path.join(dir, "report.html")
    const bytes = fs.statSync(html).size
    context.progress(`7 report: ${(bytes / 1e6).toFixed(1)} MB in ${(child.wallMs / 1000).toFixed(1)} s; opening it in Chromium`)
    const browser = await Browser.launch()
    try {
      // the first open warms the browser's caches; the figure is the median of three after it
      const opens: Array<number> = []
      for (let i = 0; i < 4; i++) {
        const visit = await Browser.open(browser, html, { timeoutMs: 60_000 })
        if (visit.errors.length > 0 || visit.requests.length > 0) {
          throw new Error(`the report logged errors or made requests: ${[...visit.errors, ...visit.requests].join("; ")}`)
        }
        if (i > 0) opens.push(visit.openMs)
        await visit.page.close()
      }
      return { records, inputMb: written.bytes / 1e6, bytes, child, openMs: Figures.median(opens), opens }
    } finally {
      await browser.close()
    }
  })

/** Scenario 7. */
export const scenario: Scenario = {
  id: 7,
  title: (context) => `7 report of ${context.quick ? "100k" : "1M"} records`,
  run: async (context) => {
    const result = await run(context)
    return {
      figures: [
        figure("report size", result.bytes / 1e6, { unit: "MB", digits: 1, target: Figures.below(20) }),
        figure("time to make (process wall)", result.child.wallMs / 1000, { unit: "s", digits: 1, target: Figures.below(60) }),
        figure("peak RSS while making", result.child.maxRssMb, { unit: "MB", digits: 0 }),
        figure("time to open in Chromium (median of 3)", result.openMs / 1000, { unit: "s", digits: 2, target: Figures.below(3) })
      ],
      details: {
        records: result.records,
        inputMb: result.inputMb,
        bytes: result.bytes,
        makeWallMs: result.child.wallMs,
        makeCpuMs: result.child.cpuMs,
        maxRssMb: result.child.maxRssMb,
        opensMs: result.opens
      }
    }
  }
}
