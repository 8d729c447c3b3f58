/**
 * The provider service: how one API (`test`, `openai`, ...) checks and answers prompt records,
 * and the registry that maps a record's `api` to its provider. Each provider layer provides its
 * own entry, and the registry is built from whatever entries were provided.
 *
 * @since 0.1.0
 */
import { Context, Effect, Either, FiberRef, Layer, type Scope } from "effect"
import type { IdentifiedRecord, PromptRecord, Usage } from "./PromptRecord.js"
import * as RequestTimeout from "./internal/requestTimeout.js"
import type { ProviderError, RequestTimeoutError } from "./ProviderError.js"

/**
 * What the API said about its rate limits with an answer (headers), normalized. Each count is
 * present only when the API sent it; waits are milliseconds from when the answer arrived.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitInfo {
  /** Requests allowed per window. */
  readonly limitRequests?: number
  /** Requests left in the current window. */
  readonly remainingRequests?: number
  /** Milliseconds until the request window resets (from now). */
  readonly resetRequestsMs?: number
  /** Tokens allowed per window. */
  readonly limitTokens?: number
  /** Tokens left in the current window. */
  readonly remainingTokens?: number
  /** Milliseconds until the token window resets (from now). */
  readonly resetTokensMs?: number
}

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
  /**
   * The API's rate-limit headers on the answer (the last one for multi-turn prompts), so a
   * queue can slow down before it is refused. Not written into the completed record.
   */
  readonly rateLimit?: RateLimitInfo
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
  /**
   * True when every wait of `query` on its API is a `call`, `callCancellable`, `callPromise` or `sleep`: the run's request
   * timeout is then handed to those waits, and `query` runs on the request's own fiber.
   * Otherwise (the default) `query` runs on a fiber of its own that the timeout interrupts,
   * which works for any effect and costs about 28 µs of CPU a request.
   */
  readonly timesOut?: boolean | undefined
  /**
   * The request as a plain `Call`, for the run's hot path: everything `query` does before its
   * wait on the API (reading the endpoint or client, encoding the body) as an effect, and the
   * wait itself and the reading of the answer as a call with callbacks, which the request path
   * runs without a fiber of its own (see `RequestPath`). `undefined` for a record it cannot send
   * that way (then `query` sends it). `query` must do the same; `queryOf` makes it of `prepare`.
   */
  readonly prepare?: ((record: IdentifiedRecord) => Effect.Effect<Call | undefined, ProviderError>) | undefined
}

/**
 * What one request to an API ended with.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome<A = ProviderResponse> = Either.Either<A, ProviderError>

/**
 * One request to an API as a plain call: starts it, calls `done` once with its outcome (never
 * after a cancel; perhaps before it has returned), and returns how to cancel it.
 *
 * @since 0.1.0
 * @category models
 */
export type Call<A = ProviderResponse> = (done: (outcome: Outcome<A>) => void) => () => void

/**
 * A call whose answer is `f` of the given call's.
 *
 * @since 0.1.0
 * @category combinators
 */
export const mapCall = <A, B>(call: Call<A>, f: (a: A) => B): Call<B> => (done) =>
  call((outcome) => done(Either.map(outcome, f)))

/**
 * A call as an effect (`callCancellable`): cancelled when the fiber is interrupted or the
 * request's deadline passes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const runCall = <A>(call: Call<A>): Effect.Effect<A, ProviderError> =>
  RequestTimeout.callCancellable<A, ProviderError>((resume) => call(resume))

/**
 * `query` of a provider's `prepare`: the prepared call as an effect, or `otherwise` for a record
 * that `prepare` does not make a call of.
 *
 * @since 0.1.0
 * @category constructors
 */
export const queryOf = (
  prepare: (record: IdentifiedRecord) => Effect.Effect<Call | undefined, ProviderError>,
  otherwise: (record: IdentifiedRecord) => Effect.Effect<ProviderResponse, ProviderError> = () =>
    Effect.dieMessage("prepare gave no call")
) =>
(record: IdentifiedRecord): Effect.Effect<ProviderResponse, ProviderError> =>
  Effect.flatMap(prepare(record), (call) => (call === undefined ? otherwise(record) : runCall(call)))

/**
 * One wait on an API, as `Effect.async`: `register` gets a callback to resume with and an
 * `AbortSignal`, aborted when the request is interrupted or its timeout passes (then the wait
 * fails with the timeout). A provider whose waits are all `call`s sets `timesOut`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const call: <A, E>(
  register: (resume: (effect: Effect.Effect<A, E>) => void, signal: AbortSignal) => void
) => Effect.Effect<A, E> = RequestTimeout.call

/**
 * `call` for a transport that cancels without an `AbortSignal`: `register` starts the wait and
 * returns how to cancel it (called when the request is interrupted or its timeout passes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const callCancellable: <A, E>(
  register: (resume: (effect: Effect.Effect<A, E>) => void) => () => void
) => Effect.Effect<A, E> = RequestTimeout.callCancellable

/**
 * A simulated wait on an API (the `test` API's latency), on the Effect clock so `TestClock`
 * controls it: under the run's request timeout it ends at the deadline and fails with the
 * timeout, so a provider whose only other waits are `call`s may set `timesOut`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sleep: (millis: number) => Effect.Effect<void, RequestTimeoutError> = RequestTimeout.sleep

/**
 * `call` for a promise (an SDK's request): `Effect.tryPromise` whose signal is also aborted when
 * the request's timeout passes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const callPromise: <A, E>(
  evaluate: (signal: AbortSignal) => PromiseLike<A>,
  onError: (error: unknown) => E
) => Effect.Effect<A, E> = RequestTimeout.callPromise

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
 * What code that looks providers up requires. Each installed provider is its own context entry
 * under `providerTag(api)`, all of this one type, so provider layers compose with
 * `Layer.mergeAll` and a later layer for an `api` overrides an earlier one. Read the providers
 * with `registry`, not with `yield* ProviderRegistry`: the class tag itself is only the
 * whole-map entry that `Layer.succeed(ProviderRegistry, map)` still provides.
 *
 * @since 0.1.0
 * @category tags
 */
export class ProviderRegistry extends Context.Tag("@prompto/core/ProviderRegistry")<
  ProviderRegistry,
  ReadonlyMap<string, Provider>
>() {}

/** Keys of the per-api entries; distinct from the whole-map key (no slash after `Provider`). */
const providerKeyPrefix = "@prompto/core/Provider/"

const providerTags = new Map<string, Context.Tag<ProviderRegistry, Provider>>()

/**
 * The context entry of the provider for `api`. Its identifier type is `ProviderRegistry`, so a
 * layer providing it satisfies every `ProviderRegistry` requirement; its runtime key is per api,
 * so entries for different APIs sit side by side.
 *
 * @since 0.1.0
 * @category tags
 */
export const providerTag = (api: string): Context.Tag<ProviderRegistry, Provider> => {
  let tag = providerTags.get(api)
  if (tag === undefined) {
    tag = Context.GenericTag<ProviderRegistry, Provider>(`${providerKeyPrefix}${api}`)
    providerTags.set(api, tag)
  }
  return tag
}

/** One context holding an entry per provider; a later same-api provider replaces the earlier. */
const contextOf = (providers: Iterable<Provider>): Context.Context<ProviderRegistry> =>
  Context.unsafeMake(new Map([...providers].map((provider) => [providerTag(provider.api).key, provider])))

// Contexts are immutable and `registry` runs once per request, so the map is built once per context.
const registries = new WeakMap<object, ReadonlyMap<string, Provider>>()

const registryOf = (context: Context.Context<ProviderRegistry>): ReadonlyMap<string, Provider> => {
  let built = registries.get(context)
  if (built !== undefined) return built
  const map = new Map<string, Provider>()
  // Context.merge and Context.add copy the map and `set` the new entries, so iteration order is
  // the order keys were first provided: later entries win. (Re-providing a key that already
  // exists keeps its first position; that only matters when mixing whole-map and per-api entries.)
  for (const [key, service] of context.unsafeMap) {
    if (key === ProviderRegistry.key) {
      for (const [api, provider] of service as ReadonlyMap<string, Provider>) map.set(api, provider)
    } else if (key.startsWith(providerKeyPrefix)) {
      const provider = service as Provider
      map.set(provider.api, provider)
    }
  }
  built = map
  registries.set(context, built)
  return built
}

/**
 * The installed providers keyed by `api`, built from every provider entry in the current
 * context (and the whole-map `ProviderRegistry` entry, if any); where two share an `api`, the
 * one provided later wins.
 *
 * @since 0.1.0
 * @category accessors
 */
export const registry: Effect.Effect<ReadonlyMap<string, Provider>, never, ProviderRegistry> = Effect.map(
  Effect.context<ProviderRegistry>(),
  registryOf
)

/**
 * Installs one provider. Merge several with `Layer.mergeAll`; a later layer for the same `api`
 * replaces an earlier one, so a mock can override a real provider.
 *
 * @since 0.1.0
 * @category constructors
 */
export const layer = (provider: Provider): Layer.Layer<ProviderRegistry> =>
  Layer.succeed(providerTag(provider.api), provider)

/**
 * Installs the provider an effect builds (reading config, opening clients). Its `api` is only
 * known once built, so the entry is chosen then.
 *
 * @since 0.1.0
 * @category constructors
 */
export const layerEffect = <E, R>(
  provider: Effect.Effect<Provider, E, R>
): Layer.Layer<ProviderRegistry, E, Exclude<R, Scope.Scope>> =>
  Layer.scopedContext(Effect.map(provider, (built) => contextOf([built])))

/**
 * Installs several providers, one entry each. Later providers with the same `api` replace
 * earlier ones, so a mock can override a real provider.
 *
 * @since 0.1.0
 * @category constructors
 */
export const registryLayer = (
  ...providers: ReadonlyArray<Provider>
): Layer.Layer<ProviderRegistry> => Layer.succeedContext(contextOf(providers))

/**
 * Installs the providers that effects build (reading config, opening clients), one entry each.
 *
 * @since 0.1.0
 * @category constructors
 */
export const registryLayerEffect = <E, R>(
  ...providers: ReadonlyArray<Effect.Effect<Provider, E, R>>
): Layer.Layer<ProviderRegistry, E, Exclude<R, Scope.Scope>> =>
  Layer.scopedContext(Effect.map(Effect.all(providers), contextOf))

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
