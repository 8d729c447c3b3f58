import { beforeEach, describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Effect, Fiber, Random, Stream, TestClock } from "effect"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type { IdentifiedRecord } from "../src/PromptRecord.js"
import * as Provider from "../src/Provider.js"
import type { RateLimitInfo } from "../src/Provider.js"
import { RateLimitError, TransientError, PermanentError } from "../src/ProviderError.js"
import * as RequestPath from "../src/RequestPath.js"
import * as Scheduler from "../src/Scheduler.js"
import { MockProvider } from "../src/testing/index.js"

const records = (n: number, api = "mock", prefix = ""): ReadonlyArray<IdentifiedRecord> =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, api, model_name: "m", prompt: `prompt ${i}` }))

/**
 * Whether the mocks prepare their calls (`MockProvider`'s `prepared`), so plain lines take the
 * request path's hot path (no fiber per request): every test runs both ways.
 */
let hotPath = false

const mockOf = (api: string, options: MockProvider.MockOptions = {}) => MockProvider.make(api, { ...options, prepared: hotPath })

/** Options whose `onEvent` (a quick `Effect.sync`) is also given as `onEventNow` on the hot path. */
const withEventsNow = <O extends Partial<Scheduler.SchedulerOptions>>(options: O): O => {
  const onEvent = options.onEvent
  if (!hotPath || onEvent === undefined) return options
  return {
    ...options,
    onEventNow: (event: Scheduler.SchedulerEvent) => {
      Effect.runSync(onEvent(event))
      return undefined
    }
  }
}

const runAll = (
  queues: ReadonlyArray<Scheduler.QueueInput<never, never>>,
  options: Partial<Scheduler.SchedulerOptions> = {}
) =>
  Effect.gen(function*() {
    const fiber = yield* Scheduler.run(queues, withEventsNow({ maxAttempts: 5, timeout: "300 seconds", ...options })).pipe(
      Stream.runCollect,
      Effect.fork
    )
    yield* TestClock.adjust("1 hour")
    return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
  })

/** `runAll` that also returns the scheduler's events. */
const runWithEvents = (
  queues: ReadonlyArray<Scheduler.QueueInput<never, never>>,
  options: Partial<Scheduler.SchedulerOptions> = {}
) =>
  Effect.gen(function*() {
    const events: Array<Scheduler.SchedulerEvent> = []
    const done = yield* runAll(queues, { ...options, onEvent: (event) => Effect.sync(() => events.push(event)) })
    return { done, events }
  })

const gaps = (times: ReadonlyArray<number>): ReadonlyArray<number> => times.slice(1).map((t, i) => t - times[i]!)

/**
 * The send rate of a queue never exceeds its rate: the k-th call is at least k intervals after
 * the first, and while catching up, calls are at most a quarter faster than the rate (a slot up
 * to 2 ms late goes at once).
 */
const expectPaced = (times: ReadonlyArray<number>, queriesPerMinute: number) => {
  const interval = 60_000 / queriesPerMinute
  times.forEach((time, k) => expect(time - times[0]!).toBeGreaterThanOrEqual(k * interval - 1))
  for (const gap of gaps(times)) expect(gap).toBeGreaterThanOrEqual(interval / 1.25 - 2)
}

/** The most calls in flight at once, for a mock whose every call takes `latencyMs`. */
const peakInFlight = (times: ReadonlyArray<number>, latencyMs: number): number =>
  Math.max(...times.map((t) => times.filter((s) => s <= t && t < s + latencyMs).length))

describe.each([false, true])("Scheduler (hot path: %s)", (hot) => {
  beforeEach(() => {
    hotPath = hot
  })

  it.effect("sends 5 prompts at 60 QPM at t = 0, 1, 2, 3, 4 s even when each response takes 10 s", () => {
    const mock = mockOf("mock", { latency: "10 seconds" })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(5)) }])
      expect(MockProvider.callTimes(mock)).toEqual([0, 1000, 2000, 3000, 4000])
      expect(done.map((r) => r.response)).toEqual([0, 1, 2, 3, 4].map((i) => `mock response to ${i}`))
      expect(done.every((r) => r.attempts === 1 && r.latency_ms === 10_000)).toBe(true)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("at 600 QPM with 2 s latency about 20 requests are in flight", () => {
    const mock = mockOf("mock", { latency: "2 seconds" })
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
    const fast = mockOf("fast", { latency: "5 seconds" })
    const slow = mockOf("slow", { latency: "5 seconds" })
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
    const mock = mockOf("mock", {
      latency: "1500 millis",
      respond: (record, attempt) =>
        record.id === "0" && attempt === 1 ? new TransientError({ message: "503 from server" }) : "ok"
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(4)) }], {
        retryBackoff: { initial: "100 millis", max: "1 second" }
      })
      // id 0 fails at t=1.5 s and backs off 80-120 ms, while id 2 already waits for the t=2 s
      // slot: the retry gets t=3 s
      const calls = mock.calls.map((c) => [c.id, c.attempt, c.at])
      expect(calls).toEqual([["0", 1, 0], ["1", 1, 1000], ["2", 1, 2000], ["0", 2, 3000], ["3", 1, 4000]])
      expectPaced(MockProvider.callTimes(mock), 60)
      const retried = done.find((r) => r.id === "0")!
      expect(retried.attempts).toBe(2)
      expect(retried.response).toBe("ok")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("honours max attempts and writes prompto's error wording plus a structured error", () => {
    const mock = mockOf("mock", {
      respond: () => new RateLimitError({ message: "429 Too Many Requests" })
    })
    return Effect.gen(function*() {
      // the rate stays put (`adaptiveRate: false`): this is about the attempts and the wording
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1)) }], {
        maxAttempts: 3,
        adaptiveRate: false
      }).pipe(Effect.withRandomFixed([0.5]))
      // three attempts; each 429 pauses the queue (0.75 s, then 1.5 s from t=1 s) and the retry
      // takes the first slot after the pause that keeps the 60 QPM grid
      expect(mock.calls.map((c) => c.at)).toEqual([0, 1000, 2500])
      expect(done[0]!.response).toBe(
        "An unexpected error occurred when querying the API: (RateLimitError - 429 Too Many Requests) after maximum 3 attempts"
      )
      expect(done[0]!.error).toEqual({ kind: "rate_limited", message: "429 Too Many Requests", attempts: 3 })
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("does not retry a permanent failure", () => {
    const mock = mockOf("mock", {
      respond: () => new PermanentError({ reason: "bad_request", message: "400 invalid temperature" })
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1)) }])
      expect(mock.calls).toHaveLength(1)
      expect(done[0]!.response).toBe("PermanentError - 400 invalid temperature")
      expect(done[0]!.error?.kind).toBe("bad_request")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.scoped("a slow reader holds the queue back: never more than `backlog` records are sent and not yet read", () => {
    const mock = mockOf("mock")
    return Effect.gen(function*() {
      let sent = 0
      const pull = yield* Scheduler.run(
        [{ key: "q", queriesPerMinute: 1e9, records: Stream.fromIterable(records(100)) }],
        withEventsNow({
          maxAttempts: 1,
          timeout: "1 minute",
          backlog: 8,
          onEvent: (event: Scheduler.SchedulerEvent) => Effect.sync(() => event._tag === "Sent" && sent++)
        })
      ).pipe(Stream.toPull)
      let read = 0
      for (let round = 0; round < 100 && read < 100; round++) {
        read += Chunk.size(yield* pull)
        yield* TestClock.adjust("1 second")
        // the queue has filled the backlog again, and no further
        expect(sent - read).toBe(Math.min(8, 100 - read))
      }
      expect(read).toBe(100)
      expect(sent).toBe(100)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("a request that outlives the timeout is retried", () => {
    const mock = mockOf("mock", {
      latency: (record) => (record.id === "0" ? "10 seconds" : "1 second")
    })
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1)) }], {
        timeout: "5 seconds",
        maxAttempts: 2
      })
      // the timeout at t=5 s is transient: the retry backs off 500 ms ±20% first
      const times = MockProvider.callTimes(mock)
      expect(times).toHaveLength(2)
      expect(times[0]).toBe(0)
      expect(times[1]).toBeGreaterThanOrEqual(5400)
      expect(times[1]).toBeLessThanOrEqual(5600)
      expect(done[0]!.error?.kind).toBe("timeout")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("a provider whose waits are calls (timesOut) is timed out by them: each attempt aborted at its deadline", () => {
    const signals: Array<AbortSignal> = []
    const started: Array<number> = []
    const provider: Provider.Provider = {
      api: "calls",
      check: () => Effect.succeed([]),
      timesOut: true,
      // never answers: only the deadline ends it
      query: () =>
        Effect.zipRight(
          Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => started.push(now))),
          Provider.call<Provider.ProviderResponse, never>((_, signal) => {
            signals.push(signal)
          })
        )
    }
    return Effect.gen(function*() {
      const done = yield* runAll([{ key: "q", queriesPerMinute: 60, records: Stream.fromIterable(records(1, "calls")) }], {
        timeout: "5 seconds",
        maxAttempts: 2
      })
      expect(done[0]!.error?.kind).toBe("timeout")
      expect(done[0]!.error?.message).toContain("no response within 5s")
      expect(started).toHaveLength(2)
      expect(started[0]).toBe(0)
      expect(started[1]).toBeGreaterThanOrEqual(5400)
      expect(signals.map((signal) => signal.aborted)).toEqual([true, true])
    }).pipe(Effect.provide(Provider.layer(provider)))
  })

  describe("rate limits", () => {
    it.effect("a 429 with retry-after 5 s pauses its queue only; it resumes at its rate without a burst", () => {
      const limited = mockOf("limited", {
        latency: "100 millis",
        respond: (record, attempt) =>
          record.id === "1" && attempt === 1
            ? new RateLimitError({ message: "429 Too Many Requests", retryAfterMs: 5000 })
            : "ok"
      })
      const other = mockOf("other", { latency: "100 millis" })
      return Effect.gen(function*() {
        // the rate stays put (`adaptiveRate: false`; see "adaptive rate" below for the other case)
        const { done, events } = yield* runWithEvents([
          { key: "limited", queriesPerMinute: 60, records: Stream.fromIterable(records(6, "limited")) },
          { key: "other", queriesPerMinute: 60, records: Stream.fromIterable(records(10, "other")) }
        ], { adaptiveRate: false })
        // id 1 is sent at 1 s and answers 429 at 1.1 s: nothing is sent on its queue until 6.1 s
        const times = MockProvider.callTimes(limited)
        expect(times.filter((t) => t > 1100 && t < 6100)).toEqual([])
        // then one send per second again, the grid restarted at the end of the pause
        expect(times).toEqual([0, 1000, 6100, 7100, 8100, 9100, 10_100])
        expect(limited.calls.map((c) => [c.id, c.attempt])).toEqual(
          [["0", 1], ["1", 1], ["2", 1], ["1", 2], ["3", 1], ["4", 1], ["5", 1]]
        )
        expectPaced(times, 60)
        // the other queue carries on at its rate during the pause
        expect(MockProvider.callTimes(other)).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000])
        const paused = events.filter((e) => e._tag === "Paused")
        expect(paused).toEqual([
          expect.objectContaining({ queue: "limited", id: "1", at: 1100, until: 6100, reason: "retry_after", level: 0 })
        ])
        expect(done.every((r) => r.response === "ok" || r.response === "mock response to " + String(r.id))).toBe(true)
        expect(done.find((r) => r.id === "1" && r.api === "limited")?.attempts).toBe(2)
      }).pipe(Effect.provide(MockProvider.layer(limited, other)))
    })

    it.effect("429s answered to requests sent before the pause do not lengthen it or grow the backoff", () => {
      // three requests in flight when the first 429 arrives, all answered 429 with the same retry-after
      const mock = mockOf("mock", {
        latency: "1 second",
        respond: (_, attempt) => attempt === 1 ? new RateLimitError({ message: "429", retryAfterMs: 2000 }) : "ok"
      })
      return Effect.gen(function*() {
        const { events } = yield* runWithEvents([
          { key: "q", queriesPerMinute: 600, records: Stream.fromIterable(records(3)) }
        ])
        // sent at 0, 100, 200; answered at 1000, 1100, 1200: each retry-after pushes the end a
        // little; a retry-after is no step of the backoff (level 0)
        const paused = events.filter((e) => e._tag === "Paused")
        expect(paused.map((e) => e._tag === "Paused" && [e.at, e.until, e.level])).toEqual([
          [1000, 3000, 0],
          [1100, 3100, 0],
          [1200, 3200, 0]
        ])
        // one episode: the rate is lowered once, to 420 QPM (a send every 142.9 ms)
        const rates = events.flatMap((e) => e._tag === "RateChanged" ? [[e.at, e.queriesPerMinute, e.reason]] : [])
        expect(rates[0]).toEqual([1000, 420, "rate_limited"])
        expect(rates.filter(([, , reason]) => reason === "rate_limited")).toHaveLength(1)
        const times = MockProvider.callTimes(mock)
        expect(times.slice(0, 4)).toEqual([0, 100, 200, 3200])
        expect(times[4]).toBeCloseTo(3200 + 60_000 / 420, 6)
        expect(times[5]).toBeCloseTo(3200 + 2 * 60_000 / 420, 6)
        expectPaced(times, 600)
      }).pipe(Effect.provide(MockProvider.layer(mock)))
    })

    it.effect("a 429 without retry-after: the pause doubles with each consecutive 429, within its jitter", () =>
      Effect.forEach([1, 2, 3, 42], (seed) => {
        const mock = mockOf("mock", { respond: () => new RateLimitError({ message: "529 overloaded" }) })
        return Effect.gen(function*() {
          const { events } = yield* runWithEvents([
            { key: "q", queriesPerMinute: 6000, records: Stream.fromIterable(records(1)) }
          ], { maxAttempts: 6 })
          const times = MockProvider.callTimes(mock)
          expect(times).toHaveLength(6)
          // pause n is in [d / 2, d] for d = 1 s * 2^(n-1); the 10 ms grid adds nothing after a pause
          gaps(times).forEach((gap, i) => {
            expect(gap).toBeGreaterThanOrEqual(500 * 2 ** i)
            expect(gap).toBeLessThanOrEqual(1000 * 2 ** i)
          })
          const paused = events.flatMap((e) => e._tag === "Paused" ? [e] : [])
          expect(paused.map((e) => [e.level, e.reason])).toEqual(
            [1, 2, 3, 4, 5, 6].map((level) => [level, "backoff"])
          )
          expect(paused.slice(0, 5).map((e) => e.until)).toEqual(times.slice(1))
        }).pipe(Effect.provide(MockProvider.layer(mock)), Effect.withRandom(Random.make(seed)))
      }))

    it.effect("the backoff is capped, and starts again after a success", () => {
      // calls 1, 2 and 4 answer 529 without retry-after; random 0 gives the lower end: d / 2
      const mock = mockOf("mock", {
        respond: () => [1, 2, 4].includes(mock.calls.length) ? new RateLimitError({ message: "529 overloaded" }) : "ok"
      })
      const capped = mockOf("capped", { respond: () => new RateLimitError({ message: "429" }) })
      return Effect.gen(function*() {
        // the rate stays put (`adaptiveRate: false`): this is about the backoff
        const { events } = yield* runWithEvents([
          { key: "q", queriesPerMinute: 6000, records: Stream.fromIterable(records(3)) }
        ], { adaptiveRate: false })
        const paused = events.flatMap((e) => e._tag === "Paused" ? [[e.id, e.at, e.until, e.level]] : [])
        // id 0 at 0 (level 1: 0.5 s). On a fiber per line, id 1 is already waiting for the next
        // slot when the 429 comes, keeps it and is sent at 0.5 s (level 2: 1 s); id 0's retry goes
        // ahead of the prompts not yet sent and succeeds at 1.5 s, so id 1's retry, refused at
        // 1.51 s, is level 1 again. On the hot path the feed has not yet asked for id 1's slot
        // when id 0's retry does: the retry goes first (level 2), succeeds at 1.5 s, and id 1,
        // refused at 1.51 s, is level 1 again
        expect(paused).toEqual(
          hot
            ? [["0", 0, 500, 1], ["0", 500, 1500, 2], ["1", 1510, 2010, 1]]
            : [["0", 0, 500, 1], ["1", 500, 1500, 2], ["1", 1510, 2010, 1]]
        )
        expect(mock.calls.map((c) => [c.id, c.at])).toEqual(
          hot
            ? [["0", 0], ["0", 500], ["0", 1500], ["1", 1510], ["1", 2010], ["2", 2020]]
            : [["0", 0], ["1", 500], ["0", 1500], ["1", 1510], ["1", 2010], ["2", 2020]]
        )

        const cappedRun = yield* runWithEvents([
          { key: "capped", queriesPerMinute: 6000, records: Stream.fromIterable(records(1, "capped")) }
        ], { maxAttempts: 5, rateLimitBackoff: { initial: "1 second", max: "3 seconds" } })
        // d = 1 s, 2 s, 3 s, 3 s (capped), paused for d / 2
        expect(gaps(MockProvider.callTimes(capped))).toEqual([500, 1000, 1500, 1500])
        expect(cappedRun.events.filter((e) => e._tag === "Paused")).toHaveLength(5)
      }).pipe(Effect.provide(MockProvider.layer(mock, capped)), Effect.withRandomFixed([0]))
    })

    it.effect("retries are bounded by maxAttempts, for 429s and transient errors alike", () => {
      const limited = mockOf("limited", {
        respond: () => new RateLimitError({ message: "429", retryAfterMs: 1000 })
      })
      const flaky = mockOf("flaky", { respond: () => new TransientError({ message: "503" }) })
      return Effect.gen(function*() {
        const done = yield* runAll([
          { key: "limited", queriesPerMinute: 60, records: Stream.fromIterable(records(2, "limited")) },
          { key: "flaky", queriesPerMinute: 60, records: Stream.fromIterable(records(2, "flaky")) }
        ], { maxAttempts: 4 })
        expect(limited.calls).toHaveLength(8)
        expect(flaky.calls).toHaveLength(8)
        expect(done.map((r) => r.attempts)).toEqual([4, 4, 4, 4])
        expect(done.every((r) => String(r.response).endsWith("after maximum 4 attempts"))).toBe(true)
        expectPaced(MockProvider.callTimes(limited), 60)
        expectPaced(MockProvider.callTimes(flaky), 60)
      }).pipe(Effect.provide(MockProvider.layer(limited, flaky)))
    })
  })

  describe("adaptive rate", () => {
    /**
     * A server that allows `limit` requests per `windowMs` as a sliding window (a request is
     * accepted when fewer than `limit` were accepted in the window before it; `retry-after`: until
     * the oldest of them leaves the window).
     */
    const slidingWindow = (limit: number, windowMs: number) => {
      const accepted: Array<number> = []
      let oldest = 0
      return (now: number): number | undefined => {
        while (oldest < accepted.length && accepted[oldest]! <= now - windowMs) oldest++
        if (accepted.length - oldest < limit) {
          accepted.push(now)
          return undefined
        }
        return accepted[oldest]! + windowMs - now
      }
    }

    /**
     * A server that allows `perMinute` requests as a token bucket of `capacity` refilled
     * continuously (as OpenAI's limits behave: `retry-after` is the time to the next token).
     */
    const tokenBucket = (perMinute: number, capacity: number) => {
      let tokens = capacity
      let at = 0
      return (now: number): number | undefined => {
        tokens = Math.min(capacity, tokens + ((now - at) * perMinute) / 60_000)
        at = now
        if (tokens >= 1) {
          tokens--
          return undefined
        }
        return ((1 - tokens) * 60_000) / perMinute
      }
    }

    /** `n` prompts at `qpm` against a limiter: 429s come back in 50 ms, answers in 1 s. */
    const against = (limiter: (now: number) => number | undefined, n: number, qpm: number, options: Partial<Scheduler.SchedulerOptions> = {}) =>
      Effect.gen(function*() {
        const mock = mockOf("mock", {
          respond: () =>
            Effect.gen(function*() {
              const retryAfterMs = limiter(yield* Clock.currentTimeMillis)
              if (retryAfterMs !== undefined) {
                yield* Effect.sleep("50 millis")
                return yield* new RateLimitError({ message: "429 Too Many Requests", retryAfterMs })
              }
              yield* Effect.sleep("1 second")
              return "ok"
            })
        })
        const { done, events } = yield* runWithEvents(
          [{ key: "q", queriesPerMinute: qpm, records: Stream.fromIterable(records(n)) }],
          { maxAttempts: 5, ...options }
        ).pipe(Effect.provide(MockProvider.layer(mock)))
        const sent = events.filter((e) => e._tag === "Sent").length
        const limited = sent - done.filter((r) => r.error === undefined).length -
          done.filter((r) => r.error !== undefined && r.error.kind !== "rate_limited").length
        const rates = events.flatMap((e) => e._tag === "RateChanged" ? [e.queriesPerMinute] : [])
        return { done, events, sent, limited, share: limited / sent, lowest: Math.min(qpm, ...rates) }
      })

    it.effect("done means: 1,200 QPM configured against a server that allows 300 a minute (sliding window): under 5 % 429s, none fails", () =>
      Effect.gen(function*() {
        const run = yield* against(slidingWindow(300, 60_000), 900, 1200)
        console.log(`sliding window 300/min, 1,200 QPM configured: ${run.sent} requests, ${run.limited} 429s (${(100 * run.share).toFixed(1)} %), lowest rate ${run.lowest.toFixed(0)} QPM`)
        expect(run.done).toHaveLength(900)
        expect(run.done.filter((r) => r.error !== undefined)).toEqual([])
        expect(run.share).toBeLessThan(0.05)
      }), 60_000)

    it.effect("done means, against a token bucket (300 a minute, 10 at once, as OpenAI's limits refill): under 5 % 429s, none fails", () =>
      Effect.gen(function*() {
        const run = yield* against(tokenBucket(300, 10), 900, 1200)
        console.log(`token bucket 300/min, 1,200 QPM configured: ${run.sent} requests, ${run.limited} 429s (${(100 * run.share).toFixed(1)} %), lowest rate ${run.lowest.toFixed(0)} QPM`)
        expect(run.done.filter((r) => r.error !== undefined)).toEqual([])
        expect(run.share).toBeLessThan(0.05)
        // it settles near the server's rate: the queue ran at about 300 a minute
        const sends = run.events.flatMap((e) => e._tag === "Sent" ? [e.at] : [])
        const perMinute = ((sends.length - 1) / (sends.at(-1)! - sends[0]!)) * 60_000
        expect(perMinute).toBeGreaterThan(250)
        expect(perMinute).toBeLessThan(320)
      }), 60_000)

    /**
     * OpenAI's limits as its headers state them: a bucket of `perMinute` requests refilled at
     * `perMinute` a minute, every answer carrying the limit, what is left and the time until the
     * bucket is full again (`x-ratelimit-*-requests`); a 429 carries them too, without retry-after.
     */
    const statedBucket = (perMinute: number) => {
      let tokens = perMinute
      let at = 0
      return (now: number): { readonly ok: boolean; readonly rateLimit: RateLimitInfo } => {
        tokens = Math.min(perMinute, tokens + ((now - at) * perMinute) / 60_000)
        at = now
        const ok = tokens >= 1
        if (ok) tokens--
        const rateLimit = {
          limitRequests: perMinute,
          remainingRequests: Math.floor(tokens),
          resetRequestsMs: ((perMinute - tokens) * 60_000) / perMinute
        }
        return { ok, rateLimit }
      }
    }

    /** `n` prompts at `qpm` against a bucket that states its limits, read or not (`ignoreHeaders`). */
    const againstStated = (n: number, qpm: number, ignoreHeaders: boolean) =>
      Effect.gen(function*() {
        const bucket = statedBucket(300)
        const mock = mockOf("mock", {
          respond: () =>
            Effect.gen(function*() {
              const { ok, rateLimit } = bucket(yield* Clock.currentTimeMillis)
              const stated = ignoreHeaders ? {} : { rateLimit }
              if (!ok) {
                yield* Effect.sleep("50 millis")
                return yield* new RateLimitError({ message: "429 Too Many Requests", ...stated })
              }
              yield* Effect.sleep("1 second")
              return { response: "ok", ...stated }
            })
        })
        const { done, events } = yield* runWithEvents(
          [{ key: "q", queriesPerMinute: qpm, records: Stream.fromIterable(records(n)) }],
          { maxAttempts: 5 }
        ).pipe(Effect.provide(MockProvider.layer(mock)))
        const sent = events.filter((e) => e._tag === "Sent").length
        const limited = sent - done.length
        const headerCaps = events.filter((e) => e._tag === "RateChanged" && e.reason === "headers").length
        return { done, sent, limited, share: limited / sent, headerCaps }
      })

    it.effect("reading OpenAI's rate-limit headers, the queue slows down before the 429s start (1,200 QPM against 300 a minute)", () =>
      Effect.gen(function*() {
        const read = yield* againstStated(600, 1200, false)
        const blind = yield* againstStated(600, 1200, true)
        console.log(
          `stated bucket 300/min, 1,200 QPM configured: headers read ${read.limited} 429s of ${read.sent} ` +
            `(${(100 * read.share).toFixed(1)} %), headers ignored ${blind.limited} of ${blind.sent} (${(100 * blind.share).toFixed(1)} %)`
        )
        expect(read.done.filter((r) => r.error !== undefined)).toEqual([])
        expect(read.headerCaps).toBeGreaterThan(0)
        // the bucket's 300 go at 1,200 a minute, then the rate follows its refill: the in-flight
        // requests of the second before the cap are the only ones refused
        expect(read.share).toBeLessThan(0.01)
        expect(read.limited).toBeLessThan(blind.limited)
      }), 60_000)

    it.effect("without adapting, the same token bucket answers 429 to a large share (the issue's 574 of 1,243)", () =>
      Effect.gen(function*() {
        const run = yield* against(tokenBucket(300, 10), 300, 1200, { adaptiveRate: false })
        console.log(`token bucket, not adapting: ${run.sent} requests, ${run.limited} 429s (${(100 * run.share).toFixed(1)} %)`)
        expect(run.share).toBeGreaterThan(0.3)
      }), 60_000)
  })

  describe("transient backoff", () => {
    it.effect("a transient failure backs off exponentially with jitter before the retry takes a slot", () =>
      Effect.forEach([1, 7, 99], (seed) => {
        const mock = mockOf("mock", {
          respond: (_, attempt) => attempt <= 4 ? new TransientError({ message: "503 from server" }) : "ok"
        })
        return Effect.gen(function*() {
          const done = yield* runAll([{ key: "q", queriesPerMinute: 6000, records: Stream.fromIterable(records(1)) }])
          const times = MockProvider.callTimes(mock)
          expect(times).toHaveLength(5)
          // retry n waits 500 ms * 2^(n-1) ±20% (then the next 10 ms slot, due long before)
          gaps(times).forEach((gap, i) => {
            expect(gap).toBeGreaterThanOrEqual(0.8 * 500 * 2 ** i)
            expect(gap).toBeLessThanOrEqual(1.2 * 500 * 2 ** i + 1)
          })
          expect(done[0]!.attempts).toBe(5)
          expect(done[0]!.response).toBe("ok")
        }).pipe(Effect.provide(MockProvider.layer(mock)), Effect.withRandom(Random.make(seed)))
      }))

    it.effect("the transient backoff is capped, and never skips the queue's rate", () => {
      const mock = mockOf("mock", {
        latency: "50 millis",
        respond: (record, attempt) => record.id === "0" && attempt <= 3 ? new TransientError({ message: "503" }) : "ok"
      })
      return Effect.gen(function*() {
        yield* runAll([{ key: "q", queriesPerMinute: 120, records: Stream.fromIterable(records(6)) }], {
          retryBackoff: { initial: "200 millis", max: "300 millis" }
        })
        const retries = mock.calls.filter((c) => c.id === "0").map((c) => c.at)
        expect(retries).toHaveLength(4)
        // each retry: failure 50 ms after the send, at most 300 ms of backoff, then the next free slot
        gaps(retries).forEach((gap) => expect(gap).toBeGreaterThanOrEqual(50 + 160))
        expectPaced(MockProvider.callTimes(mock), 120)
      }).pipe(Effect.provide(MockProvider.layer(mock)), Effect.withRandom(Random.make(3)))
    })

    it.effect("retryPolicy: a transient error waits the backoff, a 429 waits nothing here, a permanent error stops", () =>
      Effect.gen(function*() {
        const policy = Scheduler.retryPolicy(3, { initial: "1 second", max: "10 seconds" })
        const transient = new TransientError({ message: "503" })
        const limited = new RateLimitError({ message: "429" })
        const permanent = new PermanentError({ reason: "auth", message: "401" })
        type Input = TransientError | RateLimitError | PermanentError
        const step = (now: number, input: Input, state: unknown) => policy.step(now, input, state as never)
        /** When the next attempt may start, or "done". */
        const next = (decision: ScheduleDecision.ScheduleDecision) =>
          ScheduleDecision.isContinue(decision) ? ScheduleIntervals.start(decision.intervals) : "done"
        // random 0.5: the jitter factor is 1
        const [s1, , d1] = yield* step(0, transient, policy.initial)
        expect(next(d1)).toBe(1000)
        const [s2, , d2] = yield* step(5000, limited, s1)
        expect(next(d2)).toBe(5000)
        // the third failure of a 3-attempt policy: no more retries
        const [, , d3] = yield* step(6000, transient, s2)
        expect(next(d3)).toBe("done")
        const [, , d4] = yield* step(0, permanent, policy.initial)
        expect(next(d4)).toBe("done")
      }).pipe(Effect.withRandomFixed([0.5])))
  })

  describe("concurrency and tokens per minute", () => {
    it.effect("concurrency 2 at 600 QPM with 1 s latency: never more than 2 in flight", () => {
      const mock = mockOf("mock", {
        latency: "1 second",
        respond: (record, attempt) => record.id === "3" && attempt === 1 ? new TransientError({ message: "503" }) : "ok"
      })
      return Effect.gen(function*() {
        let inFlight = 0
        let peak = 0
        const done = yield* runAll([
          { key: "q", queriesPerMinute: 600, concurrency: 2, records: Stream.fromIterable(records(8)) }
        ], {
          retryBackoff: { initial: "100 millis", max: "100 millis" },
          onEvent: (event) =>
            Effect.sync(() => {
              if (event._tag === "Sent") peak = Math.max(peak, ++inFlight)
              if (event._tag === "Retrying" || (event._tag === "Completed")) inFlight--
            })
        })
        const times = MockProvider.callTimes(mock)
        expect(peakInFlight(times, 1000)).toBe(2)
        expect(peak).toBeLessThanOrEqual(2)
        // two sends a slot apart, then two more when the responses free their permits
        expect(times.slice(0, 4)).toEqual([0, 100, 1000, 1100])
        expect(times).toHaveLength(9)
        expectPaced(times, 600)
        expect(done).toHaveLength(8)
        expect(done.every((r) => r.response === "ok")).toBe(true)
      }).pipe(Effect.provide(MockProvider.layer(mock)), Effect.withRandomFixed([0.5]))
    })

    const tokenRecords = (n: number): ReadonlyArray<IdentifiedRecord> =>
      // 400 characters (100 tokens) plus max_tokens 900: estimated at 1000 tokens
      Array.from({ length: n }, (_, i) => ({
        id: i,
        api: "mock",
        model_name: "m",
        prompt: "x".repeat(400),
        parameters: { max_tokens: 900 }
      }))

    it.effect("tpm 6000 with prompts estimated at 1000 tokens: about 6 per minute go out", () => {
      const mock = mockOf("mock", { latency: "1 second" })
      return Effect.gen(function*() {
        yield* runAll([
          { key: "q", queriesPerMinute: 600, tokensPerMinute: 6000, records: Stream.fromIterable(tokenRecords(20)) }
        ])
        const times = MockProvider.callTimes(mock)
        // the full bucket lets 6 go at the queue's rate, then one every 10 s as it refills
        expect(times.slice(0, 8)).toEqual([0, 100, 200, 300, 400, 500, 10_000, 20_000])
        expect(times.filter((t) => t >= 60_000 && t < 120_000)).toHaveLength(6)
        expectPaced(times, 600)
      }).pipe(Effect.provide(MockProvider.layer(mock)))
    })

    it.effect("tpm: the charge is corrected from the reported usage, so small answers let more through", () => {
      const small = mockOf("mock", {
        latency: "1 second",
        respond: () => ({ response: "ok", usage: { prompt_tokens: 100, completion_tokens: 100, total_tokens: 200 } })
      })
      return Effect.gen(function*() {
        yield* runAll([
          { key: "q", queriesPerMinute: 600, tokensPerMinute: 6000, records: Stream.fromIterable(tokenRecords(20)) }
        ])
        const times = MockProvider.callTimes(small)
        // each response refunds 800 of its 1000 tokens: the 20 prompts go out within 5 s, where
        // without the correction only 6 go in the first 10 s (previous test)
        expect(times).toHaveLength(20)
        expect(times.slice(0, 7)).toEqual([0, 100, 200, 300, 400, 500, 1100])
        expect(times[19]).toBeLessThan(5000)
        expectPaced(times, 600)
      }).pipe(Effect.provide(MockProvider.layer(small)))
    })
  })

  describe("the request path", () => {
    it.scoped("a route's concurrency and token limits reach its queue", () => {
      const mock = mockOf("mock", { latency: "1 second" })
      return Effect.gen(function*() {
        const path = yield* RequestPath.make({
          route: () => ({ key: "q", queriesPerMinute: 600, concurrency: 1 }),
          maxAttempts: 3,
          timeout: "1 minute"
        })
        const fiber = yield* Effect.forEach(records(5), (record) => path.send({ record }), { concurrency: "unbounded" }).pipe(
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        expect((yield* Fiber.join(fiber)).length).toBe(5)
        expect(MockProvider.callTimes(mock)).toEqual([0, 1000, 2000, 3000, 4000])
      }).pipe(Effect.provide(MockProvider.layer(mock)))
    })

    it.scoped("a 429 on a routed queue pauses that queue", () => {
      const mock = mockOf("mock", {
        respond: () =>
          // the first call answers 429
          mock.calls.length === 1 ? new RateLimitError({ message: "429", retryAfterMs: 3000 }) : "ok"
      })
      return Effect.gen(function*() {
        const events: Array<Scheduler.SchedulerEvent> = []
        const path = yield* RequestPath.make({
          route: () => ({ key: "judge/q", queriesPerMinute: 60 }),
          maxAttempts: 3,
          timeout: "1 minute",
          adaptiveRate: false,
          onEvent: (e) => Effect.sync(() => events.push(e))
        })
        const fiber = yield* Effect.forEach(records(3), (record) => path.send({ record }), { concurrency: "unbounded" }).pipe(
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        yield* Fiber.join(fiber)
        expect(MockProvider.callTimes(mock)).toEqual([0, 3000, 4000, 5000])
        expect(events.filter((e) => e._tag === "Paused").map((e) => e.queue)).toEqual(["judge/q"])
      }).pipe(Effect.provide(MockProvider.layer(mock)))
    })
  })
})
