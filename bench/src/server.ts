/**
 * The loopback server the benchmark talks to, run as its own process (forked by
 * `LoopbackServer.start`, controlled over IPC) so that its clock reads arrivals undisturbed by
 * the process that sends them.
 *
 * It speaks enough of the OpenAI wire protocol for the `openai` SDK: `POST .../chat/completions`
 * and `POST .../completions`, under any prefix (`/v1`, Azure's
 * `/openai/deployments/<deployment>`), and prompto's own `quart` API: `POST .../generate` with
 * `{"text", "model", "options"}`, answered `{"response": [{"generated_text": "ok"}], "model"}`.
 * Each model (the body's `model`, or the Azure deployment in the path) answers after its
 * configured latency; a `serial` model answers one request at a time, first come first served,
 * each taking its latency after the previous answer. A model with a `rateLimit` answers 429
 * beyond it, as OpenAI does (see `RateLimit`). Unknown models answer at once.
 *
 * Per request it records the arrival time (at the `request` event), the model, when the
 * answer was sent, its status and the sender's own stamp when it sent one (`x-sent-at`), as
 * epoch milliseconds (`performance.timeOrigin + performance.now()`), so the bench can compare
 * them with its own clock. It is kept lean (keep-alive, prebuilt bodies, no logging) so it
 * sustains thousands of requests per second on one core.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Command, ModelConfig, RateLimit, Recorded, Reply } from "./LoopbackProtocol.js"

const now = (): number => performance.timeOrigin + performance.now()

let models: Readonly<Record<string, ModelConfig>> = {}
/** When each serial model is next free, epoch milliseconds. */
const serialFreeAt = new Map<string, number>()
/** Each rate-limited model's bucket: the requests it holds and when that was last brought up to date. */
const buckets = new Map<string, { tokens: number; at: number }>()

let arrivedAt: Array<number> = []
let answeredAt: Array<number> = []
let modelOf: Array<number> = []
let status: Array<number> = []
let sentAt: Array<number | null> = []
let modelNames: Array<string> = []
let modelIndex = new Map<string, number>()
let connections = 0
let cpuAtReset = process.cpuUsage()

const reset = (): void => {
  cpuAtReset = process.cpuUsage()
  arrivedAt = []
  answeredAt = []
  modelOf = []
  status = []
  sentAt = []
  modelNames = []
  modelIndex = new Map()
  serialFreeAt.clear()
  buckets.clear()
  connections = 0
}

const indexOfModel = (model: string): number => {
  let index = modelIndex.get(model)
  if (index === undefined) {
    index = modelNames.push(model) - 1
    modelIndex.set(model, index)
  }
  return index
}

/** Prebuilt answers, per model and endpoint. */
const bodies = new Map<string, Buffer>()

/** Which answer a route gives: a chat completion, a text completion, or quart's `generate`. */
type Route = "chat" | "text" | "generate"

const answerFor = (model: string, route: Route): unknown => {
  if (route === "generate") return { response: [{ generated_text: "ok" }], model }
  const choice = route === "chat"
    ? { index: 0, message: { role: "assistant", content: "ok" }, logprobs: null, finish_reason: "stop" }
    : { index: 0, text: "ok", logprobs: null, finish_reason: "stop" }
  return {
    id: "bench",
    object: route === "chat" ? "chat.completion" : "text_completion",
    created: 0,
    model,
    choices: [choice],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
  }
}

const bodyFor = (model: string, route: Route): Buffer => {
  const key = `${route}:${model}`
  let body = bodies.get(key)
  if (body === undefined) {
    body = Buffer.from(JSON.stringify(answerFor(model, route)))
    bodies.set(key, body)
  }
  return body
}

const rateLimited = Buffer.from(JSON.stringify({
  error: {
    message: "Rate limit reached for requests. Please try again later.",
    type: "requests",
    param: null,
    code: "rate_limit_exceeded"
  }
}))

/**
 * A duration as Go prints one and OpenAI sends its resets: `200ms`, `1.2s`, `6m0s`.
 */
const goDuration = (ms: number): string => {
  if (ms < 1000) return `${Math.ceil(ms)}ms`
  const minutes = Math.floor(ms / 60_000)
  const seconds = `${Number(((ms - minutes * 60_000) / 1000).toFixed(3))}s`
  return minutes > 0 ? `${minutes}m${seconds}` : seconds
}

/**
 * Takes one request from a model's bucket, refilled up to now: whether it was let through,
 * and OpenAI's headers describing the bucket after it (empty without `limit.headers`).
 */
const takeFromBucket = (model: string, limit: RateLimit, at: number): { readonly allowed: boolean; readonly headers: Record<string, string> } => {
  const perMs = limit.perMinute / 60_000
  const bucket = buckets.get(model) ?? { tokens: limit.capacity, at }
  bucket.tokens = Math.min(limit.capacity, bucket.tokens + (at - bucket.at) * perMs)
  bucket.at = at
  buckets.set(model, bucket)
  const allowed = bucket.tokens >= 1
  if (allowed) bucket.tokens -= 1
  if (!limit.headers) return { allowed, headers: {} }
  return {
    allowed,
    headers: {
      // OpenAI's limit is "the most requests permitted before the limit is exhausted": the
      // bucket's capacity (OpenAI's own buckets hold a minute's worth, so theirs reads as the
      // per-minute limit)
      "x-ratelimit-limit-requests": String(limit.capacity),
      "x-ratelimit-remaining-requests": String(Math.floor(bucket.tokens)),
      // OpenAI's reset is the time until the limit is back to its initial state: a full bucket
      "x-ratelimit-reset-requests": goDuration((limit.capacity - bucket.tokens) / perMs)
    }
  }
}

const notFound = Buffer.from(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }))

const deploymentPattern = /\/deployments\/([^/?]+)\//

const modelFrom = (url: string, text: string): string => {
  const deployment = deploymentPattern.exec(url)
  if (deployment !== null) return decodeURIComponent(deployment[1]!)
  try {
    const body: unknown = JSON.parse(text)
    if (typeof body === "object" && body !== null && "model" in body && typeof body.model === "string") return body.model
  } catch {
    // not JSON: the default model
  }
  return ""
}

const server = http.createServer((request, response) => {
  const slot = arrivedAt.push(now()) - 1
  const stamp = request.headers["x-sent-at"]
  sentAt[slot] = typeof stamp === "string" ? Number(stamp) : null
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    const url = request.url ?? "/"
    const path = url.split("?", 1)[0]!
    const route: Route | undefined = path.endsWith("/chat/completions")
      ? "chat"
      : path.endsWith("/completions")
      ? "text"
      : path.endsWith("/generate")
      ? "generate"
      : undefined
    const send = (code: number, body: Buffer, headers: Record<string, string> = {}) => {
      response.writeHead(code, { ...headers, "content-type": "application/json", "content-length": body.length })
      response.end(body)
      answeredAt[slot] = now()
      status[slot] = code
    }
    if (request.method !== "POST" || route === undefined) {
      modelOf[slot] = indexOfModel("")
      return send(404, notFound)
    }
    const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
    const model = modelFrom(url, text)
    modelOf[slot] = indexOfModel(model)
    const config = models[model]
    let headers: Record<string, string> = {}
    if (config?.rateLimit !== undefined) {
      const taken = takeFromBucket(model, config.rateLimit, now())
      if (!taken.allowed) return send(429, rateLimited, taken.headers)
      headers = taken.headers
    }
    const body = bodyFor(model, route)
    const answer = () => send(200, body, headers)
    if (config === undefined || config.latencyMs <= 0) return answer()
    const at = now()
    if (config.serial === true) {
      const start = Math.max(at, serialFreeAt.get(model) ?? 0)
      const done = start + config.latencyMs
      serialFreeAt.set(model, done)
      setTimeout(answer, done - at)
    } else {
      setTimeout(answer, config.latencyMs)
    }
  })
})
server.keepAliveTimeout = 120_000
server.headersTimeout = 0
server.requestTimeout = 0
server.on("connection", () => connections++)

const reply = (message: Reply): void => {
  process.send?.(message)
}

process.on("message", (command: Command) => {
  switch (command.type) {
    case "configure":
      models = command.models
      return reply({ type: "ok", id: command.id })
    case "reset":
      reset()
      return reply({ type: "ok", id: command.id })
    case "records": {
      const cpu = process.cpuUsage(cpuAtReset)
      const recorded: Recorded = {
        models: modelNames,
        arrivedAt,
        answeredAt,
        modelOf,
        status,
        sentAt,
        connections,
        cpuMs: (cpu.user + cpu.system) / 1000
      }
      return reply({ type: "records", id: command.id, recorded })
    }
    case "clock":
      return reply({ type: "clock", id: command.id, now: now() })
    case "close":
      server.closeAllConnections()
      server.close(() => process.exit(0))
      return
  }
})
process.on("disconnect", () => process.exit(0))

server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => {
  reply({ type: "listening", port: (server.address() as AddressInfo).port })
})
