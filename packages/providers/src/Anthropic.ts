/**
 * The `anthropic` API: Claude through the Messages API (`POST /v1/messages`) over the official
 * `@anthropic-ai/sdk`.
 *
 * Configuration, read per record with prompto's per-model rule (`VAR_<model id>` before `VAR`):
 *
 * - `ANTHROPIC_API_KEY` (required).
 * - `ANTHROPIC_BASE_URL` (optional): another endpoint, e.g. a proxy or a test server.
 *
 * Prompts, as prompto accepts them:
 *
 * - a string: one user message;
 * - a list of strings: a multi-turn chat, each turn sent with the earlier turns and answers;
 *   `response` is the list of answers;
 * - a list of `{ role, content }` messages with roles `user` and `assistant`; only the first may
 *   be `system`, and it is sent as the top-level `system` argument. `content` is a string or a
 *   list of strings and content blocks; prompto's image block
 *   `{ type: "image", source: { media: "<file in the media folder>", media_type } }` is read from
 *   the run's media folder and sent base64-encoded (an `http(s)://` `media` is sent as a URL
 *   source), and blocks already in Anthropic's own format pass through unchanged.
 *
 * `parameters` are passed to the API as given; as in prompto, `max_tokens` must be among them.
 * The text of the answer is the concatenation of its text blocks. Its `tool_use` blocks (and
 * the server's own `server_tool_use` and `mcp_tool_use`) are written as the record's
 * `tool_calls`, each `{ id, name, arguments, raw }` (`arguments` is the block's `input`, `raw`
 * the block as sent), and the text of its `thinking` blocks as `reasoning` (`redacted_thinking`
 * blocks hold only encrypted data and are left out); for a multi-turn prompt both are lists, one
 * entry per turn. `usage.prompt_tokens` counts every input token billed: `input_tokens` plus
 * the cache reads and writes, which are also recorded as `cached_tokens` and
 * `cache_write_tokens` when reported. The answer's `anthropic-ratelimit-*` headers come back as
 * the response's `rateLimit` (a 429's as the `RateLimitError`'s), for pacing; they are not
 * written into the record.
 *
 * @since 0.1.0
 */
import type Anthropic from "@anthropic-ai/sdk"
import type * as AnthropicSdk from "@anthropic-ai/sdk"
import type { MessageCreateParamsNonStreaming } from "@anthropic-ai/sdk/resources/messages"
import { type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { Effect, Layer, Option, Redacted } from "effect"
import * as Media from "./Media.js"
import * as ModelConfig from "./ModelConfig.js"
import * as ProviderFailure from "./ProviderFailure.js"
import * as AnswerFields from "./internal/answerFields.js"
import * as EmptyPrompt from "./internal/emptyPrompt.js"
import * as RateLimitHeaders from "./internal/rateLimitHeaders.js"
import * as UndiciFetch from "./internal/undiciFetch.js"
import * as Usage from "./internal/usage.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "anthropic"

/**
 * The variable holding the API key (required).
 *
 * @since 0.1.0
 * @category constants
 */
export const apiKeyVariable = "ANTHROPIC_API_KEY"

/**
 * The variable overriding the endpoint (optional).
 *
 * @since 0.1.0
 * @category constants
 */
export const baseUrlVariable = "ANTHROPIC_BASE_URL"

/**
 * The endpoint used when `ANTHROPIC_BASE_URL` is not set.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseUrl = "https://api.anthropic.com"

/**
 * What a prompt for this API must look like (prompto's `TypeError` text, with its roles).
 *
 * @since 0.1.0
 * @category constants
 */
export const promptShapeMessage = "if api == 'anthropic', then the prompt must be a str, list[str], or " +
  "list[dict[str,str]] where the dictionary contains the keys 'role' and 'content' only, and the values " +
  "for 'role' must be one of 'user' or 'assistant', except for the first message in the list of " +
  "dictionaries can be a system message with the key 'role' set to 'system'"

// The SDK arms a timer with the client timeout; Node caps timers at 2^31 - 1 ms (about 24 days).
// Our scheduler's per-request timeout interrupts the call long before.
const clientTimeoutMs = 2_147_483_647

type Json = Readonly<Record<string, unknown>>

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isHttpUrl = (reference: string): boolean => /^https?:\/\//i.test(reference)

/** A chat message as sent: `content` still holds prompto's image blocks until `resolveContent`. */
interface ChatMessage {
  readonly role: "user" | "assistant"
  readonly content: unknown
}

/** How a prompt is sent. */
type Plan =
  | { readonly _tag: "Single"; readonly text: string }
  | { readonly _tag: "Turns"; readonly turns: ReadonlyArray<string> }
  | { readonly _tag: "History"; readonly system: unknown; readonly messages: ReadonlyArray<ChatMessage> }

interface Inspection {
  readonly problems: ReadonlyArray<Provider.RecordProblem>
  /** Local media files the prompt names (for `check`). */
  readonly media: ReadonlyArray<string>
  readonly plan: Plan | undefined
}

/** Problems of one content block of message `at` (a string, prompto's forms or Anthropic's). */
const inspectBlock = (block: unknown, at: string, media: Array<string>): ReadonlyArray<string> => {
  if (typeof block === "string") return []
  if (!isObject(block)) return [`${at}: a content block must be a string or an object with a "type"`]
  if (typeof block.type !== "string") return [`${at}: a content block needs a "type"`]
  if (block.type === "text") return typeof block.text === "string" ? [] : [`${at}: a "text" block needs a string "text"`]
  if (block.type !== "image") return [] // documents, tool results, ...: Anthropic's own, checked by the API
  const source = block.source
  if (!isObject(source)) return [`${at}: an "image" block needs a "source" object`]
  if (source.media === undefined) {
    return typeof source.type === "string"
      ? [] // already Anthropic's { type: "base64" | "url" | "file", ... }
      : [`${at}: an image "source" needs "media" (a file in the media folder) or Anthropic's "type"`]
  }
  if (typeof source.media !== "string" || source.media === "") return [`${at}: image "media" must be a file name`]
  if (source.media_type !== undefined && typeof source.media_type !== "string") {
    return [`${at}: image "media_type" must be a string such as "image/jpeg"`]
  }
  if (Media.isUrl(source.media) && !isHttpUrl(source.media)) {
    return [`${at}: image "media" must be a file in the media folder or an http(s) URL`]
  }
  if (!Media.isUrl(source.media)) media.push(source.media)
  return []
}

const inspectContent = (content: unknown, at: string, media: Array<string>): ReadonlyArray<string> => {
  if (typeof content === "string") return []
  if (isObject(content)) return inspectBlock(content, at, media)
  if (Array.isArray(content)) return content.flatMap((block, i) => inspectBlock(block, `${at}, content[${i}]`, media))
  return [`${at}: "content" must be a string or a list of content blocks`]
}

const inspectSystem = (content: unknown): ReadonlyArray<string> => {
  const text = (block: unknown) => typeof block === "string" || (isObject(block) && block.type === "text" && typeof block.text === "string")
  if (typeof content === "string" || (Array.isArray(content) && content.every(text))) return []
  return ["prompt[0]: the system message's content must be a string or a list of text blocks"]
}

const inspectHistory = (
  prompt: ReadonlyArray<PromptRecord.ChatMessage>,
  media: Array<string>
): { readonly problems: ReadonlyArray<string>; readonly plan: Plan } => {
  const problems: Array<string> = []
  const messages: Array<ChatMessage> = []
  let system: unknown = undefined
  prompt.forEach((message, index) => {
    const at = `prompt[${index}]`
    const keys = Object.keys(message).sort()
    if (keys.length !== 2 || keys[0] !== "content" || keys[1] !== "role") {
      problems.push(`${at}: a message must have exactly the keys "role" and "content" (got ${keys.map((key) => `"${key}"`).join(", ")})`)
      return
    }
    if (message.role === "system") {
      if (index === 0) {
        system = message.content
        problems.push(...inspectSystem(message.content))
      } else {
        problems.push(
          `${at}: only the first message may have role "system" (it is sent as the top-level system prompt)`
        )
      }
      return
    }
    if (message.role !== "user" && message.role !== "assistant") {
      problems.push(`${at}: role must be "user" or "assistant" (or "system" for the first message), got "${message.role}"`)
      return
    }
    problems.push(...inspectContent(message.content, at, media))
    messages.push({ role: message.role, content: message.content })
  })
  if (messages.length === 0 && problems.length === 0) problems.push("the prompt needs at least one user or assistant message")
  return { problems, plan: { _tag: "History", system, messages } }
}

const isTurns = (prompt: PromptRecord.Prompt): prompt is ReadonlyArray<string> =>
  typeof prompt !== "string" && prompt.every((turn) => typeof turn === "string")

const isMessages = (prompt: PromptRecord.Prompt): prompt is ReadonlyArray<PromptRecord.ChatMessage> =>
  typeof prompt !== "string" && prompt.every(isObject)

const inspectParameters = (record: PromptRecord.PromptRecord, plan: Plan | undefined): Array<Provider.RecordProblem> => {
  const parameters = record.parameters ?? {}
  const problems: Array<Provider.RecordProblem> = []
  if (!("max_tokens" in parameters)) {
    problems.push({
      key: "parameters.max_tokens",
      message: "is required by the Anthropic API: set parameters.max_tokens (e.g. 1024), as prompto requires"
    })
  } else if (!(typeof parameters.max_tokens === "number" && Number.isInteger(parameters.max_tokens) && parameters.max_tokens >= 0)) {
    problems.push({ key: "parameters.max_tokens", message: "must be a non-negative integer" })
  }
  for (const key of ["model", "messages"] as const) {
    if (key in parameters) {
      problems.push({ key: `parameters.${key}`, message: `is set from the record's ${key === "model" ? "model_name" : "prompt"}; remove it` })
    }
  }
  if (parameters.stream === true) {
    problems.push({ key: "parameters.stream", message: "streaming is not supported; remove it" })
  }
  if ("system" in parameters && plan?._tag === "History" && plan.system !== undefined) {
    problems.push({ key: "parameters.system", message: "the prompt already starts with a system message; give the system prompt once" })
  }
  return problems
}

/** Checks a record's prompt and parameters without sending anything, and plans how to send it. */
const inspect = (record: PromptRecord.PromptRecord): Inspection => {
  const prompt = record.prompt
  const media: Array<string> = []
  let plan: Plan | undefined
  let promptProblems: ReadonlyArray<string> = []
  if (typeof prompt === "string") {
    plan = { _tag: "Single", text: prompt }
  } else if (prompt.length === 0) {
    promptProblems = [EmptyPrompt.message]
  } else if (isTurns(prompt)) {
    plan = { _tag: "Turns", turns: prompt }
  } else if (isMessages(prompt)) {
    const history = inspectHistory(prompt, media)
    plan = history.plan
    promptProblems = history.problems
  } else {
    promptProblems = [promptShapeMessage]
  }
  const problems = [
    ...promptProblems.map((message) => ({ key: "prompt", message })),
    ...inspectParameters(record, plan)
  ]
  return { problems, media, plan: problems.length === 0 ? plan : undefined }
}

/**
 * Checks a record's prompt shape and parameters (no configuration, no files): the problems that
 * `check` reports besides missing keys and media files, and that `query` refuses to send.
 *
 * @since 0.1.0
 * @category checks
 */
export const checkShape = (record: PromptRecord.PromptRecord): ReadonlyArray<Provider.RecordProblem> =>
  inspect(record).problems

const formatProblems = (problems: ReadonlyArray<Provider.RecordProblem>): string =>
  problems.map((problem) => `${problem.key}: ${problem.message}`).join("; ")

const invalidBaseUrl = (name: string, modelName: string): string =>
  `the endpoint in ${ModelConfig.candidates(name, modelName).map((candidate) => `"${candidate}"`).join(" or ")} is not an http(s) URL`

const isValidBaseUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/** The text of one content block, with prompto's media references read. */
const resolveBlock = (block: unknown): Effect.Effect<unknown, ProviderError.PermanentError> => {
  if (typeof block === "string") return Effect.succeed({ type: "text", text: block })
  if (!isObject(block) || block.type !== "image" || !isObject(block.source) || typeof block.source.media !== "string") {
    return Effect.succeed(block)
  }
  const { source, ...rest } = block
  const { media, media_type } = source as { readonly media: string; readonly media_type?: string }
  if (isHttpUrl(media)) return Effect.succeed({ ...rest, source: { type: "url", url: media } })
  return Effect.map(Media.read(media), (file) => ({
    ...rest,
    source: { type: "base64", media_type: media_type ?? file.mimeType, data: file.base64 }
  }))
}

const resolveContent = (content: unknown): Effect.Effect<unknown, ProviderError.PermanentError> =>
  typeof content === "string"
    ? Effect.succeed(content)
    : Effect.forEach(Array.isArray(content) ? content : [content], resolveBlock)

const resolveSystem = (content: unknown): unknown =>
  Array.isArray(content)
    ? content.map((block) => (typeof block === "string" ? { type: "text", text: block } : block))
    : content

/**
 * The usage of one answer. Anthropic's `input_tokens` leaves out the tokens read from and
 * written to the prompt cache, which are billed too, so they are added back into
 * `prompt_tokens` and also kept on their own. It reports no separate count of thinking tokens
 * (they are in `output_tokens`).
 */
const readUsage = (usage: Json): Usage.Usage | undefined => {
  const input = Usage.count(usage.input_tokens)
  const output = Usage.count(usage.output_tokens)
  const cacheRead = Usage.count(usage.cache_read_input_tokens)
  const cacheWrite = Usage.count(usage.cache_creation_input_tokens)
  const prompt = input === undefined && cacheRead === undefined && cacheWrite === undefined
    ? undefined
    : (input ?? 0) + (cacheRead ?? 0) + (cacheWrite ?? 0)
  if (prompt === undefined && output === undefined) return undefined
  return Usage.make({
    prompt_tokens: prompt,
    completion_tokens: output,
    total_tokens: (prompt ?? 0) + (output ?? 0),
    cached_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    reasoning_tokens: undefined
  })
}

/** One answer as read from a Messages API response. */
interface Answer {
  readonly text: string
  readonly extras: AnswerFields.Extras
  readonly stopReason: string | null
  readonly model: string | undefined
  readonly usage: Usage.Usage | undefined
  /** What the response's `anthropic-ratelimit-*` headers said. */
  readonly rateLimit: Provider.RateLimitInfo | undefined
}

/** The content blocks that are calls of a tool: the client's, and those the API runs itself. */
const toolUseBlocks: ReadonlyArray<string> = ["tool_use", "server_tool_use", "mcp_tool_use"]

const malformed = (what: string) => new ProviderError.TransientError({ message: `${api}: malformed response: ${what}` })

const readAnswer = (body: unknown, headers: Headers): Effect.Effect<Answer, ProviderError.TransientError> => {
  if (!isObject(body)) return Effect.fail(malformed(`expected a message object, got ${typeof body}`))
  if (!Array.isArray(body.content)) return Effect.fail(malformed("no \"content\" list"))
  const blocks = body.content.filter(isObject)
  const text = blocks
    .filter((block) => block.type === "text" && typeof block.text === "string")
    .map((block) => block.text as string)
    .join("")
  const toolCalls = blocks
    .filter((block) => typeof block.type === "string" && toolUseBlocks.includes(block.type))
    .map((block) => AnswerFields.toolCall(block.id, block.name, block.input, block))
  const reasoning = AnswerFields.joinReasoning(
    blocks.flatMap((block) => block.type === "thinking" && typeof block.thinking === "string" ? [block.thinking] : [])
  )
  return Effect.succeed({
    text,
    extras: { toolCalls, reasoning },
    stopReason: typeof body.stop_reason === "string" ? body.stop_reason : null,
    model: typeof body.model === "string" ? body.model : undefined,
    usage: isObject(body.usage) ? readUsage(body.usage) : undefined,
    rateLimit: RateLimitHeaders.parse(headers, Date.now())
  })
}

/** The typed error for what the SDK threw; API errors carry Anthropic's own message. */
const failure = (sdk: typeof AnthropicSdk, error: unknown, url: string): ProviderError.ProviderError => {
  if (error instanceof sdk.APIError && typeof error.status === "number") {
    const detail = error.apiMessage ?? error.message
    const kind = error.type === null ? "" : ` ${error.type}`
    return ProviderFailure.fromStatus(error.status, `${api}: ${error.status}${kind}: ${detail}`, error.headers)
  }
  return ProviderFailure.fromUnknown(error, api, url)
}

const toResponse = (answers: ReadonlyArray<Answer>, multiTurn: boolean): Provider.ProviderResponse => {
  const usage = Usage.sum(answers.map((answer) => answer.usage))
  const last = answers.at(-1)
  return {
    response: multiTurn ? answers.map((answer) => answer.text) : last?.text ?? "",
    ...(usage === undefined ? {} : { usage }),
    fields: {
      finish_reason: multiTurn ? answers.map((answer) => answer.stopReason) : last?.stopReason ?? null,
      ...AnswerFields.fields(multiTurn ? answers.map((answer) => answer.extras) : last === undefined ? [] : [last.extras], multiTurn),
      ...(last?.model === undefined ? {} : { model: last.model })
    },
    // the latest word on the limits: earlier turns' headers are out of date
    ...(last?.rateLimit === undefined ? {} : { rateLimit: last.rateLimit })
  }
}

/**
 * The SDK, imported by the first query, so a run without `anthropic` records (and
 * `prompto --help`) never loads it.
 */
const loadSdk: Effect.Effect<typeof AnthropicSdk, ProviderError.PermanentError> = Effect.tryPromise({
  try: () => import("@anthropic-ai/sdk"),
  catch: (error) =>
    new ProviderError.PermanentError({
      reason: "configuration",
      message: `${api}: cannot load @anthropic-ai/sdk: ${error instanceof Error ? error.message : String(error)}`
    })
})

/** One message request through a copy of `client` that refuses it (`UndiciFetch.refusingFetch`): nothing reaches the API. */
const rehearse = (client: Anthropic, model: string): Effect.Effect<void> =>
  Effect.promise(() =>
    Promise.resolve()
      .then(() =>
        client.withOptions({ fetch: UndiciFetch.refusingFetch, maxRetries: 0, logLevel: "off" }).messages
          .create({ model, max_tokens: 1, messages: [{ role: "user", content: "" }] })
          .withResponse()
      )
      .then(() => undefined, () => undefined)
  )

/**
 * Makes an Anthropic provider. Configuration is read per record, so making it never fails; each
 * instance keeps one SDK client per (key, endpoint), with SDK retries off and the SDK timeout out
 * of the way (the scheduler's timeout interrupts, and so aborts, the HTTP call).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Provider.Provider => {
  const clients = new Map<string, Anthropic>()

  const clientFor = (
    sdk: typeof AnthropicSdk,
    modelName: string
  ): Effect.Effect<Anthropic, ProviderError.PermanentError> =>
    Effect.gen(function*() {
      const key = yield* ModelConfig.lookupSecret(apiKeyVariable, modelName)
      if (Option.isNone(key)) {
        return yield* new ProviderError.PermanentError({
          reason: "configuration",
          message: ModelConfig.missingMessage(apiKeyVariable, modelName)
        })
      }
      const baseURL = Option.getOrElse(yield* ModelConfig.lookup(baseUrlVariable, modelName), () => defaultBaseUrl)
      if (!isValidBaseUrl(baseURL)) {
        return yield* new ProviderError.PermanentError({
          reason: "configuration",
          message: invalidBaseUrl(baseUrlVariable, modelName)
        })
      }
      const apiKey = Redacted.value(key.value)
      const id = `${baseURL}\u0000${apiKey}`
      const existing = clients.get(id)
      if (existing !== undefined) return existing
      const client = new sdk.Anthropic({ apiKey, baseURL, maxRetries: 0, timeout: clientTimeoutMs, fetch: UndiciFetch.fetch })
      clients.set(id, client)
      return client
    })

  // the variables are read once per model, not for every line and request
  const configProblemsOf = ModelConfig.perModel((modelName) =>
    Effect.gen(function*() {
      const configuration = yield* ModelConfig.checkRequired([apiKeyVariable], modelName)
      const baseUrl = yield* ModelConfig.lookup(baseUrlVariable, modelName)
      const endpoint = Option.isSome(baseUrl) && !isValidBaseUrl(baseUrl.value)
        ? [{ key: "api", message: invalidBaseUrl(baseUrlVariable, modelName) }]
        : []
      // the SDK and the transport are loaded here, before the model's first send: an import
      // during the first sends would hold them while the pacer goes on granting slots; and the
      // SDK's request path runs once, refused before anything is sent (`rehearse`)
      yield* Effect.ignore(Effect.zip(loadSdk, UndiciFetch.warmUpForSdk, { concurrent: true }))
      const problems = [...configuration, ...endpoint]
      if (problems.length === 0) yield* Effect.ignore(Effect.flatMap(clientOf(modelName), (client) => rehearse(client, modelName)))
      return problems
    })
  )
  const clientOf = ModelConfig.perModel((modelName) => Effect.flatMap(loadSdk, (sdk) => clientFor(sdk, modelName)))

  return {
    api,
    check: (record) =>
      Effect.gen(function*() {
        const inspection = inspect(record)
        const media = yield* Media.checkExists(inspection.media)
        return [...inspection.problems, ...media, ...(yield* configProblemsOf(record.model_name))]
      }),
    // every wait on the API is a `Provider.callPromise`: the request timeout ends it on the line's own fiber
    timesOut: true,
    query: (record) =>
      Effect.gen(function*() {
        const { plan, problems } = inspect(record)
        if (plan === undefined) {
          return yield* new ProviderError.PermanentError({ reason: "validation", message: formatProblems(problems) })
        }
        const sdk = yield* loadSdk
        const client = yield* clientOf(record.model_name)
        const parameters = record.parameters ?? {}
        // `withResponse()` hands over the `Response` the SDK reads anyway, for its rate-limit headers
        const send = (messages: ReadonlyArray<{ readonly role: string; readonly content: unknown }>, system?: unknown) =>
          Provider.callPromise(
            (signal) =>
              client.messages.create(
                {
                  ...parameters,
                  model: record.model_name,
                  messages,
                  ...(system === undefined ? {} : { system })
                } as MessageCreateParamsNonStreaming,
                { signal }
              ).withResponse(),
            (error) => failure(sdk, error, client.baseURL)
          ).pipe(Effect.flatMap(({ data, response }) => readAnswer(data, response.headers)))

        switch (plan._tag) {
          case "Single":
            return toResponse([yield* send([{ role: "user", content: plan.text }])], false)
          case "Turns": {
            const history: Array<{ readonly role: "user" | "assistant"; readonly content: string }> = []
            const answers: Array<Answer> = []
            for (const turn of plan.turns) {
              history.push({ role: "user", content: turn })
              const answer = yield* send([...history])
              answers.push(answer)
              history.push({ role: "assistant", content: answer.text })
            }
            return toResponse(answers, true)
          }
          case "History": {
            const messages = yield* Effect.forEach(plan.messages, (message) =>
              Effect.map(resolveContent(message.content), (content) => ({ role: message.role, content })))
            const system = plan.system === undefined ? undefined : resolveSystem(plan.system)
            return toResponse([yield* send(messages, system)], false)
          }
        }
      })
  }
}

/**
 * Installs the `anthropic` provider as its own registry entry (composes with other provider
 * layers via `Layer.mergeAll`). A fresh provider (with its own clients) is made each time the
 * layer is built; building it never fails, even without keys.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Layer.suspend(() => Provider.layer(make()))
