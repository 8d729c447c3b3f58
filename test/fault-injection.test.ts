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
      const cli = yield* Effect.promise(() =>
        spawnCli(prompto, [
          "run", "-f", "faults.jsonl", "-d", "data", "-p", "-mqj", "rates.json", "-ma", String(maxAttempts), "--timeout", "1"
        ], {
          cwd: dir,
          env: { ...childEnv, OPENAI_API_KEY: "sk-faults", OPENAI_BASE_URL: `${server.url}/v1` },
          timeoutMs: 200_000
        })
      )
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

      // no queue faster than its limit, measured at the server. The pacer may send a window's
      // slots up to its catch-up window late (25 ms, plus 2 ms for a late tick), so a window of
      // t holds at most (t + 27 ms) / interval + 1 sends. The server reads a request some
      // milliseconds after the pacer let it go, and on a loaded 2-core machine that delay
      // varies, so arrivals bunch a little more: any 5 s window holds at most the limit's count
      // plus 3, and any 1 s window at most 5 % over it plus the catch-up's slots plus 1 (the
      // sending itself is exact: see the TestClock tests of the Pacer and the Scheduler)
      const rows: Array<string> = []
      for (const [model, qpm] of Object.entries(queues)) {
        const times = arrivals.filter((arrival) => arrival.model === model).map((arrival) => arrival.at)
        const perSecond = qpm / 60
        const busiest = busiestWindow(times, 1000)
        const busiest5 = busiestWindow(times, 5000)
        rows.push(
          `${model}: ${times.length} requests, busiest 1 s window ${busiest} (limit ${perSecond}), ` +
            `busiest 5 s window ${busiest5} (limit ${5 * perSecond})`
        )
        expect(busiest).toBeLessThanOrEqual(perSecond * 1.05 + Math.ceil((perSecond * 27) / 1000) + 1)
        expect(busiest5).toBeLessThanOrEqual(5 * perSecond + 3)
      }
      const faults = arrivals.filter((arrival) => arrival.fault !== "ok")
      const byKind = new Map<string, number>()
      for (const fault of faults) byKind.set(fault.fault, (byKind.get(fault.fault) ?? 0) + 1)
      console.log([
        `fault injection: ${lines.length} prompts, ${arrivals.length} requests, ${faults.length} faults injected ` +
        `(${[...byKind].map(([kind, count]) => `${kind} ${count}`).join(", ")}), ids lost 0, wall ${wallSeconds.toFixed(1)} s`,
        ...rows
      ].join("\n"))
    }).pipe(Effect.scoped), 240_000)
})
