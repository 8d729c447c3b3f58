/**
 * The provider service: how one API (`test`, `openai`, ...) checks and answers prompt records,
 * and the registry that maps a record's `api` to its provider.
 *
 * @since 0.1.0
 */
import { Context, Effect, FiberRef, Layer, type Scope } from "effect"
import type { IdentifiedRecord, PromptRecord, Usage } from "./PromptRecord.js"
import type { ProviderError } from "./ProviderError.js"

/**
 * What an API answered.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderResponse {
  /** The text, or a list of texts for multi-turn prompts and `n` choices. */
  readonly response: string | ReadonlyArray<string>
  /** Token usage, when the API reports it. */
  readonly usage?: Usage
  /** Further keys written into the completed record (e.g. `model`, `finish_reason`). */
  readonly fields?: Readonly<Record<string, unknown>>
}

/**
 * A problem with one record that a provider finds before anything is sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordProblem {
  /** The key at fault, e.g. `prompt` or `parameters.temperature`. */
  readonly key: string
  readonly message: string
}

/**
 * One API.
 *
 * @since 0.1.0
 * @category models
 */
export interface Provider {
  /** The `api` value this provider answers, e.g. `"openai"`. */
  readonly api: string
  /**
   * Checks a record's shape (prompt, mode, parameters, media files) and its configuration
   * (keys, endpoints, read through `Config`) without sending anything.
   */
  readonly check: (record: PromptRecord) => Effect.Effect<ReadonlyArray<RecordProblem>>
  /** Sends one record and returns the response. Interruption must abort the request. */
  readonly query: (record: IdentifiedRecord) => Effect.Effect<ProviderResponse, ProviderError>
}

/**
 * The media folder that prompts' local images are read from (`<data folder>/media`). A run sets
 * it for its duration; providers read it with `FiberRef.get`.
 *
 * @since 0.1.0
 * @category context
 */
export const mediaFolder: FiberRef.FiberRef<string> = FiberRef.unsafeMake("data/media")

/**
 * The APIs prompto knows. A record naming one of these whose provider is not installed gets a
 * "not installed" message; any other name is an unknown API.
 *
 * @since 0.1.0
 * @category constants
 */
export const knownApis: ReadonlyArray<string> = [
  "test",
  "openai",
  "azure-openai",
  "anthropic",
  "gemini",
  "vertexai",
  "ollama",
  "huggingface-tgi",
  "quart"
]

/**
 * The registry of installed providers, keyed by `api`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ProviderRegistry extends Context.Tag("@prompto/core/ProviderRegistry")<
  ProviderRegistry,
  ReadonlyMap<string, Provider>
>() {}

/**
 * Builds the registry from providers. Later providers with the same `api` replace earlier ones,
 * so a mock can override a real provider.
 *
 * @since 0.1.0
 * @category constructors
 */
export const registryLayer = (
  ...providers: ReadonlyArray<Provider>
): Layer.Layer<ProviderRegistry> =>
  Layer.succeed(ProviderRegistry, new Map(providers.map((provider) => [provider.api, provider])))

/**
 * Builds the registry from effects that construct providers (reading config, opening clients).
 *
 * @since 0.1.0
 * @category constructors
 */
export const registryLayerEffect = <E, R>(
  ...providers: ReadonlyArray<Effect.Effect<Provider, E, R>>
): Layer.Layer<ProviderRegistry, E, Exclude<R, Scope.Scope>> =>
  Layer.scoped(
    ProviderRegistry,
    Effect.map(Effect.all(providers), (list) => new Map(list.map((provider) => [provider.api, provider])))
  )

/**
 * Explains why a record's `api` has no provider: not installed, or not an API at all.
 *
 * @since 0.1.0
 * @category utils
 */
export const missingProviderMessage = (api: string, installed: ReadonlyMap<string, Provider>): string =>
  knownApis.includes(api)
    ? `API "${api}" is not installed in this build of prompto (installed: ${[...installed.keys()].join(", ")})`
    : `"${api}" is not a valid API (known: ${knownApis.join(", ")})`
