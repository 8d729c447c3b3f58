import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as OpenAi from "../src/OpenAi.js"
import * as OpenAiServer from "./servers/OpenAiServer.js"

/** prompto's example files, copied into the repository (`test/fixtures/prompto-examples`). */
const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples")
const mediaDir = path.join(examples, "openai", "data", "media")
const base64Of = (file: string) => fs.readFileSync(path.join(mediaDir, file)).toString("base64")

const withEnv = (entries: Readonly<Record<string, string>>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const env = (server: OpenAiServer.OpenAiServer, extra: Readonly<Record<string, string>> = {}) =>
  withEnv({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${server.url}/v1`, ...extra })

const bearer = (...keys: ReadonlyArray<string>) => ({ auth: { _tag: "Bearer", keys } as const })

const record = (
  prompt: unknown,
  extra: Readonly<Record<string, unknown>> = {}
): PromptRecord.IdentifiedRecord => ({
  id: 1,
  api: "openai",
  model_name: "gpt-4o",
  prompt: prompt as PromptRecord.Prompt,
  ...extra
})

const failure = <A>(effect: Effect.Effect<A, ProviderError.ProviderError>) => Effect.flip(effect)

describe("OpenAi", () => {
  describe("requests and responses", () => {
    it.live("sends a string prompt as one user message; returns text, usage, finish_reason and the served model", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make(bearer("sk-test"))
        const provider = yield* OpenAi.make
        const response = yield* provider.query(
          record("How does technology impact us?", { parameters: { temperature: 1, max_tokens: 100 } })
        ).pipe(env(server))
        expect(response).toEqual({
          response: "Answer to: How does technology impact us?",
          usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
          fields: { finish_reason: "stop", model: "gpt-4o-2024-08-06" }
        })
        expect(server.requests).toHaveLength(1)
        const request = server.requests[0]!
        expect(request.method).toBe("POST")
        expect(request.path).toBe("/v1/chat/completions")
        expect(request.headers["authorization"]).toBe("Bearer sk-test")
        expect(request.headers["content-type"]).toBe("application/json")
        expect(request.headers["x-stainless-retry-count"]).toBe("0")
        expect(request.body).toEqual({
          model: "gpt-4o",
          messages: [{ role: "user", content: "How does technology impact us?" }],
          temperature: 1,
          max_tokens: 100
        })
      }).pipe(Effect.scoped))

    it.live("n above 1 gives a list of choices (and of finish reasons)", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const response = yield* provider.query(record("hi", { parameters: { n: 3 } })).pipe(env(server))
        expect(response.response).toEqual(["Answer to: hi", "Answer 2 to: hi", "Answer 3 to: hi"])
        expect(response.fields).toEqual({ finish_reason: ["stop", "stop", "stop"], model: "gpt-4o-2024-08-06" })
        expect(server.requests[0]!.body.n).toBe(3)
      }).pipe(Effect.scoped))

    it.live("mode \"completion\" sends the prompt string to the legacy completions endpoint", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const response = yield* provider.query(
          record("Say this is a test", { model_name: "gpt-3.5-turbo-instruct", mode: "completion", parameters: { max_tokens: 7 } })
        ).pipe(env(server))
        expect(server.requests[0]!.path).toBe("/v1/completions")
        expect(server.requests[0]!.body).toEqual({ model: "gpt-3.5-turbo-instruct", prompt: "Say this is a test", max_tokens: 7 })
        expect(response).toEqual({
          response: "Answer to: Say this is a test",
          usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
          fields: { finish_reason: "length", model: "gpt-3.5-turbo-instruct-2024-08-06" }
        })
      }).pipe(Effect.scoped))

    it.live("a list of strings is a multi-turn chat: each turn is sent with the history, usage is summed", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const response = yield* provider.query(record(["first question", "second one"], { parameters: { temperature: 0 } }))
          .pipe(env(server))
        expect(response.response).toEqual(["Answer to: first question", "Answer to: second one"])
        expect(server.requests.map((request) => request.body)).toEqual([
          { model: "gpt-4o", messages: [{ role: "user", content: "first question" }], temperature: 0 },
          {
            model: "gpt-4o",
            messages: [
              { role: "user", content: "first question" },
              { role: "assistant", content: "Answer to: first question" },
              { role: "user", content: "second one" }
            ],
            temperature: 0
          }
        ])
        // turn 1: 2 + 4 tokens; turn 2: (2 + 4 + 2) + 4
        expect(response.usage).toEqual({ prompt_tokens: 10, completion_tokens: 8, total_tokens: 18 })
        expect(response.fields).toEqual({ finish_reason: ["stop", "stop"], model: "gpt-4o-2024-08-06" })
      }).pipe(Effect.scoped))

    it.live("a tool-call-only answer keeps its calls as tool_calls (arguments parsed, raw item kept); response stays \"\"", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const weather = OpenAiServer.toolCall("call_abc", "get_weather", { city: "Paris", unit: "c" })
        const broken = OpenAiServer.toolCall("call_def", "lookup", "{\"q\": ")
        server.enqueue(OpenAiServer.replies.answerWithMessage({ content: null, toolCalls: [weather, broken] }))
        const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }]
        const response = yield* provider.query(record("Weather in Paris?", { parameters: { tools } })).pipe(env(server))
        expect(response.response).toBe("")
        expect(response.fields).toEqual({
          finish_reason: "tool_calls",
          tool_calls: [
            { id: "call_abc", name: "get_weather", arguments: { city: "Paris", unit: "c" }, raw: weather },
            // arguments that are not JSON are kept as the model wrote them
            { id: "call_def", name: "lookup", arguments: "{\"q\": ", raw: broken }
          ],
          model: "gpt-4o-2024-08-06"
        })
        expect(server.requests[0]!.body.tools).toEqual(tools)
      }).pipe(Effect.scoped))

    it.live("reasoning_content (DeepSeek, vLLM) is kept as reasoning; with n choices tool_calls and reasoning are lists per choice", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        server.enqueue(OpenAiServer.replies.answerWithMessage({ reasoningContent: "The user greets; greet back." }))
        const one = yield* provider.query(record("hi")).pipe(env(server))
        expect(one.response).toBe("Answer to: hi")
        expect(one.fields).toEqual({ finish_reason: "stop", reasoning: "The user greets; greet back.", model: "gpt-4o-2024-08-06" })

        const call = OpenAiServer.toolCall("call_1", "search", { q: "hi" })
        server.enqueue(OpenAiServer.replies.answerWithMessage((choice) =>
          choice === 1 ? { toolCalls: [call], reasoningContent: "search first" } : {}
        ))
        const choices = yield* provider.query(record("hi", { parameters: { n: 3 } })).pipe(env(server))
        expect(choices.response).toEqual(["Answer to: hi", "Answer 2 to: hi", "Answer 3 to: hi"])
        expect(choices.fields).toEqual({
          finish_reason: ["stop", "tool_calls", "stop"],
          tool_calls: [[], [{ id: "call_1", name: "search", arguments: { q: "hi" }, raw: call }], []],
          reasoning: [null, "search first", null],
          model: "gpt-4o-2024-08-06"
        })
      }).pipe(Effect.scoped))

    it.live("a multi-turn chat keeps tool_calls and reasoning per turn; plain answers add neither key", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const call = OpenAiServer.toolCall("call_9", "calc", { x: 1 })
        server.enqueue(OpenAiServer.replies.answer, OpenAiServer.replies.answerWithMessage({ toolCalls: [call], reasoningContent: "r2" }))
        const response = yield* provider.query(record(["first", "second"])).pipe(env(server))
        expect(response.response).toEqual(["Answer to: first", "Answer to: second"])
        expect(response.fields).toEqual({
          finish_reason: ["stop", "tool_calls"],
          tool_calls: [[], [{ id: "call_9", name: "calc", arguments: { x: 1 }, raw: call }]],
          reasoning: [null, "r2"],
          model: "gpt-4o-2024-08-06"
        })
        const plain = yield* provider.query(record(["first", "second"])).pipe(env(server))
        expect(Object.keys(plain.fields ?? {})).toEqual(["finish_reason", "model"])
      }).pipe(Effect.scoped))

    it.live("records cached input and reasoning tokens from the usage details as cached_tokens and reasoning_tokens", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        server.enqueue(OpenAiServer.replies.answerWith({ cachedTokens: 3, reasoningTokens: 10 }))
        const response = yield* provider.query(record("How does technology impact us?")).pipe(env(server))
        // prompt and completion tokens are kept as sent: they already hold the cached and reasoning tokens
        expect(response.usage).toEqual({
          prompt_tokens: 5,
          completion_tokens: 7 + 10,
          total_tokens: 22,
          cached_tokens: 3,
          reasoning_tokens: 10
        })
      }).pipe(Effect.scoped))

    it.live("a reported 0 is recorded; a detail the server leaves out is not", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        server.enqueue(OpenAiServer.replies.answerWith({ cachedTokens: 0 }))
        const response = yield* provider.query(record("How does technology impact us?")).pipe(env(server))
        expect(response.usage).toEqual({ prompt_tokens: 5, completion_tokens: 7, total_tokens: 12, cached_tokens: 0 })
      }).pipe(Effect.scoped))

    it.live("a multi-turn chat sums the usage details over the turns that report them", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        server.enqueue(
          OpenAiServer.replies.answerWith({ reasoningTokens: 4 }),
          OpenAiServer.replies.answerWith({ cachedTokens: 6 })
        )
        const response = yield* provider.query(record(["first question", "second one"])).pipe(env(server))
        // turn 1: 2 + (4 + 4 reasoning) tokens; turn 2: (2 + 4 + 2) + 4
        expect(response.usage).toEqual({
          prompt_tokens: 10,
          completion_tokens: 12,
          total_tokens: 22,
          cached_tokens: 6,
          reasoning_tokens: 4
        })
      }).pipe(Effect.scoped))

    it.live("reports the answer's x-ratelimit-* headers as rateLimit; a multi-turn chat the last answer's", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        server.enqueue(OpenAiServer.replies.answerWithHeaders(OpenAiServer.rateLimitHeaders({ resetTokens: "6m0s" })))
        const response = yield* provider.query(record("hi")).pipe(env(server))
        expect(response.rateLimit).toEqual({
          limitRequests: 500,
          remainingRequests: 499,
          resetRequestsMs: 120,
          limitTokens: 30_000,
          remainingTokens: 29_980,
          resetTokensMs: 360_000
        })
        server.enqueue(
          OpenAiServer.replies.answerWithHeaders(OpenAiServer.rateLimitHeaders({ remainingRequests: "9" })),
          OpenAiServer.replies.answerWithHeaders(OpenAiServer.rateLimitHeaders({ remainingRequests: "8", resetRequests: "1h2m3.5s" }))
        )
        const turns = yield* provider.query(record(["first", "second"])).pipe(env(server))
        expect(turns.rateLimit).toMatchObject({ remainingRequests: 8, resetRequestsMs: 3_723_500 })
        // the legacy completions endpoint reports them too; an answer without them has none
        server.enqueue(OpenAiServer.replies.answerWithHeaders({ "x-ratelimit-remaining-tokens": "77" }))
        const completion = yield* provider.query(record("hi", { mode: "completion" })).pipe(env(server))
        expect(completion.rateLimit).toEqual({ remainingTokens: 77 })
        const plain = yield* provider.query(record("hi")).pipe(env(server))
        expect("rateLimit" in plain).toBe(false)
      }).pipe(Effect.scoped))

    it.live("a history is sent as given; local images arrive base64, URLs pass through, detail is kept", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const url = "https://example.com/cat.png"
        const response = yield* provider.query(record([
          { role: "system", content: "Be brief." },
          {
            role: "user",
            content: [
              "describe",
              { type: "image_url", image_url: "pantani_giro.jpg" },
              { type: "image_url", image_url: { url: "mortadella.jpg", detail: "low" } },
              { type: "image_url", image_url: { url } },
              { type: "text", text: "and this" }
            ]
          },
          { role: "assistant", content: "Cyclists and a sausage." },
          { role: "user", content: "Which race?" }
        ])).pipe(env(server), Effect.locally(Provider.mediaFolder, mediaDir))
        expect(response.response).toBe("Answer to: Which race?")
        expect(server.requests[0]!.body).toEqual({
          model: "gpt-4o",
          messages: [
            { role: "system", content: "Be brief." },
            {
              role: "user",
              content: [
                { type: "text", text: "describe" },
                { type: "image_url", image_url: { url: `data:image/jpeg;base64,${base64Of("pantani_giro.jpg")}` } },
                { type: "image_url", image_url: { url: `data:image/jpeg;base64,${base64Of("mortadella.jpg")}`, detail: "low" } },
                { type: "image_url", image_url: { url } },
                { type: "text", text: "and this" }
              ]
            },
            { role: "assistant", content: "Cyclists and a sausage." },
            { role: "user", content: "Which race?" }
          ]
        })
      }).pipe(Effect.scoped))

    it.live("per-model variables: OPENAI_API_KEY_<id> and OPENAI_BASE_URL_<id> win over the base ones", () =>
      Effect.gen(function*() {
        const main = yield* OpenAiServer.make(bearer("sk-test"))
        const other = yield* OpenAiServer.make(bearer("sk-mini"))
        const provider = yield* OpenAi.make
        const environment = env(main, { OPENAI_API_KEY_gpt_4o_mini: "sk-mini", OPENAI_BASE_URL_gpt_4o_mini: `${other.url}/v1/` })
        const big = yield* provider.query(record("a")).pipe(environment)
        const small = yield* provider.query(record("b", { model_name: "gpt-4o-mini" })).pipe(environment)
        expect([big.response, small.response]).toEqual(["Answer to: a", "Answer to: b"])
        expect(main.requests.map((request) => [request.headers["authorization"], request.body.model])).toEqual([
          ["Bearer sk-test", "gpt-4o"]
        ])
        expect(other.requests.map((request) => [request.path, request.headers["authorization"], request.body.model])).toEqual([
          ["/v1/chat/completions", "Bearer sk-mini", "gpt-4o-mini"]
        ])
      }).pipe(Effect.scoped))

    it.live("connections are kept alive: many sequential requests, few connections", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        for (const prompt of ["a", "b", "c", "d", "e", "f", "g", "h"]) yield* provider.query(record(prompt)).pipe(env(server))
        expect(server.requests).toHaveLength(8)
        expect(server.requests.every((request) => request.headers["connection"] !== "close")).toBe(true)
        expect(server.connections()).toBeLessThanOrEqual(2)
      }).pipe(Effect.scoped))
  })

  describe("errors", () => {
    it.live("429 with retry-after is a RateLimitError carrying the wait", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.rateLimited("7"))
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.RateLimitError)
        expect(error).toMatchObject({ retryAfterMs: 7000, retryable: true })
        expect(error.message).toContain("Rate limit reached for gpt-4o")
        expect(server.requests).toHaveLength(1) // no SDK retry
      }).pipe(Effect.scoped))

    it.live("429 with x-ratelimit-* headers is a RateLimitError carrying them", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.rateLimited(
          "1",
          OpenAiServer.rateLimitHeaders({ remainingRequests: "0", resetRequests: "20s", remainingTokens: "0", resetTokens: "1m30s" })
        ))
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.RateLimitError)
        expect(error).toMatchObject({
          retryAfterMs: 1000,
          rateLimit: {
            limitRequests: 500,
            remainingRequests: 0,
            resetRequestsMs: 20_000,
            limitTokens: 30_000,
            remainingTokens: 0,
            resetTokensMs: 90_000
          }
        })
      }).pipe(Effect.scoped))

    it.live("500 is a TransientError with the status, not retried by the SDK", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.serverError)
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error).toMatchObject({ status: 500, retryable: true })
        expect(server.requests).toHaveLength(1)
        // the next request is answered
        expect((yield* provider.query(record("hi")).pipe(env(server))).response).toBe("Answer to: hi")
      }).pipe(Effect.scoped))

    it.live("400 with an OpenAI error body is a PermanentError with the server's message", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const message = "Invalid value for 'temperature': must be between 0 and 2."
        server.enqueue(OpenAiServer.replies.status(400, OpenAiServer.openAiError(message, "invalid_request_error", "invalid_value")))
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi", { parameters: { temperature: 5 } })).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.PermanentError)
        expect(error).toMatchObject({ reason: "bad_request", status: 400, retryable: false })
        expect(error.message).toBe(`openai: 400 ${message}`)
      }).pipe(Effect.scoped))

    it.live("a wrong key gets the server's 401: a PermanentError of reason auth", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make(bearer("sk-right"))
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(env(server)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "auth", status: 401 })
        expect(error.message).toContain("Incorrect API key provided")
      }).pipe(Effect.scoped))

    it.live("a malformed 200 body (invalid JSON) is a TransientError", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.malformed)
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toMatch(/^openai: /)
      }).pipe(Effect.scoped))

    it.live("a 200 JSON body that is not a completion is a TransientError", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.status(200, { object: "chat.completion", model: "gpt-4o" }))
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toContain("malformed response")
      }).pipe(Effect.scoped))

    it.live("a hang is interrupted by Effect.timeout and the HTTP request is aborted", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.hang)
        const provider = yield* OpenAi.make
        const exit = yield* provider.query(record("hi")).pipe(env(server), Effect.timeout("300 millis"), Effect.exit)
        expect(Exit.isFailure(exit)).toBe(true)
        expect(server.requests).toHaveLength(1)
        // the server sees the client close the connection
        const closed = yield* server.hangClosed.pipe(Effect.timeout("3 seconds"), Effect.exit)
        expect(Exit.isSuccess(closed)).toBe(true)
      }).pipe(Effect.scoped))

    it.live("a refused connection is a TransientError naming the URL and the error code", () =>
      Effect.gen(function*() {
        const provider = yield* OpenAi.make
        // a port that was just listened on and closed: nothing answers there
        const closed = yield* Effect.scoped(Effect.map(OpenAiServer.make(), (server) => server.url))
        const error = yield* failure(
          provider.query(record("hi")).pipe(withEnv({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${closed}/v1` }))
        )
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`openai: cannot connect to ${closed}/v1 (ECONNREFUSED)`)
      }))

    it.live("an empty prompt list is refused before sending, in the words every API uses", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record([])).pipe(env(server)))
        expect(error).toMatchObject({
          _tag: "PermanentError",
          reason: "validation",
          message: "prompt: the list is empty: give at least one turn or message"
        })
        expect(server.requests).toHaveLength(0)
      }).pipe(Effect.scoped))

    it.live("without a key nothing is sent: a PermanentError of reason configuration naming the variables", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record("hi")).pipe(withEnv({ OPENAI_BASE_URL: `${server.url}/v1` })))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
        expect(error.message).toContain("\"OPENAI_API_KEY_gpt_4o\", \"OPENAI_API_KEY\"")
        expect(server.requests).toHaveLength(0)
      }).pipe(Effect.scoped))

    it.live("a prompt of the wrong shape is re-checked before sending: a PermanentError of reason validation", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const provider = yield* OpenAi.make
        const error = yield* failure(provider.query(record([{ role: "tool", content: "x" }])).pipe(env(server)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "validation" })
        expect(error.message).toContain(OpenAi.shapeError)
        const missing = yield* failure(
          provider.query(record([{ role: "user", content: [{ type: "image_url", image_url: "nope.jpg" }] }])).pipe(
            env(server),
            Effect.locally(Provider.mediaFolder, mediaDir)
          )
        )
        expect(missing).toMatchObject({ _tag: "PermanentError", reason: "validation" })
        expect(missing.message).toContain("nope.jpg")
        expect(server.requests).toHaveLength(0)
      }).pipe(Effect.scoped))
  })

  describe("check", () => {
    const check = (input: PromptRecord.PromptRecord, entries: Readonly<Record<string, string>> = { OPENAI_API_KEY: "sk-secret-value" }) =>
      Effect.flatMap(OpenAi.make, (provider) => provider.check(input)).pipe(
        withEnv(entries),
        Effect.locally(Provider.mediaFolder, mediaDir)
      )

    it.effect("accepts every prompt shape prompto accepts for openai", () =>
      Effect.gen(function*() {
        const prompts: ReadonlyArray<unknown> = [
          "hi",
          ["a", "b"],
          [{ role: "system", content: "s" }, { role: "user", content: "u" }, { role: "assistant", content: "a" }],
          [{ role: "user", content: ["text", { type: "text", text: "t" }, { type: "image_url", image_url: "mortadella.jpg" }] }],
          [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x.org/a.png", detail: "high" } }] }]
        ]
        for (const prompt of prompts) expect(yield* check(record(prompt))).toEqual([])
        expect(yield* check(record("hi", { mode: "completion", parameters: { n: 2, stream: false } }))).toEqual([])
      }))

    it.effect("reports a missing key on \"api\", naming both variables and never a value", () =>
      Effect.gen(function*() {
        const problems = yield* check(record("hi"), { OTHER: "sk-secret-value", OPENAI_BASE_URL: "https://example.com/v1" })
        expect(problems).toEqual([{
          key: "api",
          message: "at least one of the environment variables \"OPENAI_API_KEY_gpt_4o\", \"OPENAI_API_KEY\" must be set"
        }])
        expect(yield* check(record("hi"), { OPENAI_API_KEY_gpt_4o: "sk-model" })).toEqual([])
        const badUrl = yield* check(record("hi"), { OPENAI_API_KEY: "sk-secret-value", OPENAI_BASE_URL: "localhost:8000" })
        expect(badUrl.map((problem) => problem.key)).toEqual(["api"])
        expect(badUrl[0]!.message).toContain("OPENAI_BASE_URL")
        expect(badUrl[0]!.message).not.toContain("localhost")
      }))

    it.effect("rejects prompts of other shapes with prompto's message", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<unknown> = [
          [{ role: "user", content: "u", name: "bob" }],
          [{ role: "model", content: "u" }],
          [{ role: "user", parts: "u" }],
          ["a", { role: "user", content: "u" }]
        ]
        for (const prompt of bad) {
          expect(yield* check(record(prompt))).toEqual([{ key: "prompt", message: OpenAi.shapeError }])
        }
      }))

    it.effect("reports bad content items, missing media files, mode, n with turns, stream and reserved parameters", () =>
      Effect.gen(function*() {
        const items = yield* check(record([{ role: "user", content: [{ type: "audio", data: "x" }, { type: "image_url" }] }]))
        expect(items.map((problem) => [problem.key, problem.message.slice(0, 17)])).toEqual([
          ["prompt", "message 0, item 0"],
          ["prompt", "message 0, item 1"]
        ])
        const media = yield* check(record([{ role: "user", content: [{ type: "image_url", image_url: "missing.jpg" }] }]))
        expect(media).toEqual([{ key: "prompt", message: `media file not found: ${path.join(mediaDir, "missing.jpg")}` }])
        expect(yield* check(record("hi", { mode: "completions" }))).toEqual([
          { key: "mode", message: "Invalid mode value. Must be 'chat' or 'completion', not completions" }
        ])
        expect((yield* check(record(["a", "b"], { parameters: { n: 2 } }))).map((problem) => problem.key)).toEqual(["parameters.n"])
        expect((yield* check(record("hi", { parameters: { stream: true, model: "x" } }))).map((problem) => problem.key)).toEqual([
          "parameters.stream",
          "parameters.model"
        ])
        expect(yield* check(record([]))).toEqual([{ key: "prompt", message: "the list is empty: give at least one turn or message" }])
      }))

    it.effect("a bad prompt shape and a missing key are both reported", () =>
      Effect.gen(function*() {
        const missingKey = {
          key: "api",
          message: "at least one of the environment variables \"OPENAI_API_KEY_gpt_4o\", \"OPENAI_API_KEY\" must be set"
        }
        expect(yield* check(record([{ role: "tool", content: "x" }]), {})).toEqual([
          { key: "prompt", message: OpenAi.shapeError },
          missingKey
        ])
        expect(yield* check(record([]), {})).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          missingKey
        ])
      }))
  })

  describe("end to end with Experiment.run on prompto's examples", () => {
    const tempDataFolder = () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-openai-"))
      fs.cpSync(mediaDir, path.join(dir, "data", "media"), { recursive: true })
      return path.join(dir, "data")
    }
    const readJsonl = (file: string): Array<Record<string, any>> =>
      fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line))
    const promptoOutput = (name: string) => {
      const dir = path.join(examples, "openai", "data", "output", name)
      return readJsonl(path.join(dir, fs.readdirSync(dir).find((file) => file.includes("-completed-"))!))
    }
    /** What the API expects for a prompto content list, built here without the code under test. */
    const expectedContent = (content: unknown): unknown =>
      typeof content === "string" ? content : (content as ReadonlyArray<any>).map((item) =>
        typeof item === "string"
          ? { type: "text", text: item }
          : item.type === "image_url"
          ? typeof item.image_url === "string"
            ? { type: "image_url", image_url: { url: `data:image/jpeg;base64,${base64Of(item.image_url)}` } }
            : { type: "image_url", image_url: item.image_url }
          : item
      )
    const expectedResponse = (prompt: unknown): unknown =>
      typeof prompt === "string"
        ? OpenAiServer.answerText(prompt)
        : (prompt as ReadonlyArray<unknown>).every((turn) => typeof turn === "string")
        ? (prompt as ReadonlyArray<string>).map((turn) => OpenAiServer.answerText(turn))
        : OpenAiServer.answerText(OpenAiServer.contentText(
          expectedContent([...(prompt as ReadonlyArray<any>)].reverse().find((message) => message.role === "user").content)
        ))
    const run = (name: string, server: OpenAiServer.OpenAiServer) =>
      Experiment.run({
        file: path.join(examples, "openai", "data", "input", `${name}.jsonl`),
        dataFolder: tempDataFolder(),
        maxQueries: 600_000,
        timeout: "10 seconds"
      }).pipe(
        env(server, { OPENAI_API_KEY_gpt_3_5_turbo: "sk-turbo" }),
        Effect.provide(Layer.merge(NodeContext.layer, OpenAi.layer))
      )

    /** Every id completed once, input keys kept, prompto's keys all present, responses are the server's. */
    const expectLikePrompto = (name: string, completed: ReadonlyArray<Record<string, any>>) => {
      const inputs = readJsonl(path.join(examples, "openai", "data", "input", `${name}.jsonl`))
      const prompto = promptoOutput(name)
      expect(completed.map((r) => r.id).sort()).toEqual(inputs.map((r) => r.id).sort())
      for (const input of inputs) {
        const ours = completed.find((r) => r.id === input.id)!
        const theirs = prompto.find((r) => r.id === input.id)!
        expect(ours).toMatchObject(input)
        for (const key of Object.keys(theirs)) expect(Object.keys(ours)).toContain(key)
        expect(ours.error).toBeUndefined()
        expect(Array.isArray(ours.response)).toBe(Array.isArray(theirs.response))
        if (Array.isArray(theirs.response)) expect(ours.response).toHaveLength(theirs.response.length)
        expect(ours.response).toEqual(expectedResponse(input.prompt))
        expect(ours).toMatchObject({ model: `${input.model_name}-2024-08-06`, attempts: 1 })
        expect(ours.finish_reason).toEqual(Array.isArray(ours.response) ? ours.response.map(() => "stop") : "stop")
        expect(ours.usage.total_tokens).toBe(ours.usage.prompt_tokens + ours.usage.completion_tokens)
      }
    }

    it.live("openai-example.jsonl: strings, multi-turn and histories, per-model key", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make(bearer("sk-test", "sk-turbo"))
        const result = yield* run("openai-example", server)
        const completed = readJsonl(result.files.completed)
        expectLikePrompto("openai-example", completed)
        // 4 single requests + 2 turns of the multi-turn prompt
        expect(server.requests).toHaveLength(6)
        for (const request of server.requests) {
          expect(request.path).toBe("/v1/chat/completions")
          expect(request.body).toMatchObject({ n: 1, temperature: 1, max_tokens: 100 })
          expect(request.headers["authorization"]).toBe(request.body.model === "gpt-3.5-turbo" ? "Bearer sk-turbo" : "Bearer sk-test")
        }
        const history = readJsonl(path.join(examples, "openai", "data", "input", "openai-example.jsonl")).find((r) => r.id === 4)!
        expect(server.requests.some((request) => JSON.stringify(request.body.messages) === JSON.stringify(history.prompt)))
          .toBe(true)
      }).pipe(Effect.scoped))

    it.live("a hang is cut by the run's timeout on the request's own fiber: the SDK's request is aborted and the line written as a timeout", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        server.enqueue(OpenAiServer.replies.hang)
        const provider = yield* OpenAi.make
        // the deadline is handed to the SDK call, not enforced by a fiber of its own
        expect(provider.timesOut).toBe(true)
        const dataFolder = tempDataFolder()
        const file = path.join(path.dirname(dataFolder), "hang.jsonl")
        fs.writeFileSync(file, JSON.stringify({ id: "h1", api: "openai", model_name: "gpt-4o", prompt: "Hello?" }) + "\n")
        const result = yield* Experiment.run({ file, dataFolder, maxQueries: 600_000, timeout: "400 millis", maxAttempts: 1 }).pipe(
          env(server),
          Effect.provide(Layer.merge(NodeContext.layer, OpenAi.layer))
        )
        const [line] = readJsonl(result.files.completed)
        expect(line).toMatchObject({ id: "h1", error: { kind: "timeout", message: "no response within 400ms" } })
        expect(server.requests).toHaveLength(1)
        const closed = yield* server.hangClosed.pipe(Effect.timeout("3 seconds"), Effect.exit)
        expect(Exit.isSuccess(closed)).toBe(true)
      }).pipe(Effect.scoped))

    it.live("a tool-call answer is written to the completed file with its tool_calls and reasoning", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make()
        const dataFolder = tempDataFolder()
        const file = path.join(path.dirname(dataFolder), "tools.jsonl")
        fs.writeFileSync(file, JSON.stringify({ id: "t1", api: "openai", model_name: "gpt-4o", prompt: "Weather?" }) + "\n")
        const call = OpenAiServer.toolCall("call_1", "get_weather", { city: "Oslo" })
        server.enqueue(OpenAiServer.replies.answerWithMessage({ content: null, toolCalls: [call], reasoningContent: "ask the tool" }))
        const result = yield* Experiment.run({ file, dataFolder, maxQueries: 600_000, timeout: "10 seconds" }).pipe(
          env(server),
          Effect.provide(Layer.merge(NodeContext.layer, OpenAi.layer))
        )
        const [line] = readJsonl(result.files.completed)
        expect(line).toMatchObject({
          id: "t1",
          response: "",
          finish_reason: "tool_calls",
          tool_calls: [{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" }, raw: call }],
          reasoning: "ask the tool"
        })
        expect(line!.error).toBeUndefined()
      }).pipe(Effect.scoped))

    it.live("openai-multimodal-example.jsonl: images from media/ arrive base64, the URL passes through", () =>
      Effect.gen(function*() {
        const server = yield* OpenAiServer.make(bearer("sk-test"))
        const result = yield* run("openai-multimodal-example", server)
        expectLikePrompto("openai-multimodal-example", readJsonl(result.files.completed))
        const inputs = readJsonl(path.join(examples, "openai", "data", "input", "openai-multimodal-example.jsonl"))
        expect(server.requests).toHaveLength(inputs.length)
        for (const input of inputs) {
          const messages = (input.prompt as ReadonlyArray<any>).map((message) => ({
            role: message.role,
            content: expectedContent(message.content)
          }))
          const sent = server.requests.filter((request) => JSON.stringify(request.body.messages) === JSON.stringify(messages))
          expect(sent, `request for id ${input.id}`).toHaveLength(1)
        }
        const dataUrls = server.requests.flatMap((request) =>
          (request.body.messages as ReadonlyArray<any>).flatMap((message) =>
            Array.isArray(message.content) ? message.content.filter((part: any) => part.type === "image_url") : []
          )
        ).map((part) => part.image_url.url.slice(0, 30))
        expect(dataUrls.filter((url) => url.startsWith("data:image/jpeg;base64,"))).toHaveLength(3)
        expect(dataUrls.filter((url) => url.startsWith("https://upload.wikimedia.org"))).toHaveLength(1)
      }).pipe(Effect.scoped))
  })
})
