/**
 * `pnpm bench`: runs the benchmark's scenarios against the real product (`prompto run` as a
 * child process, a loopback OpenAI server as another), prints a table of figures against
 * their targets and writes every figure, with the machine, to `bench/results.json`.
 *
 * Flags: `--only 1,3` (a subset), `--quick` (smaller sizes, for development), `--scale <x>`
 * (scenario 2's time scale, default 0.2, or 0.05 with `--quick`; 1 is the paper's real
 * latencies), `--repeat <n>` (run the selected scenarios n times, round by round, and hold each
 * figure's median to its target), `--keep` (keep the temporary folders), `--out <file>` (default
 * `bench/results.json`). `PROMPTO_BENCH_CLI=<path
 * to another build's bin/prompto.js>` measures that build instead of this checkout's.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import * as Figures from "./Figures.js"
import * as LoopbackServer from "./LoopbackServer.js"
import * as Machine from "./Machine.js"
import { benchDir } from "./Paths.js"
import type { Context, Figure, Scenario } from "./Scenario.js"
import * as Memory from "./scenarios/Memory.js"
import * as FirstRequest from "./scenarios/FirstRequest.js"
import * as Pacing from "./scenarios/Pacing.js"
import * as ParallelQueues from "./scenarios/ParallelQueues.js"
import * as PushBack from "./scenarios/PushBack.js"
import * as Report from "./scenarios/Report.js"
import * as Startup from "./scenarios/Startup.js"
import * as Strategies from "./scenarios/Strategies.js"
import * as Throughput from "./scenarios/Throughput.js"

const scenarios: ReadonlyArray<Scenario> = [
  Pacing.scenario,
  ParallelQueues.scenario,
  Throughput.scenario,
  Memory.scenario,
  Startup.scenario,
  Strategies.scenario,
  Report.scenario,
  PushBack.scenario,
  FirstRequest.scenario
]

const usage =
  `usage: pnpm bench [--only 1,3] [--quick] [--scale 0.2] [--repeat 3] [--keep] [--out bench/results.json]`

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    scale: { type: "string" },
    repeat: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
    out: { type: "string", default: path.join(benchDir, "results.json") },
    help: { type: "boolean", short: "h", default: false }
  }
})
if (values.help) {
  console.log(usage)
  process.exit(0)
}
const only = values.only === undefined
  ? scenarios.map((scenario) => scenario.id)
  : values.only.split(",").map((id) => Number(id.trim()))
const unknown = only.filter((id) => !scenarios.some((scenario) => scenario.id === id))
const scale = Number(values.scale ?? (values.quick ? "0.05" : "0.2"))
const repeat = Number(values.repeat)
const problem = unknown.length > 0
  ? `unknown scenario: ${unknown.join(", ")}`
  : !(scale > 0)
  ? `--scale must be a positive number`
  : !(Number.isInteger(repeat) && repeat >= 1)
  ? `--repeat must be a whole number, 1 or more`
  : undefined
if (problem !== undefined) {
  console.error(problem)
  console.error(usage)
  process.exit(2)
}

/** One run of one scenario, as results.json keeps it. */
interface ScenarioRecord {
  readonly id: number
  /** Which round of `--repeat` (1 for a single run). */
  readonly round: number
  readonly title: string
  readonly seconds: number
  readonly figures: ReadonlyArray<Figure & { readonly targetText: string; readonly result: string }>
  readonly details: Readonly<Record<string, unknown>>
  readonly error?: string
}

const benchStarted = performance.now()
const machine = await Machine.describe()
const progress = (line: string) => console.error(`[${((performance.now() - benchStarted) / 1000).toFixed(1)} s] ${line}`)
if (machine.loadAverage[0]! > machine.cores * 0.5) {
  progress(`warning: load average ${machine.loadAverage.join(", ")} on ${machine.cores} cores: other work will disturb the figures`)
}
if (machine.cliPath !== undefined) progress(`measuring the CLI at ${machine.cliPath} (PROMPTO_BENCH_CLI)`)
if (machine.cli === "tsx") {
  progress("warning: the CLI bundle is missing or older than the sources, so prompto runs through tsx: run `pnpm build` first")
}
const server = await LoopbackServer.start()
const context: Context = { server, quick: values.quick, scale, keep: values.keep, progress }

const records: Array<ScenarioRecord> = []
const selected = scenarios.filter((scenario) => only.includes(scenario.id))
try {
  // round by round rather than scenario by scenario, so that a slow patch of the machine falls
  // on one run of each scenario instead of on every run of one
  for (let round = 1; round <= repeat; round++) {
    if (repeat > 1) progress(`round ${round} of ${repeat}`)
    for (const scenario of selected) {
      const started = performance.now()
      const title = scenario.title(context)
      try {
        const outcome = await scenario.run(context)
        records.push({
          id: scenario.id,
          round,
          title,
          seconds: (performance.now() - started) / 1000,
          figures: outcome.figures.map((figure) => ({
            ...figure,
            targetText: Figures.formatTarget(figure.target, figure.digits, figure.unit),
            result: Figures.verdict(figure.measured, figure.target)
          })),
          details: outcome.details
        })
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        progress(`${title}: failed: ${message}`)
        process.exitCode = 1
        records.push({
          id: scenario.id,
          round,
          title,
          seconds: (performance.now() - started) / 1000,
          figures: [],
          details: {},
          error: message
        })
      }
      progress(`${title}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    }
  }
} finally {
  await server.close()
}

const totalSeconds = (performance.now() - benchStarted) / 1000
// a rebuild (or a source edit) during the run changes how later runs started the CLI
const cliAtEnd = await Machine.cliMode()
const cli = (cliAtEnd === machine.cli ? machine.cli : `${machine.cli} at start, ${cliAtEnd} at end`) +
  (machine.cliPath === undefined ? "" : ` (${machine.cliPath})`)

/** A scenario's figures over its rounds: each figure's median, held to the figure's target. */
interface CombinedRecord {
  readonly id: number
  readonly title: string
  readonly figures: ReadonlyArray<
    Figures.Combined & Omit<Figure, "name" | "measured"> & { readonly targetText: string; readonly result: string }
  >
  readonly errors: ReadonlyArray<string>
}

const combined: ReadonlyArray<CombinedRecord> = selected.map((scenario) => {
  const runs = records.filter((record) => record.id === scenario.id)
  const errors = runs.flatMap((record) => (record.error === undefined ? [] : [`round ${record.round}: ${record.error}`]))
  const described = new Map(runs.flatMap((record) => record.figures).map((figure) => [figure.name, figure]))
  return {
    id: scenario.id,
    title: runs[0]!.title,
    errors,
    figures: errors.length > 0 ? [] : Figures.combineRuns(runs.map((record) => record.figures)).map((figure) => {
      const { digits, target, targetText, unit } = described.get(figure.name)!
      return { ...figure, digits, target, targetText, unit, result: Figures.verdict(figure.median, target) }
    })
  }
})

// with --repeat, a column for the runs' range beside each median (empty where every run printed the same)
const withRange = repeat > 1
const rangeText = (figure: CombinedRecord["figures"][number]) => {
  const [low, high] = [figure.low, figure.high].map((value) => Figures.formatNumber(value, figure.digits))
  return low === high ? "" : `${low}-${Figures.formatNumber(figure.high, figure.digits, figure.unit)}`
}
const rows = combined.flatMap((record) =>
  record.errors.length > 0
    ? [[record.title, "error", record.errors.join("; ").slice(0, 100), ...(withRange ? [""] : []), "", "miss"]]
    : record.figures.map((figure) => [
      record.title,
      figure.name,
      Figures.formatNumber(figure.median, figure.digits, figure.unit),
      ...(withRange ? [rangeText(figure)] : []),
      figure.targetText,
      figure.result
    ])
)
const counted = (result: string) => rows.filter((row) => row.at(-1) === result).length
console.log(
  Figures.formatTable(
    ["scenario", "figure", withRange ? `median of ${repeat}` : "measured", ...(withRange ? ["runs' range"] : []), "target", "result"],
    rows
  )
)
console.log(
  `\n${counted("pass")} pass, ${counted("miss")} miss${withRange ? ` (each figure's median of ${repeat} runs)` : ""}; ` +
    `bench took ${totalSeconds.toFixed(1)} s${values.quick ? " (--quick sizes)" : ""}; ` +
    `${machine.cpu}, ${machine.cores} cores, ${machine.totalMemoryGb} GB, Node ${machine.node}, CLI via ${cli}, ` +
    `load average ${machine.loadAverage[0]} at start, ${Machine.loadAverage()[0]} at end`
)

fs.writeFileSync(
  values.out,
  JSON.stringify(
    {
      machine,
      options: { only, quick: values.quick, scale, repeat },
      totalSeconds,
      cliAtEnd,
      loadAverageAtEnd: Machine.loadAverage(),
      // the figures as the table shows them (medians over the rounds), then every run whole
      figures: combined,
      scenarios: records
    },
    (_, value: unknown) => (typeof value === "number" && !Number.isFinite(value) ? null : value),
    2
  ) + "\n"
)
console.log(`figures written to ${path.relative(process.cwd(), values.out) || values.out}`)
