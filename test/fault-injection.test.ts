/**
 * Fault injection: a few thousand prompts across several queues, sent by a `prompto run`
 * process through the real `openai` provider (the official SDK) to a loopback server that, at a fixed seed, answers with
 * 500s, 429s with and without `retry-after`, hangs that hit the timeout, dropped connections and
 * truncated bodies. Every id must be completed exactly once, no queue may send faster than its
 * limit (measured from the server's arrival times), and no prompt may be sent more than
 * `--max-attempts` times. The figures are printed for the issue note.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { busiestWindow } from "../bench/src/Figures.js"
import * as Loopback from "../packages/providers/test/servers/Loopback.js"
import { childEnv } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const prompto = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "packages", "cli", "bin", "prompto.js")

type Fault = "ok" | "500" | "429-after" | "429-bare" | "hang" | "drop" | "truncated"

/** A stable number in [0, 1) for a string (FNV-1a, mixed). */
const unit = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return ((hash ^ (hash >>> 16)) >>> 0) / 2 ** 32
}

const seed = "prompto-faults-1"
const maxAttempts = 6
/** Faults only on the first three attempts of a prompt, so every prompt can succeed. */
const faultyAttempts = 3

/** The fault for a prompt's n-th attempt: fixed by the seed, the prompt and the attempt. */
const faultFor = (prompt: string, attempt: number): Fault => {
  if (attempt > faultyAttempts) return "ok"
  const x = unit(`${seed}:${prompt}:${attempt}`)
  return x < 0.05 ? "500" : x < 0.065 ? "429-after" : x < 0.07 ? "429-bare" : x < 0.08 ? "hang" :
    x < 0.09 ? "drop" : x < 0.10 ? "truncated" : "ok"
}

/** The allowance for read jitter at the server, in milliseconds (see the rate checks below). */
const readJitterMs = 50

const queues = { "model-a": 6000, "model-b": 6000, "model-c": 3000, "model-d": 3000 } as const
const perQueue = 600

interface Arrival {
  readonly model: string
  readonly prompt: string
  readonly at: number
  readonly fault: Fault
}

const completion = (model: string, prompt: string) => ({
  id: "chatcmpl-fault",
  object: "chat.completion",
  created: 0,
  model,
  choices: [{ index: 0, message: { role: "assistant", content: `answer to ${prompt}` }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 }
})

/** The OpenAI chat endpoint, with faults. */
const faultyServer = Effect.gen(function*() {
  const arrivals: Array<Arrival> = []
  const attempts = new Map<string, number>()
  const server = yield* Loopback.start(({ hang, request, response }) => {
    const body = request.json as { model: string; messages: ReadonlyArray<{ content: string }> }
    const prompt = String(body.messages.at(-1)?.content)
    const attempt = (attempts.get(prompt) ?? 0) + 1
    attempts.set(prompt, attempt)
    const fault = faultFor(prompt, attempt)
    arrivals.push({ model: body.model, prompt, at: performance.now(), fault })
    switch (fault) {
      case "500":
        return Loopback.sendJson(response, 500, { error: { message: "injected 500", type: "server_error" } })
      case "429-after":
        return Loopback.sendJson(response, 429, { error: { message: "injected 429", type: "rate_limit" } }, { "retry-after-ms": "100" })
      case "429-bare":
        return Loopback.sendJson(response, 429, { error: { message: "injected 429", type: "rate_limit" } })
      case "hang":
        return void hang()
      case "drop":
        return response.socket?.destroy()
      case "truncated": {
        const text = JSON.stringify(completion(body.model, prompt))
        response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
        response.write(text.slice(0, Math.floor(text.length / 2)))
        return void setTimeout(() => response.socket?.destroy(), 5)
      }
      case "ok":
        return Loopback.sendJson(response, 200, completion(body.model, prompt))
    }
  })
  return { server, arrivals, attempts }
})

describe("fault injection", () => {
  it.live(`${perQueue * 4} prompts over 4 queues with 500s, 429s, hangs, drops and truncated bodies: nothing lost`, () =>
    Effect.gen(function*() {
      const { arrivals, attempts, server } = yield* faultyServer
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-faults-"))
      const lines = Object.keys(queues).flatMap((model) =>
        Array.from({ length: perQueue }, (_, i) =>
          JSON.stringify({ id: `${model}-${i}`, api: "openai", model_name: model, prompt: `${model} question ${i}` })))
      fs.writeFileSync(path.join(dir, "faults.jsonl"), lines.join("\n") + "\n")
      fs.writeFileSync(path.join(dir, "rates.json"), JSON.stringify({ openai: queues }))
      // the CLI runs in its own process, so the server's clock reads arrivals undisturbed
      const started = performance.now()
      // the server's own event loop, late by as much as the machine is loaded, reads requests
      // late and then together: its delay is measured over the run and widens the allowance
      const serverLoop = monitorEventLoopDelay({ resolution: 10 })
      serverLoop.enable()
      const cli = yield* Effect.promise(() =>
        spawnCli(prompto, [
          "run", "-f", "faults.jsonl", "-d", "data", "-p", "-mqj", "rates.json", "-ma", String(maxAttempts), "--timeout", "1"
        ], {
          cwd: dir,
          env: { ...childEnv, OPENAI_API_KEY: "sk-faults", OPENAI_BASE_URL: `${server.url}/v1` },
          timeoutMs: 200_000
        })
      )
      serverLoop.disable()
      const serverLagMs = Math.max(0, serverLoop.max / 1e6 - 10)
      expect(cli.stderr).not.toMatch(/\n\s+at /)
      expect(cli.status).toBe(0)
      const output = path.join(dir, "data", "output", "faults")
      const completedFile = path.join(output, fs.readdirSync(output).find((file) => file.includes("-completed-"))!)
      const wallSeconds = (performance.now() - started) / 1000

      // every id exactly once, all answered (faults stop after the third attempt)
      const completed = fs.readFileSync(completedFile, "utf8").trim().split("\n").map((line) => JSON.parse(line))
      const ids = completed.map((record: { id: string }) => record.id)
      expect(ids.length).toBe(lines.length)
      expect(new Set(ids).size).toBe(lines.length)
      const failed = completed.filter((record: { error?: unknown }) => record.error !== undefined)
      expect(failed).toEqual([])

      // retries bounded by --max-attempts, as the server counted them
      expect(Math.max(...attempts.values())).toBeLessThanOrEqual(maxAttempts)

      // no queue faster than its limit, measured at the server. At the sender the bound is
      // exact (a window of 1 s or more holds at most the rate's count: see the TestClock tests
      // of the Pacer). The server reads a request a varying delay after it was sent; if that
      // delay varies by J, arrivals in a window W were sent within W + J, so the allowance is
      // J times the rate. J = 50 ms: the bench's stamped probe (bench/README.md, scenario 1)
      // measured the server's read jitter on this machine at up to 16 ms at 100/s and 49 ms at
      // 1,000/s, and prompto's own delay from slot to socket adds a few milliseconds more (the
      // bench sees 104 in a second at 100/s, as a bare client bursting on a 10 ms grid sees
      // 102-103); so 5 more at 100/s, 3 more at 50/s on a quiet machine. A loaded machine (CI
      // runs other test files beside this one) stalls this process's loop, which reads what
      // arrived during a stall together: that stall, measured over the run (beyond the
      // monitor's 10 ms resolution), adds to J
      const rows: Array<string> = []
      const bounds: Array<{ busiest: number; busiest5: number; perSecond: number; allowance: number }> = []
      for (const [model, qpm] of Object.entries(queues)) {
        const times = arrivals.filter((arrival) => arrival.model === model).map((arrival) => arrival.at)
        const perSecond = qpm / 60
        const busiest = busiestWindow(times, 1000)
        const busiest5 = busiestWindow(times, 5000)
        const allowance = Math.ceil((perSecond * (readJitterMs + serverLagMs)) / 1000)
        rows.push(
          `${model}: ${times.length} requests, busiest 1 s window ${busiest} (limit ${perSecond}), ` +
            `busiest 5 s window ${busiest5} (limit ${5 * perSecond}), allowance ${allowance}`
        )
        bounds.push({ busiest, busiest5, perSecond, allowance })
      }
      const faults = arrivals.filter((arrival) => arrival.fault !== "ok")
      const byKind = new Map<string, number>()
      for (const fault of faults) byKind.set(fault.fault, (byKind.get(fault.fault) ?? 0) + 1)
      console.log([
        `fault injection: ${lines.length} prompts, ${arrivals.length} requests, ${faults.length} faults injected ` +
        `(${[...byKind].map(([kind, count]) => `${kind} ${count}`).join(", ")}), ids lost 0, wall ${wallSeconds.toFixed(1)} s, ` +
          `server event loop late by up to ${serverLagMs.toFixed(0)} ms`,
        ...rows
      ].join("\n"))
      for (const { allowance, busiest, busiest5, perSecond } of bounds) {
        expect(busiest).toBeLessThanOrEqual(perSecond + allowance)
        expect(busiest5).toBeLessThanOrEqual(5 * perSecond + allowance)
      }
    }).pipe(Effect.scoped), 240_000)

  /**
   * `n` prompts at 1,200 QPM configured against a loopback OpenAI server that allows 300 a minute:
   * OpenAI's limits refill continuously, so a token bucket of 300 a minute that holds 10, and a 429
   * says (retry-after-ms) when the next token comes. With `headers`, every answer and 429 also
   * states the bucket as OpenAI does (`x-ratelimit-{limit,remaining,reset}-requests`, the reset
   * being the time until it is full again) and no retry-after. Real time, no scaling.
   */
  const pushback = (n: number, headers: boolean) =>
    Effect.gen(function*() {
      const perMinute = 300
      const capacity = 10
      let tokens = capacity
      let at = performance.now()
      const answers: Array<{ readonly at: number; readonly status: number }> = []
      const stated = (): Record<string, string> =>
        headers
          ? {
            "x-ratelimit-limit-requests": String(capacity),
            "x-ratelimit-remaining-requests": String(Math.floor(tokens)),
            "x-ratelimit-reset-requests": `${(((capacity - tokens) * 60) / perMinute).toFixed(3)}s`
          }
          : {}
      const server = yield* Loopback.start(({ request, response }) => {
        const now = performance.now()
        tokens = Math.min(capacity, tokens + ((now - at) * perMinute) / 60_000)
        at = now
        const body = request.json as { model: string; messages: ReadonlyArray<{ content: string }> }
        if (tokens < 1) {
          answers.push({ at: now, status: 429 })
          const wait = Math.ceil(((1 - tokens) * 60_000) / perMinute)
          return Loopback.sendJson(response, 429, {
            error: { message: "Rate limit reached for requests", type: "requests", code: "rate_limit_exceeded" }
          }, headers ? stated() : { "retry-after-ms": String(wait) })
        }
        tokens--
        answers.push({ at: now, status: 200 })
        const state = stated()
        return void setTimeout(
          () => Loopback.sendJson(response, 200, completion(body.model, String(body.messages.at(-1)?.content)), state),
          200
        )
      })
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-pushback-"))
      const lines = Array.from({ length: n }, (_, i) =>
        JSON.stringify({ id: `p-${i}`, api: "openai", model_name: "limited", prompt: `question ${i}` }))
      fs.writeFileSync(path.join(dir, "pushback.jsonl"), lines.join("\n") + "\n")
      const started = performance.now()
      // the server's own event loop, late by as much as the machine is loaded, reads requests
      // late and then together: its delay is measured over the run and widens the allowance
      const serverLoop = monitorEventLoopDelay({ resolution: 10 })
      serverLoop.enable()
      const cli = yield* Effect.promise(() =>
        spawnCli(prompto, ["run", "-f", "pushback.jsonl", "-d", "data", "-mq", "1200"], {
          cwd: dir,
          env: { ...childEnv, OPENAI_API_KEY: "sk-pushback", OPENAI_BASE_URL: `${server.url}/v1` },
          timeoutMs: 120_000
        })
      )
      expect(cli.stderr).not.toMatch(/\n\s+at /)
      expect(cli.status).toBe(0)
      const wallSeconds = (performance.now() - started) / 1000
      const output = path.join(dir, "data", "output", "pushback")
      const file = (part: string) => path.join(output, fs.readdirSync(output).find((name) => name.includes(part))!)
      const completed = fs.readFileSync(file("-completed-"), "utf8").trim().split("\n").map((line) => JSON.parse(line))
      expect(completed).toHaveLength(n)
      expect(completed.filter((record: { error?: unknown }) => record.error !== undefined)).toEqual([])
      const limited = answers.filter((answer) => answer.status === 429).length
      const log = fs.readFileSync(file("-log-"), "utf8")
      console.log(
        `the API pushes back${headers ? ", stating its limits" : ""}: ${n} prompts, ${answers.length} requests, ${limited} 429s ` +
          `(${((100 * limited) / answers.length).toFixed(1)} %), wall ${wallSeconds.toFixed(1)} s ` +
          `(${n} at 300 a minute, less the bucket's ${capacity}: ${(((n - capacity) / perMinute) * 60).toFixed(0)} s)\n` +
          log.split("\n").filter((line) => line.includes("effective rate of")).join("\n")
      )
      return { limited, requests: answers.length, log }
    }).pipe(Effect.scoped)

  it.live("the API pushes back: 1,200 QPM configured against a server that allows 300 a minute: under 5 % 429s, none fails", () =>
    Effect.gen(function*() {
      // 240 prompts take about 46 s at the server's rate, long enough that the first descent
      // (four episodes from 1,200 to about 300 a minute, a 429 each) is not most of the run
      const { limited, log, requests } = yield* pushback(240, false)
      // the log shows the rate as it moved, and the summary each queue's rate over the run
      expect(log).toMatch(/Rate of queue .*QPM of 1200\.0 \(lowered after a "slow down"\)/)
      expect(log).toMatch(/effective rate of .*: configured 1200\.0 QPM, lowest/)
      expect(limited / requests).toBeLessThan(0.05)
    }), 120_000)

  it.live("the API pushes back and states its limits: the rate-limit headers slow the queue before the 429s start", () =>
    Effect.gen(function*() {
      const { limited, log, requests } = yield* pushback(120, true)
      expect(log).toMatch(/Rate of queue .*QPM of 1200\.0 \(capped by the API's count of requests left\)/)
      // the answers in flight while the first burst drains the bucket are the only ones refused,
      // if any (2 of 122 measured, against 10 of 250 reading no headers)
      expect(limited / requests).toBeLessThan(0.05)
    }), 120_000)
})
