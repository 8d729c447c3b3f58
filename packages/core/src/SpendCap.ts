/**
 * The spend cap (`--max-cost USD`): as a request is sent (it has its queue's slot), the spend so
 * far plus the estimated cost of every request in flight plus its own estimate must stay within
 * the cap.
 * When it would not, the run stops as with Ctrl-C: nothing more is sent, requests in flight
 * finish, and the rest is left for a resume.
 *
 * A request's estimate is its most: its input tokens (counted as `prompto estimate` does) and
 * all the output it allows (`max_tokens`, or the stated default when unset), priced like its
 * answer will be. So with `max_tokens` set the cap is never crossed; without it, an answer
 * longer than the default can overshoot by what that one answer costs beyond its estimate. A
 * model with no known price cannot be capped: its requests are sent and counted as 0 (the run
 * says so when it starts).
 *
 * The cap is the request path's send gate, below the cache, so a cache hit spends and reserves
 * nothing.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Cost from "./Cost.js"
import type * as GracefulStop from "./GracefulStop.js"
import type * as RequestPath from "./RequestPath.js"
import * as TokenCount from "./TokenCount.js"

/**
 * The reason a run stopped at the cap (`GracefulStop.reason`).
 *
 * @since 0.1.0
 * @category constants
 */
export const stopReason = "spend-cap"

/**
 * The cap's running figures, in USD.
 *
 * @since 0.1.0
 * @category models
 */
export interface SpendCap {
  readonly limit: number
  /** Spent so far: what earlier runs of a resumed experiment cost, and every answer since. */
  readonly spent: () => number
  /** Estimated cost of the requests admitted and not yet answered. */
  readonly reserved: () => number
  /** The cap as the request path's send gate. */
  readonly gate: RequestPath.SendGate<number>
}

/**
 * Makes the cap: `alreadySpent` is what the run's completed file cost before (a resume);
 * `stop` is the run's graceful stop, asked for with `stopReason` when the next request would
 * cross the cap.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly limit: number
  readonly alreadySpent?: number | undefined
  readonly prices?: Cost.Prices | undefined
  readonly counter: TokenCount.TokenCounter
  readonly stop: GracefulStop.GracefulStop
  /** Called once per model with no known price (a warning: its spend is not counted). */
  readonly onUnpriced?: ((api: string, model: string) => Effect.Effect<void>) | undefined
}): SpendCap => {
  let spent = options.alreadySpent ?? 0
  let reserved = 0
  const { counter, limit, prices, stop } = options
  const unpriced = new Set<string>()
  const estimate = (request: RequestPath.Request): number | null => {
    const { record } = request
    const tokens = counter.request(record)
    return Cost.price(record.api, record.model_name, { input: tokens.input, output: tokens.output }, prices)
  }
  const format = (usd: number) => `$${usd.toFixed(usd < 1 ? 6 : 4)}`
  const gate: RequestPath.SendGate<number> = {
    open: (request) =>
      Effect.gen(function*() {
        const priced = estimate(request)
        if (priced === null) {
          const { api, model_name } = request.record
          const model = `${api}/${model_name}`
          if (!unpriced.has(model)) {
            unpriced.add(model)
            if (options.onUnpriced !== undefined) yield* options.onUnpriced(api, model_name)
          }
        }
        const own = priced ?? 0
        if (spent + reserved + own > limit) {
          yield* stop.request(
            stopReason,
            `Spend cap reached: ${format(spent)} spent and ${format(reserved)} in flight; the next request ` +
              `(up to ${format(own)}) would cross the cap of ${format(limit)}. No more prompts are sent`
          )
          return undefined
        }
        reserved += own
        return own
      }),
    close: (own, completed) => {
      reserved -= own
      if (typeof completed.cost === "number") spent += completed.cost
    }
  }
  return { limit, spent: () => spent, reserved: () => reserved, gate }
}
