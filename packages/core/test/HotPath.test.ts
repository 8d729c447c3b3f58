/**
 * The request path's hot path: a plain line whose provider prepares a `Call` is sent without a
 * fiber of its own, and ends exactly as it would on one (the same records and events); what is
 * not an answer goes back to `dispatch`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Layer, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Experiment from "../src/Experiment.js"
import type { IdentifiedRecord } from "../src/PromptRecord.js"
import * as Provider from "../src/Provider.js"
import { TransientError } from "../src/ProviderError.js"
import * as RequestPath from "../src/RequestPath.js"
import * as Scheduler from "../src/Scheduler.js"

const records = (n: number, api = "hot"): ReadonlyArray<IdentifiedRecord> =>
  Array.from({ length: n }, (_, i) => ({ id: `${i}`, api, model_name: "m", prompt: `prompt ${i}` }))

/**
 * A provider whose calls are answered by the test (`answer`), and whose `query` (the fiber way)
 * counts its uses and answers `"by query"`.
 */
const hotProvider = (api = "hot") => {
  const pending = new Map<unknown, (outcome: Provider.Outcome) => void>()
  const state = { prepared: 0, queried: 0, cancelled: 0 }
  const provider: Provider.Provider = {
    api,
    check: () => Effect.succeed([]),
    timesOut: true,
    prepare: (record) =>
      Effect.sync((): Provider.Call => (done) => {
        state.prepared++
        pending.set(record.id, done)
        return () => {
          state.cancelled++
          pending.delete(record.id)
        }
      }),
    query: () =>
      Effect.sync(() => {
        state.queried++
        return { response: "by query" }
      })
  }
  const answer = (id: unknown, outcome: Provider.Outcome) => {
    const done = pending.get(id)
    pending.delete(id)
    done?.(outcome)
  }
  return { provider, pending, state, answer }
}

const collectEvents = () => {
  const events: Array<Scheduler.SchedulerEvent> = []
  return {
    events,
    options: {
      onEvent: (event: Scheduler.SchedulerEvent) => Effect.sync(() => events.push(event)),
      onEventNow: (event: Scheduler.SchedulerEvent) => {
        events.push(event)
        return undefined
      }
    }
  }
}

const run = (input: ReadonlyArray<IdentifiedRecord>, options: Partial<Scheduler.SchedulerOptions> = {}) =>
  Scheduler.run(
    [{ key: "q", queriesPerMinute: 60_000, records: Stream.fromIterable(input) }],
    { maxAttempts: 3, timeout: "10 seconds", retryBackoff: { initial: "1 second", max: "1 second" }, ...options }
  ).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray), Effect.fork)

describe("the hot path", () => {
  it.effect("plain lines are sent as prepared calls, with the records and events of the fiber way", () => {
    const hot = hotProvider()
    const { events, options } = collectEvents()
    return Effect.gen(function*() {
      const fiber = yield* run(records(20), options)
      yield* TestClock.adjust("100 millis")
      expect(hot.pending.size).toBe(20)
      for (const id of [...hot.pending.keys()]) {
        hot.answer(id, Either.right({ response: `answer ${String(id)}`, usage: { total_tokens: 2 } }))
      }
      const done = yield* Fiber.join(fiber)
      expect(hot.state).toEqual({ prepared: 20, queried: 0, cancelled: 0 })
      expect(done.map((record) => record.response).sort()).toEqual(records(20).map((r) => `answer ${r.id}`).sort())
      expect(done.every((record) => record.attempts === 1 && record.error === undefined)).toBe(true)
      expect(Object.keys(done[0]!)).toEqual([
        "id",
        "api",
        "model_name",
        "prompt",
        "timestamp_sent",
        "response",
        "timestamp_received",
        "latency_ms",
        "attempts",
        "usage"
      ])
      expect(events.filter((event) => event._tag === "Sent")).toHaveLength(20)
      expect(events.filter((event) => event._tag === "Completed" && event.ok)).toHaveLength(20)
    }).pipe(Effect.provide(Provider.registryLayer(hot.provider)))
  })

  it.effect("a failed call goes to dispatch as its first attempt: the retry is counted and reported", () => {
    const hot = hotProvider()
    const { events, options } = collectEvents()
    return Effect.gen(function*() {
      const fiber = yield* run(records(1), options)
      yield* TestClock.adjust("10 millis")
      hot.answer("0", Either.left(new TransientError({ message: "503" })))
      yield* TestClock.adjust("2 seconds")
      const [record] = yield* Fiber.join(fiber)
      expect(record).toMatchObject({ response: "by query", attempts: 2 })
      expect(hot.state).toEqual({ prepared: 1, queried: 1, cancelled: 0 })
      expect(events.map((event) => event._tag)).toEqual(["Sent", "Retrying", "Sent", "Completed"])
    }).pipe(Effect.provide(Provider.registryLayer(hot.provider)))
  })

  it.effect("a call not answered within the timeout is cancelled and retried", () => {
    const hot = hotProvider()
    const { events, options } = collectEvents()
    return Effect.gen(function*() {
      const fiber = yield* run(records(1), options)
      yield* TestClock.adjust("10 seconds")
      expect(hot.state.cancelled).toBe(1)
      yield* TestClock.adjust("2 seconds")
      const [record] = yield* Fiber.join(fiber)
      expect(record).toMatchObject({ response: "by query", attempts: 2 })
      const retrying = events.find((event) => event._tag === "Retrying")
      expect(retrying?._tag === "Retrying" && retrying.error._tag).toBe("RequestTimeoutError")
    }).pipe(Effect.provide(Provider.registryLayer(hot.provider)))
  })

  it.effect("ending the run cancels the calls in flight", () => {
    const hot = hotProvider()
    return Effect.gen(function*() {
      const fiber = yield* run(records(5))
      yield* TestClock.adjust("100 millis")
      expect(hot.pending.size).toBe(5)
      yield* Fiber.interrupt(fiber)
      expect(hot.state.cancelled).toBe(5)
      // an answer after the end is ignored
      hot.answer("0", Either.right({ response: "late" }))
    }).pipe(Effect.provide(Provider.registryLayer(hot.provider)))
  })

  it.effect("a path with middleware, or with events that cannot be published at once, sends on fibers", () => {
    const hot = hotProvider()
    const passThrough: RequestPath.Middleware = (next) => next
    return Effect.gen(function*() {
      const route = () => ({ key: "q", queriesPerMinute: 60_000 })
      const wrapped = yield* RequestPath.make({ route, maxAttempts: 1, timeout: "1 second", middleware: [passThrough] })
      expect(wrapped.sendNow).toBeUndefined()
      const observed = yield* RequestPath.make({ route, maxAttempts: 1, timeout: "1 second", onEvent: () => Effect.void })
      expect(observed.sendNow).toBeUndefined()
      const fiber = yield* run(records(3), { onEvent: () => Effect.void })
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect(hot.state).toEqual({ prepared: 0, queried: 3, cancelled: 0 })
    }).pipe(Effect.scoped, Effect.provide(Provider.registryLayer(hot.provider)))
  })

  it.live("a run of the experiment takes the hot path", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-hot-"))
    const source = path.join(dir, "hot.jsonl")
    fs.writeFileSync(source, records(10).map((record) => JSON.stringify(record)).join("\n") + "\n")
    let prepared = 0
    const provider: Provider.Provider = {
      api: "hot",
      check: () => Effect.succeed([]),
      prepare: (record) =>
        Effect.sync((): Provider.Call => (done) => {
          prepared++
          const timer = setTimeout(() => done(Either.right({ response: `answer ${String(record.id)}` })), 1)
          return () => clearTimeout(timer)
        }),
      query: () => Effect.die("the hot path was not taken")
    }
    return Effect.gen(function*() {
      const result = yield* Experiment.run({ file: source, dataFolder: path.join(dir, "data"), maxQueries: 600_000 })
      const completed = fs.readFileSync(result.files.completed, "utf8").trim().split("\n").map((line) => JSON.parse(line))
      expect(completed.map((record) => record.response).sort()).toEqual(records(10).map((r) => `answer ${r.id}`).sort())
      expect(prepared).toBe(10)
      expect(result.stats.queues.get("default")).toMatchObject({ total: 10, sent: 10, succeeded: 10, failed: 0 })
    }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Provider.registryLayer(provider))))
  })
})
