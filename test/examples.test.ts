import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { MockProvider } from "@prompto/core/testing"
import * as Providers from "@prompto/providers"
import * as Evaluate from "../examples/evaluate.js"
import * as MockPipeline from "../examples/mock-pipeline.js"
import * as RunFromCode from "../examples/run-from-code.js"
import * as Strategies from "../examples/strategies.js"

describe("examples", () => {
  it.live("mock-pipeline.ts scores the mocked responses", () =>
    Effect.gen(function*() {
      const scored = yield* MockPipeline.program
      expect(scored.map((record) => [record.id, record.match]).sort()).toEqual([["q1", true], ["q2", true], ["q3", false]])
      expect(MockPipeline.mockOpenAi.calls.map((call) => call.id).sort()).toEqual(["q1", "q2", "q3"])
    }))

  it.live("run-from-code.ts writes prompto's files with one completed record per prompt", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-example-"))
      const result = yield* RunFromCode.program(dir)
      const completed = fs.readFileSync(result.files.completed, "utf8").trim().split("\n").map((line) => JSON.parse(line))
      expect(completed.map((record) => record.id).sort()).toEqual([0, 1, 2, 3])
      expect(completed.every((record) => String(record.response).startsWith("This is a test response to:"))).toBe(true)
      expect([...result.stats.queues.keys()].sort()).toEqual(["large-model", "small-model"])
      expect(fs.readdirSync(path.join(dir, "input"))).toEqual([])
    }).pipe(Effect.provide(NodeContext.layer)))

  const readJsonl = (file: string) =>
    fs.readFileSync(file, "utf8").trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)

  it.live("evaluate.ts scores, judges with two judges as responses arrive, and writes the summary (test API)", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-example-"))
      const result = yield* Evaluate.program(dir).pipe(Effect.provide(Providers.layer))
      const completed = readJsonl(result.files.completed)
      expect(completed.map((record) => [record.id, record.includes, record.city_only]).sort()).toEqual([
        ["australia", false, true],
        ["canada", true, false],
        ["france", true, true],
        ["italy", true, true],
        ["japan", true, true],
        ["spain", false, true]
      ])
      expect(result.linked.map((run) => run.name)).toEqual(["judge-capitals"])
      const judged = readJsonl(result.linked[0]!.completed)
      expect(judged.length).toBe(12)
      expect(judged.filter((record) => String(record.id).startsWith("judge-lenient-template-")).every((record) => record.yes_no === true)).toBe(true)
      expect(result.summaryFile).toBeDefined()
      const summary = JSON.parse(fs.readFileSync(result.summaryFile!, "utf8"))
      expect(new Set(summary.scorers)).toEqual(new Set(["includes", "city_only", "lenient/template", "strict/template"]))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("evaluate.ts runs unchanged on a mocked provider layer", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-example-"))
      // one mock stands in for the `test` API: the model always answers right, the judges say no
      const mock = MockProvider.make("test", {
        respond: (record) => String(record.id).startsWith("judge-") ? "No." : String(record.expected_response)
      })
      const result = yield* Evaluate.program(dir).pipe(Effect.provide(MockProvider.layer(mock)))
      const all = result.metrics.rows.filter((row) => row.by === "all")
      expect(all.map((row) => [row.scorer, row.mean])).toEqual([
        ["includes", 1],
        ["city_only", 1],
        ...all.slice(2).map((row) => [row.scorer, 0])
      ])
      expect(all.length).toBe(4)
      expect(mock.calls.length).toBe(6 + 12)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("strategies.ts runs every line's strategy on the test API: one completed line each, with its steps", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-example-"))
      const result = yield* Strategies.program(dir).pipe(Effect.provide(Providers.layer))
      const completed = new Map(readJsonl(result.files.completed).map((record) => [record.id, record]))
      const steps = (id: string) => (completed.get(id)!.steps as ReadonlyArray<unknown> | undefined)?.length
      // self-consistency 5; two proposers + a self-consistent (3) proposer + the aggregator;
      // answer, critique, rewrite; two turns; three samples + the pick; the default: 3 × two turns
      expect([...completed.keys()].sort()).toEqual(["capital", "default", "haiku", "plain", "prime", "sky", "sum"])
      expect(["sum", "prime", "sky", "capital", "haiku", "default"].map(steps)).toEqual([5, 6, 3, 2, 4, 6])
      expect(steps("plain")).toBeUndefined()
      expect(completed.get("sum")!.answer).toBe("23")
      // the folder's critique template reached the critic
      const critique = (completed.get("sky")!.steps as ReadonlyArray<{ step: string; prompt: string; model_name: string }>)[1]!
      expect(critique).toMatchObject({ step: "critique", model_name: "large" })
      expect(critique.prompt).toMatch(/^You are a strict reviewer/)
      expect(result.stats.lines).toBe(7)
      expect(RunSummaryTotal(result)).toBe(27)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("strategies.ts on a mocked layer whose samples disagree: the majority answer wins and is scored", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-example-"))
      const mock = MockProvider.make("test", {
        respond: (record) => {
          const id = String(record.id)
          if (id.startsWith("sum#")) return id.includes("sample 4") ? "It is 41." : "So it is 42."
          if (id.startsWith("default#")) return id.endsWith("extract") ? (id.includes("sample 0") ? "40" : "42") : "thinking..."
          return "ok"
        }
      })
      const result = yield* Strategies.program(dir).pipe(Effect.provide(MockProvider.layer(mock)))
      const completed = new Map(readJsonl(result.files.completed).map((record) => [record.id, record]))
      expect(completed.get("sum")).toMatchObject({ answer: "42", match: true, vote: { votes: 4, total: 5 } })
      expect(completed.get("default")).toMatchObject({ answer: "42", match: true, vote: { votes: 2, total: 3 } })
      expect(mock.calls.length).toBe(27)
    }).pipe(Effect.provide(NodeContext.layer)))
})

const RunSummaryTotal = (result: { readonly stats: { readonly queues: ReadonlyMap<string, { readonly total: number }> } }) =>
  [...result.stats.queues.values()].reduce((sum, queue) => sum + queue.total, 0)
