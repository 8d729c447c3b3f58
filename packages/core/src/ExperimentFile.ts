/**
 * Experiment files (JSONL, CSV) read as Streams of entries, one per record, never the whole file
 * in memory; and decoding an entry into a typed `PromptRecord` with problems that name the file,
 * the line and the key.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { parse as parseCsv } from "csv-parse"
import { Effect, Either, Option, ParseResult, Schema, Stream } from "effect"
import { type IdentifiedRecord, PromptRecord } from "./PromptRecord.js"

/**
 * A file that cannot be read at all (missing, unreadable, wrong extension).
 *
 * @since 0.1.0
 * @category errors
 */
export class ExperimentFileError extends Schema.TaggedError<ExperimentFileError>()("ExperimentFileError", {
  file: Schema.String,
  message: Schema.String
}) {}

/**
 * A problem with one line: where it is, which key, what is wrong.
 *
 * @since 0.1.0
 * @category models
 */
export interface LineProblem {
  readonly file: string
  /** 1-based line number in the file. */
  readonly line: number
  /** The key at fault (`prompt`, `parameters`, `id`...), if the problem is about one key. */
  readonly key?: string | undefined
  readonly message: string
}

/**
 * Formats a problem as `file:line: key "k": message`.
 *
 * @since 0.1.0
 * @category utils
 */
export const formatProblem = (problem: LineProblem): string =>
  `${problem.file}:${problem.line}: ${problem.key === undefined ? "" : `key "${problem.key}": `}${problem.message}`

/**
 * One record's worth of a file, before decoding: its line, its position among the file's
 * records, and the parsed value (or why it could not be parsed).
 *
 * @since 0.1.0
 * @category models
 */
export interface RawEntry {
  /** 1-based line number (for CSV, the line where the row ends). */
  readonly line: number
  /** 0-based position among the file's records (blank lines are not records). */
  readonly ordinal: number
  /** The parsed JSON object or CSV row, or `undefined` when it could not be parsed. */
  readonly value: unknown
  /** The line's text, kept only when it could not be parsed. */
  readonly text?: string
  readonly problems: ReadonlyArray<LineProblem>
}

/**
 * The formats prompto reads.
 *
 * @since 0.1.0
 * @category models
 */
export type FileFormat = "jsonl" | "csv"

/**
 * The format of a file from its extension.
 *
 * @since 0.1.0
 * @category utils
 */
export const formatOf = (file: string): Either.Either<FileFormat, ExperimentFileError> =>
  file.endsWith(".jsonl")
    ? Either.right("jsonl")
    : file.endsWith(".csv")
    ? Either.right("csv")
    : Either.left(new ExperimentFileError({ file, message: "an experiment file must end in .jsonl or .csv" }))

const readError = (file: string) => (error: unknown) =>
  new ExperimentFileError({ file, message: `cannot read the file: ${error instanceof Error ? error.message : String(error)}` })

/**
 * The non-blank lines of a text file with their 1-based line numbers, streamed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lines = (
  file: string
): Stream.Stream<{ readonly line: number; readonly text: string }, ExperimentFileError, FileSystem.FileSystem> =>
  Stream.unwrap(Effect.map(FileSystem.FileSystem, (fs) => fs.stream(file, { chunkSize: 64 * 1024 }))).pipe(
    Stream.decodeText("utf-8"),
    Stream.splitLines,
    Stream.mapAccum(0, (count, text) => [count + 1, { line: count + 1, text: count === 0 ? text.replace(/^\uFEFF/, "") : text }] as const),
    Stream.filter((entry) => entry.text.trim().length > 0),
    Stream.mapError(readError(file))
  )

const parseJsonLine = (file: string, line: number, ordinal: number, text: string): RawEntry => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return {
      line,
      ordinal,
      value: undefined,
      text,
      problems: [{ file, line, message: `invalid JSON (${error instanceof Error ? error.message : String(error)})` }]
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
    return { line, ordinal, value: undefined, text, problems: [{ file, line, message: `must be a JSON object, got ${kind}` }] }
  }
  return { line, ordinal, value, problems: [] }
}

/**
 * The entries of a JSONL file, one per non-blank line.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readJsonl = (file: string): Stream.Stream<RawEntry, ExperimentFileError, FileSystem.FileSystem> =>
  lines(file).pipe(
    Stream.zipWithIndex,
    Stream.map(([{ line, text }, ordinal]) => parseJsonLine(file, line, ordinal, text))
  )

const numberPattern = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/

/**
 * A CSV cell typed as pandas would: numbers as numbers, `True`/`False` as booleans.
 *
 * @since 0.1.0
 * @category utils
 */
export const typeCsvCell = (cell: string): unknown => {
  const trimmed = cell.trim()
  if (numberPattern.test(trimmed)) return Number(trimmed)
  if (trimmed === "True" || trimmed === "true") return true
  if (trimmed === "False" || trimmed === "false") return false
  return cell
}

/**
 * A CSV row as a prompt dict, as prompto reads it: empty cells dropped, cells typed, and
 * `parameters-X` columns folded into a `parameters` object.
 *
 * @since 0.1.0
 * @category utils
 */
export const csvRowToObject = (header: ReadonlyArray<string>, row: ReadonlyArray<string>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  let parameters: Record<string, unknown> | undefined
  header.forEach((column, i) => {
    const cell = row[i]
    if (cell === undefined || cell === "") return
    const value = typeCsvCell(cell)
    if (column.startsWith("parameters-")) {
      parameters ??= {}
      parameters[column.slice("parameters-".length)] = value
    } else {
      out[column] = column === "prompt" || column === "id" && typeof value !== "number" ? cell : value
    }
  })
  if (parameters !== undefined) out.parameters = parameters
  return out
}

/**
 * The entries of a CSV file (first row is the header), streamed through `csv-parse`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readCsv = (file: string): Stream.Stream<RawEntry, ExperimentFileError, FileSystem.FileSystem> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const parser = parseCsv({ bom: true, relax_column_count: true, skip_empty_lines: true, info: true })
    const feed = fs.stream(file, { chunkSize: 64 * 1024 }).pipe(
      Stream.runForEach((chunk) =>
        Effect.async<void>((resume) => {
          if (parser.write(chunk)) resume(Effect.void)
          else parser.once("drain", () => resume(Effect.void))
        })
      ),
      Effect.matchEffect({
        onFailure: (error) => Effect.sync(() => parser.destroy(new Error(error.message))),
        onSuccess: () => Effect.sync(() => parser.end())
      })
    )
    yield* Effect.forkScoped(feed)
    let header: ReadonlyArray<string> | undefined
    return Stream.fromAsyncIterable(
      parser as AsyncIterable<{ record: Array<string>; info: { lines: number } }>,
      readError(file)
    ).pipe(
      Stream.filterMap(({ info, record }) => {
        if (header === undefined) {
          header = record.map((column) => column.trim())
          return Option.none()
        }
        return Option.some({ line: info.lines, record, header })
      }),
      Stream.zipWithIndex,
      Stream.map(([{ header, line, record }, ordinal]): RawEntry => {
        const problems: Array<LineProblem> = record.length === header.length ? [] : [{
          file,
          line,
          message: `the row has ${record.length} cells but the header has ${header.length} columns`
        }]
        return { line, ordinal, value: csvRowToObject(header, record), problems }
      })
    )
  }))

/**
 * The entries of an experiment file, JSONL or CSV by its extension.
 *
 * @since 0.1.0
 * @category constructors
 */
export const read = (file: string): Stream.Stream<RawEntry, ExperimentFileError, FileSystem.FileSystem> =>
  Either.match(formatOf(file), {
    onLeft: (error) => Stream.fail(error),
    onRight: (format) => format === "csv" ? readCsv(file) : readJsonl(file)
  })

/**
 * The outcome of decoding one entry.
 *
 * @since 0.1.0
 * @category models
 */
export type Decoded =
  | { readonly _tag: "Valid"; readonly record: IdentifiedRecord; readonly warnings: ReadonlyArray<LineProblem> }
  | { readonly _tag: "Invalid"; readonly problems: ReadonlyArray<LineProblem> }

const decodeRecord = Schema.decodeUnknownEither(PromptRecord, { errors: "all" })

/**
 * The id given to a record that has none.
 *
 * @since 0.1.0
 * @category utils
 */
export const assignedId = (line: number): string => `line-${line}`

const issueMessage = (issue: ParseResult.ArrayFormatterIssue): string =>
  issue._tag === "Missing" ? "is required but missing" : issue.message

/**
 * Decodes an entry into a typed record. A record without `id` gets `line-<n>` (with a warning).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (file: string, entry: RawEntry): Decoded => {
  if (entry.value === undefined || entry.problems.length > 0) {
    return { _tag: "Invalid", problems: entry.problems.map((problem) => ({ ...problem, file })) }
  }
  const result = decodeRecord(entry.value)
  if (Either.isLeft(result)) {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(result.left)
    const seen = new Set<string>()
    const problems: Array<LineProblem> = []
    for (const issue of issues) {
      // a union reports one issue per member: keep the first message for each key
      const key = issue.path.length === 0 ? undefined : issue.path.map(String).join(".")
      const top = issue.path.length === 0 ? "" : String(issue.path[0])
      if (seen.has(top)) continue
      seen.add(top)
      problems.push({ file, line: entry.line, key, message: issueMessage(issue) })
    }
    return { _tag: "Invalid", problems }
  }
  // the schema only checks (it transforms nothing): keep the original object and its key order
  const record = entry.value as PromptRecord
  if (record.id === undefined) {
    return {
      _tag: "Valid",
      record: { ...record, id: assignedId(entry.line) },
      warnings: [{ file, line: entry.line, key: "id", message: `no id; assigned "${assignedId(entry.line)}"` }]
    }
  }
  return { _tag: "Valid", record: record as IdentifiedRecord, warnings: [] }
}
