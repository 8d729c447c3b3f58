/**
 * Scenario 9, time to first request: how long a big experiment file keeps the API waiting.
 * A 1,000,000-line file (and a 100,000-line one; 10,000 and 100,000 with `--quick`) of
 * `api: openai` prompts goes through `prompto run -mq 600` against the loopback server; the
 * figure is the time from the child's spawn to the server's first arrival. Once the server has
 * seen a few requests prompto is stopped gracefully (SIGTERM), so the scenario costs the time to
 * the first request, not the run. A run that sends nothing within the timeout is stopped too,
 * and the time waited is reported as a lower bound.
 *
 * The two times come from two processes: the spawn from the bench's clock, the arrival from the
 * server's, both epoch milliseconds (`performance.timeOrigin + performance.now()`). The server's
 * clock is read over IPC just before the spawn, and the arrival is moved onto the bench's clock
 * by that offset (known to within half an IPC round trip, well under a millisecond).
 */
import * as path from "node:path"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import * as Prompto from "../Prompto.js"
import { type Context, type Figure, figure, type Scenario } from "../Scenario.js"

const model = "instant"
const qpm = 600
/** Arrivals to wait for before stopping prompto. */
const stopAfter = 3
const timeoutMs = 120_000
const targetMs = 1_000
const pollMs = 20
/**
 * How long prompto may take to stop gracefully before a second SIGTERM stops it at once: a stop
 * writes what was answered and closes the files, which should take well under a second.
 */
const graceMs = 20_000

const label = (lines: number): string => (lines >= 1_000_000 ? `${lines / 1_000_000}M` : `${lines / 1_000}k`)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One file size: the time to its first request (or how long it waited), and how it stopped. */
const runSize = (context: Context, lines: number) =>
  Prompto.withTempDir("first-request", context.keep, async (dir) => {
    const file = `first-request-${label(lines)}.jsonl`
    await Prompto.writeLines(
      path.join(dir, file),
      lines,
      (i) => `{"id":"p-${i}","api":"openai","model_name":"${model}","prompt":"question ${i}"}`
    )
    const { server } = context
    await server.reset()
    const clock = await server.clockOffset()
    context.progress(`9 first request: ${lines} lines at ${qpm} QPM (timeout ${timeoutMs / 1000} s)`)
    // the child's own timeout is a backstop: the loop below stops it first
    const running = Prompto.start({ dir, file, flags: ["-mq", String(qpm)], env: Prompto.openAiEnv(server.url), timeoutMs: timeoutMs + 30_000 })
    let exited = false
    const result = running.result.finally(() => (exited = true))
    const since = () => performance.timeOrigin + performance.now() - running.spawnedAt
    let arrivals: ReadonlyArray<number> = []
    while (!exited && since() < timeoutMs) {
      arrivals = (await server.requests()).requests.filter((request) => request.model === model).map((request) => request.arrivedAt)
      if (arrivals.length >= stopAfter) break
      await sleep(pollMs)
    }
    const stopAt = since()
    running.stop(graceMs)
    const child = await result
    arrivals = (await server.requests()).requests.filter((request) => request.model === model).map((request) => request.arrivedAt)
    if (arrivals.length === 0 && stopAt < timeoutMs) throw new Error(Child.describeFailure("prompto run", child))
    const first = arrivals.length === 0 ? Number.NaN : Math.min(...arrivals) - clock.offsetMs - running.spawnedAt
    return {
      lines,
      firstRequestMs: first,
      timedOut: arrivals.length === 0,
      // without an arrival, the time waited is all that is known: the first request came later
      waitedMs: stopAt,
      stopMs: child.wallMs - stopAt,
      // 1: the first SIGTERM was enough; more: the graceful stop overran its grace
      signalsSent: running.signalsSent(),
      exitStatus: child.status ?? child.signal,
      arrivals: arrivals.length,
      maxRssMb: child.maxRssMb,
      cpuMs: child.cpuMs,
      clock
    }
  })

const sizeFigures = (result: Awaited<ReturnType<typeof runSize>>): ReadonlyArray<Figure> => [
  result.timedOut
    ? figure(`time to first request at ${label(result.lines)} lines (none: at least)`, result.waitedMs, {
      digits: 0,
      unit: "ms",
      target: Figures.atMost(targetMs)
    })
    : figure(`time to first request at ${label(result.lines)} lines (spawn to arrival)`, result.firstRequestMs, {
      digits: 0,
      unit: "ms",
      target: Figures.atMost(targetMs)
    }),
  figure(
    `graceful stop at ${label(result.lines)} (SIGTERM to exit${result.signalsSent > 1 ? `, overran ${graceMs / 1000} s: stopped at once` : ""})`,
    result.stopMs,
    { digits: 0, unit: "ms" }
  )
]

/** Scenario 9. */
export const scenario: Scenario = {
  id: 9,
  title: () => "9 time to first request",
  run: async (context) => {
    const sizes = context.quick ? [10_000, 100_000] : [100_000, 1_000_000]
    await context.server.configure({})
    const results = []
    for (const lines of sizes) results.push(await runSize(context, lines))
    return {
      figures: results.flatMap(sizeFigures),
      details: { qpm, stopAfter, timeoutMs, sizes: results }
    }
  }
}
