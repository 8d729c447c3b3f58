import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Fiber, TestClock } from "effect"
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

  describe("until: on the caller's fiber, the deadline handed to its calls", () => {
    /** A call that answers when `answer` is run, and records its signal. */
    const pendingCall = () => {
      const state: { answer?: (value: string) => void; signal?: AbortSignal } = {}
      const effect = RequestTimeout.call<string, string>((resume, signal) => {
        state.signal = signal
        state.answer = (value) => resume(Effect.succeed(value))
      })
      return { state, effect }
    }

    it.scoped("a call still waiting at the deadline fails with the timeout and its request is aborted", () =>
      Effect.gen(function*() {
        const timeout = yield* RequestTimeout.make("5 seconds")
        const { effect, state } = pendingCall()
        const caller = yield* Effect.flatMap(Clock.currentTimeMillis, (now) => timeout.until(effect, now, () => "late")).pipe(
          Effect.either,
          Effect.fork
        )
        yield* TestClock.adjust("4999 millis")
        expect(caller.unsafePoll()).toBeNull()
        expect(state.signal?.aborted).toBe(false)
        yield* TestClock.adjust("1 millis")
        expect(yield* Fiber.join(caller)).toEqual(Either.left("late"))
        expect(state.signal?.aborted).toBe(true)
        // an answer after the deadline is ignored
        state.answer?.("too late")
      }))

    it.scoped("a call answered in time gives its answer, and the next request on the fiber has its own deadline", () =>
      Effect.gen(function*() {
        const timeout = yield* RequestTimeout.make("5 seconds")
        const first = pendingCall()
        const second = pendingCall()
        const caller = yield* Effect.gen(function*() {
          const a = yield* timeout.until(first.effect, yield* Clock.currentTimeMillis, () => "first late")
          yield* Effect.sleep("4 seconds")
          const b = yield* Effect.either(timeout.until(second.effect, yield* Clock.currentTimeMillis, () => "second late"))
          return [a, b] as const
        }).pipe(Effect.fork)
        yield* TestClock.adjust("3 seconds")
        first.state.answer?.("first")
        // the first deadline (5 s) passes while the second request waits: it is not the second's
        yield* TestClock.adjust("6 seconds")
        expect(caller.unsafePoll()).toBeNull()
        expect(second.state.signal?.aborted).toBe(false)
        yield* TestClock.adjust("3 seconds")
        expect(yield* Fiber.join(caller)).toEqual(["first", Either.left("second late")])
      }))

    it.scoped("a call made after the deadline passed fails at once; one made outside any deadline is not timed", () =>
      Effect.gen(function*() {
        const timeout = yield* RequestTimeout.make("1 second")
        const later = pendingCall()
        const caller = yield* timeout.until(
          Effect.zipRight(Effect.sleep("2 seconds"), later.effect),
          yield* Clock.currentTimeMillis,
          () => "late"
        ).pipe(Effect.either, Effect.fork)
        yield* TestClock.adjust("2 seconds")
        expect(yield* Fiber.join(caller)).toEqual(Either.left("late"))
        expect(later.state.signal).toBeUndefined()
        const free = pendingCall()
        const untimed = yield* Effect.fork(free.effect)
        yield* TestClock.adjust("1 minute")
        free.state.answer?.("answered")
        expect(yield* Fiber.join(untimed)).toBe("answered")
      }))

    it.scoped("interrupting the caller aborts the call", () =>
      Effect.gen(function*() {
        const timeout = yield* RequestTimeout.make("1 minute")
        const { effect, state } = pendingCall()
        const caller = yield* timeout.until(effect, 0, () => "late").pipe(Effect.fork)
        yield* TestClock.adjust("1 second")
        yield* Fiber.interrupt(caller)
        expect(state.signal?.aborted).toBe(true)
      }))

    it.scoped("sleep: a simulated wait ends at the deadline with the timeout; one within it, or outside any deadline, is a plain sleep", () =>
      Effect.gen(function*() {
        const timeout = yield* RequestTimeout.make("5 seconds")
        // two turns of 3 s: the first is in time, the second is cut at 5 s
        const turns = yield* timeout.until(
          Effect.zipRight(RequestTimeout.sleep(3000), RequestTimeout.sleep(3000)),
          yield* Clock.currentTimeMillis,
          () => "late"
        ).pipe(Effect.either, Effect.timed, Effect.fork)
        yield* TestClock.adjust("1 minute")
        const [took, outcome] = yield* Fiber.join(turns)
        expect(outcome).toEqual(Either.left("late"))
        expect(Duration.toMillis(took)).toBe(5000)
        // an answer due at the deadline itself is in time
        const exact = yield* timeout.until(RequestTimeout.sleep(5000), yield* Clock.currentTimeMillis, () => "late").pipe(
          Effect.either,
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        expect(yield* Fiber.join(exact)).toEqual(Either.right(undefined))
        const free = yield* Effect.fork(Effect.timed(RequestTimeout.sleep(60_000)))
        yield* TestClock.adjust("1 minute")
        expect(Duration.toMillis((yield* Fiber.join(free))[0])).toBe(60_000)
      }))

    it.effect("callPromise: a rejection is mapped, and a throw before the promise is too", () =>
      Effect.gen(function*() {
        expect(yield* RequestTimeout.callPromise(() => Promise.resolve(1), String)).toBe(1)
        expect(yield* Effect.either(RequestTimeout.callPromise(() => Promise.reject(new Error("refused")), (e) => (e as Error).message)))
          .toEqual(Either.left("refused"))
        expect(
          yield* Effect.either(RequestTimeout.callPromise(() => {
            throw new Error("bad request")
          }, (e) => (e as Error).message))
        ).toEqual(Either.left("bad request"))
      }))
  })
})
