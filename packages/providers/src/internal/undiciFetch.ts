/**
 * The transport of every HTTP request prompto sends: undici's `dispatch` (the HTTP client under
 * Node's own `fetch`, at its lowest level) on one keep-alive connection pool for the process,
 * called directly by the plain-HTTP providers (`exchange`) and behind the `fetch` signature for
 * the provider SDKs.
 *
 * Node's `fetch` costs about 370 µs of CPU a request (request and response streams, header
 * lists, body cloning), more than everything else prompto does for a request; through undici's
 * `request` the same SDK call cost about 160 µs, and less through `dispatch`, so a run sends
 * about twice as many requests a second from one core. The SDKs only ever send a whole body and read a whole answer here
 * (no streaming), so the answer is read whole and handed over as a `Response` (a successful
 * JSON one as the part of it the SDKs read, without a body stream: `jsonAnswer`).
 * Anything this does not cover (a `Request` object, a streamed or form body) goes to the
 * global `fetch` unchanged.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as net from "node:net"
import type { Dispatcher } from "undici"

/**
 * undici's `request` and the process's one pool: connections are kept alive and shared by
 * every client (the SDKs' `fetch` and the plain-HTTP providers).
 *
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  readonly request: UndiciParts["request"]
  /** The pool that follows redirects, for `request`. */
  readonly dispatcher: Dispatcher
  /** The same pool without the redirect interceptor, for `exchange`. */
  readonly pool: Dispatcher
}

let loaded: Transport | undefined
let loading: Promise<Transport> | undefined

/**
 * The transport, undici imported on first use and the transport given at once after that:
 * undici is about a sixth of the start-up memory, and a run that sends nothing over HTTP (the
 * `test` API) never needs it.
 *
 * @since 0.1.0
 * @category transport
 */
export const transport = (): Transport | Promise<Transport> =>
  loaded ?? (loading ??= import("./undiciParts.js").then(({ parts }) =>
    loaded = transportOver(parts, new parts.Agent({ keepAliveTimeout: 30_000 }))
  ))

/**
 * What a transport is made of: undici's `Agent`, its `request` (for redirects) and its
 * redirect interceptor (`undiciParts` loads them without undici's index; `partsOf` takes them
 * from the whole module).
 *
 * @since 0.1.0
 * @category models
 */
export interface UndiciParts {
  readonly Agent: typeof import("undici").Agent
  readonly request: (
    url: string,
    options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { readonly dispatcher: Dispatcher }
  ) => Promise<Dispatcher.ResponseData>
  readonly redirect: typeof import("undici").interceptors.redirect
}

/**
 * The parts of the whole undici module.
 *
 * @since 0.1.0
 * @category transport
 */
export const partsOf = (undici: typeof import("undici")): UndiciParts => ({
  Agent: undici.Agent,
  request: (url, options) => undici.request(url, options),
  redirect: undici.interceptors.redirect
})

/**
 * A transport over a pool of the caller's (the bench's bare clients cap their connections).
 *
 * @since 0.1.0
 * @category transport
 */
export const transportOver = (undici: UndiciParts, pool: Dispatcher): Transport => ({
  request: undici.request,
  pool,
  dispatcher: pool.compose(undici.redirect({ maxRedirections: 5 }))
})

/**
 * The transport loaded, for a provider's check to wait on: the check of a model's first line
 * comes before any of its sends, so the import never holds up the first requests while the
 * pacer goes on granting slots (they would reach the API bunched, faster than the rate).
 * It never fails.
 *
 * @since 0.1.0
 * @category transport
 */
export const warmUp: Effect.Effect<void> = Effect.promise(async () => {
  // a failure to load is the first send's to report, with its request
  await Promise.resolve(transport()).then(() => rehearsal ??= rehearse()).catch(() => undefined)
})

let rehearsal: Promise<void> | undefined

/** How long a rehearsal may take before the check goes on without it. */
const rehearsalLimitMs = 250

/**
 * One request over a throwaway pool to a listener of its own on loopback, which answers 204
 * and sends nothing anywhere else. A process's first request runs undici's connection and HTTP
 * code and Node's socket code for the first time (compiled on first use, llhttp's WebAssembly
 * instantiated): 8-13 ms more than the requests after it, so at 100/s it reached the API
 * bunched with the next two, and the API's busiest second held 102. Done once, during the
 * check; it never fails, and gives up after `rehearsalLimitMs`.
 */
const rehearse = (): Promise<void> =>
  import("./undiciParts.js").then(({ parts }) =>
    new Promise<void>((resolve) => {
      const pool = new parts.Agent()
      const server = net.createServer((socket) => {
        socket.on("error", () => undefined)
        socket.once("data", () => socket.end("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"))
      })
      let ended = false
      const end = () => {
        if (ended) return
        ended = true
        clearTimeout(timer)
        server.close()
        pool.destroy().catch(() => undefined)
        resolve()
      }
      const timer = setTimeout(end, rehearsalLimitMs)
      server.on("error", end)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        if (address === null || typeof address === "string") return end()
        exchange(
          transportOver(parts, pool),
          { url: `http://127.0.0.1:${address.port}/`, method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
          end,
          end
        )
      })
    })
  )

/**
 * `warmUp`, and Node's own fetch classes loaded too, for a provider whose SDK builds its
 * requests with them (`Headers`, `FormData`, `Blob`, `ReadableStream`; the answer handed back
 * is a `Response`, or reads as one). Node loads them, with its own copy of undici, on their first use:
 * about 10 ms that an SDK's first request spent before reaching the socket, while the requests
 * after it were sent on time, so the first arrived bunched with the next two.
 *
 * @since 0.1.0
 * @category transport
 */
export const warmUpForSdk: Effect.Effect<void> = Effect.zipRight(
  Effect.sync(() => {
    for (const name of ["Headers", "Response", "FormData", "Blob", "ReadableStream"] as const) void globalThis[name]
  }),
  warmUp
)

/**
 * A `fetch` that refuses every request before anything is sent: given to a copy of an SDK's
 * client, it rehearses the SDK's request path (options, headers, body, its timeout and abort
 * controller, its error path) once before a model's first send, which then costs what the
 * later ones do instead of compiling that code while the pacer goes on granting slots.
 *
 * @since 0.1.0
 * @category transport
 */
export const refusingFetch = (): Promise<Response> => Promise.reject(new Error("a rehearsal sends nothing"))

/**
 * An answer read whole: its status, headers and body.
 *
 * @since 0.1.0
 * @category models
 */
export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: Buffer
}

/**
 * One request to send with `exchange`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Exchange {
  readonly url: string
  readonly method: Dispatcher.HttpMethod
  readonly headers: Readonly<Record<string, string>>
  readonly body: string | Uint8Array | null
}

/** The origin and path of each URL asked (an API's few endpoints), parsed once. */
const targets = new Map<string, { readonly origin: string; readonly path: string }>()

const targetOf = (url: string): { readonly origin: string; readonly path: string } => {
  let target = targets.get(url)
  if (target === undefined) {
    const parsed = new URL(url)
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` }
    if (targets.size >= 1_000) targets.clear()
    targets.set(url, target)
  }
  return target
}

const redirects = new Set([301, 302, 303, 307, 308])

/**
 * Sends a request and reads its whole answer through undici's `dispatch`, calling back with
 * the answer or the error; the returned function aborts it (then neither is called).
 *
 * This is the least an HTTP request costs in Node. `request` (and so `fetch`) adds an
 * `AbortSignal`, a request handler and a `Readable` for each answer's body, and the
 * redirect interceptor a handler of its own: about 45 and 20 µs of CPU a request of about 125
 * measured side by side (a bare client, 20,000 requests, 2026-12-06). A redirect (rare for an
 * API) is sent again through `request` and the redirecting pool, which follows it as `fetch` would.
 *
 * @since 0.1.0
 * @category transport
 */
export const exchange = (
  transport: Transport,
  request: Exchange,
  onAnswer: (answer: Answer) => void,
  onError: (error: unknown) => void
): () => void => {
  let aborted = false
  let controller: Dispatcher.DispatchController | undefined
  let status = 0
  let headers: Answer["headers"] = {}
  const chunks: Array<Buffer> = []
  let target: { readonly origin: string; readonly path: string }
  try {
    target = targetOf(request.url)
  } catch (error) {
    // not a URL: reported as undici reports what it refuses, through the error callback
    onError(error)
    return () => {}
  }
  const { origin, path } = target
  transport.pool.dispatch({ origin, path, method: request.method, headers: request.headers, body: request.body }, {
    onRequestStart(started) {
      controller = started
      if (aborted) started.abort(new Error("aborted"))
    },
    onResponseStart(_, statusCode, responseHeaders) {
      status = statusCode
      headers = responseHeaders
    },
    onResponseData(_, chunk) {
      chunks.push(chunk)
    },
    onResponseEnd() {
      if (aborted) return
      if (redirects.has(status) && typeof headers.location === "string") {
        followRedirect(transport, request).then(onAnswer, onError)
        return
      }
      onAnswer({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) })
    },
    onResponseError(_, error) {
      if (!aborted) onError(error)
    }
  })
  return () => {
    if (aborted) return
    aborted = true
    controller?.abort(new Error("aborted"))
  }
}

const followRedirect = async (transport: Transport, request: Exchange): Promise<Answer> => {
  const answer = await transport.request(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    dispatcher: transport.dispatcher
  })
  return {
    status: answer.statusCode,
    headers: answer.headers,
    body: Buffer.from(await answer.body.arrayBuffer())
  }
}

type Body = string | Uint8Array | null | undefined

const plainBody = (body: unknown): body is Body =>
  body === undefined || body === null || typeof body === "string" || body instanceof Uint8Array

const plainHeaders = (headers: RequestInit["headers"]): Record<string, string> => {
  if (headers === undefined) return {}
  if (headers instanceof Headers) {
    // `forEach` rather than the iterator `Object.fromEntries` takes: once a request, about half the cost
    const plain: Record<string, string> = {}
    headers.forEach((value, key) => {
      plain[key] = value
    })
    return plain
  }
  if (Array.isArray(headers)) return Object.fromEntries(headers)
  return headers as Record<string, string>
}

/** Statuses whose response has no body (`Response` refuses one). */
const bodiless = new Set([101, 103, 204, 205, 304])

/**
 * `fetch` over a transport's `exchange`, for the SDK clients: what `fetch` does not need to
 * cover here (a `Request` object, a streamed or form body) goes to the global `fetch`.
 *
 * @since 0.1.0
 * @category transport
 */
export const fetchOver = (source: () => Transport | Promise<Transport>) =>
async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
  const body = init.body
  if (input instanceof Request || !plainBody(body)) return globalThis.fetch(input, init)
  const method = (init.method ?? "GET").toUpperCase()
  const loadedTransport = await source()
  const signal = init.signal ?? undefined
  const answer = await new Promise<Answer>((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortReason(signal))
    const onAbort = () => {
      abort()
      reject(abortReason(signal!))
    }
    const settled = () => signal?.removeEventListener("abort", onAbort)
    const abort = exchange(
      loadedTransport,
      { url: String(input), method: method as Dispatcher.HttpMethod, headers: plainHeaders(init.headers), body: body ?? null },
      (answer) => {
        settled()
        resolve(answer)
      },
      (error) => {
        settled()
        reject(error)
      }
    )
    signal?.addEventListener("abort", onAbort, { once: true })
  })
  const headers = new Headers()
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const each of value) headers.append(name, each)
    else headers.set(name, value)
  }
  if (answer.status >= 200 && answer.status < 300 && method !== "HEAD" && !bodiless.has(answer.status) && isJson(headers)) {
    return jsonAnswer(answer, headers, String(input))
  }
  return new Response(bodiless.has(answer.status) || method === "HEAD" ? null : answer.body, {
    status: answer.status,
    headers
  })
}

const isJson = (headers: Headers): boolean => {
  const type = headers.get("content-type")
  return type !== null && /^application\/(?:[\w.+-]*\+)?json\b/i.test(type.trim())
}

/**
 * A successful JSON answer as the SDKs read it: `status`, `ok`, `url`, `headers` (Node's own
 * `Headers`), and the body through `json()`, `text()` or `arrayBuffer()`; its `body` stream is
 * `null` (the SDKs read it only to log it, and to cancel it before a retry, which theirs never
 * make here: `maxRetries: 0`). Node's `Response` wraps the body in a web stream and reads it
 * back through it: on the openai path, prompto's CPU per request went from 270-275 to
 * 225-233 µs without it (20,000 requests, two pairs). Anything else (an error status, a stream
 * of events, a file) is a real `Response`.
 */
const jsonAnswer = (answer: Answer, headers: Headers, url: string): Response => {
  const { body, status } = answer
  const text = async () => body.toString("utf8")
  return {
    status,
    ok: true,
    statusText: "",
    url,
    headers,
    redirected: false,
    type: "basic",
    body: null,
    bodyUsed: false,
    json: async () => JSON.parse(body.toString("utf8")),
    text,
    arrayBuffer: async () => body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength),
    clone: () => jsonAnswer(answer, new Headers(headers), url)
  } as unknown as Response
}

/**
 * `fetch` over undici's `dispatch` on the process's one pool, for the SDK clients
 * (`new OpenAI({ fetch })`).
 *
 * @since 0.1.0
 * @category transport
 */
export const fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response> = fetchOver(transport)

/** What `fetch` rejects with when its signal is aborted: the signal's reason, as `fetch` does. */
const abortReason = (signal: AbortSignal): unknown =>
  signal.reason ?? new DOMException("This operation was aborted", "AbortError")
