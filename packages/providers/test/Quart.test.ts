import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Either, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Quart from "../src/Quart.js"
import * as QuartServer from "./servers/QuartServer.js"

/** prompto's quart example, copied into the repository (`test/fixtures/prompto-examples`). */
const example = path.join(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples"),
  "quart/quart.jsonl"
)
const gpt2 = "vicgalle/gpt2-open-instruct-v1"

const record = (
  prompt: PromptRecord.Prompt,
  options: { readonly model?: string; readonly parameters?: Readonly<Record<string, unknown>>; readonly id?: PromptRecord.PromptId } = {}
): PromptRecord.IdentifiedRecord => ({
  id: options.id ?? 1,
  api: "quart",
  model_name: options.model ?? gpt2,
  prompt,
  ...(options.parameters === undefined ? {} : { parameters: options.parameters })
})

const env = (entries: Readonly<Record<string, string>>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

/** A provider over undici and a loopback server, with QUART_API_ENDPOINT pointing at it. */
const setup = Effect.gen(function*() {
  const server = yield* QuartServer.make()
  const provider = yield* Quart.make
  const withEnv = env({ QUART_API_ENDPOINT: server.url })
  return { server, provider, withEnv }
})

const failure = (result: Either.Either<Provider.ProviderResponse, ProviderError.ProviderError>) => {
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return result.left
}

const readJsonl = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))

describe("Quart", () => {
  describe("requests", () => {
    it.scopedLive("POSTs {text, model, options} to {endpoint}/generate and reads response[0].generated_text", () =>
      Effect.gen(function*() {
        const server = yield* QuartServer.make({ model: "gpt2-served" })
        const provider = yield* Quart.make
        const response = yield* provider.query(record("How old am I next year?", { parameters: { temperature: 1 } })).pipe(
          env({ QUART_API_ENDPOINT: server.url })
        )
        expect(server.requests).toHaveLength(1)
        const request = server.requests[0]!
        expect(request.method).toBe("POST")
        expect(request.path).toBe("/generate")
        expect(request.headers["content-type"]).toBe("application/json")
        expect(request.body).toEqual({ text: "How old am I next year?", model: gpt2, options: { temperature: 1 } })
        // the model is the one the server reports, not the one asked for
        expect(response).toEqual({
          response: " gpt2-served continues: How old am I next year?",
          fields: { model: "gpt2-served" }
        })
      }))

    it.scopedLive("sends options {} without parameters, and drops a trailing / of the endpoint", () =>
      Effect.gen(function*() {
        const server = yield* QuartServer.make()
        const provider = yield* Quart.make
        yield* provider.query(record("hi")).pipe(env({ QUART_API_ENDPOINT: `${server.url}/` }))
        expect(server.requests[0]!.path).toBe("/generate")
        expect(server.requests[0]!.body).toEqual({ text: "hi", model: gpt2, options: {} })
      }))

    it.scopedLive("uses QUART_API_ENDPOINT_<model id> before QUART_API_ENDPOINT", () =>
      Effect.gen(function*() {
        const general = yield* QuartServer.make()
        const special = yield* QuartServer.make({ model: "mistral" })
        const provider = yield* Quart.make
        const withEnv = env({ QUART_API_ENDPOINT: general.url, QUART_API_ENDPOINT_mistralai_Mistral_7B_v0_1: special.url })
        const a = yield* provider.query(record("a", { model: "mistralai/Mistral-7B-v0.1" })).pipe(withEnv)
        const b = yield* provider.query(record("b")).pipe(withEnv)
        expect(special.requests.map((request) => request.body)).toEqual([{ text: "a", model: "mistralai/Mistral-7B-v0.1", options: {} }])
        expect(general.requests.map((request) => request.body)).toEqual([{ text: "b", model: gpt2, options: {} }])
        expect([a.fields, b.fields]).toEqual([{ model: "mistral" }, { model: gpt2 }])
      }))

    it.scopedLive("reuses kept-alive connections for successive requests (one client, one pool)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        for (const prompt of ["a", "b", "c", "d", "e", "f", "g", "h"]) yield* provider.query(record(prompt)).pipe(withEnv)
        expect(server.requests).toHaveLength(8)
        // undici may open a second socket while the first is being released, but never one per request
        expect(server.connections()).toBeLessThanOrEqual(2)
      }))
  })

  describe("errors", () => {
    it.scopedLive("429 is a rate limit carrying retry-after", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(QuartServer.raw("Too Many Requests", 429), () => true)
        server.enqueue(QuartServer.json({ error: "slow down" }, 429, { "retry-after": "3" }))
        const bare = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const timed = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        expect(bare).toBeInstanceOf(ProviderError.RateLimitError)
        expect(bare).toMatchObject({ message: "quart: Too Many Requests" })
        expect(bare instanceof ProviderError.RateLimitError ? bare.retryAfterMs : "not a rate limit").toBeUndefined()
        expect(timed).toMatchObject({ _tag: "RateLimitError", retryAfterMs: 3000, message: "quart: slow down" })
      }))

    it.scopedLive("500 is transient; 404 and 400 are permanent", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(QuartServer.raw("<html>Internal Server Error</html>", 500))
        server.enqueue(QuartServer.raw("Not Found", 404))
        server.enqueue(QuartServer.raw("Bad Request", 400))
        const down = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const missing = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        const bad = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
        expect(down).toMatchObject({ _tag: "TransientError", status: 500, message: "quart: <html>Internal Server Error</html>" })
        expect(down.retryable).toBe(true)
        expect(missing).toMatchObject({ _tag: "PermanentError", reason: "not_found", status: 404 })
        expect(bad).toMatchObject({ _tag: "PermanentError", reason: "bad_request", status: 400 })
      }))

    it.scopedLive("a malformed 200 body is transient", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(QuartServer.raw("{\"response\": [{\"generated_te"))
        server.enqueue(QuartServer.json({ response: [], model: gpt2 }))
        server.enqueue(QuartServer.json({ response: "text", model: gpt2 }))
        for (const _ of [1, 2, 3]) {
          const error = failure(yield* Effect.either(provider.query(record("hi")).pipe(withEnv)))
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(error.message).toContain("quart: malformed response body")
        }
        expect(server.requests).toHaveLength(3)
      }))

    it.scopedLive("an older server's {\"error\"} with status 200 is permanent, as prompto never retries it", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(QuartServer.json({ error: `Model 'gpt2' not found. Please use model '${gpt2}'` }))
        const error = failure(yield* Effect.either(provider.query(record("hi", { model: "gpt2" })).pipe(withEnv)))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "not_found", message: `quart: Model 'gpt2' not found. Please use model '${gpt2}'` })
      }))

    it.scopedLive("a hanging request is aborted when the fiber is interrupted (the server sees the connection close)", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        server.enqueue(QuartServer.hang)
        const started = Date.now()
        const result = yield* provider.query(record("hi")).pipe(withEnv, Effect.timeout("300 millis"), Effect.either)
        expect(Either.isLeft(result) && result.left._tag).toBe("TimeoutException")
        expect(Date.now() - started).toBeLessThan(2000)
        expect(server.hangs).toHaveLength(1)
        const closed = yield* Effect.promise(() => server.hangs[0]!.closed).pipe(Effect.timeout("2 seconds"), Effect.option)
        expect(Option.isSome(closed)).toBe(true)
        expect((yield* provider.query(record("again")).pipe(withEnv)).response).toBe(` ${gpt2} continues: again`)
      }))

    it.scopedLive("a refused connection is transient and names the URL and the error code", () =>
      Effect.gen(function*() {
        const provider = yield* Quart.make
        const closed = yield* Effect.scoped(Effect.map(QuartServer.make(), (server) => server.url))
        const error = failure(yield* Effect.either(provider.query(record("hi")).pipe(env({ QUART_API_ENDPOINT: closed }))))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`quart: cannot connect to ${closed}/generate (ECONNREFUSED)`)
      }))

    it.scopedLive("a list prompt and a missing endpoint fail before sending", () =>
      Effect.gen(function*() {
        const { provider, server, withEnv } = yield* setup
        const list = failure(yield* Effect.either(provider.query(record(["a", "b"])).pipe(withEnv)))
        expect(list).toMatchObject({ _tag: "PermanentError", reason: "validation" })
        expect(list.message).toContain("if api == 'quart', then prompt must be a string")
        const empty = failure(yield* Effect.either(provider.query(record([])).pipe(withEnv)))
        expect(empty).toMatchObject({
          _tag: "PermanentError",
          reason: "validation",
          message: "prompt: the list is empty: give at least one turn or message"
        })
        const unset = failure(yield* Effect.either(provider.query(record("hi")).pipe(env({}))))
        expect(unset).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
        expect(unset.message).toContain("\"QUART_API_ENDPOINT_vicgalle_gpt2_open_instruct_v1\", \"QUART_API_ENDPOINT\"")
        expect(server.requests).toHaveLength(0)
      }))
  })

  describe("check", () => {
    const problems = (prompt: PromptRecord.Prompt, entries: Readonly<Record<string, string>>) =>
      Effect.flatMap(Quart.make, (provider) => provider.check(record(prompt))).pipe(env(entries))

    it.scoped("accepts a string prompt without sending anything", () =>
      Effect.gen(function*() {
        const server = yield* QuartServer.make()
        expect(yield* problems("hi", { QUART_API_ENDPOINT: server.url })).toEqual([])
        expect(yield* problems("hi", { QUART_API_ENDPOINT_vicgalle_gpt2_open_instruct_v1: server.url })).toEqual([])
        expect(server.requests).toHaveLength(0)
      }))

    it.effect("reports a prompt that is not a string, a missing and a bad endpoint", () =>
      Effect.gen(function*() {
        expect(yield* problems(["a"], { QUART_API_ENDPOINT: "http://localhost:5000" })).toEqual([
          { key: "prompt", message: "if api == 'quart', then prompt must be a string, not a list" }
        ])
        expect(yield* problems([], {})).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          {
            key: "api",
            message:
              "at least one of the environment variables \"QUART_API_ENDPOINT_vicgalle_gpt2_open_instruct_v1\", \"QUART_API_ENDPOINT\" must be set"
          }
        ])
        expect(yield* problems([{ role: "user", content: "a" }], {})).toEqual([
          { key: "prompt", message: "if api == 'quart', then prompt must be a string, not a list" },
          {
            key: "api",
            message:
              "at least one of the environment variables \"QUART_API_ENDPOINT_vicgalle_gpt2_open_instruct_v1\", \"QUART_API_ENDPOINT\" must be set"
          }
        ])
        const bad = yield* problems("hi", { QUART_API_ENDPOINT: "localhost:5000" })
        expect(bad.map((problem) => problem.key)).toEqual(["api"])
        expect(bad[0]!.message).toContain("is not an http(s) URL")
      }))

    it("builds the generate URL from the endpoint", () => {
      expect(Quart.generateUrl("http://localhost:5000")).toEqual(Option.some("http://localhost:5000/generate"))
      expect(Quart.generateUrl("http://localhost:5000/")).toEqual(Option.some("http://localhost:5000/generate"))
      expect(Quart.generateUrl("https://host/base/")).toEqual(Option.some("https://host/base/generate"))
      expect(Option.isNone(Quart.generateUrl("localhost:5000"))).toBe(true)
    })
  })

  describe("layers", () => {
    it.scopedLive("Quart.layer registers the quart API over its own HTTP client", () =>
      Effect.gen(function*() {
        const server = yield* QuartServer.make()
        const answer = yield* Effect.gen(function*() {
          const registry = yield* Provider.registry
          expect([...registry.keys()]).toEqual(["quart"])
          return yield* registry.get("quart")!.query(record("hi"))
        }).pipe(Effect.provide(Quart.layer), env({ QUART_API_ENDPOINT: server.url }))
        expect(answer.response).toBe(` ${gpt2} continues: hi`)
      }))
  })

  describe("end to end", () => {
    it.scopedLive("runs an experiment through Experiment.run: bodies, responses, the server's model, per-model endpoints", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-quart-"))
      const file = path.join(dir, "quart-experiment.jsonl")
      // prompto's two complete example lines, unchanged, plus one for a model on its own server
      const [first, second] = readJsonl(example)
      const lines = [first, second, { id: 12, prompt: "Tell me about London", api: "quart", model_name: "gpt2-medium", parameters: { max_new_tokens: 20 } }]
      fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n") + "\n")
      return Effect.gen(function*() {
        const server = yield* QuartServer.make()
        const medium = yield* QuartServer.make({ model: "gpt2-medium" })
        const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000 }).pipe(
          env({ QUART_API_ENDPOINT: server.url, QUART_API_ENDPOINT_gpt2_medium: medium.url })
        )
        const completed = readJsonl(result.files.completed)
        expect(completed.map((line) => line.id).sort((a, b) => a - b)).toEqual([9, 10, 12])
        const byId = new Map(completed.map((line) => [line.id, line]))
        for (const input of lines) {
          expect(byId.get(input.id)).toMatchObject({
            ...input,
            response: ` ${input.model_name} continues: ${input.prompt}`,
            model: input.model_name,
            attempts: 1
          })
          expect(byId.get(input.id).error).toBeUndefined()
        }
        expect(server.requests.map((request) => request.body)).toEqual(expect.arrayContaining([
          { text: first.prompt, model: gpt2, options: { temperature: 1 } },
          { text: second.prompt, model: gpt2, options: { temperature: 0.5 } }
        ]))
        expect(server.requests).toHaveLength(2)
        expect(medium.requests.map((request) => [request.path, request.body])).toEqual([
          ["/generate", { text: "Tell me about London", model: "gpt2-medium", options: { max_new_tokens: 20 } }]
        ])
      }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Quart.layer)))
    })

    it.scopedLive("retries a 429, a 500 and a hang cut by the run's timeout, and completes each id once", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-quart-"))
      const file = path.join(dir, "flaky.jsonl")
      const prompts = ["limited", "broken", "slow", "fine"]
      fs.writeFileSync(file, prompts.map((prompt, id) => JSON.stringify({ id, api: "quart", model_name: gpt2, prompt })).join("\n") + "\n")
      const text = (prompt: string) => (request: QuartServer.RecordedRequest) => (request.body as { text?: unknown }).text === prompt
      return Effect.gen(function*() {
        const server = yield* QuartServer.make()
        server.enqueue(QuartServer.raw("Too Many Requests", 429), text("limited"))
        server.enqueue(QuartServer.raw("Internal Server Error", 500), text("broken"))
        server.enqueue(QuartServer.hang, text("slow"))
        const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, timeout: "500 millis" }).pipe(
          env({ QUART_API_ENDPOINT: server.url })
        )
        const completed = readJsonl(result.files.completed)
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2, 3])
        for (const line of completed) {
          expect(line.response).toBe(` ${gpt2} continues: ${prompts[line.id]}`)
          expect(line.attempts).toBe(line.id === 3 ? 1 : 2)
        }
        expect(server.requests).toHaveLength(7)
        const closed = yield* Effect.promise(() => server.hangs[0]!.closed).pipe(Effect.timeout("2 seconds"), Effect.option)
        expect(Option.isSome(closed)).toBe(true)
      }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Quart.layer)))
    })

    it.scopedLive("runs prompto's quart example file unchanged with skipInvalid (its line without model_name is not sent)", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-quart-"))
      const file = path.join(dir, "quart.jsonl")
      fs.copyFileSync(example, file)
      return Effect.gen(function*() {
        const server = yield* QuartServer.make()
        const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, skipInvalid: true }).pipe(
          env({ QUART_API_ENDPOINT: server.url })
        )
        const completed = readJsonl(result.files.completed)
        expect(completed.map((line) => line.id).sort((a, b) => a - b)).toEqual([9, 10, 11])
        const byId = new Map(completed.map((line) => [line.id, line]))
        expect(byId.get(9).response).toBe(` ${gpt2} continues: Hello, my name is Bob and I'm 6 years old. How old am I next year?`)
        expect(byId.get(10).model).toBe(gpt2)
        expect(byId.get(11)).toMatchObject({ attempts: 0, error: { kind: "validation" } })
        expect(server.requests).toHaveLength(2)
      }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Quart.layer)))
    })
  })
})
