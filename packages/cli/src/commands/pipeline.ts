/**
 * `prompto pipeline`: watch a data folder's `input/` and run every experiment put there, oldest
 * first, one at a time (prompto's `prompto_run_pipeline`).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Cost, Pipeline, StrategySpec } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Effect, Option } from "effect"
import * as CliError from "../CliError.js"
import * as Progress from "../Progress.js"
import * as SharedOptions from "../SharedOptions.js"
import { loadSetup, options as runOptions, queueSettings } from "./run.js"

/**
 * The flags of `prompto pipeline`: prompto's, the run flags that apply to every file, and `--once`.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  dataFolder: SharedOptions.dataFolder,
  envFile: SharedOptions.envFile,
  maxQueries: runOptions.maxQueries,
  maxAttempts: runOptions.maxAttempts,
  repeats: runOptions.repeats,
  parallel: runOptions.parallel,
  maxQueriesJson: runOptions.maxQueriesJson,
  timeout: runOptions.timeout,
  strategy: runOptions.strategy,
  strategyFolder: runOptions.strategyFolder,
  prices: runOptions.prices,
  once: Options.boolean("once").pipe(
    Options.withDescription("Run the files in input/ (and any added meanwhile), then exit instead of waiting for more.")
  )
}

/**
 * `prompto pipeline`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("pipeline", options, (flags) =>
  Effect.gen(function*() {
    const { env, rates } = yield* loadSetup(flags)
    const interactive = process.stderr.isTTY === true
    // one progress display per file, while it runs
    let progress: Progress.Progress | undefined
    const stopProgress = Effect.suspend(() => {
      const current = progress
      progress = undefined
      return current === undefined ? Effect.void : current.stop
    })
    const strategies = yield* StrategySpec.load({
      folder: Option.getOrUndefined(flags.strategyFolder),
      strategy: Option.getOrUndefined(flags.strategy)
    })
    const prices = Option.isSome(flags.prices) ? yield* Cost.loadPrices(flags.prices.value) : undefined
    let failed = 0
    yield* Pipeline.run({
      ...queueSettings(flags, rates),
      strategies,
      prices,
      stopWhenIdle: flags.once,
      onEvent: (event) =>
        Effect.gen(function*() {
          if (event._tag === "Finished" || event._tag === "Failed") yield* stopProgress
          if (event._tag === "Failed") failed++
          for (const line of Pipeline.format(event)) yield* Console.error(line)
          if (event._tag === "Started") progress = Progress.make({ interactive })
        }),
      onRunEvent: (_file, event) => progress === undefined ? Effect.void : progress.onEvent(event)
    }).pipe(
      Effect.ensuring(stopProgress),
      Effect.provide(Providers.layer),
      Effect.withConfigProvider(env.provider)
    )
    // with --once the pipeline is a batch job: a script must learn that a file failed
    if (failed > 0) {
      yield* Console.error(`${failed} ${failed === 1 ? "file" : "files"} failed; see each one's log under output/`)
      return yield* new CliError.CommandFailed({ exitCode: 1 })
    }
  })).pipe(
    Command.withDescription(
      "Watch the data folder's input/ and run each experiment file put there (.jsonl or .csv), oldest first, " +
        "one at a time (prompto_run_pipeline). A file is taken once it has stopped changing; a file that cannot " +
        "run goes to output/<name>/ with a log saying why. Runs until Ctrl-C (or, with --once, until input/ is empty)."
    )
  )
