/**
 * A loopback Ollama server for tests: it speaks Ollama's native API (`POST /api/generate`,
 * `POST /api/chat` with `stream: false`, `GET /api/tags`, `GET /`), records every request, and
 * answers with Ollama's JSON. Models not in its list get Ollama's 404 "try pulling it first".
 * Canned replies (an error status, a malformed body, a hang) can be queued for the next
 * request that matches.
 */
import type { Effect, Scope } from "effect"
import * as Loopback from "./Loopback.js"

export type { Hang, RecordedRequest, Reply } from "./Loopback.js"

/** The running server: its URL, the recorded requests and hangs, connections, and `enqueue`. */
export interface OllamaServer extends Loopback.CannedServer {}

/** A JSON reply (status 200 by default). */
export const json = Loopback.json

/** A text reply (status 200 by default). */
export const raw = Loopback.raw

/** A reply that never comes. */
export const hang = Loopback.hang

/** The models the server has "pulled" unless told otherwise. */
export const defaultModels: ReadonlyArray<string> = ["llama3", "phi3", "gemma"]

const words = (text: string): number => text.split(/\s+/).filter((word) => word.length > 0).length

/** The server's deterministic answer to a text. */
export const answer = (model: string, text: string): string => `${model} answers: ${text}`

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const timings = { total_duration: 5_000_000, load_duration: 1_000_000, prompt_eval_duration: 1_000_000, eval_duration: 3_000_000 }

const defaultReply = (request: Loopback.RecordedRequest, models: ReadonlyArray<string>): Loopback.Reply => {
  if (request.method === "GET" && request.path === "/") return raw("Ollama is running")
  if (request.method === "GET" && request.path === "/api/tags") {
    return json({ models: models.map((name) => ({ name: `${name}:latest`, model: `${name}:latest` })) })
  }
  if (request.method !== "POST" || (request.path !== "/api/generate" && request.path !== "/api/chat")) {
    return raw("404 page not found", 404)
  }
  const body = request.body
  if (!isRecord(body)) return json({ error: "invalid character in request body" }, 400)
  const model = body.model
  if (typeof model !== "string" || model === "") return json({ error: "model is required" }, 400)
  if (!models.includes(model)) return json({ error: `model '${model}' not found, try pulling it first` }, 404)
  const created_at = "2024-06-25T18:43:36.123456Z"
  if (request.path === "/api/generate") {
    const prompt = typeof body.prompt === "string" ? body.prompt : ""
    const response = answer(model, prompt)
    return json({
      model,
      created_at,
      response,
      done: true,
      done_reason: "stop",
      context: [1, 2, 3],
      ...timings,
      prompt_eval_count: words(prompt),
      eval_count: words(response)
    })
  }
  const messages = Array.isArray(body.messages) ? body.messages.filter(isRecord) : []
  const last = messages.at(-1)
  const text = typeof last?.content === "string" ? last.content : ""
  const content = answer(model, text)
  return json({
    model,
    created_at,
    message: { role: "assistant", content },
    done: true,
    done_reason: "stop",
    ...timings,
    prompt_eval_count: messages.reduce((total, message) => total + (typeof message.content === "string" ? words(message.content) : 0), 0),
    eval_count: words(content)
  })
}


/** Starts the server on 127.0.0.1 (a free port) for the scope. */
export const make = (options: { readonly models?: ReadonlyArray<string> } = {}): Effect.Effect<OllamaServer, never, Scope.Scope> => {
  const models = options.models ?? defaultModels
  return Loopback.canned((request) => defaultReply(request, models))
}
