/**
 * `prompto run`: run an experiment file (prompto's `prompto_run_experiment`).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Cache, Cost, Evaluation, Experiment, Metrics, QueuePlan, RunSummary, SpendCap, StrategySpec } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Duration, Effect, Option } from "effect"
import * as CliError from "../CliError.js"
import * as EnvFile from "../EnvFile.js"
import * as Progress from "../Progress.js"
import * as PromptoFlags from "../PromptoFlags.js"
import * as Signals from "../Signals.js"
import * as SharedOptions from "../SharedOptions.js"

const maxQueries = SharedOptions.number("max-queries", { moreThan: 0 }).pipe(
  Options.withAlias("mq"),
  Options.withDefault(10),
  Options.withDescription("Queries per minute of each queue (prompto's -mq). Default: 10.")
)
const maxAttempts = SharedOptions.number("max-attempts", { integer: true, atLeast: 1 }).pipe(
  Options.withAlias("ma"),
  Options.withDefault(5),
  Options.withDescription("Attempts per prompt in total, the first included (prompto's -ma). Default: 5.")
)
const repeats = SharedOptions.number("repeats", { integer: true, atLeast: 1 }).pipe(
  Options.withDefault(1),
  Options.withDescription(
    "Send each line this many times (lines with their own \"repeats\" key keep it): each a record of its own with " +
      "\"sample\" 0 to N-1 and the line's id. Default: 1.")
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
const timeout = SharedOptions.number("timeout", { moreThan: 0 }).pipe(
  Options.withDefault(300),
  Options.withDescription("Seconds to wait for one response before it counts as a (retryable) timeout. Default: 300.")
)
const skipInvalid = Options.boolean("skip-invalid").pipe(
  Options.withDescription("Run the valid lines and write invalid ones as error records (default: refuse to start).")
)
const flattenChoices = Options.boolean("flatten-choices").pipe(
  Options.withDescription(
    "Write one record per choice of an answer with n choices (parameters.n > 1), each with choice_index " +
      "(batch-prompt's flat format); the first carries the usage."
  )
)
const cache = Options.text("cache").pipe(
  Options.optional,
  Options.withDescription(
    "Answer from the response cache and keep new answers: --cache alone uses <data folder>/cache, --cache DIR that " +
      "folder. A request asked before (same api, model, prompt, parameters, step and sample) is not sent again."
  )
)
const cacheMode = Options.choice("cache-mode", Cache.modes).pipe(
  Options.withDefault("read-write" as Cache.Mode),
  Options.withDescription("read-write (default), read-only (keep nothing new) or refresh (send everything, keep the answers).")
)
const prices = Options.text("prices").pipe(
  Options.optional,
  Options.withDescription(
    "A .json file of prices that add to or override the price table, in USD per million tokens: " +
      "{\"api\": {\"model_name\" or \"*\": {\"input_mtok\", \"output_mtok\", \"cache_read_mtok\"?, \"cache_write_mtok\"?}}}."
  )
)
const maxCost = SharedOptions.number("max-cost", { moreThan: 0 }).pipe(
  Options.optional,
  Options.withDescription(
    "A spend cap in USD: the run stops gracefully (as with Ctrl-C, exit code 3) before a request would take the spend " +
      "(answers so far plus requests in flight at their most) past it. A resumed run counts what it already spent."
  )
)
const resume = Options.text("resume").pipe(
  Options.optional,
  Options.withDescription(
    "Continue an earlier run: its output folder (or completed file). Answered prompts are not sent again; " +
      "errored ones are; new records go to the same completed file."
  )
)
const grace = SharedOptions.number("grace", { atLeast: 0 }).pipe(
  Options.withDefault(30),
  Options.withDescription("Seconds requests in flight may still take after Ctrl-C (a second Ctrl-C stops at once). Default: 30.")
)
const scorer = Options.text("scorer").pipe(
  Options.withAlias("s"),
  Options.optional,
  Options.withDescription(
    "Scorers applied as responses arrive (comma list): match, includes, match_ignore_case, includes_ignore_case, " +
      "match_normalized, includes_normalized, regex, json_valid, json_schema (the line's json_schema, or json_schema=FILE), numeric_match, or path/to/module.ts:exportName."
  )
)
const judgeFolder = Options.text("judge-folder").pipe(
  Options.withAlias("jf"),
  Options.optional,
  Options.withDescription("A judge folder: settings.json ({judge: {api, model_name, parameters}}) and template files.")
)
const judgeTemplates = Options.text("judge-templates").pipe(
  Options.withAlias("jt"),
  Options.withDefault("template.txt"),
  Options.withDescription("Judge template files in the judge folder (comma list). Default: template.txt.")
)
const judge = Options.text("judge").pipe(
  Options.withAlias("j"),
  Options.optional,
  Options.withDescription("Judges from the judge folder's settings.json (comma list); each response goes to each judge as it arrives.")
)
const judgeParser = Options.text("judge-parser").pipe(
  Options.withAlias("jp"),
  Options.optional,
  Options.withDescription("Parse verdicts into scores for the metrics: yes_no, score_1_10 or number.")
)
const rephraseFolder = Options.text("rephrase-folder").pipe(
  Options.withAlias("rf"),
  Options.optional,
  Options.withDescription("A rephrase folder: settings.json ({model: {api, model_name, parameters}}) and a template file.")
)
const rephraseTemplates = Options.text("rephrase-templates").pipe(
  Options.withAlias("rt"),
  Options.withDefault("template.txt"),
  Options.withDescription("The rephrase template file in the rephrase folder (one template per line). Default: template.txt.")
)
const rephraseModel = Options.text("rephrase-model").pipe(
  Options.withAlias("r"),
  Options.optional,
  Options.withDescription("Rephrase models from the rephrase folder's settings.json (comma list).")
)
const rephraseParser = Options.text("rephrase-parser").pipe(
  Options.withAlias("rp"),
  Options.optional,
  Options.withDescription("Parse each rephrasal into prompts: split_numbered_list.")
)
const removeOriginal = Options.boolean("remove-original").pipe(
  Options.withAlias("ro"),
  Options.withDescription("With rephrasing: send only the rephrased prompts, not the originals.")
)
const strategy = Options.text("strategy").pipe(
  Options.optional,
  Options.withDescription(
    "The strategy of lines that name none: basic, two_turn, self_consistency, mixture_of_agents, critique, best_of, " +
      "a name from --strategy-folder, or a .json file holding a strategy object."
  )
)
const strategyFolder = Options.text("strategy-folder").pipe(
  Options.withAlias("sf"),
  Options.optional,
  Options.withDescription(
    "A strategy folder: settings.json of named strategies, and templates (aggregate.txt, critique.txt, rewrite.txt, " +
      "extract.txt, select.txt) replacing the defaults."
  )
)
const onlyRephrase = Options.boolean("only-rephrase").pipe(
  Options.withAlias("or"),
  Options.withDescription("With rephrasing: only rephrase, and write input/post-rephrase-<name>.jsonl for a later run.")
)

/**
 * Loads a `--scorer path/to/module.ts:export` module through tsx, wherever the file lives: a
 * plain `import()` of a `.ts` file, or of a `.js` file with `export`s outside an ES module
 * package, fails. tsx itself is imported here, so runs without such scorers never load it.
 *
 * @since 0.1.0
 * @category utils
 */
export const loadScorerModule = async (url: string): Promise<Record<string, unknown>> => {
  const { tsImport } = await import("tsx/esm/api")
  return tsImport(url, import.meta.url) as Promise<Record<string, unknown>>
}

/**
 * The exit code of a run stopped at its spend cap (`--max-cost`); Ctrl-C gives 130.
 *
 * @since 0.1.0
 * @category constants
 */
export const spendCapExitCode = 3

const quote = (arg: string): string => /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`

/**
 * The command that resumes a run: the same flags, with `--resume <folder>` in place of the
 * file (and of the flags that only apply to a new run). With `dropMaxCost` (a run stopped at
 * its spend cap, which the same cap would stop again at once) without `--max-cost`.
 *
 * @since 0.1.0
 * @category utils
 */
export const resumeCommand = (
  args: ReadonlyArray<string>,
  folder: string,
  options?: { readonly dropMaxCost?: boolean | undefined }
): string => {
  const dropWithValue = new Set([
    "-f", "--file", "--resume", "-rf", "--rephrase-folder", "-rt", "--rephrase-templates", "-r", "--rephrase-model",
    "-rp", "--rephrase-parser", ...(options?.dropMaxCost === true ? ["--max-cost"] : [])
  ])
  const dropAlone = new Set(["-m", "--move-to-input", "-ro", "--remove-original", "-or", "--only-rephrase"])
  const kept: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const flag = arg.split("=", 1)[0]!
    if (dropWithValue.has(flag)) {
      if (!arg.includes("=")) i++
      continue
    }
    if (dropAlone.has(flag) || (i === 0 && arg === "run")) continue
    kept.push(arg)
  }
  return ["prompto", "run", "--resume", folder, ...kept].map(quote).join(" ")
}

/**
 * A comma list as prompto parses it: spaces stripped, duplicates removed, order kept.
 *
 * @since 0.1.0
 * @category utils
 */
export const commaList = (value: string): ReadonlyArray<string> => [
  ...new Set(value.split(",").map((item) => item.trim()).filter((item) => item.length > 0))
]

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
 * What `run` and `pipeline` read before they start: the `.env` file (a missing one is a
 * warning) and the `--max-queries-json` file (ignored without `--parallel`, as in prompto).
 *
 * @since 0.1.0
 * @category utils
 */
export const loadSetup = (flags: {
  readonly envFile: string
  readonly maxQueriesJson: Option.Option<string>
  readonly parallel: boolean
}) =>
  Effect.gen(function*() {
    const env = yield* EnvFile.load(flags.envFile)
    for (const warning of env.warnings) yield* Console.error(`warning: ${warning}`)
    const rates = Option.isSome(flags.maxQueriesJson) ? yield* readMaxQueriesJson(flags.maxQueriesJson.value) : undefined
    if (rates !== undefined && !flags.parallel) {
      yield* Console.error("warning: --max-queries-json is ignored without --parallel (prompto's rule)")
    }
    return { env, rates }
  })

/**
 * The queue flags `run` and `pipeline` share, as run options.
 *
 * @since 0.1.0
 * @category utils
 */
export const queueSettings = (
  flags: {
    readonly dataFolder: string
    readonly maxQueries: number
    readonly maxAttempts: number
    readonly parallel: boolean
    readonly timeout: number
    readonly repeats: number
  },
  rates: QueuePlan.MaxQueriesJson | undefined
) => ({
  dataFolder: flags.dataFolder,
  maxQueries: flags.maxQueries,
  maxAttempts: flags.maxAttempts,
  repeats: flags.repeats,
  parallel: flags.parallel,
  maxQueriesJson: rates,
  timeout: Duration.seconds(flags.timeout)
})

/**
 * The flags of `prompto run`.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  file: SharedOptions.file.pipe(Options.optional),
  resume,
  grace,
  envFile: SharedOptions.envFile,
  moveToInput: SharedOptions.moveToInput,
  dataFolder: SharedOptions.dataFolder,
  maxQueries,
  maxAttempts,
  repeats,
  parallel,
  maxQueriesJson,
  outputAsCsv,
  flattenChoices,
  cache,
  cacheMode,
  prices,
  maxCost,
  timeout,
  skipInvalid,
  scorer,
  judgeFolder,
  judgeTemplates,
  judge,
  judgeParser,
  rephraseFolder,
  rephraseTemplates,
  rephraseModel,
  rephraseParser,
  removeOriginal,
  onlyRephrase,
  strategy,
  strategyFolder
}

/**
 * What `--judge-*` and `--rephrase-*` turn on, by prompto's rule: the folder and the
 * judges (models) together; one without the other is a usage error, not silently ignored.
 *
 * @since 0.1.0
 * @category utils
 */
export const evaluationOptions = (
  flags: Command.Command.ParseConfig<typeof options>
): Effect.Effect<Evaluation.EvaluationOptions, CliError.UsageError> =>
  Effect.gen(function*() {
    const both = (folder: Option.Option<string>, names: Option.Option<string>, folderFlag: string, namesFlag: string) =>
      Option.isSome(folder) !== Option.isSome(names)
        ? new CliError.UsageError({ message: `${Option.isSome(folder) ? folderFlag : namesFlag} needs ${Option.isSome(folder) ? namesFlag : folderFlag} too` })
        : Effect.void
    yield* both(flags.judgeFolder, flags.judge, "--judge-folder", "--judge")
    yield* both(flags.rephraseFolder, flags.rephraseModel, "--rephrase-folder", "--rephrase-model")
    if (Option.isNone(flags.rephraseFolder) && (flags.onlyRephrase || flags.removeOriginal)) {
      return yield* new CliError.UsageError({
        message: `${flags.onlyRephrase ? "--only-rephrase" : "--remove-original"} needs --rephrase-folder and --rephrase-model`
      })
    }
    return {
      scorers: Option.isSome(flags.scorer) ? commaList(flags.scorer.value) : undefined,
      judge: Option.isSome(flags.judgeFolder) && Option.isSome(flags.judge)
        ? {
          folder: flags.judgeFolder.value,
          judges: commaList(flags.judge.value),
          templates: commaList(flags.judgeTemplates),
          parser: Option.getOrUndefined(flags.judgeParser)
        }
        : undefined,
      rephrase: Option.isSome(flags.rephraseFolder) && Option.isSome(flags.rephraseModel)
        ? {
          folder: flags.rephraseFolder.value,
          models: commaList(flags.rephraseModel.value),
          templates: flags.rephraseTemplates,
          parser: Option.getOrUndefined(flags.rephraseParser),
          removeOriginal: flags.removeOriginal
        }
        : undefined
    }
  })

/**
 * `prompto run`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("run", options, (flags) =>
  Effect.gen(function*() {
    const { env, rates } = yield* loadSetup(flags)
    if (!(flags.timeout > 0)) {
      return yield* new QueuePlan.RateConfigError({ message: `--timeout must be more than 0 seconds, got ${flags.timeout}` })
    }
    if (Option.isNone(flags.file) === Option.isNone(flags.resume)) {
      return yield* new CliError.UsageError({
        message: Option.isNone(flags.file)
          ? "prompto run needs --file (an experiment file) or --resume (an earlier run's output folder)"
          : "give --file or --resume, not both: --resume continues the earlier run's own input"
      })
    }
    if (!(flags.grace >= 0)) {
      return yield* new CliError.UsageError({ message: `--grace must be 0 or more seconds, got ${flags.grace}` })
    }
    const evaluationFlags = yield* evaluationOptions(flags)
    if (Option.isSome(flags.resume) && evaluationFlags.rephrase !== undefined) {
      return yield* new CliError.UsageError({
        message: "--resume cannot rephrase again: resume the post-rephrase run's output folder without --rephrase-*"
      })
    }
    const source = Option.getOrElse(flags.file, () => Option.getOrElse(flags.resume, () => ""))
    const progress = Progress.make({ interactive: process.stderr.isTTY === true })
    const result = yield* Effect.gen(function*() {
      // scorers, judges and rephrasers are loaded and checked before anything is sent
      const evaluation = yield* Evaluation.make({ ...evaluationFlags, loadModule: loadScorerModule })
      for (const line of evaluation.description) yield* Console.error(line)
      const strategies = yield* StrategySpec.load({
        folder: Option.getOrUndefined(flags.strategyFolder),
        strategy: Option.getOrUndefined(flags.strategy)
      })
      const signals = yield* Signals.stopSignals
      const priceTable = Option.isSome(flags.prices) ? yield* Cost.loadPrices(flags.prices.value) : undefined
      const common = {
        ...queueSettings(flags, rates),
        grace: Duration.seconds(flags.grace),
        stop: signals.stop,
        stopNow: signals.stopNow,
        skipInvalid: flags.skipInvalid,
        outputAsCsv: flags.outputAsCsv,
        flattenChoices: flags.flattenChoices,
        cache: Option.isNone(flags.cache) ? undefined : {
          folder: flags.cache.value === PromptoFlags.defaultCacheFolder ? undefined : flags.cache.value,
          mode: flags.cacheMode
        },
        stages: evaluation.stages,
        strategies,
        prices: priceTable,
        maxCost: Option.getOrUndefined(flags.maxCost),
        onEvent: (event: Experiment.RunEvent) => {
          // a large file starts sending before its check ends: its count comes with `Checked`
          const report = event._tag === "Started" || event._tag === "Checked" ? event.report : undefined
          const announce = report !== undefined
            ? Console.error(
              `prompto run: ${report.records} prompts from ${source}` +
                (event._tag === "Checked" ? " (all checked)" : "") +
                (report.warningCount > 0 ? ` (${report.warningCount} warnings, see the log)` : "")
            )
            : event._tag === "Started"
            ? Console.error(`prompto run: sending the prompts of ${source} while the rest of the file is checked`)
            : undefined
          if (announce !== undefined) return Effect.zipRight(announce, Effect.sync(() => progress.record(event)))
          // the other events (two a request) only move the display: at once, without an Effect step
          progress.record(event)
        }
      }
      return yield* Option.isSome(flags.resume)
        ? Experiment.resume({ ...common, from: flags.resume.value })
        : Experiment.run({
          ...common,
          file: source,
          moveToInput: flags.moveToInput,
          inputStage: evaluation.inputStage,
          inputStageOnly: flags.onlyRephrase
        })
    }).pipe(
      Effect.scoped,
      Effect.ensuring(progress.stop),
      Effect.provide(Providers.layer),
      Effect.withConfigProvider(env.provider)
    )
    if (result.preparedFile !== undefined) {
      for (const line of RunSummary.format(result.stats)) yield* Console.log(line)
      for (const run of result.linked) yield* Console.log(`${run.name}: ${run.completed}`)
      yield* Console.log(`Wrote ${result.preparedFile}; run it with: prompto run -f ${result.preparedFile} -d ${flags.dataFolder}`)
      return
    }
    yield* Console.log(`${result.stopped ? "Stopped" : "Completed"} ${result.files.name}`)
    if (result.alreadyDone > 0) yield* Console.log(`resumed: ${result.alreadyDone} prompts answered before were not sent again`)
    for (const line of RunSummary.format(result.stats)) yield* Console.log(line)
    if (result.metrics.rows.length > 0) {
      yield* Console.log("")
      for (const line of Metrics.format(result.metrics)) yield* Console.log(line)
      yield* Console.log("")
    }
    yield* Console.log(`completed file: ${result.files.completed}`)
    if (flags.outputAsCsv) yield* Console.log(`completed CSV:  ${result.files.completedCsv}`)
    if (result.summaryFile !== undefined) yield* Console.log(`metrics:        ${result.summaryFile}`)
    for (const run of result.linked) yield* Console.log(`${run.name}: ${run.completed}`)
    yield* Console.log(`log:            ${result.files.log}`)
    const atCap = result.stopReason === SpendCap.stopReason
    if (atCap && result.spent !== undefined && Option.isSome(flags.maxCost)) {
      yield* Console.log(`Stopped at the spend cap: $${result.spent.toFixed(6)} spent of $${flags.maxCost.value} (--max-cost).`)
    }
    if (result.stopped || result.notDone > 0) {
      yield* Console.log(`${result.notDone} prompts not done. Resume with:`)
      yield* Console.log(`  ${resumeCommand(process.argv.slice(2), result.files.folder, { dropMaxCost: atCap })}`)
      if (atCap) {
        yield* Console.log(
          "  (without the cap, which would stop it again at once; add --max-cost with a higher figure to keep one: " +
            "it counts what the run already spent)"
        )
      }
      if (result.stopped) return yield* new CliError.CommandFailed({ exitCode: atCap ? spendCapExitCode : 130 })
    }
  })).pipe(Command.withDescription("Run an experiment file: every prompt to its API, paced per queue, responses written as they arrive."))
