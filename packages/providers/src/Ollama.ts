/**
 * The `ollama` API over Ollama's native HTTP API, spoken over undici (`internal/httpJson`, no SDK),
 * as prompto sends it through the ollama Python client:
 *
 * - a string prompt: `POST {endpoint}/api/generate` with `{ model, prompt, stream: false, options }`;
 * - a list of strings: a multi-turn chat, each turn `POST {endpoint}/api/chat` with the earlier
 *   turns and answers as history; `response` is the list of answers;
 * - a history of `{ role, content }` messages (roles `system`, `user`, `assistant`, keys exactly
 *   those two): one `POST {endpoint}/api/chat` with `{ model, messages, stream: false, options }`.
 *
 * `parameters` are sent as `options`, as given. Where a reply holds them, a chat message's
 * `tool_calls` are written as the record's `tool_calls` (`{ id, name, arguments, raw }`) and a
 * thinking model's `thinking` text as `reasoning`; for a multi-turn prompt both are lists, one
 * entry per turn. The endpoint is `OLLAMA_API_ENDPOINT` (or `OLLAMA_API_ENDPOINT_<model id>`),
 * read once per model, and parsed as the ollama client parses its host (`localhost` is
 * `http://localhost:11434`). prompto's ollama API takes no images (its
 * messages must have exactly `role` and `content`), so neither does this one.
 *
 * Errors: "try pulling it first" (the model is not downloaded) and "invalid options" are
 * permanent, as in prompto; any other status is classified by `ProviderFailure.fromStatus`; a
 * 200 whose body is not Ollama's JSON is transient.
 *
 * @since 0.1.0
 */
import { type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { Effect, Either, Layer, Option, Schema } from "effect"
import * as AnswerFields from "./internal/answerFields.js"
import * as EmptyPrompt from "./internal/emptyPrompt.js"
import * as HttpJson from "./internal/httpJson.js"
import * as ProviderFailure from "./ProviderFailure.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "ollama"

/**
 * The variable naming the Ollama server (per-model variants `OLLAMA_API_ENDPOINT_<model id>`).
 *
 * @since 0.1.0
 * @category constants
 */
export const endpointVariable = "OLLAMA_API_ENDPOINT"

/**
 * The roles a chat history may use (prompto's `ollama_chat_roles`).
 *
 * @since 0.1.0
 * @category constants
 */
export const chatRoles: ReadonlyArray<string> = ["system", "user", "assistant"]

/**
 * One message of an Ollama chat.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly role: string
  readonly content: string
}

/**
 * How a prompt is sent: one generate call, a chat turn by turn, or one chat call with a history.
 *
 * @since 0.1.0
 * @category models
 */
export type Plan =
  | { readonly _tag: "Generate"; readonly prompt: string }
  | { readonly _tag: "Turns"; readonly turns: ReadonlyArray<string> }
  | { readonly _tag: "History"; readonly messages: ReadonlyArray<Message> }

const shapeMessage =
  "if api == 'ollama', then the prompt must be a str, list[str], or list[dict[str,str]] where the dictionary " +
  "contains the keys 'role' and 'content' only, and the values for 'role' must be one of 'system', 'user' or 'assistant'"

const messageFault = (message: unknown, index: number): string | undefined => {
  if (!HttpJson.isRecord(message)) return `element ${index} is not a string or a {"role", "content"} message`
  const keys = Object.keys(message).sort()
  if (keys.length !== 2 || keys[0] !== "content" || keys[1] !== "role") {
    return `message ${index} has keys ${keys.map((key) => `"${key}"`).join(", ")}`
  }
  if (typeof message.role !== "string" || !chatRoles.includes(message.role)) {
    return `message ${index} has role ${JSON.stringify(message.role)}`
  }
  if (typeof message.content !== "string") return `message ${index} has content that is not a string`
  return undefined
}

/**
 * How a prompt is sent, or why it cannot be (prompto's meaning: a string, a list of strings, or a
 * list of `{ role, content }` messages with roles `system`, `user`, `assistant` and string content).
 *
 * @since 0.1.0
 * @category planning
 */
export const plan = (prompt: PromptRecord.Prompt): Either.Either<Plan, string> => {
  if (typeof prompt === "string") return Either.right({ _tag: "Generate", prompt })
  const items: ReadonlyArray<unknown> = prompt
  if (items.length === 0) return Either.left(EmptyPrompt.message)
  if (items.every((item) => typeof item === "string")) {
    return Either.right({ _tag: "Turns", turns: items as ReadonlyArray<string> })
  }
  for (const [index, item] of items.entries()) {
    const fault = messageFault(item, index)
    if (fault !== undefined) return Either.left(`${shapeMessage} (${fault})`)
  }
  return Either.right({ _tag: "History", messages: items as ReadonlyArray<Message> })
}

/**
 * The server's base URL from an endpoint value, parsed as the ollama Python client parses its
 * host: no scheme means `http` and port 11434 (`localhost` -> `http://localhost:11434`), a
 * trailing `/` is dropped, a path is kept. `None` if it is not a URL.
 *
 * @since 0.1.0
 * @category utils
 */
export const baseUrl = (endpoint: string): Option.Option<string> => {
  let value = endpoint.trim()
  const schemed = /^[a-z][a-z0-9+.-]*:\/\//i.test(value)
  if (!schemed) value = `http://${value.startsWith(":") ? `127.0.0.1${value}` : value}`
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Option.none()
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return Option.none()
  if (url.hostname === "") return Option.none()
  if (!schemed && url.port === "") url.port = "11434"
  const path = url.pathname.replace(/\/+$/, "")
  return Option.some(`${url.protocol}//${url.host}${path}`)
}

/**
 * What a reply of `/api/generate` or `/api/chat` holds, besides its text.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply {
  readonly text: string
  readonly extras?: AnswerFields.Extras | undefined
  readonly model?: string | undefined
  readonly done_reason?: string | undefined
  readonly prompt_eval_count?: number | undefined
  readonly eval_count?: number | undefined
}

const Counts = {
  model: Schema.optional(Schema.String),
  done_reason: Schema.optional(Schema.String),
  prompt_eval_count: Schema.optional(Schema.Number),
  eval_count: Schema.optional(Schema.Number)
}

const GenerateReply = Schema.Struct({ response: Schema.String, thinking: Schema.optional(Schema.String), ...Counts })
const ChatReply = Schema.Struct({
  message: Schema.Struct({
    content: Schema.String,
    thinking: Schema.optional(Schema.String),
    tool_calls: Schema.optional(Schema.Array(Schema.Unknown))
  }),
  ...Counts
})

/** The tool calls of a chat message, `{ function: { name, arguments } }` each, and its thinking text. */
const extrasOf = (toolCalls: ReadonlyArray<unknown> | undefined, thinking: string | undefined): AnswerFields.Extras => ({
  toolCalls: (toolCalls ?? []).filter(HttpJson.isRecord).map((call) => {
    const body = HttpJson.isRecord(call.function) ? call.function : {}
    return AnswerFields.toolCall(call.id, body.name, AnswerFields.parseArguments(body.arguments), call)
  }),
  reasoning: thinking === undefined ? undefined : AnswerFields.joinReasoning([thinking])
})

/**
 * The errors prompto does not retry, recognised by the server's message: a model that is not
 * downloaded ("try pulling it first") and invalid options. `undefined` for any other message.
 *
 * @since 0.1.0
 * @category errors
 */
export const permanentError = (
  message: string,
  modelName: string,
  status?: number
): ProviderError.PermanentError | undefined => {
  const withStatus = status === undefined ? {} : { status }
  if (message.includes("try pulling it first")) {
    return new ProviderError.PermanentError({
      reason: "not_found",
      message: `${api}: model ${modelName} is not downloaded: ${message}`,
      ...withStatus
    })
  }
  if (message.includes("invalid options")) {
    return new ProviderError.PermanentError({
      reason: "bad_request",
      message: `${api}: invalid options for model ${modelName}: ${message}`,
      ...withStatus
    })
  }
  return undefined
}

/**
 * The typed error for an error reply of the Ollama server, as prompto treats them: a model that
 * is not downloaded and invalid options are permanent (`permanentError`); anything else is
 * classified by status (429 rate limited with `retry-after`, 5xx transient, other 4xx permanent).
 *
 * @since 0.1.0
 * @category errors
 */
export const classify = (
  status: number,
  message: string,
  modelName: string,
  headers?: ProviderFailure.HeadersLike
): ProviderError.ProviderError =>
  permanentError(message, modelName, status) ?? ProviderFailure.fromStatus(status, `${api}: ${message}`, headers)

const addCounts = (replies: ReadonlyArray<Reply>): PromptRecord.Usage | undefined => {
  const sum = (key: "prompt_eval_count" | "eval_count"): number | undefined => {
    const values = replies.map((reply) => reply[key]).filter((value): value is number => value !== undefined)
    return values.length === 0 ? undefined : values.reduce((total, value) => total + value, 0)
  }
  const prompt = sum("prompt_eval_count")
  const completion = sum("eval_count")
  if (prompt === undefined && completion === undefined) return undefined
  return {
    ...(prompt === undefined ? {} : { prompt_tokens: prompt }),
    ...(completion === undefined ? {} : { completion_tokens: completion }),
    total_tokens: (prompt ?? 0) + (completion ?? 0)
  }
}

/**
 * The provider response for the replies of one record (one per turn): the text, or the list of
 * texts for a multi-turn prompt; usage summed over the turns; `finish_reason` (Ollama's
 * `done_reason`) and `model` of the last reply.
 *
 * @since 0.1.0
 * @category utils
 */
export const toResponse = (replies: ReadonlyArray<Reply>, multiTurn: boolean): Provider.ProviderResponse => {
  const last = replies.at(-1)
  const usage = addCounts(replies)
  const fields = {
    ...(last?.done_reason === undefined ? {} : { finish_reason: last.done_reason }),
    ...(last?.model === undefined ? {} : { model: last.model })
  }
  const extras = AnswerFields.fields(
    (multiTurn ? replies : last === undefined ? [] : [last]).map((reply) => reply.extras ?? AnswerFields.none),
    multiTurn
  )
  return {
    response: multiTurn ? replies.map((reply) => reply.text) : last?.text ?? "",
    ...(usage === undefined ? {} : { usage }),
    fields: { ...fields, ...extras }
  }
}

/**
 * Makes the provider. Requests go over the process's one undici pool (connections kept alive
 * and reused, shared with the SDK providers).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Provider.Provider> = Effect.sync(() => {
  const endpointOf = HttpJson.endpointOf(endpointVariable, baseUrl)
  const endpointProblemsOf = HttpJson.endpointProblemsOf(endpointVariable, baseUrl)

  const postCall = <A, I>(
    url: string,
    body: unknown,
    schema: Schema.Schema<A, I>,
    modelName: string
  ): Either.Either<Provider.Call<A>, ProviderError.ProviderError> =>
    HttpJson.prepare({
      api,
      url,
      body,
      schema,
      onStatus: (status, message, headers) => classify(status, message, modelName, headers),
      // an error in a 200 body: permanent in prompto's two cases, otherwise transient
      onErrorBody: (error, _body, status) =>
        permanentError(error, modelName) ?? new ProviderError.TransientError({ message: `${api}: ${error}`, status })
    })

  const generateCall = (base: string, model: string, prompt: string, options: unknown) =>
    Either.map(
      postCall(`${base}/api/generate`, { model, prompt, stream: false, options }, GenerateReply, model),
      (call) =>
        Provider.mapCall(
          call,
          ({ response, thinking, ...rest }): Reply => ({ text: response, extras: extrasOf(undefined, thinking), ...rest })
        )
    )

  const chatCall = (base: string, model: string, messages: ReadonlyArray<Message>, options: unknown) =>
    Either.map(
      postCall(`${base}/api/chat`, { model, messages, stream: false, options }, ChatReply, model),
      (call) =>
        Provider.mapCall(
          call,
          ({ message, ...rest }): Reply => ({ text: message.content, extras: extrasOf(message.tool_calls, message.thinking), ...rest })
        )
    )

  const generate = (base: string, model: string, prompt: string, options: unknown) =>
    Effect.flatMap(Effect.suspend(() => generateCall(base, model, prompt, options)), Provider.runCall)

  const chat = (base: string, model: string, messages: ReadonlyArray<Message>, options: unknown) =>
    Effect.flatMap(Effect.suspend(() => chatCall(base, model, messages, options)), Provider.runCall)

  const check = (record: PromptRecord.PromptRecord): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
    Effect.gen(function*() {
      const problems: Array<Provider.RecordProblem> = []
      const planned = plan(record.prompt)
      if (Either.isLeft(planned)) problems.push({ key: "prompt", message: planned.left })
      problems.push(...(yield* endpointProblemsOf(record.model_name)))
      return problems
    })

  const query = (record: PromptRecord.IdentifiedRecord): Effect.Effect<Provider.ProviderResponse, ProviderError.ProviderError> =>
    Effect.gen(function*() {
      if (EmptyPrompt.is(record.prompt)) return yield* EmptyPrompt.error()
      const planned = plan(record.prompt)
      if (Either.isLeft(planned)) {
        return yield* new ProviderError.PermanentError({ reason: "validation", message: `${api}: ${planned.left}` })
      }
      const model = record.model_name
      const base = yield* endpointOf(model)
      const options = record.parameters ?? {}
      const step = planned.right
      switch (step._tag) {
        case "Generate":
          return toResponse([yield* generate(base, model, step.prompt, options)], false)
        case "History":
          return toResponse([yield* chat(base, model, step.messages, options)], false)
        case "Turns": {
          const history: Array<Message> = []
          const replies: Array<Reply> = []
          for (const turn of step.turns) {
            history.push({ role: "user", content: turn })
            const reply = yield* chat(base, model, [...history], options)
            replies.push(reply)
            history.push({ role: "assistant", content: reply.text })
          }
          return toResponse(replies, true)
        }
      }
    })

  // a prompt of one request as a plain call (the run's hot path); turns are `query`'s
  const prepare = (record: PromptRecord.IdentifiedRecord): Effect.Effect<Provider.Call | undefined, ProviderError.ProviderError> => {
    if (EmptyPrompt.is(record.prompt)) return EmptyPrompt.error()
    const planned = plan(record.prompt)
    if (Either.isLeft(planned)) {
      return Effect.fail(new ProviderError.PermanentError({ reason: "validation", message: `${api}: ${planned.left}` }))
    }
    const step = planned.right
    if (step._tag === "Turns") return Effect.succeed(undefined)
    const model = record.model_name
    const options = record.parameters ?? {}
    return Effect.flatMap(endpointOf(model), (base) =>
      Either.map(
        step._tag === "Generate" ? generateCall(base, model, step.prompt, options) : chatCall(base, model, step.messages, options),
        (call) => Provider.mapCall(call, (reply) => toResponse([reply], false))
      ))
  }

  // every wait on the API is a `Provider.call`: the request timeout ends it on the line's own fiber
  return { api, check, prepare, query: Provider.queryOf(prepare, query), timesOut: true }
})

/**
 * Installs the `ollama` provider as its own registry entry (composes with other provider layers
 * via `Layer.mergeAll`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Provider.layerEffect(make)
