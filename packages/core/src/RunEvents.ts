/**
 * The event channel of a run: one channel of run events that the log, the statistics and the
 * progress display each subscribe to, so nothing in the request path knows who listens.
 *
 * Events are handed to every subscriber in the order they are published, on the publishing
 * fiber: a `PubSub` with a fiber per subscriber did the same at about 70 µs more CPU per
 * request (measured on 50,000 requests of the `test` API: 13.7 s against 10.1 s), for a
 * hand-off the subscribers do not need, since each is a quick synchronous update or a buffered
 * write. A subscriber may do its work synchronously and return nothing: an event then costs
 * two Effect steps however many subscribers there are, where an `Effect.sync` for each cost
 * about eight (two events a request).
 *
 * @since 0.1.0
 */
import { Effect, type Scope } from "effect"

/**
 * The channel.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunEvents<A> {
  /** Publishes an event to every subscriber, in order. */
  readonly publish: (event: A) => Effect.Effect<void>
  /**
   * Publishes an event at once, outside any fiber (the request path's hot path): the
   * subscribers that work at once have done so on return, and the work of the others comes back
   * as one effect to run (`undefined` when there is none).
   */
  readonly publishNow: (event: A) => Effect.Effect<void> | undefined
  /**
   * Adds a subscriber for the rest of the scope: `handle` sees every event published from now
   * on, in order, and does its work at once or returns an effect that does it. Keep it quick:
   * it runs on the publisher's fiber.
   */
  readonly subscribe: (handle: Subscriber<A>) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * A subscriber: handles an event at once (returning nothing) or returns the effect that does.
 *
 * @since 0.1.0
 * @category models
 */
export type Subscriber<A> = (event: A) => Effect.Effect<void> | void

/**
 * Makes a channel.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(): Effect.Effect<RunEvents<A>> =>
  Effect.sync(() => {
    let handlers: ReadonlyArray<Subscriber<A>> = []
    // the effects that handlers return, in a chain of `zipRight`s: `Effect.forEach`'s loop cost
    // more than the handlers themselves, twice a request
    const publishNow = (event: A): Effect.Effect<void> | undefined => {
      let chain: Effect.Effect<void> | undefined
      for (const handle of handlers) {
        const effect = handle(event)
        if (effect !== undefined) chain = chain === undefined ? effect : Effect.zipRight(chain, effect)
      }
      return chain
    }
    const publish = (event: A): Effect.Effect<void> => Effect.suspend(() => publishNow(event) ?? Effect.void)
    const subscribe = (handle: Subscriber<A>) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          handlers = [...handlers, handle]
        }),
        () =>
          Effect.sync(() => {
            handlers = handlers.filter((other) => other !== handle)
          })
      )
    return { publish, publishNow, subscribe }
  })
