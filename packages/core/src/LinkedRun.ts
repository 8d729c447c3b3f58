/**
 * Linked runs: the experiments a run makes while it goes, such as `judge-<name>` (judge prompts
 * built from responses) and `rephrase-<name>` (rephrase prompts built from inputs). Each sends
 * its records through its own paced queues and writes prompto's files,
 * `output/<linked name>/<T>-{input,completed,log}-<linked name>`, with the main run's timestamp,
 * so its results sit where prompto would have put them.
 *
 * @since 0.1.0
 */
import type { FileSystem, Path } from "@effect/platform"
import { type Chunk, Clock, Context, Effect, Layer, Queue, Scope, Stream } from "effect"
import * as DataFolder from "./DataFolder.js"
import * as Output from "./Output.js"
import type { CompletedRecord, IdentifiedRecord } from "./PromptRecord.js"
import { isSuccess } from "./PromptRecord.js"
import * as FanOut from "./internal/fanOut.js"
import * as RequestPath from "./RequestPath.js"
import * as RunSummary from "./RunSummary.js"
import type * as Scheduler from "./Scheduler.js"

/**
 * What a linked run can fail with: its files cannot be made or written.
 *
 * @since 0.1.0
 * @category errors
 */
export type LinkedRunError = Output.OutputError | DataFolder.DataFolderError

/**
 * Options of one `query`.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryOptions {
  /** Applied to each completed record before it is written (a judge parses its verdict here). */
  readonly complete?: ((record: CompletedRecord) => Effect.Effect<CompletedRecord>) | undefined
}

/**
 * The service: linked runs of the current experiment.
 *
 * @since 0.1.0
 * @category models
 */
export interface LinkedRunsService {
  /** The main run's experiment name: judge runs are `judge-<experiment>`. */
  readonly experiment: string
  /** The experiment file's name: rephrase runs are `rephrase-<source>`. */
  readonly source: string
  /**
   * Sends records as the linked run `name`: each is written to its input file, paced in its
   * queue, sent with the run's retry policy, and written to its completed file as it arrives.
   * Several queries may share one name; they share its files and queues.
   */
  readonly query: <E, R>(
    name: string,
    records: Stream.Stream<IdentifiedRecord, E, R>,
    options?: QueryOptions
  ) => Stream.Stream<CompletedRecord, E | LinkedRunError, R>
  /** The linked runs opened so far. */
  readonly opened: Effect.Effect<ReadonlyArray<DataFolder.RunFiles>>
}

/**
 * The linked runs of the current experiment; `Experiment.run` provides it to its stages.
 *
 * @since 0.1.0
 * @category tags
 */
export class LinkedRuns extends Context.Tag("@prompto/core/LinkedRuns")<LinkedRuns, LinkedRunsService>() {}

/**
 * Where linked runs are placed. Their records go through the run's request path, so they share
 * the main run's queues (a judge on the same api and model as the main prompts shares their
 * rate), its pauses and its graceful stop.
 *
 * @since 0.1.0
 * @category models
 */
export interface LinkedRunsOptions {
  readonly dataFolder: DataFolder.DataFolder
  /** The main run's start: linked files share its timestamp. */
  readonly startedAt: number
  readonly experiment: string
  readonly source: string
}

interface Opened {
  readonly files: DataFolder.RunFiles
  readonly input: Output.LineWriter
  readonly completed: Output.LineWriter
  readonly log: Output.RunLog
  readonly counts: { sent: number; succeeded: number; failed: number }
}

/** Runs an effect on each chunk before passing it on. */
const tapChunks = <A, E2, R2>(f: (chunk: Chunk.Chunk<A>) => Effect.Effect<unknown, E2, R2>) =>
<E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | E2, R | R2> =>
  Stream.mapChunksEffect(self, (chunk) => Effect.as(f(chunk), chunk))

const json = (records: ReadonlyArray<unknown>) => records.map((record) => JSON.stringify(record))

/**
 * Makes the service. Files and queues are opened on first use and closed with the scope, which
 * also writes each linked run's closing log line.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: LinkedRunsOptions
): Effect.Effect<LinkedRunsService, never, Scope.Scope | FileSystem.FileSystem | Path.Path | RequestPath.RequestPath> =>
  Effect.gen(function*() {
    const scope = yield* Scope.Scope
    const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
    const path = yield* RequestPath.RequestPath
    const opened: Array<Opened> = []
    const open = yield* Effect.cachedFunction((name: string) =>
      Effect.gen(function*() {
        const files = yield* DataFolder.claimRunFiles(options.dataFolder, `${name}.jsonl`, options.startedAt)
        const run: Opened = {
          files,
          input: yield* Output.appendLines(files.input),
          completed: yield* Output.appendLines(files.completed),
          log: yield* Output.openLog(files.log),
          counts: { sent: 0, succeeded: 0, failed: 0 }
        }
        yield* run.log.write(`Started experiment ${name}.jsonl (linked to ${options.experiment})`)
        yield* Scope.addFinalizer(
          scope,
          Effect.gen(function*() {
            const seconds = ((yield* Clock.currentTimeMillis) - options.startedAt) / 1000
            const done = run.counts.succeeded + run.counts.failed
            yield* run.log.write(
              `Completed experiment ${name}.jsonl! Experiment processing time: ${seconds.toFixed(3)} seconds, ` +
                `Average time per query: ${(done > 0 ? seconds / done : 0).toFixed(3)} seconds ` +
                `(${run.counts.succeeded} succeeded, ${run.counts.failed} failed)`
            )
          }).pipe(Effect.ignore)
        )
        opened.push(run)
        return run
      }).pipe(Scope.extend(scope), Effect.provide(context))
    )
    const query: LinkedRunsService["query"] = (name, records, queryOptions) =>
      Stream.unwrap(Effect.map(open(name), (run) => {
        const onEvent = (event: Scheduler.SchedulerEvent): Effect.Effect<void> =>
          Effect.ignore(Effect.suspend(() => {
            const message = RunSummary.logMessage(event)
            return message === undefined ? Effect.void : run.log.write(message)
          }))
        const sent = records.pipe(
          tapChunks((chunk) => Effect.zipRight(
            run.input.write(json([...chunk])),
            Effect.sync(() => run.counts.sent += chunk.length)
          ))
        )
        // the linked run's own log gets its requests' lines (retries, errors)
        // follow-ups of lines already answered: they go ahead of lines not yet sent in a shared
        // queue (they carry no line ticket), so a line's judging is not held back by the rest
        return FanOut.fanOut([{
          records: sent,
          admit: () => Effect.succeed(path.stopping() ? "stop" as const : "send" as const),
          send: (record: IdentifiedRecord) =>
            Effect.map(
              Effect.locally(path.send({ record }), RequestPath.eventTap, onEvent),
              (completed) => (RequestPath.isAbandoned(completed) ? undefined : completed)
            )
        }]).pipe(
          Stream.mapEffect((record) => queryOptions?.complete?.(record) ?? Effect.succeed(record)),
          tapChunks((chunk) =>
            Effect.zipRight(
              run.completed.write(json([...chunk])),
              Effect.sync(() => {
                for (const record of chunk) {
                  if (isSuccess(record)) run.counts.succeeded++
                  else run.counts.failed++
                }
              })
            )
          )
        )
      }))
    return {
      experiment: options.experiment,
      source: options.source,
      query,
      opened: Effect.sync(() => opened.map((run) => run.files))
    }
  })

/**
 * The service as a layer, for running stages outside `Experiment.run`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LinkedRunsOptions
): Layer.Layer<LinkedRuns, never, FileSystem.FileSystem | Path.Path | RequestPath.RequestPath> =>
  Layer.scoped(LinkedRuns, make(options))

/**
 * Feeds every element of a stream to `side` while passing the elements on at once: elements are
 * handed over through an unbounded queue, so a slow side (a judge paced at 10 QPM) never holds
 * back the main stream. The result carries the main elements and whatever `side` emits (a judge
 * emits nothing, a rephraser its new prompts), and ends when both have ended.
 *
 * @since 0.1.0
 * @category combinators
 */
export const alongside = <A, B, E2, R2>(side: (elements: Stream.Stream<A>) => Stream.Stream<B, E2, R2>) =>
<E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A | B, E | E2, R | R2> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const queue = yield* Queue.unbounded<ReadonlyArray<A> | null>()
    const sideStream = Stream.fromQueue(queue).pipe(
      Stream.takeWhile((chunk): chunk is ReadonlyArray<A> => chunk !== null),
      Stream.flattenIterables,
      side
    )
    // the side ends when the main stream ends (a failure ends the merge, and with it the side)
    const main = self.pipe(
      tapChunks((chunk) => Queue.offer(queue, [...chunk])),
      Stream.onEnd(Queue.offer(queue, null))
    )
    return Stream.merge(main, sideStream)
  }))
