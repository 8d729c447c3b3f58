/**
 * Finding the files of a run for a report: an output folder (its newest run) or a completed
 * file, the log and summary beside it, and the judge run made with it (`judge-<name>/`, same
 * timestamp). prompto's Python outputs have the same names.
 *
 * @internal
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"
import * as FileSystemError from "./fileSystemError.js"

/** The files of one run. */
export interface RunSource {
  readonly name: string
  readonly timestamp: string
  readonly folder: string
  readonly completed: string
  readonly log: string | undefined
  readonly summary: string | undefined
  /** The judge run's completed file, when one was made with this run. */
  readonly judge: string | undefined
}

const completedPattern = /^(\d{2}-\d{2}-\d{4}-\d{2}-\d{2}-\d{2})-completed-(.+)\.jsonl$/

/** `DD-MM-YYYY-HH-MM-SS` as `YYYYMMDDHHMMSS`, which sorts by time. */
const sortable = (timestamp: string): string => {
  const [d, m, y, ...time] = timestamp.split("-")
  return `${y}${m}${d}${time.join("")}`
}

/** Why a run could not be found. */
export interface NotFound {
  readonly path: string
  readonly message: string
}

/**
 * The run a path names: a completed file, or a folder whose newest completed file is taken.
 */
export const locate = (
  given: string
): Effect.Effect<RunSource, NotFound, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fail = (message: string) => Effect.fail<NotFound>({ path: given, message })
    const info = yield* fs.stat(given).pipe(
      Effect.mapError((error): NotFound => ({ path: given, message: FileSystemError.describe(error) }))
    )
    let folder: string
    let file: string
    if (info.type === "Directory") {
      folder = path.resolve(given)
      const names = yield* fs.readDirectory(folder).pipe(
        Effect.mapError((error): NotFound => ({ path: given, message: FileSystemError.describe(error) }))
      )
      const runs = names.filter((name) => completedPattern.test(name))
        .sort((a, b) => sortable(a.slice(0, 19)).localeCompare(sortable(b.slice(0, 19))))
      const newest = runs[runs.length - 1]
      if (newest === undefined) {
        return yield* fail("no completed file (<T>-completed-<name>.jsonl) in this folder: give a run's output folder, such as data/output/<name>")
      }
      file = newest
    } else {
      folder = path.dirname(path.resolve(given))
      file = path.basename(given)
      if (!completedPattern.test(file)) {
        return yield* fail("not a completed file (<T>-completed-<name>.jsonl) or a run's output folder")
      }
    }
    const [, timestamp, name] = completedPattern.exec(file)!
    const exists = (candidate: string) => fs.exists(candidate).pipe(Effect.orElseSucceed(() => false))
    const beside = (kind: string, ext: string) => path.join(folder, `${timestamp}-${kind}-${name}.${ext}`)
    const log = beside("log", "txt")
    const summary = beside("summary", "json")
    const judge = path.join(path.dirname(folder), `judge-${name}`, `${timestamp}-completed-judge-${name}.jsonl`)
    return {
      name: name!,
      timestamp: timestamp!,
      folder,
      completed: path.join(folder, file),
      log: (yield* exists(log)) ? log : undefined,
      summary: (yield* exists(summary)) ? summary : undefined,
      judge: (yield* exists(judge)) ? judge : undefined
    }
  })

/** `DD-MM-YYYY-HH-MM-SS` as epoch milliseconds (local time, as written); `undefined` if it is not one. */
export const parseTimestamp = (text: unknown): number | undefined => {
  if (typeof text !== "string" || text.length !== 19) return undefined
  const [d, m, y, hh, mm, ss] = text.split("-").map(Number)
  if ([d, m, y, hh, mm, ss].some((n) => n === undefined || !Number.isFinite(n))) return undefined
  return new Date(y!, m! - 1, d!, hh!, mm!, ss!).getTime()
}
