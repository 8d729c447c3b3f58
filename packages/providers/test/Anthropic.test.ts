import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Anthropic from "../src/Anthropic.js"
import * as AnthropicServer from "./servers/AnthropicServer.js"

/** prompto's example files, copied into the repository (`test/fixtures/prompto-examples`). */
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples")
const exampleFile = path.join(fixtures, "anthropic/data/input/anthropic-example.jsonl")
const multimodalFile = path.join(fixtures, "anthropic/data/input/anthropic-multimodal-example.jsonl")
const evaluationFile = path.join(fixtures, "evaluation/data/input/evaluation-example.jsonl")
const fixtureMedia = path.join(fixtures, "openai/data/media")

const haiku = "claude-3-haiku-20240307"
const sonnet = "claude-3-5-sonnet-20240620"
const maxTokens = { temperature: 1, max_tokens: 100 }

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-anthropic-"))
const readJsonl = (file: string): Array<any> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))
const base64Of = (file: string) => fs.readFileSync(path.join(fixtureMedia, file)).toString("base64")

/** A media folder holding the fixture images. */
const mediaFolder = () => {
  const dir = path.join(tempDir(), "media")
  fs.cpSync(fixtureMedia, dir, { recursive: true })
  return dir
}

const record = (
  prompt: PromptRecord.Prompt,
  parameters: Readonly<Record<string, unknown>> = maxTokens,
  model = haiku
): PromptRecord.IdentifiedRecord => ({ id: 1, api: "anthropic", model_name: model, prompt, parameters })

const config = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

/** A server, a fresh provider and a configuration pointing at the server. */
const withServer = <A, E>(
  body: (server: AnthropicServer.AnthropicServer, provider: Provider.Provider) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const server = yield* AnthropicServer.start()
    return yield* body(server, Anthropic.make()).pipe(
      config([["ANTHROPIC_API_KEY", "test-key"], ["ANTHROPIC_BASE_URL", server.url]])
    )
  })

const failure = (effect: Effect.Effect<Provider.ProviderResponse, ProviderError.ProviderError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.die(`expected a failure, got ${JSON.stringify(result.right)}`))

describe("Anthropic", () => {
  describe("query", () => {
    it.scopedLive("sends a string prompt as one user message, with auth and version headers", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Message",
            text: "Technology shapes us.",
            stopReason: "max_tokens",
            model: "claude-3-haiku-20240307-served",
            usage: { input_tokens: 12, output_tokens: 4 }
          })
          const response = yield* provider.query(record("How does technology impact us?"))
          expect(response).toEqual({
            response: "Technology shapes us.",
            usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
            fields: { finish_reason: "max_tokens", model: "claude-3-haiku-20240307-served" }
          })
          expect(server.requests).toHaveLength(1)
          const [request] = server.requests
          expect(request!.method).toBe("POST")
          expect(request!.path).toBe("/v1/messages")
          // the SDK (v1, API version 2026-10-21) sends the key as a bearer token
          expect(request!.headers.authorization).toBe("Bearer test-key")
          expect(request!.headers["anthropic-version"]).toMatch(/^\d{4}-\d\d-\d\d$/)
          expect(request!.body).toEqual({
            model: haiku,
            messages: [{ role: "user", content: "How does technology impact us?" }],
            temperature: 1,
            max_tokens: 100
          })
        })))

    it.scopedLive("answers with the server's default text and usage when none is programmed", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record("Hello there", { max_tokens: 5 }, sonnet))
          expect(response.response).toBe(AnthropicServer.defaultAnswer(0, sonnet, "Hello there"))
          expect(response.response).toBe(server.requests[0]!.answer)
          // 2 input words; the answer "Answer 0 from <model>: Hello there" has 6 words; the server
          // reports no cache use, as 0s
          expect(response.usage).toEqual({
            prompt_tokens: 2,
            completion_tokens: 6,
            total_tokens: 8,
            cached_tokens: 0,
            cache_write_tokens: 0
          })
          expect(response.fields).toEqual({ finish_reason: "end_turn", model: sonnet })
        })))

    it.scopedLive("adds cache reads and writes into prompt_tokens, and records them as cached_tokens and cache_write_tokens", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Message",
            text: "Cached.",
            usage: { input_tokens: 10, output_tokens: 4, cache_creation_input_tokens: 1200, cache_read_input_tokens: 300 }
          })
          const response = yield* provider.query(record("How does technology impact us?"))
          // input_tokens leaves out the cache reads and writes, which are billed input too
          expect(response.usage).toEqual({
            prompt_tokens: 10 + 1200 + 300,
            completion_tokens: 4,
            total_tokens: 1514,
            cached_tokens: 300,
            cache_write_tokens: 1200
          })
        })))

    it.scopedLive("cache counts that are absent or null are not recorded", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Message",
            usage: { input_tokens: 10, output_tokens: 4, cache_creation_input_tokens: null, cache_read_input_tokens: 8 }
          })
          const response = yield* provider.query(record("hi"))
          expect(response.usage).toEqual({ prompt_tokens: 18, completion_tokens: 4, total_tokens: 22, cached_tokens: 8 })
        })))

    it.scopedLive("a multi-turn chat sums prompt tokens with their cache parts, and the cache counts, over the turns", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue(
            {
              _tag: "Message",
              text: "Trade creates jobs.",
              usage: { input_tokens: 7, output_tokens: 3, cache_creation_input_tokens: 100, cache_read_input_tokens: 0 }
            },
            { _tag: "Message", text: "A joke.", usage: { input_tokens: 15, output_tokens: 2, cache_read_input_tokens: 100 } }
          )
          const response = yield* provider.query(
            record(["How does international trade create jobs?", "I want a joke about that"])
          )
          // turn 1: 7 + 100 written; turn 2: 15 + 100 read
          expect(response.usage).toEqual({
            prompt_tokens: 107 + 115,
            completion_tokens: 5,
            total_tokens: 227,
            cached_tokens: 100,
            cache_write_tokens: 100
          })
        })))

    it.scopedLive("concatenates the text blocks of an answer; thinking blocks are kept as reasoning, not in the text", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Message",
            text: ["Hello, ", "world", "!"],
            extraBlocks: [
              AnthropicServer.thinkingBlock("Let me think. "),
              { type: "redacted_thinking", data: "EmwKAhgBEgy3va3pzix" },
              AnthropicServer.thinkingBlock("A greeting it is.")
            ]
          })
          const response = yield* provider.query(record("hi", { max_tokens: 2048, thinking: { type: "enabled", budget_tokens: 1024 } }))
          expect(response.response).toBe("Hello, world!")
          expect(response.fields).toEqual({ finish_reason: "end_turn", reasoning: "Let me think. A greeting it is.", model: haiku })
          expect(server.requests[0]!.body.thinking).toEqual({ type: "enabled", budget_tokens: 1024 })
        })))

    it.scopedLive("a tool_use answer keeps its calls as tool_calls (input as arguments, the block as raw); response is its text", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const weather = AnthropicServer.toolUseBlock("toolu_01A", "get_weather", { location: "Paris" })
          const time = AnthropicServer.toolUseBlock("toolu_01B", "get_time", {})
          server.enqueue(
            { _tag: "Message", text: [], trailingBlocks: [weather, time], stopReason: "tool_use" },
            { _tag: "Message", text: "Let me check.", trailingBlocks: [weather], stopReason: "tool_use" }
          )
          const tools = [{ name: "get_weather", input_schema: { type: "object" } }]
          const only = yield* provider.query(record("Weather and time in Paris?", { max_tokens: 100, tools }))
          expect(only.response).toBe("")
          expect(only.fields).toEqual({
            finish_reason: "tool_use",
            tool_calls: [
              { id: "toolu_01A", name: "get_weather", arguments: { location: "Paris" }, raw: weather },
              { id: "toolu_01B", name: "get_time", arguments: {}, raw: time }
            ],
            model: haiku
          })
          expect(server.requests[0]!.body.tools).toEqual(tools)
          const withText = yield* provider.query(record("Weather?", { max_tokens: 100, tools }))
          expect(withText.response).toBe("Let me check.")
          expect(withText.fields?.tool_calls).toEqual([
            { id: "toolu_01A", name: "get_weather", arguments: { location: "Paris" }, raw: weather }
          ])
        })))

    it.scopedLive("a multi-turn chat keeps tool_calls and reasoning per turn", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const call = AnthropicServer.toolUseBlock("toolu_2", "calc", { expression: "2+2" })
          server.enqueue(
            { _tag: "Message", text: "Hi.", extraBlocks: [AnthropicServer.thinkingBlock("greet")] },
            { _tag: "Message", text: "Computing.", trailingBlocks: [call], stopReason: "tool_use" }
          )
          const response = yield* provider.query(record(["hello", "what is 2+2?"]))
          expect(response.response).toEqual(["Hi.", "Computing."])
          expect(response.fields).toEqual({
            finish_reason: ["end_turn", "tool_use"],
            tool_calls: [[], [{ id: "toolu_2", name: "calc", arguments: { expression: "2+2" }, raw: call }]],
            reasoning: ["greet", null],
            model: haiku
          })
        })))

    it.scopedLive("sends a list of strings turn by turn with the history, and answers with a list", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue(
            { _tag: "Message", text: "Trade creates jobs.", usage: { input_tokens: 7, output_tokens: 3 } },
            { _tag: "Message", text: "A joke.", stopReason: "max_tokens", usage: { input_tokens: 15, output_tokens: 2 } }
          )
          const response = yield* provider.query(
            record(["How does international trade create jobs?", "I want a joke about that"])
          )
          expect(response.response).toEqual(["Trade creates jobs.", "A joke."])
          expect(response.usage).toEqual({ prompt_tokens: 22, completion_tokens: 5, total_tokens: 27 })
          expect(response.fields).toEqual({ finish_reason: ["end_turn", "max_tokens"], model: haiku })
          expect(server.requests.map((request) => request.body.messages)).toEqual([
            [{ role: "user", content: "How does international trade create jobs?" }],
            [
              { role: "user", content: "How does international trade create jobs?" },
              { role: "assistant", content: "Trade creates jobs." },
              { role: "user", content: "I want a joke about that" }
            ]
          ])
        })))

    it.scopedLive("reports the answer's anthropic-ratelimit-* headers as rateLimit, resets as waits from now", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const before = Date.now()
          server.enqueue({ _tag: "Message", headers: AnthropicServer.rateLimitHeaders(before, { resetInMs: 40_000 }) })
          const response = yield* provider.query(record("hi"))
          const after = Date.now()
          const { resetRequestsMs, resetTokensMs, ...counts } = response.rateLimit ?? {}
          // the combined tokens window (input here: 39,000 of 40,000 left) wins over its parts
          expect(counts).toEqual({ limitRequests: 50, remainingRequests: 49, limitTokens: 40_000, remainingTokens: 39_000 })
          // the reset is sent to the second: up to a second sooner, less the time the call took
          for (const reset of [resetRequestsMs, resetTokensMs]) {
            expect(reset).toBeGreaterThan(40_000 - 1_000 - (after - before))
            expect(reset).toBeLessThanOrEqual(40_000)
          }
          // an answer without such headers has none
          expect("rateLimit" in (yield* provider.query(record("hi")))).toBe(false)
        })))

    it.scopedLive("without the combined tokens window, the stricter of the input and output windows; a multi-turn chat reports the last answer's", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const now = Date.now()
          server.enqueue(
            { _tag: "Message", headers: AnthropicServer.rateLimitHeaders(now, { remainingRequests: 10 }) },
            {
              _tag: "Message",
              headers: AnthropicServer.rateLimitHeaders(now, { remainingRequests: 9, remainingOutputTokens: 400, tokens: false })
            }
          )
          const response = yield* provider.query(record(["first", "second"]))
          // output: 400 of 8,000 left is stricter than input: 39,000 of 40,000
          expect(response.rateLimit).toMatchObject({ remainingRequests: 9, limitTokens: 8_000, remainingTokens: 400 })
        })))

    it.scopedLive("pulls a leading system message out into the top-level `system` argument", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record([
            { role: "system", content: "You are a helpful assistant designed to answer questions briefly." },
            { role: "user", content: "Hello, I'm Bob and I'm 6 years old" },
            { role: "assistant", content: "Hi Bob, how may I assist you?" },
            { role: "user", content: "How old will I be next year?" }
          ]))
          expect(response.response).toBe(AnthropicServer.defaultAnswer(0, haiku, "How old will I be next year?"))
          const body = server.requests[0]!.body
          expect(body.system).toBe("You are a helpful assistant designed to answer questions briefly.")
          expect(body.messages).toEqual([
            { role: "user", content: "Hello, I'm Bob and I'm 6 years old" },
            { role: "assistant", content: "Hi Bob, how may I assist you?" },
            { role: "user", content: "How old will I be next year?" }
          ])
          expect(body.max_tokens).toBe(100)

          // without a system message no `system` key is sent
          yield* provider.query(record([{ role: "user", content: "hi" }]))
          expect("system" in server.requests[1]!.body).toBe(false)
        })))

    it.scopedLive("reads prompto's image blocks from the media folder as base64; Anthropic's own blocks pass through", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const media = mediaFolder()
          const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
          yield* provider.query(record([
            {
              role: "user",
              content: [
                "describe what is happening in this image",
                { type: "image", source: { media: "pantani_giro.jpg", media_type: "image/jpeg" } },
                { type: "image", source: { media: "mortadella.jpg" } },
                { type: "image", source: { type: "base64", media_type: "image/png", data: png }, cache_control: { type: "ephemeral" } },
                { type: "image", source: { media: "https://example.com/cat.jpg", media_type: "image/jpeg" } },
                { type: "text", text: "thanks" }
              ]
            },
            { role: "assistant", content: "A cyclist." },
            { role: "user", content: { type: "image", source: { media: "mortadella.jpg", media_type: "image/jpeg" } } }
          ])).pipe(Effect.locally(Provider.mediaFolder, media))
          const messages = server.requests[0]!.body.messages
          expect(messages[0].content).toEqual([
            { type: "text", text: "describe what is happening in this image" },
            { type: "image", source: { type: "base64", media_type: "image/jpeg", data: base64Of("pantani_giro.jpg") } },
            // no media_type: taken from the file name
            { type: "image", source: { type: "base64", media_type: "image/jpeg", data: base64Of("mortadella.jpg") } },
            { type: "image", source: { type: "base64", media_type: "image/png", data: png }, cache_control: { type: "ephemeral" } },
            { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
            { type: "text", text: "thanks" }
          ])
          expect(messages[1]).toEqual({ role: "assistant", content: "A cyclist." })
          expect(messages[2].content).toEqual([
            { type: "image", source: { type: "base64", media_type: "image/jpeg", data: base64Of("mortadella.jpg") } }
          ])
        })))

    it.scopedLive("per-model variables choose the key and the endpoint", () =>
      Effect.gen(function*() {
        const shared = yield* AnthropicServer.start({ apiKeys: ["key-shared"] })
        const dedicated = yield* AnthropicServer.start({ apiKeys: ["key-sonnet"] })
        const provider = Anthropic.make()
        yield* Effect.gen(function*() {
          yield* provider.query(record("to haiku"))
          yield* provider.query(record("to sonnet", maxTokens, sonnet))
          yield* provider.query(record("to haiku again"))
        }).pipe(config([
          ["ANTHROPIC_API_KEY", "key-shared"],
          ["ANTHROPIC_BASE_URL", shared.url],
          ["ANTHROPIC_API_KEY_claude_3_5_sonnet_20240620", "key-sonnet"],
          ["ANTHROPIC_BASE_URL_claude_3_5_sonnet_20240620", dedicated.url]
        ]))
        expect(shared.requests.map((request) => request.body.messages[0].content)).toEqual(["to haiku", "to haiku again"])
        expect(shared.requests.every((request) => request.headers.authorization === "Bearer key-shared")).toBe(true)
        expect(dedicated.requests.map((request) => request.body.messages[0].content)).toEqual(["to sonnet"])
        expect(dedicated.requests[0]!.headers.authorization).toBe("Bearer key-sonnet")
      }))

    it.scopedLive("refuses invalid records and missing configuration without sending anything", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const noMaxTokens = yield* failure(provider.query(record("hi", { temperature: 1 })))
          expect(noMaxTokens).toBeInstanceOf(ProviderError.PermanentError)
          expect(noMaxTokens).toMatchObject({ reason: "validation" })
          expect(noMaxTokens.message).toContain("parameters.max_tokens")

          const twoSystems = yield* failure(provider.query(record([
            { role: "system", content: "a" },
            { role: "system", content: "b" },
            { role: "user", content: "hi" }
          ])))
          expect(twoSystems).toMatchObject({ _tag: "PermanentError", reason: "validation" })
          expect(twoSystems.message).toContain("prompt[1]")

          const missingMedia = yield* failure(
            provider.query(record([{ role: "user", content: [{ type: "image", source: { media: "nope.jpg", media_type: "image/jpeg" } }] }]))
              .pipe(Effect.locally(Provider.mediaFolder, mediaFolder()))
          )
          expect(missingMedia).toMatchObject({ _tag: "PermanentError", reason: "validation" })
          expect(missingMedia.message).toContain("nope.jpg")

          const noKey = yield* failure(provider.query(record("hi")).pipe(config([["ANTHROPIC_BASE_URL", server.url]])))
          expect(noKey).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
          expect(noKey.message).toContain("\"ANTHROPIC_API_KEY_claude_3_haiku_20240307\", \"ANTHROPIC_API_KEY\"")

          const badUrl = yield* failure(provider.query(record("hi")).pipe(config([
            ["ANTHROPIC_API_KEY", "test-key"],
            ["ANTHROPIC_BASE_URL", "not a url"]
          ])))
          expect(badUrl).toMatchObject({ _tag: "PermanentError", reason: "configuration" })

          const empty = yield* failure(provider.query(record([])))
          expect(empty).toMatchObject({
            _tag: "PermanentError",
            reason: "validation",
            message: "prompt: the list is empty: give at least one turn or message"
          })
          expect(server.requests).toHaveLength(0)
        })))
  })

  describe("errors", () => {
    it.scopedLive("429 with retry-after is a rate limit carrying the wait; the SDK does not retry", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Error",
            status: 429,
            type: "rate_limit_error",
            message: "Number of request tokens has exceeded your per-minute rate limit",
            headers: { "retry-after": "7" }
          })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toBeInstanceOf(ProviderError.RateLimitError)
          expect(error).toMatchObject({ retryAfterMs: 7000, retryable: true })
          expect(error.message).toContain("per-minute rate limit")
          expect(server.requests).toHaveLength(1)
        })))

    it.scopedLive("429 with anthropic-ratelimit-* headers is a rate limit carrying them", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const before = Date.now()
          server.enqueue({
            _tag: "Error",
            status: 429,
            type: "rate_limit_error",
            message: "Number of request tokens has exceeded your per-minute rate limit",
            headers: {
              "retry-after": "12",
              ...AnthropicServer.rateLimitHeaders(before, { remainingRequests: 0, remainingInputTokens: 0, resetInMs: 12_000 })
            }
          })
          const error = yield* failure(provider.query(record("hi")))
          const after = Date.now()
          expect(error).toBeInstanceOf(ProviderError.RateLimitError)
          if (error._tag !== "RateLimitError") return
          expect(error.retryAfterMs).toBe(12_000)
          expect(error.rateLimit).toMatchObject({ limitRequests: 50, remainingRequests: 0, limitTokens: 40_000, remainingTokens: 0 })
          // the reset is sent to the second: up to a second sooner, less the time the call took
          for (const reset of [error.rateLimit?.resetRequestsMs, error.rateLimit?.resetTokensMs]) {
            expect(reset).toBeGreaterThan(12_000 - 1_000 - (after - before))
            expect(reset).toBeLessThanOrEqual(12_000)
          }
        })))

    it.scopedLive("529 overloaded is a rate limit", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Error", status: 529, type: "overloaded_error", message: "Overloaded" })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toBeInstanceOf(ProviderError.RateLimitError)
          expect(error.message).toBe("anthropic: 529 overloaded_error: Overloaded")
          expect(server.requests).toHaveLength(1)
        })))

    it.scopedLive("500 is transient and sent once", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Error", status: 500, type: "api_error", message: "Internal server error" })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(error).toMatchObject({ status: 500, retryable: true })
          expect(server.requests).toHaveLength(1)
        })))

    it.scopedLive("a multi-turn prompt fails with the turn that fails", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Message", text: "first" }, { _tag: "Error", status: 500, type: "api_error", message: "boom" })
          const error = yield* failure(provider.query(record(["a", "b", "c"])))
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(server.requests).toHaveLength(2)
        })))

    it.scopedLive("400 with Anthropic's error body is permanent and carries its message", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Error",
            status: 400,
            type: "invalid_request_error",
            message: "temperature: range: 0..1"
          })
          const error = yield* failure(provider.query(record("hi", { max_tokens: 10, temperature: 3 })))
          expect(error).toBeInstanceOf(ProviderError.PermanentError)
          expect(error).toMatchObject({ reason: "bad_request", status: 400, retryable: false })
          expect(error.message).toBe("anthropic: 400 invalid_request_error: temperature: range: 0..1")

          // the server's own validation: an image type the API does not take
          const media = mediaFolder()
          const rejected = yield* failure(
            provider.query(record([{ role: "user", content: [{ type: "image", source: { media: "mortadella.jpg", media_type: "image/bmp" } }] }]))
              .pipe(Effect.locally(Provider.mediaFolder, media))
          )
          expect(rejected).toMatchObject({ _tag: "PermanentError", reason: "bad_request" })
          expect(rejected.message).toContain("media_type")
        })))

    it.scopedLive("a wrong key is a permanent auth error", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          const error = yield* failure(provider.query(record("hi")).pipe(config([
            ["ANTHROPIC_API_KEY", "wrong-key"],
            ["ANTHROPIC_BASE_URL", server.url]
          ])))
          expect(error).toMatchObject({ _tag: "PermanentError", reason: "auth", status: 401 })
          expect(error.message).toContain("authentication_error")
          expect(server.requests[0]!.headers.authorization).toBe("Bearer wrong-key")
        })))

    it.scopedLive("a malformed 200 body is transient", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Malformed" }, { _tag: "Json", body: { type: "message", role: "assistant" } }, {
            _tag: "Json",
            body: "just a string"
          })
          for (const _ of [1, 2, 3]) {
            const error = yield* failure(provider.query(record("hi")))
            expect(error).toBeInstanceOf(ProviderError.TransientError)
          }
          expect(server.requests).toHaveLength(3)
        })))

    it.scopedLive("a refused connection is transient and names the endpoint and the error code", () =>
      Effect.gen(function*() {
        const closed = yield* Effect.scoped(Effect.map(AnthropicServer.start(), (server) => server.url))
        const error = yield* failure(
          Anthropic.make().query(record("hi")).pipe(config([["ANTHROPIC_API_KEY", "test-key"], ["ANTHROPIC_BASE_URL", closed]]))
        )
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`anthropic: cannot connect to ${closed} (ECONNREFUSED)`)
      }))

    it.scopedLive("a hang is cut by the timeout and the HTTP request is aborted", () =>
      withServer((server, provider) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Hang" })
          const started = Date.now()
          const result = yield* provider.query(record("hi")).pipe(Effect.timeout("300 millis"), Effect.either)
          expect(Either.isLeft(result) && result.left._tag).toBe("TimeoutException")
          expect(Date.now() - started).toBeLessThan(2000)
          expect(server.requests).toHaveLength(1)
          const hung = server.requests[0]!
          // the server sees the connection close, without having answered
          const closed = yield* Effect.promise(() => hung.closed).pipe(Effect.timeout("2 seconds"), Effect.either)
          expect(Either.isRight(closed)).toBe(true)
          expect(hung.answered).toBe(false)
          // the provider still works afterwards
          expect((yield* provider.query(record("again"))).response).toBe(AnthropicServer.defaultAnswer(1, haiku, "again"))
        })))
  })

  describe("check", () => {
    const withKey = config([["ANTHROPIC_API_KEY", "test-key"]])
    const check = (input: PromptRecord.PromptRecord) => Anthropic.make().check(input).pipe(withKey)
    const keys = (problems: ReadonlyArray<Provider.RecordProblem>) => problems.map((problem) => problem.key)

    it.effect("accepts every prompto example line", () =>
      Effect.gen(function*() {
        const lines = [exampleFile, multimodalFile, evaluationFile].flatMap(readJsonl)
        expect(lines).toHaveLength(10)
        for (const line of lines) {
          expect(yield* check(line).pipe(Effect.locally(Provider.mediaFolder, mediaFolder()))).toEqual([])
        }
      }))

    it.effect("reports prompt shapes prompto rejects, on key \"prompt\"", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<readonly [PromptRecord.Prompt, string]> = [
          [[{ role: "user", content: "hi" }, { role: "system", content: "late" }], "only the first message"],
          [[{ role: "system", content: "a" }, { role: "system", content: "b" }, { role: "user", content: "c" }], "only the first message"],
          [[{ role: "model", content: "hi" }], "role must be \"user\" or \"assistant\""],
          [[{ role: "user", content: "hi", name: "bob" }], "exactly the keys"],
          [[{ role: "user", parts: ["hi"] }], "exactly the keys"],
          [[{ role: "user", content: 42 }], "must be a string or a list"],
          [[{ role: "user", content: [{ type: "image", source: {} }] }], "needs \"media\""],
          [[{ role: "user", content: [{ type: "image", source: { media: "gs://bucket/a.jpg" } }] }], "http(s) URL"],
          [[{ role: "user", content: [{ text: "no type" }] }], "needs a \"type\""],
          [[{ role: "system", content: [{ type: "image", source: { media: "a.jpg" } }] }, { role: "user", content: "hi" }], "system message's content"],
          [[{ role: "system", content: "only a system message" }], "at least one user or assistant message"],
          [[], "the list is empty: give at least one turn or message"]
        ]
        for (const [prompt, message] of bad) {
          const problems = yield* check(record(prompt))
          expect(keys(problems)).toEqual(["prompt"])
          expect(problems[0]!.message).toContain(message)
        }
        const mixed = yield* check(record(["a", { role: "user", content: "b" }] as unknown as PromptRecord.Prompt))
        expect(mixed).toEqual([{ key: "prompt", message: Anthropic.promptShapeMessage }])
        expect(Anthropic.checkShape(record([{ role: "user", content: "fine" }]))).toEqual([])
      }))

    it.effect("requires parameters.max_tokens, as prompto does, and guards the keys it sets itself", () =>
      Effect.gen(function*() {
        expect(yield* check(record("hi", { temperature: 1 }))).toEqual([
          { key: "parameters.max_tokens", message: expect.stringContaining("required") }
        ])
        expect(keys(yield* check(record("hi", { max_tokens: "100" })))).toEqual(["parameters.max_tokens"])
        expect(keys(yield* check(record("hi", { max_tokens: 10, model: "x", messages: [] })))).toEqual([
          "parameters.model",
          "parameters.messages"
        ])
        expect(keys(yield* check(record("hi", { max_tokens: 10, stream: true })))).toEqual(["parameters.stream"])
        expect(keys(yield* check(record([{ role: "system", content: "a" }, { role: "user", content: "b" }], { max_tokens: 10, system: "c" }))))
          .toEqual(["parameters.system"])
        // a system parameter with a plain prompt is passed through, as in prompto
        expect(yield* check(record("hi", { max_tokens: 10, system: "be brief" }))).toEqual([])
      }))

    it.effect("names the missing key variables (never a value) and rejects a bad endpoint", () =>
      Effect.gen(function*() {
        const provider = Anthropic.make()
        const missing = yield* provider.check(record("hi")).pipe(config([]))
        expect(missing).toEqual([{
          key: "api",
          message: "at least one of the environment variables \"ANTHROPIC_API_KEY_claude_3_haiku_20240307\", \"ANTHROPIC_API_KEY\" must be set"
        }])
        const perModel = config([["ANTHROPIC_API_KEY_claude_3_haiku_20240307", "sk-secret-value"]])
        expect(yield* provider.check(record("hi")).pipe(perModel)).toEqual([])
        const other = yield* provider.check(record("hi", maxTokens, sonnet)).pipe(perModel)
        expect(keys(other)).toEqual(["api"])
        expect(JSON.stringify(other)).not.toContain("sk-secret-value")
        const badUrl = yield* provider.check(record("hi")).pipe(config([["ANTHROPIC_API_KEY", "k"], ["ANTHROPIC_BASE_URL", "ftp://x"]]))
        expect(badUrl).toEqual([{ key: "api", message: expect.stringContaining("\"ANTHROPIC_BASE_URL\"") }])
      }))

    it.effect("a bad prompt shape, a missing max_tokens and a missing key are all reported", () =>
      Effect.gen(function*() {
        const problems = yield* Anthropic.make().check(record([{ role: "model", content: "hi" }], {})).pipe(config([]))
        expect(keys(problems)).toEqual(["prompt", "parameters.max_tokens", "api"])
        const empty = yield* Anthropic.make().check(record([])).pipe(config([]))
        expect(empty).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          {
            key: "api",
            message: "at least one of the environment variables \"ANTHROPIC_API_KEY_claude_3_haiku_20240307\", \"ANTHROPIC_API_KEY\" must be set"
          }
        ])
      }))

    it.effect("reports media files missing from the media folder", () =>
      Effect.gen(function*() {
        const media = mediaFolder()
        const problems = yield* check(record([{
          role: "user",
          content: [
            { type: "image", source: { media: "pantani_giro.jpg", media_type: "image/jpeg" } },
            { type: "image", source: { media: "missing.png", media_type: "image/png" } },
            { type: "image", source: { media: "https://example.com/remote.jpg", media_type: "image/jpeg" } }
          ]
        }])).pipe(Effect.locally(Provider.mediaFolder, media))
        expect(problems).toEqual([{ key: "prompt", message: `media file not found: ${path.join(media, "missing.png")}` }])
      }))
  })

  describe("layer", () => {
    it.effect("registers the anthropic API, and builds without any key", () =>
      Effect.gen(function*() {
        const registry = yield* Provider.registry
        expect([...registry.keys()]).toEqual([Anthropic.api])
        expect(registry.get("anthropic")!.api).toBe("anthropic")
      }).pipe(Effect.provide(Anthropic.layer), config([])))
  })

  describe("end to end with Experiment.run", () => {
    const run = (server: AnthropicServer.AnthropicServer, file: string, withMedia = false) => {
      const dataFolder = path.join(tempDir(), "data")
      if (withMedia) fs.cpSync(fixtureMedia, path.join(dataFolder, "media"), { recursive: true })
      return Experiment.run({ file, dataFolder, maxQueries: 600_000, parallel: true }).pipe(
        Effect.map((result) => ({ result, completed: readJsonl(result.files.completed) })),
        Effect.provide(Layer.merge(NodeContext.layer, Anthropic.layer)),
        config([["ANTHROPIC_API_KEY", "test-key"], ["ANTHROPIC_BASE_URL", server.url]])
      )
    }
    const lastUserText = (messages: ReadonlyArray<any>): string => {
      const content = [...messages].reverse().find((message) => message.role === "user").content
      return typeof content === "string" ? content : content.filter((b: any) => b.type === "text").map((b: any) => b.text).join(" ")
    }
    /** Each completed response is the server's answer to a request for that record's model. */
    const expectServerAnswers = (server: AnthropicServer.AnthropicServer, completed: ReadonlyArray<any>) => {
      for (const line of completed) {
        const answers = Array.isArray(line.response) ? line.response : [line.response]
        for (const answer of answers) {
          const request = server.requests.find((request) => request.answer === answer)
          expect(request, `response of id ${line.id}`).toBeDefined()
          expect(request!.body.model).toBe(line.model_name)
          expect(answer).toBe(AnthropicServer.defaultAnswer(request!.index, line.model_name, lastUserText(request!.body.messages)))
        }
        expect(line).toMatchObject({ api: "anthropic", model: line.model_name, usage: { total_tokens: expect.any(Number) } })
        expect(line.error).toBeUndefined()
      }
    }

    it.scopedLive("runs prompto's anthropic example: every id once, system separate, history per turn", () =>
      Effect.gen(function*() {
        const server = yield* AnthropicServer.start()
        // the first request fails once: the scheduler retries it
        server.enqueue({ _tag: "Error", status: 500, type: "api_error", message: "Internal server error" })
        const { completed } = yield* run(server, exampleFile)
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2, 3, 4])
        expectServerAnswers(server, completed)
        // 5 prompts, one of them two turns, one retry
        expect(server.requests).toHaveLength(7)
        const answered = server.requests.filter((request) => request.answer !== undefined)
        expect(answered.every((request) => request.body.max_tokens === 100 && request.body.temperature === 1)).toBe(true)
        expect(answered.every((request) => request.headers.authorization === "Bearer test-key")).toBe(true)

        const byId = new Map(completed.map((line) => [line.id, line]))
        // prompto's output keys are all there, in the same places
        const prompto = readJsonl(path.join(fixtures, "anthropic/data/output/anthropic-example/16-07-2024-11-24-23-completed-anthropic-example.jsonl"))
        for (const line of prompto) {
          const ours = byId.get(line.id)
          expect(Object.keys(ours).slice(0, Object.keys(line).length)).toEqual(Object.keys(line))
          expect(typeof ours.response).toBe(typeof line.response)
          expect(Array.isArray(ours.response)).toBe(Array.isArray(line.response))
        }
        expect(byId.get(2).response).toHaveLength(2)

        const withSystem = answered.filter((request) => request.body.system !== undefined)
        expect(withSystem).toHaveLength(2)
        for (const request of withSystem) {
          expect(request.body.system).toBe("You are a helpful assistant designed to answer questions briefly.")
          expect(request.body.messages.every((message: any) => message.role !== "system")).toBe(true)
        }
        const second = answered.find((request) => request.body.messages.length === 3 && request.body.messages[2].content === "I want a joke about that")
        expect(second!.body.messages[1]).toEqual({ role: "assistant", content: byId.get(2).response[0] })
      }))

    it.scopedLive("runs prompto's multimodal example with the images read from the data folder's media/", () =>
      Effect.gen(function*() {
        const server = yield* AnthropicServer.start()
        const { completed } = yield* run(server, multimodalFile, true)
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2])
        expectServerAnswers(server, completed)
        expect(server.requests).toHaveLength(3)
        const images = server.requests.flatMap((request) =>
          request.body.messages.flatMap((message: any) =>
            Array.isArray(message.content) ? message.content.filter((block: any) => block.type === "image") : []
          )
        )
        expect(images.map((image: any) => image.source.data).sort()).toEqual(
          [base64Of("pantani_giro.jpg"), base64Of("pantani_giro.jpg"), base64Of("mortadella.jpg")].sort()
        )
        expect(images.every((image: any) => image.source.type === "base64" && image.source.media_type === "image/jpeg")).toBe(true)
        const mortadella = server.requests.find((request) => request.body.messages[0].content[1]?.type === "text")
        expect(mortadella!.body.messages[0].content[1]).toEqual({ type: "text", text: "what is this?" })
        const history = server.requests.find((request) => request.body.messages.length === 3)
        expect(history!.body.messages.map((message: any) => message.role)).toEqual(["user", "assistant", "user"])
      }))

    it.scopedLive("runs prompto's evaluation example", () =>
      Effect.gen(function*() {
        const server = yield* AnthropicServer.start()
        const { completed, result } = yield* run(server, evaluationFile)
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1])
        expectServerAnswers(server, completed)
        expect(server.requests.map((request) => request.body.model).sort()).toEqual([sonnet, haiku])
        expect(result.stats.queues.size).toBe(1)
      }))

    it.scopedLive("writes the cache counts into the completed record's usage", () =>
      Effect.gen(function*() {
        const server = yield* AnthropicServer.start()
        server.enqueue({
          _tag: "Message",
          usage: { input_tokens: 10, output_tokens: 4, cache_creation_input_tokens: 20, cache_read_input_tokens: 30 }
        })
        const file = path.join(tempDir(), "cache.jsonl")
        fs.writeFileSync(file, JSON.stringify(record("Hello there")) + "\n")
        const { completed } = yield* run(server, file)
        expect(completed).toHaveLength(1)
        expect(completed[0].usage).toEqual({
          prompt_tokens: 60,
          completion_tokens: 4,
          total_tokens: 64,
          cached_tokens: 30,
          cache_write_tokens: 20
        })
      }))
  })
})
