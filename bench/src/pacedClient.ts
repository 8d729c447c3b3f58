/**
 * The reference for scenario 1: a bare client, with none of prompto (no Effect, no file, no
 * records), that sends `n` requests on a clock grid of `intervalMs` through the same `openai`
 * SDK and the same `fetch` prompto gives it. Every millisecond a timer sends all the slots that
 * are due, so missed slots are made up at once (in a burst). It shows what this machine's event
 * loop allows: how close to the grid any sender in one Node process can stay.
 *
 * Usage: `node --import tsx pacedClient.ts <n> <intervalMs> <model>`; prints
 * `{"n", "elapsedMs", "failed"}`.
 */
import OpenAI from "openai"
import { fetch } from "../../packages/providers/src/internal/undiciFetch.js"

const [n = 1, intervalMs = 1] = process.argv.slice(2, 4).map(Number)
const model = process.argv[4] ?? "bench"

const client = new OpenAI({
  apiKey: process.env.OPENAI_API_KEY ?? "bench",
  baseURL: process.env.OPENAI_BASE_URL ?? "http://127.0.0.1/v1",
  maxRetries: 0,
  fetch
})

let sent = 0
let answered = 0
let failed = 0
const started = performance.now()
await new Promise<void>((resolve) => {
  const settle = () => {
    if (++answered === n) resolve()
  }
  const tick = () => {
    const due = Math.min(n, Math.floor((performance.now() - started) / intervalMs) + 1)
    for (; sent < due; sent++) {
      client.chat.completions
        .create({ model, messages: [{ role: "user", content: `question ${sent}` }] })
        .catch(() => {
          failed++
        })
        .finally(settle)
    }
    if (sent < n) setTimeout(tick, intervalMs)
  }
  tick()
})
const elapsedMs = performance.now() - started
process.stdout.write(JSON.stringify({ n, elapsedMs, failed }) + "\n")
