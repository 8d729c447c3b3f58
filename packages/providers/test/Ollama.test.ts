import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Either, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Ollama from "../src/Ollama.js"
import * as OllamaServer from "./servers/OllamaServer.js"

/** prompto's ollama example, copied into the repository (`test/fixtures/prompto-examples`). */
const fixtures = path.join(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples"),
  "ollama/data"
)

const record = (
  prompt: PromptRecord.Prompt,
  options: { readonly model?: string; readonly parameters?: Readonly<Record<string, unknown>>; readonly id?: PromptRecord.PromptId } = {}
): PromptRecord.IdentifiedRecord => ({
  id: options.id ?? 1,
  api: "ollama",
  model_name: options.model ?? "llama3",
  prompt,
  ...(options.parameters === undefined ? {} : { parameters: options.parameters })
})

const env = (entries: Readonly<Record<string, string>>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

/** A provider over undici and a loopback server, with OLLAMA_API_ENDPOINT pointing at it. */
const setup = Effect.gen(function*() {
  const server = yield* OllamaServer.make()
  const provider = yield* Ollama.make
  const withEnv = env({ OLLAMA_API_ENDPOINT: server.url })
  return { server, provider, withEnv }
})

const failure = (result: Either.Either<Provider.ProviderResponse, ProviderError.ProviderError>) => {
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return result.left
}

const parameters = { temperature: 1, num_predict: 100, seed: 0 }

const readJsonl = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))

describe("Ollama", () => {
  describe("requests", () => {
    it.scopedLive("sends a string prompt to /api/generate with the parameters as options", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const response = yield* provider.query(record("How does technology impact us?", { parameters })).pipe(withEnv)
        expect(server.requests).toHaveLength(1)
        const request = server.requests[0]!
        expect(request.method).toBe("POST")
        expect(request.path).toBe("/api/generate")
        expect(request.headers["content-type"]).toBe("application/json")
        expect(request.body).toEqual({ model: "llama3", prompt: "How does technology impact us?", stream: false, options: parameters })
        expect(response).toEqual({
          response: "llama3 answers: How does technology impact us?",
          usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
          fields: { finish_reason: "stop", model: "llama3" }
        })
      }))

    it.scopedLive("sends options {} when the record has no parameters", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        yield* provider.query(record("hi")).pipe(withEnv)
        expect(server.requests[0]!.body).toEqual({ model: "llama3", prompt: "hi", stream: false, options: {} })
      }))

    it.scopedLive("sends a list of strings turn by turn to /api/chat with the history", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const response = yield* provider.query(record(["How does trade create jobs?", "Tell a joke"], { model: "gemma", parameters })).pipe(withEnv)
        const first = "gemma answers: How does trade create jobs?"
        const second = "gemma answers: Tell a joke"
        expect(server.requests.map((request) => request.path)).toEqual(["/api/chat", "/api/chat"])
        expect(server.requests[0]!.body).toEqual({
          model: "gemma",
          messages: [{ role: "user", content: "How does trade create jobs?" }],
          stream: false,
          options: parameters
        })
        expect(server.requests[1]!.body).toEqual({
          model: "gemma",
          messages: [
            { role: "user", content: "How does trade create jobs?" },
            { role: "assistant", content: first },
            { role: "user", content: "Tell a joke" }
          ],
          stream: false,
          options: parameters
        })
        expect(response.response).toEqual([first, second])
        // prompt: 5 words, then 5 + 7 + 3; answers: 7 and 5 words
        expect(response.usage).toEqual({ prompt_tokens: 20, completion_tokens: 12, total_tokens: 32 })
        expect(response.fields).toEqual({ finish_reason: "stop", model: "gemma" })
      }))

    it.scopedLive("sends a role/content history to /api/chat in one call, messages unchanged", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const history = [
          { role: "system", content: "Answer briefly." },
          { role: "user", content: "Hello, I'm Bob and I'm 6 years old" },
          { role: "assistant", content: "Hi Bob, how may I assist you?" },
          { role: "user", content: "How old will I be next year?" }
        ]
        const response = yield* provider.query(record(history, { model: "gemma", parameters })).pipe(withEnv)
        expect(server.requests).toHaveLength(1)
        expect(server.requests[0]!.path).toBe("/api/chat")
        expect(server.requests[0]!.body).toEqual({ model: "gemma", messages: history, stream: false, options: parameters })
        expect(response.response).toBe("gemma answers: How old will I be next year?")
      }))

    it.scopedLive("a chat reply's tool_calls and thinking are kept as tool_calls and reasoning; generate's thinking too", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const call = { function: { name: "get_weather", arguments: { city: "Toronto" } } }
        server.enqueue(OllamaServer.json({
          model: "llama3",
          message: { role: "assistant", content: "", thinking: "Use the tool.", tool_calls: [call] },
          done: true,
          done_reason: "stop"
        }))
        server.enqueue(OllamaServer.json({ model: "llama3", response: "Four.", thinking: "2+2=4", done: true, done_reason: "stop" }))
        const chat = yield* provider.query(record([{ role: "user", content: "Weather in Toronto?" }])).pipe(withEnv)
        expect(chat.response).toBe("")
        expect(chat.fields).toEqual({
          finish_reason: "stop",
          model: "llama3",
          tool_calls: [{ name: "get_weather", arguments: { city: "Toronto" }, raw: call }],
          reasoning: "Use the tool."
        })
        const generate = yield* provider.query(record("2+2?")).pipe(withEnv)
        expect(generate.response).toBe("Four.")
        expect(generate.fields).toEqual({ finish_reason: "stop", model: "llama3", reasoning: "2+2=4" })
        // plain answers add neither key
        expect((yield* provider.query(record("hi")).pipe(withEnv)).fields).toEqual({ finish_reason: "stop", model: "llama3" })
      }))

    it.scopedLive("uses OLLAMA_API_ENDPOINT_<model id> before OLLAMA_API_ENDPOINT", () =>
      Effect.gen(function*() {
        const general = yield* OllamaServer.make()
        const special = yield* OllamaServer.make({ models: ["llama3:8b-instruct"] })
        const provider = yield* Ollama.make
        const withEnv = env({
          OLLAMA_API_ENDPOINT: general.url,
          OLLAMA_API_ENDPOINT_llama3_8b_instruct: `${special.url}/`
        })
        yield* provider.query(record("a", { model: "llama3:8b-instruct" })).pipe(withEnv)
        yield* provider.query(record("b", { model: "phi3" })).pipe(withEnv)
        expect(special.requests.map((request) => [request.path, (request.body as { prompt: string }).prompt])).toEqual([["/api/generate", "a"]])
        expect(general.requests.map((request) => [request.path, (request.body as { prompt: string }).prompt])).toEqual([["/api/generate", "b"]])
      }))

    it.scopedLive("reuses kept-alive connections for successive requests (one client, one pool)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        for (const prompt of ["a", "b", "c", "d", "e", "f"]) yield* provider.query(record(prompt)).pipe(withEnv)
        yield* provider.query(record(["g", "h"])).pipe(withEnv)
        expect(server.requests).toHaveLength(8)
        // undici may open a second socket while the first is being released, but never one per request
        expect(server.connections()).toBeLessThanOrEqual(2)
        expect(new Set(server.requests.map((request) => request.connection)).size).toBe(server.connections())
      }))
  })

  describe("errors", () => {
    it.scopedLive("a model that is not pulled (404 \"try pulling it first\") is permanent", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const error = failure(yield* Effect.either(provider.query(record("hi", { model: "unknown-model" })).pipe(withEnv)))
        expect(error).toBeInstanceOf(ProviderError.PermanentError)
        expect(error.retryable).toBe(false)
        expect(error).toMatchObject({ reason: "not_found", status: 404 })
        expect(error.message).toBe(
          "ollama: model unknown-model is not downloaded: model 'unknown-model' not found, try pulling it first"
        )
        expect(server.requests).toHaveLength(1)
      }))

    it.scopedLive("\"invalid options\" is permanent whatever the status", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.json({ error: "invalid options: num_foo" }, 500))
        const error = failure(yield* Effect.either(provider.query(record("hi", { parameters: { num_foo: 1 } })).pipe(withEnv)))
        expect(error).toBeInstanceOf(ProviderError.PermanentError)
        expect(error).toMatchObject({ reason: "bad_request", status: 500 })
        expect(error.message).toContain("invalid options for model llama3")
      }))

    it.scopedLive("429 is a rate limit carrying retry-after", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.json({ error: "server busy, please try again" }, 429, { "retry-after": "2" }))
        const error = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        expect(error).toBeInstanceOf(ProviderError.RateLimitError)
        expect(error).toMatchObject({ retryAfterMs: 2000, message: "ollama: server busy, please try again" })
        expect(error.retryable).toBe(true)
        // the next request is answered normally
        expect((yield* provider.query(record("hi")).pipe(withEnv)).response).toBe("llama3 answers: hi")
      }))

    it.scopedLive("500 is transient with the server's message", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.json({ error: "llama runner process has terminated" }, 500))
        const error = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error).toMatchObject({ status: 500, message: "ollama: llama runner process has terminated" })
      }))

    it.scopedLive("a 500 in the middle of a multi-turn chat fails the record (transient)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        let chats = 0
        server.enqueue(OllamaServer.raw("Internal Server Error", 503), () => ++chats === 2)
        const error = failure(yield* Effect.either(provider.query(record(["a", "b", "c"])).pipe(withEnv)))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error).toMatchObject({ status: 503, message: "ollama: Internal Server Error" })
        expect(server.requests).toHaveLength(2)
      }))

    it.scopedLive("other 4xx are permanent", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.json({ error: "unauthorized" }, 401))
        server.enqueue(OllamaServer.json({ error: "prompt too long" }, 400))
        const auth = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const bad = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        expect(auth).toMatchObject({ _tag: "PermanentError", reason: "auth", status: 401 })
        expect(bad).toMatchObject({ _tag: "PermanentError", reason: "bad_request", status: 400, message: "ollama: prompt too long" })
      }))

    it.scopedLive("a malformed 200 body is transient (not JSON, or JSON without the text)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.raw("{\"model\": \"llama3\", \"response\": \"cut o"))
        server.enqueue(OllamaServer.json({ model: "llama3", done: true }))
        server.enqueue(OllamaServer.json({ model: "llama3", message: { role: "assistant" } }))
        const notJson = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const noText = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const noContent = failure(yield* Effect.either(provider.query(record(["hi"])).pipe(withEnv)))
        for (const error of [notJson, noText, noContent]) {
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(error.retryable).toBe(true)
          expect(error.message).toContain("malformed response body")
        }
      }))

    it.scopedLive("an error in a 200 body is transient, or permanent for \"try pulling it first\"", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.json({ error: "unexpected EOF" }))
        server.enqueue(OllamaServer.json({ error: "model 'x' not found, try pulling it first" }))
        const eof = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const pull = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        expect(eof).toMatchObject({ _tag: "TransientError", message: "ollama: unexpected EOF" })
        expect(pull).toMatchObject({ _tag: "PermanentError", reason: "not_found" })
      }))

    it.scopedLive("a hanging request is aborted when the fiber is interrupted (the server sees the connection close)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(OllamaServer.hang)
        const started = Date.now()
        const result = yield* provider.query(record("hi")).pipe(withEnv, Effect.timeout("300 millis"), Effect.either)
        expect(Either.isLeft(result) && result.left._tag).toBe("TimeoutException")
        expect(Date.now() - started).toBeLessThan(2000)
        expect(server.hangs).toHaveLength(1)
        const closed = yield* Effect.promise(() => server.hangs[0]!.closed).pipe(Effect.timeout("2 seconds"), Effect.option)
        expect(Option.isSome(closed)).toBe(true)
        // the provider still works afterwards
        expect((yield* provider.query(record("again")).pipe(withEnv)).response).toBe("llama3 answers: again")
      }))

    it.scopedLive("a refused connection is transient and names the URL and the error code", () =>
      Effect.gen(function*() {
        const provider = yield* Ollama.make
        const closed = yield* Effect.scoped(Effect.map(OllamaServer.make(), (server) => server.url))
        const error = failure(yield* Effect.either(provider.query(record("hi")).pipe(env({ OLLAMA_API_ENDPOINT: closed }))))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`ollama: cannot connect to ${closed}/api/generate (ECONNREFUSED)`)
      }))

    it.scopedLive("a missing endpoint is a configuration error and nothing is sent", () =>
      Effect.gen(function*() {
        const { provider, server } = yield* setup
        const error = failure(yield* Effect.either(provider.query(record("hi")).pipe(env({}))))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
        expect(error.message).toContain("\"OLLAMA_API_ENDPOINT_llama3\", \"OLLAMA_API_ENDPOINT\"")
        expect(server.requests).toHaveLength(0)
      }))

    it.scopedLive("a prompt of the wrong shape is re-checked before sending (validation)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const bad = [{ role: "user", parts: [{ text: "hi" }] }] as unknown as PromptRecord.Prompt
        const error = failure(yield* Effect.either(provider.query(record(bad)).pipe(withEnv)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "validation" })
        const empty = failure(yield* Effect.either(provider.query(record([])).pipe(withEnv)))
        expect(empty).toMatchObject({
          _tag: "PermanentError",
          reason: "validation",
          message: "prompt: the list is empty: give at least one turn or message"
        })
        expect(server.requests).toHaveLength(0)
      }))
  })

  describe("check", () => {
    const problems = (
      prompt: PromptRecord.Prompt,
      entries: Readonly<Record<string, string>> = { OLLAMA_API_ENDPOINT: "http://localhost:11434" },
      model = "llama3"
    ) =>
      Effect.flatMap(Ollama.make, (provider) => provider.check(record(prompt, { model }))).pipe(env(entries))

    it.scoped("accepts prompto's three prompt shapes without sending anything", () =>
      Effect.gen(function*() {
        const server = yield* OllamaServer.make()
        const entries = { OLLAMA_API_ENDPOINT: server.url }
        expect(yield* problems("hi", entries)).toEqual([])
        expect(yield* problems(["a", "b"], entries)).toEqual([])
        expect(yield* problems([{ role: "system", content: "s" }, { role: "user", content: "u" }, { role: "assistant", content: "a" }], entries))
          .toEqual([])
        expect(server.requests).toHaveLength(0)
      }))

    it.effect("reports bad shapes on key prompt, with prompto's wording", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          [[{ role: "user", parts: [{ text: "hi" }] }], "message 0 has keys \"parts\", \"role\""],
          [[{ role: "user", content: "hi", name: "bob" }], "message 0 has keys \"content\", \"name\", \"role\""],
          [[{ role: "user", content: "hi" }, { role: "model", content: "x" }], "message 1 has role \"model\""],
          [[{ role: "user", content: [{ type: "text", text: "hi" }] }], "message 0 has content that is not a string"],
          [["hi", { role: "user", content: "hi" }], "element 0 is not a string"]
        ]
        for (const [prompt, detail] of cases) {
          const found = yield* problems(prompt as PromptRecord.Prompt)
          expect(found).toHaveLength(1)
          expect(found[0]!.key).toBe("prompt")
          expect(found[0]!.message).toContain("if api == 'ollama', then the prompt must be a str, list[str], or list[dict[str,str]]")
          expect(found[0]!.message).toContain(detail)
        }
      }))

    it.effect("an empty list and a missing endpoint are both reported, the list in the words every API uses", () =>
      Effect.gen(function*() {
        expect(yield* problems([], {})).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          {
            key: "api",
            message: "at least one of the environment variables \"OLLAMA_API_ENDPOINT_llama3\", \"OLLAMA_API_ENDPOINT\" must be set"
          }
        ])
        expect((yield* problems([{ role: "model", content: "x" }], {})).map((problem) => problem.key)).toEqual(["prompt", "api"])
      }))

    it.effect("reports a missing endpoint on key api, naming both variables", () =>
      Effect.gen(function*() {
        expect(yield* problems("hi", {}, "llama3:8b")).toEqual([{
          key: "api",
          message: "at least one of the environment variables \"OLLAMA_API_ENDPOINT_llama3_8b\", \"OLLAMA_API_ENDPOINT\" must be set"
        }])
        expect(yield* problems("hi", { OLLAMA_API_ENDPOINT_llama3_8b: "localhost" }, "llama3:8b")).toEqual([])
      }))

    it.effect("reports an endpoint that is not a URL, without printing it", () =>
      Effect.gen(function*() {
        const found = yield* problems("hi", { OLLAMA_API_ENDPOINT: "ftp://user:secret@host" })
        expect(found).toHaveLength(1)
        expect(found[0]!.key).toBe("api")
        expect(found[0]!.message).toContain("is not an http(s) URL")
        expect(found[0]!.message).not.toContain("secret")
      }))

    it("parses the endpoint as the ollama client parses its host", () => {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["localhost", "http://localhost:11434"],
        ["1.2.3.4:56789", "http://1.2.3.4:56789"],
        [":56789", "http://127.0.0.1:56789"],
        ["http://localhost:11434", "http://localhost:11434"],
        ["http://localhost:11434/", "http://localhost:11434"],
        ["https://example.com", "https://example.com"],
        ["example.com:56789/path/", "http://example.com:56789/path"]
      ]
      for (const [input, expected] of cases) expect(Ollama.baseUrl(input)).toEqual(Option.some(expected))
      expect(Option.isNone(Ollama.baseUrl("ftp://host"))).toBe(true)
      expect(Option.isNone(Ollama.baseUrl("http://"))).toBe(true)
    })
  })

  describe("layers", () => {
    it.scopedLive("Ollama.layer registers the ollama API over its own HTTP client", () =>
      Effect.gen(function*() {
        const server = yield* OllamaServer.make()
        const answer = yield* Effect.gen(function*() {
          const registry = yield* Provider.registry
          expect([...registry.keys()]).toEqual(["ollama"])
          return yield* registry.get("ollama")!.query(record("hi"))
        }).pipe(Effect.provide(Ollama.layer), env({ OLLAMA_API_ENDPOINT: server.url }))
        expect(answer.response).toBe("llama3 answers: hi")
        expect(server.requests).toHaveLength(1)
      }))
  })

  describe("end to end", () => {
    it.scopedLive("runs prompto's ollama example unchanged through Experiment.run", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-ollama-"))
      const file = path.join(dir, "ollama-example.jsonl")
      fs.copyFileSync(path.join(fixtures, "input", "ollama-example.jsonl"), file)
      const inputs = readJsonl(file)
      const outputFolder = path.join(fixtures, "output", "ollama-example")
      const prompto = readJsonl(path.join(outputFolder, fs.readdirSync(outputFolder).find((name) => name.includes("-completed-"))!))
      return Effect.gen(function*() {
        const server = yield* OllamaServer.make()
        const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000 }).pipe(
          env({ OLLAMA_API_ENDPOINT: server.url })
        )
        const completed = readJsonl(result.files.completed)
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2, 3, 4, 5])
        const byId = new Map(completed.map((line) => [line.id, line]))

        // every input key is kept, and the response has prompto's shape
        for (const theirs of prompto) {
          const ours = byId.get(theirs.id)
          const { response, ...rest } = theirs
          expect(ours).toMatchObject(rest)
          expect(Array.isArray(ours.response)).toBe(Array.isArray(response))
        }
        expect(byId.get(0)).toMatchObject({
          response: "llama3 answers: How does technology impact us?",
          model: "llama3",
          finish_reason: "stop",
          usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
          attempts: 1
        })
        expect(byId.get(1).response).toBe("phi3 answers: How does technology impact us?")
        expect(byId.get(3).response).toEqual([
          "gemma answers: How does international trade create jobs?",
          "gemma answers: I want a joke about that"
        ])
        expect(byId.get(4).response).toBe("gemma answers: What efforts are being made to keep the hakka language alive?")
        expect(byId.get(5).response).toBe("gemma answers: How old will I be next year?")
        // the model that is not pulled fails once, not retried, as in prompto
        expect(byId.get(2)).toMatchObject({ attempts: 1, error: { kind: "not_found" } })
        expect(byId.get(2).response).toContain("unknown-model is not downloaded")
        expect(byId.get(2).response).toContain("try pulling it first")

        // what the server received: 3 generate calls (ids 0, 1, 2), 4 chat calls (id 3 twice, 4, 5)
        const paths = server.requests.map((request) => request.path)
        expect(paths.filter((p) => p === "/api/generate")).toHaveLength(3)
        expect(paths.filter((p) => p === "/api/chat")).toHaveLength(4)
        for (const request of server.requests) {
          expect(request.body).toMatchObject({ stream: false, options: { temperature: 1, num_predict: 100, seed: 0 } })
        }
        const chats = server.requests.filter((request) => request.path === "/api/chat").map((request) => request.body as { messages: unknown })
        expect(chats.map((body) => body.messages)).toContainEqual(inputs[5].prompt)
        expect(chats.map((body) => body.messages)).toContainEqual(inputs[4].prompt)
        expect(chats.map((body) => body.messages)).toContainEqual([
          { role: "user", content: "How does international trade create jobs?" },
          { role: "assistant", content: "gemma answers: How does international trade create jobs?" },
          { role: "user", content: "I want a joke about that" }
        ])
        expect(result.stats.queues.get("default")).toMatchObject({ total: 6, succeeded: 5, failed: 1 })
      }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Ollama.layer)))
    })

    it.scopedLive("retries a 429, a 500 and a hang cut by the run's timeout, and completes each id once", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-ollama-"))
      const file = path.join(dir, "flaky.jsonl")
      const prompts = ["limited", "broken", "slow", "fine"]
      fs.writeFileSync(file, prompts.map((prompt, id) => JSON.stringify({ id, api: "ollama", model_name: "llama3", prompt })).join("\n") + "\n")
      const bodyPrompt = (prompt: string) => (request: OllamaServer.RecordedRequest) => (request.body as { prompt?: unknown }).prompt === prompt
      return Effect.gen(function*() {
        const server = yield* OllamaServer.make()
        server.enqueue(OllamaServer.json({ error: "busy" }, 429, { "retry-after": "0" }), bodyPrompt("limited"))
        server.enqueue(OllamaServer.json({ error: "runner crashed" }, 500), bodyPrompt("broken"))
        server.enqueue(OllamaServer.hang, bodyPrompt("slow"))
        const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, timeout: "500 millis" }).pipe(
          env({ OLLAMA_API_ENDPOINT: server.url })
        )
        const completed = readJsonl(result.files.completed)
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2, 3])
        for (const line of completed) {
          expect(line.response).toBe(`llama3 answers: ${prompts[line.id]}`)
          expect(line.attempts).toBe(line.id === 3 ? 1 : 2)
        }
        expect(server.requests).toHaveLength(7)
        expect(server.hangs).toHaveLength(1)
        const closed = yield* Effect.promise(() => server.hangs[0]!.closed).pipe(Effect.timeout("2 seconds"), Effect.option)
        expect(Option.isSome(closed)).toBe(true)
      }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Ollama.layer)))
    })
  })
})
