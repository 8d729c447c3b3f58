/**
 * A loopback quart server for tests: it speaks what prompto's quart server
 * (`prompto/models/quart/quart_api.py`) speaks: `POST /generate` with `{text, model, options}`
 * answered by `{"response": [{"generated_text": ...}], "model": <the model it runs>}` (it ignores
 * the requested model, as prompto's server does), and `GET /` -> `pong`. It records every request.
 * Canned replies (an error status, a malformed body, a hang) can be queued for the next request
 * that matches.
 */
import { Effect, type Scope } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  /** The JSON body, or the raw text if it is not JSON (`undefined` if empty). */
  readonly body: unknown
  /** Which connection it came on (1, 2, ...), to see keep-alive reuse. */
  readonly connection: number
}

export type Reply =
  | { readonly _tag: "Json"; readonly status?: number; readonly body: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly _tag: "Raw"; readonly status?: number; readonly text: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly _tag: "Hang" }

export interface Hang {
  readonly request: RecordedRequest
  /** Resolves when the client closes the connection of the hanging request. */
  readonly closed: Promise<void>
}

export interface QuartServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  readonly hangs: ReadonlyArray<Hang>
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Answers the next request that `when` accepts (any request by default) with `reply`, once. */
  readonly enqueue: (reply: Reply, when?: (request: RecordedRequest) => boolean) => void
}

export const json = (body: unknown, status = 200, headers?: Readonly<Record<string, string>>): Reply =>
  headers === undefined ? { _tag: "Json", status, body } : { _tag: "Json", status, body, headers }

export const raw = (text: string, status = 200): Reply => ({ _tag: "Raw", status, text })

export const hang: Reply = { _tag: "Hang" }

/** The model the server runs unless told otherwise (the one in prompto's quart example). */
export const defaultModel = "vicgalle/gpt2-open-instruct-v1"

/** The server's deterministic answer to a text. */
export const answer = (model: string, text: string): string => ` ${model} continues: ${text}`

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const defaultReply = (request: RecordedRequest, model: string): Reply => {
  if (request.method === "GET" && request.path === "/") return raw("pong")
  if (request.method !== "POST" || request.path !== "/generate") return raw("Not Found", 404)
  const body = request.body
  if (!isRecord(body) || typeof body.text !== "string") return raw("Bad Request", 400)
  return json({ response: [{ generated_text: answer(model, body.text) }], model })
}

const send = (res: http.ServerResponse, reply: Exclude<Reply, { _tag: "Hang" }>): void => {
  const text = reply._tag === "Json" ? JSON.stringify(reply.body) : reply.text
  res.writeHead(reply.status ?? 200, {
    "content-type": reply._tag === "Json" ? "application/json; charset=utf-8" : "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...reply.headers
  })
  res.end(text)
}

/** Starts the server on 127.0.0.1 (a free port) for the scope. */
export const make = (options: { readonly model?: string } = {}): Effect.Effect<QuartServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; state: QuartServer }>((resume) => {
      const model = options.model ?? defaultModel
      const requests: Array<RecordedRequest> = []
      const hangs: Array<Hang> = []
      const queue: Array<{ readonly reply: Reply; readonly when: (request: RecordedRequest) => boolean }> = []
      const connectionIds = new WeakMap<object, number>()
      let connections = 0
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let body: unknown = undefined
          if (text !== "") {
            try {
              body = JSON.parse(text)
            } catch {
              body = text
            }
          }
          const request: RecordedRequest = {
            method: req.method ?? "",
            path: req.url ?? "",
            headers: req.headers,
            body,
            connection: connectionIds.get(req.socket) ?? 0
          }
          requests.push(request)
          const index = queue.findIndex((entry) => entry.when(request))
          const reply = index >= 0 ? queue.splice(index, 1)[0]!.reply : defaultReply(request, model)
          if (reply._tag === "Hang") {
            hangs.push({ request, closed: new Promise((resolve) => req.socket.once("close", () => resolve())) })
            return
          }
          send(res, reply)
        })
      })
      server.on("connection", (socket) => connectionIds.set(socket, ++connections))
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          server,
          state: {
            url: `http://127.0.0.1:${port}`,
            requests,
            hangs,
            connections: () => connections,
            enqueue: (reply, when = () => true) => queue.push({ reply, when })
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ state }) => state))
