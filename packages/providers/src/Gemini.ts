/**
 * The `gemini` API: Google's Gemini API over the official `@google/genai` SDK.
 *
 * Configuration, per record through `Config` with prompto's per-model override
 * (`VAR_<model id>` before `VAR`):
 *
 * - `GEMINI_API_KEY` (required), sent as the `x-goog-api-key` header.
 * - `GEMINI_BASE_URL` (optional): the endpoint instead of `https://generativelanguage.googleapis.com`
 *   (the SDK's `httpOptions.baseUrl`; requests go to `<base>/v1beta/models/<model>:generateContent`).
 *
 * Prompts, as in prompto: a string; a list of strings (a chat sent turn by turn with its history,
 * `response` is the list of answers); a list of `{role, parts}` messages with roles `user` and
 * `model`, where element 0 may be `system` (sent as `systemInstruction`). `parts` is a string, a
 * part or a list of parts: strings, `{type: "text", text}`, media
 * `{type: "image" | "video" | "audio" | ..., media: "<file in the media folder>", mime_type?}`
 * (sent base64 as `inlineData`; prompto only read images locally, we send any file inline),
 * `{..., uploaded_filename}` for a file already uploaded with the Files API (looked up with
 * `files.get` and sent as `fileData`), and `{type: "uri", media, mime_type}` for file URIs.
 *
 * `safety_filter` (`none`, `few`, `some`/`default`, `most`; default `default`) sets the threshold
 * of prompto's four harm categories. `parameters` are generation config fields, in prompto's
 * snake_case or the SDK's camelCase (top-level keys are converted to camelCase, values go as
 * given), plus `tools` and `tool_config` for function calling.
 *
 * The completed record gets `safety_attributes` as prompto writes them (a list for a chat),
 * `finish_reason`, `model` (the served `modelVersion`) and `usage`, with `cached_tokens`
 * (`cachedContentTokenCount`) and `reasoning_tokens` (`thoughtsTokenCount`) when reported; thinking
 * tokens are billed output, so they are counted in `completion_tokens` too. A blocked response is
 * a success with `""`. `functionCall` parts are written as `tool_calls` and thought summaries
 * (`thinking_config: {"includeThoughts": true}`: nested keys in the SDK's camelCase) as `reasoning`.
 *
 * The SDK's retries are off (no `httpOptions.retryOptions`: `generateContent` makes one fetch)
 * and it has no timeout (no `httpOptions.timeout`); the scheduler's timeout aborts the request
 * through the SDK's `abortSignal`.
 *
 * @since 0.1.0
 */
import { Provider } from "@prompto/core"
import { Effect, Layer } from "effect"
import * as GoogleGenAi from "./internal/googleGenAi.js"
import * as ModelConfig from "./ModelConfig.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "gemini"

/**
 * The variable holding the API key.
 *
 * @since 0.1.0
 * @category constants
 */
export const apiKeyVariable = "GEMINI_API_KEY"

/**
 * The variable overriding the endpoint.
 *
 * @since 0.1.0
 * @category constants
 */
export const baseUrlVariable = "GEMINI_BASE_URL"

/**
 * The endpoint used when `GEMINI_BASE_URL` is not set (the SDK's default).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl = "https://generativelanguage.googleapis.com"

/**
 * Makes the `gemini` provider. It keeps one SDK client per (key, endpoint), made on first use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Provider.Provider> = Effect.sync(() => {
  const clients = new Map<string, GoogleGenAi.Connection>()
  return GoogleGenAi.makeProvider({
    api,
    vertex: false,
    checkConfig: (modelName) =>
      Effect.map(
        Effect.all([
          ModelConfig.checkRequired([apiKeyVariable], modelName),
          GoogleGenAi.checkBaseUrl(baseUrlVariable, modelName)
        ]),
        ([missing, endpoint]) => [...missing, ...endpoint]
      ),
    client: (modelName) =>
      Effect.gen(function*() {
        const apiKey = yield* ModelConfig.require(apiKeyVariable, modelName)
        const baseUrl = yield* GoogleGenAi.baseUrl(baseUrlVariable, modelName)
        const endpoint = baseUrl ?? defaultBaseUrl
        return yield* GoogleGenAi.cachedClient(clients, api, [apiKey, baseUrl ?? ""], endpoint, (sdk) =>
          new sdk.GoogleGenAI({
            vertexai: false,
            apiKey,
            ...(baseUrl === undefined ? {} : { httpOptions: { baseUrl } })
          }))
      })
  })
})

/**
 * Installs the `gemini` provider as its own registry entry (composes with other provider layers
 * via `Layer.mergeAll`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make)
