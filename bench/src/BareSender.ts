/**
 * How the bench's bare clients (`bareClient.ts`, `pacedClient.ts`) send one request, with none
 * of prompto (no Effect, no file, no records, no retries): plain Promises over
 *
 * - `sdk`: the `openai` SDK (`maxRetries: 0`) with the `fetch` prompto gives it (undici's
 *   `dispatch` behind the `fetch` signature, `packages/providers/src/internal/undiciFetch.ts`),
 *   so the SDK and the transport are prompto's own and only prompto's work differs;
 * - `sdk-node-fetch`: the same SDK on Node's own `fetch`, as a script gets it out of the box;
 * - `undici-chat`: undici's `dispatch` alone (`UndiciFetch.exchange`: the answer gathered in
 *   the handler, no stream, no signal), a chat completion to `OPENAI_BASE_URL`;
 * - `undici-generate`: the same, quart's `POST {QUART_API_ENDPOINT}/generate` with the body
 *   prompto's `quart` API sends. `dispatch` is the least a request costs in Node, and the
 *   transport prompto's plain-HTTP providers use; undici's `request` adds about 45 µs of CPU a
 *   request (a signal, a handler, a `Readable` for the body).
 *
 * Every answer is read whole and its JSON parsed (any client does as much), and anything but
 * a 200 rejects.
 */
import OpenAI from "openai"
import * as undici from "undici"
import * as UndiciFetch from "../../packages/providers/src/internal/undiciFetch.js"

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
 * prompto's transport over a pool of its own whose connections can be capped: prompto's own
 * pool has no cap, and twenty thousand requests started at once would open as many connections.
 */
const transportOf = (options: UndiciOptions): UndiciFetch.Transport =>
  UndiciFetch.transportOver(
    UndiciFetch.partsOf(undici),
    new undici.Agent({
      keepAliveTimeout: 30_000,
      ...(options.connections === undefined ? {} : { connections: options.connections })
    })
  )

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

const jsonHeaders = { "content-type": "application/json" }

const undiciSend = (url: string, body: (index: number) => string, options: UndiciOptions): Send => {
  const transport = transportOf(options)
  return (index) =>
    new Promise<void>((resolve, reject) => {
      UndiciFetch.exchange(transport, { url, method: "POST", headers: jsonHeaders, body: body(index) }, (answer) => {
        const text = answer.body.toString("utf8")
        if (answer.status !== 200) return reject(new Error(`status ${answer.status}: ${text.slice(0, 200)}`))
        // a body that is not JSON rejects this request here, not inside undici's handler
        try {
          JSON.parse(text)
          resolve()
        } catch (error) {
          reject(error)
        }
      }, reject)
    })
}

/** A sender for `model` over `transport`, its endpoint taken from the environment. */
export const make = (transport: Transport, model: string, options: UndiciOptions = {}): Send => {
  switch (transport) {
    case "sdk": {
      const transport = transportOf(options)
      return sdkSend(model, UndiciFetch.fetchOver(() => transport) as typeof globalThis.fetch)
    }
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
