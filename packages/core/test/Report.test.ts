import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { inlineJson, inlineScript } from "../src/internal/reportHtml.js"
import { hash53, TableSample } from "../src/internal/reportSample.js"
import * as Stats from "../src/internal/reportStats.js"
import * as Report from "../src/Report.js"
import * as SyntheticRun from "../src/testing/SyntheticRun.js"

const made: Array<string> = []
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-report-"))
  made.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

const readJsonl = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as Record<string, any>)

const report = (options: Report.Options) => Report.make(options).pipe(Effect.provide(NodeContext.layer))

describe("Report", () => {
  it.effect("aggregates a run in one pass: means with intervals per model and group, errors by kind, latency quantiles", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const run = SyntheticRun.write({ output: dir, name: "grid", records: 20_000, errorRate: 0.02 })
      const data = yield* report({ runs: [run.folder], maxRows: 500 })
      const records = readJsonl(run.completed)

      // the figures a brute-force pass over the file gives
      const ok = records.filter((record) => record.error === undefined)
      const model = (name: string) => ok.filter((record) => `${record.api}/${record.model_name}` === name)
      for (const info of data.models) {
        const rows = model(info.label)
        const mean = rows.filter((record) => record.includes).length / rows.length
        const row = data.scores.find((score) => score.scorer === "includes" && score.by === "model" && score.model === data.models.indexOf(info))!
        expect(row.n).toBe(rows.length)
        expect(row.mean).toBeCloseTo(mean, 12)
        expect(row.method).toBe("wilson")
        expect(row.low!).toBeLessThan(mean)
        expect(row.high!).toBeGreaterThan(mean)
        // the exact p95 of the model's latencies, against the sketch's (within 1 %)
        const latencies = rows.map((record) => record.latency_ms as number).sort((a, b) => a - b)
        const exact = latencies[Math.floor(0.95 * (latencies.length - 1))]!
        const request = data.requests.find((r) => r.model === data.models.indexOf(info))!
        expect(Math.abs(request.latency!.p95! - exact) / exact).toBeLessThanOrEqual(0.0101)
      }
      expect(data.scores.filter((score) => score.by === "group" && score.scorer === "match").map((score) => score.group).sort())
        .toEqual(["g0", "g1", "g2", "g3"])
      const errorKinds = new Map<string, number>()
      for (const record of records) if (record.error) errorKinds.set(record.error.kind, (errorKinds.get(record.error.kind) ?? 0) + 1)
      expect(new Map(data.errors.byKind.map((row) => [row.kind as string, row.count]))).toEqual(errorKinds)
      expect(data.runs[0]).toMatchObject({ records: 20_000, errors: run.errors, ok: 20_000 - run.errors, wallSource: "log", scorers: ["match", "includes"] })
    }))

  it.effect("the table is a fair sample of prompts within --max-rows, each prompt with every model's answer, plus every error row", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const run = SyntheticRun.write({ output: dir, name: "grid", records: 20_000, errorRate: 0.02 })
      const data = yield* report({ runs: [run.folder], maxRows: 500 })
      const { sample } = data
      expect(sample.sampledRows).toBeLessThanOrEqual(500)
      expect(sample.sampledRows).toBeGreaterThan(490)
      expect(sample.errorRowsTotal).toBe(run.errors)
      expect(sample.errorRowsShown).toBe(run.errors)
      expect(sample.shownRows).toBe(sample.sampledRows + sample.groups.filter((group) => group.errorsOnly).reduce((n, group) => n + group.rows.length, 0))
      // a sampled prompt holds both models' answers (the pair is never split)
      for (const group of sample.groups.filter((group) => !group.errorsOnly)) {
        expect(group.rows.map((row) => row.model).sort()).toEqual([0, 1])
      }
      // the sampled prompts are the ones with the smallest hashes of their keys: spread over the whole file
      const sampledKeys = sample.groups.filter((group) => !group.errorsOnly).map((group) => group.key)
      const hashes = [...new Set(readJsonl(run.completed).map((record) => `t${JSON.stringify([record.template, record.vars])}`))]
        .map((key) => ({ key, hash: hash53(key) }))
        .sort((a, b) => a.hash - b.hash)
      expect(sampledKeys).toEqual(hashes.slice(0, sampledKeys.length).map((entry) => entry.key))
      const positions = sample.groups.filter((group) => !group.errorsOnly).map((group) => group.rows[0]!.id as string)
        .map((id) => Number(/-v(\d+)-/.exec(id)![1]))
      expect(Math.min(...positions)).toBeLessThan(1_000)
      expect(Math.max(...positions)).toBeGreaterThan(9_000)
      // the same files give the same sample
      const again = yield* report({ runs: [run.folder], maxRows: 500 })
      expect(again.sample.groups.map((group) => group.key)).toEqual(sample.groups.map((group) => group.key))
    }))

  it.effect("two runs: the paired difference by prompt, with a t interval", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const base = SyntheticRun.write({ output: dir, name: "base", records: 4_000, seed: 1 })
      const better = SyntheticRun.write({ output: dir, name: "better", records: 4_000, seed: 2, skill: 0.2 })
      const data = yield* report({ runs: [base.folder, better.folder] })
      // brute force: the scores of the records with the same id in both runs
      const first = new Map(readJsonl(base.completed).filter((r) => !r.error).map((r) => [r.id, r.includes ? 1 : 0]))
      const differences = readJsonl(better.completed).filter((r) => !r.error && first.has(r.id)).map((r) => (r.includes ? 1 : 0) - first.get(r.id)!)
      const mean = differences.reduce((a, b) => a + b, 0) / differences.length
      const sd = Math.sqrt(differences.reduce((a, b) => a + (b - mean) ** 2, 0) / (differences.length - 1))
      const includes = data.differences.find((d) => d.scorer === "includes")!
      expect(includes).toMatchObject({ n: differences.length, method: "t" })
      expect(includes.mean!).toBeCloseTo(mean, 12)
      expect(includes.mean!).toBeGreaterThan(0.1)
      expect(includes.high! - includes.mean!).toBeCloseTo(Stats.t975(differences.length - 1) * sd / Math.sqrt(differences.length), 9)
      expect(differences.length).toBeGreaterThan(0)
      expect(data.runs.map((run) => run.label)).toEqual(["base", "better"])
    }))

  it.effect("reads prompto's Python outputs: scores from the records' own keys, errors from prompto's wording", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const folder = path.join(dir, "evaluation-example")
      fs.mkdirSync(folder)
      const lines = [
        { id: 0, api: "anthropic", model_name: "claude-3-haiku-20240307", prompt: "How does technology impact us?", timestamp_sent: "28-08-2024-18-01-13", response: "In many ways.", word_count: 3, more_than_10_words: false },
        { id: 1, api: "anthropic", model_name: "claude-3-haiku-20240307", prompt: "Tell me a joke", timestamp_sent: "28-08-2024-18-01-15", response: "No. Not today, I think, maybe later on, if you ask me nicely.", word_count: 13, more_than_10_words: true },
        { id: 2, api: "openai", model_name: "gpt-4o", prompt: "Hi", timestamp_sent: "28-08-2024-18-01-16", response: "An unexpected error occurred when querying the API: (RateLimitError - 429) after maximum 5 attempts" },
        { id: 3, api: "openai", model_name: "gpt-4o", prompt: "Hi", timestamp_sent: "28-08-2024-18-01-16", response: "ValueError - bad parameters" }
      ]
      fs.writeFileSync(path.join(folder, "28-08-2024-18-01-11-completed-evaluation-example.jsonl"), lines.map((line) => JSON.stringify(line)).join("\n") + "\nnot json\n")
      fs.writeFileSync(path.join(folder, "28-08-2024-18-01-11-log-evaluation-example.txt"), "28-08-2024, 18:01: Completed experiment evaluation-example.jsonl! Experiment processing time: 4.971 seconds, Average time per query: 2.486 seconds\n")
      const data = yield* report({ runs: [folder] })
      expect(data.runs[0]).toMatchObject({ records: 4, ok: 2, errors: 2, unreadable: 1, wallSeconds: 4.971, scorers: ["word_count", "more_than_10_words"] })
      expect(data.runs[0]!.problems[0]).toMatch(/:5: invalid JSON/)
      expect(data.errors.byKind.map((row) => row.kind).sort()).toEqual(["permanent", "rate_limited"])
      const words = data.scores.find((score) => score.scorer === "word_count" && score.by === "all")!
      expect(words).toMatchObject({ n: 2, mean: 8, method: "t" })
      expect(data.requests.every((request) => request.latency === null)).toBe(true)
    }))

  it.effect("the table shows what the API returned besides the text: tool calls, reasoning and reasoning tokens", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const folder = path.join(dir, "tools")
      fs.mkdirSync(folder)
      const record = {
        id: "t1",
        api: "openai",
        model_name: "o4-mini",
        prompt: "Weather in Oslo?",
        response: "",
        tool_calls: [{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" }, raw: {} }],
        reasoning: "the user wants the weather: call the tool",
        usage: { prompt_tokens: 20, completion_tokens: 50, total_tokens: 70, reasoning_tokens: 40 },
        json_schema: true
      }
      fs.writeFileSync(path.join(folder, "01-01-2025-00-00-00-completed-tools.jsonl"), JSON.stringify(record) + "\n")
      const data = yield* report({ runs: [folder] })
      const row = data.sample.groups[0]!.rows[0]!
      expect(row).toMatchObject({
        tool_calls: ["get_weather({\"city\":\"Oslo\"})"],
        reasoning: "the user wants the weather: call the tool",
        reasoning_tokens: 40,
        scores: { json_schema: true }
      })
    }))

  it.effect("a folder without a run is an error naming it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const result = yield* Effect.either(report({ runs: [dir] }))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "ReportError", path: dir })
    }))

  it.effect("the page embeds text that looks like markup safely, and reads it back unchanged", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const folder = path.join(dir, "tricky")
      fs.mkdirSync(folder)
      const response = "</script><script>alert(1)</script><!-- \u2028 done"
      fs.writeFileSync(
        path.join(folder, "01-01-2025-00-00-00-completed-tricky.jsonl"),
        JSON.stringify({ id: "x", api: "test", model_name: "m", prompt: "<b>hi</b>", response }) + "\n"
      )
      const data = yield* report({ runs: [folder] })
      const html = yield* Report.render(data).pipe(Effect.provide(NodeContext.layer))
      const json = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!
      expect(json).not.toMatch(/</)
      expect(JSON.parse(json).sample.groups[0].rows[0].response).toBe(response)
      expect(html).not.toMatch(/alert\(1\)<\/script>/)
      expect(inlineScript("x = '</script>'; y = '<!--'")).toBe("x = '<\\/script>'; y = '<\\x21--'")
      expect(JSON.parse(inlineJson({ a: "</script>" }))).toEqual({ a: "</script>" })
      expect(html).toMatch(/Content-Security-Policy" content="default-src 'none'/)
    }))
})

describe("report statistics", () => {
  it("t quantiles: the table, then the expansion", () => {
    expect(Stats.t975(1)).toBe(12.706)
    expect(Stats.t975(30)).toBe(2.042)
    expect(Stats.t975(40)).toBeCloseTo(2.021, 3)
    expect(Stats.t975(120)).toBeCloseTo(1.98, 3)
    expect(Stats.t975(1e6)).toBeCloseTo(1.96, 3)
  })

  it("the Wilson interval stays within [0, 1] at 0 % and 100 %", () => {
    const cell = Stats.meanCell()
    for (let i = 0; i < 10; i++) Stats.addScore(cell, true)
    const interval = Stats.interval(cell)
    expect(interval).toMatchObject({ n: 10, mean: 1, method: "wilson" })
    expect(interval.high!).toBeCloseTo(1, 12)
    expect(interval.low!).toBeCloseTo(0.7225, 3)
  })

  it("the sample keeps error rows of prompts it drops", () => {
    const sample = new TableSample(2, 10)
    const row = (id: number, error?: boolean) => ({ run: 0, model: 0, id, scores: {}, ...(error ? { error: { kind: "timeout", message: "x" } } : {}) })
    for (let i = 0; i < 50; i++) sample.offer(`k${i}`, i % 10 === 0, () => row(i, i % 10 === 0))
    const result = sample.finish()
    expect(result.sampledRows).toBe(2)
    expect(result.errorRowsTotal).toBe(5)
    expect(result.errorRowsShown).toBe(5)
  })
})
