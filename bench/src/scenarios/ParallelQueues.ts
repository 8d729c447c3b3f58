/**
 * Scenario 2, parallel queues (the paper's tables, simulated): three APIs, one queue each
 * (`-p`), 100 prompts each at 500 QPM, against endpoints like the paper's: about 1.3 s, 1.6 s,
 * and a serial endpoint that answers one request at a time in 2.7 s. Run with `--scale s`:
 * latencies times `s`, rates divided by `s`, which leaves every ratio of the ideal unchanged
 * (the serial queue alone takes 270 s at `s = 1`).
 */
import * as path from "node:path"
import * as Figures from "../Figures.js"
import type { ServedRequest } from "../LoopbackServer.js"
import * as Prompto from "../Prompto.js"
import { figure, type Scenario } from "../Scenario.js"

/** One simulated endpoint: the API that reaches it, the model the server sees, its latency. */
interface Endpoint {
  readonly api: string
  /** The record's `model_name`. */
  readonly modelName: string
  /** The model the server sees (TGI always sends `tgi`; Azure's deployment is the model name). */
  readonly serverModel: string
  readonly latencyMs: number
  readonly serial: boolean
}

const endpoints: ReadonlyArray<Endpoint> = [
  { api: "openai", modelName: "paper-1300ms", serverModel: "paper-1300ms", latencyMs: 1_300, serial: false },
  { api: "huggingface-tgi", modelName: "paper-1600ms", serverModel: "tgi", latencyMs: 1_600, serial: false },
  { api: "azure-openai", modelName: "paper-serial-2700ms", serverModel: "paper-serial-2700ms", latencyMs: 2_700, serial: true }
]

const paperQpm = 500
const perQueue = 100

/** The per-request latencies a one-by-one client would wait: round trips, or serial service times. */
const latenciesOf = (endpoint: Endpoint, requests: ReadonlyArray<ServedRequest>): Array<number> =>
  endpoint.serial
    ? Figures.serialServiceTimesMs(requests)
    : requests.map((request) => request.answeredAt - request.arrivedAt)

/** Scenario 2. */
export const scenario: Scenario = {
  id: 2,
  title: (context) => `2 parallel queues (scale ${context.scale})`,
  run: (context) =>
    Prompto.withTempDir("parallel", context.keep, async (dir) => {
      const { scale, server } = context
      const qpm = paperQpm / scale
      const scaled = endpoints.map((endpoint) => ({ ...endpoint, latencyMs: endpoint.latencyMs * scale }))
      await server.configure(Object.fromEntries(
        scaled.map((endpoint) => [endpoint.serverModel, { latencyMs: endpoint.latencyMs, serial: endpoint.serial }])
      ))
      await server.reset()
      // interleaved, as an experiment file mixing APIs would be
      const prompts = Array.from({ length: perQueue }, (_, i) =>
        scaled.map((endpoint) => ({
          id: `${endpoint.api}-${i}`,
          api: endpoint.api,
          model_name: endpoint.modelName,
          prompt: `question ${i}`
        }))).flat()
      await Prompto.writeExperiment(path.join(dir, "parallel.jsonl"), prompts)
      const shapes = scaled.map((endpoint) => ({
        n: perQueue,
        qpm,
        latencyMs: endpoint.latencyMs,
        serial: endpoint.serial
      }))
      const slowestIdealMs = Figures.slowestIdealMs(shapes)
      context.progress(
        `2 parallel queues: 3 x ${perQueue} prompts at ${qpm} QPM, latencies ` +
          `${scaled.map((endpoint) => `${endpoint.latencyMs}${endpoint.serial ? " serial" : ""}`).join(", ")} ms ` +
          `(ideal ${(slowestIdealMs / 1000).toFixed(1)} s)`
      )
      const run = await Prompto.run({
        dir,
        file: "parallel.jsonl",
        // the serial endpoint keeps requests waiting for up to (n - 1) service times
        flags: ["-p", "-mq", String(qpm), "--timeout", String(Math.ceil(slowestIdealMs / 1000) * 2 + 60)],
        env: {
          ...Prompto.openAiEnv(server.url),
          HUGGINGFACE_TGI_API_ENDPOINT: server.url,
          AZURE_OPENAI_API_KEY: "bench",
          AZURE_OPENAI_API_ENDPOINT: server.url
        },
        timeoutMs: slowestIdealMs * 2 + 120_000
      })
      const { connections, cpuMs: serverCpuMs, requests } = await server.requests()
      const completed = Prompto.completedCounts(run.completedFile)
      const firstArrival = Math.min(...requests.map((request) => request.arrivedAt))
      const lastAnswer = Math.max(...requests.map((request) => request.answeredAt))
      const queues = scaled.map((endpoint, index) => {
        const served = requests.filter((request) => request.model === endpoint.serverModel)
        const latencies = latenciesOf(endpoint, served)
        return {
          api: endpoint.api,
          requests: served.length,
          idealMs: Figures.queueIdealMs(shapes[index]!),
          // from the run's first request reaching the server to this queue's last answer
          wallMs: Math.max(...served.map((request) => request.answeredAt)) - firstArrival,
          achievedQpm: Figures.achievedRatePerSecond(served.map((request) => request.arrivedAt)) * 60,
          meanLatencyMs: latencies.reduce((sum, latency) => sum + latency, 0) / latencies.length,
          latencies
        }
      })
      const oneByOneMs = queues.reduce((sum, queue) => sum + queue.latencies.reduce((a, b) => a + b, 0), 0)
      return {
        figures: [
          ...queues.map((queue) =>
            figure(`${queue.api} queue wall (ideal ${(queue.idealMs / 1000).toFixed(2)} s)`, queue.wallMs / 1000, { unit: "s" })
          ),
          figure("total: run wall (log)", run.processingMs / 1000, { unit: "s" }),
          figure("server span (first arrival to last answer)", (lastAnswer - firstArrival) / 1000, { unit: "s" }),
          figure(`total / slowest queue's ideal (${(slowestIdealMs / 1000).toFixed(2)} s)`, run.processingMs / slowestIdealMs, {
            digits: 3,
            target: Figures.atMost(1.03)
          }),
          figure("speed-up over one by one (computed)", Figures.speedUp(queues.flatMap((queue) => queue.latencies), run.processingMs), {
            digits: 1,
            unit: "x"
          }),
          figure("records completed without error", completed.records - completed.errors, {
            digits: 0,
            target: Figures.atLeast(perQueue * endpoints.length)
          })
        ],
        details: {
          scale,
          qpm,
          perQueue,
          slowestIdealMs,
          processingMs: run.processingMs,
          processWallMs: run.child.wallMs,
          serverSpanMs: lastAnswer - firstArrival,
          oneByOneMs,
          connections,
          serverCpuMs,
          queues: queues.map(({ latencies: _, ...queue }) => queue),
          completed
        }
      }
    })
}
