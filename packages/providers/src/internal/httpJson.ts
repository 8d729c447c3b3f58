/**
 * What the plain-HTTP providers (`ollama`, `quart`) share over `@effect/platform`'s
 * `HttpClient`: the endpoint variable read per record and parsed, and one JSON `POST` whose
 * failures become the core's typed errors (an unusable URL is a permanent configuration error,
 * other transport failures, named with the URL and the network error code, and malformed bodies
 * are transient, error statuses and error bodies are classified by the provider).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { type Provider, ProviderError } from "@prompto/core"
import { Effect, Option, Schema } from "effect"
import * as ModelConfig from "../ModelConfig.js"
import * as ProviderFailure from "../ProviderFailure.js"

/**
 * Whether a value is a JSON object (not `null`, not an array).
 *
 * @since 0.1.0
 * @category utils
 */
export const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The `HttpClient` in context, without trace propagation headers (the servers do not expect them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const client: Effect.Effect<HttpClient.HttpClient, never, HttpClient.HttpClient> = Effect.map(
  HttpClient.HttpClient,
  HttpClient.withTracerPropagation(false)
)

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

const transportError = (api: string, url: string) => (error: HttpClientError.HttpClientError): ProviderError.ProviderError => {
  if (error._tag === "RequestError" && error.reason === "InvalidUrl") {
    return new ProviderError.PermanentError({ reason: "configuration", message: `${api}: ${error.message}` })
  }
  // no answer at all: name where it was sent and the network error code (ECONNREFUSED, ...)
  if (error._tag === "RequestError" && error.reason === "Transport") return ProviderFailure.fromConnection(error.cause, api, url)
  const cause = (error.cause as { message?: unknown } | undefined)?.message
  return new ProviderError.TransientError({
    message: `${api}: ${error.message}${typeof cause === "string" && cause !== "" ? `: ${cause}` : ""}`
  })
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

/**
 * Sends one JSON `POST` (accepting JSON) and decodes the reply. A body that cannot be encoded is
 * a permanent validation error; an unusable URL a permanent configuration error; other transport
 * failures, and a 2xx body that is not JSON or not the expected reply, are transient.
 *
 * @since 0.1.0
 * @category requests
 */
export const post = <A, I>(client: HttpClient.HttpClient, options: Post<A, I>): Effect.Effect<A, ProviderError.ProviderError> =>
  Effect.gen(function*() {
    const { api } = options
    const request = yield* HttpClientRequest.post(options.url).pipe(
      HttpClientRequest.acceptJson,
      HttpClientRequest.bodyJson(options.body),
      Effect.mapError((error) =>
        new ProviderError.PermanentError({ reason: "validation", message: `${api}: cannot encode the request: ${error.reason._tag}` })
      )
    )
    const response = yield* Effect.mapError(client.execute(request), transportError(api, options.url))
    const text = yield* Effect.mapError(response.text, transportError(api, options.url))
    if (response.status < 200 || response.status >= 300) {
      return yield* options.onStatus(response.status, serverMessage(text), response.headers)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return yield* malformed(api, `not JSON: ${text.slice(0, 100)}`)
    }
    if (isRecord(parsed) && typeof parsed.error === "string") {
      const error = options.onErrorBody(parsed.error, parsed, response.status)
      if (error !== undefined) return yield* error
    }
    return yield* Schema.decodeUnknown(options.schema)(parsed).pipe(
      Effect.mapError((error) => malformed(api, error.message))
    )
  })
