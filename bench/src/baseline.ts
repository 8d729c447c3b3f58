/**
 * The naive baseline of scenario 3, run as its own process: the same `openai` SDK the product
 * uses, sending `n` chat completions in sequential batches of `batch` with a plain
 * `Promise.all`. Prints `{"n", "elapsedMs", "failed"}` as JSON on stdout, timed from the first
 * request to the last answer.
 *
 * Usage: `node --import tsx bench/src/baseline.ts <n> <batch> <model>`, with `OPENAI_API_KEY`
 * and `OPENAI_BASE_URL` set.
 */
import OpenAI from "openai"

const [n = 1, batch = 256] = process.argv.slice(2, 4).map(Number)
const model = process.argv[4] ?? "bench"

const client = new OpenAI({
  apiKey: process.env.OPENAI_API_KEY ?? "bench",
  baseURL: process.env.OPENAI_BASE_URL ?? "http://127.0.0.1/v1",
  maxRetries: 0
})

let failed = 0
const started = performance.now()
for (let start = 0; start < n; start += batch) {
  const size = Math.min(batch, n - start)
  await Promise.all(
    Array.from({ length: size }, (_, offset) =>
      client.chat.completions
        .create({ model, messages: [{ role: "user", content: `question ${start + offset}` }] })
        .catch(() => {
          failed++
        }))
  )
}
const elapsedMs = performance.now() - started
process.stdout.write(JSON.stringify({ n, elapsedMs, failed }) + "\n")
