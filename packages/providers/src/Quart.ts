/**
 * The `quart` API: prompto's own small HTTP server around a Hugging Face `transformers`
 * pipeline (`prompto/models/quart/quart_api.py`), spoken over undici (`internal/httpJson`).
 *
 * A record is one `POST {endpoint}/generate` with `{ "text": prompt, "model": model_name,
 * "options": parameters }`; the server answers `{ "response": <pipeline output>, "model": name }`
 * and the text is `response[0].generated_text`. The prompt must be a string. The endpoint is
 * `QUART_API_ENDPOINT` (or `QUART_API_ENDPOINT_<model id>`), read once per model. The completed
 * record gets `model` as the server reports it; the server reports no token usage or finish
 * reason.
 *
 * Errors: an older server answers a wrong model with `{"error": ...}` and status 200, which
 * prompto does not retry (it fails reading `response`), so that is permanent; other statuses are
 * classified by `ProviderFailure.fromStatus` (prompto retries none of them, but a 5xx or 429 may
 * well pass later); a 200 whose body is not the server's JSON is transient.
 *
 * @since 0.1.0
 */
import { type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { Effect, Either, Layer, Option, Schema } from "effect"
import * as EmptyPrompt from "./internal/emptyPrompt.js"
import * as HttpJson from "./internal/httpJson.js"
import * as ProviderFailure from "./ProviderFailure.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "quart"

/**
 * The variable naming the quart server (per-model variants `QUART_API_ENDPOINT_<model id>`).
 *
 * @since 0.1.0
 * @category constants
 */
export const endpointVariable = "QUART_API_ENDPOINT"

/**
 * prompto's message for a prompt that is not a string (the one every API gives for an empty
 * list), or `undefined` for a string.
 *
 * @since 0.1.0
 * @category checks
 */
export const promptProblem = (prompt: PromptRecord.Prompt): string | undefined =>
  typeof prompt === "string"
    ? undefined
    : EmptyPrompt.is(prompt)
    ? EmptyPrompt.message
    : "if api == 'quart', then prompt must be a string, not a list"

/**
 * The URL of the `generate` route for an endpoint value (an http(s) URL; a trailing `/` is
 * dropped), or `None` if it is not one.
 *
 * @since 0.1.0
 * @category utils
 */
export const generateUrl = (endpoint: string): Option.Option<string> => {
  let url: URL
  try {
    url = new URL(endpoint.trim())
  } catch {
    return Option.none()
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") return Option.none()
  return Option.some(`${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}/generate`)
}

/**
 * The server's reply: the pipeline output (a list whose first item holds `generated_text`) and
 * the model it runs.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reply = Schema.Struct({
  response: Schema.NonEmptyArray(Schema.Struct({ generated_text: Schema.String })),
  model: Schema.optional(Schema.String)
})

/**
 * Makes the provider. Requests go over the process's one undici pool (connections kept alive
 * and reused, shared with the SDK providers).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Provider.Provider> = Effect.sync(() => {
  const endpointOf = HttpJson.endpointOf(endpointVariable, generateUrl)
  const endpointProblemsOf = HttpJson.endpointProblemsOf(endpointVariable, generateUrl)

  // once a line of the file: no generator (a check pass's steps, issue 14)
  const check = (record: PromptRecord.PromptRecord): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> => {
    const prompt = promptProblem(record.prompt)
    const endpoint = endpointProblemsOf(record.model_name)
    return prompt === undefined ? endpoint : Effect.map(endpoint, (problems) => [{ key: "prompt", message: prompt }, ...problems])
  }

  // what `query` does before its wait, and the wait as a plain call (the run's hot path)
  const prepare = (record: PromptRecord.IdentifiedRecord): Effect.Effect<Provider.Call, ProviderError.ProviderError> => {
    if (EmptyPrompt.is(record.prompt)) return EmptyPrompt.error()
    const problem = promptProblem(record.prompt)
    if (problem !== undefined) {
      return Effect.fail(new ProviderError.PermanentError({ reason: "validation", message: `${api}: ${problem}` }))
    }
    return Effect.flatMap(endpointOf(record.model_name), (url) =>
      Either.map(
        HttpJson.prepare({
          api,
          url,
          body: { text: record.prompt, model: record.model_name, options: record.parameters ?? {} },
          schema: Reply,
          onStatus: (status, message, headers) => ProviderFailure.fromStatus(status, `${api}: ${message}`, headers),
          // an older server answers a wrong model with `{"error": ...}` and status 200: permanent
          onErrorBody: (error, body, status) =>
            "response" in body ? undefined : new ProviderError.PermanentError({
              reason: /not found/i.test(error) ? "not_found" : "bad_request",
              message: `${api}: ${error}`,
              status
            })
        }),
        (call) =>
          Provider.mapCall(call, (reply): Provider.ProviderResponse => ({
            response: reply.response[0].generated_text,
            fields: reply.model === undefined ? {} : { model: reply.model }
          }))
      ))
  }

  // every wait on the API is a `Provider.call`: the request timeout ends it on the line's own fiber
  return { api, check, prepare, query: Provider.queryOf(prepare), timesOut: true }
})

/**
 * Installs the `quart` provider as its own registry entry (composes with other provider layers
 * via `Layer.mergeAll`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make)
