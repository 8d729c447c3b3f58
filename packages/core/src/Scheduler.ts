/**
 * The scheduler: every queue paced at its own rate, all queues at once, requests sent without
 * waiting for responses, retryable failures sent again on a later slot of their queue.
 * The result is a Stream of completed records, in the order responses arrive.
 *
 * Every attempt, first or retry, waits for its queue's limits before it is sent: a concurrency
 * permit (when the queue caps requests in flight), its estimated tokens (when the queue has a
 * tokens-per-minute budget) and a send slot, in that order. A "slow down" answer
 * (`RateLimitError`) pauses the whole queue; a transient failure backs off that prompt only.
 *
 * @since 0.1.0
 */
import { Cause, Chunk, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, FiberId, Option, Queue, Runtime, Schedule, Scope, Stream } from "effect"
import * as Pacer from "./Pacer.js"
import * as RequestTimeout from "./RequestTimeout.js"
import type { CompletedRecord, IdentifiedRecord } from "./PromptRecord.js"
import { missingProviderMessage, ProviderRegistry } from "./Provider.js"
import type { ProviderResponse } from "./Provider.js"
import { PermanentError, type ProviderError, type RateLimitError, RequestTimeoutError } from "./ProviderError.js"
import * as Timestamp from "./Timestamp.js"
import * as TokenBudget from "./TokenBudget.js"

/**
 * One queue: its key, its rate and its records, and optionally its other limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueInput<E, R> {
  readonly key: string
  readonly queriesPerMinute: number
  /** Tokens per minute (estimated before sending, corrected from the reported usage). */
  readonly tokensPerMinute?: number | undefined
  /** Requests in flight at most. */
  readonly concurrency?: number | undefined
  readonly records: Stream.Stream<IdentifiedRecord, E, R>
}

/**
 * What the scheduler reports while it runs (for progress displays and logs).
 *
 * @since 0.1.0
 * @category models
 */
export type SchedulerEvent =
  | { readonly _tag: "Queued"; readonly queue: string; readonly queriesPerMinute: number; readonly id: unknown }
  | { readonly _tag: "Sent"; readonly queue: string; readonly id: unknown; readonly attempt: number; readonly at: number }
  | {
    readonly _tag: "Retrying"
    readonly queue: string
    readonly id: unknown
    readonly attempt: number
    readonly maxAttempts: number
    readonly error: ProviderError
  }
  | {
    /** The API said "slow down": the queue sends nothing before `until`. */
    readonly _tag: "Paused"
    readonly queue: string
    /** The prompt whose answer paused the queue. */
    readonly id: unknown
    /** Clock milliseconds when the pause began and when it ends. */
    readonly at: number
    readonly until: number
    /** `retry_after`: the server said how long; `backoff`: the n-th consecutive "slow down" (`level`). */
    readonly reason: "retry_after" | "backoff"
    readonly level: number
    readonly error: RateLimitError
  }
  | { readonly _tag: "Completed"; readonly queue: string; readonly record: CompletedRecord; readonly ok: boolean }

/**
 * How requests are sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchedulerOptions {
  /** Attempts in total per prompt, the first included. */
  readonly maxAttempts: number
  /** Per-request timeout; a timeout is retryable. */
  readonly timeout: Duration.DurationInput
  /** Called for every event; the scheduler waits for it, so keep it quick. */
  readonly onEvent?: ((event: SchedulerEvent) => Effect.Effect<void>) | undefined
  /** How a prompt backs off after a transient failure (default `defaultRetryBackoff`). */
  readonly retryBackoff?: RetryBackoff | undefined
  /**
   * How a queue pauses after a "slow down" answer without `retry-after` (default
   * `Pacer.defaultRateLimitBackoff`). Used by `run`, `runQueue` and `pacerPool`'s queues.
   */
  readonly rateLimitBackoff?: Pacer.RateLimitBackoff | undefined
  /**
   * True once the run is stopping (a graceful stop): nothing more is sent, not even a retry. A
   * prompt whose retry is given up this way is not emitted at all, so a resume sends it again.
   */
  readonly stopping?: (() => boolean) | undefined
  /**
   * Records sent but not yet taken downstream, at most (default `defaultBacklog`): requests in
   * flight plus answers not yet written. A queue waits before its next send when the backlog
   * is full, so memory stays bounded however long the file and however fast the API.
   */
  readonly backlog?: number | undefined
}

/**
 * The default cap on records sent but not yet taken downstream (see `SchedulerOptions.backlog`).
 * It is far above what a rate limit allows in flight in practice (10,000 QPM at a minute's
 * latency) and keeps a run with no limit at all to a few tens of megabytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBacklog = 10_000

/**
 * The wait before a prompt's n-th retry after a transient failure: `initial * 2^(n-1)`,
 * jittered by ±20%, at most `max` (the same shape as the pacer's `RateLimitBackoff`).
 *
 * @since 0.1.0
 * @category models
 */
export type RetryBackoff = Pacer.RateLimitBackoff

/**
 * 500 ms, 1 s, 2 s, ... up to 30 s (each ±20%).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetryBackoff: RetryBackoff = { initial: "500 millis", max: "30 seconds" }

/**
 * The retry policy: up to `maxAttempts` attempts in total, and only for retryable errors.
 * A transient failure (server error, timeout) waits an exponential, jittered backoff before the
 * retry; a `RateLimitError` waits nothing here, because it paused its whole queue (see
 * `Pacer.rateLimited`). Then the wait for a new send slot is part of each attempt, so a retry
 * is paced like any send. Outputs the number of retries so far.
 *
 * @since 0.1.0
 * @category policies
 */
export const retryPolicy = (
  maxAttempts: number,
  backoff: RetryBackoff = defaultRetryBackoff
): Schedule.Schedule<number, ProviderError> =>
  Schedule.exponential(backoff.initial).pipe(
    Schedule.jittered,
    Schedule.union(Schedule.spaced(backoff.max)),
    Schedule.zipRight(Schedule.identity<ProviderError>()),
    // whole milliseconds, like the clock
    Schedule.modifyDelay((error, delay) =>
      error._tag === "RateLimitError" ? Duration.zero : Duration.millis(Math.round(Duration.toMillis(delay)))
    ),
    Schedule.zipRight(Schedule.recurs(Math.max(0, maxAttempts - 1))),
    Schedule.whileInput((error: ProviderError) => error.retryable)
  )

const policies = new WeakMap<SchedulerOptions, Schedule.Schedule<number, ProviderError>>()

/** The retry policy of a run's options, made once (a schedule is immutable, so it is shared). */
const policyOf = (options: SchedulerOptions): Schedule.Schedule<number, ProviderError> => {
  let policy = policies.get(options)
  if (policy === undefined) {
    policy = retryPolicy(options.maxAttempts, options.retryBackoff)
    policies.set(options, policy)
  }
  return policy
}

/**
 * prompto's wording for an error stored in `response`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const errorResponse = (error: ProviderError, attempts: number, maxAttempts: number): string =>
  error.retryable && attempts >= maxAttempts
    ? `An unexpected error occurred when querying the API: (${error._tag} - ${error.message}) after maximum ${maxAttempts} attempts`
    : `${error._tag} - ${error.message}`

const withResponse = (
  record: IdentifiedRecord,
  outcome: Either.Either<ProviderResponse, ProviderError>,
  meta: { readonly sentAt: number; readonly receivedAt: number; readonly attempts: number; readonly maxAttempts: number }
): CompletedRecord => {
  const timing = {
    timestamp_sent: Timestamp.format(meta.sentAt),
    timestamp_received: Timestamp.format(meta.receivedAt),
    latency_ms: meta.receivedAt - meta.sentAt,
    attempts: meta.attempts
  }
  if (Either.isRight(outcome)) {
    const { fields, response, usage } = outcome.right
    return {
      ...record,
      timestamp_sent: timing.timestamp_sent,
      response,
      ...fields,
      timestamp_received: timing.timestamp_received,
      latency_ms: timing.latency_ms,
      attempts: timing.attempts,
      ...(usage === undefined ? {} : { usage })
    }
  }
  const error = outcome.left
  return {
    ...record,
    timestamp_sent: timing.timestamp_sent,
    response: errorResponse(error, meta.attempts, meta.maxAttempts),
    timestamp_received: timing.timestamp_received,
    latency_ms: timing.latency_ms,
    attempts: timing.attempts,
    error: { kind: error.kind, message: error.message, attempts: meta.attempts }
  }
}

/**
 * Waits until a record may be sent on its queue: a concurrency permit (when the pacer caps
 * requests in flight; `dispatch` gives it back when the response arrives), its estimated tokens
 * (when the pacer has a token budget), then a send slot.
 *
 * @since 0.1.0
 * @category dispatch
 */
export const admit = (record: IdentifiedRecord, pacer: Pacer.Pacer): Effect.Effect<void> => {
  const { inFlight, tokens } = pacer
  const rest = tokens === undefined ? pacer.take : Effect.zipRight(tokens.charge(TokenBudget.estimate(record)), pacer.take)
  return inFlight === undefined
    ? rest
    : Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(restore(inFlight.take(1)), restore(rest).pipe(Effect.onInterrupt(() => inFlight.release(1))))
    )
}

/** The failure of a retry given up because the run is stopping. */
const stoppedError = new PermanentError({ reason: "stopped", message: "the run was stopped before this prompt was answered" })

/**
 * Whether a completed record is a prompt given up by a graceful stop (not written: not done).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isAbandoned = (record: CompletedRecord): boolean => record.error?.kind === "stopped"

/**
 * Sends one record through its provider, retrying on later slots of its queue. The caller has
 * admitted the first attempt (`admit`, which for a pacer without other limits is `pacer.take`),
 * so records leave their queue in order; each retry is admitted here.
 *
 * @since 0.1.0
 * @category dispatch
 */
export const dispatch = (
  record: IdentifiedRecord,
  queue: {
    readonly key: string
    readonly pacer: Pacer.Pacer
    /** The watchdog for `options.timeout` (made per call when absent). */
    readonly timeout?: RequestTimeout.RequestTimeout | undefined
  },
  options: SchedulerOptions
): Effect.Effect<CompletedRecord, never, ProviderRegistry> =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const provider = registry.get(record.api)
    const emit = options.onEvent ?? (() => Effect.void)
    const timeout = Duration.decode(options.timeout)
    const onTimeout = () => new RequestTimeoutError({ message: `no response within ${Duration.format(timeout)}` })
    const { pacer } = queue
    const estimate = pacer.tokens === undefined ? 0 : TokenBudget.estimate(record)
    let attempts = 0
    let sentAt = 0
    const query: Effect.Effect<ProviderResponse, ProviderError> = provider === undefined
      ? new PermanentError({ reason: "unknown_api", message: missingProviderMessage(record.api, registry) })
      : (queue.timeout === undefined
        ? Effect.timeoutFail(provider.query(record), { duration: timeout, onTimeout })
        : queue.timeout.within(provider.query(record), onTimeout)).pipe(
        Effect.catchAllDefect((defect) =>
          new PermanentError({ reason: "internal", message: `the ${record.api} provider failed: ${String(defect)}` })
        )
      )
    // after the response: the permit goes back, and the token charge is corrected from the
    // usage the API reported (a failed attempt keeps its estimate)
    const settle = (response: ProviderResponse | undefined): Effect.Effect<void> => {
      const used = response === undefined ? undefined : TokenBudget.usedTokens(response.usage)
      const correct = pacer.tokens === undefined || used === undefined ? Effect.void : pacer.tokens.adjust(used - estimate)
      return pacer.inFlight === undefined ? correct : Effect.zipRight(correct, pacer.inFlight.release(1))
    }
    const attempt = Effect.gen(function*() {
      // the first attempt was admitted before this record left its queue; a retry is admitted anew
      if (attempts > 0 && options.stopping?.() === true) return yield* stoppedError
      if (attempts > 0) yield* admit(record, pacer)
      attempts++
      sentAt = yield* Clock.currentTimeMillis
      yield* emit({ _tag: "Sent", queue: queue.key, id: record.id, attempt: attempts, at: sentAt })
      return yield* query.pipe(
        Effect.onExit((exit) => settle(exit._tag === "Success" ? exit.value : undefined))
      )
    }).pipe(
      Effect.tap(() => pacer.succeeded(sentAt)),
      Effect.tapError((error) =>
        Effect.zipRight(
          error.retryable && attempts < options.maxAttempts
            ? emit({ _tag: "Retrying", queue: queue.key, id: record.id, attempt: attempts, maxAttempts: options.maxAttempts, error })
            : Effect.void,
          // "slow down" pauses the whole queue, before this prompt's retry asks for a slot
          error._tag === "RateLimitError"
            ? Effect.gen(function*() {
              const at = yield* Clock.currentTimeMillis
              const pause = yield* pacer.rateLimited({ sentAt, retryAfterMs: error.retryAfterMs })
              if (pause.extended) {
                yield* emit({
                  _tag: "Paused",
                  queue: queue.key,
                  id: record.id,
                  at,
                  until: pause.until,
                  reason: pause.reason,
                  level: pause.level,
                  error
                })
              }
            })
            : Effect.void
        )
      )
    )
    // the retry policy comes in only after a first failure (most prompts succeed at once, and
    // the policy's driver is a good share of a request's own cost); it sees that failure first,
    // so the attempts and waits are exactly `Effect.retry(attempt, policy)`'s
    const outcome = yield* Effect.either(Effect.catchAll(attempt, (first) => {
      let replay: ProviderError | undefined = first
      const again = Effect.suspend(() => {
        if (replay === undefined) return attempt
        const error = replay
        replay = undefined
        return Effect.fail(error)
      })
      return Effect.retry(again, policyOf(options))
    }))
    const receivedAt = yield* Clock.currentTimeMillis
    if (Either.isLeft(outcome) && outcome.left === stoppedError) {
      // not done: no record, so a resume sends it again
      return withResponse(record, outcome, { sentAt, receivedAt, attempts, maxAttempts: options.maxAttempts })
    }
    const completed = withResponse(record, outcome, { sentAt, receivedAt, attempts, maxAttempts: options.maxAttempts })
    yield* emit({ _tag: "Completed", queue: queue.key, record: completed, ok: Either.isRight(outcome) })
    return completed
  })

const pacerOptions = (
  limits: { readonly tokensPerMinute?: number | undefined; readonly concurrency?: number | undefined },
  options: { readonly rateLimitBackoff?: Pacer.RateLimitBackoff | undefined } | undefined
): Pacer.PacerOptions => ({
  tokensPerMinute: limits.tokensPerMinute,
  concurrency: limits.concurrency,
  rateLimitBackoff: options?.rateLimitBackoff
})

/**
 * One source of records for `fanOut`: `admit` runs in the source's order, one record at a time
 * (a queue's pacing), and says whether to send the record (`"send"`), skip it (`"skip"`) or
 * stop the source (`"stop"`); `send` then runs on a fiber of its own, so a slow answer never
 * holds back the next send. `send` giving `undefined` emits nothing.
 */
interface Feed<E, R, R2> {
  readonly records: Stream.Stream<IdentifiedRecord, E, R>
  readonly admit: (record: IdentifiedRecord) => Effect.Effect<"send" | "skip" | "stop">
  readonly send: (record: IdentifiedRecord) => Effect.Effect<CompletedRecord | undefined, never, R2>
}

/** How many sends a feed makes between two yields to the requests it started. */
const yieldEvery = 16

const liveClock = Clock.make()

/**
 * Resumes after the event loop has polled for I/O, so answers that have arrived are read
 * first: `setImmediate` on the live clock (a zero timer would add a millisecond of its own and
 * measured slower). Under any other clock, a test's `TestClock`, it is a zero sleep on that
 * clock, which returns at once and keeps the test deterministic.
 */
const yieldToEventLoop: Effect.Effect<void> = Effect.clockWith((clock) =>
  clock.constructor === liveClock.constructor
    ? Effect.async<void>((resume) => {
      const handle = setImmediate(() => resume(Effect.void))
      return Effect.sync(() => clearImmediate(handle))
    })
    : clock.sleep(Duration.zero)
)

/** Answers waiting to be read downstream at most, before the feeds wait for the reader. */
const maxUnread = 1024

/** The end of the output, or a failure of a source (its cause). */
const End = Symbol("End")
class Failed {
  constructor(readonly cause: Cause.Cause<unknown>) {}
}

/**
 * Sends the records of every feed as their feed admits them, each on its own fiber, and emits
 * the completed records as they complete, in chunks of whatever has arrived since the last
 * pull. At most `backlog` records are sent and not yet taken downstream, and a feed waits
 * before admitting its next record while the backlog is full or while `maxUnread` answers wait
 * for the reader (so a slow writer holds memory to a thousand answers, not the whole backlog).
 * A failing source fails the stream, and ending the stream early interrupts everything still
 * in flight.
 *
 * This is the scheduler's one concurrent part, written with plain fibers and a queue rather
 * than `Stream.mapEffect({ concurrency })`, whose per-element cost (a channel merge per
 * record) was the throughput ceiling: about 4,000 records per second against about 70,000.
 */
const fanOut = <E, R, R2>(
  feeds: ReadonlyArray<Feed<E, R, R2>>,
  backlog: number = defaultBacklog
): Stream.Stream<CompletedRecord, E, R | R2> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const out = yield* Queue.unbounded<CompletedRecord | typeof End | Failed>()
    // the fibers still running, interrupted when the stream ends (root fibers with callbacks:
    // a fraction of the cost of a supervised fork per record)
    const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    yield* Effect.addFinalizer(() => Fiber.interruptAll(fibers))
    const runtime = yield* Effect.runtime<R | R2>()
    const start = (effect: Effect.Effect<void, never, R | R2>): void => {
      const fiber = Runtime.runFork(runtime)(effect)
      fibers.add(fiber)
      fiber.addObserver(() => fibers.delete(fiber))
    }
    const permits = yield* Effect.makeSemaphore(Math.max(1, Math.floor(backlog)))
    // answers not yet read: when the reader (the writer of the completed file, the stages) falls
    // behind, the feeds wait for it instead of filling the whole backlog with answers
    let unread = 0
    let readerCaughtUp: Deferred.Deferred<void> | undefined
    const waitForReader: Effect.Effect<void> = Effect.suspend(() => {
      if (unread < maxUnread) return Effect.void
      readerCaughtUp ??= Deferred.unsafeMake<void>(FiberId.none)
      return Effect.zipRight(Deferred.await(readerCaughtUp), waitForReader)
    })
    let sending = 0
    let sinceYield = 0
    let feeding = feeds.length
    const maybeEnd = Effect.suspend(() => (feeding === 0 && sending === 0 ? Queue.offer(out, End) : Effect.void))
    const fail = (cause: Cause.Cause<unknown>) => Queue.offer(out, new Failed(cause))
    const sent = (completed: CompletedRecord | undefined): Effect.Effect<void> =>
      Effect.suspend(() => {
        sending--
        if (completed === undefined) return Effect.zipRight(permits.release(1), maybeEnd)
        unread++
        return Effect.zipRight(Queue.offer(out, completed), maybeEnd)
      })
    // one record of a feed: wait for the reader and the backlog, admit, send on a fiber of its
    // own; false stops the feed
    const step = (admit: Feed<E, R, R2>["admit"], send: Feed<E, R, R2>["send"]) => (record: IdentifiedRecord) =>
      Effect.gen(function*() {
        yield* waitForReader
        yield* permits.take(1)
        const decision = yield* admit(record)
        if (decision !== "send") {
          yield* permits.release(1)
          return decision === "skip"
        }
        sending++
        start(send(record).pipe(
          Effect.flatMap(sent),
          Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : fail(cause)))
        ))
        // let the requests already sent move on before the next send: with no rate limit the
        // feed would otherwise run ahead and fill the backlog with half-started requests, which
        // costs memory and garbage collection and gains nothing. The yield goes through the
        // event loop, so answers that have arrived are read first (Effect's own yield runs
        // other fibers but not the network's callbacks)
        if (++sinceYield >= yieldEvery) {
          sinceYield = 0
          yield* yieldToEventLoop
        }
        return true
      })
    // (`Stream.runForEachWhile` would read more simply, but in effect 3.22 it keeps every
    // element it has seen: a million-line file held in memory)
    const feed = ({ admit, records, send }: Feed<E, R, R2>) =>
      records.pipe(
        Stream.mapEffect(step(admit, send)),
        Stream.takeWhile((go) => go),
        Stream.runDrain,
        Effect.zipRight(Effect.suspend(() => {
          feeding--
          return maybeEnd
        })),
        Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : fail(cause)))
      )
    for (const source of feeds) start(feed(source))
    yield* maybeEnd
    let ended = false
    const pull: Effect.Effect<Chunk.Chunk<CompletedRecord>, Option.Option<E>> = Effect.gen(function*() {
      if (ended) return yield* Effect.fail(Option.none())
      const items = yield* Queue.takeBetween(out, 1, 4096)
      const records: Array<CompletedRecord> = []
      for (const item of items) {
        if (item === End) {
          ended = true
          break
        }
        if (item instanceof Failed) return yield* Effect.failCause(Cause.map(item.cause as Cause.Cause<E>, Option.some))
        records.push(item)
      }
      if (records.length > 0) {
        unread -= records.length
        if (readerCaughtUp !== undefined && unread < maxUnread) {
          Deferred.unsafeDone(readerCaughtUp, Exit.void)
          readerCaughtUp = undefined
        }
        yield* permits.release(records.length)
      }
      if (records.length === 0 && ended) return yield* Effect.fail(Option.none())
      return Chunk.unsafeFromArray(records)
    })
    return Stream.repeatEffectChunkOption(pull)
  }))

/**
 * One queue as a stream of completed records: each record waits for its send slot (and its
 * queue's other limits, see `admit`), then is sent without waiting for earlier responses.
 *
 * @since 0.1.0
 * @category streams
 */
export const runQueue = <E, R>(
  input: QueueInput<E, R>,
  options: SchedulerOptions
): Stream.Stream<CompletedRecord, E, R | ProviderRegistry> => run([input], options)

/**
 * All queues at once, merged into one stream of completed records.
 *
 * @since 0.1.0
 * @category streams
 */
export const run = <E, R>(
  queues: ReadonlyArray<QueueInput<E, R>>,
  options: SchedulerOptions
): Stream.Stream<CompletedRecord, E, R | ProviderRegistry> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const timeout = yield* RequestTimeout.make(options.timeout)
    const paced = yield* Effect.forEach(queues, (input) =>
      Effect.map(Pacer.make(input.queriesPerMinute, pacerOptions(input, options)), (pacer) => ({ input, pacer })))
    return fanOut(
        paced.map(({ input, pacer }): Feed<E, R, ProviderRegistry> => ({
          records: input.records,
          // a record admitted after a stop is not sent, and its queue ends
          admit: (record) => Effect.map(admit(record, pacer), () => (options.stopping?.() === true ? "stop" : "send")),
          send: (record) =>
            Effect.map(dispatch(record, { key: input.key, pacer, timeout }, options), (completed) =>
              isAbandoned(completed) ? undefined : completed)
        })),
        options.backlog
      )
  }))

/**
 * Where a record goes when queues are not known in advance: its queue key and that queue's
 * limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface Route {
  readonly key: string
  readonly queriesPerMinute: number
  /** Tokens per minute (estimated before sending, corrected from the reported usage). */
  readonly tokensPerMinute?: number | undefined
  /** Requests in flight at most. */
  readonly concurrency?: number | undefined
}

/**
 * Pacers made on first use, one per queue key, living as long as the given scope. A queue's
 * limits are the ones its first record's route brought.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pacerPool = (
  scope: Scope.Scope,
  options?: { readonly rateLimitBackoff?: Pacer.RateLimitBackoff | undefined }
): Effect.Effect<(route: Route) => Effect.Effect<Pacer.Pacer>> =>
  Effect.gen(function*() {
    const routes = new Map<string, Route>()
    const cached = yield* Effect.cachedFunction((key: string) => {
      const route = routes.get(key)
      return Pacer.make(route?.queriesPerMinute ?? 1, pacerOptions(route ?? {}, options)).pipe(Scope.extend(scope))
    })
    return (route: Route) => {
      if (!routes.has(route.key)) routes.set(route.key, route)
      return cached(route.key)
    }
  })

/**
 * Records whose queues are decided one by one (records made during a run: judge prompts,
 * rephrased prompts): each waits for a slot of its route's queue (and its other limits, see
 * `admit`), then is sent without waiting for earlier responses. A `Queued` event announces each record to the statistics.
 *
 * @since 0.1.0
 * @category streams
 */
export const runRouted = <E, R>(
  records: Stream.Stream<IdentifiedRecord, E, R>,
  route: (record: IdentifiedRecord) => Route,
  pacerFor: (route: Route) => Effect.Effect<Pacer.Pacer>,
  options: SchedulerOptions
): Stream.Stream<CompletedRecord, E, R | ProviderRegistry> => {
  const emit = options.onEvent ?? (() => Effect.void)
  return Stream.unwrapScoped(Effect.map(RequestTimeout.make(options.timeout), (timeout) => fanOut([{
    records,
    admit: () => Effect.succeed("send"),
    // each record waits for its own queue's slot on its own fiber: records bound for different
    // queues never wait for each other
    send: (record) =>
      Effect.gen(function*() {
        const target = route(record)
        const pacer = yield* pacerFor(target)
        yield* emit({ _tag: "Queued", queue: target.key, queriesPerMinute: target.queriesPerMinute, id: record.id })
        yield* admit(record, pacer)
        if (options.stopping?.() === true) return undefined
        const completed = yield* dispatch(record, { key: target.key, pacer, timeout }, options)
        return isAbandoned(completed) ? undefined : completed
      })
  }], options.backlog)))
}
