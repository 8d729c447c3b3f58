/**
 * The `vertexai` API: Gemini models on Google Cloud Vertex AI, over the Vertex mode of the
 * official `@google/genai` SDK (`vertexai: true, project, location`).
 *
 * Configuration, per record through `Config` with prompto's per-model override
 * (`VAR_<model id>` before `VAR`):
 *
 * - `VERTEXAI_PROJECT_ID`: the Google Cloud project. prompto lets the Python Vertex SDK fall back
 *   to gcloud's default project; we have no gcloud, so the fallback is `GOOGLE_CLOUD_PROJECT`
 *   (the variable the Google SDKs read), and with neither set the record is reported by `check`
 *   and fails with a configuration error.
 * - `VERTEXAI_LOCATION_ID` (optional): the region; else `GOOGLE_CLOUD_LOCATION`; else
 *   `us-central1`, the Python Vertex SDK's default that prompto relied on.
 * - `VERTEXAI_BASE_URL` (optional): the endpoint instead of `https://<location>-aiplatform.googleapis.com`;
 *   requests go to `<base>/v1beta1/projects/<project>/locations/<location>/publishers/google/models/<model>:generateContent`.
 *
 * Authentication is Google's Application Default Credentials (google-auth-library, as the SDK
 * does): `gcloud auth application-default login`, `GOOGLE_APPLICATION_CREDENTIALS` or the
 * metadata server. No credentials is a permanent `configuration` error saying so. `make` also
 * takes the SDK's `googleAuthOptions` (a key file, a credentials object, an auth client) to use
 * instead of ADC.
 *
 * Prompts, `safety_filter`, `parameters` and the completed record are as for `gemini` (see
 * `Gemini`), except that uploaded files (`uploaded_filename`) are a Gemini API feature: on
 * Vertex AI, use `{type: "uri", media: "gs://...", mime_type}` parts.
 *
 * @since 0.1.0
 */
import type { GoogleGenAIOptions } from "@google/genai"
import { Provider, ProviderError } from "@prompto/core"
import { Config, Effect, Layer, Option } from "effect"
import * as GoogleGenAi from "./internal/googleGenAi.js"
import * as ModelConfig from "./ModelConfig.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "vertexai"

/**
 * The variable holding the Google Cloud project.
 *
 * @since 0.1.0
 * @category constants
 */
export const projectVariable = "VERTEXAI_PROJECT_ID"

/**
 * The variable holding the location (region).
 *
 * @since 0.1.0
 * @category constants
 */
export const locationVariable = "VERTEXAI_LOCATION_ID"

/**
 * The variable overriding the endpoint.
 *
 * @since 0.1.0
 * @category constants
 */
export const baseUrlVariable = "VERTEXAI_BASE_URL"

/**
 * The location used when neither `VERTEXAI_LOCATION_ID` nor `GOOGLE_CLOUD_LOCATION` is set.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLocation = "us-central1"

/**
 * The endpoint the SDK sends to when `VERTEXAI_BASE_URL` is not set: the location's regional
 * endpoint (the global one for `global`).
 *
 * @since 0.1.0
 * @category utils
 */
export const defaultBaseUrl = (location: string): string =>
  location === "global" ? "https://aiplatform.googleapis.com" : `https://${location}-aiplatform.googleapis.com`

/**
 * Options of the provider.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * google-auth-library options used instead of Application Default Credentials, e.g.
   * `{ keyFilename: "key.json" }` or `{ credentials: {...} }`.
   */
  readonly googleAuthOptions?: GoogleGenAIOptions["googleAuthOptions"] | undefined
}

const plain = (name: string): Effect.Effect<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.option,
    Effect.map(Option.filter((value) => value.trim() !== "")),
    Effect.orElseSucceed(() => Option.none<string>())
  )

const projectOf = (modelName: string): Effect.Effect<Option.Option<string>> =>
  Effect.flatMap(
    ModelConfig.lookup(projectVariable, modelName),
    (project) => (Option.isSome(project) ? Effect.succeed(project) : plain("GOOGLE_CLOUD_PROJECT"))
  )

const locationOf = (modelName: string): Effect.Effect<string> =>
  Effect.flatMap(
    ModelConfig.lookup(locationVariable, modelName),
    (location) =>
      Option.isSome(location)
        ? Effect.succeed(location.value)
        : Effect.map(plain("GOOGLE_CLOUD_LOCATION"), Option.getOrElse(() => defaultLocation))
  )

const missingProject = (modelName: string): string =>
  `${ModelConfig.missingMessage(projectVariable, modelName)} (or "GOOGLE_CLOUD_PROJECT"): the Google Cloud project for Vertex AI`

/**
 * What google-auth-library throws when it finds no credentials, or cannot read the ones named.
 *
 * @since 0.1.0
 * @category utils
 */
export const missingCredentials =
  /Could not load the default credentials|GOOGLE_APPLICATION_CREDENTIALS|The incoming JSON object does not (have|contain)/

const classify = (error: unknown): ProviderError.ProviderError | undefined => {
  const e = error as { readonly message?: unknown; readonly status?: unknown; readonly constructor?: { readonly name?: unknown } }
  const message = typeof e?.message === "string" ? e.message : String(error)
  if (typeof e?.status !== "number" && missingCredentials.test(message)) {
    return new ProviderError.PermanentError({
      reason: "configuration",
      message: `${api}: no Google credentials: ${message} ` +
        `(run "gcloud auth application-default login" or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file)`
    })
  }
  // the token endpoint refused the credentials (e.g. invalid_grant)
  if (e?.constructor?.name === "GaxiosError" && (e.status === 400 || e.status === 401 || e.status === 403)) {
    return new ProviderError.PermanentError({
      reason: "auth",
      message: `${api}: could not get an access token: ${message}`,
      status: e.status
    })
  }
  return undefined
}

/**
 * Makes the `vertexai` provider. It keeps one SDK client per (project, location, endpoint), made
 * on first use; credentials are Application Default Credentials unless `googleAuthOptions` are
 * given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Provider.Provider> =>
  Effect.sync(() => {
    const clients = new Map<string, GoogleGenAi.Connection>()
    return GoogleGenAi.makeProvider({
      api,
      vertex: true,
      classify,
      checkConfig: (modelName) =>
        Effect.gen(function*() {
          const project = yield* projectOf(modelName)
          const endpoint = yield* GoogleGenAi.checkBaseUrl(baseUrlVariable, modelName)
          return [...(Option.isNone(project) ? [{ key: "api", message: missingProject(modelName) }] : []), ...endpoint]
        }),
      client: (modelName) =>
        Effect.gen(function*() {
          const project = yield* projectOf(modelName)
          if (Option.isNone(project)) {
            return yield* new ProviderError.PermanentError({ reason: "configuration", message: missingProject(modelName) })
          }
          const location = yield* locationOf(modelName)
          const baseUrl = yield* GoogleGenAi.baseUrl(baseUrlVariable, modelName)
          const endpoint = baseUrl ?? defaultBaseUrl(location)
          return yield* GoogleGenAi.cachedClient(clients, api, [project.value, location, baseUrl ?? ""], endpoint, (sdk) =>
            new sdk.GoogleGenAI({
              vertexai: true,
              project: project.value,
              location,
              ...(options.googleAuthOptions === undefined ? {} : { googleAuthOptions: options.googleAuthOptions }),
              ...(baseUrl === undefined ? {} : { httpOptions: { baseUrl } })
            }))
        })
    })
  })

/**
 * Installs the `vertexai` provider as its own registry entry (composes with other provider
 * layers via `Layer.mergeAll`), authenticating with Application Default Credentials.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make())
