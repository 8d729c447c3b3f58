import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, TestClock } from "effect"
import * as Pacer from "../src/Pacer.js"

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

  it("catches up a short lag instead of losing the slot", () => {
    // a step called 3 ms late (less than the catch-up window) keeps the grid: the next slot is
    // due at once, so late timer ticks do not add up to drift
    const schedule = Pacer.slots(1, 10)
    const run = Effect.gen(function*() {
      const step = (now: number, state: unknown) => schedule.step(now, undefined, state as never)
      const [s1] = yield* step(0, schedule.initial)
      const [s2, , d2] = yield* step(4, s1) // slot 1 was due at 1
      return { s2, d2 }
    })
    const { d2, s2 } = Effect.runSync(run)
    expect((s2 as { next: number }).next).toBe(2)
    expect(d2._tag).toBe("Continue")
  })
})
