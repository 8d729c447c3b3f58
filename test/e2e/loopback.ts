/**
 * One set of loopback API servers (from `packages/providers/test/servers/`) for one `prompto run`
 * child process: every API prompto's examples use, on 127.0.0.1 with a free port each, and the
 * `.env` entries, credentials file and child environment that point the CLI at them.
 *
 * Only the servers' exported functions and types are used. Every function that derives "what the
 * server answered" from a recorded request mirrors the server's default reply through the
 * server's own exported helpers (`answerText`, `defaultAnswer`, `answer`).
 */
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AnthropicServer from "../../packages/providers/test/servers/AnthropicServer.js"
import * as GeminiServer from "../../packages/providers/test/servers/GeminiServer.js"
import * as OllamaServer from "../../packages/providers/test/servers/OllamaServer.js"
import * as OpenAiServer from "../../packages/providers/test/servers/OpenAiServer.js"
import * as QuartServer from "../../packages/providers/test/servers/QuartServer.js"

/** The Azure deployments that exist on the loopback Azure resource (as in prompto's examples). */
export const azureDeployments: ReadonlyArray<string> = ["reginald-gpt4", "reginald-gpt-4o"]
export const azureApiVersion = "2024-02-01"

/** The models the loopback Ollama server has "pulled". */
export const ollamaModels: ReadonlyArray<string> = OllamaServer.defaultModels

const keys = {
  openai: "sk-loopback",
  azure: "az-loopback",
  anthropic: "an-loopback",
  gemini: "ge-loopback",
  huggingface: "hf-loopback"
} as const

/** A generation request as one server saw it, with the text the server answered (if it answered 200). */
export interface Generation {
  readonly model: string
  /** The answer text of a 200 reply; undefined when the server refused the request (e.g. unknown model). */
  readonly answer: string | undefined
}

export interface Servers {
  readonly openai: OpenAiServer.OpenAiServer
  readonly azure: OpenAiServer.OpenAiServer
  readonly huggingface: OpenAiServer.OpenAiServer
  readonly anthropic: AnthropicServer.AnthropicServer
  readonly gemini: GeminiServer.GeminiServer
  readonly vertexai: GeminiServer.GeminiServer
  readonly ollama: OllamaServer.OllamaServer
  readonly quart: QuartServer.QuartServer
  /** The `.env` entries pointing every API at its server. */
  readonly env: Readonly<Record<string, string>>
  /** Variables for the child's process environment (google-auth-library reads only those). */
  readonly processEnv: Readonly<Record<string, string>>
  /** The generation requests each `api` value's server received, in order. */
  readonly generations: () => Readonly<Record<string, ReadonlyArray<Generation>>>
  readonly close: () => Promise<void>
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const lastUserContent = (messages: unknown): unknown => {
  const list: ReadonlyArray<unknown> = Array.isArray(messages) ? messages : []
  return [...list].reverse().find((message) => isRecord(message) && message.role === "user") as
    | Record<string, unknown>
    | undefined
}

/** What the OpenAI-protocol server answered for one recorded request. */
const openAiGenerations = (
  server: OpenAiServer.OpenAiServer,
  known: (model: string, request: OpenAiServer.RecordedRequest) => boolean
): ReadonlyArray<Generation> =>
  server.requests
    .filter((request) => request.method === "POST" && /\/(chat\/)?completions$/.test(request.path))
    .map((request) => {
      const body: unknown = request.body
      const model = isRecord(body) && typeof body.model === "string"
        ? body.model
        : decodeURIComponent(/\/deployments\/([^/]+)\//.exec(request.path)?.[1] ?? "")
      if (!known(model, request)) return { model, answer: undefined }
      const chat = request.path.endsWith("chat/completions")
      const question = chat
        ? OpenAiServer.contentText((lastUserContent(isRecord(body) ? body.messages : undefined) as { content?: unknown } | undefined)?.content)
        : isRecord(body) && typeof body.prompt === "string"
        ? body.prompt
        : ""
      return { model, answer: OpenAiServer.answerText(question) }
    })

/** The Gemini server answers without checking credentials: a request without the right ones counts as refused. */
const geminiGenerations = (
  server: GeminiServer.GeminiServer,
  authorized: (headers: GeminiServer.RecordedRequest["headers"]) => boolean
): ReadonlyArray<Generation> =>
  server.generations().map((request) => {
    const model = request.model ?? ""
    const reply = GeminiServer.defaultAnswer(model, request.body)
    return { model, answer: authorized(request.headers) ? reply.candidates[0]?.content.parts[0]?.text : undefined }
  })

const ollamaGenerations = (server: OllamaServer.OllamaServer): ReadonlyArray<Generation> =>
  server.requests
    .filter((request) => request.method === "POST" && (request.path === "/api/generate" || request.path === "/api/chat"))
    .map((request) => {
      const body = isRecord(request.body) ? request.body : {}
      const model = typeof body.model === "string" ? body.model : ""
      if (!ollamaModels.includes(model)) return { model, answer: undefined }
      const messages = Array.isArray(body.messages) ? body.messages : []
      const last: unknown = messages.at(-1)
      const text = request.path === "/api/generate"
        ? (typeof body.prompt === "string" ? body.prompt : "")
        : isRecord(last) && typeof last.content === "string"
        ? last.content
        : ""
      return { model, answer: OllamaServer.answer(model, text) }
    })

const quartGenerations = (server: QuartServer.QuartServer): ReadonlyArray<Generation> =>
  server.requests
    .filter((request) => request.method === "POST" && request.path === "/generate")
    .map((request) => {
      const body = isRecord(request.body) ? request.body : {}
      return {
        model: typeof body.model === "string" ? body.model : "",
        answer: typeof body.text === "string" ? QuartServer.answer(QuartServer.defaultModel, body.text) : undefined
      }
    })

/**
 * Starts every server (closed by `close`) and writes the Vertex AI credentials file into `dir`:
 * an `external_account_authorized_user` credential, the ADC type whose token endpoint is named
 * in the file (`token_url`), so google-auth-library refreshes against the loopback `/token`.
 */
export const start = async (dir: string): Promise<Servers> => {
  const scope = await Effect.runPromise(Scope.make())
  const inScope = <A>(effect: Effect.Effect<A, never, Scope.Scope>) => Effect.runPromise(Scope.extend(effect, scope))
  try {
    const [openai, azure, huggingface, anthropic, gemini, vertexai, ollama, quart] = await Promise.all([
      // token counts as OpenAI's, so estimates can be checked against them
      inScope(OpenAiServer.make({ auth: { _tag: "Bearer", keys: [keys.openai] }, tokens: "tiktoken" })),
      inScope(OpenAiServer.make({
        auth: { _tag: "Azure", keys: [keys.azure], apiVersion: azureApiVersion, deployments: azureDeployments }
      })),
      inScope(OpenAiServer.make({ auth: { _tag: "Bearer", keys: [keys.huggingface] } })),
      inScope(AnthropicServer.start({ apiKeys: [keys.anthropic] })),
      inScope(GeminiServer.make),
      inScope(GeminiServer.make),
      inScope(OllamaServer.make()),
      inScope(QuartServer.make())
    ] as const)

    const credentials = path.join(dir, "vertexai-credentials.json")
    fs.writeFileSync(
      credentials,
      JSON.stringify({
        type: "external_account_authorized_user",
        audience: "//iam.googleapis.com/locations/global/workforcePools/loopback/providers/loopback",
        client_id: "loopback-client",
        client_secret: "loopback-secret",
        refresh_token: "loopback-refresh",
        token_url: `${vertexai.url}/token`,
        token_info_url: `${vertexai.url}/tokeninfo`
      })
    )

    const env: Record<string, string> = {
      OPENAI_API_KEY: keys.openai,
      OPENAI_BASE_URL: `${openai.url}/v1`,
      AZURE_OPENAI_API_KEY: keys.azure,
      AZURE_OPENAI_API_ENDPOINT: azure.url,
      AZURE_OPENAI_API_VERSION: azureApiVersion,
      ANTHROPIC_API_KEY: keys.anthropic,
      ANTHROPIC_BASE_URL: anthropic.url,
      GEMINI_API_KEY: keys.gemini,
      GEMINI_BASE_URL: gemini.url,
      VERTEXAI_PROJECT_ID: "loopback-project",
      VERTEXAI_LOCATION_ID: "europe-west2",
      VERTEXAI_BASE_URL: vertexai.url,
      OLLAMA_API_ENDPOINT: ollama.url,
      HUGGINGFACE_TGI_API_ENDPOINT: huggingface.url,
      HUGGINGFACE_TGI_API_KEY: keys.huggingface,
      QUART_API_ENDPOINT: quart.url
    }

    return {
      openai,
      azure,
      huggingface,
      anthropic,
      gemini,
      vertexai,
      ollama,
      quart,
      env,
      processEnv: { GOOGLE_APPLICATION_CREDENTIALS: credentials },
      generations: () => ({
        openai: openAiGenerations(openai, (_, request) => request.headers["authorization"] === `Bearer ${keys.openai}`),
        "azure-openai": openAiGenerations(
          azure,
          (model, request) =>
            azureDeployments.includes(model) && request.headers["api-key"] === keys.azure &&
            request.query["api-version"] === azureApiVersion
        ),
        "huggingface-tgi": openAiGenerations(
          huggingface,
          (_, request) => request.headers["authorization"] === `Bearer ${keys.huggingface}`
        ),
        anthropic: anthropic.requests
          .filter((request) => request.method === "POST" && request.path === "/v1/messages")
          .map((request) => ({ model: String((request.body as { model?: unknown } | undefined)?.model ?? ""), answer: request.answer })),
        gemini: geminiGenerations(gemini, (headers) => headers["x-goog-api-key"] === keys.gemini),
        // the bearer token the loopback /token endpoint handed google-auth-library for the credentials file
        vertexai: geminiGenerations(vertexai, (headers) => headers.authorization === `Bearer ${GeminiServer.accessToken}`),
        ollama: ollamaGenerations(ollama),
        quart: quartGenerations(quart)
      }),
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }
}

/** The `.env` text of the entries (values are plain tokens and URLs: no quoting needed). */
export const envFileText = (entries: Readonly<Record<string, string>>): string =>
  Object.entries(entries).map(([name, value]) => `${name}=${value}`).join("\n") + "\n"
