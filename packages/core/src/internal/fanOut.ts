/**
 * The fan-out: sends the records of several feeds, each on a fiber of its own, and emits what
 * comes back as a stream, with memory bounded by a backlog and by the reader's pace.
 *
 * @internal
 */
import { Cause, Chunk, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, FiberId, Option, Queue, Runtime, Stream } from "effect"

/** The default cap on items started but not yet taken downstream. */
export const defaultBacklog = 10_000

/**
 * One source of records for `fanOut`: `admit` runs in the source's order, one record at a time
 * (a queue's pacing), and says whether to send the record (`"send"`), skip it (`"skip"`) or
 * stop the source (`"stop"`); `send` then runs on a fiber of its own, so a slow answer never
 * holds back the next send. `send` giving `undefined` emits nothing.
 */
export interface Feed<A, B, E, R, R2> {
  readonly records: Stream.Stream<A, E, R>
  readonly admit: (record: A) => Effect.Effect<"send" | "skip" | "stop">
  readonly send: (record: A) => Effect.Effect<B | undefined, never, R2>
  /**
   * `send` without a fiber of its own, when it can (see `RequestPath.sendNow`): an effect run on
   * the feed's fiber that starts the record's work and ends `job` from its callbacks, or
   * `undefined` to `send` it.
   */
  readonly sendNow?: ((record: A, job: Job<B>) => Effect.Effect<void> | undefined) | undefined
}

/**
 * A record sent by a feed's `sendNow`, told how it ends.
 */
export interface Job<B> {
  readonly done: (completed: B | undefined) => void
  readonly defect: (cause: Cause.Cause<never>) => void
  readonly track: (cancel: () => void) => void
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
export const yieldToEventLoop: Effect.Effect<void> = Effect.clockWith((clock) =>
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
export const fanOut = <A, B, E, R, R2>(
  feeds: ReadonlyArray<Feed<A, B, E, R, R2>>,
  backlog: number = defaultBacklog,
  /** Feeds found while the others run (a queue whose first line comes late in the file). */
  more?: Stream.Stream<Feed<A, B, E, R, R2>, E, R>
): Stream.Stream<B, E, R | R2> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const out = yield* Queue.unbounded<B | typeof End | Failed>()
    // the fibers still running, interrupted when the stream ends (root fibers with callbacks:
    // a fraction of the cost of a supervised fork per record)
    const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    yield* Effect.addFinalizer(() => Fiber.interruptAll(fibers))
    // the records sent with `sendNow` and not yet done: cancelled when the stream ends
    const jobs = new Set<OpenJob<B>>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const job of jobs) job.cancel?.()
        jobs.clear()
      })
    )
    const runtime = yield* Effect.runtime<R | R2>()
    const start = (effect: Effect.Effect<void, never, R | R2>): void => {
      const fiber = Runtime.runFork(runtime)(effect)
      fibers.add(fiber)
      fiber.addObserver(() => fibers.delete(fiber))
    }
    // the backlog's free places: a count and a waiter rather than a semaphore, so a record that
    // finds a place (nearly all) takes it without an Effect step
    let free = Math.max(1, Math.floor(backlog))
    let placeFreed: Deferred.Deferred<void> | undefined
    const release = (n: number): void => {
      free += n
      if (placeFreed !== undefined) {
        Deferred.unsafeDone(placeFreed, Exit.void)
        placeFreed = undefined
      }
    }
    const waitForPlace: Effect.Effect<void> = Effect.suspend(() => {
      if (free > 0) {
        free--
        return Effect.void
      }
      placeFreed ??= Deferred.unsafeMake<void>(FiberId.none)
      return Effect.zipRight(Deferred.await(placeFreed), waitForPlace)
    })
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
    // the feeds running, and the source of more feeds while it lasts
    let feeding = feeds.length + (more === undefined ? 0 : 1)
    // the output is unbounded, so an offer never waits: `unsafeOffer` hands it over without the
    // Effect steps of `Queue.offer` (a suspension and a few more a record); after the stream has
    // ended it is refused, and the fibers are being interrupted anyway
    const endIfDone = (): void => {
      if (feeding === 0 && sending === 0) Queue.unsafeOffer(out, End)
    }
    const maybeEnd = Effect.sync(endIfDone)
    const fail = (cause: Cause.Cause<unknown>) => Queue.offer(out, new Failed(cause))
    // once a request, as a plain function (`Effect.map`): one step instead of about eight
    const sent = (completed: B | undefined): void => {
      sending--
      if (completed === undefined) {
        release(1)
      } else {
        unread++
        Queue.unsafeOffer(out, completed)
      }
      endIfDone()
    }
    // one record of a feed: wait for the reader and the backlog, admit, send on a fiber of its
    // own; false stops the feed
    const defect = (cause: Cause.Cause<never>): void => {
      Queue.unsafeOffer(out, new Failed(cause))
    }
    const step = (
      admit: Feed<A, B, E, R, R2>["admit"],
      send: Feed<A, B, E, R, R2>["send"],
      sendNow: Feed<A, B, E, R, R2>["sendNow"]
    ) => {
      const decide = (record: A) => (decision: "send" | "skip" | "stop"): Effect.Effect<boolean> => {
        if (decision !== "send") {
          release(1)
          return Effect.succeed(decision === "skip")
        }
        sending++
        let now: Effect.Effect<void> | undefined
        if (sendNow !== undefined) {
          const job = new OpenJob(jobs, sent, defect)
          jobs.add(job)
          now = sendNow(record, job)
          if (now === undefined) jobs.delete(job)
        }
        if (now === undefined) {
          start(send(record).pipe(
            Effect.map(sent),
            Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : fail(cause)))
          ))
        }
        // let the requests already sent move on before the next send: with no rate limit the
        // feed would otherwise run ahead and fill the backlog with half-started requests, which
        // costs memory and garbage collection and gains nothing. The yield goes through the
        // event loop, so answers that have arrived are read first (Effect's own yield runs
        // other fibers but not the network's callbacks)
        if (++sinceYield >= yieldEvery) {
          sinceYield = 0
          return Effect.as(now === undefined ? yieldToEventLoop : Effect.zipRight(now, yieldToEventLoop), true)
        }
        return now === undefined ? Effect.succeed(true) : Effect.as(now, true)
      }
      // a hot loop (once a record): the waits only when there is something to wait for (the
      // semaphore and the two waits cost about 10 Effect steps a record), and plain `flatMap`s,
      // which allocate less than a generator
      return (record: A): Effect.Effect<boolean> =>
        Effect.suspend(() => {
          if (unread < maxUnread && free > 0) {
            free--
            return Effect.flatMap(admit(record), decide(record))
          }
          return Effect.zipRight(waitForReader, Effect.zipRight(waitForPlace, Effect.flatMap(admit(record), decide(record))))
        })
    }
    // one pull a chunk and a plain loop over its records: `Stream.mapEffect` and `takeWhile`
    // cost a channel read per record, about 13 Effect steps, more than the rest of the feed's
    // work (and `Stream.runForEachWhile` keeps every element it has seen in effect 3.22)
    // a chunk's records one after the other, until one says stop (false): a `flatMap` a record,
    // where the generator's `yield*` cost a few more steps (once a record of the run)
    const eachOf = (
      chunk: Chunk.Chunk<A>,
      next: (record: A) => Effect.Effect<boolean, never, R2>
    ): Effect.Effect<boolean, never, R2> => {
      const records = Chunk.toReadonlyArray(chunk)
      const from = (index: number): Effect.Effect<boolean, never, R2> =>
        index >= records.length
          ? Effect.succeed(true)
          : Effect.flatMap(next(records[index]!), (go) => (go ? from(index + 1) : Effect.succeed(false)))
      return from(0)
    }
    const feed = ({ admit, records, send, sendNow }: Feed<A, B, E, R, R2>) => {
      const next = step(admit, send, sendNow)
      return Effect.scoped(Effect.gen(function*() {
        const pull = yield* Stream.toPull(records)
        while (true) {
          const pulled = yield* Effect.either(pull)
          if (Either.isLeft(pulled)) {
            if (Option.isNone(pulled.left)) return
            return yield* Effect.fail(pulled.left.value)
          }
          if (!(yield* eachOf(pulled.right, next))) return
        }
      })).pipe(
        Effect.zipRight(Effect.suspend(() => {
          feeding--
          return maybeEnd
        })),
        Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : fail(cause)))
      )
    }
    for (const source of feeds) start(feed(source))
    if (more !== undefined) {
      start(more.pipe(
        Stream.runForEach((source) =>
          Effect.sync(() => {
            feeding++
            start(feed(source))
          })
        ),
        Effect.zipRight(Effect.suspend(() => {
          feeding--
          return maybeEnd
        })),
        Effect.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : fail(cause)))
      ))
    }
    yield* maybeEnd
    let ended = false
    const pull: Effect.Effect<Chunk.Chunk<B>, Option.Option<E>> = Effect.gen(function*() {
      if (ended) return yield* Effect.fail(Option.none())
      const items = yield* Queue.takeBetween(out, 1, 4096)
      const records: Array<B> = []
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
        release(records.length)
      }
      if (records.length === 0 && ended) return yield* Effect.fail(Option.none())
      return Chunk.unsafeFromArray(records)
    })
    return Stream.repeatEffectChunkOption(pull)
  }))


/** A record sent by `sendNow`: done once, and only while the stream runs. */
class OpenJob<B> implements Job<B> {
  cancel: (() => void) | undefined = undefined
  constructor(
    private readonly jobs: Set<OpenJob<B>>,
    private readonly sent: (completed: B | undefined) => void,
    private readonly failed: (cause: Cause.Cause<never>) => void
  ) {}
  done(completed: B | undefined): void {
    if (this.jobs.delete(this)) this.sent(completed)
  }
  defect(cause: Cause.Cause<never>): void {
    if (this.jobs.delete(this)) this.failed(cause)
  }
  track(cancel: () => void): void {
    this.cancel = cancel
  }
}
