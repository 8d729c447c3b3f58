/**
 * Scenario 4, memory: 100,000- and 1,000,000-line experiment files through the built-in `test`
 * API (no server; its default 200 ms simulated latency) at no rate limit. A run that streams
 * its file holds about the same memory for both; one that loads the file, or lets work pile up
 * in memory, grows with it.
 */
import * as path from "node:path"
import * as Figures from "../Figures.js"
import * as Child from "../Child.js"
import * as Prompto from "../Prompto.js"
import { type Context, figure, type Figure, type Scenario } from "../Scenario.js"

const unlimitedQpm = 1_000_000_000
const rssTargetMb = 250

/** What one file size gave. */
interface SizeResult {
  readonly lines: number
  readonly maxRssMb: number
  readonly processingMs: number
  readonly processWallMs: number
  readonly cpuMs: number
  readonly completedLines: number
  readonly error?: string
}

const label = (lines: number): string => (lines >= 1_000_000 ? `${lines / 1_000_000}M` : `${lines / 1_000}k`)

const runSize = (context: Context, lines: number, timeoutMs: number): Promise<SizeResult> =>
  Prompto.withTempDir("memory", context.keep, async (dir) => {
    const file = `memory-${label(lines)}.jsonl`
    await Prompto.writeLines(
      path.join(dir, file),
      lines,
      (i) => `{"id":"p-${i}","api":"test","model_name":"m","prompt":"question ${i}"}`
    )
    context.progress(`4 memory: ${lines} lines through the test API (timeout ${timeoutMs / 1000} s)`)
    try {
      const run = await Prompto.run({
        dir,
        file,
        flags: ["-mq", String(unlimitedQpm)],
        env: Child.baseEnv(),
        timeoutMs
      })
      return {
        lines,
        maxRssMb: run.child.maxRssMb,
        processingMs: run.processingMs,
        processWallMs: run.child.wallMs,
        cpuMs: run.child.cpuMs,
        completedLines: run.completedFile === undefined ? 0 : await Prompto.countLines(run.completedFile)
      }
    } catch (error) {
      if (!(error instanceof Prompto.RunError)) throw error
      // a run that timed out still reports its peak RSS so far (a lower bound), not its speed
      context.progress(`4 memory: ${error.message}`)
      const { completed } = Prompto.outputs(dir, file)
      return {
        lines,
        maxRssMb: error.child.maxRssMb,
        processingMs: Number.NaN,
        processWallMs: error.child.wallMs,
        cpuMs: error.child.cpuMs,
        completedLines: completed === undefined ? 0 : await Prompto.countLines(completed),
        error: error.message
      }
    }
  })

const sizeFigures = (result: SizeResult, rssTarget: Figures.Target): ReadonlyArray<Figure> => [
  figure(`peak RSS at ${label(result.lines)} lines`, result.maxRssMb, { digits: 0, unit: "MB", target: rssTarget }),
  figure(`records/s at ${label(result.lines)} (run wall, log)`, (result.lines * 1000) / result.processingMs, { digits: 0 }),
  figure(`process wall at ${label(result.lines)}`, result.processWallMs / 1000, { digits: 1, unit: "s" }),
  figure(`completed lines at ${label(result.lines)}`, result.completedLines, { digits: 0, target: Figures.atLeast(result.lines) })
]

/** Scenario 4. */
export const scenario: Scenario = {
  id: 4,
  title: () => "4 memory",
  run: async (context) => {
    const [small, large] = context.quick ? [10_000, 50_000] : [100_000, 1_000_000]
    const smallResult = await runSize(context, small, context.quick ? 120_000 : 150_000)
    const largeResult = await runSize(context, large, context.quick ? 180_000 : 300_000)
    return {
      figures: [
        ...sizeFigures(smallResult, Figures.info),
        ...sizeFigures(largeResult, context.quick ? Figures.info : Figures.atMost(rssTargetMb)),
        figure(`RSS(${label(large)}) / RSS(${label(small)})`, largeResult.maxRssMb / smallResult.maxRssMb, {
          digits: 2,
          target: Figures.atMost(1.2)
        })
      ],
      details: { sizes: [smallResult, largeResult], rssTargetMb }
    }
  }
}
