/**
 * How a failed request is tried again: the retry policy (an `Effect.retry` schedule) and
 * prompto's wording for an error that is finally given up.
 *
 * @since 0.1.0
 */
import { Duration, Schedule } from "effect"
import type { RateLimitBackoff } from "./internal/pacer.js"
import type { ProviderError } from "./ProviderError.js"

/**
 * The wait before a prompt's n-th retry after a transient failure: `initial * 2^(n-1)`,
 * jittered by ±20%, at most `max` (the same shape as the pacer's `RateLimitBackoff`).
 *
 * @since 0.1.0
 * @category models
 */
export type RetryBackoff = RateLimitBackoff

/**
 * 500 ms, 1 s, 2 s, ... up to 30 s (each ±20%).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetryBackoff: RetryBackoff = { initial: "500 millis", max: "30 seconds" }

/**
 * The retry policy: up to `maxAttempts` attempts in total, and only for retryable errors.
 * A transient failure (server error, timeout) waits an exponential, jittered backoff before the
 * retry; a `RateLimitError` waits nothing here, because it paused its whole queue (see
 * `Pacer.rateLimited`). Then the wait for a new send slot is part of each attempt, so a retry
 * is paced like any send. Outputs the number of retries so far.
 *
 * @since 0.1.0
 * @category policies
 */
export const retryPolicy = (
  maxAttempts: number,
  backoff: RetryBackoff = defaultRetryBackoff
): Schedule.Schedule<number, ProviderError> =>
  Schedule.exponential(backoff.initial).pipe(
    Schedule.jittered,
    Schedule.union(Schedule.spaced(backoff.max)),
    Schedule.zipRight(Schedule.identity<ProviderError>()),
    // whole milliseconds, like the clock
    Schedule.modifyDelay((error, delay) =>
      error._tag === "RateLimitError" ? Duration.zero : Duration.millis(Math.round(Duration.toMillis(delay)))
    ),
    Schedule.zipRight(Schedule.recurs(Math.max(0, maxAttempts - 1))),
    Schedule.whileInput((error: ProviderError) => error.retryable)
  )

/**
 * The name prompto gives an error (`ValueError`, `Exception`, an SDK's error class), else its tag.
 *
 * @since 0.1.0
 * @category formatting
 */
export const errorName = (error: ProviderError): string => ("errorName" in error ? error.errorName : undefined) ?? error._tag

/**
 * prompto's wording for an error stored in `response`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const errorResponse = (error: ProviderError, attempts: number, maxAttempts: number): string => {
  const name = errorName(error)
  return error.retryable && attempts >= maxAttempts
    ? `An unexpected error occurred when querying the API: (${name} - ${error.message}) after maximum ${maxAttempts} attempts`
    : `${name} - ${error.message}`
}

