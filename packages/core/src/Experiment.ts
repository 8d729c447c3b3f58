/**
 * Running an experiment end to end: check the file (one streaming pass that also plans the
 * queues), move it into its output folder, send every record through its paced queue, and
 * append each completed record the moment it arrives.
 *
 * Data flows one way: file -> records -> queues -> provider -> completed records -> stages ->
 * files.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Context, Duration, Effect, Exit, Fiber, Schema, type Scope, Stream } from "effect"
import * as Cache from "./Cache.js"
import * as Choices from "./Choices.js"
import * as Cost from "./Cost.js"
import * as SpendCap from "./SpendCap.js"
import * as TokenCount from "./TokenCount.js"
import * as DataFolder from "./DataFolder.js"
import * as ExperimentCheck from "./ExperimentCheck.js"
import * as ExperimentFile from "./ExperimentFile.js"
import * as LinkedRun from "./LinkedRun.js"
import * as Metrics from "./Metrics.js"
import * as Output from "./Output.js"
import type { CompletedRecord, IdentifiedRecord, PromptRecord } from "./PromptRecord.js"
import * as Provider from "./Provider.js"
import type { ProviderRegistry } from "./Provider.js"
import * as QueuePlan from "./QueuePlan.js"
import * as Resume from "./Resume.js"
import * as RunSummary from "./RunSummary.js"
import * as GracefulStop from "./GracefulStop.js"
import * as LineProgram from "./internal/lineProgram.js"
import * as Lines from "./internal/lines.js"
import * as RequestPath from "./RequestPath.js"
import * as RunEvents from "./RunEvents.js"
import * as RunPlan from "./RunPlan.js"
import type * as Scheduler from "./Scheduler.js"
import type * as Strategy from "./Strategy.js"
import * as StrategySpec from "./StrategySpec.js"

/**
 * The file cannot run: every problem is listed, nothing was sent, the input stays where it was.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExperimentInvalid extends Schema.TaggedError<ExperimentInvalid>()("ExperimentInvalid", {
  file: Schema.String,
  problemCount: Schema.Number,
  /** The check report as text lines. */
  report: Schema.Array(Schema.String)
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return this.report.join("\n")
  }
}

/**
 * A stage between the scheduler and the completed file (scorers, judges, ...): a function
 * from the stream of completed records to a stream of completed records.
 *
 * @since 0.1.0
 * @category models
 */
export type Stage<E = never, R = never> = (
  records: Stream.Stream<CompletedRecord>
) => Stream.Stream<CompletedRecord, E, R>

/**
 * Applies a stage to a stream. A stage is typed against a stream with no errors or needs of its
 * own, so its own `E` and `R` are inferred from how it is written; the upstream's errors and
 * needs still flow through it, and are put back in the type here.
 *
 * @since 0.1.0
 * @category combinators
 */
export const applyStage = <A, B, E0, R0, E, R>(
  records: Stream.Stream<A, E0, R0>,
  stage: (records: Stream.Stream<A>) => Stream.Stream<B, E, R>
): Stream.Stream<B, E0 | E, R0 | R> => stage(records as unknown as Stream.Stream<A>)

/**
 * A stage before the queues (rephrasing): a function from the stream of input records to the
 * stream of records to send. Its records are sent as they come out, and the run is named
 * `<prefix>-<experiment>` (prompto's `post-rephrase-<name>`): its input file holds the records
 * the stage made, the experiment file is kept beside them as `<T>-input-<experiment>`.
 *
 * @since 0.1.0
 * @category models
 */
export interface InputStage<E = never, R = never> {
  readonly prefix: string
  readonly apply: (records: Stream.Stream<IdentifiedRecord>) => Stream.Stream<IdentifiedRecord, E, R>
}

/**
 * The services `Experiment.run` gives its stages: the run's request path, linked runs (judges,
 * rephrasers) and the metrics accumulator.
 *
 * @since 0.1.0
 * @category models
 */
export type StageServices = LinkedRun.LinkedRuns | Metrics.Metrics | RequestPath.RequestPath

/**
 * Options of a run; the defaults are prompto's.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions<E = never, R = never> {
  /** The experiment file (`.jsonl` or `.csv`). */
  readonly file: string
  /** The data folder (default `data`). */
  readonly dataFolder?: string | undefined
  /** Move the file into `input/` instead of copying it (default false). */
  readonly moveToInput?: boolean | undefined
  /** Queries per minute of each queue (default 10). */
  readonly maxQueries?: number | undefined
  /** Attempts per prompt in total (default 5). */
  readonly maxAttempts?: number | undefined
  /** One queue per group or API instead of one queue (default false). */
  readonly parallel?: boolean | undefined
  /** Per api/group/model rates, used with `parallel`. */
  readonly maxQueriesJson?: QueuePlan.MaxQueriesJson | undefined
  /** Per-request timeout (default 300 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Run the valid lines and write invalid ones as error records (default false: refuse). */
  readonly skipInvalid?: boolean | undefined
  /** Also write the completed file as CSV (default false). */
  readonly outputAsCsv?: boolean | undefined
  /** Stages applied to completed records before they are written (scorers, judges). */
  readonly stages?: Stage<E, R> | undefined
  /** A stage applied to the input records before they are queued (rephrasing). */
  readonly inputStage?: InputStage<E, R> | undefined
  /**
   * With `inputStage`: only run the stage and write its records to `input/<prefix>-<name>.jsonl`
   * for a later run (prompto's `--only-rephrase`); nothing of the main experiment is sent.
   */
  readonly inputStageOnly?: boolean | undefined
  /**
   * Observer of run events (progress displays), on the fiber that publishes them: it handles an
   * event at once (returning nothing) or returns the effect that does.
   */
  readonly onEvent?: ((event: RunEvent) => Effect.Effect<void> | void) | undefined
  /**
   * Completes when a graceful stop is asked for (the CLI's first Ctrl-C): nothing more is sent,
   * requests in flight get `grace` to answer, what arrived is written, and the rest is left for
   * a resume.
   */
  readonly stop?: Effect.Effect<void> | undefined
  /** How long requests in flight may take after a stop (default 30 seconds). */
  readonly grace?: Duration.DurationInput | undefined
  /**
   * Completes when the grace period must end at once (the CLI's second Ctrl-C): requests in
   * flight are abandoned, and the run finishes as after the grace period (summary, log, result).
   */
  readonly stopNow?: Effect.Effect<void> | undefined
  /**
   * Strategies: a folder's named strategies and templates, and the default strategy of lines
   * that name none (see `StrategySpec.load`). Default: the built-ins, and `basic`.
   */
  readonly strategies?: StrategySpec.StrategySetup | undefined
  /**
   * The strategy of lines that name none, as a value (`Strategy.selfConsistency({ ... })`); it
   * takes precedence over `strategies.default`.
   */
  readonly strategy?: Strategy.Strategy | undefined
  /**
   * How many times each line without `repeats` of its own is sent (default 1): each a record of
   * its own with `sample` 0 to N - 1 and the line's id.
   */
  readonly repeats?: number | undefined
  /**
   * Write one record per choice of an answer with `n` choices, each with `choice_index`
   * (batch-prompt's flat format); the first carries the request's usage (default false).
   */
  readonly flattenChoices?: boolean | undefined
  /**
   * The response cache: `folder` (default `<data folder>/cache`) and `mode` (default
   * `read-write`); see `Cache`.
   */
  readonly cache?: { readonly folder?: string | undefined; readonly mode?: Cache.Mode | undefined } | undefined
  /** Layers of the request path below the cache and the spend cap, outermost first. */
  readonly middleware?: ReadonlyArray<RequestPath.Middleware> | undefined
  /** Prices that add to or override the price table (see `Cost`); every answer gets its `cost`. */
  readonly prices?: Cost.Prices | undefined
  /**
   * The spend cap in USD (see `SpendCap`): the run stops gracefully before a request would take
   * the spend past it; `RunResult.stopReason` is then `"spend-cap"`. A resumed run counts what
   * its completed file already cost.
   */
  readonly maxCost?: number | undefined
  /**
   * How long the run waits for the check of its file before it starts sending (default
   * `defaultCheckHeadStart`): a file checked within it runs only if every line is valid, as
   * before; a longer one starts sending its checked lines while the check goes on ahead, and an
   * invalid line found later stops the run (see `run`).
   */
  readonly checkHeadStart?: Duration.DurationInput | undefined
}

/**
 * The default `checkHeadStart`: about 6,000 lines are checked in it on a slow machine, so
 * small and medium files keep "all or nothing", and any file's first request leaves within a
 * second of the start (the CLI's own start-up takes 0.6-0.8 s of that on a loaded 2-core
 * machine; 250 ms put a 1M-line file's first request at 0.95-1.05 s).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCheckHeadStart: Duration.Duration = Duration.millis(150)

/**
 * What a run reports as it goes.
 *
 * @since 0.1.0
 * @category models
 */
export type RunEvent =
  | Scheduler.SchedulerEvent
  | {
    readonly _tag: "Started"
    readonly files: DataFolder.RunFiles
    readonly stats: RunSummary.RunStats
    /** The check's report; `undefined` when sending began before the check ended (see `Checked`). */
    readonly report: ExperimentCheck.CheckReport | undefined
  }
  /** The check of a file that began sending before the check ended has ended. */
  | { readonly _tag: "Checked"; readonly report: ExperimentCheck.CheckReport }
  | { readonly _tag: "Finished"; readonly stats: RunSummary.RunStats }

/**
 * What a finished run leaves.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunResult {
  readonly files: DataFolder.RunFiles
  readonly stats: RunSummary.RunStats
  readonly report: ExperimentCheck.CheckReport
  /** Scores per scorer, model and group (empty without scorers or judge parsers). */
  readonly metrics: Metrics.Summary
  /** `<T>-summary-<name>.json`, written when there are metrics. */
  readonly summaryFile: string | undefined
  /** Judge and rephrase runs made by the stages. */
  readonly linked: ReadonlyArray<DataFolder.RunFiles>
  /** With `inputStageOnly`: the file written to `input/` for a later run. */
  readonly preparedFile: string | undefined
  /** Whether the run was stopped before every prompt was answered (see `RunOptions.stop`). */
  readonly stopped: boolean
  /** Why it stopped: `"signal"` (`RunOptions.stop`) or `"spend-cap"` (`RunOptions.maxCost`). */
  readonly stopReason: string | undefined
  /** With `maxCost`: USD spent in all, earlier runs of a resumed experiment included. */
  readonly spent: number | undefined
  /** Prompts of this run with no record in the completed file (sent again by a resume). */
  readonly notDone: number
  /** For a resumed run: the prompts answered before, not sent again. */
  readonly alreadyDone: number
}

/**
 * Any failure that stops a run before or while it writes.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunError =
  | Cache.CacheError
  | ExperimentInvalid
  | ExperimentFile.ExperimentFileError
  | DataFolder.DataFolderError
  | Output.OutputError
  | QueuePlan.RateConfigError

/**
 * The error record written for an invalid line under `skipInvalid`: never sent.
 *
 * @since 0.1.0
 * @category output
 */
export const invalidRecord = (
  entry: ExperimentFile.RawEntry,
  problems: ReadonlyArray<ExperimentFile.LineProblem>
): CompletedRecord => {
  const message = problems.map((problem) =>
    `${problem.key === undefined ? "" : `key "${problem.key}": `}${problem.message}`
  ).join("; ")
  const base = (entry.value ?? { line: entry.line, raw_line: entry.text }) as Record<string, unknown>
  return {
    ...base,
    id: (base.id as IdentifiedRecord["id"] | undefined) ?? ExperimentFile.assignedId(entry.line),
    api: base.api as string,
    model_name: base.model_name as string,
    prompt: base.prompt as IdentifiedRecord["prompt"],
    response: `ValidationError - line ${entry.line}: ${message}`,
    attempts: 0,
    error: { kind: "validation", message, attempts: 0 }
  }
}

/**
 * Options of `runRecords`: a run whose records come from code instead of a file.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunRecordsOptions<E, R, E2, R2> extends Omit<RunOptions<E, R>, "file" | "moveToInput"> {
  /** The experiment name: the file `input/<name>.jsonl` is written, then run. */
  readonly name: string
  readonly records: Stream.Stream<PromptRecord, E2, R2>
}

/**
 * Runs records built in code: streams them to `<data folder>/input/<name>.jsonl`, then runs that
 * file as `run` does, so the output files are the same as from the CLI.
 *
 * @since 0.1.0
 * @category running
 */
export const runRecords = <E = never, R = never, E2 = never, R2 = never>(
  options: RunRecordsOptions<E, R, E2, R2>
): Effect.Effect<
  RunResult,
  RunError | E | E2,
  FileSystem.FileSystem | Path.Path | ProviderRegistry | Exclude<R, StageServices> | R2
> =>
  Effect.gen(function*() {
    const folder = yield* DataFolder.prepare(options.dataFolder ?? "data")
    const path = yield* Path.Path
    const file = path.join(folder.input, `${options.name}.jsonl`)
    yield* Effect.scoped(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFileString(file, "").pipe(
        Effect.mapError((error) => new Output.OutputError({ path: file, message: error.message }))
      )
      const writer = yield* Output.appendLines(file)
      yield* Stream.runForEachChunk(options.records, (chunk) => writer.write([...chunk].map((record) => JSON.stringify(record))))
    }))
    return yield* run({ ...options, file })
  })

const moveFile = (from: string, to: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.rename(from, to).pipe(
      Effect.mapError((error) => new DataFolder.DataFolderError({ path: from, message: `cannot move to ${to}: ${error.message}` }))
    ))

/**
 * Runs an experiment file and writes prompto's output files. Fails before sending anything if
 * the file is invalid (unless `skipInvalid`), a rate is not positive, or the folders cannot be
 * written.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E = never, R = never>(
  options: RunOptions<E, R>
): Effect.Effect<RunResult, RunError | E, FileSystem.FileSystem | Path.Path | ProviderRegistry | Exclude<R, StageServices>> =>
  Effect.scoped(runScoped(options))

/**
 * The queue plan, timeout and attempts a run's options give, checked: a rate, timeout or
 * attempt count that would fail every request fails here, before anything is read or sent.
 *
 * @since 0.1.0
 * @category running
 */
export const settings = (
  options: Pick<RunOptions, "maxQueries" | "parallel" | "maxQueriesJson" | "timeout" | "maxAttempts" | "repeats">
): Effect.Effect<
  {
    readonly plan: QueuePlan.QueuePlan
    readonly timeout: Duration.Duration
    readonly maxAttempts: number
    readonly repeats: number
  },
  QueuePlan.RateConfigError
> =>
  Effect.gen(function*() {
    const plan = yield* Effect.try({
      try: () =>
        QueuePlan.make({
          maxQueries: options.maxQueries ?? 10,
          parallel: options.parallel ?? false,
          maxQueriesJson: options.maxQueriesJson
        }),
      catch: (error) =>
        error instanceof QueuePlan.RateConfigError ? error : new QueuePlan.RateConfigError({ message: String(error) })
    })
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(300))
    if (!Duration.greaterThan(timeout, Duration.zero)) {
      return yield* new QueuePlan.RateConfigError({ message: `--timeout must be more than 0 seconds, got ${Duration.format(timeout)}` })
    }
    const maxAttempts = options.maxAttempts ?? 5
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      return yield* new QueuePlan.RateConfigError({ message: `--max-attempts must be a whole number of at least 1, got ${maxAttempts}` })
    }
    const repeats = options.repeats ?? 1
    if (!Number.isInteger(repeats) || repeats < 1) {
      return yield* new QueuePlan.RateConfigError({ message: `--repeats must be a whole number of at least 1, got ${repeats}` })
    }
    return { plan, timeout, maxAttempts, repeats }
  })

/**
 * Options of `resume`: a run's options, without the file (the earlier run's input is used).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResumeOptions<E = never, R = never> extends Omit<RunOptions<E, R>, "file" | "moveToInput" | "inputStage" | "inputStageOnly"> {
  /** The output folder of an earlier run (its latest run is resumed), or its completed file. */
  readonly from: string
}

/**
 * Continues an earlier run in its own files: prompts answered successfully are not sent again,
 * errored ones are, and new records are appended to the same completed file. The completed file
 * is first reconciled (see `Resume.reconcile`): a line cut off by a crash is dropped, not fatal,
 * and each id is kept once, so every id ends up in the completed file exactly once.
 *
 * @since 0.1.0
 * @category running
 */
export const resume = <E = never, R = never>(
  options: ResumeOptions<E, R>
): Effect.Effect<RunResult, RunError | E, FileSystem.FileSystem | Path.Path | ProviderRegistry | Exclude<R, StageServices>> =>
  Effect.scoped(runScoped({ ...options, file: options.from }, options.from))

/** What a run is given: its options' checked settings, folders, and the earlier run it resumes. */
interface Prepared {
  readonly queuePlan: QueuePlan.QueuePlan
  readonly timeout: Duration.Duration
  readonly maxAttempts: number
  readonly repeats: number
  readonly folder: DataFolder.DataFolder
  readonly strategies: StrategySpec.StrategySetup
  readonly earlier: Resume.EarlierRun | undefined
  readonly reconciled: Resume.Reconciled | undefined
}

/** Step 1: settings checked, the data folder made, and for a resume, the earlier run found and reconciled. */
const prepare = (options: RunOptions<any, any>, resumeFrom: string | undefined) =>
  Effect.gen(function*() {
    const { maxAttempts, plan, repeats, timeout } = yield* settings(options)
    const folder = yield* DataFolder.prepare(options.dataFolder ?? "data")
    const earlier = resumeFrom === undefined ? undefined : yield* Resume.locate(resumeFrom)
    const reconciled = earlier === undefined ? undefined : yield* Resume.reconcile(earlier.files.completed)
    if (earlier !== undefined && options.inputStage !== undefined) {
      return yield* new DataFolder.DataFolderError({
        path: earlier.files.folder,
        message: "a resumed run cannot rephrase again: resume the post-rephrase run's folder without --rephrase-*"
      })
    }
    const prepared: Prepared = {
      queuePlan: plan,
      timeout,
      maxAttempts,
      repeats,
      folder,
      strategies: options.strategies ?? StrategySpec.defaultSetup,
      earlier,
      reconciled
    }
    return prepared
  })

/** Where the input file is while the run starts, and how to put it back. */
interface Placement {
  readonly path: string
  /** The run copied or moved the file into `input/` (so it shows the user's path in messages). */
  readonly placed: boolean
  /** Once the file is in its output folder the run owns it: it is not put back. */
  commit(): void
}

/**
 * Step 2: the experiment file placed in `input/` as prompto does, as a resource: if the run
 * fails before the file moves into its output folder, `input/` is left as it was, so a fixed
 * file is not shadowed by this copy next time.
 */
const placeInput = (options: RunOptions<any, any>, prepared: Prepared) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (prepared.earlier !== undefined) {
      return { path: prepared.earlier.files.inputJsonl, placed: false, commit: () => {} } satisfies Placement
    }
    let committed = false
    return yield* Effect.acquireRelease(
      Effect.map(
        DataFolder.placeInput(prepared.folder, options.file, { move: options.moveToInput ?? false }),
        (placed): Placement => ({ ...placed, commit: () => (committed = true) })
      ),
      (placed, exit) => {
        if (!placed.placed || committed || Exit.isSuccess(exit)) return Effect.void
        const undo: Effect.Effect<void, unknown, FileSystem.FileSystem> = options.moveToInput === true
          ? moveFile(placed.path, path.resolve(options.file))
          : fs.remove(placed.path)
        return Effect.ignore(undo)
      }
    )
  })

/** The failure of a file with invalid lines, listing them all. */
const invalidFile = (displayName: string, report: ExperimentCheck.CheckReport, extra: ReadonlyArray<string> = []) =>
  new ExperimentInvalid({
    file: displayName,
    problemCount: report.problemCount,
    report: [
      ...ExperimentCheck.formatReport(report),
      ...(report.records > 0 && extra.length === 0 ? ["Fix these lines, or run with --skip-invalid to run the valid ones."] : []),
      ...extra
    ]
  })

/** A planned run: its check going or done, and whether sending begins before the check ends. */
interface Planned {
  readonly plan: RunPlan.RunPlan
  readonly displayName: string
  /** Sending begins while the check goes on (it took longer than the head start). */
  readonly streaming: boolean
  /** The report, when the check ended before sending began. */
  readonly report: ExperimentCheck.CheckReport | undefined
  /** Runs `f` on every progress of the check from now on (totals that grow). */
  readonly onProgress: (f: (plan: RunPlan.RunPlan) => void) => void
}

/**
 * Step 3: the check and the queue plan, in one pass that runs ahead of the sending. A file
 * checked within the head start runs only if every line is valid (an invalid file stops here,
 * nothing sent). A longer one starts sending its checked lines at the end of the head start (a
 * JSONL file whose lines so far are valid, or `skipInvalid`): a first request within a second,
 * whatever the file's size. A CSV file is checked whole first (its JSONL copy is made from it).
 */
const planRun = (options: RunOptions<any, any>, prepared: Prepared, placed: Placement) =>
  Effect.gen(function*() {
    const displayName = placed.placed ? options.file : placed.path
    const done = prepared.reconciled?.done
    let progress: (plan: RunPlan.RunPlan) => void = () => {}
    const plan = yield* RunPlan.start(placed.path, {
      displayName,
      queuePlan: prepared.queuePlan,
      strategies: prepared.strategies,
      strategyByDefault: options.strategy !== undefined,
      done: done === undefined ? undefined : (key) => done.has(key),
      repeats: prepared.repeats,
      onProgress: (plan) => progress(plan)
    })
    const format = prepared.earlier === undefined ? yield* ExperimentFile.formatOf(options.file) : "jsonl"
    // the head start, and the first lines checked (so the run has lines to send)
    const headStart = Effect.all([Effect.sleep(options.checkHeadStart ?? defaultCheckHeadStart), plan.checkedPast(0)], {
      concurrency: "unbounded",
      discard: true
    })
    yield* Effect.race(Effect.ignore(plan.complete), headStart)
    const streaming = !plan.isComplete() && format === "jsonl" &&
      (plan.invalid() === 0 || options.skipInvalid === true)
    const report = streaming ? undefined : yield* plan.complete
    if (report !== undefined && !ExperimentCheck.isValid(report) && !(options.skipInvalid === true && report.records > 0)) {
      return yield* invalidFile(displayName, report)
    }
    const planned: Planned = { plan, displayName, streaming, report, onProgress: (f) => (progress = f) }
    return planned
  })

/** The run's files: the output folder's, and the names of the run and its source. */
interface Opened {
  readonly files: DataFolder.RunFiles
  readonly runName: string
  readonly source: string
  readonly startedAt: number
  /** The experiment's lines as JSONL (the moved input, or its JSONL copy for CSV). */
  readonly inputJsonl: string
}

/**
 * Step 4: the output folder claimed and the input moved into it, as prompto does (with an input
 * stage the run is `<prefix>-<name>`, and the experiment file sits beside the records the stage
 * made); a CSV input gets its JSONL copy.
 */
const openRun = (options: RunOptions<any, any>, prepared: Prepared, placed: Placement) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const format = prepared.earlier === undefined ? yield* ExperimentFile.formatOf(options.file) : "jsonl"
    const source = DataFolder.experimentName(placed.path)
    const inputStage = options.inputStage
    const runName = inputStage === undefined ? source : `${inputStage.prefix}-${source}`
    const startedAt = yield* Clock.currentTimeMillis
    if (prepared.earlier !== undefined) {
      const files = prepared.earlier.files
      return { files, runName, source, startedAt, inputJsonl: files.inputJsonl } satisfies Opened
    }
    const files = yield* DataFolder.claimRunFiles(prepared.folder, `${runName}.${format}`, startedAt)
    const original = inputStage === undefined ? files : {
      input: path.join(files.folder, `${files.timestamp}-input-${source}.${format}`),
      inputJsonl: path.join(files.folder, `${files.timestamp}-input-${source}.jsonl`)
    }
    yield* moveFile(placed.path, original.input)
    placed.commit()
    if (format === "csv") {
      const converted = yield* Output.appendLines(original.inputJsonl)
      yield* ExperimentFile.readCsv(original.input).pipe(
        Stream.runForEachChunk((chunk) => converted.write([...chunk].map((entry) => JSON.stringify(entry.value))))
      )
    }
    return { files, runName, source, startedAt, inputJsonl: original.inputJsonl } satisfies Opened
  })

/**
 * Step 5: the event channel and its subscribers: the log (prompto's lines for retries, errors
 * and pauses), the statistics and the caller's observer (a progress display).
 */
const openEvents = (options: RunOptions<any, any>, log: Output.RunLog, stats: RunSummary.RunStats) =>
  Effect.gen(function*() {
    const events = yield* RunEvents.make<RunEvent>()
    yield* events.subscribe((event) => {
      if (event._tag !== "Started" && event._tag !== "Finished" && event._tag !== "Checked") RunSummary.record(stats, event)
    })
    yield* events.subscribe((event) => {
      if (event._tag === "Started" || event._tag === "Finished" || event._tag === "Checked") return
      const message = RunSummary.logMessage(event)
      return message === undefined ? undefined : Effect.ignore(log.write(message))
    })
    if (options.onEvent !== undefined) yield* events.subscribe(options.onEvent)
    return events
  })

/**
 * The log's lines about the plan: prompts, queues, what a resume leaves out, the warnings. For a
 * run that began sending before its check ended they come when the check ends ("Checked").
 */
const logPlan = (log: Output.RunLog, context: {
  readonly placed: Placement
  readonly plan: RunPlan.RunPlan
  readonly report: ExperimentCheck.CheckReport
  readonly prepared: Prepared
  readonly inputStage: InputStage<any, any> | undefined
  readonly checkedLater: boolean
}) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const { plan, prepared, report } = context
    const rates = plan.queues.map((queue) => `${queue.key} at ${queue.route.queriesPerMinute} QPM`).join(", ")
    yield* log.write(
      `${context.checkedLater ? "Checked" : "Started"} experiment ${path.basename(context.placed.path)}: ${report.records} prompts, ` +
        `${plan.queues.length} ${plan.queues.length === 1 ? "queue" : "queues"} (${rates})` +
        (report.invalidRecords > 0 ? `, ${report.invalidRecords} invalid lines written as errors without sending` : "") +
        (context.inputStage === undefined ? "" : `; records go through the ${context.inputStage.prefix} stage first`)
    )
    const reconciled = prepared.reconciled
    if (reconciled !== undefined) {
      yield* log.write(
        `Resumed: ${plan.alreadyDone()} prompts already answered are not sent again; ` +
          `${report.records - plan.alreadyDone()} to send` +
          (reconciled.errored > 0 ? ` (${reconciled.errored} errored records dropped to be retried)` : "") +
          (reconciled.broken > 0 ? `; ${reconciled.broken} cut-off lines removed from the completed file` : "") +
          (reconciled.duplicates > 0 ? `; ${reconciled.duplicates} repeated records removed` : "")
      )
    }
    for (const warning of report.warnings) yield* log.write(`Warning: ${ExperimentFile.formatProblem(warning)}`)
  })

/** The run's opened parts that the sending steps share. */
interface Running {
  readonly options: RunOptions<any, any>
  readonly prepared: Prepared
  readonly plan: RunPlan.RunPlan
  readonly displayName: string
  readonly opened: Opened
  readonly log: Output.RunLog
  readonly stats: RunSummary.RunStats
  readonly events: RunEvents.RunEvents<RunEvent>
  readonly stop: GracefulStop.GracefulStop
}

/** Step 6: the graceful stop, which every part of the run reads before it sends. */
const openStop = (options: RunOptions<any, any>, log: Output.RunLog, streaming: boolean) => {
  const grace = Duration.decode(options.grace ?? Duration.seconds(30))
  return GracefulStop.make({
    signal: options.stop,
    now: options.stopNow,
    // the spend cap, and an invalid line found after sending began, stop the run themselves
    requestable: options.maxCost !== undefined || streaming,
    onMessage: (message) => Effect.ignore(log.write(message)),
    grace,
    onStop: Effect.ignore(log.write(
      `Stop requested: no more prompts are sent; requests in flight have ${Duration.format(grace)} to answer`
    ))
  })
}

/**
 * Step 7: the one request path of the run (lines, strategy steps, judges and rephrasers), and
 * what the stages are given: linked runs on that path, and the metrics.
 */
const openRequestPath = (run: Running) =>
  Effect.gen(function*() {
    const { plan, prepared } = run
    const cacheOptions = run.options.cache
    const cache = cacheOptions === undefined
      ? undefined
      : yield* Cache.open(cacheOptions.folder ?? (yield* Path.Path).join(prepared.folder.root, "cache"))
    if (cache !== undefined) yield* run.log.write(`Cache: ${cache.path} (${cacheOptions?.mode ?? "read-write"})`)
    const spendCap = yield* openSpendCap(run)
    const requestPath = yield* RequestPath.make({
      route: (record) => {
        const key = prepared.queuePlan.keyFor(record)
        return QueuePlan.route(prepared.queuePlan, key, key)
      },
      maxAttempts: prepared.maxAttempts,
      timeout: prepared.timeout,
      onEvent: run.events.publish,
      onEventNow: run.events.publishNow,
      stopping: run.stop.stopping,
      stopped: run.stop.requested,
      price: Cost.pricer(run.options.prices),
      middleware: [...(cache === undefined ? [] : [Cache.middleware(cache, cacheOptions?.mode)]), ...(run.options.middleware ?? [])],
      // checked as each request is sent: a cache hit is not, so it neither spends nor reserves
      gate: spendCap?.gate,
      queues: plan.queues.map((queue) => queue.route)
    })
    const linked = yield* LinkedRun.make({
      dataFolder: prepared.folder,
      startedAt: run.opened.startedAt,
      experiment: run.opened.runName,
      source: run.opened.source
    }).pipe(Effect.provideService(RequestPath.RequestPath, requestPath))
    const metrics = yield* Metrics.make
    const services = Context.make(LinkedRun.LinkedRuns, linked).pipe(
      Context.add(Metrics.Metrics, metrics),
      Context.add(RequestPath.RequestPath, requestPath)
    )
    return { requestPath, linked, metrics, services, spendCap }
  })

/** The spend cap of `maxCost`, counting what a resumed run's completed file already cost. */
const openSpendCap = (run: Running) =>
  Effect.gen(function*() {
    const limit = run.options.maxCost
    if (limit === undefined) return undefined
    const alreadySpent = run.prepared.reconciled?.spent ?? 0
    const money = (usd: number) => `$${usd.toFixed(usd < 1 ? 6 : 4)}`
    yield* run.log.write(
      `Spend cap: ${money(limit)}` + (alreadySpent > 0 ? ` (${money(alreadySpent)} already spent by this run's completed records)` : "")
    )
    return SpendCap.make({
      limit,
      alreadySpent,
      prices: run.options.prices,
      counter: yield* TokenCount.load,
      stop: run.stop,
      onUnpriced: (api, model) =>
        Effect.ignore(run.log.write(
          `Warning: no price is known for ${api}/${model}: its requests are sent but not counted against the spend cap ` +
            `(give one with --prices)`
        ))
    })
  })

/** What sending left: the lines written, the lines there were to write, a prepared file. */
interface Sent {
  readonly written: number
  readonly expected: number
  readonly preparedFile: string | undefined
}

/**
 * Step 8: every line sent as its program (a plain request or a strategy) through the request
 * path, the invalid lines written as errors, the stages applied, and each completed line
 * appended as it comes. With an input stage, its records are the lines (and with
 * `inputStageOnly` they are only written to `input/`).
 */
const sendLines = (
  run: Running,
  path: {
    readonly requestPath: RequestPath.RequestPathService
    readonly services: Context.Context<StageServices>
    readonly metrics: Metrics.MetricsService
  }
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path
    const { log, options, opened, plan, stats, stop } = run
    const inputStage = options.inputStage
    const withServices = <A, E1, R1>(stream: Stream.Stream<A, E1, R1>) => Stream.provideSomeContext(stream, path.services)
    const program = LineProgram.make(path.requestPath, run.prepared.strategies, options.strategy)
    const decodeChecked = (entry: ExperimentFile.RawEntry): IdentifiedRecord => {
      const decoded = ExperimentFile.decode(run.displayName, entry)
      // the check pass found this line valid; the file is ours (moved) and unchanged
      if (decoded._tag === "Invalid") throw new Error(`line ${entry.line} changed after it was checked`)
      return decoded.record
    }
    const planned = RunPlan.lines(plan, opened.inputJsonl, decodeChecked)
    // invalid lines are written as errors under `skipInvalid`; otherwise a run that began sending
    // before its check ended stops at the first (`stopAtInvalid`) and writes none
    const invalid = options.skipInvalid !== true ? Stream.empty : stop.untilStop(planned.invalid).pipe(
      Stream.map(({ entry, problems }) => invalidRecord(entry, problems)),
      Stream.tap(() => Effect.sync(() => stats.skipped++))
    )
    let written = 0
    // what there was to write is known once the check has ended; a run stopped by the user does
    // not wait for the check of a large file: what it found so far is what was left undone
    const toWrite = Effect.suspend(() =>
      plan.isComplete() || !stop.stopping() || stop.reason() === invalidStop
        ? Effect.map(plan.complete, (report) => report.records - plan.alreadyDone())
        : Effect.succeed(plan.checked() - plan.alreadyDone())
    )
    const graceOver = Effect.ignore(log.write(`Grace period over: requests still in flight are abandoned`))
    const lineOptions = { stopping: stop.stopping, direct: program.direct }
    // the completed lines, through the stages, each appended as it comes
    const complete = (lines: Stream.Stream<CompletedRecord, any, any>) =>
      Effect.gen(function*() {
        const completed = yield* Output.appendLines(opened.files.completed)
        const merged = Stream.merge(invalid, lines)
        const results = options.flattenChoices === true ? Stream.mapConcat(merged, Choices.flatten) : merged
        const out = options.stages === undefined ? results : applyStage(results, options.stages)
        // the services are given to the whole run of the stream, once: given to the stream, they
        // were given again at every pull, about once an answer (a context merged, a fiber ref
        // set and restored)
        yield* stop.withGrace(
          Effect.provide(Stream.runForEachChunk(out, (chunk) => {
            const lines: Array<string> = []
            const answers: Array<Effect.Effect<void>> = []
            let whole = 0
            for (const record of chunk) {
              lines.push(JSON.stringify(record))
              // a flattened line counts once, by its first choice
              if (record.choice_index === undefined || record.choice_index === 0) whole++
              // the samples of a repeated line: how often they agree on their answer
              if (record.sample !== undefined && record.error === undefined && record.answer !== undefined) {
                answers.push(path.metrics.answer(record.id, record.answer))
              }
            }
            return Effect.zipRight(
              completed.write(lines),
              Effect.zipRight(Effect.all(answers, { discard: true }), Effect.sync(() => (written += whole)))
            )
          }), path.services),
          graceOver
        )
      })
    if (inputStage === undefined) {
      yield* complete(Lines.runLines([], program, {
        ...lineOptions,
        // each queue's lines as the check finds the queue
        // (a stop also ends the queues still to be found: the check of a large file may go on)
        more: stop.untilStop(
          Stream.map(planned.queues, ({ index, records }) => ({ feed: plan.queues[index]!.route, records: stop.untilStop(records) }))
        )
      }))
      return { written, expected: yield* toWrite, preparedFile: undefined } satisfies Sent
    }
    // records made by the input stage are queued as they come out
    const inputOnly = options.inputStageOnly === true
    const valid = Stream.flatMap(stop.untilStop(planned.queues), ({ records }) => stop.untilStop(records), { concurrency: "unbounded" })
    let stagedRecords = 0
    const target = inputOnly ? paths.join(run.prepared.folder.input, `${opened.runName}.jsonl`) : opened.files.input
    // a prepared file appears in input/ only when complete, so a watching pipeline never reads half of it
    const writing = inputOnly ? paths.join(run.prepared.folder.input, `.${opened.runName}.jsonl.partial`) : target
    yield* fs.writeFileString(writing, "").pipe(
      Effect.mapError((error) => new Output.OutputError({ path: writing, message: error.message }))
    )
    const stagedFile = yield* Output.appendLines(writing)
    const staged = applyStage(valid, inputStage.apply).pipe(
      Stream.mapChunksEffect((chunk) =>
        Effect.as(
          Effect.zipRight(
            stagedFile.write([...chunk].map((record) => JSON.stringify(record))),
            Effect.sync(() => (stagedRecords += chunk.length))
          ),
          chunk
        )
      )
    )
    if (!inputOnly) {
      yield* complete(Lines.runLines([{ feed: undefined, records: withServices(staged) }], (line, _, ticket) => program(line, undefined, ticket), {
        ...lineOptions,
        direct: program.direct === undefined
          ? undefined
          : (line, _, ticket, job) => program.direct?.(line, undefined, ticket, job)
      }))
      const invalidWritten = options.skipInvalid === true ? (yield* plan.complete).invalidRecords : 0
      return { written, expected: invalidWritten + stagedRecords, preparedFile: undefined } satisfies Sent
    }
    yield* stop.withGrace(Stream.runDrain(withServices(staged)), graceOver)
    yield* moveFile(writing, target)
    yield* log.write(`Wrote ${target}: run it to send the ${inputStage.prefix} records`)
    return { written, expected: written, preparedFile: target } satisfies Sent
  })

const runScoped = <E, R>(
  options: RunOptions<E, R>,
  resumeFrom?: string
): Effect.Effect<
  RunResult,
  RunError | E,
  FileSystem.FileSystem | Path.Path | ProviderRegistry | Exclude<R, StageServices> | Scope.Scope
> =>
  Effect.gen(function*() {
    const prepared = yield* prepare(options, resumeFrom)
    // providers read local images from this run's media folder
    yield* Effect.locallyScoped(Provider.mediaFolder, prepared.folder.media)
    const placed = yield* placeInput(options, prepared)
    const planned = yield* planRun(options, prepared, placed)
    const { displayName, plan, streaming } = planned
    const opened = yield* openRun(options, prepared, placed)
    const inputStage = options.inputStage
    const log = yield* Output.openLog(opened.files.log)
    const stats = RunSummary.make([], opened.startedAt)
    // the queues and their totals, as the check finds them
    if (inputStage === undefined) {
      const counted: Array<number> = []
      const count = (plan: RunPlan.RunPlan) => {
        let lines = 0
        plan.queues.forEach((queue, i) => {
          RunSummary.planned(stats, queue.key, queue.route.queriesPerMinute, queue.requests - (counted[i] ?? 0))
          counted[i] = queue.requests
          lines += queue.total
        })
        stats.lines = lines
      }
      count(plan)
      planned.onProgress(count)
    }
    const logContext = { placed, plan, prepared, inputStage }
    if (planned.report !== undefined) {
      yield* logPlan(log, { ...logContext, report: planned.report, checkedLater: false })
    } else {
      yield* log.write(
        `Started experiment ${(yield* Path.Path).basename(placed.path)}: sending its prompts while the rest of the file ` +
          `is checked (${plan.checked()} lines checked so far)`
      )
    }
    const events = yield* openEvents(options, log, stats)
    yield* events.publish({ _tag: "Started", files: opened.files, stats, report: planned.report })
    const stop = yield* openStop(options, log, streaming)
    // the check ends while sending: its report in the log and to the observers, and a line found
    // invalid (unless `skipInvalid`) stops the sending
    const checked = yield* Effect.forkScoped(Effect.gen(function*() {
      if (planned.report !== undefined) return planned.report
      if (options.skipInvalid !== true) {
        yield* plan.invalidFound.pipe(
          Effect.zipRight(Effect.suspend(() => {
            const first = plan.firstInvalid()
            return stop.request(
              invalidStop,
              `Stop: ${first === undefined ? "a line" : `${first.file}:${first.line}`} is invalid; no more prompts are sent ` +
                `(the check goes on to list every problem)`
            )
          })),
          Effect.forkScoped
        )
      }
      const report = yield* plan.complete
      yield* logPlan(log, { ...logContext, report, checkedLater: true })
      yield* events.publish({ _tag: "Checked", report })
      return report
    }))
    const run: Running = { options, prepared, plan, displayName, opened, log, stats, events, stop }
    const path = yield* openRequestPath(run)
    const sent = yield* sendLines(run, path)
    const inputOnly = inputStage !== undefined && options.inputStageOnly === true
    // a stop by the user does not wait for the rest of a large file's check
    const report = plan.isComplete() || stop.reason() !== "signal" ? yield* Fiber.join(checked) : undefined
    const result = yield* finish({
      options,
      opened,
      stats,
      report: report ?? partialReport(displayName, plan),
      log,
      events,
      metrics: path.metrics,
      linked: path.linked,
      stop,
      placed,
      inputOnly,
      notDone: inputOnly ? 0 : Math.max(0, sent.expected - sent.written),
      preparedFile: sent.preparedFile,
      alreadyDone: plan.alreadyDone(),
      spendCap: path.spendCap
    })
    if (report !== undefined && !ExperimentCheck.isValid(report) && options.skipInvalid !== true) {
      const first = plan.firstInvalid()
      return yield* invalidFile(displayName, report, [
        `Sending began before the check of this large file ended: ${sent.written} records were written to ` +
          `${opened.files.completed} before ${first === undefined ? "an invalid line" : `line ${first.line}`} was found ` +
          `invalid, and no more prompts were sent.`,
        `Fix the lines in ${opened.inputJsonl}, then send the rest with: prompto run --resume ${opened.files.folder}`
      ])
    }
    return result
  })

/** The reason of the stop at an invalid line found after sending began. */
const invalidStop = "invalid-line"

/** A report of what the check found before a stop ended the run (the check of a large file was cut short). */
const partialReport = (file: string, plan: RunPlan.RunPlan): ExperimentCheck.CheckReport => ({
  file,
  records: plan.checked(),
  validRecords: plan.checked() - plan.invalid(),
  invalidRecords: plan.invalid(),
  problems: [],
  problemCount: plan.invalid(),
  warnings: [],
  warningCount: 0,
  apis: new Map()
})

/** Step 9: the closing lines of the log, the metrics summary, the CSV copy, and the result. */
const finish = (context: {
  readonly options: RunOptions<any, any>
  readonly opened: Opened
  readonly stats: RunSummary.RunStats
  readonly report: ExperimentCheck.CheckReport
  readonly log: Output.RunLog
  readonly events: RunEvents.RunEvents<RunEvent>
  readonly metrics: Metrics.MetricsService
  readonly linked: LinkedRun.LinkedRunsService
  readonly stop: GracefulStop.GracefulStop
  readonly placed: Placement
  readonly inputOnly: boolean
  readonly notDone: number
  readonly preparedFile: string | undefined
  readonly alreadyDone: number
  readonly spendCap: SpendCap.SpendCap | undefined
}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const { files, runName, startedAt } = context.opened
    const { log, stats } = context
    stats.finishedAt = yield* Clock.currentTimeMillis
    const seconds = (stats.finishedAt - startedAt) / 1000
    const totals = RunSummary.totals(stats)
    const name = context.options.inputStage === undefined ? path.basename(context.placed.path) : `${runName}.jsonl`
    yield* log.write(
      `Completed experiment ${name}! Experiment processing time: ${seconds.toFixed(3)} seconds, ` +
        `Average time per query: ${(totals.total > 0 ? seconds / totals.total : 0).toFixed(3)} seconds`
    )
    for (const line of RunSummary.format(stats)) yield* log.write(line)
    const stopped = yield* context.stop.wasRequested
    if (stopped || context.notDone > 0) {
      yield* log.write(
        `${stopped ? "Stopped" : "Ended"} with ${context.notDone} prompts not done (no record in the completed file); ` +
          `resume with: prompto run --resume ${files.folder}`
      )
    }
    const summary = yield* context.metrics.summary
    let summaryFile: string | undefined
    if (summary.rows.length > 0) {
      const file = path.join(files.folder, `${files.timestamp}-summary-${runName}.json`)
      summaryFile = file
      const document = JSON.stringify(Metrics.toJson(summary, { experiment: runName, completedFile: files.completed }), null, 2)
      yield* fs.writeFileString(file, document + "\n").pipe(
        Effect.mapError((error) => new Output.OutputError({ path: file, message: error.message }))
      )
      for (const line of Metrics.format(summary)) yield* log.write(line)
    }
    const linkedFiles = yield* context.linked.opened
    for (const run of linkedFiles) yield* log.write(`Linked run ${run.name}: ${run.completed}`)
    if (context.options.outputAsCsv === true && !context.inputOnly) yield* Output.writeCsv(files.completed, files.completedCsv)
    yield* context.events.publish({ _tag: "Finished", stats })
    const result: RunResult = {
      files,
      stats,
      report: context.report,
      metrics: summary,
      summaryFile,
      linked: linkedFiles,
      preparedFile: context.preparedFile,
      stopped,
      stopReason: context.stop.reason(),
      spent: context.spendCap?.spent(),
      notDone: context.notDone,
      alreadyDone: context.alreadyDone
    }
    return result
  })
