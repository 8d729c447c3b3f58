/**
 * The typed failures of a provider call. Retry policies test `retryable`, never a message.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { RateLimitInfo } from "./Provider.js"

/** `Provider.RateLimitInfo` as a schema; exact optionals, so its type is that interface. */
const rateLimitInfo: Schema.Schema<RateLimitInfo> = Schema.Struct({
  limitRequests: Schema.optionalWith(Schema.Number, { exact: true }),
  remainingRequests: Schema.optionalWith(Schema.Number, { exact: true }),
  resetRequestsMs: Schema.optionalWith(Schema.Number, { exact: true }),
  limitTokens: Schema.optionalWith(Schema.Number, { exact: true }),
  remainingTokens: Schema.optionalWith(Schema.Number, { exact: true }),
  resetTokensMs: Schema.optionalWith(Schema.Number, { exact: true })
})

/**
 * The API said "slow down" (HTTP 429, Anthropic 529 overloaded). Retryable; carries the
 * server's `retry-after` when it sent one, and its rate-limit headers (`rateLimit`) when it
 * sent any.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitError extends Schema.TaggedError<RateLimitError>()("RateLimitError", {
  message: Schema.String,
  retryAfterMs: Schema.optional(Schema.Number),
  rateLimit: Schema.optional(rateLimitInfo)
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  /** @since 0.1.0 */
  readonly kind = "rate_limited"
}

/**
 * A server or network failure that may pass on a second try (5xx, 408, 409, connection reset,
 * malformed body). Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransientError extends Schema.TaggedError<TransientError>()("TransientError", {
  message: Schema.String,
  status: Schema.optional(Schema.Number),
  /** The error's name in the record's `response` instead of the tag (prompto's `Exception`). */
  errorName: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  /** @since 0.1.0 */
  readonly kind = "transient"
}

/**
 * The request took longer than the per-request timeout and was aborted. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeoutError extends Schema.TaggedError<RequestTimeoutError>()("RequestTimeoutError", {
  message: Schema.String
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  /** @since 0.1.0 */
  readonly kind = "timeout"
}

/**
 * Why a permanent error will not pass on a retry.
 *
 * @since 0.1.0
 * @category models
 */
export type PermanentReason =
  | "bad_request"
  | "auth"
  | "not_found"
  | "validation"
  | "unknown_api"
  | "configuration"
  | "internal"

/**
 * A failure that a retry cannot fix (bad request, auth, unknown API, invalid prompt, missing
 * configuration). Written to the completed file at once.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermanentError extends Schema.TaggedError<PermanentError>()("PermanentError", {
  reason: Schema.Literal(
    "bad_request",
    "auth",
    "not_found",
    "validation",
    "unknown_api",
    "configuration",
    "internal",
    "stopped"
  ),
  message: Schema.String,
  status: Schema.optional(Schema.Number),
  /** The error's name in the record's `response` instead of the tag (prompto's `ValueError`). */
  errorName: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  /** @since 0.1.0 */
  get kind(): string {
    return this.reason
  }
}

/**
 * Any failure of a provider call.
 *
 * @since 0.1.0
 * @category errors
 */
export type ProviderError = RateLimitError | TransientError | RequestTimeoutError | PermanentError
