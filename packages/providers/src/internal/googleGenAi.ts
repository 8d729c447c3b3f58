/**
 * What the `gemini` and `vertexai` providers share over `@google/genai`: reading prompto's
 * prompt shapes (string, list of strings, `{role, parts}` histories with a leading system
 * message), building `generateContent` requests (contents, `systemInstruction`, safety settings
 * from `safety_filter`, generation config from `parameters`), reading responses the way prompto
 * writes them (`safety_attributes`, blocked responses as `""`) and classifying the SDK's errors.
 *
 * Besides the text, an answer's `functionCall` parts are written as the record's `tool_calls`,
 * each `{ id, name, arguments, raw }` (`arguments` is the call's `args`, `raw` the part as sent,
 * with its `thoughtSignature`), and the text of its `thought: true` parts as `reasoning` (kept
 * out of `response`); for a chat sent turn by turn both are lists, one entry per turn.
 *
 * @since 0.1.0
 * @internal
 */
import type {
  Content,
  GenerateContentConfig,
  GenerateContentResponse,
  GoogleGenAI,
  HarmBlockThreshold,
  HarmCategory,
  Part
} from "@google/genai"
import type * as GenAiSdk from "@google/genai"
import { type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { Effect, Option } from "effect"
import * as Media from "../Media.js"
import * as ModelConfig from "../ModelConfig.js"
import * as ProviderFailure from "../ProviderFailure.js"
import * as AnswerFields from "./answerFields.js"
import * as EmptyPrompt from "./emptyPrompt.js"
import * as Usage from "./usage.js"

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A client and the endpoint it sends to (named in connection errors).
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly client: GoogleGenAI
  /** The base URL requests go to, e.g. `https://generativelanguage.googleapis.com`. */
  readonly endpoint: string
}

/**
 * One API over the SDK: its name, whether it is Vertex AI, its configuration check and how to
 * get the (cached) client for a model.
 *
 * @since 0.1.0
 * @category models
 */
export interface Backend {
  readonly api: string
  readonly vertex: boolean
  /** Configuration problems for a model (missing variables), on key `api`. */
  readonly checkConfig: (modelName: string) => Effect.Effect<ReadonlyArray<Provider.RecordProblem>>
  /** The client for a model; a missing variable is a permanent configuration error. */
  readonly client: (modelName: string) => Effect.Effect<Connection, ProviderError.PermanentError>
  /** API-specific error classification tried before the shared one (e.g. missing credentials). */
  readonly classify?: ((error: unknown) => ProviderError.ProviderError | undefined) | undefined
}

/**
 * A part as written in the prompt, before media files are read.
 *
 * @since 0.1.0
 * @category models
 */
export type PartSpec =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Media"; readonly media: string; readonly mimeType: string | undefined }
  | { readonly _tag: "Uri"; readonly uri: string; readonly mimeType: string }
  | { readonly _tag: "Uploaded"; readonly name: string; readonly mimeType: string | undefined }

/**
 * A message of a history, after the optional system message.
 *
 * @since 0.1.0
 * @category models
 */
export interface MessageSpec {
  readonly role: "user" | "model"
  readonly parts: ReadonlyArray<PartSpec>
}

/**
 * What a prompt asks for.
 *
 * @since 0.1.0
 * @category models
 */
export type Plan =
  | { readonly _tag: "Single"; readonly parts: ReadonlyArray<PartSpec> }
  | { readonly _tag: "Turns"; readonly turns: ReadonlyArray<string> }
  | {
    readonly _tag: "History"
    readonly system: ReadonlyArray<PartSpec> | undefined
    readonly messages: ReadonlyArray<MessageSpec>
  }

// ---------------------------------------------------------------------------
// prompts
// ---------------------------------------------------------------------------

/**
 * prompto's TypeError text for a prompt of the wrong shape.
 *
 * @since 0.1.0
 * @category prompts
 */
export const shapeMessage = (api: string): string =>
  `if api == '${api}', then the prompt must be a str, list[str], or list[dict[str,str]] where the dictionary ` +
  `contains the keys 'role' and 'parts' only, and the values for 'role' must be one of 'user' or 'model', ` +
  `except for the first message in the list of dictionaries can be a system message with the key 'role' set to 'system'.`

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const nonEmptyString = (value: unknown): value is string => typeof value === "string" && value.length > 0

type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problems: ReadonlyArray<string> }

/** One part: a string, `{type: "text", text | media}`, a media file, a `uri` part or an uploaded file. */
const parsePart = (part: unknown, vertex: boolean): Parsed<PartSpec> => {
  if (typeof part === "string") return { ok: true, value: { _tag: "Text", text: part } }
  if (!isRecord(part)) return { ok: false, problems: ["a part must be a string or a {\"type\", \"media\"} dictionary"] }
  const type = part.type
  if (type === undefined) {
    // `{text: "..."}` is the SDK's own shape; accept it as text
    if (typeof part.text === "string") return { ok: true, value: { _tag: "Text", text: part.text } }
    return { ok: false, problems: ["Multimedia type is not specified"] }
  }
  if (typeof type !== "string") return { ok: false, problems: ["\"type\" must be a string"] }
  if (type === "text") {
    const text = part.text ?? part.media
    return typeof text === "string"
      ? { ok: true, value: { _tag: "Text", text } }
      : { ok: false, problems: ["a text part needs \"text\" (or \"media\") as a string"] }
  }
  const media = part.media
  if (media === undefined) return { ok: false, problems: ["File location is not specified"] }
  if (!nonEmptyString(media)) return { ok: false, problems: ["\"media\" must be a non-empty string"] }
  const mimeType = part.mime_type
  if (mimeType !== undefined && !nonEmptyString(mimeType)) {
    return { ok: false, problems: ["\"mime_type\" must be a non-empty string"] }
  }
  if (type === "uri") {
    return mimeType === undefined
      ? { ok: false, problems: ["Mime type is not specified. Required for uri"] }
      : { ok: true, value: { _tag: "Uri", uri: media, mimeType } }
  }
  const uploaded = part.uploaded_filename
  if (uploaded !== undefined) {
    if (vertex) {
      return {
        ok: false,
        problems: [
          "\"uploaded_filename\" is a Gemini API feature; on Vertex AI use {\"type\": \"uri\", \"media\": \"gs://...\", \"mime_type\": ...}"
        ]
      }
    }
    if (!nonEmptyString(uploaded)) return { ok: false, problems: ["\"uploaded_filename\" must be a non-empty string"] }
    return { ok: true, value: { _tag: "Uploaded", name: uploaded, mimeType } }
  }
  if (Media.isUrl(media)) {
    const inferred = mimeType ?? Media.mimeTypeOf(media)
    return inferred === "application/octet-stream"
      ? { ok: false, problems: [`Mime type is not specified. Required for the URL ${media}`] }
      : { ok: true, value: { _tag: "Uri", uri: media, mimeType: inferred } }
  }
  return { ok: true, value: { _tag: "Media", media, mimeType } }
}

/** A `parts` value: a string, one part dictionary, or a list of those. */
const parseParts = (parts: unknown, vertex: boolean): Parsed<ReadonlyArray<PartSpec>> => {
  const list: ReadonlyArray<unknown> = Array.isArray(parts) ? parts : [parts]
  if (list.length === 0) return { ok: false, problems: ["\"parts\" must not be empty"] }
  const specs: Array<PartSpec> = []
  const problems: Array<string> = []
  list.forEach((part, index) => {
    const parsed = parsePart(part, vertex)
    if (parsed.ok) specs.push(parsed.value)
    else problems.push(...parsed.problems.map((problem) => Array.isArray(parts) ? `part ${index}: ${problem}` : problem))
  })
  return problems.length === 0 ? { ok: true, value: specs } : { ok: false, problems }
}

const isHistoryMessage = (message: unknown, index: number): boolean => {
  if (!isRecord(message)) return false
  const keys = Object.keys(message)
  if (keys.length !== 2 || !keys.includes("role") || !keys.includes("parts")) return false
  return message.role === "user" || message.role === "model" || (index === 0 && message.role === "system")
}

/**
 * Reads a prompt as prompto accepts it for Gemini and Vertex AI, or lists what is wrong with it
 * (messages for key `prompt`).
 *
 * @since 0.1.0
 * @category prompts
 */
export const plan = (prompt: unknown, api: string, vertex: boolean): Parsed<Plan> => {
  if (typeof prompt === "string") return { ok: true, value: { _tag: "Single", parts: [{ _tag: "Text", text: prompt }] } }
  if (!Array.isArray(prompt)) return { ok: false, problems: [shapeMessage(api)] }
  if (prompt.length === 0) return { ok: false, problems: [EmptyPrompt.message] }
  if (prompt.every((turn) => typeof turn === "string")) {
    return { ok: true, value: { _tag: "Turns", turns: prompt as ReadonlyArray<string> } }
  }
  if (!prompt.every(isHistoryMessage)) return { ok: false, problems: [shapeMessage(api)] }
  const messages = prompt as ReadonlyArray<{ readonly role: string; readonly parts: unknown }>
  const problems: Array<string> = []
  const parsed = messages.map((message, index) => {
    const parts = parseParts(message.parts, vertex)
    if (!parts.ok) problems.push(...parts.problems.map((problem) => `message ${index}: ${problem}`))
    return { role: message.role, parts: parts.ok ? parts.value : [] }
  })
  const [first, ...rest] = parsed
  const system = first?.role === "system" ? first.parts : undefined
  const history = system === undefined ? parsed : rest
  if (history.length === 0) problems.push("a history needs at least one user or model message after the system message")
  if (problems.length > 0) return { ok: false, problems }
  return {
    ok: true,
    value: {
      _tag: "History",
      system,
      messages: history.map((message) => ({ role: message.role as "user" | "model", parts: message.parts }))
    }
  }
}

const planParts = (value: Plan): ReadonlyArray<PartSpec> =>
  value._tag === "Single"
    ? value.parts
    : value._tag === "Turns"
    ? []
    : [...(value.system ?? []), ...value.messages.flatMap((message) => message.parts)]

// ---------------------------------------------------------------------------
// safety_filter and parameters
// ---------------------------------------------------------------------------

const thresholds: Readonly<Record<string, HarmBlockThreshold>> = {
  none: "BLOCK_NONE" as HarmBlockThreshold,
  few: "BLOCK_ONLY_HIGH" as HarmBlockThreshold,
  some: "BLOCK_MEDIUM_AND_ABOVE" as HarmBlockThreshold,
  default: "BLOCK_MEDIUM_AND_ABOVE" as HarmBlockThreshold,
  most: "BLOCK_LOW_AND_ABOVE" as HarmBlockThreshold
}

/**
 * The four harm categories prompto sets a threshold on.
 *
 * @since 0.1.0
 * @category safety
 */
export const harmCategories: ReadonlyArray<HarmCategory> = [
  "HARM_CATEGORY_DANGEROUS_CONTENT" as HarmCategory,
  "HARM_CATEGORY_HATE_SPEECH" as HarmCategory,
  "HARM_CATEGORY_HARASSMENT" as HarmCategory,
  "HARM_CATEGORY_SEXUALLY_EXPLICIT" as HarmCategory
]

/**
 * The `safety_filter` values prompto accepts.
 *
 * @since 0.1.0
 * @category safety
 */
export const safetyFilters: ReadonlyArray<string> = Object.keys(thresholds)

/**
 * Safety settings for a `safety_filter` (prompto's default is `default`), or undefined if invalid.
 *
 * @since 0.1.0
 * @category safety
 */
export const safetySettings = (filter: unknown): GenerateContentConfig["safetySettings"] | undefined => {
  const threshold = thresholds[filter === undefined ? "default" : String(filter)]
  return threshold === undefined ? undefined : harmCategories.map((category) => ({ category, threshold }))
}

type ParameterType = "number" | "integer" | "boolean" | "string" | "strings" | "object" | "objects" | "any"

/** Generation config fields (camelCase, as the SDK names them) and their types. */
const generationFields: Readonly<Record<string, ParameterType>> = {
  temperature: "number",
  topP: "number",
  topK: "number",
  candidateCount: "integer",
  maxOutputTokens: "integer",
  stopSequences: "strings",
  responseLogprobs: "boolean",
  logprobs: "integer",
  presencePenalty: "number",
  frequencyPenalty: "number",
  seed: "integer",
  responseMimeType: "string",
  responseSchema: "any",
  responseJsonSchema: "any",
  responseModalities: "strings",
  mediaResolution: "string",
  speechConfig: "any",
  thinkingConfig: "object",
  imageConfig: "object",
  // not generation config but request fields the SDK takes in the same config: without them a
  // model has no tools to call, and nothing to write as `tool_calls`
  tools: "objects",
  toolConfig: "object"
}
const geminiOnlyFields: Readonly<Record<string, ParameterType>> = { enableEnhancedCivicAnswers: "boolean" }
const vertexOnlyFields: Readonly<Record<string, ParameterType>> = {
  routingConfig: "object",
  modelSelectionConfig: "object",
  audioTimestamp: "boolean"
}

const camelCase = (key: string): string => key.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase())

const fieldType = (field: string, vertex: boolean): ParameterType | undefined =>
  generationFields[field] ?? (vertex ? vertexOnlyFields[field] : geminiOnlyFields[field])

const hasType = (value: unknown, type: ParameterType): boolean => {
  switch (type) {
    case "number":
      return typeof value === "number" && Number.isFinite(value)
    case "integer":
      return typeof value === "number" && Number.isInteger(value)
    case "boolean":
      return typeof value === "boolean"
    case "string":
      return typeof value === "string"
    case "strings":
      return Array.isArray(value) && value.every((item) => typeof item === "string")
    case "object":
      return isRecord(value)
    case "objects":
      return Array.isArray(value) && value.every(isRecord)
    case "any":
      return true
  }
}

const typeNames: Readonly<Record<ParameterType, string>> = {
  number: "a number",
  integer: "an integer",
  boolean: "a boolean",
  string: "a string",
  strings: "a list of strings",
  object: "a dictionary",
  objects: "a list of dictionaries",
  any: "any value"
}

/**
 * Problems with `parameters` as a generation config: unknown fields (snake_case as in prompto,
 * or the SDK's camelCase), fields given twice, values of the wrong type.
 *
 * @since 0.1.0
 * @category parameters
 */
export const checkParameters = (
  parameters: Readonly<Record<string, unknown>> | undefined,
  vertex: boolean
): ReadonlyArray<Provider.RecordProblem> => {
  const problems: Array<Provider.RecordProblem> = []
  const seen = new Map<string, string>()
  for (const [key, value] of Object.entries(parameters ?? {})) {
    const field = camelCase(key)
    const type = fieldType(field, vertex)
    if (type === undefined) {
      problems.push({
        key: `parameters.${key}`,
        message: `Invalid generation_config parameter: GenerationConfig got an unexpected keyword argument '${key}'`
      })
      continue
    }
    const other = seen.get(field)
    if (other !== undefined) {
      problems.push({ key: `parameters.${key}`, message: `Invalid generation_config parameter: '${key}' repeats '${other}'` })
    }
    seen.set(field, key)
    if (!hasType(value, type)) {
      problems.push({ key: `parameters.${key}`, message: `Invalid generation_config parameter: '${key}' must be ${typeNames[type]}` })
    }
  }
  return problems
}

/**
 * `parameters` as the SDK's generation config fields (top-level keys in camelCase, values as given).
 *
 * @since 0.1.0
 * @category parameters
 */
export const generationConfig = (parameters: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> =>
  Object.fromEntries(Object.entries(parameters ?? {}).map(([key, value]) => [camelCase(key), value]))

// ---------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

const badUrlMessage = (variable: string, modelName: string): string =>
  `the endpoint in ${ModelConfig.candidates(variable, modelName).map((name) => `"${name}"`).join(" or ")} is not an http(s) URL`

/**
 * A problem (key `api`) if an endpoint override is set but is not an http(s) URL.
 *
 * @since 0.1.0
 * @category configuration
 */
export const checkBaseUrl = (variable: string, modelName: string): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.map(ModelConfig.lookup(variable, modelName), (value) =>
    Option.isSome(value) && !isHttpUrl(value.value) ? [{ key: "api", message: badUrlMessage(variable, modelName) }] : [])

/**
 * An endpoint override, if set; a value that is not an http(s) URL is a configuration error.
 *
 * @since 0.1.0
 * @category configuration
 */
export const baseUrl = (variable: string, modelName: string): Effect.Effect<string | undefined, ProviderError.PermanentError> =>
  Effect.flatMap(ModelConfig.lookup(variable, modelName), (value) =>
    Option.isNone(value)
      ? Effect.succeed(undefined)
      : isHttpUrl(value.value)
      ? Effect.succeed(value.value)
      : Effect.fail(new ProviderError.PermanentError({ reason: "configuration", message: badUrlMessage(variable, modelName) })))

/**
 * The `@google/genai` SDK module. It is imported when the first client is made, so a run that
 * sends nothing to Gemini or Vertex AI (and `prompto --help`) never loads it.
 *
 * @since 0.1.0
 * @category models
 */
export type Sdk = typeof GenAiSdk

/**
 * One client per configuration key, made on first use and reused, with the endpoint it sends to.
 *
 * @since 0.1.0
 * @category configuration
 */
export const cachedClient = (
  clients: Map<string, Connection>,
  api: string,
  key: ReadonlyArray<string>,
  endpoint: string,
  make: (sdk: Sdk) => GoogleGenAI
): Effect.Effect<Connection, ProviderError.PermanentError> =>
  Effect.suspend(() => {
    const id = JSON.stringify(key)
    const cached = clients.get(id)
    if (cached !== undefined) return Effect.succeed(cached)
    return Effect.tryPromise({
      try: async () => {
        const sdk = await import("@google/genai")
        // another fiber may have made it while the SDK was being imported
        const connection = clients.get(id) ?? { client: make(sdk), endpoint }
        clients.set(id, connection)
        return connection
      },
      catch: (error) =>
        new ProviderError.PermanentError({
          reason: "configuration",
          message: `${api}: cannot make the client: ${error instanceof Error ? error.message : String(error)}`
        })
    })
  })

// ---------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------

/**
 * Every problem with a record: prompt shape and parts, media files, `safety_filter`,
 * `parameters`, configuration.
 *
 * @since 0.1.0
 * @category check
 */
export const check = (backend: Backend, record: PromptRecord.PromptRecord): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.gen(function*() {
    const problems: Array<Provider.RecordProblem> = []
    const parsed = plan(record.prompt, backend.api, backend.vertex)
    if (!parsed.ok) {
      problems.push(...parsed.problems.map((message) => ({ key: "prompt", message })))
    } else {
      const files = planParts(parsed.value).flatMap((part) => (part._tag === "Media" ? [part.media] : []))
      problems.push(...yield* Media.checkExists(files))
    }
    if (safetySettings(record.safety_filter) === undefined) {
      problems.push({
        key: "safety_filter",
        message: `Invalid safety_filter value ${JSON.stringify(record.safety_filter)}: must be one of ${
          safetyFilters.map((filter) => `"${filter}"`).join(", ")
        }`
      })
    }
    problems.push(...checkParameters(record.parameters, backend.vertex))
    problems.push(...yield* backend.checkConfig(record.model_name))
    return problems
  })

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

interface GoogleErrorBody {
  readonly error?: {
    readonly code?: number
    readonly message?: string
    readonly status?: string
    readonly details?: ReadonlyArray<{ readonly "@type"?: string; readonly retryDelay?: string }>
  }
}

const parseErrorBody = (message: string): GoogleErrorBody | undefined => {
  try {
    const body: unknown = JSON.parse(message)
    return isRecord(body) ? body as GoogleErrorBody : undefined
  } catch {
    return undefined
  }
}

/** `"7s"` / `"1.5s"` (protobuf Duration JSON) in milliseconds. */
const durationMs = (value: string | undefined): number | undefined => {
  const match = value === undefined ? null : /^(\d+(?:\.\d+)?)s$/.exec(value.trim())
  return match === null ? undefined : Math.round(Number(match[1]) * 1000)
}

/**
 * The typed error for what the SDK threw. `ApiError` carries the status and Google's error body
 * as its message (not the response headers): the message is the body's `error.message`, and a
 * 429's wait comes from the body's `google.rpc.RetryInfo.retryDelay`. A connection failure names
 * `endpoint`.
 *
 * @since 0.1.0
 * @category errors
 */
export const classify = (error: unknown, backend: Backend, endpoint?: string): ProviderError.ProviderError => {
  const special = backend.classify?.(error)
  if (special !== undefined) return special
  const e = error as { readonly status?: unknown; readonly message?: unknown; readonly name?: unknown }
  if (typeof e?.status === "number" && e.status >= 400 && e?.name === "ApiError" && typeof e.message === "string") {
    const body = parseErrorBody(e.message)?.error
    const detail = body?.message ?? e.message
    const message = `${backend.api}: ${detail}${body?.status === undefined ? "" : ` (${e.status} ${body.status})`}`
    const wait = durationMs(body?.details?.find((item) => item["@type"]?.endsWith("google.rpc.RetryInfo"))?.retryDelay)
    return ProviderFailure.fromStatus(e.status, message, wait === undefined ? undefined : { "retry-after-ms": String(wait) })
  }
  return ProviderFailure.fromUnknown(error, backend.api, endpoint)
}

const call = <A>(
  backend: Backend,
  endpoint: string,
  run: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, ProviderError.ProviderError> =>
  Provider.callPromise(run, (error) => classify(error, backend, endpoint))

// ---------------------------------------------------------------------------
// requests
// ---------------------------------------------------------------------------

const toPart = (backend: Backend, connection: Connection, spec: PartSpec): Effect.Effect<Part, ProviderError.ProviderError> => {
  switch (spec._tag) {
    case "Text":
      return Effect.succeed({ text: spec.text })
    case "Uri":
      return Effect.succeed({ fileData: { fileUri: spec.uri, mimeType: spec.mimeType } })
    case "Media":
      return Effect.map(Media.read(spec.media), (file) => ({
        inlineData: { data: file.base64, mimeType: spec.mimeType ?? file.mimeType }
      }))
    case "Uploaded":
      return Effect.flatMap(
        call(backend, connection.endpoint, (signal) =>
          connection.client.files.get({ name: spec.name, config: { abortSignal: signal } })),
        (file) => {
          const mimeType = spec.mimeType ?? file.mimeType
          return file.uri === undefined || mimeType === undefined
            ? Effect.fail(
              new ProviderError.PermanentError({
                reason: "validation",
                message: `${backend.api}: the uploaded file ${spec.name} has no uri or mime type`
              })
            )
            : Effect.succeed<Part>({ fileData: { fileUri: file.uri, mimeType } })
        }
      )
  }
}

const toParts = (backend: Backend, connection: Connection, specs: ReadonlyArray<PartSpec>) =>
  Effect.forEach(specs, (spec) => toPart(backend, connection, spec))

/** One answer, read as prompto reads it. */
interface Answer {
  readonly text: string
  readonly extras: AnswerFields.Extras
  readonly content: Content | undefined
  readonly safetyAttributes: Readonly<Record<string, string>>
  readonly finishReason: string
  readonly model: string | undefined
  readonly usage: GenerateContentResponse["usageMetadata"]
}

const probabilityValues: Readonly<Record<string, string>> = {
  HARM_PROBABILITY_UNSPECIFIED: "0",
  NEGLIGIBLE: "1",
  LOW: "2",
  MEDIUM: "3",
  HIGH: "4"
}

/**
 * prompto's `safety_attributes`: category -> probability (the enum's number, as prompto's
 * `str(probability)` wrote it), `blocked` as a Python list of booleans, `finish_reason`. With
 * no candidate at all (the prompt was blocked): `{blocked: "True", finish_reason: "block_reason: <reason>"}`.
 *
 * @since 0.1.0
 * @category responses
 */
export const answer = (response: GenerateContentResponse): Answer => {
  const candidate = response.candidates?.[0]
  const usage = response.usageMetadata
  const model = response.modelVersion
  if (candidate === undefined) {
    const finishReason = `block_reason: ${response.promptFeedback?.blockReason ?? "OTHER"}`
    return {
      text: "",
      extras: AnswerFields.none,
      content: undefined,
      safetyAttributes: { blocked: "True", finish_reason: finishReason },
      finishReason,
      model,
      usage
    }
  }
  const ratings = candidate.safetyRatings ?? []
  const finishReason = candidate.finishReason ?? "FINISH_REASON_UNSPECIFIED"
  const safetyAttributes: Record<string, string> = {}
  for (const rating of ratings) {
    const probability = rating.probability ?? "HARM_PROBABILITY_UNSPECIFIED"
    safetyAttributes[rating.category ?? "HARM_CATEGORY_UNSPECIFIED"] = probabilityValues[probability] ?? probability
  }
  safetyAttributes.blocked = `[${ratings.map((rating) => (rating.blocked === true ? "True" : "False")).join(", ")}]`
  safetyAttributes.finish_reason = finishReason
  const parts = candidate.content?.parts ?? []
  const text = parts.filter((part) => part.thought !== true && typeof part.text === "string").map((part) => part.text).join("")
  const extras: AnswerFields.Extras = {
    toolCalls: parts.flatMap((part) =>
      part.functionCall === undefined
        ? []
        : [AnswerFields.toolCall(part.functionCall.id, part.functionCall.name, part.functionCall.args ?? {}, part)]
    ),
    reasoning: AnswerFields.joinReasoning(
      parts.flatMap((part) => (part.thought === true && typeof part.text === "string" ? [part.text] : []))
    )
  }
  const content = parts.length > 0 ? { role: "model", parts } : undefined
  return { text, extras, content, safetyAttributes, finishReason, model, usage }
}

/**
 * The usage of one answer. `candidatesTokenCount` leaves out thinking tokens, which are billed
 * as output too, so they are added into `completion_tokens` and also kept on their own; cached
 * content is already a part of `promptTokenCount`. The three counts default to 0 (a blocked
 * prompt reports no candidate count); the details are written only when reported.
 */
const toUsage = (metadata: NonNullable<Answer["usage"]>): Usage.Usage => {
  const thoughts = Usage.count(metadata.thoughtsTokenCount)
  return Usage.make({
    prompt_tokens: metadata.promptTokenCount ?? 0,
    completion_tokens: (metadata.candidatesTokenCount ?? 0) + (thoughts ?? 0),
    total_tokens: metadata.totalTokenCount ?? 0,
    cached_tokens: Usage.count(metadata.cachedContentTokenCount),
    cache_write_tokens: undefined,
    reasoning_tokens: thoughts
  })
}

const respond = (answers: ReadonlyArray<Answer>, multiTurn: boolean): Provider.ProviderResponse => {
  const last = answers[answers.length - 1]
  const usage = Usage.sum(answers.map((item) => (item.usage === undefined ? undefined : toUsage(item.usage))))
  return {
    response: multiTurn ? answers.map((item) => item.text) : last?.text ?? "",
    ...(usage === undefined ? {} : { usage }),
    fields: {
      safety_attributes: multiTurn ? answers.map((item) => item.safetyAttributes) : last?.safetyAttributes,
      finish_reason: last?.finishReason,
      ...AnswerFields.fields(multiTurn ? answers.map((item) => item.extras) : last === undefined ? [] : [last.extras], multiTurn),
      ...(last?.model === undefined ? {} : { model: last.model })
    }
  }
}

/**
 * Sends a record. A `list[str]` prompt is sent turn by turn with the history of earlier turns
 * and answers; a blocked turn (no text) answers `""` and ends the chat, since there is no answer
 * to carry into the history.
 *
 * @since 0.1.0
 * @category requests
 */
export const query = (
  backend: Backend,
  record: PromptRecord.IdentifiedRecord
): Effect.Effect<Provider.ProviderResponse, ProviderError.ProviderError> =>
  Effect.gen(function*() {
    if (EmptyPrompt.is(record.prompt)) return yield* EmptyPrompt.error()
    const parsed = plan(record.prompt, backend.api, backend.vertex)
    if (!parsed.ok) {
      return yield* new ProviderError.PermanentError({ reason: "validation", message: parsed.problems.join("; ") })
    }
    const safety = safetySettings(record.safety_filter)
    if (safety === undefined) {
      return yield* new ProviderError.PermanentError({
        reason: "validation",
        message: `Invalid safety_filter value ${JSON.stringify(record.safety_filter)}`
      })
    }
    const parameterProblems = checkParameters(record.parameters, backend.vertex)
    if (parameterProblems.length > 0) {
      return yield* new ProviderError.PermanentError({
        reason: "validation",
        message: parameterProblems.map((problem) => `${problem.key}: ${problem.message}`).join("; ")
      })
    }
    const connection = yield* backend.client(record.model_name)
    const value = parsed.value
    const baseConfig: GenerateContentConfig = { ...generationConfig(record.parameters), safetySettings: safety }
    if (value._tag === "History" && value.system !== undefined) {
      baseConfig.systemInstruction = { parts: yield* toParts(backend, connection, value.system) }
    }
    const generate = (contents: Array<Content>) =>
      Effect.map(
        call(backend, connection.endpoint, (signal) =>
          connection.client.models.generateContent({
            model: record.model_name,
            contents,
            config: { ...baseConfig, abortSignal: signal }
          })),
        answer
      )

    if (value._tag === "Turns") {
      const history: Array<Content> = []
      const answers: Array<Answer> = []
      for (const turn of value.turns) {
        const user: Content = { role: "user", parts: [{ text: turn }] }
        const reply = yield* generate([...history, user])
        answers.push(reply)
        if (reply.content === undefined) break
        history.push(user, reply.content)
      }
      return respond(answers, true)
    }
    const contents: Array<Content> = value._tag === "Single"
      ? [{ role: "user", parts: yield* toParts(backend, connection, value.parts) }]
      : yield* Effect.forEach(value.messages, (message) =>
        Effect.map(toParts(backend, connection, message.parts), (parts): Content => ({ role: message.role, parts })))
    return respond([yield* generate(contents)], false)
  })

/**
 * A provider over a backend.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeProvider = (spec: Backend): Provider.Provider => {
  // the variables are read once per model, not for every line and request
  const backend: Backend = {
    ...spec,
    // the SDK is loaded by a model's first check, before its first send (see `openAiChat`)
    checkConfig: ModelConfig.perModel((modelName) =>
      Effect.zipLeft(spec.checkConfig(modelName), Effect.ignore(Effect.tryPromise(() => import("@google/genai"))))
    ),
    client: ModelConfig.perModel(spec.client)
  }
  return {
    api: backend.api,
    check: (record) => check(backend, record),
    // every wait on the API is a `Provider.callPromise`: the request timeout ends it on the line's own fiber
    timesOut: true,
    query: (record) => query(backend, record)
  }
}
