/**
 * Resuming a run: find an earlier run's files from its output folder (or its completed file),
 * and reconcile its completed file so that every id answered successfully is kept once and
 * everything else (errors, a line cut off by a crash or a power cut) is dropped to be sent again.
 *
 * The invariant this keeps, across any sequence of crashes and resumes: every input id appears
 * in the completed file exactly once when the run has finished.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, Option, Schema, Stream } from "effect"
import * as DataFolder from "./DataFolder.js"
import * as ExperimentFile from "./ExperimentFile.js"
import * as FileSystemError from "./internal/fileSystemError.js"
import * as Output from "./Output.js"
import * as PromptRecord from "./PromptRecord.js"

const completedName = /^(\d{2})-(\d{2})-(\d{4})-(\d{2})-(\d{2})-(\d{2})-completed-(.+)\.jsonl$/

/** `DD-MM-YYYY-HH-MM-SS` as a sortable `YYYYMMDDHHMMSS`. */
const sortable = (match: RegExpMatchArray): string => `${match[3]}${match[2]}${match[1]}${match[4]}${match[5]}${match[6]}`

/**
 * An earlier run found on disk.
 *
 * @since 0.1.0
 * @category models
 */
export interface EarlierRun {
  readonly files: DataFolder.RunFiles
  readonly format: "jsonl" | "csv"
}

/**
 * Finds the run to resume: `target` is a completed file, or an output folder (its latest run).
 *
 * @since 0.1.0
 * @category resume
 */
export const locate = (
  target: string
): Effect.Effect<EarlierRun, DataFolder.DataFolderError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fail = (message: string) => new DataFolder.DataFolderError({ path: target, message })
    const info = yield* fs.stat(target).pipe(Effect.mapError(() => fail("--resume: no such folder or file")))
    let folder: string
    let completed: string
    if (info.type === "Directory") {
      folder = path.resolve(target)
      const names = yield* fs.readDirectory(folder).pipe(
        Effect.mapError((error) => fail(`--resume: cannot read the folder: ${FileSystemError.describe(error)}`))
      )
      const runs = names.flatMap((name) => {
        const match = name.match(completedName)
        return match === null ? [] : [{ name, key: sortable(match) }]
      }).sort((a, b) => a.key.localeCompare(b.key))
      const latest = runs.at(-1)
      if (latest === undefined) return yield* fail("--resume: no <T>-completed-<name>.jsonl file in this folder")
      completed = path.join(folder, latest.name)
    } else {
      completed = path.resolve(target)
      folder = path.dirname(completed)
      if (path.basename(completed).match(completedName) === null) {
        return yield* fail("--resume: expects an output folder or a <T>-completed-<name>.jsonl file")
      }
    }
    const match = path.basename(completed).match(completedName)!
    const timestamp = `${match[1]}-${match[2]}-${match[3]}-${match[4]}-${match[5]}-${match[6]}`
    const name = match[7]!
    const at = (kind: string, ext: string) => path.join(folder, `${timestamp}-${kind}-${name}.${ext}`)
    const csv = yield* fs.exists(at("input", "csv")).pipe(Effect.orElseSucceed(() => false))
    const files: DataFolder.RunFiles = {
      name,
      timestamp,
      folder,
      input: at("input", csv ? "csv" : "jsonl"),
      inputJsonl: at("input", "jsonl"),
      completed,
      completedCsv: at("completed", "csv"),
      log: at("log", "txt")
    }
    if (!(yield* fs.exists(files.inputJsonl).pipe(Effect.orElseSucceed(() => false)))) {
      return yield* fail(`--resume: the run's input ${files.inputJsonl} is missing`)
    }
    return { files, format: csv ? "csv" : "jsonl" }
  })

/**
 * What reconciling a completed file found.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reconciled {
  /** Record keys (`recordKey`: the id as JSON text, so `1` and `"1"` differ, and the sample) answered successfully: not sent again. */
  readonly done: ReadonlySet<string>
  /** Records that held an error: dropped, sent again. */
  readonly errored: number
  /** Lines that are not a whole completed record (a write cut off by a crash; no `id` or `response`): dropped. */
  readonly broken: number
  /** Successful records seen again for an id already kept: dropped. */
  readonly duplicates: number
  /** USD the kept records cost (their `cost`; unknown and absent costs count 0). */
  readonly spent: number
}

/**
 * The key under which an id is remembered.
 *
 * @since 0.1.0
 * @category utils
 */
export const idKey = (id: unknown): string => JSON.stringify(id)

/**
 * The key of a record: its id, and its `sample` when the line is repeated (the samples of one
 * line share its id).
 *
 * @since 0.1.0
 * @category utils
 */
export const recordKey = (id: unknown, sample?: number | undefined): string =>
  sample === undefined ? JSON.stringify(id) : `${JSON.stringify(id)}#${sample}`

/**
 * A completed line as resume reads it: only the keys it needs (`id`, `response`, `error`), so a
 * large file is reconciled at about the speed of `JSON.parse` (a whole `CompletedRecord` decode
 * is about ten times slower). A line that does not decode is a write cut off by a crash.
 */
const decodeOutcome = Schema.decodeUnknownEither(Schema.parseJson(PromptRecord.CompletedOutcome), { exact: true })

/**
 * Rewrites the completed file keeping one successful record per id (and sample), in order, and returns what
 * was kept. The new file replaces the old one atomically (written beside it, then renamed), so
 * a crash during a resume leaves either file whole.
 *
 * @since 0.1.0
 * @category resume
 */
export const reconcile = (
  completed: string
): Effect.Effect<Reconciled, Output.OutputError | ExperimentFile.ExperimentFileError, FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const temporary = `${completed}.resume-partial`
    yield* fs.writeFileString(temporary, "").pipe(
      Effect.mapError((error) => new Output.OutputError({ path: temporary, message: FileSystemError.describe(error) }))
    )
    // a failed rewrite leaves the completed file as it was, and nothing beside it
    yield* Effect.addFinalizer((exit) => exit._tag === "Success" ? Effect.void : Effect.ignore(fs.remove(temporary)))
    const writer = yield* Output.appendLines(temporary)
    const done = new Set<string>()
    const seen = new Set<string>()
    let errored = 0
    let broken = 0
    let duplicates = 0
    let spent = 0
    yield* ExperimentFile.lines(completed).pipe(
      Stream.filterMap(({ invalidUtf8, text }) => {
        // this program writes UTF-8: other bytes are a damaged line
        if (invalidUtf8 === true) {
          broken++
          return Option.none()
        }
        const decoded = decodeOutcome(text)
        if (Either.isLeft(decoded)) {
          broken++
          return Option.none()
        }
        const record = decoded.right
        if (record.error !== undefined && record.error !== null) {
          errored++
          return Option.none()
        }
        const key = recordKey(record.id, record.sample)
        // a flattened answer is several records of one request, told apart by `choice_index`
        const choice = record.choice_index === undefined ? undefined : `${key}@${record.choice_index}`
        if (choice === undefined ? done.has(key) : seen.has(choice)) {
          duplicates++
          return Option.none()
        }
        if (choice !== undefined) seen.add(choice)
        done.add(key)
        if (typeof record.cost === "number" && Number.isFinite(record.cost)) spent += record.cost
        return Option.some(text)
      }),
      Stream.runForEachChunk((chunk) => writer.write([...chunk]))
    )
    yield* fs.rename(temporary, completed).pipe(
      Effect.mapError((error) =>
        new Output.OutputError({ path: completed, message: `cannot replace: ${FileSystemError.describe(error)}` })
      )
    )
    return { done, errored, broken, duplicates, spent }
  }))
