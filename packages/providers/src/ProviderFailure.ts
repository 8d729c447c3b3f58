/**
 * Turning what an SDK or HTTP client threw into the core's typed errors, the same way for every
 * API: 429 and overload (529) are rate limits carrying `retry-after`; 408, 409, 5xx, connection
 * failures and malformed bodies are transient; 400, 401, 403, 404, 422 are permanent.
 *
 * @since 0.1.0
 */
import { ProviderError } from "@prompto/core"
import * as RateLimitHeaders from "./internal/rateLimitHeaders.js"

/**
 * Response headers as SDKs expose them: a `Headers` object or a plain record.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersLike = { readonly get: (name: string) => string | null } | Readonly<Record<string, unknown>>

const header = (headers: HeadersLike | undefined, name: string): string | undefined => {
  if (headers === undefined || headers === null) return undefined
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get: (name: string) => string | null }).get(name) ?? undefined
  }
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? String(value[0]) : String(value)
  }
  return undefined
}

/**
 * The server's requested wait in milliseconds, from `retry-after-ms`, or `retry-after` in
 * seconds or as an HTTP date.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryAfterMs = (headers: HeadersLike | undefined, now: number = Date.now()): number | undefined => {
  const ms = header(headers, "retry-after-ms")
  if (ms !== undefined && Number.isFinite(Number(ms)) && ms.trim() !== "") return Math.max(0, Number(ms))
  const after = header(headers, "retry-after")
  if (after === undefined || after.trim() === "") return undefined
  if (Number.isFinite(Number(after))) return Math.max(0, Number(after) * 1000)
  const date = Date.parse(after)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * The typed error for an HTTP status and the provider's message. A rate limit carries the
 * server's `retry-after` and its rate-limit headers (`RateLimitError.rateLimit`); `now` (epoch
 * ms) turns the dates among them into waits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromStatus = (
  status: number,
  message: string,
  headers?: HeadersLike | undefined,
  now: number = Date.now()
): ProviderError.ProviderError => {
  if (status === 429 || status === 529) {
    const wait = retryAfterMs(headers, now)
    const rateLimit = RateLimitHeaders.parse(headers, now)
    return new ProviderError.RateLimitError({
      message,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
      ...(rateLimit === undefined ? {} : { rateLimit })
    })
  }
  if (status === 408 || status === 409 || status >= 500) return new ProviderError.TransientError({ message, status })
  const reason = status === 401 || status === 403 ? "auth" : status === 404 ? "not_found" : "bad_request"
  return new ProviderError.PermanentError({ reason, message, status })
}

const isProviderError = (error: unknown): error is ProviderError.ProviderError =>
  error instanceof ProviderError.RateLimitError || error instanceof ProviderError.TransientError ||
  error instanceof ProviderError.RequestTimeoutError || error instanceof ProviderError.PermanentError

/**
 * The typed error for anything an SDK or HTTP client threw. Errors with an HTTP `status` are
 * classified by it; connection failures, aborted or malformed responses are transient.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromUnknown = (error: unknown, api: string): ProviderError.ProviderError => {
  if (isProviderError(error)) return error
  const e = error as { status?: unknown; code?: unknown; headers?: unknown; message?: unknown; name?: unknown; cause?: unknown }
  const message = typeof e?.message === "string" && e.message !== "" ? e.message : String(error)
  if (typeof e?.status === "number" && e.status >= 400) {
    return fromStatus(e.status, `${api}: ${message}`, e.headers as HeadersLike | undefined)
  }
  const name = typeof e?.name === "string" ? e.name : "Error"
  return new ProviderError.TransientError({ message: `${api}: ${name === "Error" ? "" : `${name}: `}${message}` })
}
