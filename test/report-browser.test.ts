/**
 * `prompto report` in a real browser: runs made through the CLI on the built-in `test` API (the
 * evaluation example with two models, two scorers and two judges; then a comparison of two runs
 * with errors, retries and a strategy), reported, and opened from `file://` in Debian's Chromium.
 * Each page must draw every chart, log no console error, request nothing off the file, and
 * filter its table as typed. Screenshots go to test/artifacts/ (not tracked).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as BrowserHarness from "./e2e/browser.js"
import { childEnv, tempDirs } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, "..")
const prompto = path.join(repoRoot, "packages", "cli", "bin", "prompto.js")
const example = path.join(repoRoot, "examples", "evaluation")
const artifacts = path.join(here, "artifacts")
const tempDir = tempDirs()

const cli = async (args: ReadonlyArray<string>, cwd: string) => {
  const result = await spawnCli(prompto, args, { cwd, env: childEnv, timeoutMs: 90_000 })
  if (result.status !== 0) throw new Error(`prompto ${args.join(" ")} exited ${result.status}:\n${result.stdout}\n${result.stderr}`)
  return result
}

/** The evaluation example's files in a fresh folder. */
const exampleDir = (): string => {
  const dir = tempDir(path.join(example, "capitals.jsonl"))
  fs.cpSync(path.join(example, "judge"), path.join(dir, "judge"), { recursive: true })
  return dir
}

/** What the page drew: per chart, its bars or rects and its rules. */
const charts = (page: Page) =>
  page.evaluate(`[...document.querySelectorAll(".chart")].map((chart) => ({
    name: chart.dataset.chart,
    svg: chart.querySelectorAll("svg").length,
    marks: chart.querySelectorAll('g[aria-label="bar"] rect, g[aria-label="rect"] rect').length,
    rules: chart.querySelectorAll('g[aria-label="rule"] line').length
  }))`) as Promise<ReadonlyArray<{ name: string; svg: number; marks: number; rules: number }>>

const tableRows = (page: Page) => page.locator("#prompts-table tbody tr")

const search = async (page: Page, text: string) => {
  await page.fill("#search", text)
  // the table redraws on each input event, synchronously
  await page.waitForFunction(`document.querySelector("#search").value === ${JSON.stringify(text)}`)
}

const screenshot = (page: Page, name: string, selector?: string) =>
  selector === undefined
    ? page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true })
    : page.locator(selector).screenshot({ path: path.join(artifacts, `${name}.png`) })

let browser: Browser

beforeAll(async () => {
  fs.mkdirSync(artifacts, { recursive: true })
  browser = await BrowserHarness.launch()
}, 90_000)

afterAll(async () => {
  await browser?.close()
})

describe("prompto report in Chromium", () => {
  it("the evaluation example (two models, two scorers, two judges): charts with intervals, a searchable table", async () => {
    const dir = exampleDir()
    await cli([
      "run", "-f", "capitals.jsonl", "-d", "data", "-mq", "6000", "-s", "match,includes",
      "-jf", "judge", "-j", "strict,lenient", "-jt", "template.txt", "-jp", "yes_no"
    ], dir)
    const made = await cli(["report", "data/output/capitals", "-o", "report.html"], dir)
    expect(made.stdout).toMatch(/report: .*report\.html \(\d+ kB\): 1 run\(s\), 6 records, 6 in the table/)

    const visit = await BrowserHarness.open(browser, path.join(dir, "report.html"))
    const { page } = visit
    try {
      const drawn = await charts(page)
      // four scores (match, includes, strict/template, lenient/template) per model, latency, attempts
      expect(drawn.map((chart) => chart.name).sort()).toEqual([
        "attempts", "latency-histogram",
        "score-model:includes", "score-model:lenient/template", "score-model:match", "score-model:strict/template"
      ])
      for (const chart of drawn) {
        expect(chart.svg, chart.name).toBeGreaterThan(0)
        expect(chart.marks, chart.name).toBeGreaterThan(0)
      }
      // every per-model score chart has an interval (a rule) for each of the two models
      for (const chart of drawn.filter((chart) => chart.name.startsWith("score-model:"))) {
        expect(chart.marks, chart.name).toBe(2)
        expect(chart.rules, chart.name).toBeGreaterThanOrEqual(3)
      }
      expect(await page.locator("#overview-table tbody td").allTextContents()).toEqual(
        expect.arrayContaining(["capitals", "6", "2", "0"])
      )
      await screenshot(page, "report-evaluation")
      await screenshot(page, "report-evaluation-scores", "#scores")

      // the table: every prompt, both models' columns, then filtered as typed
      expect(await tableRows(page).count()).toBe(6)
      expect(await page.locator("#prompts-table thead th").allTextContents()).toEqual(["prompt", "test/large", "test/small"])
      await search(page, "ottawa")
      expect(await tableRows(page).count()).toBe(1)
      expect(await tableRows(page).first().textContent()).toContain("The capital of Canada is Ottawa.")
      expect(await page.locator("#table-status").textContent()).toBe("1 of 6 prompts match.")
      await screenshot(page, "report-evaluation-search", "#prompts")
      await search(page, "Capital of")
      expect(await tableRows(page).count()).toBe(6)
      await search(page, "no such text")
      expect(await tableRows(page).count()).toBe(0)
      await search(page, "")
      await page.selectOption("#filter-model", { label: "test/small" })
      expect(await tableRows(page).count()).toBe(3)
      await page.selectOption("#filter-model", { label: "any model" })
      await page.selectOption("#filter-score", { label: "includes: false / < 0.5" })
      const failed = await tableRows(page).locator(".id").allTextContents()
      expect(failed.sort()).toEqual(["id \"australia\"", "id \"spain\""])

      expect(visit.errors).toEqual([])
      expect(visit.requests).toEqual([])
    } finally {
      await page.close()
    }
  }, 180_000)

  it("two runs compared: paired differences, errors by kind and queue, retries, side-by-side answers, strategy steps", async () => {
    const dir = exampleDir()
    // a second run of the same prompts: right answers, except one that fails, one retried, one by a strategy
    const lines = fs.readFileSync(path.join(dir, "capitals.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line))
    const candidate = lines.map((record) => {
      const parameters = { ...record.parameters, reply: record.expected_response }
      if (record.id === "spain") return { ...record, parameters: { ...parameters, raise_error: "True" } }
      if (record.id === "japan") return { ...record, parameters: { ...parameters, fail_attempts: 1 } }
      if (record.id === "canada") return { ...record, parameters, strategy: "two_turn" }
      return { ...record, parameters }
    })
    fs.writeFileSync(path.join(dir, "candidate.jsonl"), candidate.map((record) => JSON.stringify(record)).join("\n") + "\n")
    await cli(["run", "-f", "capitals.jsonl", "-d", "data", "-mq", "6000", "-s", "match,includes"], dir)
    await cli(["run", "-f", "candidate.jsonl", "-d", "data", "-mq", "6000", "-ma", "3", "-s", "match,includes"], dir)
    const made = await cli(["report", "data/output/capitals", "data/output/candidate", "-o", "compare.html"], dir)
    expect(made.stdout).toMatch(/2 run\(s\), 12 records, 12 in the table/)

    const visit = await BrowserHarness.open(browser, path.join(dir, "compare.html"))
    const { page } = visit
    try {
      const drawn = await charts(page)
      expect(drawn.map((chart) => chart.name)).toEqual(expect.arrayContaining([
        "score-model:match", "score-model:includes", "difference", "errors-kind", "errors-queue", "latency-histogram", "attempts"
      ]))
      for (const chart of drawn) expect(chart.marks, chart.name).toBeGreaterThan(0)
      // match: the candidate is right on 4 of the 5 prompts both runs answered, the baseline on 2 of them
      expect(drawn.find((chart) => chart.name === "difference")!.marks).toBe(2)
      expect(await page.locator("#scores .scorer h3").allTextContents()).toContain("Difference: candidate − capitals, paired by prompt")

      // side by side: each prompt has an answer from each run
      expect(await tableRows(page).count()).toBe(6)
      expect(await page.locator("#prompts-table thead th").count()).toBe(5)
      await search(page, "spain")
      expect(await tableRows(page).count()).toBe(1)
      const spain = tableRows(page).first()
      expect(await spain.locator(".badge.error").allTextContents()).toEqual(["bad_request"])
      expect(await spain.locator(".answer").count()).toBe(2)
      await page.selectOption("#filter-error", { label: "with an error" })
      expect(await tableRows(page).count()).toBe(1)
      await page.selectOption("#filter-error", { label: "errors and answers" })
      await search(page, "canada")
      const steps = tableRows(page).first().locator("details.steps")
      expect(await steps.count()).toBe(1)
      await steps.locator("summary").click()
      expect(await steps.locator("li").count()).toBe(2)
      expect(await steps.locator("li").first().isVisible()).toBe(true)
      await screenshot(page, "report-comparison")

      expect(visit.errors).toEqual([])
      expect(visit.requests).toEqual([])
    } finally {
      await page.close()
    }
  }, 180_000)

  it("a path that is not a run is one clear error, and nothing is written", async () => {
    const dir = tempDir()
    fs.mkdirSync(path.join(dir, "empty"))
    for (const [given, message] of [
      ["missing", "error: missing: no such file or folder"],
      ["empty", "error: empty: no completed file (<T>-completed-<name>.jsonl) in this folder"]
    ] as const) {
      const result = await spawnCli(prompto, ["report", given, "-o", "r.html"], { cwd: dir, env: childEnv, timeoutMs: 60_000 })
      expect(result.status).toBe(1)
      expect(result.stderr).toContain(message)
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/)
    }
    expect(fs.existsSync(path.join(dir, "r.html"))).toBe(false)
  }, 60_000)
})
