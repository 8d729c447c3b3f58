/**
 * The loopback server the benchmark talks to, run as its own process (forked by
 * `LoopbackServer.start`, controlled over IPC) so that its clock reads arrivals undisturbed by
 * the process that sends them.
 *
 * It speaks enough of the OpenAI wire protocol for the `openai` SDK: `POST .../chat/completions`
 * and `POST .../completions`, under any prefix (`/v1`, Azure's
 * `/openai/deployments/<deployment>`). Each model (the body's `model`, or the Azure deployment
 * in the path) answers after its configured latency; a `serial` model answers one request at a
 * time, first come first served, each taking its latency after the previous answer. Unknown
 * models answer at once.
 *
 * Per request it records the arrival time (at the `request` event), the model, when the
 * answer was sent and the sender's own stamp when it sent one (`x-sent-at`), as epoch milliseconds (`performance.timeOrigin + performance.now()`), so the
 * bench can compare them with its own clock. It is kept lean (keep-alive, prebuilt bodies, no
 * logging) so it sustains thousands of requests per second on one core.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Command, ModelLatency, Recorded, Reply } from "./LoopbackProtocol.js"

const now = (): number => performance.timeOrigin + performance.now()

let models: Readonly<Record<string, ModelLatency>> = {}
/** When each serial model is next free, epoch milliseconds. */
const serialFreeAt = new Map<string, number>()

let arrivedAt: Array<number> = []
let answeredAt: Array<number> = []
let modelOf: Array<number> = []
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
  sentAt = []
  modelNames = []
  modelIndex = new Map()
  serialFreeAt.clear()
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

const bodyFor = (model: string, chat: boolean): Buffer => {
  const key = `${chat ? "c" : "t"}:${model}`
  let body = bodies.get(key)
  if (body === undefined) {
    const choice = chat
      ? { index: 0, message: { role: "assistant", content: "ok" }, logprobs: null, finish_reason: "stop" }
      : { index: 0, text: "ok", logprobs: null, finish_reason: "stop" }
    body = Buffer.from(JSON.stringify({
      id: "bench",
      object: chat ? "chat.completion" : "text_completion",
      created: 0,
      model,
      choices: [choice],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
    }))
    bodies.set(key, body)
  }
  return body
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
    const chat = path.endsWith("/chat/completions")
    if (request.method !== "POST" || !(chat || path.endsWith("/completions"))) {
      response.writeHead(404, { "content-type": "application/json", "content-length": notFound.length })
      response.end(notFound)
      answeredAt[slot] = now()
      modelOf[slot] = indexOfModel("")
      return
    }
    const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
    const model = modelFrom(url, text)
    modelOf[slot] = indexOfModel(model)
    const body = bodyFor(model, chat)
    const answer = () => {
      response.writeHead(200, { "content-type": "application/json", "content-length": body.length })
      response.end(body)
      answeredAt[slot] = now()
    }
    const latency = models[model]
    if (latency === undefined || latency.latencyMs <= 0) return answer()
    const at = now()
    if (latency.serial === true) {
      const start = Math.max(at, serialFreeAt.get(model) ?? 0)
      const done = start + latency.latencyMs
      serialFreeAt.set(model, done)
      setTimeout(answer, done - at)
    } else {
      setTimeout(answer, latency.latencyMs)
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
        sentAt,
        connections,
        cpuMs: (cpu.user + cpu.system) / 1000
      }
      return reply({ type: "records", id: command.id, recorded })
    }
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
