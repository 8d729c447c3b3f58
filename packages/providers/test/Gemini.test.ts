import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Gemini from "../src/Gemini.js"
import * as GeminiServer from "./servers/GeminiServer.js"

/** prompto's example files, copied into the repository (`test/fixtures/prompto-examples`). */
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples")
const imagesFolder = path.join(fixtures, "openai/data/media")
const model = "gemini-1.5-flash"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-gemini-"))
const readJsonl = (file: string): Array<any> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))

const record = (
  prompt: unknown,
  extra: Partial<Record<string, unknown>> = {}
): PromptRecord.IdentifiedRecord => ({ id: 1, api: "gemini", model_name: model, prompt, ...extra } as PromptRecord.IdentifiedRecord)

const configFor = (server: GeminiServer.GeminiServer, extra: ReadonlyArray<readonly [string, string]> = []) =>
  ConfigProvider.fromMap(new Map<string, string>([["GEMINI_API_KEY", "test-key"], ["GEMINI_BASE_URL", server.url], ...extra]))

/** Runs `body` with a fresh server and provider, configured to talk to the server. */
const withGemini = <A, E>(
  body: (provider: Provider.Provider, server: GeminiServer.GeminiServer) => Effect.Effect<A, E>,
  extra: ReadonlyArray<readonly [string, string]> = []
) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* GeminiServer.make
    const provider = yield* Gemini.make
    return yield* body(provider, server).pipe(Effect.withConfigProvider(configFor(server, extra)))
  }))

const safetyFor = (threshold: string) =>
  [
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT"
  ].map((category) => ({ category, threshold }))

const promptoSafety = {
  HARM_CATEGORY_SEXUALLY_EXPLICIT: "1",
  HARM_CATEGORY_HATE_SPEECH: "1",
  HARM_CATEGORY_HARASSMENT: "1",
  HARM_CATEGORY_DANGEROUS_CONTENT: "1",
  blocked: "[False, False, False, False]",
  finish_reason: "STOP"
}

const failure = (effect: Effect.Effect<unknown, ProviderError.ProviderError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.die(`expected a failure, got ${JSON.stringify(result.right)}`))

describe("Gemini", () => {
  describe("requests and responses", () => {
    it.live("sends a string prompt with the key header, safety settings and generation config", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record("How does technology impact us?", {
            safety_filter: "none",
            parameters: { candidate_count: 1, temperature: 1, max_output_tokens: 100 }
          }))
          expect(response).toEqual({
            response: "gemini-1.5-flash says: How does technology impact us?",
            usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
            fields: { safety_attributes: promptoSafety, finish_reason: "STOP", model: "gemini-1.5-flash-001" }
          })
          expect(server.requests).toHaveLength(1)
          const request = server.requests[0]!
          expect(request.method).toBe("POST")
          expect(request.path).toBe("/v1beta/models/gemini-1.5-flash:generateContent")
          expect(request.headers["x-goog-api-key"]).toBe("test-key")
          expect(request.headers["content-type"]).toBe("application/json")
          expect(request.body).toEqual({
            contents: [{ role: "user", parts: [{ text: "How does technology impact us?" }] }],
            generationConfig: { candidateCount: 1, temperature: 1, maxOutputTokens: 100 },
            safetySettings: safetyFor("BLOCK_NONE")
          })
        })))

    it.live("maps every safety_filter level to prompto's threshold on the four harm categories", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const levels = [
            ["none", "BLOCK_NONE"],
            ["few", "BLOCK_ONLY_HIGH"],
            ["some", "BLOCK_MEDIUM_AND_ABOVE"],
            ["default", "BLOCK_MEDIUM_AND_ABOVE"],
            ["most", "BLOCK_LOW_AND_ABOVE"],
            [undefined, "BLOCK_MEDIUM_AND_ABOVE"]
          ] as const
          for (const [filter] of levels) {
            yield* provider.query(record("hi", filter === undefined ? {} : { safety_filter: filter }))
          }
          expect(server.requests.map((request) => request.body.safetySettings)).toEqual(
            levels.map(([, threshold]) => safetyFor(threshold))
          )
          // no parameters: an empty generation config
          expect(server.requests[0]!.body.generationConfig).toEqual({})
        })))

    it.live("passes parameters as generation config, snake_case or camelCase, nested values as given", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          yield* provider.query(record("hi", {
            parameters: { top_p: 0.5, topK: 3, stop_sequences: ["END"], seed: 7, thinking_config: { thinking_budget: 0 } }
          }))
          expect(server.requests[0]!.body.generationConfig).toEqual({
            topP: 0.5,
            topK: 3,
            stopSequences: ["END"],
            seed: 7,
            thinkingConfig: { thinking_budget: 0 }
          })
        })))

    it.live("sends a list of strings turn by turn with the history; the response is a list", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record(["How does trade create jobs?", "I want a joke about that"]))
          expect(response.response).toEqual([
            "gemini-1.5-flash says: How does trade create jobs?",
            "gemini-1.5-flash says: I want a joke about that"
          ])
          expect(server.requests).toHaveLength(2)
          expect(server.requests[0]!.body.contents).toEqual([{ role: "user", parts: [{ text: "How does trade create jobs?" }] }])
          expect(server.requests[1]!.body.contents).toEqual([
            { role: "user", parts: [{ text: "How does trade create jobs?" }] },
            { role: "model", parts: [{ text: "gemini-1.5-flash says: How does trade create jobs?" }] },
            { role: "user", parts: [{ text: "I want a joke about that" }] }
          ])
          // per-turn safety attributes as prompto writes them; usage summed over the turns
          expect(response.fields?.safety_attributes).toEqual([promptoSafety, promptoSafety])
          expect(response.usage).toEqual({ prompt_tokens: 5 + 18, completion_tokens: 7 + 8, total_tokens: 12 + 26 })
        })))

    it.live("records cached content and thinking tokens; thinking tokens are added into completion_tokens", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Answer", usage: { cached: 3, thoughts: 20 } })
          const response = yield* provider.query(record("How does technology impact us?"))
          // candidatesTokenCount (7) leaves out the 20 thinking tokens, which are billed output too
          expect(response.usage).toEqual({
            prompt_tokens: 5,
            completion_tokens: 7 + 20,
            total_tokens: 32,
            cached_tokens: 3,
            reasoning_tokens: 20
          })
        })))

    it.live("a multi-turn chat sums the thinking and cached counts over the turns that report them", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Answer", usage: { thoughts: 10 } }, { _tag: "Answer", usage: { cached: 5 } })
          const response = yield* provider.query(record(["How does trade create jobs?", "I want a joke about that"]))
          expect(response.usage).toEqual({
            prompt_tokens: 5 + 18,
            completion_tokens: (7 + 10) + 8,
            total_tokens: (12 + 10) + 26,
            cached_tokens: 5,
            reasoning_tokens: 10
          })
        })))

    it.live("thought parts are kept as reasoning, out of the text; functionCall parts as tool_calls (args as arguments, the part as raw)", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const call = GeminiServer.functionCallPart("get_weather", { city: "Rome" }, "fc_1")
          const plain = GeminiServer.functionCallPart("get_time", { zone: "CET" })
          server.enqueue({
            _tag: "Json",
            body: GeminiServer.textResponse("", {
              parts: [GeminiServer.thoughtPart("The user wants the weather. "), GeminiServer.thoughtPart("Call the tool."), call, plain],
              usage: { prompt: 8, candidates: 5, thoughts: 30 }
            })
          })
          const tools = [{ functionDeclarations: [{ name: "get_weather" }] }]
          const response = yield* provider.query(record("Weather in Rome?", { parameters: { tools } }))
          expect(response.response).toBe("")
          expect(response.fields).toMatchObject({
            finish_reason: "STOP",
            tool_calls: [
              { id: "fc_1", name: "get_weather", arguments: { city: "Rome" }, raw: call },
              { name: "get_time", arguments: { zone: "CET" }, raw: plain }
            ],
            reasoning: "The user wants the weather. Call the tool."
          })
          expect((response.fields?.tool_calls as ReadonlyArray<object>)[1]).not.toHaveProperty("id")
          expect(response.usage).toMatchObject({ reasoning_tokens: 30 })
          expect(server.requests[0]!.body.tools).toEqual(tools)
          // a plain answer adds neither key
          const text = yield* provider.query(record("hi"))
          expect(Object.keys(text.fields ?? {})).toEqual(["safety_attributes", "finish_reason", "model"])
        })))

    it.live("a chat sent turn by turn keeps tool_calls and reasoning per turn", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const call = GeminiServer.functionCallPart("calc", { x: 2 })
          server.enqueue(
            { _tag: "Json", body: GeminiServer.textResponse("", { parts: [GeminiServer.thoughtPart("hmm"), { text: "Hello." }] }) },
            { _tag: "Json", body: GeminiServer.textResponse("", { parts: [{ text: "Calling." }, call] }) }
          )
          const response = yield* provider.query(record(["hi", "2+2?"]))
          expect(response.response).toEqual(["Hello.", "Calling."])
          expect(response.fields).toMatchObject({
            tool_calls: [[], [{ name: "calc", arguments: { x: 2 }, raw: call }]],
            reasoning: ["hmm", null]
          })
        })))

    it.live("sends a role/parts history with the leading system message as systemInstruction", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record([
            { role: "system", parts: "You are a helpful assistant designed to answer questions briefly." },
            { role: "user", parts: "Hello, I'm Bob and I'm 6 years old" },
            { role: "model", parts: "Hi Bob, how may I assist you?" },
            { role: "user", parts: [{ type: "text", text: "How old will I be" }, "next year?"] }
          ], { safety_filter: "most" }))
          expect(response.response).toBe("gemini-1.5-flash says: How old will I be next year?")
          const body = server.requests[0]!.body
          expect(body.systemInstruction).toEqual({ parts: [{ text: "You are a helpful assistant designed to answer questions briefly." }] })
          expect(body.contents).toEqual([
            { role: "user", parts: [{ text: "Hello, I'm Bob and I'm 6 years old" }] },
            { role: "model", parts: [{ text: "Hi Bob, how may I assist you?" }] },
            { role: "user", parts: [{ text: "How old will I be" }, { text: "next year?" }] }
          ])
          expect(body.safetySettings).toEqual(safetyFor("BLOCK_LOW_AND_ABOVE"))
        })))

    it.live("sends media from the media folder as base64 inlineData, uploaded files and URIs as fileData", () => {
      const media = tempDir()
      fs.copyFileSync(path.join(imagesFolder, "pantani_giro.jpg"), path.join(media, "pantani_giro.jpg"))
      fs.writeFileSync(path.join(media, "clip.wav"), Buffer.from("RIFF-not-really-audio"))
      return withGemini((provider, server) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record([{
            role: "user",
            parts: [
              "describe these",
              { type: "image", media: "pantani_giro.jpg" },
              { type: "audio", media: "clip.wav", mime_type: "audio/x-wav" },
              { type: "video", media: "test.mp4", uploaded_filename: "files/abc123" },
              { type: "uri", media: "https://example.com/a.pdf", mime_type: "application/pdf" }
            ]
          }])).pipe(Effect.locally(Provider.mediaFolder, media))
          expect(response.response).toBe("gemini-1.5-flash says: describe these [4 media]")
          // the uploaded file was looked up with the Files API first
          expect(server.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
            "GET /v1beta/files/abc123",
            "POST /v1beta/models/gemini-1.5-flash:generateContent"
          ])
          expect(server.requests[0]!.headers["x-goog-api-key"]).toBe("test-key")
          const parts = server.requests[1]!.body.contents[0].parts
          expect(parts[0]).toEqual({ text: "describe these" })
          expect(parts[1]).toEqual({
            inlineData: { mimeType: "image/jpeg", data: fs.readFileSync(path.join(media, "pantani_giro.jpg")).toString("base64") }
          })
          expect(parts[2]).toEqual({ inlineData: { mimeType: "audio/x-wav", data: Buffer.from("RIFF-not-really-audio").toString("base64") } })
          expect(parts[3]).toEqual({
            fileData: { fileUri: "https://generativelanguage.googleapis.com/v1beta/files/abc123", mimeType: "video/mp4" }
          })
          expect(parts[4]).toEqual({ fileData: { fileUri: "https://example.com/a.pdf", mimeType: "application/pdf" } })
        })
      )
    })

    it.live("a blocked prompt (no candidates) is a success with \"\" and blocked safety attributes", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Json",
            body: { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 4, totalTokenCount: 4 } }
          })
          const response = yield* provider.query(record("something bad"))
          expect(response.response).toBe("")
          expect(response.fields?.safety_attributes).toEqual({ blocked: "True", finish_reason: "block_reason: SAFETY" })
          expect(response.usage).toEqual({ prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 })
        })))

    it.live("a candidate stopped for safety gives \"\" with its ratings; a blocked chat turn ends the chat", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const stopped = {
            _tag: "Json" as const,
            body: {
              candidates: [{
                finishReason: "SAFETY",
                safetyRatings: [
                  { category: "HARM_CATEGORY_HARASSMENT", probability: "HIGH", blocked: true },
                  { category: "HARM_CATEGORY_HATE_SPEECH", probability: "LOW" }
                ]
              }],
              modelVersion: "gemini-1.5-flash-002"
            }
          }
          server.enqueue(stopped)
          const single = yield* provider.query(record("insult me"))
          expect(single.response).toBe("")
          expect(single.fields).toEqual({
            safety_attributes: {
              HARM_CATEGORY_HARASSMENT: "4",
              HARM_CATEGORY_HATE_SPEECH: "2",
              blocked: "[True, False]",
              finish_reason: "SAFETY"
            },
            finish_reason: "SAFETY",
            model: "gemini-1.5-flash-002"
          })
          server.enqueue({ _tag: "Json", body: GeminiServer.textResponse("fine") }, stopped)
          const chat = yield* provider.query(record(["hello", "insult me", "and again"]))
          expect(chat.response).toEqual(["fine", ""])
          expect(server.requests).toHaveLength(3)
        })))
  })

  describe("errors", () => {
    it.live("429 is a rate limit with Google's retryDelay; the SDK does not retry", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({
            _tag: "Json",
            status: 429,
            headers: { "retry-after": "99" },
            body: GeminiServer.errorBody(429, "RESOURCE_EXHAUSTED", "Quota exceeded for metric generate_content_free_tier_requests", [
              { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "7s" }
            ])
          })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toBeInstanceOf(ProviderError.RateLimitError)
          expect(error).toMatchObject({
            retryAfterMs: 7000,
            message: "gemini: Quota exceeded for metric generate_content_free_tier_requests (429 RESOURCE_EXHAUSTED)"
          })
          expect(server.requests).toHaveLength(1)
        })))

    it.live("500 is transient, sent once", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Json", status: 500, body: GeminiServer.errorBody(500, "INTERNAL", "An internal error has occurred.") })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(error).toMatchObject({ status: 500, message: "gemini: An internal error has occurred. (500 INTERNAL)" })
          expect(error.retryable).toBe(true)
          expect(server.requests).toHaveLength(1)
        })))

    it.live("400 and 403 are permanent with Google's message", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue(
            {
              _tag: "Json",
              status: 400,
              body: GeminiServer.errorBody(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
            },
            { _tag: "Json", status: 403, body: GeminiServer.errorBody(403, "PERMISSION_DENIED", "Permission denied.") }
          )
          const bad = yield* failure(provider.query(record("hi")))
          expect(bad).toBeInstanceOf(ProviderError.PermanentError)
          expect(bad).toMatchObject({
            reason: "bad_request",
            status: 400,
            message: "gemini: API key not valid. Please pass a valid API key. (400 INVALID_ARGUMENT)"
          })
          expect(bad.retryable).toBe(false)
          const denied = yield* failure(provider.query(record("hi")))
          expect(denied).toMatchObject({ _tag: "PermanentError", reason: "auth", status: 403 })
        })))

    it.live("a malformed 200 body is transient", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Raw", body: "{\"candidates\": [" })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(error.message).toMatch(/^gemini: SyntaxError: /)
        })))

    it.live("a hang is cut by the timeout and the connection is closed", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Hang" })
          const result = yield* provider.query(record("hi")).pipe(Effect.timeout("300 millis"), Effect.either)
          expect(Either.isLeft(result) && result.left._tag).toBe("TimeoutException")
          yield* Effect.promise(() => server.hangClosed()).pipe(Effect.timeout("5 seconds"))
          expect(server.hangsClosed()).toBe(1)
          // the provider still works afterwards
          expect((yield* provider.query(record("again"))).response).toBe("gemini-1.5-flash says: again")
        })))

    it.live("a refused connection is transient and names the endpoint and the error code", () =>
      Effect.scoped(Effect.gen(function*() {
        const closed = yield* Effect.scoped(Effect.map(GeminiServer.make, (server) => server.url))
        const provider = yield* Gemini.make
        const error = yield* failure(provider.query(record("hi"))).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GEMINI_API_KEY", "k"], ["GEMINI_BASE_URL", closed]])))
        )
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`gemini: cannot connect to ${closed} (ECONNREFUSED)`)
      })))

    it.live("a missing key fails with a configuration error before anything is sent", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const provider = yield* Gemini.make
        const error = yield* failure(provider.query(record("hi"))).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GEMINI_BASE_URL", server.url]])))
        )
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
        expect(error.message).toContain("\"GEMINI_API_KEY_gemini_1_5_flash\", \"GEMINI_API_KEY\"")
        expect(server.requests).toHaveLength(0)
      })))

    it.live("an invalid prompt sent anyway is a validation error, not a request", () =>
      withGemini((provider, server) =>
        Effect.gen(function*() {
          const error = yield* failure(provider.query(record([{ role: "assistant", parts: "hi" }])))
          expect(error).toMatchObject({ _tag: "PermanentError", reason: "validation" })
          expect(error.message).toContain("if api == 'gemini', then the prompt must be")
          const filter = yield* failure(provider.query(record("hi", { safety_filter: "lots" })))
          expect(filter).toMatchObject({ _tag: "PermanentError", reason: "validation" })
          const empty = yield* failure(provider.query(record([])))
          expect(empty).toMatchObject({
            _tag: "PermanentError",
            reason: "validation",
            message: "prompt: the list is empty: give at least one turn or message"
          })
          expect(server.requests).toHaveLength(0)
        })))
  })

  describe("configuration", () => {
    it.live("per-model key and endpoint variables win over the plain ones", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const other = yield* GeminiServer.make
        const provider = yield* Gemini.make
        yield* Effect.all([
          provider.query(record("a")),
          provider.query({ ...record("b"), model_name: "gemini-1.0-pro" })
        ]).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["GEMINI_API_KEY", "plain-key"],
            ["GEMINI_API_KEY_gemini_1_0_pro", "pro-key"],
            ["GEMINI_BASE_URL", server.url],
            ["GEMINI_BASE_URL_gemini_1_0_pro", other.url]
          ])
        )))
        expect(server.requests.map((request) => [request.model, request.headers["x-goog-api-key"]])).toEqual([
          ["gemini-1.5-flash", "plain-key"]
        ])
        expect(other.requests.map((request) => [request.model, request.headers["x-goog-api-key"]])).toEqual([
          ["gemini-1.0-pro", "pro-key"]
        ])
      })))

    it.live("check reports the missing key by name, never a value", () =>
      Effect.gen(function*() {
        const provider = yield* Gemini.make
        const missing = yield* provider.check(record("hi")).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "sk-secret"]])))
        )
        expect(missing).toEqual([{
          key: "api",
          message: "at least one of the environment variables \"GEMINI_API_KEY_gemini_1_5_flash\", \"GEMINI_API_KEY\" must be set"
        }])
        const ok = yield* provider.check(record("hi")).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GEMINI_API_KEY_gemini_1_5_flash", "secret-value"]])))
        )
        expect(ok).toEqual([])
        const badUrl = yield* provider.check(record("hi")).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GEMINI_API_KEY", "k"], ["GEMINI_BASE_URL", "localhost:8080"]])))
        )
        expect(badUrl.map((problem) => problem.key)).toEqual(["api"])
        expect(badUrl[0]!.message).toContain("\"GEMINI_BASE_URL\" is not an http(s) URL")
        expect(JSON.stringify(badUrl)).not.toContain("localhost:8080")
      }))

    it.live("check reports a bad prompt shape and the missing key together; an empty list in the words every API uses", () =>
      Effect.gen(function*() {
        const provider = yield* Gemini.make
        const noKey = Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        const missingKey = {
          key: "api",
          message: "at least one of the environment variables \"GEMINI_API_KEY_gemini_1_5_flash\", \"GEMINI_API_KEY\" must be set"
        }
        const shape = yield* provider.check(record([{ role: "user", content: "c" }])).pipe(noKey)
        expect(shape.map((problem) => problem.key)).toEqual(["prompt", "api"])
        expect(shape[1]).toEqual(missingKey)
        expect(yield* provider.check(record([])).pipe(noKey)).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          missingKey
        ])
      }))

    it.live("check reports prompt shapes, parts, safety_filter, parameters and missing media as prompto would", () =>
      Effect.gen(function*() {
        const provider = yield* Gemini.make
        const media = tempDir()
        fs.writeFileSync(path.join(media, "here.png"), "png")
        const problems = (input: Partial<Record<string, unknown>> & { prompt: unknown }) =>
          provider.check(record(input.prompt, input)).pipe(
            Effect.locally(Provider.mediaFolder, media),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GEMINI_API_KEY", "k"]])))
          )
        const shape = "if api == 'gemini', then the prompt must be a str, list[str], or list[dict[str,str]]"
        // valid shapes
        for (
          const prompt of [
            "hi",
            ["a", "b"],
            [{ role: "system", parts: "s" }, { role: "user", parts: ["u", { type: "image", media: "here.png" }] }],
            [{ role: "user", parts: { type: "text", text: "t" } }, { role: "model", parts: "m" }, { role: "user", parts: "u" }]
          ]
        ) {
          expect(yield* problems({ prompt })).toEqual([])
        }
        // system not first, wrong role, wrong keys, mixed list
        for (
          const prompt of [
            [{ role: "user", parts: "u" }, { role: "system", parts: "s" }],
            [{ role: "assistant", parts: "a" }],
            [{ role: "user", content: "c" }],
            [{ role: "user", parts: "u", extra: 1 }],
            ["a", { role: "user", parts: "u" }]
          ]
        ) {
          const found = yield* problems({ prompt })
          expect(found).toHaveLength(1)
          expect(found[0]!.key).toBe("prompt")
          expect(found[0]!.message).toContain(shape)
        }
        const parts = yield* problems({
          prompt: [{
            role: "user",
            parts: [{ media: "x.png" }, { type: "image" }, { type: "uri", media: "gs://b/v.mp4" }, { type: "image", media: "gone.png" }]
          }]
        })
        expect(parts.map((problem) => [problem.key, problem.message])).toEqual([
          ["prompt", "message 0: part 0: Multimedia type is not specified"],
          ["prompt", "message 0: part 1: File location is not specified"],
          ["prompt", "message 0: part 2: Mime type is not specified. Required for uri"]
        ])
        const missingFile = yield* problems({ prompt: [{ role: "user", parts: [{ type: "image", media: "gone.png" }] }] })
        expect(missingFile).toEqual([{ key: "prompt", message: `media file not found: ${path.join(media, "gone.png")}` }])
        const filter = yield* problems({ prompt: "hi", safety_filter: "lots" })
        expect(filter.map((problem) => problem.key)).toEqual(["safety_filter"])
        expect(filter[0]!.message).toContain("Invalid safety_filter value")
        const parameters = yield* problems({
          prompt: "hi",
          parameters: { temperature: "hot", max_tokens: 5, maxOutputTokens: 5, max_output_tokens: 6, routing_config: {} }
        })
        expect(parameters.map((problem) => problem.key)).toEqual([
          "parameters.temperature",
          "parameters.max_tokens",
          "parameters.max_output_tokens",
          "parameters.routing_config"
        ])
        expect(parameters[1]!.message).toContain("Invalid generation_config parameter")
      }))
  })

  describe("end to end with Experiment.run on prompto's examples", () => {
    const run = (file: string, dataFolder: string) =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const result = yield* Experiment.run({ file, dataFolder, skipInvalid: true, maxQueries: 600_000 }).pipe(
          Effect.withConfigProvider(configFor(server))
        )
        return { server, completed: readJsonl(result.files.completed) }
      })).pipe(Effect.provide(Layer.merge(NodeContext.layer, Gemini.layer)))

    const prepare = (name: string, withMedia: boolean) => {
      const dir = tempDir()
      const file = path.join(dir, name)
      fs.copyFileSync(path.join(fixtures, "gemini/data/input", name), file)
      const media = path.join(dir, "data", "media")
      fs.mkdirSync(media, { recursive: true })
      if (withMedia) {
        for (const image of fs.readdirSync(imagesFolder)) fs.copyFileSync(path.join(imagesFolder, image), path.join(media, image))
      }
      return { file, dataFolder: path.join(dir, "data"), media }
    }

    const prompto = (name: string) =>
      new Map(
        readJsonl(fs.readdirSync(path.join(fixtures, "gemini/data/output", name.replace(".jsonl", "")))
          .filter((f) => f.includes("completed"))
          .map((f) => path.join(fixtures, "gemini/data/output", name.replace(".jsonl", ""), f))[0]!)
          .map((line) => [line.id, line])
      )

    it.live("gemini-example.jsonl: every id once, the server's answers, prompto's safety attributes", () => {
      const { dataFolder, file } = prepare("gemini-example.jsonl", false)
      return Effect.gen(function*() {
        const { completed, server } = yield* run(file, dataFolder)
        const ids = completed.map((line) => line.id)
        expect([...ids].sort()).toEqual([0, 1, 2, 3, 4, 5])
        const byId = new Map(completed.map((line) => [line.id, line]))
        expect(byId.get(0).response).toBe("gemini-1.5-flash says: How does technology impact us?")
        expect(byId.get(1).response).toBe("gemini-1.0-pro says: How does technology impact us?")
        expect(byId.get(2).response).toEqual([
          "gemini-1.5-flash says: How does international trade create jobs?",
          "gemini-1.5-flash says: I want a joke about that"
        ])
        expect(byId.get(3).response).toBe("gemini-1.5-flash says: What efforts are being made to keep the hakka language alive?")
        expect(byId.get(5).response).toBe("gemini-1.5-flash says: How old will I be next year?")
        // the line prompto rejected (system message not first) is rejected here too, never sent
        expect(byId.get(4).response).toContain("if api == 'gemini', then the prompt must be a str")
        expect(byId.get(4).error.kind).toBe("validation")
        // safety attributes have prompto's keys and shape
        const reference = prompto("gemini-example.jsonl")
        for (const id of [0, 1, 3, 5]) {
          expect(Object.keys(byId.get(id).safety_attributes).sort()).toEqual(Object.keys(reference.get(id).safety_attributes).sort())
          expect(byId.get(id).safety_attributes.blocked).toBe(reference.get(id).safety_attributes.blocked)
        }
        expect(byId.get(2).safety_attributes).toHaveLength(2)
        expect(byId.get(0)).toMatchObject({ finish_reason: "STOP", model: "gemini-1.5-flash-001", usage: { total_tokens: 12 } })
        // what the server received
        expect(server.requests).toHaveLength(6)
        const sent = (text: string) =>
          server.requests.filter((request) => request.body.contents.at(-1).parts[0].text === text)
        const thresholds = (text: string) => sent(text).map((request) => request.body.safetySettings[0].threshold)
        expect(sent("How does technology impact us?").map((request) => request.model).sort()).toEqual(["gemini-1.0-pro", "gemini-1.5-flash"])
        expect(thresholds("How does technology impact us?").sort()).toEqual(["BLOCK_NONE", "BLOCK_ONLY_HIGH"])
        expect(thresholds("I want a joke about that")).toEqual(["BLOCK_MEDIUM_AND_ABOVE"])
        expect(thresholds("How old will I be next year?")).toEqual(["BLOCK_LOW_AND_ABOVE"])
        expect(sent("How old will I be next year?")[0]!.body.systemInstruction).toEqual({
          parts: [{ text: "You are a helpful assistant designed to answer questions briefly." }]
        })
        expect(server.requests.map((request) => request.body.generationConfig)).toEqual(
          server.requests.map(() => ({ candidateCount: 1, temperature: 1, maxOutputTokens: 100 }))
        )
        expect(server.requests.every((request) => request.headers["x-goog-api-key"] === "test-key")).toBe(true)
      })
    })

    it.live("gemini-multimodal-example.jsonl with placeholder audio/video: every line sent with base64 media", () => {
      const { dataFolder, file, media } = prepare("gemini-multimodal-example.jsonl", true)
      const placeholders = { "test.mp4": "video/mp4", "test2.mp4": "video/mp4", "test.wav": "audio/wav", "test.mp3": "audio/mpeg" }
      for (const name of Object.keys(placeholders)) fs.writeFileSync(path.join(media, name), `placeholder ${name}`)
      return Effect.gen(function*() {
        const { completed, server } = yield* run(file, dataFolder)
        expect(completed.map((line) => line.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        expect(completed.every((line) => line.error === undefined)).toBe(true)
        const byId = new Map(completed.map((line) => [line.id, line]))
        expect(byId.get(1).response).toBe("gemini-1.5-flash says: describe what is happening in this image [1 media]")
        expect(byId.get(3).response).toBe(
          "gemini-1.5-flash says: are there any notable cyclists in this image? what are their names? [1 media]"
        )
        expect(server.requests).toHaveLength(10)
        const inline = server.requests.flatMap((request) =>
          request.body.contents.flatMap((content: any) => content.parts).filter((part: any) => part.inlineData !== undefined)
            .map((part: any) => part.inlineData)
        )
        const pantani = fs.readFileSync(path.join(imagesFolder, "pantani_giro.jpg")).toString("base64")
        const mortadella = fs.readFileSync(path.join(imagesFolder, "mortadella.jpg")).toString("base64")
        expect(inline.filter((data) => data.data === pantani && data.mimeType === "image/jpeg")).toHaveLength(2)
        expect(inline.filter((data) => data.data === mortadella && data.mimeType === "image/jpeg")).toHaveLength(1)
        for (const [name, mimeType] of Object.entries(placeholders)) {
          const data = Buffer.from(`placeholder ${name}`).toString("base64")
          expect(inline.filter((part) => part.data === data).map((part) => part.mimeType)[0]).toBe(mimeType)
        }
      })
    })

    it.live("gemini-multimodal-example.jsonl without the audio/video files: those lines are errors, the rest run", () => {
      const { dataFolder, file, media } = prepare("gemini-multimodal-example.jsonl", true)
      return Effect.gen(function*() {
        const { completed, server } = yield* run(file, dataFolder)
        expect(completed.map((line) => line.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        const failed = completed.filter((line) => line.error !== undefined)
        expect(failed.map((line) => line.id).sort()).toEqual([4, 5, 6, 7, 8])
        expect(failed.find((line) => line.id === 8).response).toContain(`media file not found: ${path.join(media, "test2.mp4")}`)
        expect(server.requests).toHaveLength(5)
      })
    })
  })
})
