/**
 * Scenario 5, start-up: the wall time of `prompto --help` and of a one-line run through the
 * `test` API (its latency set to 0, so the figure is start-up and shutdown only), median of 5
 * runs each, each in a fresh folder; and the peak RSS of the one-line runs (the memory of a
 * one-prompt run: what the code and its start-up cost, before any work).
 */
import * as path from "node:path"
import * as Child from "../Child.js"
import * as Figures from "../Figures.js"
import * as Prompto from "../Prompto.js"
import { type Context, figure, type Scenario } from "../Scenario.js"

const helpRun = (context: Context): Promise<number> =>
  Prompto.withTempDir("startup", context.keep, async (dir) => {
    const child = await Prompto.runArgs(["--help"], dir, Child.baseEnv(), 60_000)
    if (child.status !== 0) throw new Error(Child.describeFailure("prompto --help", child))
    return child.wallMs
  })

const oneLineRun = (context: Context): Promise<{ readonly wallMs: number; readonly maxRssMb: number }> =>
  Prompto.withTempDir("startup", context.keep, async (dir) => {
    await Prompto.writeExperiment(path.join(dir, "one.jsonl"), [
      { id: "p-0", api: "test", model_name: "m", prompt: "hello", parameters: { latency_ms: 0 } }
    ])
    const run = await Prompto.run({ dir, file: "one.jsonl", flags: [], env: Child.baseEnv(), timeoutMs: 60_000 })
    return { wallMs: run.child.wallMs, maxRssMb: run.child.maxRssMb }
  })

/** The most a one-prompt run may hold in memory. */
const oneLineRssTargetMb = 100

/** Scenario 5. */
export const scenario: Scenario = {
  id: 5,
  title: () => "5 start-up",
  run: async (context) => {
    const runs = context.quick ? 3 : 5
    context.progress(`5 start-up: prompto --help and a one-line run, ${runs} times each`)
    const help: Array<number> = []
    const oneLine: Array<number> = []
    const oneLineRss: Array<number> = []
    for (let i = 0; i < runs; i++) {
      help.push(await helpRun(context))
      const run = await oneLineRun(context)
      oneLine.push(run.wallMs)
      oneLineRss.push(run.maxRssMb)
    }
    return {
      figures: [
        figure(`prompto --help (median of ${runs})`, Figures.median(help), { digits: 0, unit: "ms", target: Figures.below(1000) }),
        figure(`one-line run (median of ${runs})`, Figures.median(oneLine), { digits: 0, unit: "ms", target: Figures.below(1000) }),
        figure(`peak RSS of the one-line run (median of ${runs})`, Figures.median(oneLineRss), {
          digits: 0,
          unit: "MB",
          target: Figures.atMost(oneLineRssTargetMb)
        })
      ],
      details: { runs, helpMs: help, oneLineMs: oneLine, oneLineRssMb: oneLineRss }
    }
  }
}
