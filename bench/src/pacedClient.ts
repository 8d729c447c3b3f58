/**
 * The references for scenario 1: a bare client, with none of prompto (no Effect, no file, no
 * records), that sends `n` requests on a clock grid of `intervalMs` over one transport of
 * `BareSender`: the `openai` SDK with the `fetch` prompto gives it (`sdk`, the default), or
 * undici's `dispatch` alone (`undici-chat`, the machine's limit). It paces in one of two ways:
 *
 * - `burst` (the default): every interval a timer sends all the slots that are due, so missed
 *   slots are made up at once, in a burst above the rate. It shows how close to the grid any
 *   sender in one Node process can stay on this machine.
 * - `bounded`: prompto's hard bound (`sendBound`: a window of `k` intervals holds `k + 1` sends
 *   at most, a second no more than the rate), waiting for each slot as prompto's pacer does at
 *   a short interval (`pollUntil`: a timer, then the event loop's turns for the last 2 ms, and
 *   a check after every answer). It shows what the bound leaves on this machine, with the least
 *   a request can cost: the most a bounded sender can achieve here.
 *
 * Usage: `node --import tsx pacedClient.ts <n> <intervalMs> <model> [transport] [burst|bounded]`;
 * prints `{"n", "elapsedMs", "failed"}`.
 */
import * as Pacer from "../../packages/core/src/internal/pacer.js"
import * as PreciseWait from "../../packages/core/src/internal/preciseWait.js"
import * as BareSender from "./BareSender.js"

/** How a reference client paces its sends (see above). */
export type Pacing = "burst" | "bounded"

const [n = 1, intervalMs = 1] = process.argv.slice(2, 4).map(Number)
const model = process.argv[4] ?? "bench"
const send = BareSender.make(BareSender.parseTransport(process.argv[5], "sdk"), model)
const pacing: Pacing = process.argv[6] === "bounded" ? "bounded" : "burst"

let sent = 0
let answered = 0
let failed = 0
const started = performance.now()

await new Promise<void>((resolve) => {
  const sendOne = (onAnswer: () => void) => {
    send(sent++)
      .catch(() => {
        failed++
      })
      .finally(() => {
        if (++answered === n) resolve()
        onAnswer()
      })
  }
  if (pacing === "burst") {
    const tick = () => {
      const due = Math.min(n, Math.floor((performance.now() - started) / intervalMs) + 1)
      while (sent < due) sendOne(() => {})
      if (sent < n) setTimeout(tick, intervalMs)
    }
    tick()
    return
  }
  const bound = Pacer.sendBound(60_000 / intervalMs)
  let wait: { readonly poke: () => void } | undefined
  // the next slot: on the grid, and no earlier than the bound allows
  const next = () => {
    wait = undefined
    if (sent >= n) return
    const now = PreciseWait.nodeEventLoop.now()
    const at = Math.max(started + sent * intervalMs, bound.earliest())
    if (at > now) {
      wait = PreciseWait.pollUntil(at, PreciseWait.nodeEventLoop, next)
      return
    }
    bound.record(now, intervalMs)
    sendOne(() => wait?.poke())
    next()
  }
  next()
})
const elapsedMs = performance.now() - started
process.stdout.write(JSON.stringify({ n, elapsedMs, failed }) + "\n")
// undici keeps idle connections open: end now that every answer is in
process.exit(0)
