/**
 * The `fetch` the provider SDKs are given: undici's `request` (the HTTP client under Node's own
 * `fetch`) behind the `fetch` signature, on one keep-alive connection pool for the process.
 *
 * Node's `fetch` costs about 370 µs of CPU a request (request and response streams, header
 * lists, body cloning), more than everything else prompto does for a request; through
 * `request` the same SDK call costs about 160 µs, so a run sends about twice as many requests
 * a second from one core. The SDKs only ever send a whole body and read a whole answer here
 * (no streaming), so the answer is read whole and handed over as a standard `Response`.
 * Anything this does not cover (a `Request` object, a streamed or form body) goes to the
 * global `fetch` unchanged.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Dispatcher } from "undici"

/**
 * undici's `request` and the process's one pool: connections are kept alive and shared by
 * every client (the SDKs' `fetch` and the plain-HTTP providers).
 *
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  readonly request: typeof import("undici").request
  readonly dispatcher: Dispatcher
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
  loaded ?? (loading ??= import("undici").then((module) => {
    // undici is CommonJS: the CLI's bundle sees it as a default export only
    const { Agent, interceptors, request } = ("default" in module ? module.default : module) as typeof import("undici")
    return loaded = {
      request,
      dispatcher: new Agent({ keepAliveTimeout: 30_000 }).compose(interceptors.redirect({ maxRedirections: 5 }))
    }
  }))

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
  await Promise.resolve(transport()).catch(() => undefined)
})

type Body = string | Uint8Array | null | undefined

const plainBody = (body: unknown): body is Body =>
  body === undefined || body === null || typeof body === "string" || body instanceof Uint8Array

const plainHeaders = (headers: RequestInit["headers"]): Record<string, string> => {
  if (headers === undefined) return {}
  if (headers instanceof Headers || Array.isArray(headers)) return Object.fromEntries(headers)
  return headers as Record<string, string>
}

/** Statuses whose response has no body (`Response` refuses one). */
const bodiless = new Set([101, 103, 204, 205, 304])

/**
 * `fetch` over undici's `request`, for the SDK clients (`new OpenAI({ fetch })`).
 *
 * @since 0.1.0
 * @category transport
 */
export const fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
  if (input instanceof Request || !plainBody(init.body)) return globalThis.fetch(input, init)
  const method = (init.method ?? "GET").toUpperCase()
  const { dispatcher, request } = await transport()
  const answer = await request(input, {
    method: method as Dispatcher.HttpMethod,
    headers: plainHeaders(init.headers),
    body: init.body ?? null,
    signal: init.signal ?? null,
    dispatcher
  })
  const headers = new Headers()
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const each of value) headers.append(name, each)
    else headers.set(name, value)
  }
  const body = await answer.body.arrayBuffer()
  return new Response(bodiless.has(answer.statusCode) || method === "HEAD" ? null : body, {
    status: answer.statusCode,
    headers
  })
}
