import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as HuggingFaceTgi from "../src/HuggingFaceTgi.js"
import * as OpenAiServer from "./servers/OpenAiServer.js"

const served = "meta-llama/Meta-Llama-3.1-8B-Instruct"

const withEnv = (entries: Readonly<Record<string, string>>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const env = (server: OpenAiServer.OpenAiServer, extra: Readonly<Record<string, string>> = {}) =>
  withEnv({ HUGGINGFACE_TGI_API_ENDPOINT: server.url, ...extra })

const tgi = (keys: ReadonlyArray<string> = ["-"]) =>
  OpenAiServer.make({ auth: { _tag: "Bearer", keys }, servedModel: () => served })

const record = (prompt: unknown, extra: Readonly<Record<string, unknown>> = {}): PromptRecord.IdentifiedRecord => ({
  id: 1,
  api: "huggingface-tgi",
  model_name: "llama-3-8b",
  prompt: prompt as PromptRecord.Prompt,
  ...extra
})

describe("HuggingFaceTgi", () => {
  describe("requests and responses", () => {
    it.live("a string prompt goes to {endpoint}/v1/completions with model \"tgi\" (prompto's default mode)", () =>
      Effect.gen(function*() {
        const server = yield* tgi()
        const provider = yield* HuggingFaceTgi.make
        const response = yield* provider.query(record("What is TGI?", { parameters: { max_tokens: 20 } })).pipe(env(server))
        expect(response).toEqual({
          response: "Answer to: What is TGI?",
          usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
          fields: { finish_reason: "length", model: served }
        })
        const request = server.requests[0]!
        expect(request.path).toBe("/v1/completions")
        expect(request.headers["authorization"]).toBe("Bearer -")
        expect(request.body).toEqual({ model: "tgi", prompt: "What is TGI?", max_tokens: 20 })
      }).pipe(Effect.scoped))

    it.live("mode \"chat\" sends a user message to chat completions", () =>
      Effect.gen(function*() {
        const server = yield* tgi()
        const provider = yield* HuggingFaceTgi.make
        const response = yield* provider.query(record("hello", { mode: "chat" })).pipe(env(server))
        expect(response.response).toBe("Answer to: hello")
        expect(response.fields).toEqual({ finish_reason: "stop", model: served })
        expect(server.requests[0]!.path).toBe("/v1/chat/completions")
        expect(server.requests[0]!.body).toEqual({ model: "tgi", messages: [{ role: "user", content: "hello" }] })
      }).pipe(Effect.scoped))

    it.live("a list of strings is a multi-turn chat with history; the served model is reported", () =>
      Effect.gen(function*() {
        const server = yield* tgi()
        const provider = yield* HuggingFaceTgi.make
        const response = yield* provider.query(record(["one", "two"])).pipe(env(server))
        expect(response.response).toEqual(["Answer to: one", "Answer to: two"])
        expect(response.fields).toEqual({ finish_reason: ["stop", "stop"], model: served })
        expect(server.requests.map((request) => [request.path, request.body.messages.length])).toEqual([
          ["/v1/chat/completions", 1],
          ["/v1/chat/completions", 3]
        ])
        expect(server.requests[1]!.body.messages[1]).toEqual({ role: "assistant", content: "Answer to: one" })
      }).pipe(Effect.scoped))

    it.live("per-model endpoint and key; a trailing slash on the endpoint is fine", () =>
      Effect.gen(function*() {
        const main = yield* tgi()
        const other = yield* tgi(["hf-secret"])
        const provider = yield* HuggingFaceTgi.make
        const environment = env(main, {
          HUGGINGFACE_TGI_API_ENDPOINT_flan_t5_xl: `${other.url}/`,
          HUGGINGFACE_TGI_API_KEY_flan_t5_xl: "hf-secret"
        })
        yield* provider.query(record("a", { model_name: "flan-t5-xl" })).pipe(environment)
        yield* provider.query(record("b")).pipe(environment)
        expect(other.requests.map((request) => [request.path, request.headers["authorization"], request.body.model])).toEqual([
          ["/v1/completions", "Bearer hf-secret", "tgi"]
        ])
        expect(main.requests.map((request) => request.headers["authorization"])).toEqual(["Bearer -"])
      }).pipe(Effect.scoped))
  })

  describe("errors and check", () => {
    it.live("500 is a TransientError; a hang is aborted by Effect.timeout", () =>
      Effect.gen(function*() {
        const server = yield* tgi()
        server.enqueue(OpenAiServer.replies.serverError, OpenAiServer.replies.hang)
        const provider = yield* HuggingFaceTgi.make
        const error = yield* Effect.flip(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error).toMatchObject({ status: 500 })
        const exit = yield* provider.query(record("hi")).pipe(env(server), Effect.timeout("200 millis"), Effect.exit)
        expect(Exit.isFailure(exit)).toBe(true)
        expect(Exit.isSuccess(yield* server.hangClosed.pipe(Effect.timeout("3 seconds"), Effect.exit))).toBe(true)
      }).pipe(Effect.scoped))

    it.live("a history prompt is refused by check and before sending, with prompto's message", () =>
      Effect.gen(function*() {
        const server = yield* tgi()
        const provider = yield* HuggingFaceTgi.make
        const history = record([{ role: "user", content: "hi" }])
        expect(yield* provider.check(history).pipe(env(server))).toEqual([
          { key: "prompt", message: HuggingFaceTgi.shapeError }
        ])
        expect(yield* provider.check(record(["a", "b"])).pipe(env(server))).toEqual([])
        const error = yield* Effect.flip(provider.query(history).pipe(env(server)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "validation" })
        expect(error.message).toContain("prompt must be a str or a list[str]")
        expect(server.requests).toHaveLength(0)
      }).pipe(Effect.scoped))

    it.live("a refused connection names the endpoint and the error code", () =>
      Effect.gen(function*() {
        const closed = yield* Effect.scoped(Effect.map(tgi(), (server) => server.url))
        const provider = yield* HuggingFaceTgi.make
        const error = yield* Effect.flip(provider.query(record("hi")).pipe(withEnv({ HUGGINGFACE_TGI_API_ENDPOINT: closed })))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`huggingface-tgi: cannot connect to ${closed}/v1/ (ECONNREFUSED)`)
      }))

    it.effect("an empty list and a missing endpoint are both reported, the list in the words every API uses", () =>
      Effect.gen(function*() {
        const provider = yield* HuggingFaceTgi.make
        expect(yield* provider.check(record([])).pipe(withEnv({}))).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          {
            key: "api",
            message:
              "at least one of the environment variables \"HUGGINGFACE_TGI_API_ENDPOINT_llama_3_8b\", \"HUGGINGFACE_TGI_API_ENDPOINT\" must be set"
          }
        ])
        const error = yield* Effect.flip(provider.query(record([])).pipe(withEnv({ HUGGINGFACE_TGI_API_ENDPOINT: "http://x" })))
        expect(error).toMatchObject({ reason: "validation", message: "prompt: the list is empty: give at least one turn or message" })
      }))

    it.effect("requires the endpoint (naming both variables), not the key", () =>
      Effect.gen(function*() {
        const provider = yield* HuggingFaceTgi.make
        expect(yield* provider.check(record("hi")).pipe(withEnv({ HUGGINGFACE_TGI_API_KEY: "k" }))).toEqual([{
          key: "api",
          message:
            "at least one of the environment variables \"HUGGINGFACE_TGI_API_ENDPOINT_llama_3_8b\", \"HUGGINGFACE_TGI_API_ENDPOINT\" must be set"
        }])
        expect(yield* provider.check(record("hi")).pipe(withEnv({ HUGGINGFACE_TGI_API_ENDPOINT: "http://localhost:8080" })))
          .toEqual([])
        expect(
          (yield* provider.check(record("hi", { mode: "generate" })).pipe(withEnv({ HUGGINGFACE_TGI_API_ENDPOINT: "http://x" })))
            .map((problem) => problem.key)
        ).toEqual(["mode"])
      }))
  })

  it.live("end to end with Experiment.run: completed records carry the served model", () =>
    Effect.gen(function*() {
      const server = yield* tgi()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-tgi-"))
      const file = path.join(dir, "tgi-example.jsonl")
      const lines = [
        { id: 0, api: "huggingface-tgi", model_name: "llama-3-8b", prompt: "How does technology impact us?", parameters: { max_tokens: 50 } },
        { id: 1, api: "huggingface-tgi", model_name: "llama-3-8b", prompt: ["Hi", "Tell me a joke"], parameters: { temperature: 0.5 } },
        { id: 2, api: "huggingface-tgi", model_name: "llama-3-8b", prompt: "Hello", mode: "chat" }
      ]
      fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n") + "\n")
      const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, timeout: "10 seconds" })
        .pipe(env(server), Effect.provide(Layer.merge(NodeContext.layer, HuggingFaceTgi.layer)))
      const completed = fs.readFileSync(result.files.completed, "utf8").trim().split("\n").map((line) => JSON.parse(line))
      expect(completed.map((r) => r.id).sort()).toEqual([0, 1, 2])
      for (const line of lines) expect(completed.find((r) => r.id === line.id)).toMatchObject({ ...line, model: served })
      expect(new Map(completed.map((r) => [r.id, r.response]))).toEqual(new Map<number, unknown>([
        [0, "Answer to: How does technology impact us?"],
        [1, ["Answer to: Hi", "Answer to: Tell me a joke"]],
        [2, "Answer to: Hello"]
      ]))
      expect(server.requests.map((request) => request.path).sort()).toEqual([
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/completions"
      ])
      expect(server.requests.every((request) => request.body.model === "tgi")).toBe(true)
    }).pipe(Effect.scoped))
})
