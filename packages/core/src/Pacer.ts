/**
 * Pacing: one send every `60 / qpm` seconds, the first at once, anchored to the clock.
 *
 * Sleeping a fixed interval between sends drifts (every timer fires a little late and the
 * delays add up), so the slots are a grid `start + k * interval` and a late tick is caught up
 * instead of lost. Only a short lag (`catchUpMs`) is caught up: after an idle spell the grid
 * restarts at the current time, so a queue never bursts to make up time it spent waiting for
 * work.
 *
 * A pacer can be paused (the API said "slow down"): no slot is handed out before the pause
 * ends, and the grid restarts at its end, so the queue resumes at its rate without a burst of
 * catch-up sends. A pacer also holds its queue's other limits, when it has them: requests in
 * flight (`inFlight`) and tokens per minute (`tokens`).
 *
 * @since 0.1.0
 */
import { Clock, Deferred, Duration, Effect, Queue, Random, Schedule, type Scope } from "effect"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as TokenBudget from "./TokenBudget.js"

/**
 * The longest lag that is caught up by sending at once.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCatchUpMs = 10

/**
 * The interval between sends for a rate in queries per minute.
 *
 * @since 0.1.0
 * @category utils
 */
export const intervalMillis = (queriesPerMinute: number): number => 60_000 / queriesPerMinute

/**
 * When the next slot is handed out, given when it was due (`undefined` for the first): on the
 * grid, or up to `catchUpMs` behind it (caught up now); further behind is an idle spell, and the
 * grid restarts at `now`.
 *
 * @since 0.1.0
 * @category utils
 */
export const slotAt = (due: number | undefined, now: number, catchUpMs: number = defaultCatchUpMs): number =>
  due === undefined || now - due > catchUpMs ? now : due

/**
 * The send slots of one queue as a `Schedule`: each step waits for the next slot on the
 * clock-anchored grid and outputs the slot's index.
 *
 * @since 0.1.0
 * @category schedules
 */
export const slots = (
  intervalMs: number,
  catchUpMs: number = defaultCatchUpMs
): Schedule.Schedule<number, unknown> =>
  Schedule.makeWithState<{ readonly next: number | undefined; readonly count: number }, unknown, number>(
    { next: undefined, count: 0 },
    (now, _, state) => {
      const at = slotAt(state.next, now, catchUpMs)
      return Effect.succeed([
        { next: at + intervalMs, count: state.count + 1 },
        state.count,
        ScheduleDecision.continueWith(ScheduleInterval.after(at))
      ] as const)
    }
  )

/**
 * How a pacer backs off after "slow down" answers that give no `retry-after`: the n-th
 * consecutive one pauses the queue for `min(max, initial * 2^(n-1))` with equal jitter (a
 * random point of the upper half).
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitBackoff {
  readonly initial: Duration.DurationInput
  readonly max: Duration.DurationInput
}

/**
 * 1 s, 2 s, 4 s, ... up to 60 s.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRateLimitBackoff: RateLimitBackoff = { initial: "1 second", max: "60 seconds" }

/**
 * The pause after the `level`-th consecutive "slow down" without `retry-after`, for a random
 * number `random` in [0, 1): `d / 2 + random * d / 2` where `d = min(max, initial * 2^(level-1))`.
 *
 * @since 0.1.0
 * @category utils
 */
export const rateLimitPauseMillis = (
  level: number,
  random: number,
  backoff: RateLimitBackoff = defaultRateLimitBackoff
): number => {
  const initial = Duration.toMillis(backoff.initial)
  const max = Duration.toMillis(backoff.max)
  const ceiling = Math.min(max, initial * 2 ** Math.max(0, level - 1))
  return Math.round(ceiling / 2 + (random * ceiling) / 2)
}

/**
 * What a "slow down" answer did to the queue.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pause {
  /** The end of the pause now in force (clock milliseconds; in the past when there is none). */
  readonly until: number
  /** Whether this answer started or lengthened the pause. */
  readonly extended: boolean
  /** `retry_after` when the server said how long, `backoff` otherwise. */
  readonly reason: "retry_after" | "backoff"
  /** Consecutive "slow down" answers so far (1 for the first since a success). */
  readonly level: number
}

/**
 * A queue's pacer: `take` waits for this queue's next send slot. Callers are served strictly
 * in the order they asked, so a retry waits for one slot, not for a round of other prompts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pacer {
  readonly take: Effect.Effect<void>
  /**
   * Hands out no slot before `untilMillis` (clock time). A later pause extends the one in
   * force, an earlier one does not shorten it. Returns the end of the pause in force.
   */
  readonly pause: (untilMillis: number) => Effect.Effect<number>
  /** `pause` for a duration from now. */
  readonly pauseFor: (duration: Duration.DurationInput) => Effect.Effect<number>
  /** The end of the pause in force (in the past when there is none). */
  readonly pausedUntil: Effect.Effect<number>
  /**
   * The API answered "slow down" to a request sent at `sentAt`: pauses the queue for the
   * server's `retryAfterMs`, else for the next step of the backoff. Answers to requests sent
   * before the pause in force began belong to the same episode: they do not grow the backoff.
   */
  readonly rateLimited: (options: { readonly sentAt: number; readonly retryAfterMs?: number | undefined }) => Effect.Effect<Pause>
  /** A request sent at `sentAt` succeeded: when it was sent after the last pause began, the backoff starts again. */
  readonly succeeded: (sentAt: number) => Effect.Effect<void>
  /** The cap on requests in flight, when the queue has one (a permit per attempt, send to response). */
  readonly inFlight?: Effect.Semaphore | undefined
  /** The tokens-per-minute budget, when the queue has one. */
  readonly tokens?: TokenBudget.TokenBudget | undefined
}

/**
 * Options of a pacer beyond its rate.
 *
 * @since 0.1.0
 * @category models
 */
export interface PacerOptions {
  readonly catchUpMs?: number | undefined
  /** Tokens per minute (a `TokenBudget`); none unless a positive, finite number. */
  readonly tokensPerMinute?: number | undefined
  /** Requests in flight at most (rounded down, at least 1); none when infinite. */
  readonly concurrency?: number | undefined
  readonly rateLimitBackoff?: RateLimitBackoff | undefined
}

/**
 * Makes a pacer for a rate in queries per minute. A fiber in the scope hands out the slots.
 * The second argument is the catch-up window in milliseconds, or `PacerOptions`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  queriesPerMinute: number,
  options: number | PacerOptions = {}
): Effect.Effect<Pacer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { catchUpMs = defaultCatchUpMs, concurrency, rateLimitBackoff = defaultRateLimitBackoff, tokensPerMinute } =
      typeof options === "number" ? { catchUpMs: options } : options
    const interval = intervalMillis(queriesPerMinute)
    const state = {
      /** when the next slot is due (`undefined` before the first) */
      due: undefined as number | undefined,
      pausedUntil: 0,
      pauseStartedAt: Number.NEGATIVE_INFINITY,
      level: 0
    }
    // waits for the next slot and claims it; a pause that begins meanwhile is honoured, and the
    // grid restarts at its end
    const nextSlot = Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        // the grid restarts at the end of a pause: no slot is due before it
        if (state.due !== undefined && state.pausedUntil > state.due) state.due = state.pausedUntil
        if (now < state.pausedUntil) {
          yield* Effect.sleep(state.pausedUntil - now)
          continue
        }
        const at = slotAt(state.due, now, catchUpMs)
        if (at > now) {
          yield* Effect.sleep(at - now)
          continue
        }
        state.due = at + interval
        return
      }
    })
    const waiting = yield* Queue.unbounded<Deferred.Deferred<void>>()
    // callers wait in line for the fiber that hands out the slots; `queued` counts the callers
    // in line or being served, so a caller that finds none may claim a slot that is due already
    // without the hand-off (at a high rate, most slots)
    let queued = 0
    yield* Queue.take(waiting).pipe(
      Effect.tap(() => nextSlot),
      Effect.flatMap((waiter) => Deferred.succeed(waiter, undefined)),
      Effect.zipRight(Effect.sync(() => queued--)),
      Effect.forever,
      Effect.forkScoped
    )
    const claimDue = (now: number): boolean => {
      if (queued > 0 || now < state.pausedUntil) return false
      if (state.due !== undefined && state.pausedUntil > state.due) state.due = state.pausedUntil
      const at = slotAt(state.due, now, catchUpMs)
      if (at > now) return false
      state.due = at + interval
      return true
    }
    const take = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      claimDue(now) ? Effect.void : Effect.flatMap(Deferred.make<void>(), (waiter) => {
        queued++
        return Effect.zipRight(Queue.offer(waiting, waiter), Deferred.await(waiter))
      }))

    const extend = (until: number, now: number): boolean => {
      if (!(until > state.pausedUntil) || until <= now) return false
      // a pause that starts when none is in force marks a new episode
      if (state.pausedUntil <= now) state.pauseStartedAt = now
      state.pausedUntil = until
      return true
    }
    const pause = (untilMillis: number) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        extend(untilMillis, now)
        return state.pausedUntil
      })
    const pauseFor = (duration: Duration.DurationInput) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => pause(now + Duration.toMillis(duration)))
    const rateLimited: Pacer["rateLimited"] = ({ retryAfterMs, sentAt }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const fresh = sentAt >= state.pauseStartedAt
        if (fresh) state.level++
        const level = Math.max(1, state.level)
        if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) {
          const extended = extend(now + Math.max(0, retryAfterMs), now)
          return { until: state.pausedUntil, extended, reason: "retry_after", level }
        }
        // an answer to a request sent before the pause in force began: that pause covers it
        if (!fresh) return { until: state.pausedUntil, extended: false, reason: "backoff", level }
        const pauseMs = rateLimitPauseMillis(level, yield* Random.next, rateLimitBackoff)
        const extended = extend(now + pauseMs, now)
        return { until: state.pausedUntil, extended, reason: "backoff", level }
      })
    const succeeded = (sentAt: number) =>
      Effect.sync(() => {
        if (sentAt >= state.pauseStartedAt) state.level = 0
      })
    const inFlight = concurrency === undefined || !Number.isFinite(concurrency)
      ? undefined
      : yield* Effect.makeSemaphore(Math.max(1, Math.floor(concurrency)))
    const tokens = tokensPerMinute === undefined || !Number.isFinite(tokensPerMinute) || tokensPerMinute <= 0
      ? undefined
      : yield* TokenBudget.make(tokensPerMinute)
    return {
      take,
      pause,
      pauseFor,
      pausedUntil: Effect.sync(() => state.pausedUntil),
      rateLimited,
      succeeded,
      inFlight,
      tokens
    }
  })
