/**
 * A loopback server speaking the wire protocol of the Gemini API and of Vertex AI's
 * `generateContent`, for tests through the real `@google/genai` SDK:
 *
 * - `POST /v1beta/models/<model>:generateContent` (Gemini API, key in `x-goog-api-key`);
 * - `POST /v1beta1/projects/<project>/locations/<location>/publishers/google/models/<model>:generateContent`
 *   (Vertex AI, `Authorization: Bearer <token>`);
 * - `GET /v1beta/files/<id>` (Files API lookup of an uploaded file);
 * - `POST /token` (Google's OAuth token endpoint, for a refresh-token credential).
 *
 * Every request is recorded. `generateContent` answers from a queue of programmed replies, else
 * with a default answer echoing the last user text, with Google's safety ratings, usage and
 * model version.
 *
 * @since 0.1.0
 */
import { Effect, type Scope } from "effect"
import type * as http from "node:http"
import * as Loopback from "./Loopback.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  /** The parsed JSON body, or the raw text if it is not JSON. */
  readonly body: any
  /** For `generateContent`: the model, and for Vertex the project and location. */
  readonly model?: string
  readonly project?: string
  readonly location?: string
}

/**
 * Usage counts an answer reports besides prompt and candidates (left out when not given, as
 * models without thinking or cached content do).
 *
 * @since 0.1.0
 * @category models
 */
export interface UsageDetails {
  /** `cachedContentTokenCount`: a part of `promptTokenCount`, so at most that. */
  readonly cached?: number
  /** `thoughtsTokenCount`: not in `candidatesTokenCount`, but in `totalTokenCount`. */
  readonly thoughts?: number
}

/**
 * A programmed reply: JSON with a status and headers, a raw body, the default answer with usage
 * details, or a hang that never answers.
 *
 * @since 0.1.0
 * @category models
 */
export type Reply =
  | { readonly _tag: "Json"; readonly status?: number; readonly headers?: Record<string, string>; readonly body: unknown }
  | { readonly _tag: "Raw"; readonly status?: number; readonly headers?: Record<string, string>; readonly body: string }
  | { readonly _tag: "Answer"; readonly usage: UsageDetails }
  | { readonly _tag: "Hang" }

/** A reply sent as it is (no answer derived from the request). */
type Fixed = Extract<Reply, { _tag: "Json" | "Raw" }>

/**
 * @since 0.1.0
 * @category models
 */
export interface GeminiServer {
  readonly url: string
  readonly requests: Array<RecordedRequest>
  /** Replies for the next `generateContent` calls, in order. */
  readonly enqueue: (...replies: ReadonlyArray<Reply>) => void
  /** Replies for the next `/token` calls, in order (else a fresh access token). */
  readonly enqueueToken: (...replies: ReadonlyArray<Fixed>) => void
  /** `generateContent` requests only. */
  readonly generations: () => ReadonlyArray<RecordedRequest>
  /** How many hung requests saw their connection closed by the client. */
  readonly hangsClosed: () => number
  /** Resolves once `count` hung requests (default 1) have had their connection closed by the client. */
  readonly hangClosed: (count?: number) => Promise<void>
}

/**
 * The access token the `/token` endpoint hands out.
 *
 * @since 0.1.0
 * @category constants
 */
export const accessToken = "ya29.loopback-token"

/**
 * Google's error body.
 *
 * @since 0.1.0
 * @category replies
 */
export const errorBody = (code: number, status: string, message: string, details?: ReadonlyArray<unknown>) => ({
  error: { code, message, status, ...(details === undefined ? {} : { details }) }
})

/**
 * A `generateContent` response with one candidate.
 *
 * @since 0.1.0
 * @category replies
 */
export const textResponse = (
  text: string,
  options: {
    readonly model?: string
    readonly finishReason?: string
    readonly probabilities?: ReadonlyArray<string>
    readonly usage?: { readonly prompt: number; readonly candidates: number } & UsageDetails
    /** The content's parts instead of the one text part (see `thoughtPart`, `functionCallPart`). */
    readonly parts?: ReadonlyArray<{ readonly text?: string; readonly [key: string]: unknown }>
  } = {}
) => {
  const categories = [
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT"
  ]
  const usage = options.usage ?? { prompt: 8, candidates: 12 }
  return {
    candidates: [{
      content: { role: "model", parts: options.parts ?? [{ text }] },
      finishReason: options.finishReason ?? "STOP",
      index: 0,
      safetyRatings: categories.map((category, i) => ({
        category,
        probability: options.probabilities?.[i] ?? "NEGLIGIBLE"
      }))
    }],
    usageMetadata: {
      promptTokenCount: usage.prompt,
      candidatesTokenCount: usage.candidates,
      totalTokenCount: usage.prompt + usage.candidates + (usage.thoughts ?? 0),
      ...(usage.cached === undefined ? {} : { cachedContentTokenCount: usage.cached }),
      ...(usage.thoughts === undefined ? {} : { thoughtsTokenCount: usage.thoughts })
    },
    modelVersion: options.model ?? "gemini-test-001",
    responseId: "loopback"
  }
}

/**
 * A thought summary part, as a thinking model returns it with `includeThoughts`.
 *
 * @since 0.1.0
 * @category replies
 */
export const thoughtPart = (text: string) => ({ text, thought: true })

/**
 * A `functionCall` part (Gemini 3 adds an `id` and a `thoughtSignature`).
 *
 * @since 0.1.0
 * @category replies
 */
export const functionCallPart = (name: string, args: unknown, id?: string) => ({
  functionCall: { ...(id === undefined ? {} : { id }), name, args },
  thoughtSignature: "CiQBVKhc7vB+signature"
})

const lastUserText = (body: any): string => {
  const contents: ReadonlyArray<any> = Array.isArray(body?.contents) ? body.contents : []
  const user = [...contents].reverse().find((content) => content?.role === "user")
  const parts: ReadonlyArray<any> = Array.isArray(user?.parts) ? user.parts : []
  return parts.filter((part) => typeof part?.text === "string").map((part) => part.text).join(" ")
}

/**
 * The default answer: `"<model> says: <last user text>"` (with `[n media]` when media parts were
 * sent), token counts from word counts, and the usage details if given.
 *
 * @since 0.1.0
 * @category replies
 */
export const defaultAnswer = (model: string, body: any, details: UsageDetails = {}) => {
  const contents: ReadonlyArray<any> = Array.isArray(body?.contents) ? body.contents : []
  const media = contents.flatMap((content) => (Array.isArray(content?.parts) ? content.parts : []))
    .filter((part: any) => part?.inlineData !== undefined || part?.fileData !== undefined).length
  const text = `${model} says: ${lastUserText(body)}${media > 0 ? ` [${media} media]` : ""}`
  const words = (s: string) => s.split(/\s+/).filter((w) => w.length > 0).length
  const prompt = contents.reduce((sum: number, content: any) =>
    sum + (Array.isArray(content?.parts) ? content.parts : []).reduce((n: number, part: any) =>
      n + (typeof part?.text === "string" ? words(part.text) : 258), 0), 0)
  return textResponse(text, { model: `${model}-001`, usage: { prompt, candidates: words(text), ...details } })
}

const geminiPath = /^\/v1beta\/models\/([^/:]+):generateContent$/
const vertexPath = /^\/v1beta1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):generateContent$/
const filePath = /^\/v1beta\/files\/([^/?]+)$/

const send = (res: http.ServerResponse, reply: Fixed) =>
  Loopback.send(res, reply.status ?? 200, reply._tag === "Json" ? JSON.stringify(reply.body) : reply.body, {
    "content-type": "application/json; charset=UTF-8",
    ...reply.headers
  })

/**
 * Starts the server on 127.0.0.1 (a free port) for the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<GeminiServer, never, Scope.Scope> = Effect.suspend(() => {
  const requests: Array<RecordedRequest> = []
  const queue = Loopback.replies<Reply>()
  const tokenQueue = Loopback.replies<Fixed>()
  const handle = ({ request: incoming, response: res, hang }: Loopback.Exchange) => {
    const { method, path, body } = incoming
    const base = { method, path: incoming.url, headers: incoming.headers, body }
    const gemini = geminiPath.exec(path)
    const vertex = vertexPath.exec(path)
    if (method === "POST" && (gemini !== null || vertex !== null)) {
      const model = gemini !== null ? gemini[1]! : vertex![3]!
      requests.push(vertex !== null ? { ...base, model, project: vertex[1]!, location: vertex[2]! } : { ...base, model })
      const reply = queue.take(base)
      if (reply === undefined) return send(res, { _tag: "Json", body: defaultAnswer(model, body) })
      switch (reply._tag) {
        case "Answer":
          return send(res, { _tag: "Json", body: defaultAnswer(model, body, reply.usage) })
        case "Hang":
          void hang()
          return
        default:
          return send(res, reply)
      }
    }
    requests.push(base)
    const file = filePath.exec(path)
    if (method === "GET" && file !== null) {
      return send(res, {
        _tag: "Json",
        body: {
          name: `files/${file[1]}`,
          uri: `https://generativelanguage.googleapis.com/v1beta/files/${file[1]}`,
          mimeType: "video/mp4",
          state: "ACTIVE"
        }
      })
    }
    if (method === "POST" && path === "/token") {
      return send(
        res,
        tokenQueue.take(base) ?? { _tag: "Json", body: { access_token: accessToken, expires_in: 3600, token_type: "Bearer" } }
      )
    }
    send(res, { _tag: "Json", status: 404, body: errorBody(404, "NOT_FOUND", `no route for ${method} ${path}`) })
  }
  return Effect.map(Loopback.start(handle), (loopback): GeminiServer => ({
    url: loopback.url,
    requests,
    enqueue: (...replies) => queue.enqueueAll(replies),
    enqueueToken: (...replies) => tokenQueue.enqueueAll(replies),
    generations: () => requests.filter((request) => request.model !== undefined),
    hangsClosed: loopback.hangsClosed,
    hangClosed: loopback.hangClosed
  }))
})
