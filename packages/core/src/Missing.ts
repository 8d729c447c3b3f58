/**
 * The prompts of an experiment that have no completed record yet (prompto's
 * `prompto_obtain_missing_jsonl`): every input line whose id is not in a completed file is
 * appended to a new experiment file, ready to run again.
 *
 * Both files are streamed: only the set of completed ids (and the line numbers of the missing
 * prompts) is held in memory, never the records.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, Schema, Stream } from "effect"
import * as ExperimentFile from "./ExperimentFile.js"
import * as JsonLine from "./internal/jsonLine.js"
import * as Output from "./Output.js"

/**
 * A line of the input or completed file that cannot be used (not JSON, not an object, no id),
 * or files that cannot go together. Nothing has been written.
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingError extends Schema.TaggedError<MissingError>()("MissingError", {
  file: Schema.String,
  /** 1-based line number, when the problem is about one line. */
  line: Schema.optional(Schema.Number),
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.file}${this.line === undefined ? "" : `:${this.line}`}: ${this.detail}`
  }
}

/**
 * Options of `write`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions {
  /** The experiment file (JSONL) whose prompts should all have run. */
  readonly input: string
  /** The completed file (JSONL) of a run of it. */
  readonly output: string
  /** Where the missing prompts go: opened in append mode, as prompto does, so its lines are kept. */
  readonly newFile: string
  /** The key holding each record's id (default `id`). */
  readonly idKey?: string | undefined
  /**
   * How many times the run sent each line without `repeats` of its own (its `--repeats`,
   * default 1). A repeated line's record key is (id, sample).
   */
  readonly repeats?: number | undefined
}

/**
 * What `write` did.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteResult {
  /** Lines appended to the new file. */
  readonly added: number
  /** Records read from the input. */
  readonly inputRecords: number
  /** Distinct ids found in the completed file. */
  readonly completedIds: number
  /** Things the caller should show (a truncated last line of the completed file). */
  readonly warnings: ReadonlyArray<string>
}

/**
 * Any failure of `write`.
 *
 * @since 0.1.0
 * @category errors
 */
export type WriteError = MissingError | ExperimentFile.ExperimentFileError | Output.OutputError

const canonical = (value: unknown): string =>
  Array.isArray(value)
    ? `[${value.map(canonical).join(",")}]`
    : typeof value === "object" && value !== null
    ? `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(",")}}`
    : JSON.stringify(value)

/**
 * The key under which an id is compared: by value and by type, as Python compares them, so the
 * number `1` and the string `"1"` are different ids (and `1` and `1.0` are the same). Objects
 * compare by content, whatever the order of their keys.
 *
 * @since 0.1.0
 * @category utils
 */
export const idKeyOf = (id: unknown): string =>
  typeof id === "string" ? `s${id}` : typeof id === "number" ? `n${id}` : `j${canonical(id)}`

type Parsed =
  | {
    readonly _tag: "Ok"
    readonly id: unknown
    readonly hasId: boolean
    readonly value: Readonly<Record<string, unknown>>
  }
  | { readonly _tag: "Bad"; readonly detail: string }

/**
 * A line of either file as this reads it: any JSON object (a prompto file may hold keys this
 * program does not know, and its id under another key); its id key is looked for by `parse`.
 * Declared rather than a `Record` so that a large file is read at the speed of `JSON.parse`:
 * the object is checked, not copied.
 */
const JsonObject = Schema.declare(
  (value: unknown): value is Readonly<Record<string, unknown>> =>
    typeof value === "object" && value !== null && !Array.isArray(value),
  { identifier: "JsonObject" }
)

const decodeLine = JsonLine.decoder(JsonObject)

const parse = (file: string, line: number, text: string, idKey: string): Parsed =>
  Either.match(decodeLine(file, line, text), {
    // not JSON, or not an object: the whole line is at fault, so no problem names a key
    onLeft: (problems) => ({ _tag: "Bad", detail: problems.map((problem) => problem.message).join("; ") }),
    onRight: (value) => {
      const hasId = Object.prototype.hasOwnProperty.call(value, idKey)
      return { _tag: "Ok", id: hasId ? value[idKey] : undefined, hasId, value }
    }
  })

/**
 * The key of a record: its id (`idKeyOf`), and its `sample` when it is one of a repeated
 * line's samples.
 *
 * @since 0.1.0
 * @category utils
 */
export const sampleKeyOf = (id: unknown, sample: unknown): string =>
  typeof sample === "number" ? `${idKeyOf(id)}#${sample}` : idKeyOf(id)

/** Line numbers, in order, in a growable typed array. */
class LineList {
  private items = new Uint32Array(1024)
  length = 0
  push(line: number): void {
    if (this.length === this.items.length) {
      const grown = new Uint32Array(this.items.length * 2)
      grown.set(this.items)
      this.items = grown
    }
    this.items[this.length++] = line
  }
  at(index: number): number | undefined {
    return index < this.length ? this.items[index] : undefined
  }
}

/** Whether a file exists, is not empty and does not end with a line break. */
const endsMidLine = (file: string): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(file)
    if (info.size === BigInt(0)) return false
    const handle = yield* fs.open(file, { flag: "r" })
    yield* handle.seek(info.size - BigInt(1), "start")
    const last = yield* handle.readAlloc(1)
    return last._tag === "Some" && last.value[0] !== 0x0a
  })).pipe(Effect.orElseSucceed(() => false))

/**
 * The ids of a completed file, streamed. A last line that is not JSON (a run cut off while it
 * wrote) counts as absent, with a warning; a bad line anywhere else is an error.
 *
 * @since 0.1.0
 * @category reading
 */
export const completedIds = (
  file: string,
  idKey = "id"
): Effect.Effect<{ readonly ids: ReadonlySet<string>; readonly warnings: ReadonlyArray<string> }, MissingError | ExperimentFile.ExperimentFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const ids = new Set<string>()
    const warnings: Array<string> = []
    // each line is judged when the next one arrives, so the last one is known to be the last
    let held: { readonly line: number; readonly text: string } | undefined
    const take = (entry: { readonly line: number; readonly text: string }, last: boolean): Effect.Effect<void, MissingError> => {
      const parsed = parse(file, entry.line, entry.text, idKey)
      if (parsed._tag === "Bad") {
        if (last) {
          warnings.push(`${file}:${entry.line}: the last line is not a complete record (${parsed.detail}); counted as not completed`)
          return Effect.void
        }
        return Effect.fail(new MissingError({ file, line: entry.line, detail: parsed.detail }))
      }
      if (!parsed.hasId) return Effect.fail(new MissingError({ file, line: entry.line, detail: `no "${idKey}" key` }))
      ids.add(sampleKeyOf(parsed.id, parsed.value.sample))
      return Effect.void
    }
    yield* Stream.runForEach(ExperimentFile.lines(file), (entry) => {
      const previous = held
      held = entry
      return previous === undefined ? Effect.void : take(previous, false)
    })
    if (held !== undefined) yield* take(held, true)
    return { ids, warnings }
  })

/**
 * Appends to `newFile` every line of `input` whose id has no record in `output`, unchanged and
 * in input order, and returns how many. Every line is checked before anything is written, so a
 * bad line leaves the new file as it was. The new file is created only when something is added.
 *
 * An input record without an `id` has the id a run gives it, `line-<n>` (only with the default
 * id key; another key must be present on every line).
 *
 * @since 0.1.0
 * @category writing
 */
export const write = (
  options: WriteOptions
): Effect.Effect<WriteResult, WriteError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const idKey = options.idKey ?? "id"
    const target = path.resolve(options.newFile)
    for (const [file, role] of [[options.input, "input"], [options.output, "completed"]] as const) {
      if (path.resolve(file) === target) {
        return yield* new MissingError({ file: options.newFile, detail: `the new file must not be the ${role} file` })
      }
    }
    const completed = yield* completedIds(options.output, idKey)

    // first pass: check every input line and note which are missing; of a repeated line with
    // some samples answered, which samples are missing
    const missing = new LineList()
    const partly = new Map<number, ReadonlyArray<number>>()
    const repeats = options.repeats ?? 1
    let added = 0
    let inputRecords = 0
    yield* Stream.runForEach(ExperimentFile.lines(options.input), (entry) => {
      inputRecords++
      const parsed = parse(options.input, entry.line, entry.text, idKey)
      if (parsed._tag === "Bad") return Effect.fail(new MissingError({ file: options.input, line: entry.line, detail: parsed.detail }))
      let id = parsed.id
      if (!parsed.hasId) {
        if (idKey !== "id") {
          return Effect.fail(new MissingError({ file: options.input, line: entry.line, detail: `no "${idKey}" key` }))
        }
        id = ExperimentFile.assignedId(entry.line)
      }
      const value = parsed.value
      const n = typeof value.repeats === "number" ? value.repeats : value.sample === undefined && repeats > 1 ? repeats : undefined
      if (n === undefined) {
        if (!completed.ids.has(sampleKeyOf(id, value.sample))) {
          missing.push(entry.line)
          added++
        }
        return Effect.void
      }
      const samples = Array.from({ length: n }, (_, k) => k).filter((k) => !completed.ids.has(sampleKeyOf(id, k)))
      if (samples.length > 0) {
        missing.push(entry.line)
        if (samples.length < n || value.repeats === undefined) partly.set(entry.line, samples)
        added += samples.length === n && value.repeats !== undefined ? 1 : samples.length
      }
      return Effect.void
    })

    // second pass: copy the missing lines as they were
    if (missing.length > 0) {
      yield* Effect.scoped(Effect.gen(function*() {
        // a new file whose last line has no line break gets one, so the first added line stays whole
        const lineBreak = yield* endsMidLine(options.newFile)
        const writer = yield* Output.appendLines(options.newFile)
        if (lineBreak) yield* writer.write([""])
        let next = 0
        yield* Stream.runForEachChunk(ExperimentFile.lines(options.input), (chunk) => {
          const out: Array<string> = []
          for (const entry of chunk) {
            if (missing.at(next) === entry.line) {
              const samples = partly.get(entry.line)
              if (samples === undefined) out.push(entry.text)
              else {
                // one line per missing sample, each with its `sample` and no `repeats`
                const { repeats: _, ...line } = JSON.parse(entry.text) as Record<string, unknown>
                for (const sample of samples) out.push(JSON.stringify({ ...line, sample }))
              }
              next++
            }
          }
          return writer.write(out)
        })
      }))
    }
    return { added, inputRecords, completedIds: completed.ids.size, warnings: completed.warnings }
  })

/**
 * prompto's message for a result: `No missing prompts found` or `Added N missing prompts to <file>`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (result: WriteResult, newFile: string): string =>
  result.added === 0 ? "No missing prompts found" : `Added ${result.added} missing prompts to ${newFile}`
