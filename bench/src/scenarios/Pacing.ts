/**
 * Scenario 1, pacing fidelity: 2,000 prompts on one queue at 60,000 QPM (one every
 * millisecond) against a 1,000 ms endpoint. A pacer that waits for answers, or sleeps a fixed
 * interval between sends and so drifts, shows up here as a longer wall, a lower dispatch rate
 * or bursts.
 */
import * as path from "node:path"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import { pacedClientScript } from "../Paths.js"
import * as Prompto from "../Prompto.js"
import { type Context, figure, type Scenario } from "../Scenario.js"

const qpm = 60_000
const latencyMs = 1_000
const model = "pace"
const windowMs = 100

/** The bare clock-paced client (`pacedClient.ts`) on the same endpoint: its arrivals. */
const runReference = async (context: Context, n: number): Promise<{ readonly elapsedMs: number; readonly arrivals: Array<number> }> => {
  await context.server.reset()
  const { report } = await Child.runClient(
    "the paced reference client",
    pacedClientScript,
    [String(n), String(60_000 / qpm), model],
    Prompto.openAiEnv(context.server.url),
    120_000
  )
  const { requests } = await context.server.requests()
  return { elapsedMs: report.elapsedMs, arrivals: requests.filter((request) => request.model === model).map((request) => request.arrivedAt) }
}

/** Scenario 1. */
export const scenario: Scenario = {
  id: 1,
  title: () => "1 pacing",
  run: (context) =>
    Prompto.withTempDir("pacing", context.keep, async (dir) => {
      const n = 2_000
      const { server } = context
      await server.configure({ [model]: { latencyMs } })
      await server.reset()
      await Prompto.writeExperiment(
        path.join(dir, "pacing.jsonl"),
        Array.from({ length: n }, (_, i) => ({ id: `p-${i}`, api: "openai", model_name: model, prompt: `question ${i}` }))
      )
      context.progress(`1 pacing: ${n} prompts at ${qpm} QPM, ${latencyMs} ms latency`)
      const run = await Prompto.run({
        dir,
        file: "pacing.jsonl",
        flags: ["-mq", String(qpm)],
        env: Prompto.openAiEnv(server.url),
        timeoutMs: 120_000
      })
      const { connections, cpuMs: serverCpuMs, requests } = await server.requests()
      const arrivals = requests.filter((request) => request.model === model).map((request) => request.arrivedAt)
      const completed = Prompto.completedCounts(run.completedFile)
      const idealMs = Figures.queueIdealMs({ n, qpm, latencyMs })
      const requestedPerSecond = qpm / 60
      const achieved = Figures.achievedRatePerSecond(arrivals)
      const idealWindow = (requestedPerSecond * windowMs) / 1000
      const busiest = Figures.busiestWindow(arrivals, windowMs)
      context.progress("1 pacing: the bare clock-paced reference client, same endpoint")
      const reference = await runReference(context, n)
      const referenceAchieved = Figures.achievedRatePerSecond(reference.arrivals)
      const referenceBusiest = Figures.busiestWindow(reference.arrivals, windowMs)
      return {
        figures: [
          figure("run wall (log)", run.processingMs / 1000, { unit: "s" }),
          figure("process wall (with start-up)", run.child.wallMs / 1000, { unit: "s" }),
          figure(`run wall / ideal (${(idealMs / 1000).toFixed(3)} s)`, run.processingMs / idealMs, {
            digits: 3,
            target: Figures.atMost(1.05)
          }),
          figure(`achieved / requested rate (${requestedPerSecond}/s)`, achieved / requestedPerSecond, {
            digits: 4,
            target: Figures.within(1, 0.01)
          }),
          figure(`busiest ${windowMs} ms window (ideal ${idealWindow})`, busiest, {
            digits: 0,
            target: Figures.atMost(idealWindow * 1.05)
          }),
          figure("records completed without error", completed.records - completed.errors, {
            digits: 0,
            target: Figures.atLeast(n)
          }),
          figure("reference (bare client, bursts to catch up): wall / ideal", reference.elapsedMs / idealMs, { digits: 3 }),
          figure("reference: achieved / requested rate", referenceAchieved / requestedPerSecond, { digits: 4 }),
          figure(`reference: busiest ${windowMs} ms window`, referenceBusiest, { digits: 0 })
        ],
        details: {
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
          completed,
          reference: {
            elapsedMs: reference.elapsedMs,
            achievedPerSecond: referenceAchieved,
            busiestWindow: referenceBusiest
          }
        }
      }
    })
}
