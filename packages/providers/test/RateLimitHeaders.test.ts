import { describe, expect, it } from "@effect/vitest"
import { ProviderError } from "@prompto/core"
import * as RateLimitHeaders from "../src/internal/rateLimitHeaders.js"
import * as ProviderFailure from "../src/ProviderFailure.js"

const now = Date.parse("2025-06-01T12:00:00Z")

describe("RateLimitHeaders", () => {
  describe("durationMs", () => {
    it("reads OpenAI's Go-style durations", () => {
      expect(RateLimitHeaders.durationMs("1s")).toBe(1_000)
      expect(RateLimitHeaders.durationMs("6m0s")).toBe(360_000)
      expect(RateLimitHeaders.durationMs("20ms")).toBe(20)
      expect(RateLimitHeaders.durationMs("1h2m3.5s")).toBe(3_723_500)
      expect(RateLimitHeaders.durationMs("0s")).toBe(0)
      expect(RateLimitHeaders.durationMs("2m59.56s")).toBeCloseTo(179_560, 6)
      expect(RateLimitHeaders.durationMs("1m500ms")).toBe(60_500)
      expect(RateLimitHeaders.durationMs("250us")).toBeCloseTo(0.25, 9)
      expect(RateLimitHeaders.durationMs("250µs")).toBeCloseTo(0.25, 9)
    })

    it("reads a bare number as seconds", () => {
      expect(RateLimitHeaders.durationMs("7")).toBe(7_000)
      expect(RateLimitHeaders.durationMs(" 0.5 ")).toBe(500)
    })

    it("gives nothing for what is not a duration", () => {
      for (const text of [undefined, "", "  ", "soon", "1x", "1s later", "-1s", "s", "1h 2m"]) {
        expect(RateLimitHeaders.durationMs(text), String(text)).toBeUndefined()
      }
    })
  })

  describe("parse", () => {
    it("reads OpenAI's and Azure's x-ratelimit-* headers from a Headers object", () => {
      const headers = new Headers({
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29980",
        "x-ratelimit-reset-tokens": "6m0s"
      })
      expect(RateLimitHeaders.parse(headers, now)).toEqual({
        limitRequests: 500,
        remainingRequests: 499,
        resetRequestsMs: 120,
        limitTokens: 30_000,
        remainingTokens: 29_980,
        resetTokensMs: 360_000
      })
    })

    it("keeps only what was sent (Azure often sends the remaining counts alone)", () => {
      const headers = { "x-ratelimit-remaining-requests": "99", "x-ratelimit-remaining-tokens": "7990" }
      const info = RateLimitHeaders.parse(headers, now)
      expect(info).toEqual({ remainingRequests: 99, remainingTokens: 7_990 })
      expect(Object.keys(info!)).toEqual(["remainingRequests", "remainingTokens"])
    })

    it("reads a plain record whatever the case of its names, and the first of repeated values", () => {
      const headers = { "X-RateLimit-Limit-Requests": "60", "x-ratelimit-remaining-requests": ["59", "58"] }
      expect(RateLimitHeaders.parse(headers, now)).toEqual({ limitRequests: 60, remainingRequests: 59 })
    })

    it("skips values that are not counts or durations", () => {
      const headers = {
        "x-ratelimit-limit-requests": "lots",
        "x-ratelimit-remaining-requests": "-1",
        "x-ratelimit-reset-requests": "whenever",
        "x-ratelimit-limit-tokens": "1000"
      }
      expect(RateLimitHeaders.parse(headers, now)).toEqual({ limitTokens: 1_000 })
    })

    it("reads Anthropic's headers, the resets as waits from the given now", () => {
      const headers = new Headers({
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2025-06-01T12:00:30Z",
        "anthropic-ratelimit-tokens-limit": "8000",
        "anthropic-ratelimit-tokens-remaining": "7900",
        "anthropic-ratelimit-tokens-reset": "2025-06-01T12:01:00.500+00:00",
        // the combined window wins over these
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "100"
      })
      expect(RateLimitHeaders.parse(headers, now)).toEqual({
        limitRequests: 50,
        remainingRequests: 49,
        resetRequestsMs: 30_000,
        limitTokens: 8_000,
        remainingTokens: 7_900,
        resetTokensMs: 60_500
      })
    })

    it("a reset already past is a wait of 0; a reset that is not a date is left out", () => {
      const headers = {
        "anthropic-ratelimit-requests-reset": "2025-06-01T11:59:00Z",
        "anthropic-ratelimit-tokens-remaining": "10",
        "anthropic-ratelimit-tokens-reset": "in a minute"
      }
      expect(RateLimitHeaders.parse(headers, now)).toEqual({ resetRequestsMs: 0, remainingTokens: 10 })
    })

    it("without Anthropic's combined tokens window, takes the input or output window with the smaller share left", () => {
      const windows = (input: number, output: number) => ({
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": String(input),
        "anthropic-ratelimit-input-tokens-reset": "2025-06-01T12:00:10Z",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": String(output),
        "anthropic-ratelimit-output-tokens-reset": "2025-06-01T12:00:20Z"
      })
      // output: 1,000 of 8,000 left (12.5%) is stricter than input: 20,000 of 40,000 (50%)
      expect(RateLimitHeaders.parse(windows(20_000, 1_000), now)).toEqual({
        limitTokens: 8_000,
        remainingTokens: 1_000,
        resetTokensMs: 20_000
      })
      // input: 2,000 of 40,000 (5%) is stricter than output: 4,000 of 8,000 (50%)
      expect(RateLimitHeaders.parse(windows(2_000, 4_000), now)).toEqual({
        limitTokens: 40_000,
        remainingTokens: 2_000,
        resetTokensMs: 10_000
      })
      // only one of them sent
      expect(RateLimitHeaders.parse({ "anthropic-ratelimit-output-tokens-remaining": "5" }, now)).toEqual({ remainingTokens: 5 })
    })

    it("without limits, the input or output window with fewer tokens left", () => {
      const headers = {
        "anthropic-ratelimit-input-tokens-remaining": "300",
        "anthropic-ratelimit-output-tokens-remaining": "200"
      }
      expect(RateLimitHeaders.parse(headers, now)).toEqual({ remainingTokens: 200 })
    })

    it("gives nothing for headers without rate limits (Gemini, local servers) or no headers", () => {
      expect(RateLimitHeaders.parse(new Headers({ "content-type": "application/json", "x-request-id": "req_1" }), now))
        .toBeUndefined()
      expect(RateLimitHeaders.parse({}, now)).toBeUndefined()
      expect(RateLimitHeaders.parse(undefined, now)).toBeUndefined()
    })
  })

  describe("ProviderFailure.fromStatus", () => {
    it("a 429 carries the rate-limit headers beside retry-after", () => {
      const error = ProviderFailure.fromStatus(429, "slow down", {
        "retry-after": "2",
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-06-01T12:00:02Z"
      }, now)
      expect(error).toBeInstanceOf(ProviderError.RateLimitError)
      expect(error).toMatchObject({
        retryAfterMs: 2_000,
        rateLimit: { limitRequests: 50, remainingRequests: 0, resetRequestsMs: 2_000 }
      })
    })

    it("a 429 without such headers has no rateLimit; other statuses never do", () => {
      const bare = ProviderFailure.fromStatus(429, "slow down", { "retry-after": "1" })
      expect(bare).toBeInstanceOf(ProviderError.RateLimitError)
      expect("rateLimit" in bare).toBe(false)
      const server = ProviderFailure.fromStatus(500, "boom", { "x-ratelimit-remaining-requests": "3" })
      expect(server).toBeInstanceOf(ProviderError.TransientError)
      expect("rateLimit" in server).toBe(false)
    })

    it("RateLimitError is still made with a message alone, and with its rateLimit", () => {
      expect(new ProviderError.RateLimitError({ message: "429" }).rateLimit).toBeUndefined()
      const error = new ProviderError.RateLimitError({ message: "429", rateLimit: { remainingTokens: 0, resetTokensMs: 500 } })
      expect(error.rateLimit).toEqual({ remainingTokens: 0, resetTokensMs: 500 })
    })
  })
})
