/**
 * Scenario 3, throughput ceiling: 20,000 prompts with no rate limit against a 0 ms endpoint,
 * on two paths, each beside a bare client that sends the same requests with none of prompto
 * (`bareClient.ts`: every request started at once in a `Promise.all`):
 *
 * - the HTTP path: prompto's `quart` API (`POST {QUART_API_ENDPOINT}/generate`, prompto's own
 *   HTTP client) beside undici's `request` alone, the most this machine can send;
 * - the openai path: `api: openai` beside the `openai` SDK with the transport prompto gives it.
 *
 * Every client runs as its own process against the same server process, best of two,
 * interleaved. CPU per request is taken net of start-up (a one-request run of the same program
 * is subtracted), and prompto's own cost per request is its CPU per request less the bare
 * client's. The SDK as a script gets it out of the box (Node's `fetch`, sequential batches of
 * 256: the naive baseline of earlier benches) runs once beside them, for comparison with
 * earlier figures.
 */
import * as path from "node:path"
import type * as BareSender from "../BareSender.js"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import { bareClientScript } from "../Paths.js"
import * as Prompto from "../Prompto.js"
import { type Context, type Figure, figure, type Scenario } from "../Scenario.js"

const model = "instant"
const unlimitedQpm = 100_000_000
/**
 * The bare clients' connections to the server. Started at once without a cap, 20,000 requests
 * open 20,000 connections (930 requests/s, 810 MB and 27 connection errors for the SDK on
 * 2026-12-05): that measures a connection storm, not a client. 16, 64 and 256 connections
 * give about the same rate; prompto itself opens 60-130.
 */
const bareConnections = 64
/** The naive baseline's batch (`Promise.all` over sequential batches). */
const naiveBatch = 256

/** One of the two paths, and what it is held to. */
interface PathSpec {
  /** How figures of this path are prefixed. */
  readonly label: string
  readonly api: "quart" | "openai"
  readonly bareTransport: BareSender.Transport
  /** The bare client as named in the table. */
  readonly bareName: string
  readonly promptoRpsTarget: Figures.Target
  readonly ratioTarget: Figures.Target
}

const paths: ReadonlyArray<PathSpec> = [
  {
    label: "HTTP (quart)",
    api: "quart",
    bareTransport: "undici-generate",
    bareName: "bare undici",
    promptoRpsTarget: Figures.atLeast(5_000),
    ratioTarget: Figures.info
  },
  {
    label: "openai",
    api: "openai",
    bareTransport: "sdk",
    bareName: "bare SDK",
    promptoRpsTarget: Figures.info,
    ratioTarget: Figures.atLeast(0.95)
  }
]

/** The most prompto's own work may cost a request, on either path. */
const ownCostTargetUs = 60

/** One measured run of any client. */
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

const env = (context: Context): NodeJS.ProcessEnv => ({
  ...Prompto.openAiEnv(context.server.url),
  QUART_API_ENDPOINT: context.server.url
})

const countServed = async (context: Context) => {
  const { connections, cpuMs, requests } = await context.server.requests()
  return { connections, requestsAtServer: requests.length, serverCpuMs: cpuMs }
}

const runBare = async (context: Context, transport: BareSender.Transport, n: number, flags: ReadonlyArray<string>): Promise<Measured> => {
  await context.server.reset()
  const { child, report } = await Child.runClient(
    `the bare client (${transport})`,
    bareClientScript,
    [transport, String(n), model, ...flags],
    env(context),
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

const runPrompto = (context: Context, api: PathSpec["api"], n: number): Promise<Measured & { readonly completed: number }> =>
  Prompto.withTempDir("throughput", context.keep, async (dir) => {
    await context.server.reset()
    await Prompto.writeLines(
      path.join(dir, "throughput.jsonl"),
      n,
      (i) => JSON.stringify({ id: `p-${i}`, api, model_name: model, prompt: `question ${i}` })
    )
    const run = await Prompto.run({
      dir,
      file: "throughput.jsonl",
      flags: ["-mq", String(unlimitedQpm)],
      env: env(context),
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

/** A path's runs: the start-up runs and every measured run of prompto and of its bare client. */
interface PathRuns {
  readonly promptoStartup: Measured
  readonly bareStartup: Measured
  readonly promptos: Array<Measured & { readonly completed: number }>
  readonly bares: Array<Measured>
}

const bareFlags = ["--connections", String(bareConnections)]

const pathFigures = (spec: PathSpec, runs: PathRuns, n: number): ReadonlyArray<Figure> => {
  const prompto = best(runs.promptos)
  const bare = best(runs.bares)
  const promptoCpu = cpuPerRequestUs(prompto, runs.promptoStartup, n)
  const bareCpu = cpuPerRequestUs(bare, runs.bareStartup, n)
  const { label, bareName } = spec
  return [
    figure(`${label}: prompto requests/s (run wall, log)`, prompto.rps, { digits: 0, target: spec.promptoRpsTarget }),
    figure(`${label}: prompto requests/s (process wall)`, prompto.processRps, { digits: 0 }),
    figure(`${label}: ${bareName} requests/s (all at once, ${bareConnections} connections)`, bare.rps, { digits: 0 }),
    figure(`${label}: prompto / ${bareName} requests/s`, prompto.rps / bare.rps, { digits: 2, target: spec.ratioTarget }),
    figure(`${label}: prompto CPU per request`, promptoCpu, { digits: 0, unit: "µs" }),
    figure(`${label}: ${bareName} CPU per request`, bareCpu, { digits: 0, unit: "µs" }),
    figure(`${label}: our own cost per request (prompto - ${bareName})`, promptoCpu - bareCpu, {
      digits: 0,
      unit: "µs",
      target: Figures.atMost(ownCostTargetUs)
    }),
    figure(`${label}: prompto peak RSS`, prompto.maxRssMb, { digits: 0, unit: "MB" }),
    figure(`${label}: records completed without error`, prompto.completed, { digits: 0, target: Figures.atLeast(n) })
  ]
}

/** Scenario 3. */
export const scenario: Scenario = {
  id: 3,
  title: () => "3 throughput",
  run: async (context) => {
    const n = context.quick ? 2_000 : 20_000
    const rounds = 2
    await context.server.configure({})
    context.progress(`3 throughput: start-up runs (1 request each)`)
    const runs = new Map<PathSpec, PathRuns>()
    for (const spec of paths) {
      runs.set(spec, {
        promptoStartup: await runPrompto(context, spec.api, 1),
        bareStartup: await runBare(context, spec.bareTransport, 1, bareFlags),
        promptos: [],
        bares: []
      })
    }
    const naiveStartup = await runBare(context, "sdk-node-fetch", 1, ["--batch", String(naiveBatch)])
    let naive: Measured | undefined
    for (let round = 1; round <= rounds; round++) {
      for (const spec of paths) {
        const pathRuns = runs.get(spec)!
        context.progress(`3 throughput: round ${round}/${rounds}, ${spec.label}: ${spec.bareName} (${n} requests at once)`)
        pathRuns.bares.push(await runBare(context, spec.bareTransport, n, bareFlags))
        context.progress(`3 throughput: round ${round}/${rounds}, ${spec.label}: prompto run (${n} prompts, no rate limit)`)
        pathRuns.promptos.push(await runPrompto(context, spec.api, n))
      }
      if (round === 1) {
        context.progress(`3 throughput: the SDK out of the box (Node's fetch, Promise.all x ${naiveBatch}), once`)
        naive = await runBare(context, "sdk-node-fetch", n, ["--batch", String(naiveBatch)])
      }
    }
    const openAi = runs.get(paths[1]!)!
    const figures = [
      ...paths.flatMap((spec) => pathFigures(spec, runs.get(spec)!, n)),
      figure(`openai: SDK out of the box requests/s (Node's fetch, Promise.all x ${naiveBatch}, 1 run)`, naive!.rps, { digits: 0 }),
      figure("openai: prompto / SDK out of the box requests/s", best(openAi.promptos).rps / naive!.rps, { digits: 2 }),
      figure("openai: SDK out of the box CPU per request", cpuPerRequestUs(naive!, naiveStartup, n), { digits: 0, unit: "µs" })
    ]
    return {
      figures,
      details: {
        prompts: n,
        rounds,
        bareConnections,
        ownCostTargetUs,
        paths: paths.map((spec) => ({ ...spec, ...runs.get(spec)! })),
        naive: { batch: naiveBatch, startup: naiveStartup, run: naive }
      }
    }
  }
}
