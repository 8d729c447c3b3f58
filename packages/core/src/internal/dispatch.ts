/**
 * One request's journey once routed: wait for its queue's limits, send it through its provider
 * under the run's timeout, retry what may be retried, and build the completed record.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, type Schedule, Scope } from "effect"
import * as Pacer from "./pacer.js"
import * as RequestTimeout from "./requestTimeout.js"
import type { CompletedRecord, IdentifiedRecord } from "../PromptRecord.js"
import { type Call, missingProviderMessage, type Provider } from "../Provider.js"
import type { ProviderResponse, RateLimitInfo } from "../Provider.js"
import { PermanentError, type ProviderError, RequestTimeoutError } from "../ProviderError.js"
import { errorResponse, retryPolicy } from "../RetryPolicy.js"
import type { SchedulerEvent, SchedulerOptions } from "../Scheduler.js"
import * as Timestamp from "../Timestamp.js"
import * as TokenBudget from "../TokenBudget.js"

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
 * The completed record: the line's own fields, then the response and its timing, in the order
 * prompto writes them.
 *
 * Built by assignment onto a copy rather than as one literal with spreads: on Node 20's V8 a
 * spread copy given more properties takes a new hidden class for every object, about 1 µs a
 * property (6 µs a record, measured), where assignment reuses the shapes.
 */
export const withResponse = (
  record: IdentifiedRecord,
  outcome: Either.Either<ProviderResponse, ProviderError>,
  meta: { readonly sentAt: number; readonly receivedAt: number; readonly attempts: number; readonly maxAttempts: number }
): CompletedRecord => {
  const completed: Record<string, unknown> = Object.assign({}, record)
  completed.timestamp_sent = Timestamp.format(meta.sentAt)
  if (Either.isRight(outcome)) {
    const { fields, response, usage } = outcome.right
    completed.response = response
    if (fields !== undefined) Object.assign(completed, fields)
    completed.timestamp_received = Timestamp.format(meta.receivedAt)
    completed.latency_ms = meta.receivedAt - meta.sentAt
    completed.attempts = meta.attempts
    if (usage !== undefined) completed.usage = usage
    return completed as unknown as CompletedRecord
  }
  const error = outcome.left
  completed.response = errorResponse(error, meta.attempts, meta.maxAttempts)
  completed.timestamp_received = Timestamp.format(meta.receivedAt)
  completed.latency_ms = meta.receivedAt - meta.sentAt
  completed.attempts = meta.attempts
  completed.error = { kind: error.kind, message: error.message, attempts: meta.attempts }
  return completed as unknown as CompletedRecord
}

/**
 * Waits until a record may be sent on its queue: a concurrency permit (when the pacer caps
 * requests in flight; `dispatch` gives it back when the response arrives), its estimated tokens
 * (when the pacer has a token budget), then a send slot.
 *
 */
export const admit = (record: IdentifiedRecord, pacer: Pacer.Pacer, urgent: boolean = false): Effect.Effect<void> => {
  const { inFlight, tokens } = pacer
  const take = urgent ? pacer.takeUrgent : pacer.take
  const rest = tokens === undefined ? take : Effect.zipRight(tokens.charge(TokenBudget.estimate(record)), take)
  return inFlight === undefined
    ? rest
    : Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(restore(inFlight.take(1)), restore(rest).pipe(Effect.onInterrupt(() => inFlight.release(1))))
    )
}

/**
 * The pacer's hints from what an API's headers said (`ProviderResponse.rateLimit`, or a 429's),
 * read at `now`: its request window as it is, and its token window in requests of
 * `tokensPerRequest` tokens (this answer's usage, else the estimate), so whichever runs out
 * first slows the queue.
 */
export const rateHints = (info: RateLimitInfo, now: number, tokensPerRequest: number | undefined): Array<Pacer.RateHint> => {
  const hints: Array<Pacer.RateHint> = []
  if (info.remainingRequests !== undefined && info.resetRequestsMs !== undefined) {
    hints.push({ remaining: info.remainingRequests, limit: info.limitRequests, resetAt: now + info.resetRequestsMs })
  }
  if (
    info.remainingTokens !== undefined && info.resetTokensMs !== undefined &&
    tokensPerRequest !== undefined && tokensPerRequest > 0
  ) {
    hints.push({
      remaining: info.remainingTokens / tokensPerRequest,
      limit: info.limitTokens === undefined ? undefined : info.limitTokens / tokensPerRequest,
      resetAt: now + info.resetTokensMs
    })
  }
  return hints
}

/** The event of a queue's rate that moved. */
const rateChanged = (queue: string, at: number, change: Pacer.RateChange): SchedulerEvent => ({
  _tag: "RateChanged",
  queue,
  at,
  queriesPerMinute: change.queriesPerMinute,
  configured: change.configured,
  reason: change.reason
})

/**
 * What an API's rate-limit headers change, at clock time `now`: the API's own count of what is
 * left slows the queue before it answers "slow down". Gives the event to report, if any.
 */
const headerEvent = (
  queue: string,
  pacer: Pacer.Pacer,
  record: IdentifiedRecord,
  info: RateLimitInfo,
  usage: ProviderResponse["usage"],
  now: number
): SchedulerEvent | undefined => {
  const hints = rateHints(info, now, TokenBudget.usedTokens(usage) ?? TokenBudget.estimate(record))
  if (hints.length === 0) return undefined
  const { rate } = pacer.hintAt(hints, now)
  return rate === undefined ? undefined : rateChanged(queue, now, rate)
}

/**
 * What a success changes in its queue, at clock time `now` (the backoff ends, the rate recovers
 * a step, the headers' counts cap it), as the events to report (usually none).
 */
const successEvents = (
  queue: string,
  pacer: Pacer.Pacer,
  record: IdentifiedRecord,
  response: ProviderResponse,
  sentAt: number,
  now: number
): ReadonlyArray<SchedulerEvent> | undefined => {
  const recovered = pacer.succeededAt(sentAt, now)
  const hinted = response.rateLimit === undefined
    ? undefined
    : headerEvent(queue, pacer, record, response.rateLimit, response.usage, now)
  if (recovered === undefined) return hinted === undefined ? undefined : [hinted]
  return hinted === undefined ? [rateChanged(queue, now, recovered)] : [rateChanged(queue, now, recovered), hinted]
}

/** A completed record of an outcome, with its cost when the run prices answers. */
const completedOf = (
  record: IdentifiedRecord,
  outcome: Either.Either<ProviderResponse, ProviderError>,
  meta: { readonly sentAt: number; readonly receivedAt: number; readonly attempts: number },
  options: SchedulerOptions
): CompletedRecord => {
  const answered = withResponse(record, outcome, { ...meta, maxAttempts: options.maxAttempts })
  return options.price === undefined || Either.isLeft(outcome) ? answered : Object.assign(answered, { cost: options.price(answered) })
}

/** The failure of a request that had no answer within the run's timeout. */
const timeoutError = (timeout: Duration.DurationInput) =>
  new RequestTimeoutError({ message: `no response within ${Duration.format(Duration.decode(timeout))}` })

/** The failure of a retry given up because the run is stopping. */
export const stoppedError = new PermanentError({ reason: "stopped", message: "the run was stopped before this prompt was answered" })

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
 */
export const dispatch = (
  record: IdentifiedRecord,
  queue: {
    readonly key: string
    readonly pacer: Pacer.Pacer
    /** The watchdog for `options.timeout` (made per call when absent). */
    readonly timeout?: RequestTimeout.RequestTimeout | undefined
  },
  options: SchedulerOptions,
  registry: ReadonlyMap<string, Provider>,
  emit: (event: SchedulerEvent) => Effect.Effect<void> = options.onEvent ?? (() => Effect.void),
  /** The first attempt, made and failed already (by `dispatchCall`): it is handled as if made here. */
  first?: { readonly error: ProviderError; readonly sentAt: number } | undefined
): Effect.Effect<CompletedRecord> =>
  Effect.gen(function*() {
    const provider = registry.get(record.api)
    const timeout = Duration.decode(options.timeout)
    const onTimeout = () => timeoutError(timeout)
    const { pacer } = queue
    const estimate = pacer.tokens === undefined ? 0 : TokenBudget.estimate(record)
    let attempts = first === undefined ? 0 : 1
    let sentAt = first === undefined ? 0 : first.sentAt
    let replayed = first?.error
    // sent at `sentAt`, under the run's timeout: on the line's own fiber when the provider's
    // waits take the deadline themselves (`Provider.timesOut`), else on a fiber the timeout interrupts
    const query = (): Effect.Effect<ProviderResponse, ProviderError> =>
      provider === undefined
        ? new PermanentError({ reason: "unknown_api", message: missingProviderMessage(record.api, registry) })
        : (queue.timeout === undefined
          ? Effect.timeoutFail(provider.query(record), { duration: timeout, onTimeout })
          : provider.timesOut === true
          ? queue.timeout.until(provider.query(record), sentAt, onTimeout)
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
    const reportRate = (change: Pacer.RateChange | undefined): Effect.Effect<void> =>
      change === undefined
        ? Effect.void
        : Effect.flatMap(Clock.currentTimeMillis, (at) => emit(rateChanged(queue.key, at, change)))
    const emitAll = (events: ReadonlyArray<SchedulerEvent> | undefined): Effect.Effect<void> =>
      events === undefined ? Effect.void : Effect.forEach(events, emit, { discard: true })
    // once a request: plain `flatMap`s rather than an `Effect.gen`, which allocates a generator
    // and a wrapper for each `yield*` (the Effect steps are the same)
    const send = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      attempts++
      sentAt = now
      return Effect.zipRight(
        emit({ _tag: "Sent", queue: queue.key, id: record.id, attempt: attempts, at: sentAt }),
        // (a queue without a concurrency cap or token budget has nothing to settle: no finalizer)
        pacer.inFlight === undefined && pacer.tokens === undefined ? query() : query().pipe(
          Effect.onExit((exit) => settle(exit._tag === "Success" ? exit.value : undefined))
        )
      )
    })
    const attempt = Effect.suspend(() => {
      if (replayed !== undefined) {
        const error = replayed
        replayed = undefined
        return Effect.fail(error)
      }
      // the first attempt was admitted before this record left its queue; a retry is admitted anew
      if (attempts === 0) return send
      if (options.stopping?.() === true) return Effect.fail(stoppedError)
      return Effect.zipRight(admit(record, pacer, true), send)
    }).pipe(
      Effect.tap((response) =>
        Effect.flatMap(
          Clock.currentTimeMillis,
          (now) => emitAll(successEvents(queue.key, pacer, record, response, sentAt, now))
        )
      ),
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
              yield* reportRate(pause.rate)
              if (error.rateLimit !== undefined) {
                const now = yield* Clock.currentTimeMillis
                const hinted = headerEvent(queue.key, pacer, record, error.rateLimit, undefined, now)
                if (hinted !== undefined) yield* emit(hinted)
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
    const completed = completedOf(record, outcome, { sentAt, receivedAt, attempts }, options)
    yield* emit({ _tag: "Completed", queue: queue.key, record: completed, ok: Either.isRight(outcome) })
    return completed
  })

/**
 * The first attempt of `dispatch` as a provider's prepared `Call`, made outside any fiber: the
 * run's hot path, where a fiber and the hundred-odd Effect steps of `dispatch` were most of the
 * request path's own CPU. The record has its slot and its `Sent` event (at `sentAt`). An answer
 * is handled here as `dispatch` handles it (its queue's rate, the `Completed` event, the
 * record); a failure, rare, goes to `failed`, which hands it to `dispatch` as its `first`
 * attempt (the retries, pauses and error records are all `dispatch`'s). A throw from the
 * handling (a subscriber's) goes to `defect`. Returns how to cancel the call.
 */
export const dispatchCall = (
  record: IdentifiedRecord,
  queue: { readonly key: string; readonly pacer: Pacer.Pacer; readonly timeout: RequestTimeout.RequestTimeout },
  call: Call,
  sentAt: number,
  clock: Clock.Clock,
  options: SchedulerOptions,
  callbacks: {
    /** Publishes an event at once. */
    readonly emit: (event: SchedulerEvent) => void
    readonly done: (completed: CompletedRecord) => void
    readonly failed: (error: ProviderError) => void
    readonly defect: (defect: unknown) => void
  }
): () => void => {
  let finished = false
  let cancel: (() => void) | undefined
  let disarm: (() => void) | undefined
  const finish = (outcome: Either.Either<ProviderResponse, ProviderError>): void => {
    if (finished) return
    finished = true
    disarm?.()
    try {
      if (Either.isLeft(outcome)) return callbacks.failed(outcome.left)
      const now = clock.unsafeCurrentTimeMillis()
      const events = successEvents(queue.key, queue.pacer, record, outcome.right, sentAt, now)
      if (events !== undefined) for (const event of events) callbacks.emit(event)
      const completed = completedOf(record, outcome, { sentAt, receivedAt: now, attempts: 1 }, options)
      callbacks.emit({ _tag: "Completed", queue: queue.key, record: completed, ok: true })
      callbacks.done(completed)
    } catch (defect) {
      callbacks.defect(defect)
    }
    queue.pacer.poke()
  }
  disarm = queue.timeout.arm(sentAt, () => {
    if (finished) return
    cancel?.()
    finish(Either.left(timeoutError(options.timeout)))
  })
  try {
    const started = call(finish)
    // (an answer given at once needs no cancel)
    if (!finished) cancel = started
  } catch (defect) {
    finish(Either.left(new PermanentError({ reason: "internal", message: `the ${record.api} provider failed: ${String(defect)}` })))
  }
  return () => {
    finished = true
    disarm?.()
    cancel?.()
  }
}

/** A pacer's options from a queue's limits and the run's backoff. */
export const pacerOptions = (
  limits: { readonly tokensPerMinute?: number | undefined; readonly concurrency?: number | undefined },
  options: PacerDefaults | undefined
): Pacer.PacerOptions => ({
  tokensPerMinute: limits.tokensPerMinute,
  concurrency: limits.concurrency,
  rateLimitBackoff: options?.rateLimitBackoff,
  adaptiveRate: options?.adaptiveRate
})

/** What a run's options say about every queue's pacer. */
export interface PacerDefaults {
  readonly rateLimitBackoff?: Pacer.RateLimitBackoff | undefined
  readonly adaptiveRate?: Pacer.AdaptiveRate | false | undefined
}


/**
 * Where a request goes: its queue key and that queue's limits.
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
 * limits are the ones its first request's route brought.
 */
export const pacerPool = (
  scope: Scope.Scope,
  options?: PacerDefaults
): Effect.Effect<PacerPool> =>
  Effect.sync(() => {
    const pacers = new Map<string, Pacer.Pacer>()
    const making = new Map<string, Effect.Effect<Pacer.Pacer>>()
    const pacerFor = (route: Route) => {
      const known = pacers.get(route.key)
      if (known !== undefined) return Effect.succeed(known)
      let pending = making.get(route.key)
      if (pending === undefined) {
        pending = Effect.runSync(Effect.cached(
          Pacer.make(route.queriesPerMinute, pacerOptions(route, options)).pipe(
            Scope.extend(scope),
            Effect.tap((pacer) => Effect.sync(() => pacers.set(route.key, pacer)))
          )
        ))
        making.set(route.key, pending)
      }
      return pending
    }
    return Object.assign(pacerFor, { all: () => [...pacers.values()], made: (key: string) => pacers.get(key) })
  })

/**
 * The pacer of a route, made on first use; `all` lists those made so far, and `made` gives a
 * queue's if it is made.
 */
export type PacerPool = ((route: Route) => Effect.Effect<Pacer.Pacer>) & {
  readonly all: () => ReadonlyArray<Pacer.Pacer>
  readonly made: (key: string) => Pacer.Pacer | undefined
}
