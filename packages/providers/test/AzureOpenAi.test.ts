import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AzureOpenAi from "../src/AzureOpenAi.js"
import * as OpenAiServer from "./servers/OpenAiServer.js"

/** prompto's example files, copied into the repository (`test/fixtures/prompto-examples`). */
const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples")
const mediaDir = path.join(examples, "openai", "data", "media")
const base64Of = (file: string) => fs.readFileSync(path.join(mediaDir, file)).toString("base64")

const withEnv = (entries: Readonly<Record<string, string>>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const env = (server: OpenAiServer.OpenAiServer, extra: Readonly<Record<string, string>> = {}) =>
  withEnv({ AZURE_OPENAI_API_KEY: "az-key", AZURE_OPENAI_API_ENDPOINT: server.url, ...extra })

const azure = (options: { readonly apiVersion?: string; readonly keys?: ReadonlyArray<string> } = {}) =>
  OpenAiServer.make({
    auth: {
      _tag: "Azure",
      keys: options.keys ?? ["az-key"],
      apiVersion: options.apiVersion ?? "2024-02-01",
      deployments: ["reginald-gpt4", "reginald-gpt-4o"]
    },
    servedModel: (requested) => requested === "reginald-gpt-4o" ? "gpt-4o-2024-05-13" : "gpt-4"
  })

const record = (prompt: unknown, extra: Readonly<Record<string, unknown>> = {}): PromptRecord.IdentifiedRecord => ({
  id: 1,
  api: "azure-openai",
  model_name: "reginald-gpt4",
  prompt: prompt as PromptRecord.Prompt,
  ...extra
})

describe("AzureOpenAi", () => {
  describe("requests and responses", () => {
    it.live("sends to the deployment path with api-version and the api-key header", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        const response = yield* provider.query(record("How does technology impact us?", { parameters: { n: 1, max_tokens: 100 } }))
          .pipe(env(server))
        expect(response).toEqual({
          response: "Answer to: How does technology impact us?",
          usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
          fields: { finish_reason: "stop", model: "gpt-4" }
        })
        const request = server.requests[0]!
        expect(request.method).toBe("POST")
        expect(request.path).toBe("/openai/deployments/reginald-gpt4/chat/completions")
        expect(request.query).toEqual({ "api-version": "2024-02-01" })
        expect(request.headers["api-key"]).toBe("az-key")
        expect(request.headers["authorization"]).toBeUndefined()
        expect(request.body).toEqual({
          model: "reginald-gpt4",
          messages: [{ role: "user", content: "How does technology impact us?" }],
          n: 1,
          max_tokens: 100
        })
      }).pipe(Effect.scoped))

    it.live("records the cached input and reasoning tokens Azure reports", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        server.enqueue(OpenAiServer.replies.answerWith({ cachedTokens: 2, reasoningTokens: 3 }))
        const response = yield* provider.query(record("How does technology impact us?")).pipe(env(server))
        expect(response.usage).toEqual({
          prompt_tokens: 5,
          completion_tokens: 10,
          total_tokens: 15,
          cached_tokens: 2,
          reasoning_tokens: 3
        })
      }).pipe(Effect.scoped))

    it.live("reports the x-ratelimit-* headers Azure sends (often the remaining counts alone) as rateLimit", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        server.enqueue(OpenAiServer.replies.answerWithHeaders({
          "x-ratelimit-remaining-requests": "119",
          "x-ratelimit-remaining-tokens": "119980",
          "x-ms-region": "East US"
        }))
        const response = yield* provider.query(record("hi")).pipe(env(server))
        expect(response.rateLimit).toEqual({ remainingRequests: 119, remainingTokens: 119_980 })
        expect(response.fields).toEqual({ finish_reason: "stop", model: "gpt-4" })
      }).pipe(Effect.scoped))

    it.live("per-model key, endpoint and API version; a trailing slash on the endpoint is fine", () =>
      Effect.gen(function*() {
        const main = yield* azure()
        const other = yield* azure({ apiVersion: "2024-10-21", keys: ["az-4o"] })
        const provider = yield* AzureOpenAi.make
        const environment = env(main, {
          AZURE_OPENAI_API_KEY_reginald_gpt_4o: "az-4o",
          AZURE_OPENAI_API_ENDPOINT_reginald_gpt_4o: `${other.url}/`,
          AZURE_OPENAI_API_VERSION_reginald_gpt_4o: "2024-10-21"
        })
        const response = yield* provider.query(record("hi", { model_name: "reginald-gpt-4o" })).pipe(environment)
        expect(response.fields).toEqual({ finish_reason: "stop", model: "gpt-4o-2024-05-13" })
        expect(main.requests).toHaveLength(0)
        expect(other.requests.map((request) => [request.path, request.query["api-version"], request.headers["api-key"]])).toEqual([
          ["/openai/deployments/reginald-gpt-4o/chat/completions", "2024-10-21", "az-4o"]
        ])
        yield* provider.query(record("hi")).pipe(environment)
        expect(main.requests.map((request) => request.query["api-version"])).toEqual(["2024-02-01"])
      }).pipe(Effect.scoped))

    it.live("mode \"completion\" goes to the deployment's completions path", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        const response = yield* provider.query(record("Once upon a time", { mode: "completion" })).pipe(env(server))
        expect(response.response).toBe("Answer to: Once upon a time")
        expect(server.requests[0]!.path).toBe("/openai/deployments/reginald-gpt4/completions")
        expect(server.requests[0]!.body).toEqual({ model: "reginald-gpt4", prompt: "Once upon a time" })
      }).pipe(Effect.scoped))

    it.live("OPENAI_BASE_URL in the process environment does not confuse the Azure client", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        const saved = process.env.OPENAI_BASE_URL
        process.env.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"
        const response = yield* provider.query(record("hi")).pipe(
          env(server),
          Effect.ensuring(Effect.sync(() => {
            if (saved === undefined) delete process.env.OPENAI_BASE_URL
            else process.env.OPENAI_BASE_URL = saved
          }))
        )
        expect(response.response).toBe("Answer to: hi")
        expect(server.requests).toHaveLength(1)
      }).pipe(Effect.scoped))
  })

  describe("errors", () => {
    it.live("an unknown deployment is a PermanentError (not found) with Azure's message", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        const error = yield* Effect.flip(provider.query(record("hi", { model_name: "unknown-model-name" })).pipe(env(server)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "not_found", status: 404 })
        expect(error.message).toContain("The API deployment for this resource does not exist")
        expect(server.requests[0]!.path).toBe("/openai/deployments/unknown-model-name/chat/completions")
      }).pipe(Effect.scoped))

    it.live("a wrong key is a PermanentError (auth)", () =>
      Effect.gen(function*() {
        const server = yield* azure({ keys: ["other"] })
        const provider = yield* AzureOpenAi.make
        const error = yield* Effect.flip(provider.query(record("hi")).pipe(env(server)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "auth", status: 401 })
        expect(error.message).toContain("Access denied due to invalid subscription key")
      }).pipe(Effect.scoped))

    it.live("429 with retry-after-ms is a RateLimitError carrying the wait", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        server.enqueue(OpenAiServer.replies.status(
          429,
          { error: { code: "429", message: "Requests to the ChatCompletions_Create Operation have exceeded the rate limit." } },
          { "retry-after-ms": "1500", "retry-after": "2" }
        ))
        const provider = yield* AzureOpenAi.make
        const error = yield* Effect.flip(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.RateLimitError)
        expect(error).toMatchObject({ retryAfterMs: 1500 })
        expect("rateLimit" in error).toBe(false)
        expect(server.requests).toHaveLength(1)
      }).pipe(Effect.scoped))

    it.live("429 with x-ratelimit-* headers is a RateLimitError carrying them", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        server.enqueue(OpenAiServer.replies.status(
          429,
          { error: { code: "429", message: "Requests to the ChatCompletions_Create Operation have exceeded the rate limit." } },
          { "retry-after": "2", "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "5000" }
        ))
        const provider = yield* AzureOpenAi.make
        const error = yield* Effect.flip(provider.query(record("hi")).pipe(env(server)))
        expect(error).toBeInstanceOf(ProviderError.RateLimitError)
        expect(error).toMatchObject({ retryAfterMs: 2000, rateLimit: { remainingRequests: 0, remainingTokens: 5_000 } })
      }).pipe(Effect.scoped))

    it.live("a refused connection names the endpoint and the error code", () =>
      Effect.gen(function*() {
        const closed = yield* Effect.scoped(Effect.map(OpenAiServer.make(), (server) => server.url))
        const provider = yield* AzureOpenAi.make
        const error = yield* Effect.flip(
          provider.query(record("hi")).pipe(withEnv({ AZURE_OPENAI_API_KEY: "az-key", AZURE_OPENAI_API_ENDPOINT: closed }))
        )
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`azure-openai: cannot connect to ${closed}/openai (ECONNREFUSED)`)
      }))

    it.live("tool calls and reasoning come back as the openai ones do", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const provider = yield* AzureOpenAi.make
        const call = OpenAiServer.toolCall("call_az", "lookup", { id: 7 })
        server.enqueue(OpenAiServer.replies.answerWithMessage({ content: null, toolCalls: [call] }))
        const response = yield* provider.query(record("find 7")).pipe(env(server))
        expect(response.response).toBe("")
        expect(response.fields).toEqual({
          finish_reason: "tool_calls",
          tool_calls: [{ id: "call_az", name: "lookup", arguments: { id: 7 }, raw: call }],
          model: "gpt-4"
        })
      }).pipe(Effect.scoped))
  })

  describe("check", () => {
    const check = (input: PromptRecord.PromptRecord, entries: Readonly<Record<string, string>>) =>
      Effect.flatMap(AzureOpenAi.make, (provider) => provider.check(input)).pipe(withEnv(entries))

    it.effect("a bad prompt shape and the missing variables are all reported; an empty list in the shared words", () =>
      Effect.gen(function*() {
        expect((yield* check(record([{ role: "user", parts: ["u"] }]), {})).map((problem) => problem.key)).toEqual([
          "prompt",
          "api",
          "api"
        ])
        expect((yield* check(record([]), {}))[0]).toEqual({
          key: "prompt",
          message: "the list is empty: give at least one turn or message"
        })
      }))

    it.effect("requires the key and the endpoint, not the version", () =>
      Effect.gen(function*() {
        expect(yield* check(record("hi"), {})).toEqual([
          {
            key: "api",
            message: "at least one of the environment variables \"AZURE_OPENAI_API_KEY_reginald_gpt4\", \"AZURE_OPENAI_API_KEY\" must be set"
          },
          {
            key: "api",
            message:
              "at least one of the environment variables \"AZURE_OPENAI_API_ENDPOINT_reginald_gpt4\", \"AZURE_OPENAI_API_ENDPOINT\" must be set"
          }
        ])
        expect(yield* check(record("hi"), { AZURE_OPENAI_API_KEY: "k", AZURE_OPENAI_API_ENDPOINT: "https://r.openai.azure.com" }))
          .toEqual([])
        const query = yield* Effect.flip(
          Effect.flatMap(AzureOpenAi.make, (provider) => provider.query(record("hi"))).pipe(withEnv({ AZURE_OPENAI_API_KEY: "k" }))
        )
        expect(query).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
        expect(query.message).toContain("AZURE_OPENAI_API_ENDPOINT")
      }))

    it.effect("takes the same prompt shapes as openai, with prompto's azure message", () =>
      Effect.gen(function*() {
        const entries = { AZURE_OPENAI_API_KEY: "k", AZURE_OPENAI_API_ENDPOINT: "https://r.openai.azure.com" }
        expect(yield* check(record(["a", "b"]), entries)).toEqual([])
        expect(yield* check(record([{ role: "system", content: "s" }, { role: "user", content: "u" }]), entries)).toEqual([])
        expect(yield* check(record([{ role: "user", parts: ["u"] }]), entries)).toEqual([
          { key: "prompt", message: AzureOpenAi.shapeError }
        ])
        expect(AzureOpenAi.shapeError).toMatch(/^if api == 'azure-openai'/)
      }))
  })

  describe("end to end with Experiment.run on prompto's examples", () => {
    const readJsonl = (file: string): Array<Record<string, any>> =>
      fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line))
    const input = (name: string) => readJsonl(path.join(examples, "azure-openai", "data", "input", `${name}.jsonl`))
    const promptoOutput = (name: string) => {
      const dir = path.join(examples, "azure-openai", "data", "output", name)
      return readJsonl(path.join(dir, fs.readdirSync(dir).find((file) => file.includes("-completed-"))!))
    }
    const run = (name: string, server: OpenAiServer.OpenAiServer) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-azure-"))
      fs.cpSync(mediaDir, path.join(dir, "data", "media"), { recursive: true })
      return Experiment.run({
        file: path.join(examples, "azure-openai", "data", "input", `${name}.jsonl`),
        dataFolder: path.join(dir, "data"),
        maxQueries: 600_000,
        timeout: "10 seconds"
      }).pipe(env(server), Effect.provide(Layer.merge(NodeContext.layer, AzureOpenAi.layer)))
    }
    const expectPromptoKeys = (name: string, completed: ReadonlyArray<Record<string, any>>) => {
      const inputs = input(name)
      const prompto = promptoOutput(name)
      expect(completed.map((r) => r.id).sort()).toEqual(inputs.map((r) => r.id).sort())
      for (const line of inputs) {
        const ours = completed.find((r) => r.id === line.id)!
        const theirs = prompto.find((r) => r.id === line.id)!
        expect(ours).toMatchObject(line)
        for (const key of Object.keys(theirs)) expect(Object.keys(ours)).toContain(key)
        expect(Array.isArray(ours.response)).toBe(Array.isArray(theirs.response))
        if (Array.isArray(theirs.response)) expect(ours.response).toHaveLength(theirs.response.length)
      }
    }

    it.live("azure-openai-example.jsonl: deployments answer, the unknown one is an error record like prompto's", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const result = yield* run("azure-openai-example", server)
        const completed = readJsonl(result.files.completed)
        expectPromptoKeys("azure-openai-example", completed)
        const byId = new Map(completed.map((r) => [r.id, r]))
        expect(byId.get(0)).toMatchObject({ response: "Answer to: How does technology impact us?", model: "gpt-4", attempts: 1 })
        expect(byId.get(2)!.response).toEqual([
          "Answer to: How does international trade create jobs?",
          "Answer to: I want a joke about that"
        ])
        expect(byId.get(4)!.response).toBe("Answer to: How old will I be next year?")
        // prompto wrote an error string for the unknown deployment; so do we, without retrying
        const unknown = byId.get(1)!
        expect(promptoOutput("azure-openai-example").find((r) => r.id === 1)!.response).toContain("DeploymentNotFound")
        expect(unknown.response).toContain("The API deployment for this resource does not exist")
        expect(unknown).toMatchObject({ attempts: 1, error: { kind: "not_found" } })
        for (const request of server.requests) {
          expect(request.path).toBe(`/openai/deployments/${request.body.model}/chat/completions`)
          expect(request.query).toEqual({ "api-version": "2024-02-01" })
          expect(request.headers["api-key"]).toBe("az-key")
          expect(request.body).toMatchObject({ n: 1, temperature: 1, max_tokens: 100 })
        }
        expect(server.requests).toHaveLength(6)
      }).pipe(Effect.scoped))

    it.live("azure-openai-multimodal-example.jsonl: images arrive base64 at the deployment", () =>
      Effect.gen(function*() {
        const server = yield* azure()
        const result = yield* run("azure-openai-multimodal-example", server)
        const completed = readJsonl(result.files.completed)
        expectPromptoKeys("azure-openai-multimodal-example", completed)
        expect(completed.every((r) => r.error === undefined && r.model === "gpt-4o-2024-05-13")).toBe(true)
        expect(new Map(completed.map((r) => [r.id, r.response]))).toEqual(new Map([
          [0, "Answer to: describe what is happening in this image"],
          [1, "Answer to: what is this?"],
          [2, "Answer to: are there any notable cyclists in this image? what are their names?"],
          [3, "Answer to: What’s in this image?"]
        ]))
        expect(server.requests.every((request) => request.path === "/openai/deployments/reginald-gpt-4o/chat/completions"))
          .toBe(true)
        const first = server.requests.find((request) =>
          request.body.messages[0].content[0]?.text === "describe what is happening in this image"
        )!
        expect(first.body.messages).toEqual([{
          role: "user",
          content: [
            { type: "text", text: "describe what is happening in this image" },
            { type: "image_url", image_url: { url: `data:image/jpeg;base64,${base64Of("pantani_giro.jpg")}` } }
          ]
        }])
        const mortadella = server.requests.find((request) => request.body.messages[0].content[1]?.text === "what is this?")!
        expect(mortadella.body.messages[0].content[0]).toEqual({
          type: "image_url",
          image_url: { url: `data:image/jpeg;base64,${base64Of("mortadella.jpg")}` }
        })
      }).pipe(Effect.scoped, Effect.locally(Provider.mediaFolder, "/nonexistent")))
  })
})
