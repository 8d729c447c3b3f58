import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream, TestClock } from "effect"
import type { IdentifiedRecord } from "../src/PromptRecord.js"
import { RateLimitError, TransientError, PermanentError } from "../src/ProviderError.js"
import * as Scheduler from "../src/Scheduler.js"
import { MockProvider } from "../src/testing/index.js"

const records = (n: number, api = "mock", prefix = ""): ReadonlyArray<IdentifiedRecord> =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, api, model_name: "m", prompt: `prompt ${i}` }))

const runAll = (
  queues: ReadonlyArray<Scheduler.QueueInput<never, never>>,
  options: Partial<Scheduler.SchedulerOptions> = {}
) =>
  Effect.gen(function*() {
    const fiber = yield* Scheduler.run(queues, { maxAttempts: 5, timeout: "300 seconds", ...options }).pipe(
      Stream.runCollect,
      Effect.fork
    )
    yield* TestClock.adjust("1 hour")
    return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
  })

describe("Scheduler", () => {
  it.effect("sends 5 prompts at 60 QPM at t = 0, 1, 2, 3, 4 s even when each response takes 10 s", () => {
    const mock = MockProvider.make("mock", { latency: "10 seconds" })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(5)) }])
      expect(MockProvider.callTimes(mock)).toEqual([0, 1000, 2000, 3000, 4000])
      expect(done.map((r) => r.response)).toEqual([0, 1, 2, 3, 4].map((i) => `mock response to ${i}`))
      expect(done.every((r) => r.attempts === 1 && r.latency_ms === 10_000)).toBe(true)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("at 600 QPM with 2 s latency about 20 requests are in flight", () => {
    const mock = MockProvider.make("mock", { latency: "2 seconds" })
    return Effect.gen(function*() {
      let inFlight = 0
      let peak = 0
      yield* runAll([{ key: "q", queriesPerMinute: 600, records: Stream.fromIterable(records(100)) }], {
        onEvent: (event) =>
          Effect.sync(() => {
            if (event._tag === "Sent") peak = Math.max(peak, ++inFlight)
            if (event._tag === "Completed") inFlight--
          })
      })
      // 2 s / 100 ms = 20; at the instant a response arrives the next send may come first
      expect(peak).toBeGreaterThanOrEqual(20)
      expect(peak).toBeLessThanOrEqual(21)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("two queues at different rates run at once and interleave", () => {
    const fast = MockProvider.make("fast", { latency: "5 seconds" })
    const slow = MockProvider.make("slow", { latency: "5 seconds" })
    return Effect.gen(function*() {
      yield* runAll([
        { key: "fast", queriesPerMinute: 120, records: Stream.fromIterable(records(4, "fast")) },
        { key: "slow", queriesPerMinute: 30, records: Stream.fromIterable(records(2, "slow")) }
      ])
      expect(MockProvider.callTimes(fast)).toEqual([0, 500, 1000, 1500])
      expect(MockProvider.callTimes(slow)).toEqual([0, 2000])
    }).pipe(Effect.provide(MockProvider.layer(fast, slow)))
  })

  it.effect("a retryable failure re-enters its queue and is sent again on a later slot", () => {
    const mock = MockProvider.make("mock", {
      latency: "1500 millis",
      respond: (record, attempt) =>
        record.id === "0" && attempt === 1 ? new TransientError({ message: "503 from server" }) : "ok"
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(4)) }])
      // id 0 fails at t=1.5 s, while id 2 already waits for the t=2 s slot: the retry gets t=3 s
      const calls = mock.calls.map((c) => [c.id, c.attempt, c.at])
      expect(calls).toEqual([["0", 1, 0], ["1", 1, 1000], ["2", 1, 2000], ["0", 2, 3000], ["3", 1, 4000]])
      const retried = done.find((r) => r.id === "0")!
      expect(retried.attempts).toBe(2)
      expect(retried.response).toBe("ok")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("honours max attempts and writes prompto's error wording plus a structured error", () => {
    const mock = MockProvider.make("mock", {
      respond: () => new RateLimitError({ message: "429 Too Many Requests" })
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1)) }], { maxAttempts: 3 })
      expect(mock.calls.map((c) => c.at)).toEqual([0, 1000, 2000])
      expect(done[0]!.response).toBe(
        "An unexpected error occurred when querying the API: (RateLimitError - 429 Too Many Requests) after maximum 3 attempts"
      )
      expect(done[0]!.error).toEqual({ kind: "rate_limited", message: "429 Too Many Requests", attempts: 3 })
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("does not retry a permanent failure", () => {
    const mock = MockProvider.make("mock", {
      respond: () => new PermanentError({ reason: "bad_request", message: "400 invalid temperature" })
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1)) }])
      expect(mock.calls).toHaveLength(1)
      expect(done[0]!.response).toBe("PermanentError - 400 invalid temperature")
      expect(done[0]!.error?.kind).toBe("bad_request")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("a request that outlives the timeout is retried", () => {
    const mock = MockProvider.make("mock", {
      latency: (record) => (record.id === "0" ? "10 seconds" : "1 second")
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1)) }], {
        timeout: "5 seconds",
        maxAttempts: 2
      })
      expect(mock.calls.map((c) => c.at)).toEqual([0, 5000])
      expect(done[0]!.error?.kind).toBe("timeout")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })
})
