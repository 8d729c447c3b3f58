/**
 * Experiment files (JSONL, CSV) read as Streams of entries, one per record, never the whole file
 * in memory; and decoding an entry into a typed `PromptRecord` with problems that name the file,
 * the line and the key.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { parse as parseCsv } from "csv-parse"
import { Effect, Either, Option, Schema, Stream } from "effect"
import * as FileSystemError from "./internal/fileSystemError.js"
import { kindOf, problemsOf, quoted } from "./internal/jsonLine.js"
import * as PlainLine from "./internal/plainLine.js"
import { type IdentifiedRecord, PromptRecord } from "./PromptRecord.js"
import * as CsvFeed from "./internal/csvFeed.js"

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
  /** 1-based line number in the file; 0 for a problem with the whole file (it holds no prompts). */
  readonly line: number
  /** The key at fault (`prompt`, `parameters`, `id`...), if the problem is about one key. */
  readonly key?: string | undefined
  readonly message: string
}

/**
 * Formats a problem as `file:line: key "k": message` (`file: message` for the whole file).
 *
 * @since 0.1.0
 * @category utils
 */
export const formatProblem = (problem: LineProblem): string =>
  `${problem.file}${problem.line > 0 ? `:${problem.line}` : ""}: ${problem.key === undefined ? "" : `key "${problem.key}": `}${problem.message}`

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
  new ExperimentFileError({ file, message: `cannot read the file: ${FileSystemError.describe(error)}` })

/**
 * One line of a text file.
 *
 * @since 0.1.0
 * @category models
 */
export interface Line {
  /** 1-based line number. */
  readonly line: number
  /** The line without its line break (`\n` or `\r\n`) or a leading byte order mark. */
  readonly text: string
  /** The line's bytes are not valid UTF-8; `text` holds U+FFFD in their place. */
  readonly invalidUtf8?: boolean
}

const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/**
 * Splits a byte stream into lines and decodes each line on its own, so a line that is not
 * UTF-8 is marked as such (and its neighbours are not affected) instead of silently holding
 * replacement characters. A long line's chunks are joined once, when its end is found.
 */
const decodeLines = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Line, E, R> =>
  Stream.suspend(() => {
    // a decoder strips a leading byte order mark on each call, so a BOM never reaches the text
    const strict = new TextDecoder("utf-8", { fatal: true })
    const lenient = new TextDecoder("utf-8")
    let pending: Array<Uint8Array> = []
    let count = 0
    const take = (): Line => {
      let line = pending.length === 1 ? pending[0]! : concatBytes(pending)
      pending = []
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1)
      count++
      try {
        return { line: count, text: strict.decode(line) }
      } catch {
        return { line: count, text: lenient.decode(line), invalidUtf8: true }
      }
    }
    return bytes.pipe(
      Stream.mapConcat((chunk) => {
        const out: Array<Line> = []
        let from = 0
        let at = chunk.indexOf(0x0a, from)
        while (at !== -1) {
          pending.push(chunk.subarray(from, at))
          out.push(take())
          from = at + 1
          at = chunk.indexOf(0x0a, from)
        }
        if (from < chunk.length) pending.push(chunk.slice(from))
        return out
      }),
      Stream.concat(Stream.suspend(() => pending.length === 0 ? Stream.empty : Stream.make(take())))
    )
  })

/**
 * The non-blank lines of a text file with their 1-based line numbers, streamed. A line that is
 * not valid UTF-8 comes with `invalidUtf8`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lines = (file: string): Stream.Stream<Line, ExperimentFileError, FileSystem.FileSystem> =>
  Stream.unwrap(Effect.map(FileSystem.FileSystem, (fs) => fs.stream(file, { chunkSize: 64 * 1024 }))).pipe(
    decodeLines,
    Stream.filter((entry) => entry.text.trim().length > 0),
    Stream.mapError(readError(file))
  )

/** The keys of an object whose name or value holds U+FFFD (where the bytes that were not UTF-8 went). */
const keysWithReplacement = (value: unknown): ReadonlyArray<string> =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? Object.entries(value).filter(([key, item]) => key.includes("\uFFFD") || JSON.stringify(item).includes("\uFFFD"))
      .map(([key]) => key)
    : []

const notUtf8 = "is not valid UTF-8 text (save the file as UTF-8)"

const parseJsonLine = (file: string, { invalidUtf8, line, text }: Line, ordinal: number): RawEntry => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return {
      line,
      ordinal,
      value: undefined,
      text,
      problems: [{
        file,
        line,
        message: invalidUtf8 === true
          ? `the line ${notUtf8}`
          : `invalid JSON (${quoted(error instanceof Error ? error.message : String(error))})`
      }]
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      line,
      ordinal,
      value: undefined,
      text,
      problems: [{ file, line, message: `must be a JSON object, got ${kindOf(value)}` }]
    }
  }
  if (invalidUtf8 === true) {
    // keep the value (its id), but never send text with replacement characters in it
    const keys = keysWithReplacement(value)
    return {
      line,
      ordinal,
      value,
      problems: keys.length === 0
        ? [{ file, line, message: `the line ${notUtf8}` }]
        : keys.map((key) => ({ file, line, key, message: `the value ${notUtf8}` }))
    }
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
    Stream.map(([line, ordinal]) => parseJsonLine(file, line, ordinal))
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
 * The cells pandas reads as missing by default (`read_csv`'s `na_values`), which prompto drops
 * from `parameters` (an empty cell is dropped everywhere).
 *
 * @since 0.1.0
 * @category constants
 */
export const pandasMissing: ReadonlySet<string> = new Set([
  "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL",
  "NaN", "None", "n/a", "nan", "null"
])

/**
 * A CSV row as a prompt dict, as prompto reads it: empty cells dropped, cells typed, and
 * `parameters-X` columns folded into a `parameters` object without the cells pandas reads as
 * missing (`None`, `NaN`, `NULL`, `N/A`, ...: see `pandasMissing`).
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
      if (pandasMissing.has(cell)) return
      parameters ??= {}
      parameters[column.slice("parameters-".length)] = value
    } else {
      out[column] = column === "prompt" || column === "id" && typeof value !== "number" ? cell : value
    }
  })
  if (parameters !== undefined) out.parameters = parameters
  return out
}

const countCrlf = (bytes: Uint8Array): number => {
  let count = 0
  for (let at = bytes.indexOf(0x0d); at !== -1 && at < bytes.length - 1; at = bytes.indexOf(0x0d, at + 1)) {
    if (bytes[at + 1] === 0x0a) count++
  }
  return count
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
    // cells come as bytes and are decoded one by one, so a cell that is not UTF-8 is named;
    // a stray quote inside a cell is kept as text, as pandas reads it
    // (csv-parse's own `bom` option would switch it back to strings: the mark is dropped here)
    const parser = parseCsv({
      // documented as "a value of null returns buffer instead of strings"; the types omit null
      encoding: null as unknown as undefined,
      relax_quotes: true,
      relax_column_count: true,
      skip_empty_lines: true,
      info: true
    })
    const feed = CsvFeed.feed(fs, file, parser)
    yield* Effect.forkScoped(feed)
    const strict = new TextDecoder("utf-8", { fatal: true })
    const lenient = new TextDecoder("utf-8")
    let header: ReadonlyArray<string> | undefined
    // csv-parse counts a CRLF inside a quoted cell as two lines: take those back out
    let doubleCounted = 0
    let lastLine = 0
    return Stream.fromAsyncIterable(
      parser as AsyncIterable<{ record: Array<Uint8Array>; info: { lines: number } }>,
      (error) =>
        // csv-parse names the line where the file ended, not where the quote was opened
        (error as { readonly code?: unknown }).code === "CSV_QUOTE_NOT_CLOSED"
          ? new ExperimentFileError({ file, message: `a quote opened after line ${lastLine} is never closed` })
          : readError(file)(error)
    ).pipe(
      Stream.filterMap(({ info, record }) => {
        for (const cell of record) doubleCounted += countCrlf(cell)
        const line = info.lines - doubleCounted
        lastLine = line
        if (header === undefined) {
          header = record.map((column) => lenient.decode(column).trim())
          return Option.none()
        }
        return Option.some({ line, record, header })
      }),
      Stream.zipWithIndex,
      Stream.map(([{ header, line, record }, ordinal]): RawEntry => {
        const problems: Array<LineProblem> = record.length === header.length ? [] : [{
          file,
          line,
          message: `the row has ${record.length} cells but the header has ${header.length} columns`
        }]
        const cells = record.map((bytes, column) => {
          try {
            return strict.decode(bytes)
          } catch {
            problems.push({ file, line, key: header[column] ?? `column ${column + 1}`, message: `the value ${notUtf8}` })
            return lenient.decode(bytes)
          }
        })
        return { line, ordinal, value: csvRowToObject(header, cells), problems }
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
  if (!PlainLine.isPlainLine(entry.value)) {
    const result = decodeRecord(entry.value)
    if (Either.isLeft(result)) return { _tag: "Invalid", problems: problemsOf(file, entry.line, result.left) }
  }
  // the schema only checks (it transforms nothing): keep the original object and its key order
  const record = entry.value as PromptRecord
  if (record.id === undefined) {
    return {
      _tag: "Valid",
      record: Object.assign({}, record, { id: assignedId(entry.line) }),
      warnings: [{ file, line: entry.line, key: "id", message: `no id; assigned "${assignedId(entry.line)}"` }]
    }
  }
  return { _tag: "Valid", record: record as IdentifiedRecord, warnings: [] }
}
