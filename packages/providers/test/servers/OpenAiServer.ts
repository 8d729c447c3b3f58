/**
 * A loopback server that speaks the OpenAI wire protocol as OpenAI, Azure OpenAI and Hugging
 * Face TGI do: `POST .../chat/completions` and `POST .../completions` with JSON bodies,
 * bearer or `api-key` auth, Azure's deployment paths and `api-version`, OpenAI- and
 * Azure-shaped error bodies. It records every request and answers with realistic completions,
 * or with a queued reply: an answer whose message holds tool calls or reasoning text, any
 * status (429 with `retry-after`, 500, 400 ...), a malformed body, or a hang that never answers
 * (and notices when the client closes the connection). Answers
 * carry no rate-limit headers unless a reply or `Options.answerHeaders` gives some
 * (`rateLimitHeaders` are OpenAI's).
 */
import { Effect, type Scope } from "effect"
import { getEncoding } from "js-tiktoken"
import * as Loopback from "./Loopback.js"

/** One request as the server received it. */
export interface RecordedRequest {
  readonly method: string
  /** The path without the query string. */
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  /** Header names lower-cased, as Node gives them. */
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  /** The parsed JSON body (`undefined` if it was not JSON). */
  readonly body: any
}

/**
 * The usage details a chat answer reports besides the three counts, in OpenAI's nested
 * `prompt_tokens_details` and `completion_tokens_details` (left out when not given, as older
 * models and OpenAI-compatible servers do).
 */
export interface UsageDetails {
  /** `prompt_tokens_details.cached_tokens`: a part of `prompt_tokens`, so at most that. */
  readonly cachedTokens?: number
  /** `completion_tokens_details.reasoning_tokens`: added to `completion_tokens`, which bills them. */
  readonly reasoningTokens?: number
}

/**
 * What a chat answer's message holds besides the realistic text: tool calls (then
 * `finish_reason` is `tool_calls`) and the `reasoning_content` of DeepSeek and vLLM.
 */
export interface MessageExtras {
  /** `message.content` instead of the answer text; `null` as OpenAI sends it with tool calls only. */
  readonly content?: string | null
  /** `message.tool_calls`, as OpenAI sends them (see `toolCall`). */
  readonly toolCalls?: ReadonlyArray<unknown>
  /** `message.reasoning_content`. */
  readonly reasoningContent?: string
}

/** A `tool_calls` item as OpenAI sends it: the arguments as a JSON string. */
export const toolCall = (id: string, name: string, args: unknown) => ({
  id,
  type: "function",
  function: { name, arguments: typeof args === "string" ? args : JSON.stringify(args) }
})

/** What the server does with one request. */
export type Reply =
  | {
    readonly _tag: "Answer"
    readonly usage?: UsageDetails
    /** The message of each choice (by index) holds these (chat only). */
    readonly message?: MessageExtras | ((choice: number) => MessageExtras)
    /** Headers sent with the answer (instead of `Options.answerHeaders`). */
    readonly headers?: Readonly<Record<string, string>>
  }
  | {
    readonly _tag: "Status"
    readonly status: number
    readonly body: unknown
    readonly headers?: Readonly<Record<string, string>>
  }
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Hang" }

/** An OpenAI error body. */
export const openAiError = (message: string, type = "invalid_request_error", code: string | null = null) => ({
  error: { message, type, param: null, code }
})

/**
 * Rate-limit headers as OpenAI sends them with every answer and refusal (its defaults
 * overridable): 500 requests and 30,000 tokens a minute.
 */
export const rateLimitHeaders = (
  values: Partial<Record<"limitRequests" | "remainingRequests" | "resetRequests" | "limitTokens" | "remainingTokens" | "resetTokens", string>> = {}
): Readonly<Record<string, string>> => ({
  "x-ratelimit-limit-requests": values.limitRequests ?? "500",
  "x-ratelimit-remaining-requests": values.remainingRequests ?? "499",
  "x-ratelimit-reset-requests": values.resetRequests ?? "120ms",
  "x-ratelimit-limit-tokens": values.limitTokens ?? "30000",
  "x-ratelimit-remaining-tokens": values.remainingTokens ?? "29980",
  "x-ratelimit-reset-tokens": values.resetTokens ?? "40ms"
})

/** Canned replies. */
export const replies = {
  answer: { _tag: "Answer" } as Reply,
  /** The realistic answer, its chat usage reporting these details. */
  answerWith: (usage: UsageDetails): Reply => ({ _tag: "Answer", usage }),
  /** A chat answer whose message (of every choice, or per choice index) holds tool calls or reasoning. */
  answerWithMessage: (message: MessageExtras | ((choice: number) => MessageExtras)): Reply => ({ _tag: "Answer", message }),
  /** The realistic answer with these headers (e.g. `rateLimitHeaders()`). */
  answerWithHeaders: (headers: Readonly<Record<string, string>>): Reply => ({ _tag: "Answer", headers }),
  status: (status: number, body: unknown, headers?: Readonly<Record<string, string>>): Reply =>
    headers === undefined ? { _tag: "Status", status, body } : { _tag: "Status", status, body, headers },
  /** OpenAI's 429 for requests per minute, with `retry-after` and any further headers. */
  rateLimited: (retryAfterSeconds: string, headers: Readonly<Record<string, string>> = {}): Reply => ({
    _tag: "Status",
    status: 429,
    body: openAiError("Rate limit reached for gpt-4o in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1.", "requests", "rate_limit_exceeded"),
    headers: { "retry-after": retryAfterSeconds, ...headers }
  }),
  serverError: { _tag: "Status", status: 500, body: openAiError("The server had an error while processing your request. Sorry about that!", "server_error") } as Reply,
  malformed: { _tag: "Malformed" } as Reply,
  hang: { _tag: "Hang" } as Reply
}

/** Who may call, and (for Azure) which deployments exist. */
export type Auth =
  | { readonly _tag: "Bearer"; readonly keys: ReadonlyArray<string> }
  | {
    readonly _tag: "Azure"
    readonly keys: ReadonlyArray<string>
    readonly apiVersion: string
    readonly deployments: ReadonlyArray<string>
  }

export interface Options {
  readonly auth?: Auth
  /** The model the server reports for a requested one (default `<requested>-2024-08-06`). */
  readonly servedModel?: (requested: string) => string
  /**
   * How usage counts tokens: `words` (default: whitespace-separated words, easy to check by
   * hand) or `tiktoken`, as OpenAI does (`js-tiktoken`, an implementation independent of the
   * one prompto uses: `o200k_base` for GPT-4o and later, `cl100k_base` for GPT-4 and GPT-3.5;
   * 3 tokens a message plus its role, and 3 to prime the reply).
   */
  readonly tokens?: "words" | "tiktoken"
  /** Headers sent with every realistic answer a reply does not give its own (default: none). */
  readonly answerHeaders?: Readonly<Record<string, string>>
}

/** Counts the tokens of a chat request and of a text the way `Options.tokens` says. */
interface TokenCounting {
  readonly text: (model: string, text: string) => number
  readonly chat: (model: string, messages: ReadonlyArray<Record<string, unknown>>) => number
}

const wordCounting: TokenCounting = {
  text: (_model, text) => words(text),
  chat: (_model, messages) => messages.reduce((total, message) => total + words(contentText(message.content)), 0)
}

const tiktokenCounting = (): TokenCounting => {
  const o200k = getEncoding("o200k_base")
  const cl100k = getEncoding("cl100k_base")
  const encodingOf = (model: string) => (/^(gpt-4(?![o.])|gpt-4-|gpt-3\.5)/.test(model) ? cl100k : o200k)
  const text = (model: string, value: string) => encodingOf(model).encode(value).length
  return {
    text,
    chat: (model, messages) =>
      3 + messages.reduce((total, message) => total + 3 + text(model, String(message.role ?? "")) + text(model, contentText(message.content)), 0)
  }
}

export interface OpenAiServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Queues replies for the next requests (then realistic answers again). */
  readonly enqueue: (...replies: ReadonlyArray<Reply>) => void
  /** TCP connections accepted so far. */
  readonly connections: () => number
  /** Completes when the connection of a hung request has been closed by the client. */
  readonly hangClosed: Effect.Effect<void>
}

/** The answer text for a question; choice 0 is "Answer to: ...", later ones are numbered. */
export const answerText = (question: string, choice = 0): string =>
  choice === 0 ? `Answer to: ${question}` : `Answer ${choice + 1} to: ${question}`

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The text of a message content: a string, or the text parts of a list. */
export const contentText = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.flatMap((part) => (isRecord(part) && part.type === "text" && typeof part.text === "string" ? [part.text] : []))
      .join(" ")
    : ""

const words = (text: string): number => text.split(/\s+/).filter((word) => word.length > 0).length

const messageOf = (text: string, extras: MessageExtras | undefined) => {
  if (extras === undefined) return { role: "assistant", content: text, refusal: null }
  return {
    role: "assistant",
    content: extras.content === undefined ? text : extras.content,
    refusal: null,
    ...(extras.reasoningContent === undefined ? {} : { reasoning_content: extras.reasoningContent }),
    ...(extras.toolCalls === undefined ? {} : { tool_calls: extras.toolCalls })
  }
}

const answer = (
  kind: "chat" | "completion",
  body: any,
  served: string,
  details: UsageDetails = {},
  tokens: TokenCounting = wordCounting,
  message?: MessageExtras | ((choice: number) => MessageExtras)
) => {
  const model = typeof body?.model === "string" ? body.model : served
  const n = typeof body?.n === "number" ? body.n : 1
  const created = 1_720_000_000
  if (kind === "chat") {
    const messages: ReadonlyArray<Record<string, unknown>> = Array.isArray(body?.messages) ? body.messages : []
    const question = contentText([...messages].reverse().find((message) => message.role === "user")?.content)
    const texts = Array.from({ length: n }, (_, choice) => answerText(question, choice))
    const promptTokens = tokens.chat(model, messages)
    const completionTokens = texts.reduce((total, text) => total + tokens.text(model, text), 0) + (details.reasoningTokens ?? 0)
    return {
      id: "chatcmpl-9tEst0000000000000000000000",
      object: "chat.completion",
      created,
      model: served,
      choices: texts.map((text, index) => {
        const extras = typeof message === "function" ? message(index) : message
        return {
          index,
          message: messageOf(text, extras),
          logprobs: null,
          finish_reason: extras?.toolCalls === undefined ? "stop" : "tool_calls"
        }
      }),
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        ...(details.cachedTokens === undefined ? {} : { prompt_tokens_details: { cached_tokens: details.cachedTokens } }),
        ...(details.reasoningTokens === undefined
          ? {}
          : { completion_tokens_details: { reasoning_tokens: details.reasoningTokens } })
      },
      system_fingerprint: "fp_test"
    }
  }
  const question = typeof body?.prompt === "string" ? body.prompt : ""
  const texts = Array.from({ length: n }, (_, choice) => answerText(question, choice))
  const promptTokens = tokens.text(model, question)
  const completionTokens = texts.reduce((total, text) => total + tokens.text(model, text), 0)
  return {
    id: "cmpl-9tEst0000000000000000000000",
    object: "text_completion",
    created,
    model: served,
    choices: texts.map((text, index) => ({ text, index, logprobs: null, finish_reason: "length" })),
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
  }
}

const azureNotFound = { error: { code: "404", message: "Resource not found" } }

/** Checks path and auth as the real service would; an error reply, or the endpoint kind. */
const route = (
  auth: Auth | undefined,
  request: RecordedRequest
): { readonly _tag: "Route"; readonly kind: "chat" | "completion" } | Extract<Reply, { _tag: "Status" }> => {
  if (auth?._tag === "Azure") {
    const match = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions)$/.exec(request.path)
    if (request.method !== "POST" || match === null || request.query["api-version"] !== auth.apiVersion) {
      return { _tag: "Status", status: 404, body: azureNotFound }
    }
    const key = request.headers["api-key"]
    if (typeof key !== "string" || !auth.keys.includes(key)) {
      return {
        _tag: "Status",
        status: 401,
        body: {
          error: {
            code: "401",
            message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
          }
        }
      }
    }
    if (!auth.deployments.includes(decodeURIComponent(match[1]!))) {
      return {
        _tag: "Status",
        status: 404,
        body: {
          error: {
            code: "DeploymentNotFound",
            message: "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."
          }
        }
      }
    }
    return { _tag: "Route", kind: match[2] === "completions" ? "completion" : "chat" }
  }
  const match = /^\/v1\/(chat\/completions|completions)$/.exec(request.path)
  if (request.method !== "POST" || match === null) {
    return {
      _tag: "Status",
      status: 404,
      body: openAiError(`Invalid URL (${request.method} ${request.path})`)
    }
  }
  if (auth?._tag === "Bearer") {
    const header = request.headers["authorization"]
    const key = typeof header === "string" && header.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined
    if (key === undefined || !auth.keys.includes(key)) {
      return {
        _tag: "Status",
        status: 401,
        body: openAiError(`Incorrect API key provided: ${key ?? ""}.`, "invalid_request_error", "invalid_api_key")
      }
    }
  }
  return { _tag: "Route", kind: match[1] === "completions" ? "completion" : "chat" }
}

/** Starts the server on 127.0.0.1 (port 0) for the scope's lifetime. */
export const make = (options: Options = {}): Effect.Effect<OpenAiServer, never, Scope.Scope> =>
  Effect.suspend(() => {
    const requests: Array<RecordedRequest> = []
    const queued = Loopback.replies<Reply>()
    const servedModel = options.servedModel ?? ((requested: string) => `${requested}-2024-08-06`)
    const counting = options.tokens === "tiktoken" ? tiktokenCounting() : wordCounting
    return Effect.map(
      Loopback.start(({ request: incoming, response, hang }) => {
        const { method, path, query, headers, json: body } = incoming
        const request: RecordedRequest = { method, path, query, headers, body }
        requests.push(request)

        const routed = route(options.auth, request)
        if (routed._tag === "Status") return Loopback.sendJson(response, routed.status, routed.body, routed.headers)
        const reply = queued.take(request) ?? replies.answer
        switch (reply._tag) {
          case "Answer": {
            const model = isRecord(body) && typeof body.model === "string" ? body.model : ""
            const headers = reply.headers ?? options.answerHeaders
            return Loopback.sendJson(
              response,
              200,
              answer(routed.kind, body, servedModel(model), reply.usage, counting, reply.message),
              headers
            )
          }
          case "Status":
            return Loopback.sendJson(response, reply.status, reply.body, reply.headers)
          case "Malformed":
            return Loopback.sendMalformed(response, "{\"id\": \"chatcmpl-broken\", \"choices\": [{\"index\": 0, \"message\": ")
          case "Hang":
            // never answer; the server notices when the client gives up and closes the connection
            void hang()
            return
        }
      }),
      (loopback): OpenAiServer => ({
        url: loopback.url,
        requests,
        enqueue: (...more) => queued.enqueueAll(more),
        connections: loopback.connections,
        hangClosed: Effect.promise(() => loopback.hangClosed())
      })
    )
  })
