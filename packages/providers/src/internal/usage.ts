/**
 * Token usage as the providers record it: the three counts every API reports, plus the cache
 * and reasoning counts some report, under one set of flat keys whatever the API calls them, and
 * how the usages of the requests of one record (the turns of a multi-turn prompt) add up.
 *
 * The counts follow one convention, so cost is computed the same way for every API:
 * `prompt_tokens` is every input token billed (cached, written to the cache and uncached) and
 * `completion_tokens` every output token billed (reasoning included); the other keys are parts
 * of those.
 *
 * @since 0.1.0
 */
import type { PromptRecord } from "@prompto/core"

/**
 * A usage with the detail keys. A key is present only when the API reported its count.
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage extends PromptRecord.Usage {
  /** Input tokens read from the provider's prompt cache (a part of `prompt_tokens`). */
  readonly cached_tokens?: number
  /** Input tokens written to the prompt cache (a part of `prompt_tokens`). */
  readonly cache_write_tokens?: number
  /** Output tokens spent on reasoning or thinking (a part of `completion_tokens`). */
  readonly reasoning_tokens?: number
}

/**
 * Every key a usage may hold, in the order they are written.
 *
 * @since 0.1.0
 * @category constants
 */
export const keys: ReadonlyArray<keyof Usage> = [
  "prompt_tokens",
  "completion_tokens",
  "total_tokens",
  "cached_tokens",
  "cache_write_tokens",
  "reasoning_tokens"
]

/**
 * A count as the API sent it: a number, or `undefined` for anything else (absent, `null`).
 *
 * @since 0.1.0
 * @category utils
 */
export const count = (value: unknown): number | undefined => typeof value === "number" ? value : undefined

/**
 * A usage from counts, keeping only those the API reported (an `undefined` count is left out,
 * never written as 0).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (counts: { readonly [K in keyof Usage]-?: number | undefined }): Usage => {
  const usage: Partial<Record<keyof Usage, number>> = {}
  for (const key of keys) {
    const value = counts[key]
    if (value !== undefined) usage[key] = value
  }
  return usage
}

/**
 * The usage of several requests: each key is the sum over the requests that reported it, and is
 * present if any did; `undefined` when no request reported a usage.
 *
 * @since 0.1.0
 * @category combinators
 */
export const sum = (usages: ReadonlyArray<Usage | undefined>): Usage | undefined => {
  // plain loops: this runs once an answer, and the arrays of the obvious version were most of
  // its cost (about 2 µs an answer, issue 14)
  if (!usages.some((usage) => usage !== undefined)) return undefined
  const counts: { -readonly [K in keyof Usage]-?: number | undefined } = {
    prompt_tokens: undefined,
    completion_tokens: undefined,
    total_tokens: undefined,
    cached_tokens: undefined,
    cache_write_tokens: undefined,
    reasoning_tokens: undefined
  }
  for (const key of keys) {
    for (const usage of usages) {
      const value = usage?.[key]
      if (value !== undefined) counts[key] = (counts[key] ?? 0) + value
    }
  }
  return make(counts)
}
