/**
 * Resuming runs: finding the run to resume (`Resume.locate`), cleaning its completed file
 * (`Resume.reconcile`), and `Experiment.resume` end to end on real temp folders, including a
 * completed file cut mid-line and a run stopped gracefully.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Experiment from "../src/Experiment.js"
import * as Resume from "../src/Resume.js"
import { PermanentError } from "../src/ProviderError.js"
import { MockProvider } from "../src/testing/index.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-resume-"))
const lines = (records: ReadonlyArray<unknown>) => records.map((record) => JSON.stringify(record)).join("\n") + "\n"
/** Every line of a file parsed as JSON: throws on a line that is not whole JSON. */
const readJsonl = (file: string): ReadonlyArray<Record<string, unknown>> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))
const ids = (file: string) => readJsonl(file).map((record) => record.id)
const sorted = (values: ReadonlyArray<unknown>) => [...values].sort((a, b) => Number(a) - Number(b))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const prompts = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: i + 1, api: "mock", model_name: "m", prompt: `p${i + 1}` }))

const fast = { maxQueries: 600_000 } // 0.1 ms between sends: paced but quick

const withMock = (mock: MockProvider.MockProvider) =>
  Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock)))

/** Writes the files of a run named `name` at `timestamp` into `folder`. */
const writeRun = (
  folder: string,
  timestamp: string,
  name: string,
  options: { readonly csv?: boolean; readonly completed?: string; readonly input?: boolean } = {}
) => {
  fs.mkdirSync(folder, { recursive: true })
  const at = (kind: string, ext: string) => path.join(folder, `${timestamp}-${kind}-${name}.${ext}`)
  if (options.input !== false) {
    fs.writeFileSync(at("input", "jsonl"), lines([{ id: 1, api: "mock", model_name: "m", prompt: "p" }]))
    if (options.csv === true) fs.writeFileSync(at("input", "csv"), "id,api,model_name,prompt\n1,mock,m,p\n")
  }
  fs.writeFileSync(at("completed", "jsonl"), options.completed ?? "")
  fs.writeFileSync(at("log", "txt"), "")
  return at
}

describe("Resume.locate", () => {
  it.effect("picks the latest run of a folder by its time, not by its name", () =>
    Effect.gen(function*() {
      const folder = path.join(tempDir(), "exp")
      // by name, 31-12-2025 sorts after 01-01-2026 and 02-01-2025; by time it is in between
      writeRun(folder, "31-12-2025-23-59-59", "exp")
      const latest = writeRun(folder, "01-01-2026-00-00-01", "exp")
      writeRun(folder, "02-01-2025-12-00-00", "exp")
      writeRun(folder, "01-01-2026-00-00-00", "exp")
      fs.writeFileSync(path.join(folder, "01-01-2026-00-00-01-completed-exp.csv"), "")
      fs.writeFileSync(path.join(folder, "notes.txt"), "")

      const found = yield* Resume.locate(folder)
      expect(found.format).toBe("jsonl")
      expect(found.files).toEqual({
        name: "exp",
        timestamp: "01-01-2026-00-00-01",
        folder: path.resolve(folder),
        input: latest("input", "jsonl"),
        inputJsonl: latest("input", "jsonl"),
        completed: latest("completed", "jsonl"),
        completedCsv: latest("completed", "csv"),
        log: latest("log", "txt")
      })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("on a completed file: that run, even when a later one exists", () =>
    Effect.gen(function*() {
      const folder = path.join(tempDir(), "exp")
      const earlier = writeRun(folder, "31-12-2025-23-59-59", "exp")
      writeRun(folder, "01-01-2026-00-00-01", "exp")
      const found = yield* Resume.locate(earlier("completed", "jsonl"))
      expect(found.files.timestamp).toBe("31-12-2025-23-59-59")
      expect(found.files.completed).toBe(earlier("completed", "jsonl"))
      expect(found.files.inputJsonl).toBe(earlier("input", "jsonl"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a CSV run: the input as given is the .csv, the converted .jsonl is read", () =>
    Effect.gen(function*() {
      const folder = path.join(tempDir(), "sheet")
      const at = writeRun(folder, "05-03-2026-10-20-30", "sheet", { csv: true })
      const found = yield* Resume.locate(folder)
      expect(found.format).toBe("csv")
      expect(found.files.input).toBe(at("input", "csv"))
      expect(found.files.inputJsonl).toBe(at("input", "jsonl"))
      expect(found.files.completedCsv).toBe(at("completed", "csv"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("errors name the path and what is missing", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const message = (target: string) =>
        Resume.locate(target).pipe(
          Effect.flip,
          Effect.map((error) => {
            expect(error._tag).toBe("DataFolderError")
            expect(error.path).toBe(target)
            return error.message
          })
        )
      expect(yield* message(path.join(dir, "nowhere"))).toBe("--resume: no such folder or file")

      const empty = path.join(dir, "empty")
      fs.mkdirSync(empty)
      fs.writeFileSync(path.join(empty, "01-01-2026-00-00-00-log-x.txt"), "")
      expect(yield* message(empty)).toContain("no <T>-completed-<name>.jsonl file")

      const other = path.join(dir, "results.jsonl")
      fs.writeFileSync(other, "")
      expect(yield* message(other)).toContain("expects an output folder or a <T>-completed-<name>.jsonl file")

      const noInput = path.join(dir, "lost")
      const at = writeRun(noInput, "01-01-2026-00-00-00", "lost", { input: false })
      expect(yield* message(noInput)).toBe(`--resume: the run's input ${at("input", "jsonl")} is missing`)
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("Resume.reconcile", () => {
  it.effect("keeps one success per id in order, drops errors, repeats and a cut-off last line", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const completed = path.join(dir, "01-01-2026-00-00-00-completed-exp.jsonl")
      const kept = [
        { id: 1, response: "one" },
        { id: "1", response: "the string id 1 is another prompt" },
        { id: 3, response: "three", error: null }
      ]
      fs.writeFileSync(
        completed,
        [
          JSON.stringify(kept[0]),
          JSON.stringify({ id: 2, response: "TransientError - down", error: { kind: "transient", message: "down", attempts: 5 } }),
          JSON.stringify(kept[1]),
          "",
          JSON.stringify({ id: 1, response: "one again" }),
          "[1, 2]",
          JSON.stringify({ response: "no id" }),
          JSON.stringify(kept[2]),
          `{"id": 4, "response": "cut off by a cra`
        ].join("\n")
      )
      const result = yield* Resume.reconcile(completed)
      expect([...result.done]).toEqual([Resume.idKey(1), Resume.idKey("1"), Resume.idKey(3)])
      expect(result.done.has(Resume.idKey(2))).toBe(false)
      expect(result.done.has(Resume.idKey(4))).toBe(false)
      expect(result).toMatchObject({ errored: 1, duplicates: 1, broken: 3 })
      expect(fs.readFileSync(completed, "utf8")).toBe(lines(kept))
      expect(fs.readdirSync(dir)).toEqual([path.basename(completed)])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("ids 1 and \"1\" are different prompts", () =>
    Effect.sync(() => {
      expect(Resume.idKey(1)).not.toBe(Resume.idKey("1"))
      expect(Resume.idKey("a")).toBe(Resume.idKey("a"))
    }))

  it.effect("an empty completed file stays empty; a file of only errors becomes empty", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const empty = path.join(dir, "01-01-2026-00-00-00-completed-a.jsonl")
      fs.writeFileSync(empty, "")
      expect((yield* Resume.reconcile(empty)).done.size).toBe(0)
      expect(fs.readFileSync(empty, "utf8")).toBe("")
      const errors = path.join(dir, "01-01-2026-00-00-00-completed-b.jsonl")
      fs.writeFileSync(errors, lines([{ id: 1, response: "x", error: { kind: "auth", message: "x", attempts: 1 } }]))
      expect(yield* Resume.reconcile(errors)).toMatchObject({ errored: 1, broken: 0, duplicates: 0 })
      expect(fs.readFileSync(errors, "utf8")).toBe("")
      expect(fs.readdirSync(dir).sort()).toEqual([path.basename(empty), path.basename(errors)])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a rewrite that fails leaves nothing beside the completed file", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const missing = path.join(dir, "01-01-2026-00-00-00-completed-gone.jsonl")
      const exit = yield* Effect.exit(Resume.reconcile(missing))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fs.readdirSync(dir)).toEqual([])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("Experiment.resume", () => {
  it.live("sends only the failed and the missing prompts; every id ends up once", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const source = path.join(dir, "exp.jsonl")
    fs.writeFileSync(source, lines(prompts(10)))
    const failing = new Set([3, 7])
    const first = MockProvider.make("mock", {
      respond: (record) =>
        failing.has(Number(record.id))
          ? Effect.fail(new PermanentError({ reason: "bad_request", message: `no answer for ${String(record.id)}` }))
          : `first ${String(record.id)}`
    })
    const second = MockProvider.make("mock", { respond: (record) => `second ${String(record.id)}` })
    return Effect.gen(function*() {
      const run = yield* Experiment.run({ file: source, dataFolder: data, ...fast }).pipe(withMock(first))
      expect(run.stats.queues.get("default")).toMatchObject({ succeeded: 8, failed: 2 })
      // two answered prompts never reached the file (the process died before writing them)
      const completed = run.files.completed
      const written = readJsonl(completed)
      fs.writeFileSync(completed, lines(written.filter((record) => record.id !== 5 && record.id !== 9)))

      const resumed = yield* Experiment.resume({ from: run.files.folder, dataFolder: data, ...fast }).pipe(withMock(second))
      expect(sorted(second.calls.map((call) => call.id))).toEqual([3, 5, 7, 9])
      expect(resumed.files).toEqual(run.files)
      expect(resumed).toMatchObject({ alreadyDone: 6, stopped: false, notDone: 0 })
      const records = readJsonl(completed)
      expect(sorted(records.map((record) => record.id))).toEqual(range(1, 10))
      for (const record of records) {
        expect(record.error, `id ${String(record.id)}`).toBeUndefined()
        const expected = [3, 5, 7, 9].includes(Number(record.id)) ? "second" : "first"
        expect(record.response, `id ${String(record.id)}`).toBe(`${expected} ${String(record.id)}`)
      }
      const log = fs.readFileSync(run.files.log, "utf8")
      expect(log).toContain("Resumed: 6 prompts already answered are not sent again; 4 to send (2 errored records dropped to be retried)")
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.live("a completed file cut mid-line resumes: the cut record is sent again", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const source = path.join(dir, "cut.jsonl")
    fs.writeFileSync(source, lines(prompts(6)))
    const first = MockProvider.make("mock")
    const second = MockProvider.make("mock")
    return Effect.gen(function*() {
      const run = yield* Experiment.run({ file: source, dataFolder: data, ...fast }).pipe(withMock(first))
      const completed = run.files.completed
      const text = fs.readFileSync(completed, "utf8")
      const lastLine = text.trimEnd().split("\n").at(-1)!
      const cutId = JSON.parse(lastLine).id
      // a power cut in the middle of the last write: half a record, no newline
      fs.writeFileSync(completed, text.slice(0, text.length - 1 - Math.floor(lastLine.length / 2)))

      const resumed = yield* Experiment.resume({ from: completed, dataFolder: data, ...fast }).pipe(withMock(second))
      expect(second.calls.map((call) => call.id)).toEqual([cutId])
      expect(resumed.alreadyDone).toBe(5)
      expect(sorted(ids(completed))).toEqual(range(1, 6))
      expect(fs.readFileSync(completed, "utf8").endsWith("\n")).toBe(true)
      expect(fs.readFileSync(run.files.log, "utf8")).toContain("1 cut-off lines removed from the completed file")
      expect(fs.readdirSync(run.files.folder).some((name) => name.endsWith(".resume-partial"))).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.live("a fragment appended after the last record is dropped; a finished run sends nothing", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const source = path.join(dir, "done.jsonl")
    fs.writeFileSync(source, lines(prompts(4)))
    const first = MockProvider.make("mock")
    const second = MockProvider.make("mock")
    return Effect.gen(function*() {
      const run = yield* Experiment.run({ file: source, dataFolder: data, ...fast }).pipe(withMock(first))
      const before = fs.readFileSync(run.files.completed, "utf8")
      fs.appendFileSync(run.files.completed, `{"id": 4, "api": "mock", "resp`)
      const resumed = yield* Experiment.resume({ from: run.files.folder, dataFolder: data, ...fast }).pipe(withMock(second))
      expect(second.calls).toEqual([])
      expect(resumed).toMatchObject({ alreadyDone: 4, notDone: 0, stopped: false })
      expect(fs.readFileSync(run.files.completed, "utf8")).toBe(before)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.live("a CSV run resumes from its converted input", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const source = path.join(dir, "sheet.csv")
    fs.writeFileSync(source, "id,api,model_name,prompt\n1,mock,m,a\n2,mock,m,b\n3,mock,m,c\n")
    const first = MockProvider.make("mock", {
      respond: (record) =>
        record.id === 2 ? Effect.fail(new PermanentError({ reason: "internal", message: "no" })) : "ok"
    })
    const second = MockProvider.make("mock")
    return Effect.gen(function*() {
      const run = yield* Experiment.run({ file: source, dataFolder: data, ...fast }).pipe(withMock(first))
      const resumed = yield* Experiment.resume({ from: run.files.folder, dataFolder: data, outputAsCsv: true, ...fast }).pipe(
        withMock(second)
      )
      expect(second.calls.map((call) => call.id)).toEqual([2])
      expect(resumed.files.input.endsWith(".csv")).toBe(true)
      expect(sorted(ids(run.files.completed))).toEqual([1, 2, 3])
      expect(fs.readFileSync(run.files.completedCsv, "utf8").trim().split("\n")).toHaveLength(4)
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.live("a graceful stop writes only whole records, and a resume completes the rest", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const source = path.join(dir, "stop.jsonl")
    fs.writeFileSync(source, lines(prompts(30)))
    const first = MockProvider.make("mock", { latency: Duration.millis(50) })
    const second = MockProvider.make("mock")
    return Effect.gen(function*() {
      const run = yield* Experiment.run({
        file: source,
        dataFolder: data,
        maxQueries: 600, // one every 100 ms: only the first few are sent before the stop
        stop: Effect.sleep(Duration.millis(150)),
        grace: Duration.seconds(2)
      }).pipe(withMock(first))
      expect(run.stopped).toBe(true)
      expect(run.notDone).toBeGreaterThan(0)
      const after = readJsonl(run.files.completed) // throws on a line that is not whole JSON
      expect(new Set(after.map((record) => record.id)).size).toBe(after.length)
      expect(run.notDone).toBe(30 - after.length)
      expect(fs.readFileSync(run.files.log, "utf8")).toContain("Stop requested")

      const resumed = yield* Experiment.resume({ from: run.files.folder, dataFolder: data, ...fast }).pipe(withMock(second))
      const answered = new Set(after.map((record) => record.id))
      expect(sorted(second.calls.map((call) => call.id))).toEqual(range(1, 30).filter((id) => !answered.has(id)))
      expect(resumed).toMatchObject({ stopped: false, notDone: 0, alreadyDone: after.length })
      expect(sorted(ids(run.files.completed))).toEqual(range(1, 30))
    }).pipe(Effect.provide(NodeContext.layer))
  })

  it.live("a graceful stop gives up the lines waiting for a slot at once: it ends with what is in flight, not the queue", () => {
    const dir = tempDir()
    const source = path.join(dir, "queued.jsonl")
    fs.writeFileSync(source, lines(prompts(300)))
    const mock = MockProvider.make("mock", { latency: Duration.millis(50) })
    return Effect.gen(function*() {
      const started = Date.now()
      const run = yield* Experiment.run({
        file: source,
        dataFolder: path.join(dir, "data"),
        // one every 100 ms: hundreds of lines wait for their slot when the stop comes
        maxQueries: 600,
        stop: Effect.sleep(Duration.millis(300)),
        grace: Duration.seconds(20)
      }).pipe(withMock(mock))
      expect(run.stopped).toBe(true)
      // the grace period is for requests in flight (50 ms), not for the 250-odd lines in line
      expect(Date.now() - started).toBeLessThan(3_000)
      expect(mock.calls.length).toBeLessThan(10)
      expect(run.notDone).toBe(300 - readJsonl(run.files.completed).length)
    }).pipe(Effect.provide(NodeContext.layer))
  })
})
