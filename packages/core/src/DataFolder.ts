/**
 * prompto's data folder: `input/`, `output/` and `media/` under one root, and the file names a
 * run writes: `output/<name>/<T>-input-<name>.jsonl`, `<T>-completed-<name>.jsonl`,
 * `<T>-log-<name>.txt` with `T` as `DD-MM-YYYY-HH-MM-SS`.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Schema } from "effect"
import * as FileSystemError from "./internal/fileSystemError.js"
import * as Timestamp from "./Timestamp.js"

/**
 * A data-folder operation that failed (cannot create, copy or move).
 *
 * @since 0.1.0
 * @category errors
 */
export class DataFolderError extends Schema.TaggedError<DataFolderError>()("DataFolderError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * The folders of a data folder.
 *
 * @since 0.1.0
 * @category models
 */
export interface DataFolder {
  readonly root: string
  readonly input: string
  readonly output: string
  readonly media: string
}

const failWith = (path: string, what: string) => (error: unknown) =>
  new DataFolderError({ path, message: `${what}: ${FileSystemError.describe(error)}` })

/**
 * Resolves a data folder and creates `input/`, `output/` and `media/` if missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const prepare = (root: string): Effect.Effect<DataFolder, DataFolderError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const resolved = path.resolve(root)
    const folder: DataFolder = {
      root: resolved,
      input: path.join(resolved, "input"),
      output: path.join(resolved, "output"),
      media: path.join(resolved, "media")
    }
    for (const dir of [folder.input, folder.output, folder.media]) {
      yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(failWith(dir, "cannot create the folder")))
    }
    return folder
  })

/**
 * Where the experiment file is taken from, as prompto does: a file whose name is already in
 * `input/` is used from there; otherwise it is copied there (moved with `move`).
 * Returns the path in `input/` and whether this call put it there.
 *
 * @since 0.1.0
 * @category input
 */
export const placeInput = (
  folder: DataFolder,
  file: string,
  options: { readonly move: boolean }
): Effect.Effect<{ readonly path: string; readonly placed: boolean }, DataFolderError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const target = path.join(folder.input, path.basename(file))
    if (yield* fs.exists(target).pipe(Effect.orElseSucceed(() => false))) {
      return { path: target, placed: false }
    }
    const source = path.resolve(file)
    const info = yield* fs.stat(source).pipe(Effect.option)
    if (info._tag === "None") {
      return yield* new DataFolderError({ path: file, message: "the experiment file does not exist" })
    }
    // named as the user gave it: the copy's destination means nothing to them
    if (info.value.type === "Directory") {
      return yield* new DataFolderError({ path: file, message: "is a folder: give an experiment file (.jsonl or .csv)" })
    }
    yield* (options.move ? fs.rename(source, target) : fs.copyFile(source, target)).pipe(
      Effect.mapError(failWith(file, `cannot ${options.move ? "move" : "copy"} it into ${folder.input}`))
    )
    return { path: target, placed: true }
  })

/**
 * The files of one run of an experiment.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunFiles {
  /** The experiment name: the file name without `.jsonl`/`.csv`. */
  readonly name: string
  /** `DD-MM-YYYY-HH-MM-SS` of the run's start. */
  readonly timestamp: string
  readonly folder: string
  /** The moved input as it was given (`.jsonl` or `.csv`). */
  readonly input: string
  /** The input as JSONL (the same file as `input` for a JSONL experiment). */
  readonly inputJsonl: string
  readonly completed: string
  readonly completedCsv: string
  readonly log: string
}

/**
 * The experiment name of a file: its base name without `.jsonl` or `.csv`.
 *
 * @since 0.1.0
 * @category utils
 */
export const experimentName = (file: string): string =>
  file.replace(/^.*[\\/]/, "").replace(/\.(jsonl|csv)$/, "")

/**
 * The files a run started at `startedAt` writes for `file`.
 *
 * @since 0.1.0
 * @category output
 */
export const runFiles = (folder: DataFolder, file: string, startedAt: number): Effect.Effect<RunFiles, never, Path.Path> =>
  Effect.map(Path.Path, (path) => {
    const name = experimentName(file)
    const timestamp = Timestamp.format(startedAt)
    const dir = path.join(folder.output, name)
    const at = (kind: string, ext: string) => path.join(dir, `${timestamp}-${kind}-${name}.${ext}`)
    return {
      name,
      timestamp,
      folder: dir,
      input: at("input", file.endsWith(".csv") ? "csv" : "jsonl"),
      inputJsonl: at("input", "jsonl"),
      completed: at("completed", "jsonl"),
      completedCsv: at("completed", "csv"),
      log: at("log", "txt")
    }
  })

/**
 * Claims the files of a run of `file` started at `startedAt`: makes its output folder and creates
 * its log exclusively. Two runs of one experiment in the same second would share prompto's
 * second-resolution names, so a taken second moves the run to the next free one instead of
 * appending to the other run's files.
 *
 * @since 0.1.0
 * @category output
 */
export const claimRunFiles = (
  folder: DataFolder,
  file: string,
  startedAt: number
): Effect.Effect<RunFiles, DataFolderError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    let at = startedAt
    let files = yield* runFiles(folder, file, at)
    yield* fs.makeDirectory(files.folder, { recursive: true }).pipe(
      Effect.mapError(failWith(files.folder, "cannot create the output folder"))
    )
    const taken = (candidate: RunFiles) =>
      Effect.gen(function*() {
        for (const path of [candidate.input, candidate.inputJsonl, candidate.completed]) {
          if (yield* fs.exists(path).pipe(Effect.orElseSucceed(() => true))) return true
        }
        return yield* fs.writeFileString(candidate.log, "", { flag: "wx" }).pipe(
          Effect.as(false),
          Effect.catchAll((error) =>
            // a log that exists means the second is taken; anything else (permissions) is an error
            fs.exists(candidate.log).pipe(
              Effect.orElseSucceed(() => false),
              Effect.flatMap((exists) =>
                exists ? Effect.succeed(true) : Effect.fail(failWith(candidate.log, "cannot create the log")(error))
              )
            )
          )
        )
      })
    while (yield* taken(files)) {
      at += 1000
      files = yield* runFiles(folder, file, at)
    }
    return files
  })
