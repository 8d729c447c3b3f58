import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Experiment from "../src/Experiment.js"
import { TransientError } from "../src/ProviderError.js"
import { MockProvider } from "../src/testing/index.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-experiment-"))
const readJsonl = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))
const lines = (records: ReadonlyArray<object>) => records.map((record) => JSON.stringify(record)).join("\n") + "\n"

const fast = { maxQueries: 600_000 } // 0.1 ms between sends: the run is paced but quick

describe("Experiment.run", () => {
  it.live("writes prompto's files: moved input, completed records, log", () => {
    const dir = tempDir()
    const source = path.join(dir, "exp.jsonl")
    fs.writeFileSync(source, lines([
      { id: 1, api: "mock", model_name: "m", prompt: "a", extra_key: [1, 2] },
      { id: 2, api: "mock", model_name: "m", prompt: ["b", "c"], parameters: { temperature: 0 } }
    ]))
    const mock = MockProvider.make("mock", { respond: (record) => ({ response: `r${String(record.id)}`, usage: { total_tokens: 3 } }) })
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file: source, dataFolder: path.join(dir, "data"), ...fast })
      const out = path.join(dir, "data", "output", "exp")
      const names = fs.readdirSync(out).sort()
      expect(names).toHaveLength(3)
      expect(names.every((name) => /^\d\d-\d\d-\d{4}-\d\d-\d\d-\d\d-(completed|input|log)-exp\.(jsonl|txt)$/.test(name))).toBe(true)
      expect(fs.existsSync(path.join(dir, "data", "input", "exp.jsonl"))).toBe(false)
      expect(fs.existsSync(source)).toBe(true) // copied, not moved
      const completed = readJsonl(result.files.completed)
      expect(completed.map((r) => r.id).sort()).toEqual([1, 2])
      const first = completed.find((r) => r.id === 1)
      expect(Object.keys(first).slice(0, 6)).toEqual(["id", "api", "model_name", "prompt", "extra_key", "timestamp_sent"])
      expect(first).toMatchObject({ response: "r1", attempts: 1, usage: { total_tokens: 3 }, extra_key: [1, 2] })
      expect(typeof first.latency_ms).toBe("number")
      expect(first.timestamp_sent).toMatch(/^\d\d-\d\d-\d{4}-\d\d-\d\d-\d\d$/)
      const log = fs.readFileSync(result.files.log, "utf8")
      expect(log).toMatch(/^\d\d-\d\d-\d{4}, \d\d:\d\d: Started experiment/)
      expect(log).toContain("Completed experiment")
      expect(result.stats.queues.get("default")).toMatchObject({ total: 2, sent: 2, succeeded: 2, failed: 0 })
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  })

  it.live("every input id appears exactly once in the completed file, across queues, retries and failures", () => {
    const dir = tempDir()
    const source = path.join(dir, "many.jsonl")
    const apis = ["a", "b", "c"]
    fs.writeFileSync(source, lines(Array.from({ length: 300 }, (_, i) => ({
      id: i,
      api: apis[i % 3],
      model_name: `m${i % 2}`,
      prompt: `p${i}`
    }))))
    const flaky = (api: string) =>
      MockProvider.make(api, {
        respond: (record, attempt) =>
          Number(record.id) % 7 === 0 && attempt < 3
            ? new TransientError({ message: "flaky" })
            : Number(record.id) % 11 === 0
            ? new TransientError({ message: "always down" })
            : "ok"
      })
    return Effect.gen(function*() {
      const result = yield* Experiment.run({
        file: source,
        dataFolder: path.join(dir, "data"),
        parallel: true,
        maxQueriesJson: { a: { m0: 600_000 } },
        maxAttempts: 3,
        ...fast
      })
      const completed = readJsonl(result.files.completed)
      const ids = completed.map((r) => r.id)
      expect(ids).toHaveLength(300)
      expect(new Set(ids).size).toBe(300)
      expect([...result.stats.queues.keys()].sort()).toEqual(["a-m0", "b", "c", "a"].sort())
      const failed = completed.filter((r) => r.error !== undefined)
      expect(failed.map((r) => r.id).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 11 === 0)
      )
      expect(failed.every((r) => r.attempts === 3)).toBe(true)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(flaky("a"), flaky("b"), flaky("c")))))
  })

  it.live("refuses an invalid file, lists every problem, sends nothing and leaves input/ clean", () => {
    const dir = tempDir()
    const source = path.join(dir, "bad.jsonl")
    fs.writeFileSync(source, [
      JSON.stringify({ id: 1, api: "mock", model_name: "m", prompt: "ok" }),
      "{not json",
      JSON.stringify({ id: 3, api: "mock", prompt: "no model" })
    ].join("\n"))
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Experiment.run({ file: source, dataFolder: path.join(dir, "data"), ...fast }))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause : undefined
      const text = String(error)
      expect(text).toContain(`${source}:2: invalid JSON`)
      expect(text).toContain(`${source}:3: key "model_name": is required but missing`)
      expect(mock.calls).toHaveLength(0)
      expect(fs.readdirSync(path.join(dir, "data", "input"))).toEqual([])
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  })

  it.live("with skipInvalid runs the valid lines and writes invalid ones as unsent error records", () => {
    const dir = tempDir()
    const source = path.join(dir, "mixed.jsonl")
    fs.writeFileSync(source, [
      JSON.stringify({ id: 1, api: "mock", model_name: "m", prompt: "ok" }),
      "[1, 2]",
      JSON.stringify({ id: 3, api: "nope", model_name: "m", prompt: "x" })
    ].join("\n"))
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file: source, dataFolder: path.join(dir, "data"), skipInvalid: true, ...fast })
      const completed = readJsonl(result.files.completed)
      expect(completed).toHaveLength(3)
      expect(mock.calls.map((c) => c.id)).toEqual([1])
      const array = completed.find((r) => r.id === "line-2")
      expect(array.error).toMatchObject({ kind: "validation", attempts: 0 })
      expect(array.response).toContain("must be a JSON object")
      const unknown = completed.find((r) => r.id === 3)
      expect(unknown.response).toContain('"nope" is not a valid API')
      expect(result.stats.skipped).toBe(2)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  })

  it.live("runs a CSV experiment and writes the converted input and a completed CSV", () => {
    const dir = tempDir()
    const source = path.join(dir, "sheet.csv")
    fs.writeFileSync(source, "id,api,model_name,prompt,parameters-temperature,group\n1,mock,m,hello,0.5,\n2,mock,m,\"a, b\",,g\n")
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file: source, dataFolder: path.join(dir, "data"), outputAsCsv: true, ...fast })
      const names = fs.readdirSync(result.files.folder).sort()
      expect(names.map((name) => name.replace(/^[\d-]+-/, ""))).toEqual(
        ["completed-sheet.csv", "completed-sheet.jsonl", "input-sheet.csv", "input-sheet.jsonl", "log-sheet.txt"]
      )
      expect(readJsonl(result.files.inputJsonl)).toEqual([
        { id: 1, api: "mock", model_name: "m", prompt: "hello", parameters: { temperature: 0.5 } },
        { id: 2, api: "mock", model_name: "m", prompt: "a, b", group: "g" }
      ])
      const csv = fs.readFileSync(result.files.completedCsv, "utf8").split("\n")
      expect(csv[0]).toContain("id,api,model_name,prompt,parameters")
      expect(csv.filter((line) => line.length > 0)).toHaveLength(3)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  })

  it.live("two runs of one file in the same second get separate files", () => {
    const dir = tempDir()
    const source = path.join(dir, "twice.jsonl")
    fs.writeFileSync(source, lines([{ id: 1, api: "mock", model_name: "m", prompt: "a" }]))
    return Effect.gen(function*() {
      const first = yield* Experiment.run({ file: source, dataFolder: path.join(dir, "data"), ...fast })
      const second = yield* Experiment.run({ file: source, dataFolder: path.join(dir, "data"), ...fast })
      expect(second.files.completed).not.toBe(first.files.completed)
      expect(readJsonl(first.files.completed)).toHaveLength(1)
      expect(readJsonl(second.files.completed)).toHaveLength(1)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(MockProvider.make("mock")))))
  })

  it.live("rejects a rate of 0 with a clear error before touching the data folder", () => {
    const dir = tempDir()
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Experiment.run({ file: path.join(dir, "x.jsonl"), dataFolder: path.join(dir, "data"), maxQueries: 0 }))
      expect(String(exit)).toContain("--max-queries: the rate must be greater than 0")
      expect(fs.existsSync(path.join(dir, "data"))).toBe(false)
      const noTimeout = yield* Effect.exit(Experiment.run({ file: path.join(dir, "x.jsonl"), dataFolder: path.join(dir, "data"), timeout: 0 }))
      expect(String(noTimeout)).toContain("--timeout must be more than 0 seconds")
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer())))
  })
})
