/**
 * The `openai` API over the official `openai` SDK: chat completions (`mode` absent or
 * `"chat"`) and the legacy completions endpoint (`mode: "completion"`, string prompts).
 *
 * Prompts, as prompto accepts them: a string; a list of strings (a multi-turn chat: each turn
 * is sent with the earlier turns and answers, `response` is the list of answers); or a history
 * of `{role, content}` messages (roles `system`, `user`, `assistant`), whose content may be a
 * list of strings, `{type: "text", text}` and `{type: "image_url", image_url: url | {url, detail}}`
 * items. Local image files are read from the media folder and sent as base64 `data:` URLs;
 * `http(s)` URLs pass through. `parameters` are sent as given; `n` above 1 gives a list of
 * choices. `usage` gets `cached_tokens` and `reasoning_tokens` from the API's
 * `prompt_tokens_details` and `completion_tokens_details` when reported.
 *
 * Configuration, per record with prompto's per-model override (`VAR_<model id>` before `VAR`):
 * `OPENAI_API_KEY` (required) and `OPENAI_BASE_URL` (optional, default
 * `https://api.openai.com/v1`; any OpenAI-compatible server such as vLLM).
 *
 * @since 0.1.0
 */
import { Provider } from "@prompto/core"
import { Effect, Layer, Option, Redacted } from "effect"
import * as OpenAiChat from "./internal/openAiChat.js"
import * as ModelConfig from "./ModelConfig.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "openai"

/**
 * The variable holding the API key (required).
 *
 * @since 0.1.0
 * @category constants
 */
export const apiKeyVariable = "OPENAI_API_KEY"

/**
 * The variable overriding the endpoint (optional).
 *
 * @since 0.1.0
 * @category constants
 */
export const baseUrlVariable = "OPENAI_BASE_URL"

/**
 * The endpoint used when `OPENAI_BASE_URL` is not set.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl = "https://api.openai.com/v1"

/**
 * prompto's message for a prompt of the wrong shape.
 *
 * @since 0.1.0
 * @category constants
 */
export const shapeError: string = OpenAiChat.messagesShapeError(api)

/**
 * Makes an `openai` provider. Each instance keeps its own SDK clients, one per
 * (key, endpoint), created on first use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Provider.Provider> = Effect.sync(() =>
  OpenAiChat.makeMessages({
    api,
    shapeError,
    checkConfig: OpenAiChat.checkVariables([apiKeyVariable], baseUrlVariable),
    connect: (modelName) =>
      Effect.gen(function*() {
        const apiKey = yield* OpenAiChat.requireSecret(apiKeyVariable, modelName)
        const baseURL = OpenAiChat.trimEndpoint(
          Option.getOrElse(yield* ModelConfig.lookup(baseUrlVariable, modelName), () => defaultBaseUrl)
        )
        return {
          key: [api, Redacted.value(apiKey), baseURL],
          create: (sdk) => new sdk.OpenAI({ apiKey: Redacted.value(apiKey), baseURL, ...OpenAiChat.clientDefaults })
        }
      })
  })
)

/**
 * Installs the `openai` provider as its own registry entry, so it composes with other provider
 * layers (`Layer.mergeAll(OpenAi.layer, Anthropic.layer)` gives both). A fresh provider per
 * build; building it never fails: a missing key is a `check` problem.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make)
