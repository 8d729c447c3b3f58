import { describe, expect, it } from "@effect/vitest"
import { ProviderError } from "@prompto/core"
import * as ProviderFailure from "../src/ProviderFailure.js"

/** An error with a Node-style `code`, as the socket layer throws it. */
const systemError = (code: string, message: string) => Object.assign(new Error(message), { code })

class APIConnectionError extends Error {
  constructor(cause: unknown) {
    super("Connection error.", { cause })
  }
}

describe("ProviderFailure.fromUnknown", () => {
  it("names the URL and the code found under the SDK's \"Connection error.\"", () => {
    const error = ProviderFailure.fromUnknown(
      new APIConnectionError(systemError("ENOTFOUND", "getaddrinfo ENOTFOUND api.example.invalid")),
      "openai",
      "https://api.example.invalid/v1"
    )
    expect(error).toBeInstanceOf(ProviderError.TransientError)
    expect(error.message).toBe("openai: cannot connect to https://api.example.invalid/v1 (ENOTFOUND)")
  })

  it("finds the code in fetch's TypeError, and in an AggregateError of one per address", () => {
    const aggregate = Object.assign(
      new AggregateError([systemError("ECONNREFUSED", "connect ECONNREFUSED ::1:11434"), systemError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:11434")]),
      { message: "" }
    )
    const fetchFailed = new TypeError("fetch failed", { cause: aggregate })
    expect(ProviderFailure.fromUnknown(fetchFailed, "gemini", "http://localhost:11434").message).toBe(
      "gemini: cannot connect to http://localhost:11434 (ECONNREFUSED)"
    )
  })

  it("without a code, the innermost cause's message stands in for it; a broken connection is lost, not refused", () => {
    const badPort = new TypeError("fetch failed", { cause: new Error("bad port") })
    expect(ProviderFailure.fromUnknown(badPort, "gemini", "http://127.0.0.1:9").message).toBe(
      "gemini: cannot connect to http://127.0.0.1:9 (bad port)"
    )
    const reset = new APIConnectionError(systemError("ECONNRESET", "read ECONNRESET"))
    expect(ProviderFailure.fromUnknown(reset, "anthropic", "https://api.anthropic.com").message).toBe(
      "anthropic: lost the connection to https://api.anthropic.com (ECONNRESET)"
    )
    const undici = new TypeError("fetch failed", { cause: systemError("UND_ERR_CONNECT_TIMEOUT", "Connect Timeout Error") })
    expect(ProviderFailure.fromUnknown(undici, "gemini").message).toBe("gemini: cannot connect to the server (UND_ERR_CONNECT_TIMEOUT)")
  })

  it("leaves other errors as they were: statuses classified, anything else transient with its own message", () => {
    expect(ProviderFailure.fromUnknown(Object.assign(new Error("Bad"), { status: 400 }), "openai", "http://x")).toMatchObject({
      _tag: "PermanentError",
      message: "openai: Bad"
    })
    expect(ProviderFailure.fromUnknown(new SyntaxError("Unexpected end of JSON input"), "gemini", "http://x").message).toBe(
      "gemini: SyntaxError: Unexpected end of JSON input"
    )
  })
})
