import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Experiment, type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as VertexAi from "../src/VertexAi.js"
import * as GeminiServer from "./servers/GeminiServer.js"

/** prompto's example files, copied into the repository (`test/fixtures/prompto-examples`). */
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/prompto-examples")
const imagesFolder = path.join(fixtures, "openai/data/media")
const model = "gemini-1.5-flash-002"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-vertexai-"))
const readJsonl = (file: string): Array<any> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))

const record = (
  prompt: unknown,
  extra: Partial<Record<string, unknown>> = {}
): PromptRecord.IdentifiedRecord => ({ id: 1, api: "vertexai", model_name: model, prompt, ...extra } as PromptRecord.IdentifiedRecord)

/**
 * A user refresh-token credential file (as `gcloud auth application-default login` writes)
 * whose token endpoint is the loopback server: the SDK's own google-auth-library path (refresh,
 * then `Authorization: Bearer`), without ADC or network.
 */
const loopbackAuth = (server: GeminiServer.GeminiServer): VertexAi.Options => {
  const keyFilename = path.join(tempDir(), "credentials.json")
  fs.writeFileSync(
    keyFilename,
    JSON.stringify({
      type: "authorized_user",
      client_id: "loopback-client",
      client_secret: "loopback-secret",
      refresh_token: "loopback-refresh"
    })
  )
  return { googleAuthOptions: { keyFilename, clientOptions: { endpoints: { oauth2TokenUrl: `${server.url}/token` } } } }
}

const configFor = (server: GeminiServer.GeminiServer, extra: ReadonlyArray<readonly [string, string]> = []) =>
  ConfigProvider.fromMap(
    new Map<string, string>([
      ["VERTEXAI_PROJECT_ID", "test-project"],
      ["VERTEXAI_LOCATION_ID", "europe-west4"],
      ["VERTEXAI_BASE_URL", server.url],
      ...extra
    ])
  )

const withVertex = <A, E>(
  body: (provider: Provider.Provider, server: GeminiServer.GeminiServer) => Effect.Effect<A, E>,
  extra: ReadonlyArray<readonly [string, string]> = []
) =>
  Effect.scoped(Effect.gen(function*() {
    const server = yield* GeminiServer.make
    const provider = yield* VertexAi.make(loopbackAuth(server))
    return yield* body(provider, server).pipe(Effect.withConfigProvider(configFor(server, extra)))
  }))

const vertexPath = (location: string, name = model, project = "test-project") =>
  `/v1beta1/projects/${project}/locations/${location}/publishers/google/models/${name}:generateContent`

const failure = (effect: Effect.Effect<unknown, ProviderError.ProviderError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.die(`expected a failure, got ${JSON.stringify(result.right)}`))

describe("VertexAi", () => {
  describe("requests and responses", () => {
    it.live("sends to the project/location path with an OAuth bearer token from the credentials", () =>
      withVertex((provider, server) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record("How does technology impact us?", {
            parameters: { candidate_count: 1, temperature: 1, max_output_tokens: 1000 }
          }))
          expect(response.response).toBe("gemini-1.5-flash-002 says: How does technology impact us?")
          expect(response.fields).toEqual({
            safety_attributes: {
              HARM_CATEGORY_SEXUALLY_EXPLICIT: "1",
              HARM_CATEGORY_HATE_SPEECH: "1",
              HARM_CATEGORY_HARASSMENT: "1",
              HARM_CATEGORY_DANGEROUS_CONTENT: "1",
              blocked: "[False, False, False, False]",
              finish_reason: "STOP"
            },
            finish_reason: "STOP",
            model: "gemini-1.5-flash-002-001"
          })
          expect(response.usage).toEqual({ prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 })
          expect(server.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
            "POST /token",
            `POST ${vertexPath("europe-west4")}`
          ])
          const token = new URLSearchParams(server.requests[0]!.body)
          expect(token.get("grant_type")).toBe("refresh_token")
          expect(token.get("refresh_token")).toBe("loopback-refresh")
          const request = server.requests[1]!
          expect(request.headers.authorization).toBe(`Bearer ${GeminiServer.accessToken}`)
          expect(request.headers["x-goog-api-key"]).toBeUndefined()
          expect(request.body).toEqual({
            contents: [{ role: "user", parts: [{ text: "How does technology impact us?" }] }],
            generationConfig: { candidateCount: 1, temperature: 1, maxOutputTokens: 1000 },
            safetySettings: [
              "HARM_CATEGORY_DANGEROUS_CONTENT",
              "HARM_CATEGORY_HATE_SPEECH",
              "HARM_CATEGORY_HARASSMENT",
              "HARM_CATEGORY_SEXUALLY_EXPLICIT"
            ].map((category) => ({ category, threshold: "BLOCK_MEDIUM_AND_ABOVE" }))
          })
        })))

    it.live("records cached content and thinking tokens as Gemini does", () =>
      withVertex((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Answer", usage: { cached: 2, thoughts: 4 } })
          const response = yield* provider.query(record("How does technology impact us?"))
          expect(response.usage).toEqual({
            prompt_tokens: 5,
            completion_tokens: 7 + 4,
            total_tokens: 16,
            cached_tokens: 2,
            reasoning_tokens: 4
          })
        })))

    it.live("reuses one client (one token) per project/location/endpoint; a per-model location gets its own", () =>
      withVertex(
        (provider, server) =>
          Effect.gen(function*() {
            yield* provider.query(record("one"))
            yield* provider.query(record(["two", "three"], { safety_filter: "few" }))
            yield* provider.query(record("four", { model_name: "gemini-1.0-pro-002" }))
            expect(server.requests.map((request) => request.path)).toEqual([
              "/token",
              vertexPath("europe-west4"),
              vertexPath("europe-west4"),
              vertexPath("europe-west4"),
              "/token",
              vertexPath("us-east1", "gemini-1.0-pro-002")
            ])
            // the chat's second turn carried the first turn and answer
            expect(server.requests[3]!.body.contents.map((content: any) => content.role)).toEqual(["user", "model", "user"])
            expect(server.requests[3]!.body.safetySettings[0].threshold).toBe("BLOCK_ONLY_HIGH")
          }),
        [["VERTEXAI_LOCATION_ID_gemini_1_0_pro_002", "us-east1"]]
      ))

    it.live("sends a system message as systemInstruction, gs:// uri parts as fileData and media inline", () => {
      const media = tempDir()
      fs.writeFileSync(path.join(media, "clip.mp4"), "not really a video")
      return withVertex((provider, server) =>
        Effect.gen(function*() {
          const response = yield* provider.query(record([
            { role: "system", parts: "Be brief." },
            {
              role: "user",
              parts: [
                { type: "uri", media: "gs://bucket/cat.mp4", mime_type: "video/mp4" },
                { type: "video", media: "clip.mp4", mime_type: "video/mp4" },
                "compare them"
              ]
            }
          ])).pipe(Effect.locally(Provider.mediaFolder, media))
          expect(response.response).toBe("gemini-1.5-flash-002 says: compare them [2 media]")
          const body = server.generations()[0]!.body
          expect(body.systemInstruction).toEqual({ parts: [{ text: "Be brief." }] })
          expect(body.contents[0].parts).toEqual([
            { fileData: { fileUri: "gs://bucket/cat.mp4", mimeType: "video/mp4" } },
            { inlineData: { mimeType: "video/mp4", data: Buffer.from("not really a video").toString("base64") } },
            { text: "compare them" }
          ])
        })
      )
    })
  })

  describe("configuration", () => {
    it.live("falls back to GOOGLE_CLOUD_PROJECT and the us-central1 location", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const provider = yield* VertexAi.make(loopbackAuth(server))
        yield* provider.query(record("hi")).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([["GOOGLE_CLOUD_PROJECT", "cloud-project"], ["VERTEXAI_BASE_URL", server.url]])
        )))
        expect(server.generations().map((request) => request.path)).toEqual([vertexPath("us-central1", model, "cloud-project")])
      })))

    it.live("a missing project is a check problem and a configuration error; nothing is sent", () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const provider = yield* VertexAi.make(loopbackAuth(server))
        const config = ConfigProvider.fromMap(new Map([["VERTEXAI_BASE_URL", server.url], ["VERTEXAI_LOCATION_ID", "us-east1"]]))
        const problems = yield* provider.check(record("hi")).pipe(Effect.withConfigProvider(config))
        expect(problems.map((problem) => problem.key)).toEqual(["api"])
        expect(problems[0]!.message).toContain("\"VERTEXAI_PROJECT_ID_gemini_1_5_flash_002\", \"VERTEXAI_PROJECT_ID\"")
        expect(problems[0]!.message).toContain("GOOGLE_CLOUD_PROJECT")
        const error = yield* failure(provider.query(record("hi"))).pipe(Effect.withConfigProvider(config))
        expect(error).toMatchObject({ _tag: "PermanentError", reason: "configuration" })
        expect(server.requests).toHaveLength(0)
        // the location is optional
        const ok = yield* provider.check(record("hi")).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["VERTEXAI_PROJECT_ID", "p"]])))
        )
        expect(ok).toEqual([])
      })))

    it.live("check rejects uploaded files (a Gemini API feature) and uri parts without a mime type", () =>
      Effect.gen(function*() {
        const provider = yield* VertexAi.make()
        const problems = yield* provider.check(record([{
          role: "user",
          parts: [{ type: "video", media: "v.mp4", uploaded_filename: "files/x" }, { type: "uri", media: "gs://b/v.mp4" }]
        }])).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["VERTEXAI_PROJECT_ID", "p"]]))))
        expect(problems.map((problem) => problem.message)).toEqual([
          "message 0: part 0: \"uploaded_filename\" is a Gemini API feature; on Vertex AI use {\"type\": \"uri\", \"media\": \"gs://...\", \"mime_type\": ...}",
          "message 0: part 1: Mime type is not specified. Required for uri"
        ])
        const shape = yield* provider.check(record([{ role: "user", parts: "u" }, { role: "system", parts: "s" }])).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["VERTEXAI_PROJECT_ID", "p"]])))
        )
        expect(shape.map((problem) => problem.message)).toEqual([
          expect.stringContaining("if api == 'vertexai', then the prompt must be")
        ])
      }))

    it.live("without credentials (no ADC) the query fails with a configuration error naming the fix", () => {
      const saved = { ...process.env }
      process.env.CLOUDSDK_CONFIG = tempDir() // no application_default_credentials.json there
      process.env.METADATA_SERVER_DETECTION = "none" // not on Google Cloud
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS
      return Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const provider = yield* VertexAi.make()
        const error = yield* failure(provider.query(record("hi"))).pipe(Effect.withConfigProvider(configFor(server)))
        expect(error).toBeInstanceOf(ProviderError.PermanentError)
        expect(error).toMatchObject({ reason: "configuration" })
        expect(error.message).toContain("Could not load the default credentials")
        expect(error.message).toContain("gcloud auth application-default login")
        expect(server.requests).toHaveLength(0)
      })).pipe(Effect.ensuring(Effect.sync(() => {
        for (const key of ["CLOUDSDK_CONFIG", "METADATA_SERVER_DETECTION", "GOOGLE_APPLICATION_CREDENTIALS"]) {
          if (saved[key] === undefined) delete process.env[key]
          else process.env[key] = saved[key]
        }
      })))
    })
  })

  describe("errors", () => {
    it.live("429 on Vertex is a rate limit, 400 permanent with Google's message, each sent once", () =>
      withVertex((provider, server) =>
        Effect.gen(function*() {
          server.enqueue(
            {
              _tag: "Json",
              status: 429,
              body: GeminiServer.errorBody(429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.", [
                { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1.5s" }
              ])
            },
            {
              _tag: "Json",
              status: 400,
              body: GeminiServer.errorBody(400, "INVALID_ARGUMENT", "Unable to submit request because it has an empty text parameter.")
            }
          )
          const limited = yield* failure(provider.query(record("hi")))
          expect(limited).toMatchObject({ _tag: "RateLimitError", retryAfterMs: 1500 })
          const bad = yield* failure(provider.query(record("hi")))
          expect(bad).toMatchObject({
            _tag: "PermanentError",
            reason: "bad_request",
            message: "vertexai: Unable to submit request because it has an empty text parameter. (400 INVALID_ARGUMENT)"
          })
          expect(server.generations()).toHaveLength(2)
        })))

    it.live("credentials the token endpoint refuses are a permanent auth error; nothing is generated", () =>
      withVertex((provider, server) =>
        Effect.gen(function*() {
          server.enqueueToken({
            _tag: "Json",
            status: 400,
            body: { error: "invalid_grant", error_description: "Token has been expired or revoked." }
          })
          const error = yield* failure(provider.query(record("hi")))
          expect(error).toMatchObject({ _tag: "PermanentError", reason: "auth", status: 400 })
          expect(error.message).toContain("vertexai: could not get an access token: invalid_grant")
          expect(server.requests.map((request) => request.path)).toEqual(["/token"])
        })))

    it.live("a hang is cut by the timeout and the connection is closed", () =>
      withVertex((provider, server) =>
        Effect.gen(function*() {
          server.enqueue({ _tag: "Hang" })
          const result = yield* provider.query(record("hi")).pipe(Effect.timeout("300 millis"), Effect.either)
          expect(Either.isLeft(result)).toBe(true)
          yield* Effect.promise(() => server.hangClosed()).pipe(Effect.timeout("5 seconds"))
          expect(server.hangsClosed()).toBe(1)
        })))

    it.live("a refused connection is transient and names the endpoint and the error code", () =>
      Effect.gen(function*() {
        const closed = yield* Effect.scoped(Effect.map(GeminiServer.make, (server) => server.url))
        // the token comes from a live server; the endpoint is a closed port
        const error = yield* withVertex(
          (provider) => failure(provider.query(record("hi"))),
          [["VERTEXAI_BASE_URL", closed]]
        )
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.message).toBe(`vertexai: cannot connect to ${closed} (ECONNREFUSED)`)
      }))

    it.live("functionCall and thought parts come back as tool_calls and reasoning, as for gemini", () =>
      withVertex((provider, server) =>
        Effect.gen(function*() {
          const call = GeminiServer.functionCallPart("lookup", { q: "x" }, "fc_v")
          server.enqueue({
            _tag: "Json",
            body: GeminiServer.textResponse("", { parts: [GeminiServer.thoughtPart("think"), { text: "Looking up." }, call] })
          })
          const response = yield* provider.query(record("find x", { parameters: { tools: [{ functionDeclarations: [{ name: "lookup" }] }] } }))
          expect(response.response).toBe("Looking up.")
          expect(response.fields).toMatchObject({
            tool_calls: [{ id: "fc_v", name: "lookup", arguments: { q: "x" }, raw: call }],
            reasoning: "think"
          })
        })))

    it.live("an empty prompt list is refused in the words every API uses, and check reports the missing project too", () =>
      Effect.gen(function*() {
        const provider = yield* VertexAi.make()
        const noConfig = Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        const problems = yield* provider.check(record([])).pipe(noConfig)
        expect(problems.map((problem) => problem.key)).toEqual(["prompt", "api"])
        expect(problems[0]!.message).toBe("the list is empty: give at least one turn or message")
        const error = yield* failure(provider.query(record([]))).pipe(noConfig)
        expect(error).toMatchObject({ reason: "validation", message: "prompt: the list is empty: give at least one turn or message" })
      }))
  })

  describe("end to end with Experiment.run on prompto's examples", () => {
    const run = (name: string) => {
      const dir = tempDir()
      const file = path.join(dir, name)
      fs.copyFileSync(path.join(fixtures, "vertexai/data/input", name), file)
      const media = path.join(dir, "data", "media")
      fs.mkdirSync(media, { recursive: true })
      for (const image of fs.readdirSync(imagesFolder)) fs.copyFileSync(path.join(imagesFolder, image), path.join(media, image))
      return Effect.scoped(Effect.gen(function*() {
        const server = yield* GeminiServer.make
        const provider = yield* VertexAi.make(loopbackAuth(server))
        const result = yield* Experiment.run({ file, dataFolder: path.join(dir, "data"), skipInvalid: true, maxQueries: 600_000 })
          .pipe(
            Effect.withConfigProvider(configFor(server)),
            Effect.provide(Layer.merge(NodeContext.layer, Provider.registryLayer(provider)))
          )
        return { server, completed: readJsonl(result.files.completed) }
      }))
    }

    it.live("vertexai-example.jsonl: every id once, the server's answers", () =>
      Effect.gen(function*() {
        const { completed, server } = yield* run("vertexai-example.jsonl")
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2, 3, 4, 5])
        const byId = new Map(completed.map((line) => [line.id, line]))
        expect(byId.get(0).response).toBe("gemini-1.5-flash-002 says: How does technology impact us?")
        expect(byId.get(1).response).toBe("gemini-1.0-pro-002 says: How does technology impact us?")
        expect(byId.get(2).response).toEqual([
          "gemini-1.5-flash-002 says: How does international trade create jobs?",
          "gemini-1.5-flash-002 says: I want a joke about that"
        ])
        expect(byId.get(4).response).toContain("if api == 'vertexai', then the prompt must be a str")
        expect(byId.get(5).safety_attributes).toMatchObject({ blocked: "[False, False, False, False]", finish_reason: "STOP" })
        const generations = server.generations()
        expect(generations).toHaveLength(6)
        expect(generations.every((request) => request.project === "test-project" && request.location === "europe-west4")).toBe(true)
        expect(generations.every((request) => request.headers.authorization === `Bearer ${GeminiServer.accessToken}`)).toBe(true)
        expect(generations.map((request) => request.body.generationConfig)).toEqual(
          generations.map(() => ({ candidateCount: 1, temperature: 1, maxOutputTokens: 1000 }))
        )
        // one client for the run: one token
        expect(server.requests.filter((request) => request.path === "/token")).toHaveLength(1)
      }))

    it.live("vertexai-multimodal-example.jsonl: images from media/ arrive base64", () =>
      Effect.gen(function*() {
        const { completed, server } = yield* run("vertexai-multimodal-example.jsonl")
        expect(completed.map((line) => line.id).sort()).toEqual([0, 1, 2])
        expect(completed.every((line) => line.error === undefined)).toBe(true)
        expect(new Map(completed.map((line) => [line.id, line.response])).get(1)).toBe("gemini-1.5-flash-002 says: what is this? [1 media]")
        const mortadella = fs.readFileSync(path.join(imagesFolder, "mortadella.jpg")).toString("base64")
        const request = server.generations().find((r) => r.body.contents[0].parts[1]?.text === "what is this?")!
        expect(request.body.contents[0].parts[0]).toEqual({ inlineData: { mimeType: "image/jpeg", data: mortadella } })
        const history = server.generations().find((r) => r.body.contents.length === 3)!
        expect(history.body.contents.map((content: any) => content.role)).toEqual(["user", "model", "user"])
      }))
  })
})
