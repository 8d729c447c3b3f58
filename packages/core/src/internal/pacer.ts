/**
 * Pacing: one send every `60 / qpm` seconds, the first at once, anchored to the clock.
 *
 * Sleeping a fixed interval between sends drifts (every timer fires a little late and the
 * delays add up), so the slots are a grid `start + k * interval` and late slots are caught up
 * instead of lost. Catching up never bursts: while behind, slots are handed out at most
 * `1 + catchUpSurplus` times as fast as the rate (a quarter faster by default), so a queue that
 * stalled for 20 ms (a busy event loop, a garbage collection) makes up those sends over the
 * next 80 ms rather than all at once. A lag longer than `catchUpMs` (25 ms) is an idle spell,
 * not a stall: the grid restarts at the current time, so a queue never makes up time it spent
 * waiting for work, and no window of a second carries more than a few sends above the rate.
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
import * as TokenBudget from "../TokenBudget.js"

/**
 * The longest lag that is caught up; a longer one restarts the grid.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCatchUpMs = 25

/**
 * How much faster than its rate a queue may send while it catches up (0.25: a quarter).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCatchUpSurplus = 0.25

/**
 * The interval between sends for a rate in queries per minute.
 *
 * @since 0.1.0
 * @category utils
 */
export const intervalMillis = (queriesPerMinute: number): number => 60_000 / queriesPerMinute

/**
 * Where the pacing grid stands: when the next slot is due on the grid (`undefined` before the
 * first), and the earliest time for the next slot while catching up (`pace`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Grid {
  readonly due: number | undefined
  readonly pace: number
}

/**
 * How a queue catches up: the longest lag caught up (`catchUpMs`), how much faster than its
 * rate it may send meanwhile (`catchUpSurplus`), and how late a slot may be handed out at
 * once, a late timer's tick (`lateToleranceMs`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CatchUp {
  readonly catchUpMs?: number | undefined
  readonly catchUpSurplus?: number | undefined
  readonly lateToleranceMs?: number | undefined
}

/**
 * How late a slot may be handed out at once (a timer's tick is about a millisecond late).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLateToleranceMs = 2

/**
 * The next slot at time `now`: when it is handed out (`at`; wait until then when it is later
 * than `now`), and the grid once it has been. On the grid; while more than `lateToleranceMs`
 * behind it, every `intervalMs / (1 + catchUpSurplus)` until back on it; after a lag of more
 * than `catchUpMs` (an idle spell) at `now`, the grid restarting there. So in any stretch of
 * time `t` a queue sends at most `(t + lateToleranceMs) * (1 + catchUpSurplus) / intervalMs + 1`
 * requests, and in all at most what its grid allows.
 *
 * @since 0.1.0
 * @category utils
 */
export const nextSlot = (
  grid: Grid,
  now: number,
  intervalMs: number,
  options: CatchUp = {}
): { readonly at: number; readonly grid: Grid } => {
  const {
    catchUpMs = defaultCatchUpMs,
    catchUpSurplus = defaultCatchUpSurplus,
    lateToleranceMs = defaultLateToleranceMs
  } = options
  const spacing = intervalMs / (1 + catchUpSurplus)
  if (grid.due === undefined || now - grid.due > catchUpMs) {
    return { at: now, grid: { due: now + intervalMs, pace: now + spacing } }
  }
  // more than the tolerance behind: the catch-up pace starts from now, not from the past
  const at = Math.max(grid.due, grid.pace, now - lateToleranceMs)
  return { at, grid: { due: grid.due + intervalMs, pace: at + spacing } }
}

/**
 * The grid before the first slot.
 *
 * @since 0.1.0
 * @category constructors
 */
export const emptyGrid: Grid = { due: undefined, pace: Number.NEGATIVE_INFINITY }

/**
 * The send slots of one queue as a `Schedule`: each step waits for the next slot on the
 * clock-anchored grid (see `nextSlot`) and outputs the slot's index.
 *
 * @since 0.1.0
 * @category schedules
 */
export const slots = (intervalMs: number, options: CatchUp = {}): Schedule.Schedule<number, unknown> =>
  Schedule.makeWithState<{ readonly grid: Grid; readonly count: number }, unknown, number>(
    { grid: emptyGrid, count: 0 },
    (now, _, state) => {
      const slot = nextSlot(state.grid, now, intervalMs, options)
      return Effect.succeed([
        { grid: slot.grid, count: state.count + 1 },
        state.count,
        ScheduleDecision.continueWith(ScheduleInterval.after(slot.at))
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
  /** `take` ahead of every caller waiting in `take` (retries, later steps of a line). */
  readonly takeUrgent: Effect.Effect<void>
  /**
   * Lets every caller waiting for a slot go at once, and every later one too: for a stop, where
   * the callers only want to learn that they will not be sent.
   */
  readonly release: Effect.Effect<void>
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
export interface PacerOptions extends CatchUp {
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
    const { concurrency, rateLimitBackoff = defaultRateLimitBackoff, tokensPerMinute, ...rest } =
      typeof options === "number" ? { catchUpMs: options } : options
    const catchUp: CatchUp = rest
    const interval = intervalMillis(queriesPerMinute)
    const state = {
      grid: emptyGrid,
      pausedUntil: 0,
      pauseStartedAt: Number.NEGATIVE_INFINITY,
      level: 0
    }
    // the grid restarts at the end of a pause: no slot is due before it
    const restartAfterPause = () => {
      const { due } = state.grid
      if (due !== undefined && state.pausedUntil > due) state.grid = { ...state.grid, due: state.pausedUntil }
    }
    // waits for the next slot and claims it; a pause that begins meanwhile is honoured, and the
    // grid restarts at its end
    const claimNext = Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        restartAfterPause()
        if (now < state.pausedUntil) {
          yield* Effect.sleep(state.pausedUntil - now)
          continue
        }
        const slot = nextSlot(state.grid, now, interval, catchUp)
        if (slot.at > now) {
          yield* Effect.sleep(slot.at - now)
          continue
        }
        state.grid = slot.grid
        return
      }
    })
    // callers wait in line for the fiber that hands out the slots: urgent ones (retries, the
    // later steps of a line already started) before the others, each line in the order it
    // formed. `signal` carries one item per waiter; `queued` counts the callers in line or being
    // served, so a caller that finds none may claim a slot that is due already without the
    // hand-off (at a high rate, most slots)
    const signal = yield* Queue.unbounded<void>()
    const urgent: Array<Deferred.Deferred<void>> = []
    const normal: Array<Deferred.Deferred<void>> = []
    let queued = 0
    // the waiter served next is chosen before its slot is waited for: one already waiting for
    // a slot keeps it
    let serving: Deferred.Deferred<void> | undefined
    let released = false
    yield* Queue.take(signal).pipe(
      Effect.flatMap(() => {
        serving = urgent.shift() ?? normal.shift()
        // after `release` the lines are empty and their signals are left over
        if (serving === undefined || released) return Effect.void
        const waiter = serving
        return Effect.zipRight(claimNext, Deferred.succeed(waiter, undefined))
      }),
      Effect.zipRight(Effect.sync(() => queued--)),
      Effect.forever,
      Effect.forkScoped
    )
    const claimDue = (now: number): boolean => {
      if (queued > 0 || now < state.pausedUntil) return false
      restartAfterPause()
      const slot = nextSlot(state.grid, now, interval, catchUp)
      if (slot.at > now) return false
      state.grid = slot.grid
      return true
    }
    const takeFrom = (line: Array<Deferred.Deferred<void>>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        released || claimDue(now) ? Effect.void : Effect.flatMap(Deferred.make<void>(), (waiter) => {
          queued++
          line.push(waiter)
          return Effect.zipRight(Queue.offer(signal, undefined), Deferred.await(waiter))
        }))
    const take = takeFrom(normal)
    const takeUrgent = takeFrom(urgent)
    const release = Effect.suspend(() => {
      released = true
      const waiting = [...(serving === undefined ? [] : [serving]), ...urgent.splice(0), ...normal.splice(0)]
      return Effect.forEach(waiting, (waiter) => Deferred.succeed(waiter, undefined), { discard: true })
    })

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
      takeUrgent,
      release,
      pause,
      pauseFor,
      pausedUntil: Effect.sync(() => state.pausedUntil),
      rateLimited,
      succeeded,
      inFlight,
      tokens
    }
  })
