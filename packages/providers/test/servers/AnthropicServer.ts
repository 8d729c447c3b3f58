/**
 * A loopback server speaking Anthropic's Messages API (`POST /v1/messages`) for tests: it checks
 * requests as the real API does (auth, `anthropic-version`, `max_tokens`, roles, image sources),
 * records every request, and answers with realistic message JSON or programmed failures
 * (error bodies with headers, malformed bodies, hangs); a message may carry `thinking` and
 * `tool_use` blocks besides its text. Messages carry no rate-limit headers
 * unless a reply gives some (`rateLimitHeaders` are Anthropic's).
 */
import { Effect, type Scope } from "effect"
import type * as http from "node:http"
import * as Loopback from "./Loopback.js"

/** What the server does with one request. */
export type Reply =
  | {
    readonly _tag: "Message"
    /** The text blocks of the answer (default: an answer derived from the request). */
    readonly text?: string | ReadonlyArray<string>
    /** Extra content blocks put before the text (e.g. a `thinking` block, see `thinkingBlock`). */
    readonly extraBlocks?: ReadonlyArray<object>
    /** Content blocks put after the text (e.g. `tool_use` blocks, which come last; see `toolUseBlock`). */
    readonly trailingBlocks?: ReadonlyArray<object>
    readonly stopReason?: string
    /** The served model (default: the requested one). */
    readonly model?: string
    /**
     * The `usage` sent as given (default: word counts, with no cache use). Anthropic's
     * `input_tokens` leaves out the cache reads and writes.
     */
    readonly usage?: {
      readonly input_tokens: number
      readonly output_tokens: number
      readonly cache_creation_input_tokens?: number | null
      readonly cache_read_input_tokens?: number | null
    }
    /** Headers sent with the message (e.g. `rateLimitHeaders(...)`). */
    readonly headers?: Readonly<Record<string, string>>
  }
  | {
    readonly _tag: "Error"
    readonly status: number
    readonly type: string
    readonly message: string
    readonly headers?: Readonly<Record<string, string>>
  }
  /** 200 with a JSON content type and a body that is not JSON. */
  | { readonly _tag: "Malformed" }
  /** 200 with valid JSON that is not a message. */
  | { readonly _tag: "Json"; readonly body: unknown }
  /** Never answers: the client must give up and close the connection. */
  | { readonly _tag: "Hang" }

/** One request as the server received it. */
export interface RecordedRequest {
  readonly index: number
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  /** The parsed JSON body (`undefined` if it was not JSON). */
  readonly body: any
  /** What the server answered: the text of a message, or the reply's tag. */
  answer: string | undefined
  /** The reply's tag, or the API error type when the request was rejected. */
  outcome: string | undefined
  /** Whether the response was completely sent. */
  answered: boolean
  /** Resolves when the request's response closes (sent, or the client went away). */
  readonly closed: Promise<void>
}

/** Options of the server. */
export interface ServerOptions {
  /** API keys the server accepts (default `["test-key"]`). */
  readonly apiKeys?: ReadonlyArray<string>
}

/** A running server. */
export interface AnthropicServer {
  /** The base URL (`http://127.0.0.1:<port>`), for `ANTHROPIC_BASE_URL`. */
  readonly url: string
  /** Every request received, in order. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** The next requests (of any model) get these replies, in order. */
  readonly enqueue: (...replies: ReadonlyArray<Reply>) => void
  /** Requests for this model get this reply whenever the queue is empty. */
  readonly forModel: (model: string, reply: Reply) => void
  /** Forgets recorded requests and programmed replies. */
  readonly reset: () => void
}

const imageMediaTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"]

const isObject = (value: unknown): value is Record<string, any> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.filter((block) => isObject(block) && block.type === "text").map((block) => String(block.text)).join(" ")
    : ""

const words = (text: string): number => text.split(/\s+/).filter((word) => word.length > 0).length

/**
 * Rate-limit headers as Anthropic sends them, each window's reset `resetInMs` after `now`
 * (RFC 3339, to the second as Anthropic writes them): 50 requests, 40,000 input and 8,000
 * output tokens a minute. `tokens: false` leaves out the combined `tokens` window, as a response
 * may, keeping the input and output ones.
 */
export const rateLimitHeaders = (
  now: number,
  options: {
    readonly remainingRequests?: number
    readonly remainingInputTokens?: number
    readonly remainingOutputTokens?: number
    readonly resetInMs?: number
    readonly tokens?: boolean
  } = {}
): Readonly<Record<string, string>> => {
  const reset = new Date(now + (options.resetInMs ?? 30_000)).toISOString().replace(/\.\d{3}Z$/, "Z")
  const input = options.remainingInputTokens ?? 39_000
  const output = options.remainingOutputTokens ?? 7_900
  // the combined window is the most restrictive one in effect, as Anthropic documents it
  const tokens = output / 8_000 < input / 40_000 ? { limit: 8_000, remaining: output } : { limit: 40_000, remaining: input }
  return {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": String(options.remainingRequests ?? 49),
    "anthropic-ratelimit-requests-reset": reset,
    "anthropic-ratelimit-input-tokens-limit": "40000",
    "anthropic-ratelimit-input-tokens-remaining": String(input),
    "anthropic-ratelimit-input-tokens-reset": reset,
    "anthropic-ratelimit-output-tokens-limit": "8000",
    "anthropic-ratelimit-output-tokens-remaining": String(output),
    "anthropic-ratelimit-output-tokens-reset": reset,
    ...(options.tokens === false
      ? {}
      : {
        "anthropic-ratelimit-tokens-limit": String(tokens.limit),
        "anthropic-ratelimit-tokens-remaining": String(tokens.remaining),
        "anthropic-ratelimit-tokens-reset": reset
      })
  }
}

/** A `thinking` block as extended thinking returns it (with its signature). */
export const thinkingBlock = (thinking: string) => ({ type: "thinking", thinking, signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds" })

/** A `tool_use` block: a call of a client tool with its `input`. */
export const toolUseBlock = (id: string, name: string, input: unknown) => ({ type: "tool_use", id, name, input })

/** The default answer: names the request number, the model and the last user text. */
export const defaultAnswer = (index: number, model: string, lastUserText: string): string =>
  `Answer ${index} from ${model}: ${lastUserText}`

/** Why the real API would reject a request body, or undefined if it would accept it. */
const invalidRequest = (body: unknown): string | undefined => {
  if (!isObject(body)) return "request body must be a JSON object"
  if (typeof body.model !== "string") return "model: Field required"
  if (!("max_tokens" in body)) return "max_tokens: Field required"
  if (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens) || body.max_tokens < 0) {
    return "max_tokens: Input should be a valid non-negative integer"
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "messages: at least one message is required"
  if ("system" in body && typeof body.system !== "string" && !Array.isArray(body.system)) {
    return "system: Input should be a valid string or list of text blocks"
  }
  for (const [i, message] of body.messages.entries()) {
    if (!isObject(message)) return `messages.${i}: Input should be an object`
    // strict on purpose: prompto's system message must arrive as the top-level `system`
    if (message.role !== "user" && message.role !== "assistant") {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`
    }
    const content = message.content
    if (typeof content === "string") continue
    if (!Array.isArray(content)) return `messages.${i}.content: Input should be a valid string or list`
    for (const [j, block] of content.entries()) {
      const at = `messages.${i}.content.${j}`
      if (!isObject(block) || typeof block.type !== "string") return `${at}: Input should be a content block`
      if (block.type === "text" && typeof block.text !== "string") return `${at}.text: Field required`
      if (block.type === "image") {
        const source = block.source
        if (!isObject(source)) return `${at}.source: Field required`
        if (source.type === "base64") {
          if (!imageMediaTypes.includes(source.media_type)) return `${at}.source.media_type: Input should be ${imageMediaTypes.join(", ")}`
          if (typeof source.data !== "string" || source.data === "") return `${at}.source.data: Field required`
          if (Buffer.from(source.data, "base64").toString("base64") !== source.data) return `${at}.source.data: invalid base64 data`
        } else if (source.type === "url") {
          if (typeof source.url !== "string") return `${at}.source.url: Field required`
        } else {
          return `${at}.source.type: Input tag '${String(source.type)}' does not match 'base64', 'url' or 'file'`
        }
      }
    }
  }
  return undefined
}

const messageBody = (request: RecordedRequest, reply: Extract<Reply, { _tag: "Message" }>) => {
  const body = request.body as Record<string, any>
  const messages = body.messages as ReadonlyArray<Record<string, unknown>>
  const lastUser = [...messages].reverse().find((message) => message.role === "user")
  const texts = reply.text === undefined
    ? [defaultAnswer(request.index, body.model, textOf(lastUser?.content))]
    : typeof reply.text === "string"
    ? [reply.text]
    : reply.text
  const inputText = [textOf(body.system), ...messages.map((message) => textOf(message.content))].join(" ")
  return {
    answer: texts.join(""),
    json: {
      id: `msg_${String(request.index).padStart(6, "0")}`,
      type: "message",
      role: "assistant",
      model: reply.model ?? body.model,
      content: [
        ...(reply.extraBlocks ?? []),
        ...texts.map((text) => ({ type: "text", text, citations: null })),
        ...(reply.trailingBlocks ?? [])
      ],
      stop_reason: reply.stopReason ?? "end_turn",
      stop_sequence: null,
      stop_details: null,
      container: null,
      diagnostics: null,
      usage: reply.usage ?? {
        input_tokens: words(inputText),
        output_tokens: words(texts.join(" ")),
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        service_tier: "standard"
      }
    }
  }
}

const sendJson = (
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {}
) => Loopback.sendJson(response, status, body, { "request-id": `req_${Date.now()}`, ...headers })

const errorBody = (type: string, message: string) => ({ type: "error", error: { type, message }, request_id: "req_test" })

/** Starts the server on 127.0.0.1 (a free port) for the scope's lifetime. */
export const start = (options: ServerOptions = {}): Effect.Effect<AnthropicServer, never, Scope.Scope> =>
  Effect.suspend(() => {
    const apiKeys = options.apiKeys ?? ["test-key"]
    const requests: Array<RecordedRequest> = []
    const queued = Loopback.replies<Reply>()

    const handle = ({ request: incoming, response, closed, hang }: Loopback.Exchange) => {
      const body = incoming.json
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value
      }
      const request: RecordedRequest = {
        index: requests.length,
        method: incoming.method,
        path: incoming.url,
        headers,
        body,
        answer: undefined,
        outcome: undefined,
        answered: false,
        closed: closed.then(() => {
          request.answered = response.writableFinished
        })
      }
      requests.push(request)
      const reject = (status: number, type: string, message: string) => {
        request.outcome = type
        sendJson(response, status, errorBody(type, message))
      }

      if (request.method !== "POST" || request.path !== "/v1/messages") {
        return reject(404, "not_found_error", `Not found: ${request.method} ${request.path}`)
      }
      const bearer = headers.authorization?.replace(/^Bearer /, "")
      const key = headers["x-api-key"] ?? bearer
      if (key === undefined || !apiKeys.includes(key)) {
        return reject(401, "authentication_error", "invalid x-api-key")
      }
      if (headers["anthropic-version"] === undefined) {
        return reject(400, "invalid_request_error", "anthropic-version: header is required")
      }
      if (!headers["content-type"]?.startsWith("application/json")) {
        return reject(400, "invalid_request_error", "content-type must be application/json")
      }
      const invalid = invalidRequest(body)
      if (invalid !== undefined) return reject(400, "invalid_request_error", invalid)

      const model = (body as { model: string }).model
      const reply: Reply = queued.take(request, model) ?? { _tag: "Message" }
      request.outcome = reply._tag
      switch (reply._tag) {
        case "Message": {
          const { answer, json } = messageBody(request, reply)
          request.answer = answer
          return sendJson(response, 200, json, reply.headers)
        }
        case "Error":
          request.outcome = reply.type
          return sendJson(response, reply.status, errorBody(reply.type, reply.message), reply.headers)
        case "Malformed":
          return Loopback.sendMalformed(response, "{\"id\": \"msg_01\", \"type\": \"message\", \"content\": [{\"type\": \"te")
        case "Json":
          return sendJson(response, 200, reply.body)
        case "Hang":
          void hang() // never answers
          return
      }
    }

    return Effect.map(Loopback.start(handle), (loopback): AnthropicServer => ({
      url: loopback.url,
      requests,
      enqueue: (...replies) => queued.enqueueAll(replies),
      forModel: (model, reply) => queued.set(model, reply),
      reset: () => {
        requests.length = 0
        queued.clear()
      }
    }))
  })
