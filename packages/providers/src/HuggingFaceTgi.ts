/**
 * The `huggingface-tgi` API: a Hugging Face text-generation-inference server through its
 * OpenAI-compatible endpoint (`{endpoint}/v1/`, model `"tgi"`), over the official `openai` SDK.
 *
 * Prompts: a string, or a list of strings (a multi-turn chat sent through chat completions,
 * `response` the list of answers). As in prompto, a string prompt goes to the completions
 * endpoint unless the record says `mode: "chat"`. The completed record gets `model`, the model
 * the server reports it is serving.
 *
 * Configuration, per record with prompto's per-model override (`VAR_<model id>` before `VAR`):
 * `HUGGINGFACE_TGI_API_ENDPOINT` (required), `HUGGINGFACE_TGI_API_KEY` (optional, default `-`).
 *
 * @since 0.1.0
 */
import { Provider } from "@prompto/core"
import { Effect, Layer, Option } from "effect"
import * as OpenAiChat from "./internal/openAiChat.js"
import * as ModelConfig from "./ModelConfig.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "huggingface-tgi"

/**
 * The variable holding the server's endpoint, e.g. `http://localhost:8080` (required).
 *
 * @since 0.1.0
 * @category constants
 */
export const endpointVariable = "HUGGINGFACE_TGI_API_ENDPOINT"

/**
 * The variable holding the API key (optional).
 *
 * @since 0.1.0
 * @category constants
 */
export const apiKeyVariable = "HUGGINGFACE_TGI_API_KEY"

/**
 * The API key sent when `HUGGINGFACE_TGI_API_KEY` is not set (prompto's `-`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApiKey = "-"

/**
 * The `model` sent in every request: TGI serves one model and ignores the name.
 *
 * @since 0.1.0
 * @category constants
 */
export const requestModel = "tgi"

/**
 * prompto's message for a prompt of the wrong shape.
 *
 * @since 0.1.0
 * @category constants
 */
export const shapeError = "if api == 'huggingface-tgi', then prompt must be a str or a list[str]"

/**
 * Makes a `huggingface-tgi` provider. Each instance keeps its own SDK clients, one per
 * (key, endpoint), created on first use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Provider.Provider> = Effect.sync(() =>
  OpenAiChat.make({
    api,
    shapes: "turns",
    defaultMode: "completion",
    shapeError,
    checkConfig: OpenAiChat.checkVariables([endpointVariable], endpointVariable),
    connect: (modelName) =>
      Effect.gen(function*() {
        const endpoint = OpenAiChat.trimEndpoint(yield* ModelConfig.require(endpointVariable, modelName))
        const apiKey = Option.getOrElse(yield* ModelConfig.lookup(apiKeyVariable, modelName), () => defaultApiKey)
        const baseURL = `${endpoint}/v1/`
        return {
          key: [api, apiKey, baseURL],
          create: (sdk) => new sdk.OpenAI({ apiKey, baseURL, ...OpenAiChat.clientDefaults })
        }
      }),
    requestModel: () => requestModel
  })
)

/**
 * Installs the `huggingface-tgi` provider as its own registry entry (composes with other
 * provider layers via `Layer.mergeAll`). A fresh provider per build; building it never fails: a
 * missing endpoint is a `check` problem.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make)
