/**
 * Repeats: a line sent N times, each a record of its own with `sample` 0 to N − 1 and the
 * line's id; (id, sample) is the key of resume and of the duplicate-id check.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Experiment from "../src/Experiment.js"
import * as Metrics from "../src/Metrics.js"
import * as Missing from "../src/Missing.js"
import * as Scorer from "../src/Scorer.js"
import { PermanentError } from "../src/ProviderError.js"
import { MockProvider } from "../src/testing/index.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-repeats-"))
const lines = (records: ReadonlyArray<unknown>) => records.map((record) => JSON.stringify(record)).join("\n") + "\n"
const readJsonl = (file: string): ReadonlyArray<Record<string, unknown>> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))
const keys = (file: string) => readJsonl(file).map((record) => `${String(record.id)}/${String(record.sample)}`).sort()
const withMock = (mock: MockProvider.MockProvider) => Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock)))

describe("repeats", () => {
  it.live("--repeats sends every line N times with sample 0..N-1; a line's own repeats wins; keys pass through", () => {
    const dir = tempDir()
    const file = path.join(dir, "r.jsonl")
    fs.writeFileSync(file, lines([
      { id: "a", api: "mock", model_name: "m", prompt: "p", template: "I like {food}", vars: { food: "pizza" } },
      { id: "b", api: "mock", model_name: "m", prompt: "q", repeats: 2 },
      { id: "c", api: "mock", model_name: "m", prompt: "r", strategy: "two_turn" }
    ]))
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, repeats: 3 })
      const completed = readJsonl(result.files.completed)
      expect(keys(result.files.completed)).toEqual(["a/0", "a/1", "a/2", "b/0", "b/1", "c/0", "c/1", "c/2"])
      expect(completed.find((r) => r.id === "a")).toMatchObject({ template: "I like {food}", vars: { food: "pizza" } })
      // c: 3 samples of a two-turn strategy, each sample its own requests
      expect(mock.calls.filter((call) => String(call.id).startsWith("c/"))).toHaveLength(6)
      expect(mock.calls).toHaveLength(3 + 2 + 6)
      expect(result.stats.lines).toBe(8)
    }).pipe(withMock(mock))
  })

  it.live("resume sends only the samples not answered: (id, sample) is the key", () => {
    const dir = tempDir()
    const file = path.join(dir, "r.jsonl")
    fs.writeFileSync(file, lines([
      { id: 1, api: "mock", model_name: "m", prompt: "p", repeats: 4 },
      { id: 2, api: "mock", model_name: "m", prompt: "q", repeats: 4 }
    ]))
    // samples 1 and 3 of id 2 fail for good the first time
    const first = MockProvider.make("mock", {
      respond: (record) => record.id === 2 && record.sample !== undefined && Number(record.sample) % 2 === 1
        ? new PermanentError({ reason: "bad_request", message: "no" })
        : "ok"
    })
    const second = MockProvider.make("mock")
    return Effect.gen(function*() {
      const run = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000 }).pipe(withMock(first))
      expect(first.calls).toHaveLength(8)
      const resumed = yield* Experiment.resume({ from: run.files.folder, dataFolder: path.join(dir, "data"), maxQueries: 600_000 }).pipe(
        withMock(second)
      )
      expect(second.calls.map((call) => `${String(call.record.id)}/${String(call.record.sample)}`).sort()).toEqual(["2/1", "2/3"])
      expect(resumed.alreadyDone).toBe(6)
      expect(keys(run.files.completed)).toEqual(["1/0", "1/1", "1/2", "1/3", "2/0", "2/1", "2/2", "2/3"])
      expect(readJsonl(run.files.completed).every((record) => record.error === undefined)).toBe(true)
    })
  })

  it.live("the same id with different samples is valid; the same (id, sample) twice is a duplicate; repeats 0 is refused", () => {
    const dir = tempDir()
    const ok = path.join(dir, "ok.jsonl")
    fs.writeFileSync(ok, lines([
      { id: 1, api: "mock", model_name: "m", prompt: "p", sample: 0 },
      { id: 1, api: "mock", model_name: "m", prompt: "p", sample: 1 }
    ]))
    const bad = path.join(dir, "bad.jsonl")
    fs.writeFileSync(bad, lines([
      { id: 1, api: "mock", model_name: "m", prompt: "p", sample: 0 },
      { id: 1, api: "mock", model_name: "m", prompt: "p", sample: 0 },
      { id: 2, api: "mock", model_name: "m", prompt: "p", repeats: 0 }
    ]))
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file: ok, dataFolder: path.join(dir, "data"), maxQueries: 600_000 })
      expect(keys(result.files.completed)).toEqual(["1/0", "1/1"])
      const refused = yield* Effect.exit(Experiment.run({ file: bad, dataFolder: path.join(dir, "data") }))
      expect(Exit.isFailure(refused)).toBe(true)
      const report = String((refused as { cause: { error?: { message?: string } } }).cause.error?.message ?? "")
      expect(report).toContain(`bad.jsonl:2: key "id": duplicate id 1 with sample 0 (first on line 1)`)
      expect(report).toContain(`bad.jsonl:3: key "repeats": must be a whole number of at least 1`)
      const zero = yield* Effect.exit(Experiment.run({ file: ok, dataFolder: path.join(dir, "data"), repeats: 0 }))
      expect(JSON.stringify(zero)).toContain("--repeats must be a whole number of at least 1, got 0")
    }).pipe(withMock(mock))
  })
})


describe("missing with repeats", () => {
  it.effect("a repeated line with some samples answered is written once per missing sample; a wholly missing one as it is", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const input = path.join(dir, "in.jsonl")
      const output = path.join(dir, "done.jsonl")
      const next = path.join(dir, "next.jsonl")
      fs.writeFileSync(input, lines([
        { id: 1, api: "mock", model_name: "m", prompt: "p", repeats: 3 },
        { id: 2, api: "mock", model_name: "m", prompt: "q", repeats: 2 },
        { id: 3, api: "mock", model_name: "m", prompt: "r" }
      ]))
      fs.writeFileSync(output, lines([
        { id: 1, sample: 0, response: "ok" },
        { id: 1, sample: 2, response: "ok" },
        { id: 3, response: "ok" }
      ]))
      const result = yield* Missing.write({ input, output, newFile: next })
      expect(result.added).toBe(2)
      expect(readJsonl(next)).toEqual([
        { id: 1, api: "mock", model_name: "m", prompt: "p", sample: 1 },
        { id: 2, api: "mock", model_name: "m", prompt: "q", repeats: 2 }
      ])
      // with the run's --repeats 2, a line without its own repeats is keyed (id, sample) too
      const again = path.join(dir, "again.jsonl")
      const withDefault = yield* Missing.write({ input, output, newFile: again, repeats: 2 })
      expect(withDefault.added).toBe(4)
      expect(readJsonl(again).map((r) => `${String(r.id)}/${String(r.sample)}`)).toEqual(["1/1", "2/undefined", "3/0", "3/1"])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("flatten choices", () => {
  it.live("an answer with n choices becomes one record per choice with choice_index; resume keeps them all and sends nothing", () => {
    const dir = tempDir()
    const file = path.join(dir, "n.jsonl")
    fs.writeFileSync(file, lines([
      { id: "x", api: "mock", model_name: "m", prompt: "p", parameters: { n: 3 } },
      { id: "turns", api: "mock", model_name: "m", prompt: ["a", "b"], parameters: { n: 2 } },
      { id: "one", api: "mock", model_name: "m", prompt: "q" }
    ]))
    const mock = MockProvider.make("mock", {
      respond: (record) =>
        record.id === "x"
          ? { response: ["A", "B", "C"], usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 } }
          : record.id === "turns" ? { response: ["t1", "t2"] } : "only"
    })
    const again = MockProvider.make("mock")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, flattenChoices: true }).pipe(
        withMock(mock)
      )
      const completed = readJsonl(result.files.completed)
      const x = completed.filter((record) => record.id === "x")
      expect(x.map((record) => [record.choice_index, record.response])).toEqual([[0, "A"], [1, "B"], [2, "C"]])
      expect(x.map((record) => record.usage !== undefined)).toEqual([true, false, false])
      // a multi-turn chat's list of answers is not a list of choices
      expect(completed.find((record) => record.id === "turns")).toMatchObject({ response: ["t1", "t2"] })
      expect(completed.find((record) => record.id === "turns")!.choice_index).toBeUndefined()
      expect(result.notDone).toBe(0)
      const resumed = yield* Experiment.resume({ from: result.files.folder, dataFolder: path.join(dir, "data") }).pipe(withMock(again))
      expect(again.calls).toHaveLength(0)
      expect(resumed.alreadyDone).toBe(3)
      expect(readJsonl(result.files.completed)).toHaveLength(5)
    })
  })
})

describe("metrics across samples", () => {
  it.live("per prompt: the mean score of its samples, and how often its samples agree on the answer", () => {
    const dir = tempDir()
    const file = path.join(dir, "m.jsonl")
    fs.writeFileSync(file, lines([
      { id: "a", api: "mock", model_name: "m", prompt: "p", expected_response: "42", strategy: { name: "self_consistency", samples: 1, extract: "last_number" } },
      { id: "b", api: "mock", model_name: "m", prompt: "q", expected_response: "42", strategy: { name: "self_consistency", samples: 1, extract: "last_number" } }
    ]))
    // a: samples answer 42, 42, 41, 42; b: 40, 42, 40, 40
    const answersOf: Record<string, ReadonlyArray<string>> = { a: ["42", "42", "41", "42"], b: ["40", "42", "40", "40"] }
    const mock = MockProvider.make("mock", {
      respond: (record) => {
        const [line, sample] = String(record.id).split("#")[0]!.split("/")
        return `so ${answersOf[line!]![Number(sample)]}`
      }
    })
    return Effect.gen(function*() {
      const result = yield* Experiment.run({
        file,
        dataFolder: path.join(dir, "data"),
        maxQueries: 600_000,
        repeats: 4,
        stages: (records) => records.pipe(Scorer.stage([Scorer.match]))
      }).pipe(withMock(mock))
      const rows = result.metrics.rows
      expect(rows.find((row) => row.scorer === "match" && row.by === "all")).toMatchObject({ count: 8, mean: 0.5 })
      // per prompt: a 3/4, b 1/4; mean 0.5 over 2 prompts
      expect(rows.find((row) => row.scorer === "match" && row.by === "prompt")).toMatchObject({ count: 2, mean: 0.5 })
      // a: 3 of 4 agree, b: 3 of 4 agree
      expect(rows.find((row) => row.scorer === "answer agreement")).toMatchObject({ by: "prompt", count: 2, mean: 0.75 })
      expect(Metrics.format(result.metrics).some((line) => line.startsWith("answer agreement  per prompt"))).toBe(true)
    })
  })
})
