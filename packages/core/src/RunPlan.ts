/**
 * The plan of a run: one streaming check of the input file that decides, line by line, which
 * queue each line goes to (and which lines a resume skips), and hands the lines of every queue
 * over as they are checked, so the first request can leave long before a large file is checked.
 *
 * The check pass fills each queue's buffer with its checked lines. A queue holds at most
 * `bufferSize` lines read ahead; a queue that falls further behind leaves the check's hand-over
 * and, when it has sent what it holds, reads its own lines from the file from where it left off
 * (a second pass, for that queue only, that never reads past what the check has passed).
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { Chunk, Deferred, Effect, Exit, FiberId, Option, Queue, type Scope, Stream } from "effect"
import * as Cost from "./Cost.js"
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
 * One queue of the plan. `total` and `requests` grow while the check is going.
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
 * A plan whose check is going or done: what it has found so far, and the lines of each queue as
 * they are checked (`lines`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunPlan {
  /** The queues found so far, in the order their first line came. */
  readonly queues: ReadonlyArray<PlannedQueue>
  /** Lines answered by an earlier run (a resume), not sent again, so far. */
  readonly alreadyDone: () => number
  /** Entries checked so far, and the invalid ones among them. */
  readonly checked: () => number
  readonly invalid: () => number
  /** The first invalid line found, once there is one. */
  readonly firstInvalid: () => ExperimentFile.LineProblem | undefined
  /** Whether the check pass has ended. */
  readonly isComplete: () => boolean
  /** The check's report, when the pass has ended (waits for it). */
  readonly complete: Effect.Effect<ExperimentCheck.CheckReport, ExperimentFile.ExperimentFileError>
  /** Waits until the check has found an invalid line (never, for a valid file). */
  readonly invalidFound: Effect.Effect<void>
  /** Waits until the check has passed `ordinal` (or ended). */
  readonly checkedPast: (ordinal: number) => Effect.Effect<void>
  /** The problems of each invalid line, by ordinal. */
  readonly invalidProblems: ReadonlyMap<number, ReadonlyArray<ExperimentFile.LineProblem>>
  /** The queue of a line by ordinal: an index into `queues`, `invalid`, `done`, or `unchecked` (not yet). */
  readonly assignment: (ordinal: number) => number | "invalid" | "done" | "unchecked"
  /**
   * The records a valid line is sent as: itself, or one per sample not answered before when it
   * is repeated (`repeats` on the line, or the run's default), each with its `sample`.
   */
  readonly expand: (line: IdentifiedRecord) => ReadonlyArray<IdentifiedRecord>
  /** The check pass's hand-over (see `lines`). */
  readonly handOver: HandOver
}

const invalidMarker = 0xffff
const doneMarker = 0xfffe
const uncheckedMarker = 0xfffd

/** Queue index per record ordinal, growing as the check pass goes. */
class Assignment {
  private slots = new Uint16Array(1024).fill(uncheckedMarker)
  set(ordinal: number, value: number): void {
    if (ordinal >= this.slots.length) {
      const grown = new Uint16Array(Math.max(ordinal + 1, this.slots.length * 2)).fill(uncheckedMarker)
      grown.set(this.slots)
      this.slots = grown
    }
    this.slots[ordinal] = value
  }
  get(ordinal: number): number {
    return ordinal < this.slots.length ? this.slots[ordinal]! : uncheckedMarker
  }
}

/**
 * Lines a queue holds read ahead before it leaves the shared reading.
 *
 * @since 0.1.0
 * @category constants
 */
export const bufferSize = 4096

/** Entries between two progress calls of the check pass. */
const progressEvery = 4096

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

/** What the check pass hands over: each queue's buffered lines, the new queues, the invalid lines. */
interface HandOver {
  readonly buffers: Array<Queue.Queue<IdentifiedRecord | End>>
  readonly cutoffs: Array<number | undefined>
  readonly sizes: Array<number>
  readonly newQueues: Queue.Queue<number | End>
  readonly invalid: Queue.Queue<InvalidLine | End>
  /** The queues whose first line is for Ollama (their lines are grouped by model). */
  readonly ollama: Set<number>
  failure: ExperimentFile.ExperimentFileError | undefined
}

/**
 * Starts checking `file` and planning its queues in one streaming pass, on a fiber of the scope.
 * `done` says which record keys were answered before (see `Resume.recordKey`); those records are
 * left out. `onProgress` runs when a queue is found, every few thousand entries, and at the end
 * (to show totals as they grow).
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (file: string, options: {
  readonly displayName: string
  readonly queuePlan: QueuePlan.QueuePlan
  readonly done?: ((key: string) => boolean) | undefined
  /** How many times a line without `repeats` of its own is sent (default 1). */
  readonly repeats?: number | undefined
  readonly strategies?: StrategySpec.StrategySetup | undefined
  /** Lines that name no strategy run one given in code (so they are not single requests). */
  readonly strategyByDefault?: boolean | undefined
  readonly onProgress?: ((plan: RunPlan) => void) | undefined
}): Effect.Effect<RunPlan, never, FileSystem.FileSystem | ProviderRegistry | Scope.Scope> =>
  Effect.gen(function*() {
    const assignment = new Assignment()
    const queueIndex = new Map<string, number>()
    const queues: Array<{ key: string; route: RequestPath.Route; total: number; requests: number }> = []
    const strategyOf = StrategySpec.resolver(options.strategies ?? StrategySpec.defaultSetup)
    const invalidProblems = new Map<number, ReadonlyArray<ExperimentFile.LineProblem>>()
    let alreadyDone = 0
    let checked = 0
    let invalid = 0
    let firstInvalid: ExperimentFile.LineProblem | undefined
    let complete = false
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
    const handOver: HandOver = {
      buffers: [],
      cutoffs: [],
      sizes: [],
      newQueues: yield* Queue.unbounded<number | End>(),
      invalid: yield* Queue.unbounded<InvalidLine | End>(),
      ollama: new Set(),
      failure: undefined
    }
    const report = yield* Deferred.make<ExperimentCheck.CheckReport, ExperimentFile.ExperimentFileError>()
    const invalidSeen = yield* Deferred.make<void>()
    // readers waiting for the check to pass an ordinal
    let waiters: Array<{ readonly ordinal: number; readonly wake: Deferred.Deferred<void> }> = []
    const wake = (all: boolean) => {
      if (waiters.length === 0) return
      const still: typeof waiters = []
      for (const waiter of waiters) {
        if (all || waiter.ordinal < checked) Deferred.unsafeDone(waiter.wake, Exit.void)
        else still.push(waiter)
      }
      waiters = still
    }
    const queueOf = (record: IdentifiedRecord): number => {
      const key = options.queuePlan.keyFor(record)
      let index = queueIndex.get(key)
      if (index === undefined) {
        index = queues.length
        queueIndex.set(key, index)
        const { concurrency, queriesPerMinute, tokensPerMinute } = QueuePlan.route(options.queuePlan, key, key)
        queues.push({ key, route: { key, queriesPerMinute, tokensPerMinute, concurrency }, total: 0, requests: 0 })
        handOver.buffers.push(Effect.runSync(Queue.unbounded<IdentifiedRecord | End>()))
        handOver.cutoffs.push(undefined)
        handOver.sizes.push(0)
        if (record.api === "ollama") handOver.ollama.add(index)
        Queue.unsafeOffer(handOver.newQueues, index)
      }
      return index
    }
    // a valid line's records go to its queue's buffer, until the queue falls `bufferSize` lines
    // behind: then it reads the rest of its lines itself, after this ordinal
    const handTo = (index: number, ordinal: number, records: ReadonlyArray<IdentifiedRecord>) => {
      if (handOver.cutoffs[index] !== undefined) return
      const buffer = handOver.buffers[index]!
      if (handOver.sizes[index]! >= bufferSize) {
        handOver.cutoffs[index] = ordinal - 1
        Queue.unsafeOffer(buffer, new End(ordinal - 1))
        return
      }
      handOver.sizes[index]!++
      for (const record of records) Queue.unsafeOffer(buffer, record)
    }
    const plan: RunPlan = {
      queues,
      alreadyDone: () => alreadyDone,
      checked: () => checked,
      invalid: () => invalid,
      firstInvalid: () => firstInvalid,
      isComplete: () => complete,
      complete: Deferred.await(report),
      invalidFound: Deferred.await(invalidSeen),
      checkedPast: (ordinal) =>
        Effect.suspend(() => {
          if (complete || ordinal < checked) return Effect.void
          const waiting = Deferred.unsafeMake<void>(FiberId.none)
          waiters.push({ ordinal, wake: waiting })
          return Deferred.await(waiting)
        }),
      invalidProblems,
      assignment: (ordinal) => {
        const value = assignment.get(ordinal)
        return value === invalidMarker ? "invalid" : value === doneMarker ? "done" : value === uncheckedMarker ? "unchecked" : value
      },
      expand,
      handOver
    }
    const onEntry = (verdict: ExperimentCheck.EntryVerdict) => {
      checked = verdict.ordinal + 1
      if (verdict._tag === "Invalid") {
        assignment.set(verdict.ordinal, invalidMarker)
        invalidProblems.set(verdict.ordinal, verdict.problems)
        invalid++
        if (firstInvalid === undefined) {
          firstInvalid = verdict.problems[0]
          Deferred.unsafeDone(invalidSeen, Exit.void)
        }
        Queue.unsafeOffer(handOver.invalid, { entry: verdict.entry, problems: verdict.problems })
      } else {
        const all = samplesOf(verdict.record).length
        const left = remaining(verdict.record)
        alreadyDone += all - left.length
        if (left.length === 0) {
          assignment.set(verdict.ordinal, doneMarker)
        } else {
          const known = queues.length
          const index = queueOf(verdict.record)
          const queue = queues[index]!
          queue.total += left.length
          const strategy = strategyOf(verdict.record)
          const plain = strategy._tag === "Right" && strategy.right === undefined &&
            !(options.strategyByDefault === true && verdict.record.strategy === undefined)
          if (plain) queue.requests += left.length
          assignment.set(verdict.ordinal, index)
          // a new queue is counted, and the prices of its answers are ready, before its first
          // line can be sent
          if (queues.length > known) {
            Cost.preload(verdict.record.api)
            options.onProgress?.(plan)
          }
          handTo(index, verdict.ordinal, left.map((sample) => (sample === undefined ? verdict.record : { ...verdict.record, sample })))
        }
      }
      if (checked % progressEvery === 0 || checked === 1) {
        wake(false)
        options.onProgress?.(plan)
      }
    }
    // the check runs beside the sending: it lets the requests' I/O and timers in every few lines
    yield* ExperimentCheck.check(file, { displayName: options.displayName, strategies: options.strategies, onEntry, yieldEvery: 64 }).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          complete = true
          if (exit._tag === "Failure") {
            const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
            handOver.failure = failure
          }
          for (let i = 0; i < handOver.buffers.length; i++) {
            if (handOver.cutoffs[i] === undefined) Queue.unsafeOffer(handOver.buffers[i]!, new End(undefined))
          }
          Queue.unsafeOffer(handOver.newQueues, new End(undefined))
          Queue.unsafeOffer(handOver.invalid, new End(undefined))
          wake(true)
          options.onProgress?.(plan)
          return exit
        })
      ),
      Effect.flatMap((exit) => Deferred.done(report, exit)),
      Effect.forkScoped
    )
    return plan
  })

/**
 * The lines of a queue: the queue's index into the plan's `queues` and its records.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueLines {
  readonly index: number
  readonly records: Stream.Stream<IdentifiedRecord, ExperimentFile.ExperimentFileError, FileSystem.FileSystem>
}

/**
 * The lines of a plan's input: the valid lines to send, each queue's as the queue is found, and
 * the invalid lines.
 *
 * @since 0.1.0
 * @category models
 */
export interface PlannedLines {
  readonly queues: Stream.Stream<QueueLines>
  readonly invalid: Stream.Stream<InvalidLine, ExperimentFile.ExperimentFileError>
}

/** A buffer's items in chunks of whatever is there; its End is put back, so pulling again after the end ends again. */
const drain = <A>(buffer: Queue.Queue<A | End>, taken: (n: number) => void = () => {}) =>
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

/**
 * The lines of every queue, in file order (Ollama lines grouped by model within windows of 1,000
 * lines, as prompto sorts them), as the check hands them over; a queue that fell behind reads
 * the rest of its lines from `file` (the JSONL the check read, or its JSONL copy for a CSV file),
 * never past what the check has passed. `decode` turns a checked entry into its record.
 *
 * @since 0.1.0
 * @category reading
 */
export const lines = (
  plan: RunPlan,
  file: string,
  decode: (entry: ExperimentFile.RawEntry) => IdentifiedRecord
): PlannedLines => {
  const { handOver } = plan
  // a local Ollama server swaps models between requests for different ones: its lines go
  // grouped by model, as prompto sorts them (within a window: see modelGrouping)
  const grouping = <E, R>(stream: Stream.Stream<IdentifiedRecord, E, R>) =>
    ModelGrouping.groupByModel()(stream)
  const own = (index: number, after: number) =>
    ExperimentFile.readJsonl(file).pipe(
      // never ahead of the check: a line's queue is known once the check has passed it
      Stream.mapChunksEffect((chunk) =>
        Option.match(Chunk.last(chunk), {
          onNone: () => Effect.succeed(chunk),
          onSome: (last) => Effect.as(plan.checkedPast(last.ordinal), chunk)
        })
      ),
      Stream.filter((entry) => entry.ordinal > after && plan.assignment(entry.ordinal) === index),
      Stream.mapConcat((entry) => plan.expand(decode(entry)))
    )
  const then = (index: number) =>
    Stream.unwrap(Effect.sync(() => {
      if (handOver.failure !== undefined) return Stream.fail(handOver.failure)
      const cutoff = handOver.cutoffs[index]
      return cutoff === undefined ? Stream.empty : own(index, cutoff)
    }))
  const queueLines = (index: number): QueueLines => {
    const records = Stream.concat(drain(handOver.buffers[index]!, (n) => (handOver.sizes[index]! -= n)), then(index))
    // Ollama's queues only: the others go in file order
    return { index, records: handOver.ollama.has(index) ? grouping(records) : records }
  }
  return {
    queues: Stream.map(drain(handOver.newQueues), queueLines),
    invalid: Stream.concat(
      drain(handOver.invalid),
      Stream.unwrap(Effect.sync(() => handOver.failure === undefined ? Stream.empty : Stream.fail(handOver.failure)))
    )
  }
}
