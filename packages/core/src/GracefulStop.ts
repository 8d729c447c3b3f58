/**
 * The graceful stop of a run (the CLI's first Ctrl-C): once asked for, nothing more is sent,
 * not even a retry, by any part of the run (lines, strategy steps, judges, rephrasers); requests
 * in flight get a grace period to answer; what arrived is written, and the rest is left for a
 * resume.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, type Scope, Stream } from "effect"

/**
 * The service.
 *
 * @since 0.1.0
 * @category models
 */
export interface GracefulStop {
  /** True once a stop was asked for (read on every send, so it is a plain function). */
  readonly stopping: () => boolean
  /** Completes when a stop is asked for. */
  readonly requested: Effect.Effect<void>
  /** Whether a stop was asked for. */
  readonly wasRequested: Effect.Effect<boolean>
  /** Why the run stopped: `signal` (Ctrl-C, the `signal` option) or the reason given to `request`. */
  readonly reason: () => string | undefined
  /**
   * Asks for the stop from inside the run (the spend cap): `stopping` is true as soon as this
   * returns, so the request that asked is not sent. Later calls do nothing.
   */
  readonly request: (reason: string, message?: string) => Effect.Effect<void>
  /** Ends a source of new work (lines of the input) at the stop. */
  readonly untilStop: <A, E, R>(stream: Stream.Stream<A, E, R>) => Stream.Stream<A, E, R>
  /**
   * Runs the consumer of a run's results; after a stop, it has `grace` to finish, and then is
   * cut short (`onGraceOver` runs).
   */
  readonly withGrace: <E, R>(effect: Effect.Effect<void, E, R>, onGraceOver: Effect.Effect<void>) => Effect.Effect<void, E, R>
}

/**
 * Makes the stop of a run: `signal` completes when a stop is asked for (none: the run is never
 * stopped this way); `onStop` runs at that moment (a log line). With `requestable`, the run
 * may also stop itself (`request`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly signal?: Effect.Effect<void> | undefined
  readonly grace?: Duration.DurationInput | undefined
  readonly onStop?: Effect.Effect<void> | undefined
  /** Completes when the grace period must end at once (a second Ctrl-C). */
  readonly now?: Effect.Effect<void> | undefined
  /** The stop may also be asked for with `request` (without it, `request` has no effect on the streams). */
  readonly requestable?: boolean | undefined
  /** Writes the message given to `request` (a log line). */
  readonly onMessage?: ((message: string) => Effect.Effect<void>) | undefined
}): Effect.Effect<GracefulStop, never, Scope.Scope> =>
  Effect.gen(function*() {
    const requested = yield* Deferred.make<void>()
    const grace = Duration.decode(options.grace ?? Duration.seconds(30))
    let stopping = false
    let reason: string | undefined
    const stopFor = (why: string, onStop: Effect.Effect<void>) =>
      Effect.suspend(() => {
        if (stopping) return Effect.void
        stopping = true
        reason = why
        return Effect.zipRight(Deferred.succeed(requested, undefined), onStop)
      })
    if (options.signal !== undefined) {
      yield* options.signal.pipe(
        Effect.zipRight(stopFor("signal", options.onStop ?? Effect.void)),
        Effect.forkScoped
      )
    }
    const never = options.signal === undefined && options.requestable !== true
    return {
      stopping: () => stopping,
      requested: Deferred.await(requested),
      wasRequested: Deferred.isDone(requested),
      reason: () => reason,
      request: (why, message) => stopFor(why, message === undefined ? Effect.void : (options.onMessage?.(message) ?? Effect.void)),
      untilStop: (stream) => never ? stream : Stream.interruptWhen(stream, Deferred.await(requested)),
      withGrace: (effect, onGraceOver) =>
        never ? effect : Effect.raceFirst(
          effect,
          Deferred.await(requested).pipe(
            Effect.zipRight(options.now === undefined ? Effect.sleep(grace) : Effect.race(Effect.sleep(grace), options.now)),
            Effect.zipRight(onGraceOver)
          )
        )
    }
  })
