/**
 * Reading what an API says about its rate limits in its response headers, the same way for an
 * answer and for a refusal:
 *
 * - OpenAI, Azure OpenAI and servers copying them: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
 *   the resets as Go-style durations (`1s`, `6m0s`, `20ms`, `1h2m3.5s`);
 * - Anthropic: `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`, the resets as
 *   RFC 3339 timestamps, and `input-tokens` / `output-tokens` variants of the token headers;
 * - Gemini sends none.
 *
 * @since 0.1.0
 */
import type { Provider } from "@prompto/core"
import type { HeadersLike } from "../ProviderFailure.js"

type Mutable<A> = { -readonly [K in keyof A]: A[K] }

/** One header's value by its lower-case name. */
type Read = (name: string) => string | undefined

/**
 * A lookup over the headers. A `Headers` object answers `get` itself; a plain record (what some
 * SDK errors carry) is indexed by lower-case name once, not searched for each of a dozen names.
 */
const readerOf = (headers: HeadersLike): Read => {
  if (typeof (headers as { get?: unknown }).get === "function") {
    const get = (headers as { get: (name: string) => string | null }).get.bind(headers)
    return (name) => get(name) ?? undefined
  }
  const byName = new Map<string, string>()
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || value === null) continue
    byName.set(key.toLowerCase(), Array.isArray(value) ? String(value[0]) : String(value))
  }
  return (name) => byName.get(name)
}

/** A count (`limit`, `remaining`): a finite non-negative number, else nothing. */
const count = (text: string | undefined): number | undefined => {
  if (text === undefined || text.trim() === "") return undefined
  const value = Number(text)
  return Number.isFinite(value) && value >= 0 ? value : undefined
}

const unitMs: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ns: 1e-6 }

// "ms" before "m" so that `20ms` is not read as 20 minutes and an "s"
// (micro and mu written as escapes: see the CLI's build.mjs on keeping the bundle ASCII)
const durationPart = /(\d+(?:\.\d*)?|\.\d+)(ms|us|\u00b5s|\u03bcs|ns|h|m|s)/y

/**
 * Milliseconds in a Go-style duration as OpenAI sends its resets (`1s`, `6m0s`, `20ms`,
 * `1h2m3.5s`); a bare number is seconds (as some OpenAI-compatible servers send). `undefined`
 * for anything else.
 *
 * @since 0.1.0
 * @category parsing
 */
export const durationMs = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined
  const trimmed = text.trim()
  if (trimmed === "") return undefined
  const seconds = count(trimmed)
  if (seconds !== undefined) return seconds * 1000
  let total = 0
  durationPart.lastIndex = 0
  while (durationPart.lastIndex < trimmed.length) {
    const match = durationPart.exec(trimmed)
    if (match === null) return undefined
    total += Number(match[1]) * unitMs[match[2]!]!
  }
  return total
}

/** Milliseconds from `now` until an RFC 3339 timestamp (0 if it has passed), else nothing. */
const untilMs = (text: string | undefined, now: number): number | undefined => {
  if (text === undefined) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** One window's three values, any of which the API may leave out. */
interface Window {
  readonly limit: number | undefined
  readonly remaining: number | undefined
  readonly resetMs: number | undefined
}

const isEmpty = (window: Window): boolean =>
  window.limit === undefined && window.remaining === undefined && window.resetMs === undefined

/** The share of a window that is left, when both counts are known. */
const leftShare = (window: Window): number | undefined =>
  window.limit === undefined || window.remaining === undefined || window.limit === 0
    ? undefined
    : window.remaining / window.limit

/**
 * Of Anthropic's separate input and output token windows, the one that runs out first: the
 * smaller share left, or (without limits) the fewer tokens left.
 */
const stricter = (input: Window, output: Window): Window => {
  if (isEmpty(output)) return input
  if (isEmpty(input)) return output
  const inputShare = leftShare(input)
  const outputShare = leftShare(output)
  if (inputShare !== undefined && outputShare !== undefined) return outputShare < inputShare ? output : input
  if (input.remaining !== undefined && output.remaining !== undefined) {
    return output.remaining < input.remaining ? output : input
  }
  return input
}

const openAiWindow = (read: Read, kind: "requests" | "tokens"): Window => ({
  limit: count(read(`x-ratelimit-limit-${kind}`)),
  remaining: count(read(`x-ratelimit-remaining-${kind}`)),
  resetMs: durationMs(read(`x-ratelimit-reset-${kind}`))
})

const anthropicWindow = (read: Read, kind: string, now: number): Window => ({
  limit: count(read(`anthropic-ratelimit-${kind}-limit`)),
  remaining: count(read(`anthropic-ratelimit-${kind}-remaining`)),
  resetMs: untilMs(read(`anthropic-ratelimit-${kind}-reset`), now)
})

const toInfo = (requests: Window, tokens: Window): Provider.RateLimitInfo | undefined => {
  if (isEmpty(requests) && isEmpty(tokens)) return undefined
  const info: Mutable<Provider.RateLimitInfo> = {}
  if (requests.limit !== undefined) info.limitRequests = requests.limit
  if (requests.remaining !== undefined) info.remainingRequests = requests.remaining
  if (requests.resetMs !== undefined) info.resetRequestsMs = requests.resetMs
  if (tokens.limit !== undefined) info.limitTokens = tokens.limit
  if (tokens.remaining !== undefined) info.remainingTokens = tokens.remaining
  if (tokens.resetMs !== undefined) info.resetTokensMs = tokens.resetMs
  return info
}

/**
 * What the headers say about the API's rate limits, normalized; `undefined` when they say
 * nothing (Gemini, local servers). OpenAI's names are read first, then Anthropic's, whose
 * `tokens` window is used when sent, else the stricter of its `input-tokens` and
 * `output-tokens` windows. `now` (epoch ms) turns Anthropic's reset timestamps into waits.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (headers: HeadersLike | undefined, now: number): Provider.RateLimitInfo | undefined => {
  if (headers === undefined || headers === null) return undefined
  const read = readerOf(headers)
  const openAi = toInfo(openAiWindow(read, "requests"), openAiWindow(read, "tokens"))
  if (openAi !== undefined) return openAi
  const tokens = anthropicWindow(read, "tokens", now)
  return toInfo(
    anthropicWindow(read, "requests", now),
    isEmpty(tokens)
      ? stricter(anthropicWindow(read, "input-tokens", now), anthropicWindow(read, "output-tokens", now))
      : tokens
  )
}
