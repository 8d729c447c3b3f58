/**
 * The plan of a run: one streaming check of the input file that also decides which queue each
 * line goes to (and which lines a resume skips), then the lines of every queue read from the
 * file once, handed to each queue as it is ready for them.
 *
 * Reading once, with queues that go at different rates, means one queue may fall far behind the
 * reader. Each queue holds at most `bufferSize` lines read ahead; a queue that falls further
 * behind leaves the shared reading and, when it has sent what it holds, reads its own lines from
 * where it left off (a second pass over the file, for that queue only). A single queue reads the
 * file itself as it takes its lines, so the file is read exactly once.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { Chunk, Effect, Option, Queue, type Scope, Stream } from "effect"
import * as ExperimentCheck from "./ExperimentCheck.js"
import * as ExperimentFile from "./ExperimentFile.js"
import * as ModelGrouping from "./internal/modelGrouping.js"
import type { IdentifiedRecord } from "./PromptRecord.js"
import type { ProviderRegistry } from "./Provider.js"
import * as QueuePlan from "./QueuePlan.js"
import * as Resume from "./Resume.js"
import type * as RequestPath from "./RequestPath.js"
import * as StrategySpec from "./StrategySpec.js"

/**
 * One queue of the plan.
 *
 * @since 0.1.0
 * @category models
 */
export interface PlannedQueue {
  readonly key: string
  readonly route: RequestPath.Route
  /** Lines in this queue to send (a resume leaves out those answered before). */
  readonly total: number
  /** Of those, the lines sent as they are (one request each; a strategy's requests are counted as they are made). */
  readonly requests: number
}

/**
 * The plan.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunPlan {
  readonly report: ExperimentCheck.CheckReport
  readonly queues: ReadonlyArray<PlannedQueue>
  /** Lines answered by an earlier run (a resume), not sent again. */
  readonly alreadyDone: number
  /** The problems of each invalid line, by ordinal. */
  readonly invalidProblems: ReadonlyMap<number, ReadonlyArray<ExperimentFile.LineProblem>>
  /** The queue of a line by ordinal: an index into `queues`, or `invalid` / `done`. */
  readonly assignment: (ordinal: number) => number | "invalid" | "done"
  /**
   * The records a valid line is sent as: itself, or one per sample not answered before when it
   * is repeated (`repeats` on the line, or the run's default), each with its `sample`.
   */
  readonly expand: (line: IdentifiedRecord) => ReadonlyArray<IdentifiedRecord>
}

const invalidMarker = 0xffff
const doneMarker = 0xfffe

/** Queue index per record ordinal, growing as the check pass goes. */
class Assignment {
  private slots = new Uint16Array(1024)
  set(ordinal: number, value: number): void {
    if (ordinal >= this.slots.length) {
      const grown = new Uint16Array(Math.max(ordinal + 1, this.slots.length * 2))
      grown.set(this.slots)
      this.slots = grown
    }
    this.slots[ordinal] = value
  }
  get(ordinal: number): number | undefined {
    return this.slots[ordinal]
  }
}

/**
 * Checks `file` and plans its queues in one streaming pass. `done` says which record keys were
 * answered before (see `Resume.recordKey`); those records are left out.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (file: string, options: {
  readonly displayName: string
  readonly queuePlan: QueuePlan.QueuePlan
  readonly done?: ((key: string) => boolean) | undefined
  /** How many times a line without `repeats` of its own is sent (default 1). */
  readonly repeats?: number | undefined
  readonly strategies?: StrategySpec.StrategySetup | undefined
  /** Lines that name no strategy run one given in code (so they are not single requests). */
  readonly strategyByDefault?: boolean | undefined
}): Effect.Effect<RunPlan, ExperimentFile.ExperimentFileError, FileSystem.FileSystem | ProviderRegistry> =>
  Effect.gen(function*() {
    const assignment = new Assignment()
    const queueIndex = new Map<string, number>()
    const totals: Array<number> = []
    const requests: Array<number> = []
    const strategyOf = StrategySpec.resolver(options.strategies ?? StrategySpec.defaultSetup)
    const invalidProblems = new Map<number, ReadonlyArray<ExperimentFile.LineProblem>>()
    let alreadyDone = 0
    const repeats = options.repeats ?? 1
    const done = options.done ?? (() => false)
    // the samples a line is sent as: `undefined` is the line as it is
    const samplesOf = (line: IdentifiedRecord): ReadonlyArray<number | undefined> => {
      const n = line.repeats ?? (line.sample === undefined && repeats > 1 ? repeats : undefined)
      return n === undefined ? [undefined] : Array.from({ length: n }, (_, k) => k)
    }
    const remaining = (line: IdentifiedRecord) =>
      samplesOf(line).filter((sample) => !done(Resume.recordKey(line.id, sample ?? line.sample)))
    const expand = (line: IdentifiedRecord): ReadonlyArray<IdentifiedRecord> =>
      remaining(line).map((sample) => (sample === undefined ? line : { ...line, sample }))
    const report = yield* ExperimentCheck.check(file, {
      displayName: options.displayName,
      strategies: options.strategies,
      onEntry: (verdict) => {
        if (verdict._tag === "Invalid") {
          assignment.set(verdict.ordinal, invalidMarker)
          invalidProblems.set(verdict.ordinal, verdict.problems)
          return
        }
        const all = samplesOf(verdict.record).length
        const left = remaining(verdict.record).length
        alreadyDone += all - left
        if (left === 0) {
          assignment.set(verdict.ordinal, doneMarker)
          return
        }
        const key = options.queuePlan.keyFor(verdict.record)
        let index = queueIndex.get(key)
        if (index === undefined) {
          index = queueIndex.size
          queueIndex.set(key, index)
          totals.push(0)
          requests.push(0)
        }
        totals[index]! += left
        const strategy = strategyOf(verdict.record)
        const plain = strategy._tag === "Right" && strategy.right === undefined &&
          !(options.strategyByDefault === true && verdict.record.strategy === undefined)
        if (plain) requests[index]! += left
        assignment.set(verdict.ordinal, index)
      }
    })
    const queues = [...queueIndex.keys()].map((key, i): PlannedQueue => {
      const { concurrency, queriesPerMinute, tokensPerMinute } = QueuePlan.route(options.queuePlan, key, key)
      return { key, route: { key, queriesPerMinute, tokensPerMinute, concurrency }, total: totals[i]!, requests: requests[i]! }
    })
    return {
      report,
      queues,
      alreadyDone,
      invalidProblems,
      expand,
      assignment: (ordinal) => {
        const value = assignment.get(ordinal) ?? invalidMarker
        return value === invalidMarker ? "invalid" : value === doneMarker ? "done" : value
      }
    }
  })

/**
 * Lines a queue holds read ahead before it leaves the shared reading.
 *
 * @since 0.1.0
 * @category constants
 */
export const bufferSize = 4096

/** The end of a queue's buffered lines; `cutoff` is set when the queue reads the rest itself. */
class End {
  constructor(readonly cutoff: number | undefined) {}
}

/**
 * An invalid line and its problems.
 *
 * @since 0.1.0
 * @category models
 */
export interface InvalidLine {
  readonly entry: ExperimentFile.RawEntry
  readonly problems: ReadonlyArray<ExperimentFile.LineProblem>
}

/**
 * The lines of a plan's input: the valid lines to send, per queue, and the invalid lines.
 *
 * @since 0.1.0
 * @category models
 */
export interface PlannedLines {
  readonly queues: ReadonlyArray<Stream.Stream<IdentifiedRecord, ExperimentFile.ExperimentFileError, FileSystem.FileSystem>>
  readonly invalid: Stream.Stream<InvalidLine, ExperimentFile.ExperimentFileError, FileSystem.FileSystem>
}

/**
 * The lines of every queue, in file order (Ollama lines grouped by model within windows of 1,000
 * lines, as prompto sorts them), from the plan's input file (the JSONL the check
 * read, or its JSONL copy for a CSV file). `decode` turns a checked entry into its record.
 *
 * @since 0.1.0
 * @category reading
 */
export const lines = (
  plan: RunPlan,
  file: string,
  decode: (entry: ExperimentFile.RawEntry) => IdentifiedRecord
): Effect.Effect<PlannedLines, never, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const count = plan.queues.length
    // a local Ollama server swaps models between requests for different ones: its lines go
    // grouped by model, as prompto sorts them (within a window: see modelGrouping)
    const grouping = <E, R>(stream: Stream.Stream<IdentifiedRecord, E, R>) =>
      (plan.report.apis.get("ollama") ?? 0) > 0 ? ModelGrouping.groupByModel()(stream) : stream
    const invalid = yield* Queue.unbounded<InvalidLine | End>()
    const invalidLine = (entry: ExperimentFile.RawEntry): InvalidLine => ({
      entry,
      problems: plan.invalidProblems.get(entry.ordinal) ?? []
    })
    // a buffer's lines in chunks of whatever is there; its End is put back, so pulling again
    // after the end ends again
    const drain = <A>(buffer: Queue.Queue<A | End>, taken: (n: number) => void) =>
      Stream.repeatEffectChunkOption(
        Effect.flatMap(Queue.takeBetween(buffer, 1, 1024), (items) => {
          const out: Array<A> = []
          for (const item of items) {
            if (item instanceof End) {
              return Effect.zipRight(
                Queue.offer(buffer, item),
                out.length === 0 ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(out))
              )
            }
            out.push(item)
          }
          taken(out.length)
          return Effect.succeed(Chunk.unsafeFromArray(out))
        })
      )
    if (count === 0) {
      return {
        queues: [],
        invalid: ExperimentFile.readJsonl(file).pipe(
          Stream.filter((entry) => plan.assignment(entry.ordinal) === "invalid"),
          Stream.map(invalidLine)
        )
      }
    }
    if (count === 1) {
      // one queue: its lines are the file itself, read once as the queue takes them, with the
      // invalid lines handed aside on the way
      const only = ExperimentFile.readJsonl(file).pipe(
        Stream.mapChunksEffect((chunk) => {
          const valid: Array<IdentifiedRecord> = []
          const bad: Array<InvalidLine> = []
          for (const entry of chunk) {
            const index = plan.assignment(entry.ordinal)
            if (index === 0) valid.push(...plan.expand(decode(entry)))
            else if (index === "invalid") bad.push(invalidLine(entry))
          }
          const lines = Chunk.unsafeFromArray(valid)
          return bad.length === 0 ? Effect.succeed(lines) : Effect.as(Queue.offerAll(invalid, bad), lines)
        }),
        Stream.ensuring(Queue.offer(invalid, new End(undefined)))
      )
      return { queues: [grouping(only)], invalid: drain<InvalidLine>(invalid, () => {}) }
    }
    const buffers = yield* Effect.forEach(plan.queues, () => Queue.unbounded<IdentifiedRecord | End>())
    // a queue that fell `bufferSize` lines behind reads its own lines after this ordinal
    const cutoffs: Array<number | undefined> = new Array(count).fill(undefined)
    const sizes: Array<number> = new Array(count).fill(0)
    let failure: ExperimentFile.ExperimentFileError | undefined
    yield* ExperimentFile.readJsonl(file).pipe(
      Stream.runForEachChunk((chunk) => {
        const out: Array<Array<IdentifiedRecord | End>> = plan.queues.map(() => [])
        const bad: Array<InvalidLine> = []
        for (const entry of chunk) {
          const index = plan.assignment(entry.ordinal)
          if (index === "invalid") bad.push(invalidLine(entry))
          if (typeof index !== "number" || cutoffs[index] !== undefined) continue
          if (sizes[index]! >= bufferSize) {
            cutoffs[index] = entry.ordinal - 1
            out[index]!.push(new End(entry.ordinal - 1))
            continue
          }
          sizes[index]!++
          out[index]!.push(...plan.expand(decode(entry)))
        }
        return Effect.zipRight(
          Effect.forEach(out, (items, i) => (items.length === 0 ? Effect.void : Queue.offerAll(buffers[i]!, items)), {
            discard: true
          }),
          bad.length === 0 ? Effect.void : Queue.offerAll(invalid, bad)
        )
      }),
      Effect.catchAll((error) => Effect.sync(() => (failure = error))),
      Effect.zipRight(Effect.forEach(buffers, (buffer, i) =>
        cutoffs[i] === undefined ? Queue.offer(buffer, new End(undefined)) : Effect.void)),
      Effect.zipRight(Queue.offer(invalid, new End(undefined))),
      Effect.forkScoped
    )
    const own = (index: number, after: number) =>
      ExperimentFile.readJsonl(file).pipe(
        Stream.filter((entry) => entry.ordinal > after && plan.assignment(entry.ordinal) === index),
        Stream.mapConcat((entry) => plan.expand(decode(entry)))
      )
    const then = (index: number) =>
      Stream.unwrap(Effect.sync(() => {
        if (failure !== undefined) return Stream.fail(failure)
        const cutoff = cutoffs[index]
        return cutoff === undefined ? Stream.empty : own(index, cutoff)
      }))
    return {
      queues: buffers.map((buffer, index) =>
        grouping(Stream.concat(drain<IdentifiedRecord>(buffer, (n) => (sizes[index]! -= n)), then(index)))
      ),
      invalid: Stream.concat(
        drain<InvalidLine>(invalid, () => {}),
        Stream.unwrap(Effect.sync(() => failure === undefined ? Stream.empty : Stream.fail(failure)))
      )
    }
  })
