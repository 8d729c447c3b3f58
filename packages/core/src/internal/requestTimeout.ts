/**
 * Request timeouts for many requests at once: one watchdog fiber and one timer for all of a
 * scheduler's requests, instead of a timer and two racing fibers per request (which cost about
 * 40 µs and several kilobytes a request, the largest share of the scheduler's own cost).
 *
 * All requests under one watchdog share one duration, so their deadlines come in the order the
 * requests were sent, and a map in insertion order is a queue by deadline: the watchdog sleeps
 * until the first deadline, and a request that finishes in time takes itself off the map.
 * The watchdog sleeps on the Effect clock, so `TestClock` controls it.
 *
 * @since 0.1.0
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Runtime, type Scope } from "effect"

/**
 * Runs requests under a deadline.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestTimeout {
  readonly duration: Duration.Duration
  /**
   * Runs `effect` (on a fiber of its own, interrupted with the caller's) and fails with
   * `onTimeout()` if it has not finished within the duration; it is then interrupted.
   */
  readonly within: <A, E, R, E2>(effect: Effect.Effect<A, E, R>, onTimeout: () => E2) => Effect.Effect<A, E | E2, R>
}

interface Pending {
  readonly deadline: number
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  timedOut: boolean
}

/**
 * Makes a watchdog for requests of the given duration, living as long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (duration: Duration.DurationInput): Effect.Effect<RequestTimeout, never, Scope.Scope> =>
  Effect.gen(function*() {
    const millis = Duration.toMillis(duration)
    const pending = new Map<number, Pending>()
    let nextId = 0
    // set while the watchdog waits for a first request
    let idle: Deferred.Deferred<void> | undefined
    yield* Effect.gen(function*() {
      while (true) {
        const first = pending.entries().next()
        if (first.done === true) {
          idle = yield* Deferred.make<void>()
          yield* Deferred.await(idle)
          continue
        }
        const [id, request] = first.value
        const now = yield* Clock.currentTimeMillis
        if (request.deadline > now) {
          yield* Effect.sleep(request.deadline - now)
          continue
        }
        pending.delete(id)
        request.timedOut = true
        yield* Fiber.interruptFork(request.fiber)
      }
    }).pipe(Effect.forkScoped)

    const within = <A, E, R, E2>(effect: Effect.Effect<A, E, R>, onTimeout: () => E2): Effect.Effect<A, E | E2, R> =>
      Effect.flatMap(Effect.runtime<R>(), (runtime) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.async<A, E | E2>((resume) => {
            // a root fiber watched by callbacks: a fraction of the cost of fork and await
            const fiber = Runtime.runFork(runtime)(effect)
            const id = nextId++
            const request: Pending = { deadline: now + millis, fiber, timedOut: false }
            pending.set(id, request)
            if (idle !== undefined) {
              Deferred.unsafeDone(idle, Exit.void)
              idle = undefined
            }
            fiber.addObserver((exit) => {
              pending.delete(id)
              resume(request.timedOut && Exit.isInterrupted(exit) ? Effect.fail(onTimeout()) : exit)
            })
            // the caller was interrupted: so is the request
            return Effect.suspend(() => {
              pending.delete(id)
              return Fiber.interrupt(fiber)
            })
          })))
    return { duration: Duration.decode(duration), within }
  })
