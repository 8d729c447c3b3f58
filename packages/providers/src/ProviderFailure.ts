/**
 * Turning what an SDK or HTTP client threw into the core's typed errors, the same way for every
 * API: 429 and overload (529) are rate limits carrying `retry-after`; 408, 409, 5xx, connection
 * failures and malformed bodies are transient; 400, 401, 403, 404, 422 are permanent. A
 * connection failure names the URL and the network error code, whichever SDK wrapped it.
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

/** Codes of a connection that was made and then broke, rather than one never made. */
const lostCodes: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_ABORTED"
])

/** A network error code as Node (`ECONNREFUSED`, `ENOTFOUND`, ...) and undici (`UND_ERR_*`) set them. */
const networkCode = /^(E[A-Z0-9_]+|UND_ERR_[A-Z0-9_]+|[A-Z_]*CERT[A-Z_]*)$/

interface Cause {
  readonly code?: unknown
  readonly message?: unknown
  readonly name?: unknown
  readonly cause?: unknown
  readonly errors?: unknown
}

/**
 * The first network error code in an error's `cause` chain (the SDKs wrap undici's error, which
 * may wrap the socket's; Node's happy eyeballs gives an `AggregateError` of one per address).
 */
const codeOf = (error: unknown, depth = 0): string | undefined => {
  if (typeof error !== "object" || error === null || depth > 8) return undefined
  const e = error as Cause
  if (typeof e.code === "string" && networkCode.test(e.code)) return e.code
  if (Array.isArray(e.errors)) {
    for (const each of e.errors) {
      const code = codeOf(each, depth + 1)
      if (code !== undefined) return code
    }
  }
  return codeOf(e.cause, depth + 1)
}

/** The innermost message of a `cause` chain (e.g. fetch's "bad port" under "fetch failed"). */
const innermostMessage = (error: unknown): string | undefined => {
  let message: string | undefined
  let current: unknown = error
  for (let depth = 0; typeof current === "object" && current !== null && depth <= 8; depth++) {
    const e = current as Cause
    if (typeof e.message === "string" && e.message !== "") message = e.message
    current = e.cause
  }
  return message
}

/**
 * Whether an error means the request never got an HTTP answer: the SDKs' `APIConnectionError`,
 * `fetch`'s `TypeError: fetch failed`, or any error with a network code in its chain.
 */
const isConnectionFailure = (error: unknown, code: string | undefined): boolean => {
  if (code !== undefined) return true
  const e = error as Cause | undefined
  const name = typeof e?.name === "string" ? e.name : ""
  const constructorName = (error as { constructor?: { name?: unknown } } | undefined)?.constructor?.name
  return constructorName === "APIConnectionError" || name === "APIConnectionError" ||
    (error instanceof TypeError && e?.message === "fetch failed")
}

/**
 * The message for a request that got no HTTP answer, naming the URL and the network error code
 * (`openai: cannot connect to http://127.0.0.1:9/v1 (ECONNREFUSED)`); a connection that broke
 * midway says it was lost. Without a code, the innermost cause's message stands in for it.
 *
 * @since 0.1.0
 * @category utils
 */
export const connectionMessage = (api: string, url: string | undefined, code: string | undefined, detail?: string): string => {
  const where = url === undefined || url === "" ? "the server" : url
  const why = code ?? detail
  const suffix = why === undefined ? "" : ` (${why})`
  return code !== undefined && lostCodes.has(code)
    ? `${api}: lost the connection to ${where}${suffix}`
    : `${api}: cannot connect to ${where}${suffix}`
}

/**
 * The transient error for a request that got no HTTP answer (`error` is what the client threw,
 * or its cause), naming `url` and the network error code found in its cause chain.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConnection = (error: unknown, api: string, url?: string): ProviderError.TransientError =>
  new ProviderError.TransientError({ message: connectionMessage(api, url, codeOf(error), innermostMessage(error)) })

/**
 * The typed error for anything an SDK or HTTP client threw. Errors with an HTTP `status` are
 * classified by it; connection failures (named with `url`, the endpoint the client was sending
 * to, and the error code found in the cause chain), aborted or malformed responses are
 * transient.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromUnknown = (error: unknown, api: string, url?: string): ProviderError.ProviderError => {
  if (isProviderError(error)) return error
  const e = error as { status?: unknown; code?: unknown; headers?: unknown; message?: unknown; name?: unknown; cause?: unknown }
  const message = typeof e?.message === "string" && e.message !== "" ? e.message : String(error)
  if (typeof e?.status === "number" && e.status >= 400) {
    return fromStatus(e.status, `${api}: ${message}`, e.headers as HeadersLike | undefined)
  }
  // the SDKs' own message ("Connection error.", "fetch failed") says nothing: name the cause's
  if (isConnectionFailure(error, codeOf(error))) return fromConnection(error, api, url)
  const name = typeof e?.name === "string" ? e.name : "Error"
  return new ProviderError.TransientError({ message: `${api}: ${name === "Error" ? "" : `${name}: `}${message}` })
}
