/**
 * @prompto/providers: the built-in providers, one module per API. Each module exports `make`
 * (a provider, or an effect building one) and `layer` (that provider as its own registry entry),
 * so layers compose: `Layer.mergeAll(OpenAi.layer, Anthropic.layer)` installs both.
 *
 * @since 0.1.0
 */
import { Provider } from "@prompto/core"
import { Effect, Layer } from "effect"
import * as Anthropic from "./Anthropic.js"
import * as AzureOpenAi from "./AzureOpenAi.js"
import * as Gemini from "./Gemini.js"
import * as HuggingFaceTgi from "./HuggingFaceTgi.js"
import * as Ollama from "./Ollama.js"
import * as OpenAi from "./OpenAi.js"
import * as Quart from "./Quart.js"
import * as TestApi from "./TestApi.js"
import * as VertexAi from "./VertexAi.js"

/** @since 0.1.0 */
export * as Anthropic from "./Anthropic.js"
/** @since 0.1.0 */
export * as AzureOpenAi from "./AzureOpenAi.js"
/** @since 0.1.0 */
export * as Gemini from "./Gemini.js"
/** @since 0.1.0 */
export * as HuggingFaceTgi from "./HuggingFaceTgi.js"
/** @since 0.1.0 */
export * as Media from "./Media.js"
/** @since 0.1.0 */
export * as ModelConfig from "./ModelConfig.js"
/** @since 0.1.0 */
export * as Ollama from "./Ollama.js"
/** @since 0.1.0 */
export * as OpenAi from "./OpenAi.js"
/** @since 0.1.0 */
export * as ProviderFailure from "./ProviderFailure.js"
/** @since 0.1.0 */
export * as Quart from "./Quart.js"
/** @since 0.1.0 */
export * as TestApi from "./TestApi.js"
/** @since 0.1.0 */
export * as VertexAi from "./VertexAi.js"

/**
 * Makes a fresh instance of every built-in provider. All send over the process's one undici
 * pool; the SDK-backed ones keep one client per key and endpoint.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAll: Effect.Effect<ReadonlyArray<Provider.Provider>> = Effect.all([
  Effect.sync(TestApi.make),
  OpenAi.make,
  AzureOpenAi.make,
  Effect.sync(Anthropic.make),
  Gemini.make,
  VertexAi.make(),
  HuggingFaceTgi.make,
  Ollama.make,
  Quart.make
])

/**
 * Every built-in provider, each its own registry entry, all sending over the process's one
 * undici pool. Fresh instances are made each time the layer is built.
 * It is `Layer.mergeAll` of the modules' layers, so pick a subset the same way
 * (`Layer.mergeAll(OpenAi.layer, Anthropic.layer)`), and add or override providers by merging
 * layers after it: a later layer for the same `api` wins
 * (`Layer.merge(Providers.layer, MockProvider.layer(openaiMock))`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Layer.mergeAll(
  TestApi.layer,
  OpenAi.layer,
  AzureOpenAi.layer,
  Anthropic.layer,
  Gemini.layer,
  VertexAi.layer,
  HuggingFaceTgi.layer,
  Ollama.layer,
  Quart.layer
)
