/**
 * Scenario 3, throughput ceiling: 20,000 prompts with no rate limit against a 0 ms endpoint,
 * through `prompto run`, beside a naive client written here (`baseline.ts`: the same SDK, a
 * plain `Promise.all` over sequential batches of 256). Both run as their own processes
 * against the same server process, best of two each, interleaved. CPU per request is taken net
 * of start-up: a one-request run of the same process is subtracted.
 */
import * as path from "node:path"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import { baselineScript } from "../Paths.js"
import * as Prompto from "../Prompto.js"
import { type Context, figure, type Scenario } from "../Scenario.js"

const model = "instant"
const batch = 256
const unlimitedQpm = 100_000_000

/** One measured run of either client. */
interface Measured {
  /** Requests per second over the client's own timing (first request to last answer, or the log). */
  readonly rps: number
  /** Requests per second over the process's wall time, start-up included. */
  readonly processRps: number
  readonly cpuMs: number
  readonly maxRssMb: number
  readonly connections: number
  readonly requestsAtServer: number
  /** The loopback server's CPU time during the run, milliseconds. */
  readonly serverCpuMs: number
}

const countServed = async (context: Context) => {
  const { connections, cpuMs, requests } = await context.server.requests()
  return { connections, requestsAtServer: requests.length, serverCpuMs: cpuMs }
}

const runBaseline = async (context: Context, n: number): Promise<Measured> => {
  await context.server.reset()
  const { child, report } = await Child.runClient(
    "the baseline",
    baselineScript,
    [String(n), String(batch), model],
    Prompto.openAiEnv(context.server.url),
    300_000
  )
  return {
    rps: (n * 1000) / report.elapsedMs,
    processRps: (n * 1000) / child.wallMs,
    cpuMs: child.cpuMs,
    maxRssMb: child.maxRssMb,
    ...(await countServed(context))
  }
}

const runPrompto = (context: Context, n: number): Promise<Measured & { readonly completed: number }> =>
  Prompto.withTempDir("throughput", context.keep, async (dir) => {
    await context.server.reset()
    await Prompto.writeLines(
      path.join(dir, "throughput.jsonl"),
      n,
      (i) => JSON.stringify({ id: `p-${i}`, api: "openai", model_name: model, prompt: `question ${i}` })
    )
    const run = await Prompto.run({
      dir,
      file: "throughput.jsonl",
      flags: ["-mq", String(unlimitedQpm)],
      env: Prompto.openAiEnv(context.server.url),
      timeoutMs: 300_000
    })
    const completed = Prompto.completedCounts(run.completedFile)
    return {
      rps: (n * 1000) / run.processingMs,
      processRps: (n * 1000) / run.child.wallMs,
      cpuMs: run.child.cpuMs,
      maxRssMb: run.child.maxRssMb,
      completed: completed.records - completed.errors,
      ...(await countServed(context))
    }
  })

const best = <A extends Measured>(runs: ReadonlyArray<A>): A =>
  runs.reduce((fastest, run) => (run.rps > fastest.rps ? run : fastest))

/** CPU microseconds per request, net of a one-request run's start-up. */
const cpuPerRequestUs = (run: Measured, startup: Measured, n: number): number =>
  ((run.cpuMs - startup.cpuMs) * 1000) / (n - 1)

/** Scenario 3. */
export const scenario: Scenario = {
  id: 3,
  title: () => "3 throughput",
  run: async (context) => {
    const n = context.quick ? 2_000 : 20_000
    const rounds = 2
    await context.server.configure({})
    context.progress(`3 throughput: start-up runs (1 request each)`)
    const baselineStartup = await runBaseline(context, 1)
    const promptoStartup = await runPrompto(context, 1)
    const baselines: Array<Measured> = []
    const promptos: Array<Measured & { readonly completed: number }> = []
    for (let round = 1; round <= rounds; round++) {
      context.progress(`3 throughput: round ${round}/${rounds}, baseline (${n} requests, batches of ${batch})`)
      baselines.push(await runBaseline(context, n))
      context.progress(`3 throughput: round ${round}/${rounds}, prompto run (${n} prompts, no rate limit)`)
      promptos.push(await runPrompto(context, n))
    }
    const baseline = best(baselines)
    const prompto = best(promptos)
    return {
      figures: [
        figure("prompto requests/s (run wall, log)", prompto.rps, { digits: 0 }),
        figure("prompto requests/s (process wall)", prompto.processRps, { digits: 0 }),
        figure(`baseline requests/s (Promise.all x ${batch})`, baseline.rps, { digits: 0 }),
        figure("baseline requests/s (process wall)", baseline.processRps, { digits: 0 }),
        figure("prompto / baseline requests/s", prompto.rps / baseline.rps, { digits: 2, target: Figures.atLeast(0.9) }),
        figure("prompto CPU per request", cpuPerRequestUs(prompto, promptoStartup, n), { digits: 0, unit: "µs" }),
        figure("baseline CPU per request", cpuPerRequestUs(baseline, baselineStartup, n), { digits: 0, unit: "µs" }),
        figure("prompto peak RSS", prompto.maxRssMb, { digits: 0, unit: "MB" }),
        figure("records completed without error", prompto.completed, { digits: 0, target: Figures.atLeast(n) })
      ],
      details: { prompts: n, batch, rounds, baselines, promptos, baselineStartup, promptoStartup }
    }
  }
}
