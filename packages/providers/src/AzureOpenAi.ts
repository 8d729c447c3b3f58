/**
 * The `azure-openai` API over the official `openai` SDK's `AzureOpenAI` client. `model_name`
 * is the deployment: requests go to `{endpoint}/openai/deployments/<model_name>/...` with the
 * `api-version` query parameter and the `api-key` header.
 *
 * Prompts and modes as for `openai` (string, list of strings as a multi-turn chat, role/content
 * histories with text and image items; `mode: "completion"` for string prompts).
 *
 * Configuration, per record with prompto's per-model override (`VAR_<model id>` before `VAR`):
 * `AZURE_OPENAI_API_KEY` and `AZURE_OPENAI_API_ENDPOINT` (required), `AZURE_OPENAI_API_VERSION`
 * (optional, default `2024-02-01`).
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
export const api = "azure-openai"

/**
 * The variable holding the API key (required).
 *
 * @since 0.1.0
 * @category constants
 */
export const apiKeyVariable = "AZURE_OPENAI_API_KEY"

/**
 * The variable holding the resource endpoint, e.g. `https://my-resource.openai.azure.com`
 * (required).
 *
 * @since 0.1.0
 * @category constants
 */
export const endpointVariable = "AZURE_OPENAI_API_ENDPOINT"

/**
 * The variable holding the API version (optional).
 *
 * @since 0.1.0
 * @category constants
 */
export const apiVersionVariable = "AZURE_OPENAI_API_VERSION"

/**
 * The API version used when `AZURE_OPENAI_API_VERSION` is not set (prompto's default).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApiVersion = "2024-02-01"

/**
 * prompto's message for a prompt of the wrong shape.
 *
 * @since 0.1.0
 * @category constants
 */
export const shapeError: string = OpenAiChat.messagesShapeError(api)

/**
 * Makes an `azure-openai` provider. Each instance keeps its own SDK clients, one per
 * (key, endpoint, API version), created on first use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Provider.Provider> = Effect.sync(() =>
  OpenAiChat.makeMessages({
    api,
    shapeError,
    checkConfig: OpenAiChat.checkVariables([apiKeyVariable, endpointVariable], endpointVariable),
    connect: (modelName) =>
      Effect.gen(function*() {
        const apiKey = yield* OpenAiChat.requireSecret(apiKeyVariable, modelName)
        const endpoint = OpenAiChat.trimEndpoint(yield* ModelConfig.require(endpointVariable, modelName))
        const apiVersion = Option.getOrElse(yield* ModelConfig.lookup(apiVersionVariable, modelName), () => defaultApiVersion)
        // the base URL is given (not `endpoint`), so the SDK never reads OPENAI_BASE_URL from the
        // environment; the deployment path is added per request from the body's `model`
        const baseURL = `${endpoint}/openai`
        return {
          key: [api, Redacted.value(apiKey), baseURL, apiVersion],
          create: (sdk) => new sdk.AzureOpenAI({ apiKey: Redacted.value(apiKey), baseURL, apiVersion, ...OpenAiChat.clientDefaults })
        }
      })
  })
)

/**
 * Installs the `azure-openai` provider as its own registry entry (composes with other provider
 * layers via `Layer.mergeAll`). A fresh provider per build; building it never fails: missing
 * variables are `check` problems.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make)
