/**
 * Reading a file of template variables, streamed: a CSV (a header, then rows whose cells stay
 * text: `007` is `007`, unlike an experiment CSV's typed cells) or a JSONL file of objects.
 *
 * @internal
 */
import { FileSystem } from "@effect/platform"
import { type Options as CsvOptions, parse as parseCsv } from "csv-parse"
import { Chunk, Effect, Option, Stream } from "effect"
import type { Readable } from "node:stream"
import * as ExperimentFile from "../ExperimentFile.js"
import type { LineProblem } from "../ExperimentFile.js"
import * as FileSystemError from "./fileSystemError.js"
import * as CsvFeed from "./csvFeed.js"

/** Why a file is refused when it is not UTF-8. */
export const notUtf8 = "is not valid UTF-8 text (save the file as UTF-8)"

/** What a vars file gives, in order: a CSV's header, then one entry per row. */
export type VarsEntry =
  | {
    readonly _tag: "Header"
    readonly line: number
    readonly columns: ReadonlyArray<string>
    readonly problems: ReadonlyArray<LineProblem>
  }
  | {
    readonly _tag: "Row"
    readonly line: number
    readonly index: number
    /** `undefined` when the row could not be read (its problems say why). */
    readonly values: Readonly<Record<string, unknown>> | undefined
    readonly problems: ReadonlyArray<LineProblem>
  }

const countCrlf = (bytes: Uint8Array): number => {
  let count = 0
  for (let at = bytes.indexOf(0x0d); at !== -1 && at < bytes.length - 1; at = bytes.indexOf(0x0d, at + 1)) {
    if (bytes[at + 1] === 0x0a) count++
  }
  return count
}

const csvFileError = (file: string, message: string) => new ExperimentFile.ExperimentFileError({ file, message })

/**
 * The records of a Node object stream, taken in batches: everything buffered is read at each
 * wake-up, so a million rows cost a thousand pulls rather than a million. Pulled one at a time
 * (as an async iterator gives them), rows took over twice as long to read, and each generated
 * line became a write of its own: 200,000 lines took 30 s instead of 3.
 */
const readBatches = <A, E>(readable: Readable, onError: (error: unknown) => E): Stream.Stream<A, E> =>
  Stream.repeatEffectChunkOption(Effect.async<Chunk.Chunk<A>, Option.Option<E>>((resume) => {
    const take = (): boolean => {
      if (readable.errored !== null) {
        resume(Effect.fail(Option.some(onError(readable.errored))))
        return true
      }
      const out: Array<A> = []
      for (let item = readable.read() as A | null; item !== null; item = readable.read() as A | null) out.push(item)
      if (out.length > 0) resume(Effect.succeed(Chunk.unsafeFromArray(out)))
      else if (readable.readableEnded) resume(Effect.fail(Option.none()))
      else return false
      return true
    }
    if (take()) return
    const wake = () => {
      if (take()) stopWaiting()
    }
    const stopWaiting = () => {
      readable.off("readable", wake)
      readable.off("end", wake)
      readable.off("error", wake)
    }
    readable.on("readable", wake)
    readable.on("end", wake)
    readable.on("error", wake)
    return Effect.sync(stopWaiting)
  }))

/**
 * A CSV vars file, streamed: the header, then each row with its cells as strings. This is
 * `ExperimentFile.readCsv`'s reading (bytes in, each cell decoded on its own so a cell that is
 * not UTF-8 is named, line numbers corrected for quoted CRLFs) without its prompto typing: a
 * variable is text, so `007` stays `007` and an empty cell is an empty value, not a missing one.
 */
const readCsvVars = (file: string): Stream.Stream<VarsEntry, ExperimentFile.ExperimentFileError, FileSystem.FileSystem> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const parser = parseCsv({
      // documented as "a value of null returns buffer instead of strings"; the types omit null
      encoding: null as unknown as undefined,
      relax_quotes: true,
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
      // rows wait (up to about a file chunk's worth) to be taken in one batch; more only holds memory
      readableHighWaterMark: 1024
    } as CsvOptions)
    // an error is read from `parser.errored` when the rows are next pulled; never thrown
    parser.on("error", () => {})
    const feed = CsvFeed.feed(fs, file, parser)
    yield* Effect.forkScoped(feed)
    const strict = new TextDecoder("utf-8", { fatal: true })
    const lenient = new TextDecoder("utf-8")
    let header: ReadonlyArray<string> | undefined
    let doubleCounted = 0
    let lastLine = 0
    let index = 0
    return readBatches<{ record: Array<Uint8Array>; info: { lines: number } }, ExperimentFile.ExperimentFileError>(
      parser,
      (error) =>
        (error as { readonly code?: unknown }).code === "CSV_QUOTE_NOT_CLOSED"
          ? csvFileError(file, `a quote opened after line ${lastLine} is never closed`)
          : csvFileError(file, `cannot read the file: ${FileSystemError.describe(error)}`)
    ).pipe(
      Stream.map(({ info, record }): VarsEntry => {
        for (const cell of record) doubleCounted += countCrlf(cell)
        const line = info.lines - doubleCounted
        lastLine = line
        const problems: Array<LineProblem> = []
        const cells = record.map((bytes, column) => {
          try {
            return strict.decode(bytes)
          } catch {
            problems.push({
              file,
              line,
              key: header?.[column] ?? `column ${column + 1}`,
              message: `the ${header === undefined ? "column name" : "value"} ${notUtf8}`
            })
            return lenient.decode(bytes)
          }
        })
        if (header === undefined) {
          header = cells.map((column) => column.trim())
          return { _tag: "Header", line, columns: header, problems }
        }
        if (record.length !== header.length) {
          problems.push({ file, line, message: `the row has ${record.length} cells but the header has ${header.length} columns` })
        }
        const values: Record<string, unknown> = {}
        header.forEach((column, i) => {
          if (i < cells.length) values[column] = cells[i]
        })
        return { _tag: "Row", line, index: index++, values, problems }
      })
    )
  }))

/** A JSONL vars file, streamed: each line an object of variables (`ExperimentFile.readJsonl`'s problems). */
const readJsonlVars = (file: string): Stream.Stream<VarsEntry, ExperimentFile.ExperimentFileError, FileSystem.FileSystem> =>
  ExperimentFile.readJsonl(file).pipe(
    Stream.map((entry): VarsEntry => ({
      _tag: "Row",
      line: entry.line,
      index: entry.ordinal,
      values: entry.value as Readonly<Record<string, unknown>> | undefined,
      problems: entry.problems
    }))
  )

export const readVars = (file: string, extension: string) => extension === ".csv" ? readCsvVars(file) : readJsonlVars(file)

