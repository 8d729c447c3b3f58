/**
 * Scenario 1, pacing fidelity, at two rates against a 1,000 ms endpoint: 2,000 prompts on one
 * queue at 60,000 QPM (one every millisecond), and 1,000 prompts at 6,000 QPM (100/s, the
 * realistic case). A pacer that waits for answers, or sleeps a fixed interval between sends and
 * so drifts, shows up as a longer wall or a lower rate; one that catches up in bursts, as a busy
 * window above the rate.
 *
 * Busy windows are counted at the server, which reads each request a little after it was sent,
 * and by a varying delay. While prompto runs, a light probe (`jitterProbe.ts`) sends stamped
 * requests to the same server, so the same run measures that variation (the read jitter `J`):
 * requests read in a window `W` were sent in a window of `W + J`, which allows `J` times the
 * rate more than the sender's own bound. Read the other way, the server's arrivals bound the
 * sender's busiest window: whatever was sent in a window `W` was read within `W + J`, and
 * whatever was read within `W - J` was sent within `W`.
 *
 * Two bare references run after prompto on the same endpoint, with the same clock grid
 * (`pacedClient.ts`): one over the `openai` SDK and the transport prompto gives it, one over
 * undici's `request` alone, the least a request can cost: the machine's limit.
 */
import * as path from "node:path"
import type * as BareSender from "../BareSender.js"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import { jitterProbeScript, pacedClientScript } from "../Paths.js"
import * as Prompto from "../Prompto.js"
import { type Context, type Figure, figure, type Scenario } from "../Scenario.js"

const latencyMs = 1_000
const probeModel = "jitter-probe"
const probeIntervalMs = 10

/** One rate of the scenario: its prompts, its model on the server, and the window it is judged by. */
interface Part {
  readonly label: string
  readonly n: number
  readonly qpm: number
  readonly model: string
  readonly windowMs: number
  /** The most arrivals allowed in the busiest window, at the server. */
  readonly busiestTarget: number
  /** How far the achieved rate may stray from the requested one (relative). */
  readonly rateTolerance: number
}

const parts: ReadonlyArray<Part> = [
  // at 1,000/s the sender's bound for a 100 ms window (100 intervals) is 101; the rest is the
  // allowance for read jitter (9 ms at this rate)
  { label: "", n: 2_000, qpm: 60_000, model: "pace", windowMs: 100, busiestTarget: 110, rateTolerance: 0.02 },
  // at 100/s a 1 s window holds at most 100 at the sender; one more for read jitter (up to 10 ms)
  { label: "100/s: ", n: 1_000, qpm: 6_000, model: "pace-100", windowMs: 1_000, busiestTarget: 101, rateTolerance: 0.01 }
]

/** A bare reference client: how it sends and paces, and how the table names it. */
interface Reference {
  readonly transport: BareSender.Transport
  readonly pacing: "burst" | "bounded"
  readonly name: string
  /** The key of its figures in `results.json`. */
  readonly key: string
}

const references: ReadonlyArray<Reference> = [
  { transport: "sdk", pacing: "burst", name: "reference (bare SDK client, bursts to catch up)", key: "reference" },
  { transport: "undici-chat", pacing: "burst", name: "reference (bare undici, the machine's limit)", key: "undiciReference" },
  // the same two under prompto's hard bound: what the bound leaves of the rate on this machine
  { transport: "sdk", pacing: "bounded", name: "reference (bare SDK client, under the bound)", key: "boundedReference" },
  {
    transport: "undici-chat",
    pacing: "bounded",
    name: "reference (bare undici under the bound, the bound's limit)",
    key: "boundedUndiciReference"
  }
]

/** A bare clock-paced client (`pacedClient.ts`) on the same endpoint: its requests as the server saw them. */
const runReference = async (context: Context, part: Part, reference: Reference) => {
  await context.server.reset()
  const { child, report } = await Child.runClient(
    `the paced reference client (${reference.transport}, ${reference.pacing})`,
    pacedClientScript,
    [String(part.n), String(60_000 / part.qpm), part.model, reference.transport, reference.pacing],
    Prompto.openAiEnv(context.server.url),
    120_000
  )
  const { requests } = await context.server.requests()
  const arrivals = requests.filter((request) => request.model === part.model).map((request) => request.arrivedAt)
  return {
    elapsedMs: report.elapsedMs,
    cpuMs: child.cpuMs,
    achievedPerSecond: Figures.achievedRatePerSecond(arrivals),
    busiestWindow: Figures.busiestWindow(arrivals, part.windowMs)
  }
}

/** The read-jitter probe, alongside prompto's run for about `durationMs`. */
const runProbe = (context: Context, durationMs: number) =>
  Child.runClient(
    "the read-jitter probe",
    jitterProbeScript,
    [String(Math.round(durationMs)), String(probeIntervalMs), probeModel],
    Prompto.openAiEnv(context.server.url),
    durationMs + 60_000
  )

/** One part: prompto's run, then the reference's, and their figures. */
const runPart = async (context: Context, dir: string, part: Part) => {
  const { label, model, n, qpm, windowMs } = part
  const { server } = context
  await server.reset()
  const file = `pacing-${qpm}.jsonl`
  await Prompto.writeExperiment(
    path.join(dir, file),
    Array.from({ length: n }, (_, i) => ({ id: `p-${i}`, api: "openai", model_name: model, prompt: `question ${i}` }))
  )
  context.progress(`1 pacing: ${n} prompts at ${qpm} QPM, ${latencyMs} ms latency`)
  const idealMs = Figures.queueIdealMs({ n, qpm, latencyMs })
  // the probe covers prompto's start-up (about 1 s) and its sending
  const [run] = await Promise.all([
    Prompto.run({ dir, file, flags: ["-mq", String(qpm)], env: Prompto.openAiEnv(server.url), timeoutMs: 120_000 }),
    runProbe(context, idealMs + 2_000)
  ])
  const { connections, cpuMs: serverCpuMs, requests } = await server.requests()
  const [jitter99, jitterMax] = Figures.delaySpread(requests.filter((request) => request.model === probeModel), [0.99, 1])
  const arrivals = requests.filter((request) => request.model === model).map((request) => request.arrivedAt)
  const completed = Prompto.completedCounts(run.completedFile)
  const requestedPerSecond = qpm / 60
  const achieved = Figures.achievedRatePerSecond(arrivals)
  const idealWindow = (requestedPerSecond * windowMs) / 1000
  const busiest = Figures.busiestWindow(arrivals, windowMs)
  // the sender's busiest window, bounded from the arrivals and the probe's largest read jitter
  const jitterKnown = Number.isFinite(jitterMax)
  const senderAtLeast = jitterKnown ? Figures.busiestWindow(arrivals, Math.max(0, windowMs - jitterMax!)) : Number.NaN
  const senderAtMost = jitterKnown ? Figures.busiestWindow(arrivals, windowMs + jitterMax!) : Number.NaN
  const referenceRuns = []
  for (const reference of references) {
    context.progress(`1 pacing: the clock-paced ${reference.name} at ${qpm} QPM, same endpoint`)
    referenceRuns.push({ reference, ...(await runReference(context, part, reference)) })
  }
  const figures: ReadonlyArray<Figure> = [
    figure(`${label}run wall (log)`, run.processingMs / 1000, { unit: "s" }),
    figure(`${label}process wall (with start-up)`, run.child.wallMs / 1000, { unit: "s" }),
    figure(`${label}run wall / ideal (${(idealMs / 1000).toFixed(3)} s)`, run.processingMs / idealMs, {
      digits: 3,
      target: Figures.atMost(1.05)
    }),
    figure(`${label}achieved / requested rate (${requestedPerSecond}/s)`, achieved / requestedPerSecond, {
      digits: 4,
      target: Figures.within(1, part.rateTolerance)
    }),
    figure(`${label}busiest ${windowMs} ms window (ideal ${idealWindow})`, busiest, {
      digits: 0,
      target: Figures.atMost(part.busiestTarget)
    }),
    figure(`${label}records completed without error`, completed.records - completed.errors, {
      digits: 0,
      target: Figures.atLeast(n)
    }),
    figure(`${label}sender's busiest ${windowMs} ms window, at least (server's busiest ${windowMs} ms - J)`, senderAtLeast, {
      digits: 0
    }),
    figure(`${label}sender's busiest ${windowMs} ms window, at most (server's busiest ${windowMs} ms + J)`, senderAtMost, {
      digits: 0
    }),
    figure(`${label}read jitter at the server J (probe, p99)`, jitter99!, { unit: "ms", digits: 1 }),
    figure(`${label}read jitter at the server J (probe, max)`, jitterMax!, { unit: "ms", digits: 1 }),
    ...referenceRuns.flatMap((run) => [
      figure(`${label}${run.reference.name}: wall / ideal`, run.elapsedMs / idealMs, { digits: 3 }),
      figure(`${label}${run.reference.name}: achieved / requested rate`, run.achievedPerSecond / requestedPerSecond, {
        digits: 4
      }),
      figure(`${label}${run.reference.name}: busiest ${windowMs} ms window`, run.busiestWindow, { digits: 0 })
    ])
  ]
  const details = {
    prompts: n,
    qpm,
    latencyMs,
    idealMs,
    processingMs: run.processingMs,
    processWallMs: run.child.wallMs,
    cpuMs: run.child.cpuMs,
    maxRssMb: run.child.maxRssMb,
    requestsAtServer: arrivals.length,
    connections,
    serverCpuMs,
    achievedPerSecond: achieved,
    busiestWindow: busiest,
    busiestSecond: Figures.busiestWindow(arrivals, 1000),
    busiest100Ms: Figures.busiestWindow(arrivals, 100),
    completed,
    ...Object.fromEntries(referenceRuns.map(({ reference, ...run }) => [reference.key, run])),
    senderBusiestWindow: { atLeast: senderAtLeast, atMost: senderAtMost },
    readJitterMs: { p99: jitter99, max: jitterMax }
  }
  return { figures, details }
}

/** Scenario 1. */
export const scenario: Scenario = {
  id: 1,
  title: () => "1 pacing",
  run: (context) =>
    Prompto.withTempDir("pacing", context.keep, async (dir) => {
      await context.server.configure(Object.fromEntries(parts.map((part) => [part.model, { latencyMs }])))
      const outcomes = []
      for (const part of parts) outcomes.push(await runPart(context, dir, part))
      return {
        figures: outcomes.flatMap((outcome) => outcome.figures),
        details: { ...outcomes[0]!.details, at100PerSecond: outcomes[1]!.details }
      }
    })
}
