import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, TestClock } from "effect"
import * as Pacer from "../src/internal/pacer.js"

const takeTimes = (pacer: Pacer.Pacer, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.zipRight(pacer.take, Clock.currentTimeMillis))

describe("Pacer", () => {
  it.scoped("hands out slots on a 60 / qpm grid, the first at once", () =>
    Effect.gen(function*() {
      const pacer = yield* Pacer.make(120)
      const fiber = yield* Effect.fork(takeTimes(pacer, 4))
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber)).toEqual([0, 500, 1000, 1500])
    }))

  it.scoped("does not burst after an idle spell: the grid restarts at the next request", () =>
    Effect.gen(function*() {
      const pacer = yield* Pacer.make(60)
      yield* pacer.take
      yield* TestClock.adjust("10 seconds")
      const fiber = yield* Effect.fork(takeTimes(pacer, 3))
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber)).toEqual([10_000, 11_000, 12_000])
    }))

  it.scoped("serves waiters in the order they asked", () =>
    Effect.gen(function*() {
      const pacer = yield* Pacer.make(60)
      const order: Array<string> = []
      const a = yield* Effect.fork(Effect.zipRight(pacer.take, Effect.sync(() => order.push("a"))))
      yield* TestClock.adjust("1 millis")
      const b = yield* Effect.fork(Effect.zipRight(pacer.take, Effect.sync(() => order.push("b"))))
      yield* TestClock.adjust("1 millis")
      const c = yield* Effect.fork(Effect.zipRight(pacer.take, Effect.sync(() => order.push("c"))))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(Fiber.zip(Fiber.zip(a, b), c))
      expect(order).toEqual(["a", "b", "c"])
    }))

  it("catches up a late tick at once, so late timer ticks do not add up to drift", () => {
    // at 1 ms a slot, a step called 1.5 ms late keeps the grid: the next slot is still due at 2
    const first = Pacer.nextSlot(Pacer.emptyGrid, 0, 1)
    const late = Pacer.nextSlot(first.grid, 2.5, 1)
    expect(late.at).toBe(1)
    expect(Pacer.nextSlot(late.grid, 2.5, 1).at).toBe(2)
  })

  it.scoped("after a stall, catches up every slot, a quarter faster than the rate and never in a burst", () =>
    Effect.gen(function*() {
      // 600 QPM: a slot every 100 ms; the caller is busy for 400 ms after its first slot (a
      // lag within a catch-up window of 1 s)
      const pacer = yield* Pacer.make(600, { catchUpMs: 1_000 })
      yield* pacer.take
      yield* TestClock.adjust("400 millis")
      const fiber = yield* Effect.fork(takeTimes(pacer, 25))
      yield* TestClock.adjust("10 seconds")
      const times = yield* Fiber.join(fiber)
      // slot 1 (due at 100) at once, then every 80 ms (the pace counts from 398: a slot up to
      // 2 ms late is a late tick, not a stall) until back on the grid
      expect(times.slice(0, 4)).toEqual([400, 478, 558, 638])
      for (let i = 2; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(80)
      // back on the grid from the 16th slot (1600 ms), none lost: the 25th is at 2500 ms
      expect(times[15]).toBe(1600)
      expect(times.at(-1)).toBe(2500)
    }))

  it.scoped("a lag beyond the catch-up window is an idle spell: the grid restarts", () =>
    Effect.gen(function*() {
      const pacer = yield* Pacer.make(600, { catchUpMs: 300 })
      yield* pacer.take
      yield* TestClock.adjust("1 second")
      const fiber = yield* Effect.fork(takeTimes(pacer, 3))
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber)).toEqual([1000, 1100, 1200])
    }))

  it("the Schedule form gives the same slots", () => {
    const schedule = Pacer.slots(100)
    const run = Effect.gen(function*() {
      const step = (now: number, state: unknown) => schedule.step(now, undefined, state as never)
      const [s1, , d1] = yield* step(0, schedule.initial)
      const [, , d2] = yield* step(450, s1)
      return [d1, d2]
    })
    const [d1, d2] = Effect.runSync(run)
    expect(d1?._tag === "Continue" && d1.intervals).toBeTruthy()
    expect(d2?._tag).toBe("Continue")
  })

  describe("pause", () => {
    it.scoped("hands out no slot before the pause ends, then restarts the grid there (no catch-up burst)", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(60)
        const fiber = yield* Effect.fork(takeTimes(pacer, 5))
        yield* TestClock.adjust("1500 millis")
        // slots at 0 and 1 s are out; the 2 s slot is waited for when the pause comes
        expect(yield* pacer.pauseFor("5 seconds")).toBe(6500)
        yield* TestClock.adjust("20 seconds")
        expect(yield* Fiber.join(fiber)).toEqual([0, 1000, 6500, 7500, 8500])
      }))

    it.scoped("a later pause extends the one in force; an earlier one does not shorten it", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000)
        expect(yield* pacer.pause(3000)).toBe(3000)
        expect(yield* pacer.pause(2000)).toBe(3000)
        const fiber = yield* Effect.fork(takeTimes(pacer, 2))
        yield* TestClock.adjust("2500 millis")
        expect(yield* pacer.pause(4000)).toBe(4000)
        expect(yield* pacer.pausedUntil).toBe(4000)
        yield* TestClock.adjust("5 seconds")
        expect(yield* Fiber.join(fiber)).toEqual([4000, 4010])
      }))

    it.scoped("a short pause keeps the rate: the slot after it is still an interval after the one before", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(60)
        yield* pacer.take
        yield* TestClock.adjust("100 millis")
        yield* pacer.pauseFor("200 millis")
        const fiber = yield* Effect.fork(takeTimes(pacer, 2))
        yield* TestClock.adjust("5 seconds")
        expect(yield* Fiber.join(fiber)).toEqual([1000, 2000])
      }))

    it.scoped("a pause that ended while nobody waited does not leave a burst behind", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(60)
        yield* pacer.take
        yield* TestClock.adjust("500 millis")
        yield* pacer.pauseFor("600 millis") // until 1.1 s; the grid's next slot was 1 s
        yield* TestClock.adjust("605 millis") // a waiter comes 5 ms after the pause
        const fiber = yield* Effect.fork(takeTimes(pacer, 2))
        yield* TestClock.adjust("5 seconds")
        const times = yield* Fiber.join(fiber)
        expect(times).toEqual([1105, 2100])
      }))
  })

  describe("rateLimited", () => {
    it("rateLimitPauseMillis: 1 s, 2 s, 4 s ... capped at 60 s, with equal jitter", () => {
      expect([1, 2, 3, 4, 5, 6, 7, 8].map((level) => Pacer.rateLimitPauseMillis(level, 0.999_999))).toEqual(
        [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]
      )
      expect([1, 2, 3, 7].map((level) => Pacer.rateLimitPauseMillis(level, 0))).toEqual([500, 1000, 2000, 30_000])
      expect(Pacer.rateLimitPauseMillis(2, 0.5, { initial: "100 millis", max: "1 second" })).toBe(150)
    })

    it.scoped("uses the server's retry-after when given, else the backoff; a success starts it again", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000)
        const first = yield* pacer.rateLimited({ sentAt: 0, retryAfterMs: 5000 })
        expect(first).toEqual({ until: 5000, extended: true, reason: "retry_after", level: 1 })
        yield* TestClock.adjust("5 seconds")
        // random 0: half of 1 s * 2^(level-1)
        const second = yield* pacer.rateLimited({ sentAt: 5000 })
        expect(second).toEqual({ until: 6000, extended: true, reason: "backoff", level: 2 })
        // an answer to a request sent before this pause began: the same episode
        const stale = yield* pacer.rateLimited({ sentAt: 4000 })
        expect(stale).toEqual({ until: 6000, extended: false, reason: "backoff", level: 2 })
        yield* TestClock.adjust("1 second")
        // a success sent before the last pause does not reset the backoff
        yield* pacer.succeeded(4500)
        expect((yield* pacer.rateLimited({ sentAt: 6000 })).level).toBe(3)
        yield* TestClock.adjust("10 seconds")
        yield* pacer.succeeded(16_000)
        expect(yield* pacer.rateLimited({ sentAt: 16_000 })).toEqual(
          { until: 16_500, extended: true, reason: "backoff", level: 1 }
        )
      }).pipe(Effect.withRandomFixed([0])))
  })

  it.scoped("holds the queue's concurrency and token limits when it has them", () =>
    Effect.gen(function*() {
      const plain = yield* Pacer.make(60)
      expect(plain.inFlight).toBeUndefined()
      expect(plain.tokens).toBeUndefined()
      const limited = yield* Pacer.make(60, { concurrency: 3, tokensPerMinute: 1000 })
      expect(limited.inFlight).toBeDefined()
      expect(yield* limited.tokens!.available).toBe(1000)
    }))
})
