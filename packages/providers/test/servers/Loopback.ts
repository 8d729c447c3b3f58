/**
 * What every loopback test server shares: an HTTP server on 127.0.0.1 (a free port) for a scope,
 * each request read whole and parsed (method, path, query, headers, JSON body, connection
 * number), replies programmed in a queue or per key, hangs whose connection close is counted,
 * malformed bodies, and a close that drops every connection. Each protocol server
 * (`OllamaServer`, `OpenAiServer`, ...) keeps its own routes, checks and answers on top.
 *
 * For the servers that only answer canned JSON or text (Ollama, quart) it also holds the whole
 * recording server (`canned`), given the protocol's default reply.
 *
 * @since 0.1.0
 */
import { Effect, type Scope } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/**
 * One request as the server read it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Incoming {
  readonly method: string
  /** The request target as sent, query string included. */
  readonly url: string
  /** The path without the query string. */
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  /** Header names lower-cased, as Node gives them. */
  readonly headers: http.IncomingHttpHeaders
  /** The body as text (`""` if empty). */
  readonly text: string
  /** The parsed JSON body, or `undefined` if it is empty or not JSON. */
  readonly json: unknown
  /** The parsed JSON body, or the raw text if it is not JSON (`undefined` if empty). */
  readonly body: unknown
  /** Which connection it came on (1, 2, ...), to see keep-alive reuse. */
  readonly connection: number
}

/**
 * One request and its response, as given to the server's handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface Exchange {
  readonly request: Incoming
  readonly response: http.ServerResponse
  /** Resolves when the response closes: sent, or the client went away. */
  readonly closed: Promise<void>
  /**
   * Never answers. Resolves when the client closes the connection, which the server counts in
   * `hangsClosed`.
   */
  readonly hang: () => Promise<void>
}

/**
 * A running loopback server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loopback {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** TCP connections accepted so far. */
  readonly connections: () => number
  /** How many hung requests saw their connection closed by the client. */
  readonly hangsClosed: () => number
  /** Resolves once `count` hung requests (default 1) have had their connection closed by the client. */
  readonly hangClosed: (count?: number) => Promise<void>
}

/**
 * Sends a whole body with its `content-length`, then the given headers.
 *
 * @since 0.1.0
 * @category responses
 */
export const send = (
  response: http.ServerResponse,
  status: number,
  text: string,
  headers: Readonly<Record<string, string>> = {}
): void => {
  response.writeHead(status, { "content-length": Buffer.byteLength(text), ...headers })
  response.end(text)
}

/**
 * Sends a JSON body as `application/json` (the given headers may override the content type).
 *
 * @since 0.1.0
 * @category responses
 */
export const sendJson = (
  response: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {}
): void => send(response, status, JSON.stringify(body), { "content-type": "application/json", ...headers })

/**
 * Sends 200 with a JSON content type and a body that is not JSON (cut off in the middle).
 *
 * @since 0.1.0
 * @category responses
 */
export const sendMalformed = (response: http.ServerResponse, text: string): void =>
  send(response, 200, text, { "content-type": "application/json" })

/**
 * Programmed replies: queued ones, each taken once by the first request it accepts, and keyed
 * ones (e.g. per model), used whenever no queued reply applies.
 *
 * @since 0.1.0
 * @category models
 */
export interface Replies<R, Q> {
  /** Queues `reply` for the next request that `when` accepts (any request by default), once. */
  readonly enqueue: (reply: R, when?: (request: Q) => boolean) => void
  /** Queues replies for the next requests, in order. */
  readonly enqueueAll: (replies: ReadonlyArray<R>) => void
  /** The reply for requests with this key whenever no queued reply applies. */
  readonly set: (key: string, reply: R) => void
  /** Takes the first queued reply that accepts `request`, else the reply for `key`, else `undefined`. */
  readonly take: (request: Q, key?: string) => R | undefined
  /** Forgets every programmed reply. */
  readonly clear: () => void
}

/**
 * An empty set of programmed replies.
 *
 * @since 0.1.0
 * @category constructors
 */
export const replies = <R, Q = unknown>(): Replies<R, Q> => {
  const queue: Array<{ readonly reply: R; readonly when: (request: Q) => boolean }> = []
  const byKey = new Map<string, R>()
  const any = () => true
  return {
    enqueue: (reply, when = any) => {
      queue.push({ reply, when })
    },
    enqueueAll: (more) => {
      queue.push(...more.map((reply) => ({ reply, when: any })))
    },
    set: (key, reply) => {
      byKey.set(key, reply)
    },
    take: (request, key) => {
      const index = queue.findIndex((entry) => entry.when(request))
      if (index >= 0) return queue.splice(index, 1)[0]!.reply
      return key === undefined ? undefined : byKey.get(key)
    },
    clear: () => {
      queue.length = 0
      byKey.clear()
    }
  }
}

const parse = (text: string): { readonly json: unknown; readonly body: unknown } => {
  if (text === "") return { json: undefined, body: undefined }
  try {
    const json: unknown = JSON.parse(text)
    return { json, body: json }
  } catch {
    return { json: undefined, body: text }
  }
}

/**
 * Starts a server on 127.0.0.1 (a free port) for the scope; `handle` answers each request once
 * its body has been read. Closing drops every connection, hung ones included.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (handle: (exchange: Exchange) => void): Effect.Effect<Loopback, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: http.Server; readonly loopback: Loopback }>((resume) => {
      const connectionIds = new WeakMap<object, number>()
      let connections = 0
      let closed = 0
      let waiters: Array<{ readonly count: number; readonly wake: () => void }> = []
      const hangClosed = () => {
        closed++
        const ready = waiters.filter((waiter) => waiter.count <= closed)
        waiters = waiters.filter((waiter) => waiter.count > closed)
        ready.forEach((waiter) => waiter.wake())
      }

      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          const url = new URL(req.url ?? "/", "http://127.0.0.1")
          const request: Incoming = {
            method: req.method ?? "",
            url: req.url ?? "",
            path: url.pathname,
            query: Object.fromEntries(url.searchParams),
            headers: req.headers,
            text,
            ...parse(text),
            connection: connectionIds.get(req.socket) ?? 0
          }
          const responseClosed = new Promise<void>((resolve) => res.once("close", () => resolve()))
          handle({
            request,
            response: res,
            closed: responseClosed,
            hang: () => responseClosed.then(hangClosed)
          })
        })
      })
      server.on("connection", (socket) => connectionIds.set(socket, ++connections))
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          server,
          loopback: {
            url: `http://127.0.0.1:${port}`,
            connections: () => connections,
            hangsClosed: () => closed,
            hangClosed: (count = 1) =>
              new Promise<void>((resolve) => {
                if (closed >= count) resolve()
                else waiters.push({ count, wake: resolve })
              })
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ loopback }) => loopback))

// ---------------------------------------------------------------------------------------------
// the canned-reply server (Ollama, quart)
// ---------------------------------------------------------------------------------------------

/**
 * One request as a canned-reply server records it.
 *
 * @since 0.1.0
 * @category canned
 */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  /** The JSON body, or the raw text if it is not JSON (`undefined` if empty). */
  readonly body: unknown
  /** Which connection it came on (1, 2, ...), to see keep-alive reuse. */
  readonly connection: number
}

/**
 * A canned reply: JSON or text with a status and headers, or a hang that never answers.
 *
 * @since 0.1.0
 * @category canned
 */
export type Reply =
  | { readonly _tag: "Json"; readonly status?: number; readonly body: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly _tag: "Raw"; readonly status?: number; readonly text: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly _tag: "Hang" }

/**
 * A request that was never answered.
 *
 * @since 0.1.0
 * @category canned
 */
export interface Hang {
  readonly request: RecordedRequest
  /** Resolves when the client closes the connection of the hanging request. */
  readonly closed: Promise<void>
}

/**
 * A running canned-reply server.
 *
 * @since 0.1.0
 * @category canned
 */
export interface CannedServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  readonly hangs: ReadonlyArray<Hang>
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Answers the next request that `when` accepts (any request by default) with `reply`, once. */
  readonly enqueue: (reply: Reply, when?: (request: RecordedRequest) => boolean) => void
}

/**
 * A JSON reply (status 200 by default).
 *
 * @since 0.1.0
 * @category canned
 */
export const json = (body: unknown, status = 200, headers?: Readonly<Record<string, string>>): Reply =>
  headers === undefined ? { _tag: "Json", status, body } : { _tag: "Json", status, body, headers }

/**
 * A text reply (status 200 by default).
 *
 * @since 0.1.0
 * @category canned
 */
export const raw = (text: string, status = 200): Reply => ({ _tag: "Raw", status, text })

/**
 * A reply that never comes.
 *
 * @since 0.1.0
 * @category canned
 */
export const hang: Reply = { _tag: "Hang" }

const sendCanned = (response: http.ServerResponse, reply: Exclude<Reply, { _tag: "Hang" }>): void =>
  send(response, reply.status ?? 200, reply._tag === "Json" ? JSON.stringify(reply.body) : reply.text, {
    "content-type": reply._tag === "Json" ? "application/json; charset=utf-8" : "text/plain; charset=utf-8",
    ...reply.headers
  })

/**
 * Starts a canned-reply server for the scope: it records every request and answers it with the
 * first queued reply that accepts it, else with `defaultReply`.
 *
 * @since 0.1.0
 * @category canned
 */
export const canned = (
  defaultReply: (request: RecordedRequest) => Reply
): Effect.Effect<CannedServer, never, Scope.Scope> =>
  Effect.suspend(() => {
    const requests: Array<RecordedRequest> = []
    const hangs: Array<Hang> = []
    const queued = replies<Reply, RecordedRequest>()
    return Effect.map(
      start((exchange) => {
        const { method, url, headers, body, connection } = exchange.request
        const request: RecordedRequest = { method, path: url, headers, body, connection }
        requests.push(request)
        const reply = queued.take(request) ?? defaultReply(request)
        if (reply._tag === "Hang") {
          hangs.push({ request, closed: exchange.hang() })
          return
        }
        sendCanned(exchange.response, reply)
      }),
      (loopback) => ({
        url: loopback.url,
        requests,
        hangs,
        connections: loopback.connections,
        enqueue: queued.enqueue
      })
    )
  })
