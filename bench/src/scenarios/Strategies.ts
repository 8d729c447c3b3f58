/**
 * Scenario 6, strategies: 20 lines of self-consistency with 5 samples (100 requests) on one
 * queue at 600 QPM against a 1,000 ms endpoint. Every sample of every line goes into the queue
 * at once, so the run is one paced queue of 100 requests: its ideal is 99 intervals plus one
 * latency (10.9 s). Lines that waited for each other's answers would take 20 × (4 intervals +
 * one latency) = 28 s.
 */
import * as path from "node:path"
import * as Figures from "../Figures.js"
import * as Prompto from "../Prompto.js"
import { figure, type Scenario } from "../Scenario.js"

const qpm = 600
const latencyMs = 1_000
const model = "strategy"
const lines = 20
const samples = 5

/** Scenario 6. */
export const scenario: Scenario = {
  id: 6,
  title: () => "6 strategies",
  run: (context) =>
    Prompto.withTempDir("strategies", context.keep, async (dir) => {
      const { server } = context
      await server.configure({ [model]: { latencyMs } })
      await server.reset()
      await Prompto.writeExperiment(
        path.join(dir, "strategies.jsonl"),
        Array.from({ length: lines }, (_, i) => ({
          id: `s-${i}`,
          api: "openai",
          model_name: model,
          prompt: `question ${i}`,
          strategy: { name: "self_consistency", samples, extract: "last_number" }
        }))
      )
      context.progress(`6 strategies: ${lines} lines × self-consistency(${samples}) at ${qpm} QPM, ${latencyMs} ms latency`)
      const run = await Prompto.run({
        dir,
        file: "strategies.jsonl",
        flags: ["-mq", String(qpm)],
        env: Prompto.openAiEnv(server.url),
        timeoutMs: 120_000
      })
      const { requests } = await server.requests()
      const arrivals = requests.filter((request) => request.model === model).map((request) => request.arrivedAt)
      const completed = Prompto.completedCounts(run.completedFile)
      const calls = lines * samples
      const idealMs = Figures.queueIdealMs({ n: calls, qpm, latencyMs })
      const chainedMs = lines * ((samples - 1) * (60_000 / qpm) + latencyMs)
      return {
        figures: [
          figure("requests at the server (ideal 100)", arrivals.length, { digits: 0, target: Figures.within(calls, 0) }),
          figure("run wall (log)", run.processingMs / 1000, { unit: "s" }),
          figure(`run wall / ideal (${(idealMs / 1000).toFixed(1)} s)`, run.processingMs / idealMs, {
            digits: 3,
            target: Figures.atMost(1.05)
          }),
          figure(`run wall / lines one after another (${(chainedMs / 1000).toFixed(1)} s)`, run.processingMs / chainedMs, {
            digits: 3
          }),
          figure("lines completed without error", completed.records - completed.errors, {
            digits: 0,
            target: Figures.atLeast(lines)
          })
        ],
        details: {
          lines,
          samples,
          qpm,
          latencyMs,
          idealMs,
          chainedMs,
          processingMs: run.processingMs,
          processWallMs: run.child.wallMs,
          cpuMs: run.child.cpuMs,
          requestsAtServer: arrivals.length,
          completed
        }
      }
    })
}
