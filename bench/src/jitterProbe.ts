/**
 * The read-jitter probe of scenario 1: while prompto runs, a second, light sender (Node's own
 * `http` with keep-alive, no SDK) sends a request every `intervalMs` for `durationMs`,
 * each stamped with the moment it is written (`x-sent-at`, epoch milliseconds). The server
 * records the stamp with the arrival, so the spread of `arrived - sent` is how much the reading
 * of a request lags its sending on this machine under this load: the allowance for read jitter
 * when busy windows are counted at the server.
 *
 * Usage: `node --import tsx jitterProbe.ts <durationMs> <intervalMs> <model>`; prints
 * `{"n", "elapsedMs", "failed"}`.
 */
import * as http from "node:http"

const [durationMs = 1000, intervalMs = 20] = process.argv.slice(2, 4).map(Number)
const model = process.argv[4] ?? "probe"
const url = new URL(`${process.env.OPENAI_BASE_URL ?? "http://127.0.0.1/v1"}/chat/completions`)
const agent = new http.Agent({ keepAlive: true })
const body = JSON.stringify({ model, messages: [{ role: "user", content: "probe" }] })

let sent = 0
let answered = 0
let failed = 0
const started = performance.now()
await new Promise<void>((resolve) => {
  let stopped = false
  const settle = () => {
    if (++answered === sent && stopped) resolve()
  }
  const tick = () => {
    if (performance.now() - started >= durationMs) {
      stopped = true
      if (answered === sent) resolve()
      return
    }
    sent++
    const request = http.request(url, {
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-sent-at": String(performance.timeOrigin + performance.now())
      }
    }, (response) => {
      response.resume()
      response.on("end", settle)
    })
    request.on("error", () => {
      failed++
      settle()
    })
    request.end(body)
    setTimeout(tick, intervalMs)
  }
  tick()
})
agent.destroy()
process.stdout.write(JSON.stringify({ n: sent, elapsedMs: performance.now() - started, failed }) + "\n")
