/**
 * `prompto report OUTPUT_FOLDER... [-o report.html] [--open] [--max-rows N] [--max-error-rows N]`: one self-contained
 * HTML report of one or more finished runs (ours or prompto's Python outputs).
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import { Report } from "@prompto/core"
import { Console, Effect } from "effect"
import { spawn } from "node:child_process"
import * as SharedOptions from "../SharedOptions.js"

const runs = Args.text({ name: "OUTPUT_FOLDER" }).pipe(
  Args.withDescription("A run's output folder (data/output/<name>: its newest run is taken) or a completed file; give two to compare them."),
  Args.atLeast(1)
)

const output = Options.text("output").pipe(
  Options.withAlias("o"),
  Options.withDefault("report.html"),
  Options.withDescription("The HTML file to write.")
)

const open = Options.boolean("open").pipe(
  Options.withDescription("Open the report in the default browser once written.")
)

const maxRows = SharedOptions.number("max-rows", { integer: true, atLeast: 0 }).pipe(
  Options.withDefault(Report.defaultMaxRows),
  Options.withDescription("Records in the table's sample of prompts (every error record is added, up to --max-error-rows).")
)

const maxErrorRows = SharedOptions.number("max-error-rows", { integer: true, atLeast: 0 }).pipe(
  Options.withDefault(Report.defaultMaxErrorRows),
  Options.withDescription(
    "Error records added to the table beyond the sample (past it, errors are still counted in the charts, and the page says how many are not shown)."
  )
)

/** Starts the platform's opener on `file` and does not wait for it. */
const openInBrowser = (file: string) =>
  Effect.sync(() => {
    const [command, args] = process.platform === "darwin"
      ? ["open", [file]]
      : process.platform === "win32"
      ? ["cmd", ["/c", "start", "", file]]
      : ["xdg-open", [file]]
    const child = spawn(command, args as Array<string>, { detached: true, stdio: "ignore" })
    child.on("error", () => console.error(`could not start ${command}: open ${file} yourself`))
    child.unref()
  })

const size = (bytes: number): string => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.ceil(bytes / 1e3)} kB`)

/**
 * `prompto report`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("report", { runs, output, open, maxRows, maxErrorRows }, (flags) =>
  Effect.gen(function*() {
    const written = yield* Report.write({
      runs: flags.runs,
      output: flags.output,
      maxRows: flags.maxRows,
      maxErrorRows: flags.maxErrorRows
    })
    const { data } = written
    const records = data.runs.reduce((n, run) => n + run.records, 0)
    const unreadable = data.runs.reduce((n, run) => n + run.unreadable, 0)
    yield* Console.log(
      `report: ${written.file} (${size(written.bytes)}): ${data.runs.length} run(s), ${records} records, ` +
        `${data.sample.shownRows} in the table`
    )
    if (data.sample.errorRowsShown < data.sample.errorRowsTotal) {
      yield* Console.error(
        `note: the table holds ${data.sample.errorRowsShown} of ${data.sample.errorRowsTotal} error records ` +
          `(--max-error-rows ${data.sample.errorRowsTotal} holds them all); the charts count every one`
      )
    }
    if (unreadable > 0) yield* Console.error(`warning: ${unreadable} line(s) could not be read; the report names them`)
    if (flags.open) yield* openInBrowser(written.file)
  })).pipe(
    Command.withDescription(
      "Write one self-contained HTML report (charts, scores with intervals, errors, latency, a searchable table) of finished runs."
    )
  )
