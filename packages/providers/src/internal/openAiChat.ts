/**
 * What the OpenAI family (`openai`, `azure-openai`, `huggingface-tgi`) shares over the `openai`
 * SDK: prompt shape checks with prompto's meaning, message building (images from the media
 * folder as base64 `data:` URLs), the chat and completion calls, response parsing (with the
 * `x-ratelimit-*` headers as `rateLimit`) and one cached SDK client per (api, key, endpoint).
 *
 * Besides the text, a chat answer's `message.tool_calls` (and the older `function_call`) are
 * written as the record's `tool_calls`, each `{ id, name, arguments, raw }` with the argument
 * string parsed as JSON and `raw` the item as sent; the `reasoning_content` (DeepSeek, vLLM) or
 * `reasoning` (vLLM, OpenRouter, Ollama) text of OpenAI-compatible servers as `reasoning`. Both
 * follow `response`: a list per turn or choice where it is a list (see `answerFields`).
 *
 * @since 0.1.0
 */
import { type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { Effect, Either, Option, Redacted } from "effect"
import type OpenAI from "openai"
import type * as OpenAiSdk from "openai"
import * as Media from "../Media.js"
import * as ModelConfig from "../ModelConfig.js"
import * as ProviderFailure from "../ProviderFailure.js"
import * as AnswerFields from "./answerFields.js"
import * as EmptyPrompt from "./emptyPrompt.js"
import * as RateLimitHeaders from "./rateLimitHeaders.js"
import * as UndiciFetch from "./undiciFetch.js"
import * as Usage from "./usage.js"

/**
 * `chat` sends `chat.completions`; `completion` the legacy completions endpoint (a string
 * prompt only: lists are always chats, as in prompto).
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "chat" | "completion"

/**
 * The modes a record may name.
 *
 * @since 0.1.0
 * @category constants
 */
export const modes: ReadonlyArray<Mode> = ["chat", "completion"]

/**
 * The roles of a chat history (prompto's `openai_chat_roles`).
 *
 * @since 0.1.0
 * @category constants
 */
export const chatRoles: ReadonlyArray<string> = ["system", "user", "assistant"]

/**
 * Options every client is built with: no SDK retries (the scheduler retries), the largest
 * timeout Node's timers allow (the scheduler's per-request timeout interrupts, which aborts),
 * and undici's `request` in place of Node's `fetch` (see `undiciFetch`).
 *
 * @since 0.1.0
 * @category constants
 */
export const clientDefaults = { maxRetries: 0, timeout: 2_147_483_647, fetch: UndiciFetch.fetch } as const

/**
 * The `openai` SDK module. It is imported when the first client is made, so a run that sends
 * nothing to this family (and `prompto --help`) never loads it.
 *
 * @since 0.1.0
 * @category models
 */
export type Sdk = typeof OpenAiSdk

/**
 * How a record reaches its server: the identity of its client and how to build one.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  /** (api, key, endpoint, ...): records with equal keys share one client. */
  readonly key: ReadonlyArray<string>
  readonly create: (sdk: Sdk) => OpenAI
}

/**
 * One API of the family.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec {
  readonly api: string
  /** `messages`: str, list[str] or a role/content history; `turns`: str or list[str] only. */
  readonly shapes: "messages" | "turns"
  /** The mode of a string prompt when the record names none. */
  readonly defaultMode: Mode
  /** prompto's TypeError text for a prompt of the wrong shape. */
  readonly shapeError: string
  /** Configuration problems of a record (names only, never values). */
  readonly checkConfig: (modelName: string) => Effect.Effect<ReadonlyArray<Provider.RecordProblem>>
  /** The connection for a record; a missing variable is a permanent configuration error. */
  readonly connect: (modelName: string) => Effect.Effect<Connection, ProviderError.PermanentError>
  /** The `model` sent in the request body. */
  readonly requestModel: (record: PromptRecord.PromptRecord) => string
}

/** The SDK, imported once: by a model's first check, or by its first query when nothing checked it. */
const importSdk = () => import("openai")

/** The SDK loaded, for a check to wait on (a failure to load is the query's to report). */
const loadSdk: Effect.Effect<void> = Effect.ignore(Effect.tryPromise(importSdk))

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isTurns = (prompt: ReadonlyArray<unknown>): prompt is ReadonlyArray<string> =>
  prompt.every((turn) => typeof turn === "string")

/** Keys of the request body that come from the record, not from `parameters`. */
const reservedParameters = ["model", "messages", "prompt"]

/** Local media references of one message content, and what is wrong with it. */
interface ContentCheck {
  readonly problems: ReadonlyArray<string>
  readonly media: ReadonlyArray<string>
}

const imageUrlOf = (value: unknown): string | undefined =>
  typeof value === "string" ? value : isRecord(value) && typeof value.url === "string" ? value.url : undefined

const checkContent = (content: unknown, at: string): ContentCheck => {
  if (typeof content === "string") return { problems: [], media: [] }
  if (!Array.isArray(content)) {
    return { problems: [`${at}: "content" must be a string or a list of content items`], media: [] }
  }
  const problems: Array<string> = []
  const media: Array<string> = []
  content.forEach((item: unknown, index) => {
    if (typeof item === "string") return
    if (isRecord(item) && item.type === "text" && typeof item.text === "string") return
    if (isRecord(item) && item.type === "image_url") {
      const url = imageUrlOf(item.image_url)
      const detail = isRecord(item.image_url) ? item.image_url.detail : undefined
      if (url === undefined) {
        problems.push(`${at}, item ${index}: "image_url" must be a string or {"url", "detail"?}`)
      } else if (detail !== undefined && typeof detail !== "string") {
        problems.push(`${at}, item ${index}: "image_url.detail" must be a string`)
      } else if (!Media.isUrl(url)) {
        media.push(url)
      }
      return
    }
    problems.push(
      `${at}, item ${index}: content items must be strings, {"type": "text", "text"} or {"type": "image_url", "image_url"}`
    )
  })
  return { problems, media }
}

/**
 * The shape problems of a record (prompt, mode, parameters) and the local media files its
 * prompt names. Pure: `check` adds configuration and media existence, `query` re-checks this
 * before sending.
 *
 * @since 0.1.0
 * @category checks
 */
export const shapeProblems = (
  spec: Pick<Spec, "shapes" | "shapeError">,
  record: PromptRecord.PromptRecord
): { readonly problems: ReadonlyArray<Provider.RecordProblem>; readonly media: ReadonlyArray<string> } => {
  const problems: Array<Provider.RecordProblem> = []
  const media: Array<string> = []
  const prompt: unknown = record.prompt
  const parameters = record.parameters ?? {}
  if (Array.isArray(prompt)) {
    const items: ReadonlyArray<unknown> = prompt
    if (items.length === 0) {
      problems.push(EmptyPrompt.problem)
    } else if (items.every((turn) => typeof turn === "string")) {
      if (typeof parameters.n === "number" && parameters.n > 1) {
        problems.push({
          key: "parameters.n",
          message: "a multi-turn prompt (list of strings) takes one choice per turn: n must be 1"
        })
      }
    } else if (
      spec.shapes === "messages" &&
      items.every((message) =>
        isRecord(message) && Object.keys(message).length === 2 && "role" in message && "content" in message &&
        typeof message.role === "string" && chatRoles.includes(message.role)
      )
    ) {
      items.forEach((message, index) => {
        const content = checkContent(isRecord(message) ? message.content : undefined, `message ${index}`)
        problems.push(...content.problems.map((text) => ({ key: "prompt", message: text })))
        media.push(...content.media)
      })
    } else {
      problems.push({ key: "prompt", message: spec.shapeError })
    }
  } else if (typeof prompt !== "string") {
    problems.push({ key: "prompt", message: spec.shapeError })
  }
  if (record.mode !== undefined && !(modes as ReadonlyArray<string>).includes(record.mode)) {
    problems.push({ key: "mode", message: `Invalid mode value. Must be 'chat' or 'completion', not ${record.mode}` })
  }
  if (parameters.stream !== undefined && parameters.stream !== false) {
    problems.push({ key: "parameters.stream", message: "streaming is not supported: responses are written whole" })
  }
  for (const key of reservedParameters) {
    if (key in parameters) {
      problems.push({ key: `parameters.${key}`, message: `"${key}" is set from the record and cannot be a parameter` })
    }
  }
  return { problems, media }
}

/**
 * `check` problems when a variable holding an endpoint is set but is not an http(s) URL
 * (the problem names the variable, not its value).
 *
 * @since 0.1.0
 * @category checks
 */
export const checkUrl = (name: string, modelName: string): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.map(ModelConfig.lookup(name, modelName), (value) =>
    Option.isSome(value) && !/^https?:\/\/[^/]/i.test(value.value.trim())
      ? [{
        key: "api",
        message: `${
          ModelConfig.candidates(name, modelName).map((candidate) => `"${candidate}"`).join(" or ")
        } (the one set) must be an http(s) URL`
      }]
      : [])

/**
 * A `checkConfig` for the family: the required variables that are missing, and the endpoint
 * variable when it is set but is not an http(s) URL.
 *
 * @since 0.1.0
 * @category checks
 */
export const checkVariables = (required: ReadonlyArray<string>, endpointVariable: string) =>
(modelName: string): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.map(
    Effect.all([ModelConfig.checkRequired(required, modelName), checkUrl(endpointVariable, modelName)]),
    (problems) => problems.flat()
  )

/**
 * Requires a secret for a model, failing with a permanent configuration error naming it.
 *
 * @since 0.1.0
 * @category config
 */
export const requireSecret = (
  name: string,
  modelName: string
): Effect.Effect<Redacted.Redacted<string>, ProviderError.PermanentError> =>
  Effect.map(ModelConfig.require(name, modelName), Redacted.make)

/**
 * An endpoint without trailing slashes, so paths can be appended.
 *
 * @since 0.1.0
 * @category utils
 */
export const trimEndpoint = (endpoint: string): string => endpoint.trim().replace(/\/+$/, "")

const toContentPart = (item: unknown): Effect.Effect<unknown, ProviderError.PermanentError> => {
  if (typeof item === "string") return Effect.succeed({ type: "text", text: item })
  if (isRecord(item) && item.type === "image_url") {
    const url = imageUrlOf(item.image_url) ?? ""
    const detail = isRecord(item.image_url) && typeof item.image_url.detail === "string"
      ? { detail: item.image_url.detail }
      : {}
    if (Media.isUrl(url)) return Effect.succeed({ type: "image_url", image_url: { url, ...detail } })
    return Effect.map(Media.read(url), (file) => ({
      type: "image_url",
      image_url: { url: `data:${file.mimeType};base64,${file.base64}`, ...detail }
    }))
  }
  return Effect.succeed(item)
}

/**
 * The chat message sent for a history message: string content as is; content items as OpenAI
 * content parts, with local images read from the media folder as base64 `data:` URLs.
 *
 * @since 0.1.0
 * @category messages
 */
export const toMessage = (
  message: PromptRecord.ChatMessage
): Effect.Effect<OpenAI.Chat.ChatCompletionMessageParam, ProviderError.PermanentError> =>
  Array.isArray(message.content)
    ? Effect.map(
      Effect.forEach(message.content, toContentPart),
      (content) => ({ role: message.role, content }) as OpenAI.Chat.ChatCompletionMessageParam
    )
    : Effect.succeed({ role: message.role, content: message.content } as OpenAI.Chat.ChatCompletionMessageParam)

/**
 * One response of the API, parsed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Answer {
  /** The text of each choice, in `index` order. */
  readonly texts: ReadonlyArray<string>
  /** The tool calls and reasoning of each choice, in `index` order. */
  readonly extras: ReadonlyArray<AnswerFields.Extras>
  readonly finishReasons: ReadonlyArray<string | null>
  /** The model name the server reports. */
  readonly model: string | undefined
  /** With the cache and reasoning details when the server reports them. */
  readonly usage: Usage.Usage | undefined
  /** What the response's headers said about the rate limits. */
  readonly rateLimit: Provider.RateLimitInfo | undefined
}

const numberOr = (value: unknown): number | undefined => typeof value === "number" ? value : undefined

/**
 * The three counts, and the cached input and reasoning output counts OpenAI nests under
 * `prompt_tokens_details` and `completion_tokens_details` (already parts of prompt and
 * completion tokens, so those stay as sent).
 */
const parseUsage = (usage: unknown): Usage.Usage | undefined => {
  if (!isRecord(usage)) return undefined
  const promptDetails = isRecord(usage.prompt_tokens_details) ? usage.prompt_tokens_details : {}
  const completionDetails = isRecord(usage.completion_tokens_details) ? usage.completion_tokens_details : {}
  return Usage.make({
    prompt_tokens: Usage.count(usage.prompt_tokens),
    completion_tokens: Usage.count(usage.completion_tokens),
    total_tokens: Usage.count(usage.total_tokens),
    cached_tokens: Usage.count(promptDetails.cached_tokens),
    cache_write_tokens: undefined,
    reasoning_tokens: Usage.count(completionDetails.reasoning_tokens)
  })
}

/**
 * The calls of a chat message: `tool_calls` and the legacy `function_call`. A function's
 * arguments come as a JSON string and are parsed; a custom tool's `input` is free text, kept.
 */
const toolCallsOf = (message: Readonly<Record<string, unknown>>): ReadonlyArray<PromptRecord.ToolCall> => {
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : []
  const out = calls.filter(isRecord).map((call) =>
    isRecord(call.custom)
      ? AnswerFields.toolCall(call.id, call.custom.name, call.custom.input, call)
      : AnswerFields.toolCall(
        call.id,
        isRecord(call.function) ? call.function.name : undefined,
        AnswerFields.parseArguments(isRecord(call.function) ? call.function.arguments : undefined),
        call
      )
  )
  const legacy = message.function_call
  if (isRecord(legacy)) {
    out.push(AnswerFields.toolCall(undefined, legacy.name, AnswerFields.parseArguments(legacy.arguments), legacy))
  }
  return out
}

/** The reasoning text OpenAI-compatible servers add to a message (OpenAI itself returns none). */
const reasoningOf = (message: Readonly<Record<string, unknown>>): string | undefined => {
  const text = typeof message.reasoning_content === "string"
    ? message.reasoning_content
    : typeof message.reasoning === "string"
    ? message.reasoning
    : undefined
  return text === undefined ? undefined : AnswerFields.joinReasoning([text])
}

/**
 * Parses a chat completion or a text completion; `undefined` if the body is not one.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseAnswer = (mode: Mode, body: unknown): Omit<Answer, "rateLimit"> | undefined => {
  if (!isRecord(body) || !Array.isArray(body.choices)) return undefined
  const choices: Array<{
    readonly index: number
    readonly text: string
    readonly reason: string | null
    readonly extras: AnswerFields.Extras
  }> = []
  for (const [position, choice] of body.choices.entries()) {
    if (!isRecord(choice)) return undefined
    let text: string
    let extras = AnswerFields.none
    if (mode === "chat") {
      const message = choice.message
      if (!isRecord(message)) return undefined
      text = typeof message.content === "string"
        ? message.content
        : typeof message.refusal === "string"
        ? message.refusal
        : ""
      extras = { toolCalls: toolCallsOf(message), reasoning: reasoningOf(message) }
    } else {
      if (typeof choice.text !== "string") return undefined
      text = choice.text
    }
    choices.push({
      index: numberOr(choice.index) ?? position,
      text,
      reason: typeof choice.finish_reason === "string" ? choice.finish_reason : null,
      extras
    })
  }
  choices.sort((a, b) => a.index - b.index)
  return {
    texts: choices.map((choice) => choice.text),
    extras: choices.map((choice) => choice.extras),
    finishReasons: choices.map((choice) => choice.reason),
    model: typeof body.model === "string" ? body.model : undefined,
    usage: parseUsage(body.usage)
  }
}

/** The parsed body and the HTTP response it came in (the SDK's `withResponse()`). */
interface Sent {
  readonly data: unknown
  readonly response: Response
}

/** The answer of a body the SDK parsed, or the error of one that is not the mode's. */
const answerOf = (api: string, mode: Mode, { data, response }: Sent): Either.Either<Answer, ProviderError.ProviderError> => {
  const answer = parseAnswer(mode, data)
  return answer === undefined
    ? Either.left(
      new ProviderError.TransientError({
        message: `${api}: malformed response: expected a ${mode === "chat" ? "chat completion" : "completion"} with "choices"`
      })
    )
    // (assigned, not spread: a spread copy given a new property takes a hidden class of its own)
    : Either.right(Object.assign(answer, { rateLimit: RateLimitHeaders.parse(response.headers, Date.now()) }))
}

/** One request of the SDK as a plain call, aborted through its signal when cancelled. */
const sendCall = (
  api: string,
  mode: Mode,
  url: string,
  request: (signal: AbortSignal) => Promise<Sent>
): Provider.Call<Answer> =>
(done) => {
  const controller = new AbortController()
  let cancelled = false
  const finish = (outcome: Either.Either<Answer, ProviderError.ProviderError>) => {
    if (!cancelled) done(outcome)
  }
  const fail = (error: unknown) => finish(Either.left(ProviderFailure.fromUnknown(error, api, url)))
  try {
    request(controller.signal).then((sent) => finish(answerOf(api, mode, sent)), fail)
  } catch (error) {
    fail(error)
  }
  return () => {
    cancelled = true
    controller.abort()
  }
}

/** prompto's `process_response`: "" for no choice, the text for one, the list for several. */
const single = <A>(values: ReadonlyArray<A>, none: A): A | ReadonlyArray<A> =>
  values.length === 1 ? values[0]! : values.length === 0 ? none : values

const toResponse = (
  answers: ReadonlyArray<Answer>,
  multiTurn: boolean
): Provider.ProviderResponse => {
  const last = answers.at(-1)
  const usage = Usage.sum(answers.map((answer) => answer.usage))
  const response = multiTurn
    ? answers.map((answer) => answer.texts[0] ?? "")
    : single(last?.texts ?? [], "")
  const finishReason = multiTurn
    ? answers.map((answer) => answer.finishReasons[0] ?? null)
    : single(last?.finishReasons ?? [], null)
  const extras = multiTurn
    ? AnswerFields.fields(answers.map((answer) => answer.extras[0] ?? AnswerFields.none), true)
    : AnswerFields.fields(last?.extras ?? [], (last?.extras.length ?? 0) > 1)
  return {
    response,
    ...(usage === undefined ? {} : { usage }),
    fields: { finish_reason: finishReason, ...extras, ...(last?.model === undefined ? {} : { model: last.model }) },
    // the latest word on the limits: earlier turns' headers are out of date
    ...(last?.rateLimit === undefined ? {} : { rateLimit: last.rateLimit })
  }
}

/** One chat request through a copy of `client` that refuses it (`UndiciFetch.refusingFetch`): nothing reaches the API. */
const rehearse = (client: OpenAI, model: string): Effect.Effect<void> =>
  Effect.promise(() =>
    Promise.resolve()
      .then(() =>
        client.withOptions({ fetch: UndiciFetch.refusingFetch, maxRetries: 0, logLevel: "off" }).chat.completions
          .create({ model, messages: [{ role: "user", content: "" }] })
          .withResponse()
      )
      .then(() => undefined, () => undefined)
  )

/**
 * Builds a provider for one API of the family. Clients are created on first use per
 * (api, key, endpoint) and reused by every later record with the same connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (spec: Spec): Provider.Provider => {
  const clients = new Map<string, OpenAI>()
  // reading the variables again for every request cost more than the request itself (a
  // missing model-specific variable is an error object with a stack trace): once per model
  const clientOf = ModelConfig.perModel((modelName) => Effect.flatMap(spec.connect(modelName), clientFor))
  // the SDK, the transport and the model's client are made by the model's first check, before
  // its first send, and the SDK's request path runs once (`rehearse`, which sends nothing):
  // done by the first send, this held it (18 ms of 20 on loopback) while the pacer went on
  // granting slots, so it reached the API bunched with the next two
  const configProblemsOf = ModelConfig.perModel((modelName) =>
    Effect.zipLeft(spec.checkConfig(modelName), Effect.zip(loadSdk, UndiciFetch.warmUpForSdk, { concurrent: true })).pipe(
      Effect.tap((problems) =>
        problems.length > 0 ? Effect.void : Effect.ignore(Effect.flatMap(clientOf(modelName), (client) => rehearse(client, modelName)))
      )
    )
  )
  const clientFor = (connection: Connection): Effect.Effect<OpenAI, ProviderError.PermanentError> =>
    Effect.suspend(() => {
      const key = JSON.stringify(connection.key)
      const cached = clients.get(key)
      if (cached !== undefined) return Effect.succeed(cached)
      return Effect.tryPromise({
        try: async () => {
          const sdk = await importSdk()
          // another fiber may have made it while the SDK was being imported
          const client = clients.get(key) ?? connection.create(sdk)
          clients.set(key, client)
          return client
        },
        catch: (error) =>
          new ProviderError.PermanentError({
            reason: "configuration",
            message: `${spec.api}: cannot create the client: ${error instanceof Error ? error.message : String(error)}`
          })
      })
    })

  // `withResponse()` hands over the `Response` the SDK reads anyway, for its rate-limit headers
  const chatCall = (client: OpenAI, body: Readonly<Record<string, unknown>>) =>
    sendCall(spec.api, "chat", client.baseURL, (signal) =>
      client.chat.completions.create(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, { signal })
        .withResponse())

  const completeCall = (client: OpenAI, body: Readonly<Record<string, unknown>>) =>
    sendCall(spec.api, "completion", client.baseURL, (signal) =>
      client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming, { signal }).withResponse())

  const chat = (client: OpenAI, body: Readonly<Record<string, unknown>>) => Provider.runCall(chatCall(client, body))
  const complete = (client: OpenAI, body: Readonly<Record<string, unknown>>) => Provider.runCall(completeCall(client, body))

  // a string prompt, one request, as a plain call (the run's hot path); the other prompts are `query`'s
  const prepare = (record: PromptRecord.IdentifiedRecord): Effect.Effect<Provider.Call | undefined, ProviderError.ProviderError> => {
    const prompt = record.prompt
    if (typeof prompt !== "string") return Effect.succeed(undefined)
    const shape = shapeProblems(spec, record)
    if (shape.problems.length > 0) return Effect.succeed(undefined)
    return Effect.map(clientOf(record.model_name), (client) => {
      const model = spec.requestModel(record)
      const parameters = record.parameters ?? {}
      const call = (record.mode ?? spec.defaultMode) === "completion"
        ? completeCall(client, { model, prompt, ...parameters })
        : chatCall(client, { model, messages: [{ role: "user", content: prompt }], ...parameters })
      return Provider.mapCall(call, (answer) => toResponse([answer], false))
    })
  }

  return {
    api: spec.api,
    check: (record) =>
      Effect.gen(function*() {
        const shape = shapeProblems(spec, record)
        const media = yield* Media.checkExists(shape.media)
        const config = yield* configProblemsOf(record.model_name)
        return [...shape.problems, ...media, ...config]
      }),
    // every wait on the API is a `Provider.call`: the request timeout ends it on the line's own fiber
    timesOut: true,
    prepare,
    query: Provider.queryOf(prepare, (record) =>
      Effect.gen(function*() {
        const shape = shapeProblems(spec, record)
        if (shape.problems.length > 0) {
          return yield* new ProviderError.PermanentError({
            reason: "validation",
            message: shape.problems.map((problem) => `${problem.key}: ${problem.message}`).join("; ")
          })
        }
        const client = yield* clientOf(record.model_name)
        const model = spec.requestModel(record)
        const parameters = record.parameters ?? {}
        const prompt = record.prompt

        if (typeof prompt === "string") {
          const answer = (record.mode ?? spec.defaultMode) === "completion"
            ? yield* complete(client, { model, prompt, ...parameters })
            : yield* chat(client, { model, messages: [{ role: "user", content: prompt }], ...parameters })
          return toResponse([answer], false)
        }
        if (isTurns(prompt)) {
          // each turn is sent with the earlier turns and answers
          const messages: Array<OpenAI.Chat.ChatCompletionMessageParam> = []
          const answers: Array<Answer> = []
          for (const turn of prompt) {
            messages.push({ role: "user", content: turn })
            const answer = yield* chat(client, { model, messages: [...messages], ...parameters })
            answers.push(answer)
            messages.push({ role: "assistant", content: answer.texts[0] ?? "" })
          }
          return toResponse(answers, true)
        }
        const messages = yield* Effect.forEach(prompt, toMessage)
        return toResponse([yield* chat(client, { model, messages, ...parameters })], false)
      }))
  }
}

/**
 * prompto's message for a prompt of the wrong shape, for an API that takes what `openai` takes.
 *
 * @since 0.1.0
 * @category constants
 */
export const messagesShapeError = (api: string): string =>
  `if api == '${api}', then the prompt must be a str, list[str], or ` +
  "list[dict[str,str]] where the dictionary contains the keys 'role' and 'content' only, " +
  "and the values for 'role' must be one of 'system', 'user' or 'assistant'"

/**
 * Builds a provider for an API that takes what `openai` takes: a string (a chat unless the
 * record's mode is `completion`), a list of strings or a role/content history, with the
 * record's `model_name` as the request's `model`. The API differs only in its configuration
 * and its client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMessages = (spec: Pick<Spec, "api" | "shapeError" | "checkConfig" | "connect">): Provider.Provider =>
  make({ ...spec, shapes: "messages", defaultMode: "chat", requestModel: (record) => record.model_name })
