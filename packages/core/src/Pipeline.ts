/**
 * A pipeline over a data folder (prompto's `prompto_run_pipeline`): watches `input/` and runs
 * every experiment file put there, oldest first, one at a time, with `Experiment.run`.
 *
 * Unlike prompto's loop it does not spin when `input/` is empty (it waits for a change, with a
 * slow poll as a fallback), it takes a file only once it has stopped growing, and a file that
 * cannot run goes to its output folder with a log saying why instead of stopping the pipeline.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Cause, Clock, Duration, Effect, Exit, Option, Queue, Stream } from "effect"
import * as DataFolder from "./DataFolder.js"
import * as Experiment from "./Experiment.js"
import * as Output from "./Output.js"
import type { ProviderRegistry } from "./Provider.js"
import * as QueuePlan from "./QueuePlan.js"
import * as RunSummary from "./RunSummary.js"

/**
 * Options of a pipeline; the run options are those of `Experiment.run`, with prompto's defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface PipelineOptions extends
  Pick<
    Experiment.RunOptions,
    | "dataFolder"
    | "maxQueries"
    | "maxAttempts"
    | "parallel"
    | "maxQueriesJson"
    | "timeout"
    | "strategies"
    | "repeats"
    | "prices"
  >
{
  /**
   * How long a file's size and modification time must stay unchanged before it is taken, so a
   * file still being written is not read half-way (default 1000 ms).
   */
  readonly settleMs?: number | undefined
  /** How often `input/` is listed when no change is reported (default 2000 ms). */
  readonly pollMs?: number | undefined
  /** Return once `input/` holds no experiment file, instead of waiting for more (default false). */
  readonly stopWhenIdle?: boolean | undefined
  /** Observer of what the pipeline does. */
  readonly onEvent?: ((event: PipelineEvent) => Effect.Effect<void>) | undefined
  /** Observer of the events of each run (progress displays). */
  readonly onRunEvent?: ((file: string, event: Experiment.RunEvent) => Effect.Effect<void>) | undefined
}

/**
 * What a pipeline reports.
 *
 * @since 0.1.0
 * @category models
 */
export type PipelineEvent =
  /** Nothing to run: waiting for new files in `folder` (once each time it goes idle). */
  | { readonly _tag: "Waiting"; readonly folder: string }
  /** A file is taken; `waiting` more are ready after it. */
  | { readonly _tag: "Started"; readonly file: string; readonly waiting: number }
  | { readonly _tag: "Finished"; readonly file: string; readonly result: Experiment.RunResult }
  /**
   * A file could not run. `input` is where it went (`output/<name>/<T>-input-<name>.<ext>`) and
   * `log` the log holding the error; both are undefined when it could not be moved.
   */
  | {
    readonly _tag: "Failed"
    readonly file: string
    readonly error: ReadonlyArray<string>
    readonly input: string | undefined
    readonly log: string | undefined
  }
  /** `stopWhenIdle`: `input/` is empty, the pipeline returns. */
  | { readonly _tag: "Stopped"; readonly summary: PipelineSummary }

/**
 * What a pipeline did (returned with `stopWhenIdle`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PipelineSummary {
  readonly finished: number
  readonly failed: number
}

/**
 * Whether a name in `input/` is an experiment to run: `.jsonl` or `.csv`, not a dotfile, not a
 * `.partial` file being written.
 *
 * @since 0.1.0
 * @category utils
 */
export const isExperimentName = (name: string): boolean =>
  !name.startsWith(".") && !name.endsWith(".partial") && (name.endsWith(".jsonl") || name.endsWith(".csv"))

const describeError = (error: unknown): ReadonlyArray<string> => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const tagged = error as { readonly _tag: string; readonly message?: string; readonly path?: string; readonly file?: string }
    if (tagged._tag === "ExperimentInvalid") return (tagged.message ?? "the experiment file is invalid").split("\n")
    const where = tagged.path ?? tagged.file
    return [`${tagged._tag}: ${where === undefined ? "" : `${where}: `}${tagged.message ?? ""}`]
  }
  return [error instanceof Error ? error.message : String(error)]
}

/** The error of a failed run as text lines (its failure, or the defect's trace). */
const describeCause = (cause: Cause.Cause<unknown>): ReadonlyArray<string> =>
  Option.match(Cause.failureOption(cause), {
    onSome: describeError,
    onNone: () => Cause.pretty(cause).split("\n")
  })

/**
 * A one-line description of an event, for a console.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (event: PipelineEvent): ReadonlyArray<string> => {
  switch (event._tag) {
    case "Waiting":
      return [`Waiting for new files in ${event.folder} ...`]
    case "Started":
      return [`Starting ${event.file}` + (event.waiting > 0 ? ` (${event.waiting} more waiting)` : "")]
    case "Finished":
      return [
        `Finished ${event.file}: ${event.result.files.completed}`,
        ...RunSummary.format(event.result.stats).map((line) => `  ${line}`)
      ]
    case "Failed":
      return [
        `Failed ${event.file}` + (event.input === undefined ? "" : `; moved to ${event.input}`),
        ...event.error.map((line) => `  ${line}`),
        ...(event.log === undefined ? [] : [`  log: ${event.log}`])
      ]
    case "Stopped":
      return [`No more files: ${event.summary.finished} finished, ${event.summary.failed} failed`]
  }
}

interface Seen {
  readonly size: bigint
  readonly mtime: number
  /** When this size and time were first seen. */
  readonly since: number
}

interface Ready {
  readonly name: string
  readonly mtime: number
}

/**
 * Runs the pipeline: every experiment file in `<data folder>/input/`, oldest first by
 * modification time, one at a time; then waits for more. Runs until interrupted (or, with
 * `stopWhenIdle`, until `input/` holds no experiment file). Fails only when the data folder
 * cannot be used or the rates are invalid; a file that fails goes to its output folder with a
 * log, and the pipeline goes on.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options: PipelineOptions
): Effect.Effect<
  PipelineSummary,
  DataFolder.DataFolderError | QueuePlan.RateConfigError,
  FileSystem.FileSystem | Path.Path | ProviderRegistry
> =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const emit = options.onEvent ?? (() => Effect.void)
    const settleMs = options.settleMs ?? 1000
    const pollMs = options.pollMs ?? 2000
    yield* checkRates(options)
    const folder = yield* DataFolder.prepare(options.dataFolder ?? "data")

    // a change in input/ wakes the loop; the poll catches what the watcher misses
    const wake = yield* Queue.sliding<void>(1)
    yield* fs.watch(folder.input).pipe(
      Stream.runForEach(() => Queue.offer(wake, undefined)),
      Effect.ignore,
      Effect.forkScoped
    )
    const sleep = (millis: number, wakeable: boolean) =>
      wakeable
        ? Effect.asVoid(Effect.timeout(Queue.take(wake), Duration.millis(millis)).pipe(Effect.option))
        : Effect.sleep(Duration.millis(millis))

    const seen = new Map<string, Seen>()
    // files that failed and could not be moved out of input/: skipped until they change
    const stuck = new Map<string, { readonly size: bigint; readonly mtime: number }>()
    const summary = { finished: 0, failed: 0 }

    /** Lists input/: the files ready to run, oldest first, and how long until the next settles. */
    const scan = Effect.gen(function*() {
      const names = yield* fs.readDirectory(folder.input).pipe(
        Effect.mapError((error) => new DataFolder.DataFolderError({ path: folder.input, message: `cannot list the folder: ${error.message}` }))
      )
      const now = yield* Clock.currentTimeMillis
      const ready: Array<Ready> = []
      let settling: number | undefined
      const present = new Set<string>()
      for (const name of names) {
        if (!isExperimentName(name)) continue
        const info = yield* fs.stat(path.join(folder.input, name)).pipe(Effect.option)
        if (Option.isNone(info) || info.value.type !== "File") continue
        present.add(name)
        const size = info.value.size
        const mtime = Option.match(info.value.mtime, { onNone: () => 0, onSome: (date) => date.getTime() })
        const blocked = stuck.get(name)
        if (blocked !== undefined) {
          if (blocked.size === size && blocked.mtime === mtime) continue
          stuck.delete(name)
        }
        const before = seen.get(name)
        const entry: Seen = before !== undefined && before.size === size && before.mtime === mtime
          ? before
          : { size, mtime, since: now }
        seen.set(name, entry)
        // unchanged for the settle period, as watched here or by its modification time
        const quiet = Math.max(now - entry.since, now - mtime)
        if (quiet >= settleMs) ready.push({ name, mtime })
        else settling = Math.min(settling ?? settleMs, settleMs - quiet)
      }
      for (const name of seen.keys()) if (!present.has(name)) seen.delete(name)
      for (const name of stuck.keys()) if (!present.has(name)) stuck.delete(name)
      ready.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      return { ready, settling }
    })

    /** Moves a file that failed before its run took it out of input/, with a log of the error. */
    const setAside = (name: string, error: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const source = path.join(folder.input, name)
        if (!(yield* fs.exists(source).pipe(Effect.orElseSucceed(() => false)))) {
          return { input: undefined, log: undefined, note: [`${name} is no longer in ${folder.input}`] }
        }
        const moved = yield* Effect.gen(function*() {
          const files = yield* DataFolder.claimRunFiles(folder, name, yield* Clock.currentTimeMillis)
          yield* fs.rename(source, files.input).pipe(
            Effect.mapError((e) => new DataFolder.DataFolderError({ path: source, message: `cannot move to ${files.input}: ${e.message}` }))
          )
          yield* Effect.scoped(Effect.gen(function*() {
            const log = yield* Output.openLog(files.log)
            yield* log.write(`Pipeline: ${name} could not run; it was moved here from ${folder.input}`)
            for (const line of error) yield* log.write(line)
          })).pipe(Effect.ignore)
          return { input: files.input as string | undefined, log: files.log as string | undefined, note: [] as ReadonlyArray<string> }
        }).pipe(Effect.either)
        if (moved._tag === "Right") return moved.right
        // leave it, and do not try it again until it changes
        const info = yield* fs.stat(source).pipe(Effect.option)
        if (Option.isSome(info)) {
          stuck.set(name, {
            size: info.value.size,
            mtime: Option.match(info.value.mtime, { onNone: () => 0, onSome: (date) => date.getTime() })
          })
        }
        return {
          input: undefined,
          log: undefined,
          note: [...describeError(moved.left), `${name} stays in ${folder.input} and is skipped until it changes`]
        }
      })

    const runFile = (name: string, waiting: number) =>
      Effect.gen(function*() {
        const file = path.join(folder.input, name)
        seen.delete(name)
        yield* emit({ _tag: "Started", file, waiting })
        let started: DataFolder.RunFiles | undefined
        const exit = yield* Effect.exit(Experiment.run({
          file,
          dataFolder: folder.root,
          maxQueries: options.maxQueries,
          maxAttempts: options.maxAttempts,
          parallel: options.parallel,
          maxQueriesJson: options.maxQueriesJson,
          timeout: options.timeout,
          strategies: options.strategies,
          repeats: options.repeats,
          prices: options.prices,
          onEvent: (event) => {
            if (event._tag === "Started") started = event.files
            return options.onRunEvent === undefined ? Effect.void : options.onRunEvent(file, event)
          }
        }))
        if (Exit.isSuccess(exit)) {
          summary.finished++
          return yield* emit({ _tag: "Finished", file, result: exit.value })
        }
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        summary.failed++
        const error = describeCause(exit.cause)
        if (started !== undefined) {
          // the run had moved the file and opened its log: the error goes there
          const log = started.log
          yield* Effect.scoped(Effect.gen(function*() {
            const writer = yield* Output.openLog(log)
            yield* writer.write("Pipeline: the run failed")
            for (const line of error) yield* writer.write(line)
          })).pipe(Effect.ignore)
          return yield* emit({ _tag: "Failed", file, error, input: started.input, log })
        }
        const where = yield* setAside(name, error)
        yield* emit({ _tag: "Failed", file, error: [...error, ...where.note], input: where.input, log: where.log })
      })

    let idle = false
    while (true) {
      const { ready, settling } = yield* scan
      const next = ready[0]
      if (next !== undefined) {
        idle = false
        yield* runFile(next.name, ready.length - 1)
        continue
      }
      if (settling !== undefined) {
        // a file is still being written: look again when it could have settled
        yield* sleep(Math.max(settling, 10), false)
        continue
      }
      if (options.stopWhenIdle === true) {
        yield* emit({ _tag: "Stopped", summary: { ...summary } })
        return { ...summary }
      }
      if (!idle) {
        idle = true
        yield* emit({ _tag: "Waiting", folder: folder.input })
      }
      yield* sleep(pollMs, true)
    }
  }))

// what would fail every run fails the pipeline at once instead
const checkRates = (options: PipelineOptions): Effect.Effect<void, QueuePlan.RateConfigError> =>
  Effect.asVoid(Experiment.settings(options))

