/**
 * The references for scenario 1: a bare client, with none of prompto (no Effect, no file, no
 * records), that sends `n` requests on a clock grid of `intervalMs` over one transport of
 * `BareSender`: the `openai` SDK with the `fetch` prompto gives it (`sdk`, the default), or
 * undici's `dispatch` alone (`undici-chat`, the machine's limit). Every interval a timer sends
 * all the slots that are due, so missed slots are made up at once (in a burst). It shows what
 * this machine's event loop allows: how close to the grid any sender in one Node process can
 * stay, with prompto's SDK and transport, and with the least a request can cost.
 *
 * Usage: `node --import tsx pacedClient.ts <n> <intervalMs> <model> [transport]`; prints
 * `{"n", "elapsedMs", "failed"}`.
 */
import * as BareSender from "./BareSender.js"

const [n = 1, intervalMs = 1] = process.argv.slice(2, 4).map(Number)
const model = process.argv[4] ?? "bench"
const send = BareSender.make(BareSender.parseTransport(process.argv[5], "sdk"), model)

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
      send(sent)
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
// undici keeps idle connections open: end now that every answer is in
process.exit(0)
