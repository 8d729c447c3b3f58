import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, TestClock } from "effect"
import * as Pacer from "../src/internal/pacer.js"
import * as Dispatch from "../src/internal/dispatch.js"

const takeTimes = (pacer: Pacer.Pacer, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.zipRight(pacer.take, Clock.currentTimeMillis))

/**
 * Checks every window: for any two sends `i < j`, every half-open window longer than
 * `t_j - t_i` holds the `j - i + 1` sends from `i` to `j`, so that many must be allowed in a
 * window just longer than that span (`allowedSends` grows with the window, so this is the
 * tightest window holding them). Times in any order.
 */
const expectWithinBound = (unsorted: ReadonlyArray<number>, intervalMs: number) => {
  const times = [...unsorted].sort((a, b) => a - b)
  for (let i = 0; i < times.length; i++) {
    for (let j = i + 1; j < times.length; j++) {
      const span = times[j]! - times[i]!
      if (j - i + 1 > Pacer.allowedSends(span + 1e-3, intervalMs)) {
        throw new Error(
          `${j - i + 1} sends within ${span} ms (from ${times[i]} to ${times[j]}), ` +
            `more than the ${Pacer.allowedSends(span + 1e-3, intervalMs)} a window of ${span + 1e-3} ms allows`
        )
      }
    }
  }
}

/** A seeded generator of numbers in [0, 1) (a linear congruential one: reproducible patterns). */
const seeded = (seed: number) => {
  let x = seed >>> 0
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return x / 2 ** 32
  }
}

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

  it.scoped("after a stall, catches up one slot and no more: later windows hold no more than the rate allows", () =>
    Effect.gen(function*() {
      // 600 QPM: a slot every 100 ms; the caller is busy for 400 ms after its first slot (a
      // lag within a catch-up window of 1 s), so the slots due at 100, 200 and 300 are missed
      const pacer = yield* Pacer.make(600, { catchUpMs: 1_000 })
      yield* pacer.take
      yield* TestClock.adjust("400 millis")
      const fiber = yield* Effect.fork(takeTimes(pacer, 25))
      yield* TestClock.adjust("10 seconds")
      const times = [0, ...(yield* Fiber.join(fiber))]
      // the first missed slot at once, then a quarter faster than the rate until the one extra
      // slot a short window allows is used up (at 800 ms), then at the rate
      expect(times.slice(0, 8)).toEqual([0, 400, 478, 558, 638, 718, 800, 900])
      // but the catch-up is paid back: the ten sends from the first late one (400 ms) went in
      // less than a second, so the eleventh waits for 1,400 ms. A queue that keeps up its rate
      // cannot make up a stall without a full second holding more than ten: the lag stays 300 ms
      expect(times.at(-1)).toBe(2800)
      expectWithinBound(times, 100)
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
        // at one send a second, the next may not go before a second after the last: 2105, not
        // the grid's 2100 (a 1 s window would hold two)
        expect(times).toEqual([1105, 2105])
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

    it.scoped("uses the server's retry-after when given, else the backoff; only answers without retry-after raise it", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000, { adaptiveRate: false })
        const first = yield* pacer.rateLimited({ sentAt: 0, retryAfterMs: 5000 })
        // the server said how long: no step of the backoff
        expect(first).toEqual({ until: 5000, extended: true, reason: "retry_after", level: 0, rate: undefined })
        yield* TestClock.adjust("5 seconds")
        // random 0: half of 1 s * 2^(level-1)
        const second = yield* pacer.rateLimited({ sentAt: 5000 })
        expect(second).toEqual({ until: 5500, extended: true, reason: "backoff", level: 1, rate: undefined })
        // an answer to a request sent before this pause began: the same episode
        const stale = yield* pacer.rateLimited({ sentAt: 4000 })
        expect(stale).toEqual({ until: 5500, extended: false, reason: "backoff", level: 1, rate: undefined })
        yield* TestClock.adjust("1 second")
        expect((yield* pacer.rateLimited({ sentAt: 6000 })).level).toBe(2)
        yield* TestClock.adjust("10 seconds")
        // any success ends the backoff, even one sent before the last pause began
        yield* pacer.succeeded(5800)
        expect(yield* pacer.rateLimited({ sentAt: 16_000 })).toEqual(
          { until: 16_500, extended: true, reason: "backoff", level: 1, rate: undefined }
        )
      }).pipe(Effect.withRandomFixed([0])))

    it.scoped("the issue's case: 30 429s with retry-after among 30 successes, then one without: level 1, a pause of about 1 s", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000)
        for (let i = 0; i < 30; i++) {
          const now = yield* Clock.currentTimeMillis
          // requests sent before each answer, while the pause in force runs: as under steady 429s
          yield* pacer.rateLimited({ sentAt: now - 500, retryAfterMs: 300 })
          yield* TestClock.adjust("100 millis")
          yield* pacer.succeeded(now - 400)
          yield* TestClock.adjust("100 millis")
        }
        const now = yield* Clock.currentTimeMillis
        const bare = yield* pacer.rateLimited({ sentAt: now - 100 })
        expect(bare.reason).toBe("backoff")
        expect(bare.level).toBe(1)
        // level 1: between 0.5 and 1 s (before the fix: level 31, up to 60 s)
        expect(bare.until - now).toBeGreaterThanOrEqual(500)
        expect(bare.until - now).toBeLessThanOrEqual(1000)
      }))

    it.scoped("a success whose request was sent before the pause began still resets the backoff", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000)
        expect((yield* pacer.rateLimited({ sentAt: 0 })).level).toBe(1)
        yield* TestClock.adjust("2 seconds")
        expect((yield* pacer.rateLimited({ sentAt: 1500 })).level).toBe(2)
        // its answer arrives during the pause that began at 2 s
        yield* TestClock.adjust("100 millis")
        yield* pacer.succeeded(1000)
        yield* TestClock.adjust("5 seconds")
        expect((yield* pacer.rateLimited({ sentAt: 7000 })).level).toBe(1)
      }).pipe(Effect.withRandomFixed([0])))
  })

  describe("the hard bound", () => {
    it("allowedSends: ceil(W / interval) in 1 s or more; k + 1 in k intervals below, at most a second's worth", () => {
      // 100/s: a second holds 100, 1.5 s 150, 1,005 ms 101 (what a perfect grid puts there)
      expect(Pacer.allowedSends(1000, 10)).toBe(100)
      expect(Pacer.allowedSends(1500, 10)).toBe(150)
      expect(Pacer.allowedSends(1005, 10)).toBe(101)
      // 100 ms is 10 intervals: 11; just under a second: 100, not 101
      expect(Pacer.allowedSends(100, 10)).toBe(11)
      expect(Pacer.allowedSends(999, 10)).toBe(100)
      // 1,000/s: a 100 ms window holds 101
      expect(Pacer.allowedSends(100, 1)).toBe(101)
      // one send every 2 s: one in any second, two in 2.5 s
      expect(Pacer.allowedSends(1000, 2000)).toBe(1)
      expect(Pacer.allowedSends(300, 2000)).toBe(1)
      expect(Pacer.allowedSends(2500, 2000)).toBe(2)
    })

    it.scoped("a perfect grid is within the bound, at 6,000 QPM, 600 QPM and 7,000 QPM (an interval of 8.57 ms)", () =>
      Effect.forEach([6000, 600, 7000], (qpm) =>
        Effect.gen(function*() {
          const pacer = yield* Pacer.make(qpm, { adaptiveRate: false })
          const fiber = yield* Effect.fork(takeTimes(pacer, 250))
          yield* TestClock.adjust("10 minutes")
          const times = yield* Fiber.join(fiber)
          expectWithinBound(times, 60_000 / qpm)
          // still on the grid: the bound takes nothing from a queue that keeps up
          times.forEach((time, k) => expect(time - times[0]!).toBeCloseTo(k * (60_000 / qpm), 3))
        })))

    it.scoped("under random stalls, idle spells, pauses and rate changes, every window holds at most what the rate allows", () =>
      Effect.forEach(Array.from({ length: 12 }, (_, seed) => seed), (seed) =>
        Effect.gen(function*() {
          const random = seeded(seed + 1)
          // rates whose interval is a whole millisecond, and one that is not (8.57 ms)
          const qpm = [6000, 600, 60_000, 1200, 7000][seed % 5]!
          const interval = 60_000 / qpm
          const pacer = yield* Pacer.make(qpm, { catchUpMs: [25, 1000][seed % 2] })
          const times: Array<number> = []
          // one caller, or three at once, each stalling at random between its slots: mostly not
          // (long stretches at the full rate), sometimes for a few intervals (a stall), rarely
          // for long (an idle spell); now and then the API says "slow down" or answers (the
          // effective rate moves) or gives a hint
          const callers = seed % 3 === 0 ? 3 : 1
          const caller = Effect.forEach(Array.from({ length: 210 / callers }), () =>
            Effect.gen(function*() {
              const x = random()
              const stall = x < 0.85 ? 0 : x < 0.98 ? Math.floor(random() * 4 * interval) : Math.floor(random() * 1500)
              if (stall > 0) yield* Effect.sleep(stall)
              yield* pacer.take
              const now = yield* Clock.currentTimeMillis
              times.push(now)
              const y = random()
              if (y < 0.01) yield* pacer.rateLimited({ sentAt: now, retryAfterMs: y < 0.005 ? 50 : undefined })
              else if (y < 0.015) yield* pacer.hint({ remaining: 5, resetAt: now + 20 * interval })
              else yield* pacer.succeeded(now)
            }), { discard: true })
          const fiber = yield* Effect.fork(Effect.all(Array.from({ length: callers }, () => caller), { concurrency: "unbounded" }))
          yield* TestClock.adjust("2 hours")
          yield* Fiber.join(fiber)
          expect(times).toHaveLength(210)
          expectWithinBound(times, interval)
        }).pipe(Effect.scoped, Effect.withRandomFixed([0.5]))), 120_000)

    it.scoped("at 1,000/s after a stall of 20 ms: a window of k intervals holds k + 1 at most (101 in 100 ms, 11 in 10 ms)", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(60_000, { catchUpMs: 1_000 })
        const times: Array<number> = []
        const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 600 }), (_, i) =>
          Effect.gen(function*() {
            if (i === 200) yield* Effect.sleep("20 millis")
            yield* pacer.take
            times.push(yield* Clock.currentTimeMillis)
          }), { discard: true }))
        yield* TestClock.adjust("1 minute")
        yield* Fiber.join(fiber)
        const busiest = (windowMs: number) => {
          let most = 0
          for (let end = 0, start = 0; end < times.length; end++) {
            while (times[end]! - times[start]! >= windowMs) start++
            most = Math.max(most, end - start + 1)
          }
          return most
        }
        expect(busiest(100)).toBe(101)
        expect(busiest(10)).toBe(11)
        expect(busiest(1000)).toBeLessThanOrEqual(1000)
        expectWithinBound(times, 1)
      }))

    it("sendBound at 7,680,000 QPM (128,000 a second, kept in blocks): any window holds at most what the rate allows", () => {
      // an interval of 1/128 ms: times stay exact in floating point, so windows are counted exactly
      const qpm = 7_680_000
      const interval = 60_000 / qpm
      const bound = Pacer.sendBound(qpm)
      const times: Array<number> = []
      // a sender that wants a send on a grid of the interval, is busy now and then (stalls of 3
      // to 200 intervals, some with more than a second at full rate after them, some close
      // together), and catches up as fast as the bound lets it
      const stalls = new Map([[100_000, 3], [300_000, 64], [310_000, 1], [312_000, 200], [500_000, 2]])
      let busyUntil = 0
      for (let n = 0; n < 700_000; n++) {
        const at = Math.max(n * interval, busyUntil, bound.earliest())
        bound.record(at, interval)
        times.push(at)
        const stall = stalls.get(n)
        if (stall !== undefined) busyUntil = at + stall * interval
      }
      // windows of 1 s, 1.5 s and 2 s, and short ones: the busiest of each, two pointers
      for (const window of [1000, 1500, 2000, 100, 10, 1, 1 / 16]) {
        let most = 0
        let start = 0
        for (let end = 0; end < times.length; end++) {
          while (times[end]! - times[start]! >= window) start++
          most = Math.max(most, end - start + 1)
        }
        expect(most).toBeLessThanOrEqual(Pacer.allowedSends(window, interval))
      }
      // and the sender lost no more than its stalls: 700,000 sends 270 intervals late at most
      expect(times.at(-1)!).toBeLessThanOrEqual((700_000 - 1 + 270) * interval)
    })
  })

  describe("adaptive rate", () => {
    it.scoped("a 429 lowers the rate ×0.7 once per episode; successes sent after it raise it by 1/400 of the configured rate", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(1200)
        yield* TestClock.adjust("1 second")
        const first = yield* pacer.rateLimited({ sentAt: 900, retryAfterMs: 1000 })
        expect(first.rate).toEqual({ queriesPerMinute: 840, configured: 1200, reason: "rate_limited" })
        // answers to requests sent before that decrease: the same episode
        const again = yield* pacer.rateLimited({ sentAt: 950, retryAfterMs: 1000 })
        expect(again.rate).toBeUndefined()
        expect(yield* pacer.queriesPerMinute).toBeCloseTo(840, 9)
        // a success of a request sent before the decrease does not raise it
        yield* pacer.succeeded(990)
        expect(yield* pacer.queriesPerMinute).toBeCloseTo(840, 9)
        // each later success adds 3 QPM; the move is reported once it reaches a tenth (84 QPM)
        const reports: Array<Pacer.RateChange | undefined> = []
        for (let i = 0; i < 30; i++) reports.push(yield* pacer.succeeded(2000))
        expect(reports.slice(0, 27).every((report) => report === undefined)).toBe(true)
        expect(reports[27]).toEqual({ queriesPerMinute: 924, configured: 1200, reason: "recovering" })
        expect(yield* pacer.queriesPerMinute).toBeCloseTo(930, 9)
        // never above the configured rate; reaching it is reported
        const last: Array<Pacer.RateChange | undefined> = []
        for (let i = 0; i < 200; i++) last.push(yield* pacer.succeeded(2000))
        expect(yield* pacer.queriesPerMinute).toBe(1200)
        expect(last.filter((report) => report !== undefined).at(-1)).toEqual(
          { queriesPerMinute: 1200, configured: 1200, reason: "recovering" }
        )
      }))

    it.scoped("the rate never falls below the floor (1/64 of the configured rate), and the grid runs at the lowered rate", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6400)
        for (let i = 0; i < 30; i++) {
          const now = yield* Clock.currentTimeMillis
          yield* pacer.rateLimited({ sentAt: now, retryAfterMs: 0 })
          yield* TestClock.adjust("1 millis")
        }
        expect(yield* pacer.queriesPerMinute).toBe(100)
        const fiber = yield* Effect.fork(takeTimes(pacer, 3))
        yield* TestClock.adjust("10 seconds")
        const times = yield* Fiber.join(fiber)
        expect(times[1]! - times[0]!).toBeCloseTo(600, 6)
        expect(times[2]! - times[1]!).toBeCloseTo(600, 6)
      }))

    it.scoped("adaptiveRate: false keeps the configured rate", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(1200, { adaptiveRate: false })
        expect((yield* pacer.rateLimited({ sentAt: 0 })).rate).toBeUndefined()
        expect(yield* pacer.queriesPerMinute).toBe(1200)
      }).pipe(Effect.withRandomFixed([0])))
  })

  describe("hint", () => {
    it.scoped("N requests left until T: the rest spread evenly until T, then the configured rate again", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000, { adaptiveRate: false })
        yield* pacer.take
        // 10 left in the next 5 s: one every 500 ms (120 QPM) instead of every 10 ms
        const hinted = yield* pacer.hint({ remaining: 10, resetAt: 5000 })
        expect(hinted).toEqual({ rate: { queriesPerMinute: 120, configured: 6000, reason: "headers" }, pausedUntil: undefined })
        const fiber = yield* Effect.fork(takeTimes(pacer, 12))
        yield* TestClock.adjust("1 minute")
        const times = yield* Fiber.join(fiber)
        expect(times.slice(0, 10)).toEqual([500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000])
        // the hint has lapsed at 5 s: back on a 10 ms grid
        expect(times.slice(10)).toEqual([5010, 5020])
        expect(yield* pacer.queriesPerMinute).toBe(6000)
      }))

    it("with the API's limit, a window is a bucket that refills by its reset: full caps nothing, empty caps at the refill rate", () => {
      // 300 a minute, full: it resets at once
      expect(Pacer.hintCap({ remaining: 300, limit: 300, resetAt: 1000 }, 1000)).toBeUndefined()
      // half left, full again in 30 s: 300 can go in those 30 s
      expect(Pacer.hintCap({ remaining: 150, limit: 300, resetAt: 31_000 }, 1000)).toEqual({ queriesPerMinute: 600, until: 31_000 })
      // none left, full again in a minute: the refill rate, 300 a minute, with no pause
      expect(Pacer.hintCap({ remaining: 0, limit: 300, resetAt: 61_000 }, 1000)).toEqual({ queriesPerMinute: 300, until: 61_000 })
      // without a limit, a fixed window: what is left spread until the reset, none left a pause
      expect(Pacer.hintCap({ remaining: 10, resetAt: 6000 }, 1000)).toEqual({ queriesPerMinute: 120, until: 6000 })
      expect(Pacer.hintCap({ remaining: 0, resetAt: 6000 }, 1000)).toEqual({ pauseUntil: 6000 })
    })

    it("a token window counts in requests of the answer's tokens, beside the request window", () => {
      const hints = Dispatch.rateHints(
        { limitRequests: 500, remainingRequests: 499, resetRequestsMs: 120, limitTokens: 10_000, remainingTokens: 1000, resetTokensMs: 54_000 },
        0,
        100
      )
      expect(hints).toEqual([{ remaining: 499, limit: 500, resetAt: 120 }, { remaining: 10, limit: 100, resetAt: 54_000 }])
      // the token window is the stricter: 100 requests' worth of tokens in 54 s
      expect(Pacer.hintCap(hints[1]!, 0)).toEqual({ queriesPerMinute: (100 * 60_000) / 54_000, until: 54_000 })
    })

    it.scoped("of several windows the strictest caps the queue, and a window full again lifts the cap", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000, { adaptiveRate: false })
        const hinted = yield* pacer.hint([{ remaining: 499, limit: 500, resetAt: 120 }, { remaining: 0, limit: 100, resetAt: 60_000 }])
        expect(hinted.rate).toEqual({ queriesPerMinute: 100, configured: 6000, reason: "headers" })
        expect(yield* pacer.queriesPerMinute).toBe(100)
        expect((yield* pacer.hint([{ remaining: 100, limit: 100, resetAt: 0 }])).rate).toEqual({
          queriesPerMinute: 6000,
          configured: 6000,
          reason: "headers"
        })
        expect(yield* pacer.queriesPerMinute).toBe(6000)
      }))

    it.scoped("none left: the queue pauses until the reset; a hint whose reset has passed is ignored", () =>
      Effect.gen(function*() {
        const pacer = yield* Pacer.make(6000)
        yield* TestClock.adjust("1 second")
        expect(yield* pacer.hint({ remaining: 5, resetAt: 500 })).toEqual({ rate: undefined, pausedUntil: undefined })
        expect((yield* pacer.hint({ remaining: 0, resetAt: 3000 })).pausedUntil).toBe(3000)
        const fiber = yield* Effect.fork(takeTimes(pacer, 2))
        yield* TestClock.adjust("10 seconds")
        expect(yield* Fiber.join(fiber)).toEqual([3000, 3010])
      }))
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
