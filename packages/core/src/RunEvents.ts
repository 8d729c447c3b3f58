/**
 * The event channel of a run: one `PubSub` of run events that the log, the statistics and the
 * progress display each subscribe to, so nothing in the request path knows who listens.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, PubSub, Queue, type Scope } from "effect"

/** Asks every subscriber to say when it has handled everything published before. */
class Flush {
  constructor(readonly done: ReadonlyArray<Deferred.Deferred<void>>) {}
}

/**
 * The channel.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunEvents<A> {
  /** Publishes an event to every subscriber. */
  readonly publish: (event: A) => Effect.Effect<void>
  /**
   * Adds a subscriber for the rest of the scope: `handle` sees every event published from now
   * on, in order, on a fiber of its own.
   */
  readonly subscribe: (handle: (event: A) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /** Waits until every subscriber has handled every event published so far. */
  readonly flush: Effect.Effect<void>
}

/**
 * Makes a channel for the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(): Effect.Effect<RunEvents<A>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<A | Flush>(), PubSub.shutdown)
    let subscribers = 0
    const subscribe = (handle: (event: A) => Effect.Effect<void>) =>
      Effect.gen(function*() {
        const index = subscribers++
        const queue = yield* PubSub.subscribe(pubsub)
        const handleOne = (event: A | Flush): Effect.Effect<void> =>
          event instanceof Flush
            ? (event.done[index] === undefined ? Effect.void : Deferred.succeed(event.done[index]!, undefined))
            : handle(event)
        yield* Queue.takeBetween(queue, 1, Number.MAX_SAFE_INTEGER).pipe(
          Effect.flatMap((events) => Effect.forEach(events, handleOne, { discard: true })),
          Effect.forever,
          Effect.forkScoped
        )
      })
    const flush = Effect.gen(function*() {
      const done = yield* Effect.forEach(Array.from({ length: subscribers }), () => Deferred.make<void>())
      yield* PubSub.publish(pubsub, new Flush(done))
      yield* Effect.forEach(done, Deferred.await, { discard: true })
    })
    return {
      publish: (event) => Effect.asVoid(PubSub.publish(pubsub, event)),
      subscribe,
      flush
    }
  })
