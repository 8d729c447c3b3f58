/**
 * A loopback Ollama server for tests: it speaks Ollama's native API (`POST /api/generate`,
 * `POST /api/chat` with `stream: false`, `GET /api/tags`, `GET /`), records every request, and
 * answers with Ollama's JSON. Models not in its list get Ollama's 404 "try pulling it first".
 * Canned replies (an error status, a malformed body, a hang) can be queued for the next
 * request that matches.
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

export interface OllamaServer {
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

/** The models the server has "pulled" unless told otherwise. */
export const defaultModels: ReadonlyArray<string> = ["llama3", "phi3", "gemma"]

const words = (text: string): number => text.split(/\s+/).filter((word) => word.length > 0).length

/** The server's deterministic answer to a text. */
export const answer = (model: string, text: string): string => `${model} answers: ${text}`

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const timings = { total_duration: 5_000_000, load_duration: 1_000_000, prompt_eval_duration: 1_000_000, eval_duration: 3_000_000 }

const defaultReply = (request: RecordedRequest, models: ReadonlyArray<string>): Reply => {
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
export const make = (options: { readonly models?: ReadonlyArray<string> } = {}): Effect.Effect<OllamaServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; state: OllamaServer }>((resume) => {
      const models = options.models ?? defaultModels
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
          const reply = index >= 0 ? queue.splice(index, 1)[0]!.reply : defaultReply(request, models)
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
