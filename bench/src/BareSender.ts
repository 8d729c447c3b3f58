/**
 * How the bench's bare clients (`bareClient.ts`, `pacedClient.ts`) send one request, with none
 * of prompto (no Effect, no file, no records, no retries): plain Promises over
 *
 * - `sdk`: the `openai` SDK (`maxRetries: 0`) with the `fetch` prompto gives it (undici's
 *   `request`, `packages/providers/src/internal/undiciFetch.ts`), so the SDK and the transport
 *   are prompto's own and only prompto's work differs;
 * - `sdk-node-fetch`: the same SDK on Node's own `fetch`, as a script gets it out of the box;
 * - `undici-chat`: undici's `request` alone, a chat completion to `OPENAI_BASE_URL`;
 * - `undici-generate`: undici's `request` alone, quart's `POST {QUART_API_ENDPOINT}/generate`
 *   with the body prompto's `quart` API sends.
 *
 * Every answer is read whole and its JSON parsed (any client does as much), and anything but
 * a 200 rejects.
 */
import OpenAI from "openai"
import { Agent, type Dispatcher, request } from "undici"
import { fetch as promptoFetch } from "../../packages/providers/src/internal/undiciFetch.js"

/** A way to send a request. */
export type Transport = "sdk" | "sdk-node-fetch" | "undici-chat" | "undici-generate"

/** Every transport, as the clients accept them on their command line. */
export const transports: ReadonlyArray<Transport> = ["sdk", "sdk-node-fetch", "undici-chat", "undici-generate"]

/** Sends request number `index` (its prompt is `question <index>`) and settles with its answer. */
export type Send = (index: number) => Promise<void>

/** Options of the undici transports. */
export interface UndiciOptions {
  /** Connections to the server at most (unlimited when absent, as undici's default). */
  readonly connections?: number | undefined
}

const openAiBaseUrl = (): string => process.env.OPENAI_BASE_URL ?? "http://127.0.0.1/v1"

/**
 * prompto's `fetch` (undici's `request` behind the `fetch` signature, the answer read whole),
 * over a pool of its own whose connections can be capped: prompto's own pool has no cap, and
 * twenty thousand requests started at once would open as many connections.
 */
const cappedFetch = (options: UndiciOptions): typeof globalThis.fetch => {
  if (options.connections === undefined) return promptoFetch as typeof globalThis.fetch
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: options.connections })
  return (async (input: string | URL, init: RequestInit = {}) => {
    const answer = await request(input, {
      method: (init.method ?? "GET").toUpperCase() as Dispatcher.HttpMethod,
      headers: Object.fromEntries(new Headers(init.headers)),
      body: init.body as string | null | undefined ?? null,
      signal: init.signal ?? null,
      dispatcher
    })
    const headers = new Headers()
    for (const [name, value] of Object.entries(answer.headers)) {
      if (typeof value === "string") headers.set(name, value)
      else if (Array.isArray(value)) for (const each of value) headers.append(name, each)
    }
    return new Response(await answer.body.arrayBuffer(), { status: answer.statusCode, headers })
  }) as typeof globalThis.fetch
}

const sdkSend = (model: string, fetch: typeof globalThis.fetch | undefined): Send => {
  const client = new OpenAI({
    apiKey: process.env.OPENAI_API_KEY ?? "bench",
    baseURL: openAiBaseUrl(),
    maxRetries: 0,
    ...(fetch === undefined ? {} : { fetch })
  })
  return async (index) => {
    await client.chat.completions.create({ model, messages: [{ role: "user", content: `question ${index}` }] })
  }
}

const undiciSend = (url: string, body: (index: number) => string, options: UndiciOptions): Send => {
  const dispatcher: Dispatcher = new Agent({
    keepAliveTimeout: 30_000,
    ...(options.connections === undefined ? {} : { connections: options.connections })
  })
  return async (index) => {
    const answer = await request(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body(index),
      dispatcher
    })
    const text = await answer.body.text()
    if (answer.statusCode !== 200) throw new Error(`status ${answer.statusCode}: ${text.slice(0, 200)}`)
    JSON.parse(text)
  }
}

/** A sender for `model` over `transport`, its endpoint taken from the environment. */
export const make = (transport: Transport, model: string, options: UndiciOptions = {}): Send => {
  switch (transport) {
    case "sdk":
      return sdkSend(model, cappedFetch(options))
    case "sdk-node-fetch":
      return sdkSend(model, undefined)
    case "undici-chat":
      return undiciSend(
        `${openAiBaseUrl()}/chat/completions`,
        (index) => JSON.stringify({ model, messages: [{ role: "user", content: `question ${index}` }] }),
        options
      )
    case "undici-generate":
      return undiciSend(
        `${(process.env.QUART_API_ENDPOINT ?? "http://127.0.0.1").replace(/\/+$/, "")}/generate`,
        (index) => JSON.stringify({ text: `question ${index}`, model, options: {} }),
        options
      )
  }
}

/** The transport named on a command line, or an error naming the ones there are. */
export const parseTransport = (name: string | undefined, fallback: Transport): Transport => {
  if (name === undefined || name === "") return fallback
  const transport = transports.find((each) => each === name)
  if (transport === undefined) throw new Error(`unknown transport ${name}: one of ${transports.join(", ")}`)
  return transport
}
