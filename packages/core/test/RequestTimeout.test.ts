import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, Either, Fiber, TestClock } from "effect"
import * as RequestTimeout from "../src/internal/requestTimeout.js"

describe("RequestTimeout", () => {
  it.scoped("a request that answers in time gives its answer; one that does not fails at its deadline and is interrupted", () =>
    Effect.gen(function*() {
      const timeout = yield* RequestTimeout.make("5 seconds")
      let interrupted = false
      const quick = yield* timeout.within(Effect.as(Effect.sleep("4 seconds"), "answer"), () => "late").pipe(Effect.either, Effect.fork)
      const slow = yield* timeout.within(
        Effect.as(Effect.sleep("1 minute"), "never").pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true)))),
        () => "late"
      ).pipe(Effect.either, Effect.fork)
      yield* TestClock.adjust("4999 millis")
      expect(yield* Fiber.join(quick)).toEqual(Either.right("answer"))
      expect(slow.unsafePoll()).toBeNull()
      expect(interrupted).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(slow)).toEqual(Either.left("late"))
      expect(interrupted).toBe(true)
    }))

  it.scoped("deadlines run from each request's own start, with one watchdog for all", () =>
    Effect.gen(function*() {
      const timeout = yield* RequestTimeout.make("10 seconds")
      const outcomes: Array<string> = []
      const request = (name: string, takes: Duration.DurationInput) =>
        timeout.within(Effect.as(Effect.sleep(takes), name), () => `${name} timed out`).pipe(
          Effect.merge,
          Effect.tap((outcome) => Effect.sync(() => outcomes.push(outcome))),
          Effect.fork
        )
      const a = yield* request("a", "30 seconds")
      yield* TestClock.adjust("3 seconds")
      const b = yield* request("b", "9 seconds") // answers at 12 s, within its deadline at 13 s
      yield* TestClock.adjust("6 seconds")
      const c = yield* request("c", "20 seconds") // deadline at 19 s
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(a)
      yield* Fiber.join(b)
      yield* Fiber.join(c)
      expect(outcomes).toEqual(["a timed out", "b", "c timed out"])
    }))

  it.scoped("interrupting the caller interrupts the request", () =>
    Effect.gen(function*() {
      const timeout = yield* RequestTimeout.make("1 minute")
      let interrupted = false
      const caller = yield* timeout.within(
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true)))),
        () => "late"
      ).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(caller)
      expect(interrupted).toBe(true)
    }))

  it.scoped("a failure or a defect of the request comes through as it is", () =>
    Effect.gen(function*() {
      const timeout = yield* RequestTimeout.make("1 minute")
      expect(yield* Effect.either(timeout.within(Effect.fail("refused"), () => "late"))).toEqual(Either.left("refused"))
      const exit = yield* Effect.exit(timeout.within(Effect.die("boom"), () => "late"))
      expect(exit._tag).toBe("Failure")
    }))
})
