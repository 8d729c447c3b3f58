/**
 * The bare clients of scenario 3, run as their own process: `n` requests over one transport of
 * `BareSender` (the `openai` SDK with prompto's `fetch` or Node's, or undici's `dispatch`
 * alone), with a plain `Promise.all`: no pacing, no file, no records. By default every request
 * is started at once; `--batch k` sends sequential batches of `k` instead (the naive client of
 * earlier benches). Prints `{"n", "elapsedMs", "failed"}` as JSON on stdout, timed from the
 * first request to the last answer.
 *
 * Usage: `node --import tsx bench/src/bareClient.ts <transport> <n> <model> [--connections c]
 * [--batch k]`, with `OPENAI_BASE_URL` (the SDK and `undici-chat`) or `QUART_API_ENDPOINT`
 * (`undici-generate`) set; `--connections` caps the connections to the server (undici's
 * transports and `sdk`).
 */
import { parseArgs } from "node:util"
import * as BareSender from "./BareSender.js"

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { connections: { type: "string" }, batch: { type: "string" } }
})
const transport = BareSender.parseTransport(positionals[0], "sdk")
const n = Number(positionals[1] ?? 1)
const model = positionals[2] ?? "bench"
const batch = values.batch === undefined ? n : Number(values.batch)
const send = BareSender.make(transport, model, {
  connections: values.connections === undefined ? undefined : Number(values.connections)
})

let failed = 0
let firstError: unknown
const started = performance.now()
for (let start = 0; start < n; start += batch) {
  await Promise.all(
    Array.from({ length: Math.min(batch, n - start) }, (_, offset) =>
      send(start + offset).catch((error: unknown) => {
        failed++
        firstError ??= error
      }))
  )
}
const elapsedMs = performance.now() - started
if (firstError !== undefined) console.error(`first failure: ${firstError instanceof Error ? firstError.message : String(firstError)}`)
process.stdout.write(JSON.stringify({ n, elapsedMs, failed }) + "\n")
// undici keeps idle connections open: end now that every answer is in
process.exit(0)
