/**
 * A loopback quart server for tests: it speaks what prompto's quart server
 * (`prompto/models/quart/quart_api.py`) speaks: `POST /generate` with `{text, model, options}`
 * answered by `{"response": [{"generated_text": ...}], "model": <the model it runs>}` (it ignores
 * the requested model, as prompto's server does), and `GET /` -> `pong`. It records every request.
 * Canned replies (an error status, a malformed body, a hang) can be queued for the next request
 * that matches.
 */
import type { Effect, Scope } from "effect"
import * as Loopback from "./Loopback.js"

export type { Hang, RecordedRequest, Reply } from "./Loopback.js"

/** The running server: its URL, the recorded requests and hangs, connections, and `enqueue`. */
export interface QuartServer extends Loopback.CannedServer {}

/** A JSON reply (status 200 by default). */
export const json = Loopback.json

/** A text reply (status 200 by default). */
export const raw = Loopback.raw

/** A reply that never comes. */
export const hang = Loopback.hang

/** The model the server runs unless told otherwise (the one in prompto's quart example). */
export const defaultModel = "vicgalle/gpt2-open-instruct-v1"

/** The server's deterministic answer to a text. */
export const answer = (model: string, text: string): string => ` ${model} continues: ${text}`

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const defaultReply = (request: Loopback.RecordedRequest, model: string): Loopback.Reply => {
  if (request.method === "GET" && request.path === "/") return raw("pong")
  if (request.method !== "POST" || request.path !== "/generate") return raw("Not Found", 404)
  const body = request.body
  if (!isRecord(body) || typeof body.text !== "string") return raw("Bad Request", 400)
  return json({ response: [{ generated_text: answer(model, body.text) }], model })
}


/** Starts the server on 127.0.0.1 (a free port) for the scope. */
export const make = (options: { readonly model?: string } = {}): Effect.Effect<QuartServer, never, Scope.Scope> => {
  const model = options.model ?? defaultModel
  return Loopback.canned((request) => defaultReply(request, model))
}
