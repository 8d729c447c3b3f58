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
import { missingProviderMessage, type Provider } from "../Provider.js"
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
  emit: (event: SchedulerEvent) => Effect.Effect<void> = options.onEvent ?? (() => Effect.void)
): Effect.Effect<CompletedRecord> =>
  Effect.gen(function*() {
    const provider = registry.get(record.api)
    const timeout = Duration.decode(options.timeout)
    const onTimeout = () => new RequestTimeoutError({ message: `no response within ${Duration.format(timeout)}` })
    const { pacer } = queue
    const estimate = pacer.tokens === undefined ? 0 : TokenBudget.estimate(record)
    let attempts = 0
    let sentAt = 0
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
      change === undefined ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (at) =>
        emit({
          _tag: "RateChanged",
          queue: queue.key,
          at,
          queriesPerMinute: change.queriesPerMinute,
          configured: change.configured,
          reason: change.reason
        }))
    // the API's own count of what is left slows the queue before it answers "slow down"
    const readHeaders = (info: RateLimitInfo | undefined, usage: ProviderResponse["usage"]): Effect.Effect<void> => {
      if (info === undefined) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const hints = rateHints(info, now, TokenBudget.usedTokens(usage) ?? TokenBudget.estimate(record))
        return hints.length === 0 ? Effect.void : Effect.flatMap(pacer.hint(hints), (hinted) => reportRate(hinted.rate))
      })
    }
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
      // the first attempt was admitted before this record left its queue; a retry is admitted anew
      if (attempts === 0) return send
      if (options.stopping?.() === true) return Effect.fail(stoppedError)
      return Effect.zipRight(admit(record, pacer, true), send)
    }).pipe(
      Effect.tap((response) =>
        Effect.zipRight(
          Effect.flatMap(pacer.succeeded(sentAt), reportRate),
          readHeaders(response.rateLimit, response.usage)
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
              yield* readHeaders(error.rateLimit, undefined)
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
    const answered = withResponse(record, outcome, { sentAt, receivedAt, attempts, maxAttempts: options.maxAttempts })
    const completed = options.price === undefined || Either.isLeft(outcome)
      ? answered
      : Object.assign(answered, { cost: options.price(answered) })
    yield* emit({ _tag: "Completed", queue: queue.key, record: completed, ok: Either.isRight(outcome) })
    return completed
  })

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
    return Object.assign(pacerFor, { all: () => [...pacers.values()] })
  })

/** The pacer of a route, made on first use; `all` lists those made so far. */
export type PacerPool = ((route: Route) => Effect.Effect<Pacer.Pacer>) & { readonly all: () => ReadonlyArray<Pacer.Pacer> }
