/**
 * `prompto run`: run an experiment file (prompto's `prompto_run_experiment`).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Experiment, QueuePlan, RunSummary } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Duration, Effect, Option } from "effect"
import * as EnvFile from "../EnvFile.js"
import * as Progress from "../Progress.js"
import * as SharedOptions from "../SharedOptions.js"

const maxQueries = Options.float("max-queries").pipe(
  Options.withAlias("mq"),
  Options.withDefault(10),
  Options.withDescription("Queries per minute of each queue (prompto's -mq).")
)
const maxAttempts = Options.integer("max-attempts").pipe(
  Options.withAlias("ma"),
  Options.withDefault(5),
  Options.withDescription("Attempts per prompt in total, the first included (prompto's -ma).")
)
const parallel = Options.boolean("parallel").pipe(
  Options.withAlias("p"),
  Options.withDescription("One queue per group (or api, split by model where --max-queries-json says), all at once.")
)
const maxQueriesJson = Options.text("max-queries-json").pipe(
  Options.withAlias("mqj"),
  Options.optional,
  Options.withDescription("A .json file of rates: {\"api or group\": qpm | {\"model\" or \"default\": qpm}}.")
)
const outputAsCsv = Options.boolean("output-as-csv").pipe(
  Options.withDescription("Also write the completed file as CSV.")
)
const timeout = Options.float("timeout").pipe(
  Options.withDefault(300),
  Options.withDescription("Seconds to wait for one response before it counts as a (retryable) timeout.")
)
const skipInvalid = Options.boolean("skip-invalid").pipe(
  Options.withDescription("Run the valid lines and write invalid ones as error records (default: refuse to start).")
)

/**
 * Reads and checks a `--max-queries-json` file.
 *
 * @since 0.1.0
 * @category utils
 */
export const readMaxQueriesJson = (path: string) =>
  Effect.gen(function*() {
    if (!path.endsWith(".json")) {
      return yield* new QueuePlan.RateConfigError({ message: `--max-queries-json: ${path} must be a .json file` })
    }
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError(() => new QueuePlan.RateConfigError({ message: `--max-queries-json: cannot read ${path}` }))
    )
    return yield* Effect.try({
      try: () => QueuePlan.decodeMaxQueriesJson(JSON.parse(text), path),
      catch: (error) =>
        error instanceof QueuePlan.RateConfigError
          ? error
          : new QueuePlan.RateConfigError({ message: `${path}: invalid JSON (${String(error)})` })
    })
  })

/**
 * The flags of `prompto run`.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  file: SharedOptions.file,
  envFile: SharedOptions.envFile,
  moveToInput: SharedOptions.moveToInput,
  dataFolder: SharedOptions.dataFolder,
  maxQueries,
  maxAttempts,
  parallel,
  maxQueriesJson,
  outputAsCsv,
  timeout,
  skipInvalid
}

/**
 * `prompto run`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("run", options, (flags) =>
  Effect.gen(function*() {
    const env = yield* EnvFile.load(flags.envFile)
    if (env.warning !== undefined) yield* Console.error(`warning: ${env.warning}`)
    const rates = Option.isSome(flags.maxQueriesJson) ? yield* readMaxQueriesJson(flags.maxQueriesJson.value) : undefined
    if (rates !== undefined && !flags.parallel) {
      yield* Console.error("warning: --max-queries-json is ignored without --parallel (prompto's rule)")
    }
    if (!(flags.timeout > 0)) {
      return yield* new QueuePlan.RateConfigError({ message: `--timeout must be more than 0 seconds, got ${flags.timeout}` })
    }
    const progress = Progress.make({ interactive: process.stderr.isTTY === true })
    const result = yield* Experiment.run({
      file: flags.file,
      dataFolder: flags.dataFolder,
      moveToInput: flags.moveToInput,
      maxQueries: flags.maxQueries,
      maxAttempts: flags.maxAttempts,
      parallel: flags.parallel,
      maxQueriesJson: rates,
      timeout: Duration.seconds(flags.timeout),
      skipInvalid: flags.skipInvalid,
      outputAsCsv: flags.outputAsCsv,
      onEvent: (event) =>
        event._tag === "Started"
          ? Effect.zipRight(
            Console.error(
              `prompto run: ${event.report.records} prompts from ${flags.file}` +
                (event.report.warningCount > 0 ? ` (${event.report.warningCount} warnings, see the log)` : "")
            ),
            progress.onEvent(event)
          )
          : progress.onEvent(event)
    }).pipe(
      Effect.ensuring(progress.stop),
      Effect.provide(Providers.layer),
      Effect.withConfigProvider(env.provider)
    )
    yield* Console.log(`Completed ${result.files.name}`)
    for (const line of RunSummary.format(result.stats)) yield* Console.log(line)
    yield* Console.log(`completed file: ${result.files.completed}`)
    if (flags.outputAsCsv) yield* Console.log(`completed CSV:  ${result.files.completedCsv}`)
    yield* Console.log(`log:            ${result.files.log}`)
  })).pipe(Command.withDescription("Run an experiment file: every prompt to its API, paced per queue, responses written as they arrive."))
