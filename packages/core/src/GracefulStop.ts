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
 * stopped this way); `onStop` runs at that moment (a log line).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly signal?: Effect.Effect<void> | undefined
  readonly grace?: Duration.DurationInput | undefined
  readonly onStop?: Effect.Effect<void> | undefined
}): Effect.Effect<GracefulStop, never, Scope.Scope> =>
  Effect.gen(function*() {
    const requested = yield* Deferred.make<void>()
    const grace = Duration.decode(options.grace ?? Duration.seconds(30))
    let stopping = false
    if (options.signal !== undefined) {
      yield* options.signal.pipe(
        Effect.zipRight(Effect.sync(() => (stopping = true))),
        Effect.zipRight(Deferred.succeed(requested, undefined)),
        Effect.zipRight(options.onStop ?? Effect.void),
        Effect.forkScoped
      )
    }
    const never = options.signal === undefined
    return {
      stopping: () => stopping,
      requested: Deferred.await(requested),
      wasRequested: Deferred.isDone(requested),
      untilStop: (stream) => never ? stream : Stream.interruptWhen(stream, Deferred.await(requested)),
      withGrace: (effect, onGraceOver) =>
        never ? effect : Effect.raceFirst(
          effect,
          Deferred.await(requested).pipe(Effect.zipRight(Effect.sleep(grace)), Effect.zipRight(onGraceOver))
        )
    }
  })
