/**
 * Reports: one streaming pass over one or more finished runs (completed files, summaries, logs
 * and judge runs, ours or prompto's Python outputs) into the figures a person wants to see, and
 * one self-contained HTML page that shows them (`prompto report`).
 *
 * Scores per model and group come with 95 % intervals: the Wilson score interval for accuracies
 * (boolean scores), Student's t for numeric scores and for the paired difference of two runs.
 * Latency quantiles come from a log-bucketed sketch within 1 % of the true value. The table holds
 * a fair sample of prompts (all their answers together) plus every error row, up to caps.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import * as ExperimentFile from "./ExperimentFile.js"
import * as FileSystemError from "./internal/fileSystemError.js"
import * as JsonLine from "./internal/jsonLine.js"
import { promptChars, ReportAccumulator, responseChars } from "./internal/reportAccumulator.js"
import * as ReportHtml from "./internal/reportHtml.js"
import * as ReportRuns from "./internal/reportRuns.js"
import * as Metrics from "./Metrics.js"
import { CompletedRecord, RecordError } from "./PromptRecord.js"

/**
 * A report that could not be made: a run not found, a file not readable, the page not written.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReportError extends Schema.TaggedError<ReportError>()("ReportError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * Rows of the table sample by default: enough to browse, small enough for a page that opens at
 * once whatever the size of the run.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxRows = 5000

/**
 * Error rows kept beyond the sample by default; past it errors are still counted in the charts.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxErrorRows = 20000

/**
 * What to report on.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Run output folders (the newest run in each) or completed files. */
  readonly runs: ReadonlyArray<string>
  /** Table rows sampled (default 5,000); every error row is added, up to `maxErrorRows`. */
  readonly maxRows?: number | undefined
  readonly maxErrorRows?: number | undefined
}

/**
 * The report's figures, as embedded in the page.
 *
 * @since 0.1.0
 * @category models
 */
export type Data = ReturnType<ReportAccumulator["finish"]> & {
  readonly format: "prompto-report/1"
  readonly generated: string
  readonly table: {
    readonly totalRecords: number
    readonly maxRows: number
    readonly maxErrorRows: number
    readonly promptChars: number
    readonly responseChars: number
  }
  readonly notes: Readonly<Record<string, string>>
}

/**
 * The fields of a completed record the report reads: the completed record's own schemas for
 * them, decoded per line (the prompt, response and steps are read as given, for the table).
 */
const ReportFields = Schema.Struct({
  id: CompletedRecord.fields.id,
  api: CompletedRecord.fields.api,
  model_name: CompletedRecord.fields.model_name,
  group: CompletedRecord.fields.group,
  sample: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.NullOr(RecordError)),
  usage: CompletedRecord.fields.usage,
  cost: CompletedRecord.fields.cost,
  cached: CompletedRecord.fields.cached,
  latency_ms: CompletedRecord.fields.latency_ms,
  attempts: CompletedRecord.fields.attempts
})

const decodeFields = Schema.decodeUnknownEither(ReportFields, { errors: "first" })
const decodeSummary = Schema.decodeUnknownEither(Schema.parseJson(Metrics.SummaryFile))

const notFound = (problem: ReportRuns.NotFound) => new ReportError(problem)

/** Reads a JSONL file line by line, handing each record (or its problem) to `take`. */
const eachRecord = (
  file: string,
  take: (fields: Schema.Schema.Type<typeof ReportFields>, raw: Record<string, unknown>) => void,
  problem: (message: string) => void
): Effect.Effect<void, ReportError, FileSystem.FileSystem> =>
  ExperimentFile.lines(file).pipe(
    Stream.runForEachChunk((chunk) =>
      Effect.sync(() => {
        for (const line of Chunk.toReadonlyArray(chunk)) {
          let raw: unknown
          try {
            raw = JSON.parse(line.text)
          } catch (error) {
            problem(`${file}:${line.line}: invalid JSON (${JsonLine.quoted(error instanceof Error ? error.message : String(error))})`)
            continue
          }
          if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
            problem(`${file}:${line.line}: must be a JSON object, got ${JsonLine.kindOf(raw)}`)
            continue
          }
          const fields = decodeFields(raw)
          if (Either.isLeft(fields)) {
            const [first] = JsonLine.problemsOf(file, line.line, fields.left)
            problem(first === undefined ? `${file}:${line.line}: not a completed record` : ExperimentFile.formatProblem(first))
            continue
          }
          take(fields.right, raw as Record<string, unknown>)
        }
      })
    ),
    Effect.mapError((error) => new ReportError({ path: file, message: error.message }))
  )

/** The scorer names a run's summary declares (none without a summary, or with one that does not read). */
const readSummary = (file: string | undefined) =>
  Effect.gen(function*() {
    if (file === undefined) return { scorers: undefined, problem: undefined }
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(Effect.orElseSucceed(() => ""))
    const summary = decodeSummary(text)
    return Either.isRight(summary)
      ? { scorers: summary.right.scorers as ReadonlyArray<string> | undefined, problem: undefined }
      : { scorers: undefined, problem: `${file}: not a summary file; its scorers are found from the records` }
  })

const processingTime = /Experiment processing time: ([\d.]+) seconds/

/** The run's processing time as its log states it (ours and prompto's write the same line). */
const readWallTime = (file: string | undefined): Effect.Effect<number | undefined, never, FileSystem.FileSystem> =>
  file === undefined ? Effect.succeed(undefined) : ExperimentFile.lines(file).pipe(
    Stream.runFold(undefined as number | undefined, (found, line) => {
      const match = processingTime.exec(line.text)
      return match === null ? found : Number(match[1])
    }),
    Effect.orElseSucceed(() => undefined)
  )

const runLabels = (sources: ReadonlyArray<ReportRuns.RunSource>): ReadonlyArray<string> => {
  const names = sources.map((source) => source.name)
  return sources.map((source) =>
    names.filter((name) => name === source.name).length > 1 ? `${source.name} @ ${source.timestamp}` : source.name
  )
}

/** One run: its summary, its completed file, its judge run and its log, each read once. */
const readRun = (
  accumulator: ReportAccumulator,
  source: ReportRuns.RunSource,
  label: string,
  pairing: boolean
) =>
  Effect.gen(function*() {
    const summary = yield* readSummary(source.summary)
    const run = accumulator.startRun({
      label,
      name: source.name,
      timestamp: source.timestamp,
      completed: source.completed,
      judge: source.judge ?? null
    }, summary.scorers, pairing)
    if (summary.problem !== undefined) accumulator.problem(run, summary.problem)
    yield* eachRecord(
      source.completed,
      (fields, raw) => accumulator.record(run, fields, raw, ReportRuns.parseTimestamp),
      (message) => accumulator.problem(run, message)
    )
    if (source.judge !== undefined) {
      yield* eachRecord(
        source.judge,
        (fields, raw) => accumulator.judgeRecord(run, fields, raw, ReportRuns.parseTimestamp),
        (message) => accumulator.problem(run, message)
      )
    }
    const wall = yield* readWallTime(source.log)
    if (wall !== undefined) {
      const info = accumulator.runs[run]!
      info.wallSeconds = wall
      info.wallSource = "log"
    }
  })

/**
 * Reads the runs in one pass each and returns the report's figures. A line that cannot be read
 * is counted and named in the report, not fatal; a run that cannot be found is an error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Data, ReportError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    if (options.runs.length === 0) return yield* new ReportError({ path: "", message: "give at least one run output folder" })
    const sources = yield* Effect.forEach(options.runs, (given) => ReportRuns.locate(given).pipe(Effect.mapError(notFound)))
    const maxRows = options.maxRows ?? defaultMaxRows
    const maxErrorRows = options.maxErrorRows ?? defaultMaxErrorRows
    const accumulator = new ReportAccumulator({ maxRows, maxErrorRows })
    const labels = runLabels(sources)
    yield* Effect.forEach(sources, (source, i) => readRun(accumulator, source, labels[i]!, sources.length === 2), {
      discard: true
    })
    const figures = accumulator.finish()
    return {
      format: "prompto-report/1" as const,
      generated: new Date().toISOString(),
      ...figures,
      table: {
        totalRecords: figures.runs.reduce((n, run) => n + run.records, 0),
        maxRows,
        maxErrorRows,
        promptChars,
        responseChars
      },
      notes: {
        intervals: "95 % intervals: Wilson score interval for accuracies (boolean scores); Student's t interval (mean ± t(0.975, n − 1) · s/√n) for numeric scores and for paired differences.",
        latency: "Latency quantiles from a log-bucketed sketch (DDSketch construction), within 1 % of the true value; the histogram has 10 logarithmic bins a decade.",
        sample: "The table holds a sample of prompts chosen by the smallest hashes of their keys (a fair, repeatable choice made in one pass), every answer to a chosen prompt together, plus every error row up to the cap.",
        pairing: "Answers to the same prompt are put side by side by template and vars for expanded files, else by id; two runs are compared by the same key (and sample)."
      }
    }
  })

/**
 * The report as one self-contained HTML page: the chart library, the page's script and style and
 * the figures inline; it makes no network request and works from `file://`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (data: Data): Effect.Effect<string, ReportError, FileSystem.FileSystem> =>
  ReportHtml.render(data, `prompto report: ${data.runs.map((run) => run.label).join(" vs ")}`).pipe(
    Effect.mapError((problem) => new ReportError(problem))
  )

/**
 * What `write` made.
 *
 * @since 0.1.0
 * @category models
 */
export interface Written {
  readonly file: string
  readonly bytes: number
  readonly data: Data
}

/**
 * Makes the report of `options.runs` and writes it to `output`.
 *
 * @since 0.1.0
 * @category running
 */
export const write = (
  options: Options & { readonly output: string }
): Effect.Effect<Written, ReportError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const data = yield* make(options)
    const html = yield* render(data)
    const file = path.resolve(options.output)
    yield* fs.writeFileString(file, html).pipe(
      Effect.mapError((error) => new ReportError({ path: file, message: `cannot write the report: ${FileSystemError.describe(error)}` }))
    )
    return { file, bytes: Buffer.byteLength(html), data }
  })
