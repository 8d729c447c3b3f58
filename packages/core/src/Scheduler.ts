/**
 * The scheduler: every queue paced at its own rate, all queues at once, requests sent without
 * waiting for responses, retryable failures sent again on a later slot of their queue.
 * The result is a Stream of completed records, in the order responses arrive.
 *
 * Every request goes through the request path (`RequestPath`): each attempt, first or retry,
 * waits for its queue's limits before it is sent: a concurrency permit (when the queue caps
 * requests in flight), its estimated tokens (when the queue has a tokens-per-minute budget) and
 * a send slot, in that order. A queue never sends more than its rate allows in any window (see
 * the pacer's hard bound). A "slow down" answer (`RateLimitError`) pauses the whole queue and
 * lowers its effective rate, which successes raise back (AIMD); a transient failure backs off
 * that prompt only.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, Stream } from "effect"
import * as FanOut from "./internal/fanOut.js"
import * as LineProgram from "./internal/lineProgram.js"
import * as Lines from "./internal/lines.js"
import type { AdaptiveRate, RateLimitBackoff } from "./internal/pacer.js"
import type { CompletedRecord, IdentifiedRecord } from "./PromptRecord.js"
import type { ProviderRegistry } from "./Provider.js"
import type { ProviderError, RateLimitError } from "./ProviderError.js"
import * as RequestPath from "./RequestPath.js"
import type { RetryBackoff } from "./RetryPolicy.js"
import type * as Strategy from "./Strategy.js"
import type * as StrategySpec from "./StrategySpec.js"

export {
  /** @since 0.1.0 */
  defaultRetryBackoff,
  /** @since 0.1.0 */
  errorResponse,
  /** @since 0.1.0 */
  type RetryBackoff,
  /** @since 0.1.0 */
  retryPolicy
} from "./RetryPolicy.js"

/**
 * One queue: its key, its rate and its records, and optionally its other limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueInput<E, R> {
  readonly key: string
  readonly queriesPerMinute: number
  /** Tokens per minute (estimated before sending, corrected from the reported usage). */
  readonly tokensPerMinute?: number | undefined
  /** Requests in flight at most. */
  readonly concurrency?: number | undefined
  readonly records: Stream.Stream<IdentifiedRecord, E, R>
}

/**
 * What the scheduler reports while it runs (for progress displays and logs).
 *
 * @since 0.1.0
 * @category models
 */
export type SchedulerEvent =
  | { readonly _tag: "Queued"; readonly queue: string; readonly queriesPerMinute: number; readonly id: unknown }
  | { readonly _tag: "Sent"; readonly queue: string; readonly id: unknown; readonly attempt: number; readonly at: number }
  | {
    readonly _tag: "Retrying"
    readonly queue: string
    readonly id: unknown
    readonly attempt: number
    readonly maxAttempts: number
    readonly error: ProviderError
  }
  | {
    /** The API said "slow down": the queue sends nothing before `until`. */
    readonly _tag: "Paused"
    readonly queue: string
    /** The prompt whose answer paused the queue. */
    readonly id: unknown
    /** Clock milliseconds when the pause began and when it ends. */
    readonly at: number
    readonly until: number
    /**
     * `retry_after`: the server said how long; `backoff`: the `level`-th consecutive "slow down"
     * without `retry-after` since the last success (a `retry_after` pause leaves `level` as it was).
     */
    readonly reason: "retry_after" | "backoff"
    readonly level: number
    readonly error: RateLimitError
  }
  | {
    /**
     * The queue's effective rate moved (reported in steps of a tenth, not per request): a "slow
     * down" lowered it (`rate_limited`), successes raised it back towards `configured`
     * (`recovering`), or the API's count of requests left capped it (`headers`).
     */
    readonly _tag: "RateChanged"
    readonly queue: string
    /** Clock milliseconds. */
    readonly at: number
    readonly queriesPerMinute: number
    readonly configured: number
    readonly reason: "rate_limited" | "recovering" | "headers"
  }
  | { readonly _tag: "Completed"; readonly queue: string; readonly record: CompletedRecord; readonly ok: boolean }

/**
 * How requests are sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchedulerOptions {
  /** Attempts in total per prompt, the first included. */
  readonly maxAttempts: number
  /** Per-request timeout; a timeout is retryable. */
  readonly timeout: Duration.DurationInput
  /** Called for every event; the scheduler waits for it, so keep it quick. */
  readonly onEvent?: ((event: SchedulerEvent) => Effect.Effect<void>) | undefined
  /**
   * `onEvent` done at once, outside any fiber (`RunEvents.publishNow`): returns the work it
   * leaves, if any. Without it, a run with an `onEvent` sends every request on a fiber of its
   * own; with it (or with no `onEvent`), a provider's prepared `Call` is sent without one.
   */
  readonly onEventNow?: ((event: SchedulerEvent) => Effect.Effect<void> | undefined) | undefined
  /** How a prompt backs off after a transient failure (default `defaultRetryBackoff`). */
  readonly retryBackoff?: RetryBackoff | undefined
  /**
   * How a queue pauses after a "slow down" answer without `retry-after` (default
   * the pacer's default). Used by `run`, `runQueue` and `pacerPool`'s queues.
   */
  readonly rateLimitBackoff?: RateLimitBackoff | undefined
  /**
   * How each queue's effective rate adapts to "slow down" answers (default: ×0.7 per episode,
   * + 1/400 of the configured rate per success, never below 1/64 of it); `false` keeps every
   * queue at its configured rate.
   */
  readonly adaptiveRate?: AdaptiveRate | false | undefined
  /**
   * True once the run is stopping (a graceful stop): nothing more is sent, not even a retry. A
   * prompt whose retry is given up this way is not emitted at all, so a resume sends it again.
   */
  readonly stopping?: (() => boolean) | undefined
  /**
   * Records sent but not yet taken downstream, at most (default `defaultBacklog`): requests in
   * flight plus answers not yet written. A queue waits before its next send when the backlog
   * is full, so memory stays bounded however long the file and however fast the API.
   */
  readonly backlog?: number | undefined
  /**
   * With `run`: each record is a line whose strategy (its `strategy` key, else `strategy`)
   * runs over the request path; its sub-requests go to the queues their api and model route
   * to (`route`, default: the line's own queue).
   */
  readonly strategy?: Strategy.Strategy | undefined
  /** With `run`: the strategies lines may name (a folder's), and the default. */
  readonly strategies?: StrategySpec.StrategySetup | undefined
  /** With `run`: where a strategy's sub-request goes (default: the first queue). */
  readonly route?: ((record: IdentifiedRecord) => RequestPath.Route) | undefined
  /**
   * Prices an answered request (its `cost` in USD, `null` when unknown), before its `Completed`
   * event, so every observer sees it; see `Cost.pricer`. Default: no `cost` key.
   */
  readonly price?: ((record: CompletedRecord) => number | null) | undefined
}

/**
 * The default cap on records sent but not yet taken downstream (see `SchedulerOptions.backlog`).
 * It is far above what a rate limit allows in flight in practice (10,000 QPM at a minute's
 * latency) and keeps a run with no limit at all to a few tens of megabytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBacklog: number = FanOut.defaultBacklog

/**
 * One queue as a stream of completed records: each record waits for its send slot (and its
 * queue's other limits), then is sent without waiting for earlier responses.
 *
 * @since 0.1.0
 * @category streams
 */
export const runQueue = <E, R>(
  input: QueueInput<E, R>,
  options: SchedulerOptions
): Stream.Stream<CompletedRecord, E, R | ProviderRegistry> => run([input], options)

/**
 * All queues at once, merged into one stream of completed records. Each queue's records go
 * through the request path in order, into that queue.
 *
 * @since 0.1.0
 * @category streams
 */
export const run = <E, R>(
  queues: ReadonlyArray<QueueInput<E, R>>,
  options: SchedulerOptions
): Stream.Stream<CompletedRecord, E, R | ProviderRegistry> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const routes = new Map(queues.map((queue) => [queue.key, routeOf(queue)]))
    const first = routes.values().next().value
    const path = yield* RequestPath.make({
      ...options,
      route: options.route ?? (() => first ?? { key: "default", queriesPerMinute: 1 }),
      queues: [...routes.values()]
    })
    const stopping = options.stopping ?? (() => false)
    const program = LineProgram.make(path, options.strategies, options.strategy)
    return Lines.runLines(
      queues.map((queue) => ({ feed: routes.get(queue.key)!, records: queue.records })),
      program,
      { stopping, backlog: options.backlog, direct: program.direct }
    )
  }))

/**
 * The route of a queue: its key and limits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const routeOf = (queue: {
  readonly key: string
  readonly queriesPerMinute: number
  readonly tokensPerMinute?: number | undefined
  readonly concurrency?: number | undefined
}): RequestPath.Route => ({
  key: queue.key,
  queriesPerMinute: queue.queriesPerMinute,
  tokensPerMinute: queue.tokensPerMinute,
  concurrency: queue.concurrency
})
