import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, FiberId, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Experiment from "../src/Experiment.js"
import type { PromptRecord } from "../src/PromptRecord.js"
import { MockProvider } from "../src/testing/index.js"

/**
 * A file larger than the check's head start: sending begins while the check goes on ahead, and
 * what "all or nothing" promised holds as far as it can: an invalid line found later stops the
 * sending, loses nothing, and a resume after the fix sends each prompt once.
 */

const n = 10_000
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-check-ahead-"))
const readJsonl = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))
const line = (i: number, api = "mock") => JSON.stringify({ id: i, api, model_name: "m", prompt: `p${i}` })
const write = (file: string, lines: ReadonlyArray<string>) => fs.writeFileSync(file, lines.join("\n") + "\n")
// no head start: sending begins once the first lines are checked
const options = (dir: string, file: string) => ({
  file,
  dataFolder: path.join(dir, "data"),
  maxQueries: 100_000_000,
  checkHeadStart: 0
})

describe("sending while the check runs ahead", () => {
  it.live("a large valid file: the first requests leave before the check ends; every line is sent once", () => {
    const dir = tempDir()
    const source = path.join(dir, "big.jsonl")
    write(source, Array.from({ length: n }, (_, i) => line(i)))
    // the check of the last line waits for a first answer: a run that sent nothing before its
    // check ended would wait forever (and time out here)
    const answered = Deferred.unsafeMake<void>(FiberId.none)
    const base = MockProvider.make("mock", { respond: () => Effect.as(Deferred.succeed(answered, undefined), "ok") })
    const mock = {
      ...base,
      check: (record: PromptRecord) =>
        record.id === n - 1 ? Effect.zipRight(Deferred.await(answered), base.check(record)) : base.check(record)
    }
    const events: Array<string> = []
    return Effect.gen(function*() {
      let callsWhenChecked = -1
      const result = yield* Experiment.run({
        ...options(dir, source),
        onEvent: (event) =>
          Effect.sync(() => {
            if (event._tag === "Started" || event._tag === "Checked") events.push(event._tag)
            if (event._tag === "Started") expect(event.report).toBeUndefined()
            if (event._tag === "Checked") {
              callsWhenChecked = mock.calls.length
              expect(event.report.records).toBe(n)
            }
          })
      }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("nothing was sent before the check ended") }))
      expect(events).toEqual(["Started", "Checked"])
      // requests had left before the check ended
      expect(callsWhenChecked).toBeGreaterThan(0)
      const ids = readJsonl(result.files.completed).map((record) => record.id)
      expect(ids).toHaveLength(n)
      expect(new Set(ids).size).toBe(n)
      expect(new Set(mock.calls.map((call) => call.id)).size).toBe(mock.calls.length)
      expect(result.report.records).toBe(n)
      expect(result.stats.queues.get("default")).toMatchObject({ total: n, sent: n, succeeded: n })
      expect(result.stats.lines).toBe(n)
      const log = fs.readFileSync(result.files.log, "utf8")
      expect(log).toMatch(/Started experiment big\.jsonl: sending its prompts while the rest of the file is checked/)
      expect(log).toMatch(new RegExp(`Checked experiment big\\.jsonl: ${n} prompts, 1 queue`))
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  }, 120_000)

  it.live("a queue whose first line comes late in the file is found and sent", () => {
    const dir = tempDir()
    const source = path.join(dir, "late.jsonl")
    write(source, Array.from({ length: n }, (_, i) => line(i, i >= n - 10 ? "late" : "mock")))
    const mock = MockProvider.make("mock")
    const late = MockProvider.make("late")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ ...options(dir, source), parallel: true })
      expect(readJsonl(result.files.completed)).toHaveLength(n)
      expect(late.calls).toHaveLength(10)
      expect(result.stats.queues.get("late")).toMatchObject({ total: 10, succeeded: 10 })
    }).pipe(Effect.provide(Layer.mergeAll(NodeContext.layer, MockProvider.layer(mock), MockProvider.layer(late))))
  }, 120_000)

  it.live("an invalid line found after sending began stops the run; the fix and a resume send each prompt once", () => {
    const dir = tempDir()
    const source = path.join(dir, "broken.jsonl")
    const bad = n - 1000
    // a duplicate id far from its first line, and a line with no prompt
    const lines = Array.from({ length: n }, (_, i) => line(i))
    lines[bad] = line(7)
    lines[bad + 1] = JSON.stringify({ id: bad + 1, api: "mock", model_name: "m" })
    write(source, lines)
    const answered = Deferred.unsafeMake<void>(FiberId.none)
    const base = MockProvider.make("mock", {
      respond: () => Effect.as(Deferred.succeed(answered, undefined), "ok")
    })
    // the check of the last lines waits for a first answer, so that sending has begun when the
    // invalid lines are found, however fast the check runs
    const mock = {
      ...base,
      check: (record: PromptRecord) =>
        Number(record.id) >= bad - 10 ? Effect.zipRight(Deferred.await(answered), base.check(record)) : base.check(record)
    }
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Experiment.run(options(dir, source)))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(error?._tag).toBe("ExperimentInvalid")
      const message = (error as Experiment.ExperimentInvalid).report.join("\n")
      // every problem is listed, with its line and key
      expect(message).toContain(`:${bad + 1}: key "id": duplicate id 7 (first on line 8)`)
      expect(message).toContain(`:${bad + 2}: key "prompt"`)
      expect(message).toMatch(/Sending began before the check of this large file ended: \d+ records were written/)
      expect(message).toMatch(/prompto run --resume /)
      const folder = path.join(dir, "data", "output", "broken")
      const file = (part: string) => path.join(folder, fs.readdirSync(folder).find((name) => name.includes(part))!)
      const before = readJsonl(file("-completed-"))
      // sending stopped: not every line went, and nothing past the invalid ones
      expect(before.length).toBeGreaterThan(0)
      expect(before.length).toBeLessThan(n - 2)
      expect(before.every((record) => record.error === undefined && record.id < bad)).toBe(true)
      expect(fs.readFileSync(file("-log-"), "utf8")).toMatch(new RegExp(`Stop: .*:${bad + 1} is invalid; no more prompts are sent`))
      // the fix, in the run's own copy of the file, then the resume
      const input = file("-input-")
      const fixed = fs.readFileSync(input, "utf8").split("\n")
      fixed[bad] = line(bad)
      fixed[bad + 1] = line(bad + 1)
      fs.writeFileSync(input, fixed.join("\n"))
      const resumed = yield* Experiment.resume({ from: folder, maxQueries: 100_000_000 })
      const ids = readJsonl(resumed.files.completed).map((record) => record.id)
      expect(ids).toHaveLength(n)
      expect(new Set(ids).size).toBe(n)
      // resume never sends a request twice that was answered
      expect(new Set(mock.calls.map((call) => call.id)).size).toBe(mock.calls.length)
      expect(mock.calls).toHaveLength(n)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  }, 120_000)

  it.live("with skipInvalid the invalid lines are written as errors and the rest is sent", () => {
    const dir = tempDir()
    const source = path.join(dir, "skip.jsonl")
    const lines = Array.from({ length: n }, (_, i) => line(i))
    lines[n - 5] = "{ not json"
    write(source, lines)
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ ...options(dir, source), skipInvalid: true })
      const completed = readJsonl(result.files.completed)
      expect(completed).toHaveLength(n)
      expect(completed.filter((record) => record.error !== undefined)).toHaveLength(1)
      expect(mock.calls).toHaveLength(n - 1)
      expect(result.stats.skipped).toBe(1)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  }, 120_000)

  it.live("a stop ends the run at once, without waiting for the rest of a large file's check", () => {
    const dir = tempDir()
    const source = path.join(dir, "stopped.jsonl")
    write(source, Array.from({ length: n }, (_, i) => line(i)))
    const answered = Deferred.unsafeMake<void>(FiberId.none)
    const base = MockProvider.make("mock", { respond: () => Effect.as(Deferred.succeed(answered, undefined), "ok") })
    // the check never gets past the last line: only the stop can end this run
    const mock = {
      ...base,
      check: (record: PromptRecord) => record.id === n - 1 ? Effect.never : base.check(record)
    }
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ ...options(dir, source), maxQueries: 6000, stop: Deferred.await(answered), grace: "60 seconds" })
        .pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the stop waited for the check") }))
      expect(result.stopped).toBe(true)
      const written = readJsonl(result.files.completed).length
      expect(written).toBeGreaterThan(0)
      expect(written).toBeLessThan(n)
      // what the check had found and was not done is counted as not done
      expect(result.notDone).toBeGreaterThan(0)
      expect(fs.readFileSync(result.files.log, "utf8")).toMatch(/resume with: prompto run --resume /)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  }, 60_000)

  it.live("a file checked within the head start stays all or nothing: an invalid line sends nothing", () => {
    const dir = tempDir()
    const source = path.join(dir, "small.jsonl")
    write(source, [line(1), line(2), JSON.stringify({ id: 3, api: "mock" })])
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(Experiment.run({ file: source, dataFolder: path.join(dir, "data"), maxQueries: 100_000_000 }))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(mock.calls).toHaveLength(0)
      expect(fs.existsSync(path.join(dir, "data", "output", "small"))).toBe(false)
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock))))
  })
})
