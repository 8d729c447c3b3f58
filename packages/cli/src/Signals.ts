/**
 * Ctrl-C and SIGTERM. The first signal asks a running experiment to stop gracefully (nothing
 * more is sent, requests in flight may still answer); a second one ends the grace at once
 * (requests in flight are abandoned), and the run still writes its summary, logs `Stopped` and
 * prints the resume command. A signal when no experiment is running, or a third one, interrupts
 * at once. Files are never left with half a line either way.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, type Fiber, type Scope } from "effect"

let onGracefulStop: (() => void) | undefined
let onStopNow: (() => void) | undefined
let signals = 0

/**
 * The stop signals of a run.
 *
 * @since 0.1.0
 * @category models
 */
export interface StopSignals {
  /** Completes on the first Ctrl-C/SIGTERM while the scope is open. */
  readonly stop: Effect.Effect<void>
  /** Completes on the second: the grace period ends at once. */
  readonly stopNow: Effect.Effect<void>
}

/**
 * The stop signals for the current scope.
 *
 * @since 0.1.0
 * @category signals
 */
export const stopSignals: Effect.Effect<StopSignals, never, Scope.Scope> = Effect.gen(function*() {
  const requested = yield* Deferred.make<void>()
  const now = yield* Deferred.make<void>()
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      onGracefulStop = () => Deferred.unsafeDone(requested, Effect.void)
      onStopNow = () => Deferred.unsafeDone(now, Effect.void)
    }),
    () =>
      Effect.sync(() => {
        onGracefulStop = undefined
        onStopNow = undefined
      })
  )
  return { stop: Deferred.await(requested), stopNow: Deferred.await(now) }
})

/**
 * The first stop signal for the current scope (see `stopSignals`).
 *
 * @since 0.1.0
 * @category signals
 */
export const gracefulStop: Effect.Effect<Effect.Effect<void>, never, Scope.Scope> = Effect.map(stopSignals, (signals) => signals.stop)

/**
 * Routes SIGINT and SIGTERM for the process running `fiber`; returns a function that removes
 * the handlers.
 *
 * @since 0.1.0
 * @category signals
 */
export const install = (fiber: Fiber.RuntimeFiber<unknown, unknown>, write: (line: string) => void): () => void => {
  const handler = () => {
    signals++
    if (signals === 1 && onGracefulStop !== undefined) {
      write("\nStopping: no more prompts are sent; waiting for requests in flight (Ctrl-C again to stop now)")
      onGracefulStop()
      return
    }
    if (signals === 2 && onStopNow !== undefined) {
      write("\nStopping now: requests in flight are abandoned (they are sent again by a resume)")
      onStopNow()
      return
    }
    fiber.unsafeInterruptAsFork(fiber.id())
  }
  process.on("SIGINT", handler)
  process.on("SIGTERM", handler)
  return () => {
    process.removeListener("SIGINT", handler)
    process.removeListener("SIGTERM", handler)
  }
}
