/**
 * What the plain-HTTP providers (`ollama`, `quart`) share: the endpoint variable, read once per
 * model and configuration and parsed, and one JSON `POST` over undici's `request` (on the pool
 * the SDKs use too) whose failures become the core's typed errors (transport failures, named
 * with the URL and the network error code, and malformed bodies are transient; error statuses
 * and error bodies are classified by the provider).
 *
 * The `POST` is one undici `dispatch` wrapped once in `Effect.async`: `@effect/platform`'s
 * `HttpClient` (a request object, a span, a scope and a response stream per request) cost
 * about 450 µs of CPU a request against about 130 µs for the same call made this way, most of
 * the providers' own cost at a few thousand requests a second.
 *
 * @since 0.1.0
 */
import { Provider, ProviderError } from "@prompto/core"
import { Effect, Either, Option, type ParseResult, Schema } from "effect"
import * as ModelConfig from "../ModelConfig.js"
import * as ProviderFailure from "../ProviderFailure.js"
import * as UndiciFetch from "./undiciFetch.js"

/**
 * Whether a value is a JSON object (not `null`, not an array).
 *
 * @since 0.1.0
 * @category utils
 */
export const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The message for an endpoint variable whose value is not an http(s) URL (names only).
 *
 * @since 0.1.0
 * @category config
 */
export const invalidEndpointMessage = (variable: string, modelName: string): string =>
  `the value of ${
    ModelConfig.candidates(variable, modelName).map((name) => `"${name}"`).join(" or ")
  } is not an http(s) URL`

/**
 * The configuration problems of a record's endpoint: the variable is missing, or `parse` cannot
 * make a URL of its value.
 *
 * @since 0.1.0
 * @category config
 */
export const checkEndpoint = (
  variable: string,
  modelName: string,
  parse: (endpoint: string) => Option.Option<string>
): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.gen(function*() {
    const endpoint = yield* ModelConfig.lookup(variable, modelName)
    if (Option.isNone(endpoint)) return yield* ModelConfig.checkRequired([variable], modelName)
    if (Option.isNone(parse(endpoint.value))) return [{ key: "api", message: invalidEndpointMessage(variable, modelName) }]
    return []
  })

/**
 * The URL `parse` makes of a record's endpoint; a missing variable or a value that is not a URL
 * is a permanent configuration error.
 *
 * @since 0.1.0
 * @category config
 */
export const requireEndpoint = (
  variable: string,
  modelName: string,
  parse: (endpoint: string) => Option.Option<string>
): Effect.Effect<string, ProviderError.PermanentError> =>
  Effect.flatMap(ModelConfig.require(variable, modelName), (endpoint) =>
    Option.match(parse(endpoint), {
      onNone: () =>
        Effect.fail(
          new ProviderError.PermanentError({ reason: "configuration", message: invalidEndpointMessage(variable, modelName) })
        ),
      onSome: Effect.succeed
    }))

/**
 * `checkEndpoint` for a provider, read once per model and configuration: the check of a run's
 * file asks for every line, and reading `Config` (a missing per-model variable is a failure
 * with a stack trace) cost more than the rest of the line's check.
 *
 * @since 0.1.0
 * @category config
 */
export const endpointProblemsOf = (
  variable: string,
  parse: (endpoint: string) => Option.Option<string>
): (modelName: string) => Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  // undici is loaded with the first check, not by the first send (see `UndiciFetch.warmUp`)
  ModelConfig.perModel((modelName) => Effect.zipLeft(checkEndpoint(variable, modelName, parse), UndiciFetch.warmUp))

/**
 * `requireEndpoint` for a provider, read once per model and configuration (reading `Config` for
 * every request cost more than the rest of the provider's work); a missing or unusable value is
 * read again next time, so a fixed variable is seen.
 *
 * @since 0.1.0
 * @category config
 */
export const endpointOf = (
  variable: string,
  parse: (endpoint: string) => Option.Option<string>
): (modelName: string) => Effect.Effect<string, ProviderError.PermanentError> =>
  ModelConfig.perModel((modelName) => requireEndpoint(variable, modelName, parse))

/**
 * The message of an error body (`{"error": "..."}`), or the body's text (cut at 500 characters).
 *
 * @since 0.1.0
 * @category errors
 */
export const serverMessage = (text: string): string => {
  try {
    const parsed: unknown = JSON.parse(text)
    if (isRecord(parsed) && typeof parsed.error === "string") return parsed.error
  } catch {
    // not JSON: use the text
  }
  const trimmed = text.trim()
  return trimmed === "" ? "(empty body)" : trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed
}

const malformed = (api: string, detail: string): ProviderError.TransientError =>
  new ProviderError.TransientError({ message: `${api}: malformed response body: ${detail}`, status: 200 })

/**
 * One JSON `POST` and how its failures are classified.
 *
 * @since 0.1.0
 * @category models
 */
export interface Post<A, I> {
  /** The `api` value, prefixed to every error message. */
  readonly api: string
  readonly url: string
  readonly body: unknown
  /** The reply expected with a 2xx status. */
  readonly schema: Schema.Schema<A, I>
  /** The error for a status outside 2xx, given the server's message (`serverMessage`). */
  readonly onStatus: (status: number, message: string, headers: ProviderFailure.HeadersLike) => ProviderError.ProviderError
  /**
   * The error for a 2xx JSON object whose `error` is a string, or `undefined` to decode it with
   * `schema` as any other reply.
   */
  readonly onErrorBody: (
    error: string,
    body: Readonly<Record<string, unknown>>,
    status: number
  ) => ProviderError.ProviderError | undefined
}

const requestHeaders = { "content-type": "application/json", accept: "application/json" }

/** Each reply schema's decoder, made once (a decoder is a closure over the schema's parser). */
const decoders = new WeakMap<Schema.Schema.Any, (input: unknown) => Either.Either<unknown, ParseResult.ParseError>>()

const decoderOf = <A, I>(schema: Schema.Schema<A, I>): (input: unknown) => Either.Either<A, ParseResult.ParseError> => {
  let decode = decoders.get(schema)
  if (decode === undefined) {
    decode = Schema.decodeUnknownEither(schema)
    decoders.set(schema, decode)
  }
  return decode as (input: unknown) => Either.Either<A, ParseResult.ParseError>
}

/** The reply of a whole answer: an error status or error body classified, a 2xx body decoded. */
const reply = <A, I>(options: Post<A, I>, answer: UndiciFetch.Answer): Either.Either<A, ProviderError.ProviderError> => {
  const { api } = options
  const { status } = answer
  const text = answer.body.toString("utf8")
  if (status < 200 || status >= 300) return Either.left(options.onStatus(status, serverMessage(text), answer.headers))
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return Either.left(malformed(api, `not JSON: ${text.slice(0, 100)}`))
  }
  if (isRecord(parsed) && typeof parsed.error === "string") {
    const error = options.onErrorBody(parsed.error, parsed, status)
    if (error !== undefined) return Either.left(error)
  }
  return Either.mapLeft(decoderOf(options.schema)(parsed), (error) => malformed(api, error.message))
}

/**
 * One JSON `POST` (accepting JSON) as a plain call: one undici `dispatch`
 * (`UndiciFetch.exchange`) that reads the whole answer and decodes the reply. No answer at all
 * (a refused or broken connection) is transient and named with the URL and the network error
 * code, as are a 2xx body that is not JSON or not the expected reply. A body that cannot be
 * encoded is a permanent validation error, before anything is sent.
 *
 * @since 0.1.0
 * @category requests
 */
export const prepare = <A, I>(options: Post<A, I>): Either.Either<Provider.Call<A>, ProviderError.ProviderError> => {
  let body: string
  try {
    body = JSON.stringify(options.body)
  } catch (error) {
    return Either.left(
      new ProviderError.PermanentError({
        reason: "validation",
        message: `${options.api}: cannot encode the request: ${error instanceof Error ? error.message : String(error)}`
      })
    )
  }
  const { api, url } = options
  const request: UndiciFetch.Exchange = { url, method: "POST", headers: requestHeaders, body }
  return Either.right((done) => {
    const failed = (error: unknown) => done(Either.left(ProviderFailure.fromConnection(error, api, url)))
    const answered = (answer: UndiciFetch.Answer) => done(reply(options, answer))
    const transport = UndiciFetch.transport()
    if (!(transport instanceof Promise)) return UndiciFetch.exchange(transport, request, answered, failed)
    let cancel: (() => void) | undefined
    let cancelled = false
    transport.then((loaded) => {
      if (!cancelled) cancel = UndiciFetch.exchange(loaded, request, answered, failed)
    }, failed)
    return () => {
      cancelled = true
      cancel?.()
    }
  })
}

/**
 * Sends one JSON `POST` (accepting JSON) and decodes the reply (`prepare`'s call as an effect,
 * cancelled when the fiber is interrupted or the request's deadline passes).
 *
 * @since 0.1.0
 * @category requests
 */
export const post = <A, I>(options: Post<A, I>): Effect.Effect<A, ProviderError.ProviderError> =>
  Effect.flatMap(Effect.suspend(() => prepare(options)), Provider.runCall)
