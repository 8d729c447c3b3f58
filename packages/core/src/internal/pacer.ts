/**
 * Pacing: one send every `60 / qpm` seconds, the first at once, anchored to the clock, and never
 * more than the rate allows in any window.
 *
 * Sleeping a fixed interval between sends drifts (every timer fires a little late and the
 * delays add up), so the slots are a grid `start + k * interval` and a slot handed out a little
 * late does not push the next one back. A lag longer than `catchUpMs` (25 ms) is an idle spell,
 * not a stall: the grid restarts at the current time, so a queue never makes up time it spent
 * waiting for work.
 *
 * The grid proposes, a hard bound disposes (`SendBound`): at the queue's configured rate, any
 * half-open window of 1 s or longer holds at most `ceil(window / interval)` sends, and a shorter
 * window of `k` intervals at most `k + 1` (see `allowedSends`). So a stall (a busy event loop, a
 * garbage collection) is caught up only within that bound: one slot at once, the rest lost,
 * because a window that reaches back to before the stall is already full.
 *
 * A pacer can be paused (the API said "slow down"): no slot is handed out before the pause
 * ends, and the grid restarts at its end, so the queue resumes at its rate without a burst of
 * catch-up sends. Its rate also adapts (AIMD, as TCP's window does): each "slow down" episode
 * lowers the rate the grid runs at multiplicatively, each success raises it additively back
 * towards the configured rate, and the API's own count of requests left (`hint`) caps it until
 * that count resets. A pacer also holds its queue's other limits, when it has them: requests in
 * flight (`inFlight`) and tokens per minute (`tokens`).
 *
 * @since 0.1.0
 */
import { Clock, Deferred, Duration, Effect, Queue, Random, Schedule, type Scope } from "effect"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as TokenBudget from "../TokenBudget.js"
import * as PreciseWait from "./preciseWait.js"

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
 * clock-anchored grid (see `nextSlot`) and outputs the slot's index. The grid alone: a pacer
 * (`make`) also holds its slots to the hard bound (`SendBound`).
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

// ---------------------------------------------------------------------------------------------
// the hard bound
// ---------------------------------------------------------------------------------------------

/** Times closer than this (a nanosecond) are the same time: float sums of intervals differ in the last bits. */
const epsilonMs = 1e-6

const liveClock = Clock.make()

/**
 * The clock in milliseconds with their fraction, for the times the slots are claimed at: at a
 * rate of more than a send a millisecond, the live clock's whole milliseconds would put every
 * send of a millisecond at the same instant, where the bound allows two, and the queue would
 * send about a thousand a second whatever its rate. The live clock's `currentTimeNanos` is its
 * high-resolution time since the epoch; any other clock (a test's `TestClock`, whose instants
 * may have fractions already) is read as it is.
 */
const preciseMillis: Effect.Effect<number> = Effect.clockWith((clock) => Effect.sync(() => preciseNow(clock)))

/**
 * `clock`'s time as the pacer reads it, at once: in milliseconds with their fraction (see above).
 *
 * @since 0.1.0
 * @category utils
 */
export const preciseNow = (clock: Clock.Clock): number =>
  clock.constructor === liveClock.constructor ? Number(clock.unsafeCurrentTimeNanos()) / 1_000_000 : clock.unsafeCurrentTimeMillis()

/**
 * The intervals short enough for a wait that polls the event loop (see `waitForSlot`): below
 * this, a timer's lateness costs slots.
 *
 * @since 0.1.0
 * @category constants
 */
export const pollBelowIntervalMs = 4

/**
 * Waits `ms` for a slot of a queue whose interval is `intervalMs`. On the live clock at a short
 * interval, the last `pollWithinMs` are waited by polling the event loop (`PreciseWait`) instead
 * of a timer: Node's timers count whole milliseconds and fire up to 2 ms late, and under the hard
 * bound (one missed slot made up, no more) a wake 2 intervals late loses a slot. At a
 * millisecond's interval that lost about 8 % of the slots even for a bare undici client, and
 * polling brought it to about 2 %. Polling spends the idle CPU of those last milliseconds, so
 * only fast queues do it. While it waits, `waiting.poke` checks the time at once.
 */
const waitForSlot = (ms: number, intervalMs: number, waiting: { poke: (() => void) | undefined }): Effect.Effect<void> =>
  intervalMs >= pollBelowIntervalMs
    ? Effect.sleep(ms)
    : Effect.clockWith((clock) =>
      clock.constructor !== liveClock.constructor
        ? Effect.sleep(ms)
        : Effect.async<void>((resume) => {
          const wait = PreciseWait.pollUntil(PreciseWait.nodeEventLoop.now() + ms, PreciseWait.nodeEventLoop, () => {
            waiting.poke = undefined
            resume(Effect.void)
          })
          waiting.poke = wait.poke
          return Effect.sync(() => {
            waiting.poke = undefined
            wait.cancel()
          })
        })
    )

/**
 * The most sends that any half-open window of `windowMs` may hold at a rate of one send every
 * `intervalMs`: `ceil(windowMs / intervalMs)` for a window of 1 s or longer, what a perfect grid
 * puts in it; for a shorter window, one more (a window of `k` intervals holds `k + 1`: a slot
 * caught up after a stall), but never more than a whole second holds.
 *
 * @since 0.1.0
 * @category utils
 */
export const allowedSends = (windowMs: number, intervalMs: number): number => {
  const intervals = Math.ceil(windowMs / intervalMs - epsilonMs)
  return windowMs >= 1000 ? intervals : Math.min(intervals + 1, Math.ceil(1000 / intervalMs - epsilonMs))
}

/**
 * The hard bound on one queue's sends (`allowedSends` at its configured rate), kept as two
 * conditions on the next send, each O(1):
 *
 * - short windows (`k + 1` in `k` intervals): a send at most one interval ahead of the sends
 *   before it, a token bucket of two slots (`earliest = max(earliest + interval, sent)`). The
 *   bucket refills at the interval in force (the adapted rate, never faster than the configured
 *   one), so it bounds a lowered rate's bursts too;
 * - windows of a second or longer (`ceil(W / interval)`): with `N` the sends a second allows and
 *   `a_j = sent_j - j * interval`, the n-th send needs `a_n >= a_j` for every `j <= n - N`, the
 *   largest of them kept in a ring of the last `N` values (or of blocks of them, at more than
 *   1,024 a second: then windows of at least `N - block + 1` intervals are held to `k`, stricter).
 *
 * @since 0.1.0
 * @category models
 */
export interface SendBound {
  /** The earliest time the next send may go (clock milliseconds; `-Infinity` at first). */
  readonly earliest: () => number
  /** A send went at `at`, the rate's interval then being `intervalMs` (at least the configured one). */
  readonly record: (at: number, intervalMs: number) => void
}

/** The most blocks the long-window ring holds (so memory stays small at any rate). */
const maxBlocks = 1024

/**
 * The hard bound at a rate in queries per minute (see `SendBound`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const sendBound = (queriesPerMinute: number): SendBound => {
  const interval = intervalMillis(queriesPerMinute)
  const perSecond = Math.max(1, Math.ceil(1000 / interval - epsilonMs))
  const block = Math.ceil(perSecond / maxBlocks)
  const ring = new Float64Array(Math.ceil(perSecond / block) + 2)
  let count = 0
  let bucket = Number.NEGATIVE_INFINITY
  // the largest `a_j` of the blocks that are `perSecond` sends or more behind the next send
  let floor = Number.NEGATIVE_INFINITY
  let retired = -1
  return {
    earliest: () => {
      if (count < perSecond) return bucket
      const reached = Math.floor((count - perSecond) / block)
      while (retired < reached) {
        retired++
        floor = Math.max(floor, ring[retired % ring.length]!)
      }
      return Math.max(bucket, floor + count * interval)
    },
    record: (at, intervalMs) => {
      const a = at - count * interval
      const slot = Math.floor(count / block) % ring.length
      ring[slot] = count % block === 0 ? a : Math.max(ring[slot]!, a)
      bucket = Math.max(bucket + Math.max(intervalMs, interval), at)
      count++
    }
  }
}

// ---------------------------------------------------------------------------------------------
// "slow down": pauses and backoff
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// the adaptive rate
// ---------------------------------------------------------------------------------------------

/**
 * How a queue's effective rate adapts (AIMD): a "slow down" answer multiplies it by `decrease`,
 * at most once per episode (answers to requests sent before the last decrease belong to it);
 * each success of a request sent after the last decrease adds `increase` times the configured
 * rate; it stays between `floor` times the configured rate (and at least 1 QPM) and the
 * configured rate itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface AdaptiveRate {
  readonly decrease?: number | undefined
  readonly increase?: number | undefined
  readonly floor?: number | undefined
}

/**
 * × 0.7 per episode (TCP CUBIC's factor: gentler than halving, so one stray 429 costs little).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDecrease = 0.7

/**
 * + 1/400 of the configured rate per success.
 *
 * Why this step: a queue settles just under the rate at which the API starts answering "slow
 * down", and the step sets how often it probes above it. From ×0.7 back to where it was too high
 * takes 0.3 / 0.0025 = 120 successes at the configured rate, and 30 when the limit is a fourth
 * of it; each episode costs the 429s then in flight. Measured in `Scheduler.test.ts` (1,200 QPM
 * configured, an API allowing 300): 429s make 1-3 % of the requests against a sliding window or
 * a token bucket; 1/200 gave up to 4.2 %, 1/1,000 about 1 %. The other side: a 429 at random in
 * every 50 requests (an overloaded moment, not a limit) holds a queue at about a quarter of its
 * rate with this step (1/1,000: a tenth; 1/200: nearly half), and the floor is 400 successes
 * from the full rate.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultIncrease = 1 / 400

/**
 * The lowest effective rate, a fraction of the configured one: five halvings, 1/64 (and never
 * below 1 QPM unless the configured rate is).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultFloor = 1 / 64

/**
 * A change of a queue's effective rate worth reporting (see `Pacer`): the new rate and why.
 * `rate_limited`: a "slow down" lowered it; `recovering`: successes raised it; `headers`: the
 * API's count of requests left (`hint`) capped it, or its cap was lifted.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateChange {
  readonly queriesPerMinute: number
  /** The queue's configured rate, the most it ever runs at. */
  readonly configured: number
  readonly reason: "rate_limited" | "recovering" | "headers"
}

/**
 * How far the effective rate moves before the move is reported, a fraction of the last reported
 * rate: a decrease always is, the recovery in about 10 steps, not one per request.
 *
 * @since 0.1.0
 * @category constants
 */
export const reportStep = 0.1

/**
 * One window of an API's limits as its headers state it, in requests (a token window is turned
 * into requests by the caller): `remaining` left, `limit` when the API states it, and `resetAt`
 * (clock milliseconds) when the window is full again.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateHint {
  readonly remaining: number
  readonly resetAt: number
  readonly limit?: number | undefined
}

/**
 * The most a hint lets a queue send, at `now`: a rate in queries per minute, or a pause until the
 * window resets; `undefined` when the hint has lapsed or says nothing.
 *
 * - With its `limit`, the window is a token bucket that refills to `limit` by `resetAt` (OpenAI's
 *   `x-ratelimit-reset-*` and Anthropic's `*-reset` both mean "fully replenished"): `remaining`
 *   now plus the `limit - remaining` that come back by `resetAt` is `limit` in that time. A full
 *   bucket resets at once, so it caps nothing; an empty one caps the queue at the bucket's refill
 *   rate, which is the rate the API sustains. So the queue slows down as the bucket drains,
 *   before the 429s start.
 * - Without it, a fixed window: `remaining` spread evenly until `resetAt`, and none left pauses
 *   the queue until then.
 *
 * @since 0.1.0
 * @category pacing
 */
export const hintCap = (
  hint: RateHint,
  now: number
): { readonly queriesPerMinute: number; readonly until: number } | { readonly pauseUntil: number } | undefined => {
  const { limit, remaining, resetAt } = hint
  if (!(resetAt > now) || !Number.isFinite(remaining) || remaining < 0) return undefined
  const windowMs = resetAt - now
  if (limit !== undefined && Number.isFinite(limit) && limit > 0) {
    return { queriesPerMinute: (Math.max(limit, remaining) * 60_000) / windowMs, until: resetAt }
  }
  const left = Math.floor(remaining)
  return left === 0 ? { pauseUntil: resetAt } : { queriesPerMinute: (left * 60_000) / windowMs, until: resetAt }
}

// ---------------------------------------------------------------------------------------------
// the pacer
// ---------------------------------------------------------------------------------------------

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
  /**
   * The backoff level: consecutive "slow down" answers without `retry-after` since the last
   * success (1 for the first); a `retry_after` pause leaves it as it was (0: none).
   */
  readonly level: number
  /** The queue's new effective rate, when this answer lowered it. */
  readonly rate: RateChange | undefined
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
   * `take` at once, outside any fiber, at `now` (`preciseNow`): true when a slot was due and no
   * caller was waiting (or the pacer was released), and so was taken; false leaves everything
   * as it was, for `take`.
   */
  readonly claimNow: (now: number) => boolean
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
   * Hands out the slot waited for if it is due now: for an answer's callback, so that at a high
   * rate a slot need not wait for the event loop's next turn (see `waitForSlot`).
   */
  readonly poke: () => void
  /**
   * The API answered "slow down" to a request sent at `sentAt`: pauses the queue for the
   * server's `retryAfterMs`, else for the next step of the backoff, and lowers the effective
   * rate. Answers to requests sent before the pause in force began (or before the last
   * decrease) belong to the same episode: they neither grow the backoff nor lower the rate again.
   */
  readonly rateLimited: (options: { readonly sentAt: number; readonly retryAfterMs?: number | undefined }) => Effect.Effect<Pause>
  /**
   * A request sent at `sentAt` succeeded: the backoff starts again, and when it was sent after
   * the last decrease the effective rate rises a step. Returns the new rate when the move is
   * worth reporting.
   */
  readonly succeeded: (sentAt: number) => Effect.Effect<RateChange | undefined>
  /** `succeeded` at clock time `now`, at once (for a request answered outside any fiber). */
  readonly succeededAt: (sentAt: number, now: number) => RateChange | undefined
  /**
   * What the API said about its limits (`RateHint`; several windows: the strictest counts): until
   * `resetAt` the effective rate is at most what the hint allows, and with none left in a fixed
   * window the queue pauses until `resetAt`. The latest hint replaces the one before; a hint whose
   * reset has passed is ignored. Returns the new rate when the move is worth reporting, and the
   * end of the pause when it paused.
   */
  readonly hint: (hint: RateHint | ReadonlyArray<RateHint>) => Effect.Effect<{
    readonly rate: RateChange | undefined
    readonly pausedUntil: number | undefined
  }>
  /** `hint` at clock time `now`, at once (for a request answered outside any fiber). */
  readonly hintAt: (hint: RateHint | ReadonlyArray<RateHint>, now: number) => {
    readonly rate: RateChange | undefined
    readonly pausedUntil: number | undefined
  }
  /** The effective rate in queries per minute (the configured one, adapted). */
  readonly queriesPerMinute: Effect.Effect<number>
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
  /** How the rate adapts to "slow down" answers (default: the defaults above); `false`: it does not. */
  readonly adaptiveRate?: AdaptiveRate | false | undefined
}

/**
 * The effective rate of a queue: its AIMD rate (see `AdaptiveRate`) under the cap of the API's
 * last hint while that lasts, and the last rate reported.
 */
const adaptiveRate = (configured: number, options: AdaptiveRate | false | undefined) => {
  const settings = options === false ? undefined : options
  const decrease = settings?.decrease ?? defaultDecrease
  const step = configured * (settings?.increase ?? defaultIncrease)
  const floor = Math.min(configured, Math.max(1, configured * (settings?.floor ?? defaultFloor)))
  let rate = configured
  let decreasedAt = Number.NEGATIVE_INFINITY
  let cap: { readonly queriesPerMinute: number; readonly until: number } | undefined
  let reported = configured
  const effective = (now: number) => {
    if (cap !== undefined && now >= cap.until) cap = undefined
    return cap === undefined ? rate : Math.min(rate, cap.queriesPerMinute)
  }
  // a move is reported once it is a `reportStep` from the last report, or reaches either end
  const report = (now: number, reason: RateChange["reason"]): RateChange | undefined => {
    const current = effective(now)
    const moved = Math.abs(current - reported)
    if (moved === 0 || (moved < reported * reportStep && current !== configured && current !== floor)) return undefined
    reported = current
    return { queriesPerMinute: current, configured, reason }
  }
  return {
    effective,
    /** A "slow down" answer to a request sent at `sentAt`, at `now`. */
    limited: (sentAt: number, now: number): RateChange | undefined => {
      if (options === false || sentAt < decreasedAt) return undefined
      decreasedAt = now
      rate = Math.max(floor, rate * decrease)
      return report(now, "rate_limited")
    },
    succeeded: (sentAt: number, now: number): RateChange | undefined => {
      if (options !== false && sentAt >= decreasedAt && rate < configured) rate = Math.min(configured, rate + step)
      return report(now, "recovering")
    },
    hint: (queriesPerMinute: number, until: number, now: number): RateChange | undefined => {
      cap = { queriesPerMinute, until }
      return report(now, "headers")
    }
  }
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
    const { adaptiveRate: adaptive, concurrency, rateLimitBackoff = defaultRateLimitBackoff, tokensPerMinute, ...rest } =
      typeof options === "number" ? { catchUpMs: options } : options
    const catchUp: CatchUp = rest
    const spacing = 1 / (1 + (catchUp.catchUpSurplus ?? defaultCatchUpSurplus))
    const rate = adaptiveRate(queriesPerMinute, adaptive)
    const bound = sendBound(queriesPerMinute)
    const state = {
      grid: emptyGrid,
      // the interval the grid runs at: the effective rate's
      interval: intervalMillis(queriesPerMinute),
      pausedUntil: 0,
      pauseStartedAt: Number.NEGATIVE_INFINITY,
      level: 0
    }
    // the grid follows the effective rate: its next slot moves to one new interval after the last
    const retime = (now: number) => {
      const interval = intervalMillis(rate.effective(now))
      if (interval === state.interval) return
      const { due, pace } = state.grid
      if (due !== undefined) {
        const shift = interval - state.interval
        state.grid = { due: due + shift, pace: pace + shift * spacing }
      }
      state.interval = interval
    }
    // the grid restarts at the end of a pause: no slot is due before it
    const restartAfterPause = () => {
      const { due } = state.grid
      if (due !== undefined && state.pausedUntil > due) state.grid = { ...state.grid, due: state.pausedUntil }
    }
    // when the next slot may be handed out, at `now` (not paused): on the grid, within the bound
    const nextAt = (now: number) => {
      retime(now)
      restartAfterPause()
      const slot = nextSlot(state.grid, now, state.interval, catchUp)
      return { at: Math.max(slot.at, bound.earliest()), grid: slot.grid }
    }
    const claim = (now: number, grid: Grid) => {
      state.grid = grid
      bound.record(now, state.interval)
    }
    // waits for the next slot and claims it; a pause that begins meanwhile is honoured, and the
    // grid restarts at its end
    const waiting: { poke: (() => void) | undefined } = { poke: undefined }
    const claimNext = Effect.gen(function*() {
      while (true) {
        const now = yield* preciseMillis
        if (state.pausedUntil - now > epsilonMs) {
          yield* Effect.sleep(state.pausedUntil - now)
          continue
        }
        const slot = nextAt(now)
        if (slot.at - now > epsilonMs) {
          yield* waitForSlot(slot.at - now, state.interval, waiting)
          continue
        }
        claim(now, slot.grid)
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
      if (queued > 0 || state.pausedUntil - now > epsilonMs) return false
      const slot = nextAt(now)
      if (slot.at - now > epsilonMs) return false
      claim(now, slot.grid)
      return true
    }
    const takeFrom = (line: Array<Deferred.Deferred<void>>) =>
      Effect.flatMap(preciseMillis, (now) =>
        released || claimDue(now) ? Effect.void : Effect.flatMap(Deferred.make<void>(), (waiter) => {
          queued++
          line.push(waiter)
          return Effect.zipRight(Queue.offer(signal, undefined), Deferred.await(waiter))
        }))
    const claimNow = (now: number): boolean => released || claimDue(now)
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
        // an answer to a request sent before the pause in force began: that pause covers it
        const fresh = sentAt >= state.pauseStartedAt
        const lowered = rate.limited(sentAt, now)
        if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) {
          // the server said how long: that is no step of the backoff
          const extended = extend(now + Math.max(0, retryAfterMs), now)
          return { until: state.pausedUntil, extended, reason: "retry_after", level: state.level, rate: lowered }
        }
        if (!fresh) return { until: state.pausedUntil, extended: false, reason: "backoff", level: Math.max(1, state.level), rate: lowered }
        state.level++
        const pauseMs = rateLimitPauseMillis(state.level, yield* Random.next, rateLimitBackoff)
        const extended = extend(now + pauseMs, now)
        return { until: state.pausedUntil, extended, reason: "backoff", level: state.level, rate: lowered }
      })
    // any success ends the backoff, also one sent before the pause: the API answers again
    const succeededAt = (sentAt: number, now: number) => {
      state.level = 0
      return rate.succeeded(sentAt, now)
    }
    const succeeded = (sentAt: number) => Effect.map(Clock.currentTimeMillis, (now) => succeededAt(sentAt, now))
    const hintAt: Pacer["hintAt"] = (given, now) => {
        let strictest: { readonly queriesPerMinute: number; readonly until: number } | undefined
        let pauseUntil: number | undefined
        for (const one of Array.isArray(given) ? given as ReadonlyArray<RateHint> : [given as RateHint]) {
          const cap = hintCap(one, now)
          if (cap === undefined) continue
          if ("pauseUntil" in cap) pauseUntil = Math.max(pauseUntil ?? 0, cap.pauseUntil)
          else if (strictest === undefined || cap.queriesPerMinute < strictest.queriesPerMinute) strictest = cap
        }
        // a window that is full again (or a hint that says nothing) lifts the cap of the one before
        if (strictest === undefined && pauseUntil === undefined) return { rate: rate.hint(queriesPerMinute, now, now), pausedUntil: undefined }
        const paused = pauseUntil !== undefined && extend(pauseUntil, now)
        // none left: the pause holds the queue; after it, the rate the API's window refills at is unknown
        const cap = strictest === undefined
          ? { queriesPerMinute, until: pauseUntil! }
          : { queriesPerMinute: Math.min(queriesPerMinute, strictest.queriesPerMinute), until: strictest.until }
        return { rate: rate.hint(cap.queriesPerMinute, cap.until, now), pausedUntil: paused ? state.pausedUntil : undefined }
      }
    const hint: Pacer["hint"] = (given) => Effect.map(Clock.currentTimeMillis, (now) => hintAt(given, now))
    const inFlight = concurrency === undefined || !Number.isFinite(concurrency)
      ? undefined
      : yield* Effect.makeSemaphore(Math.max(1, Math.floor(concurrency)))
    const tokens = tokensPerMinute === undefined || !Number.isFinite(tokensPerMinute) || tokensPerMinute <= 0
      ? undefined
      : yield* TokenBudget.make(tokensPerMinute)
    return {
      take,
      takeUrgent,
      claimNow,
      release,
      pause,
      pauseFor,
      pausedUntil: Effect.sync(() => state.pausedUntil),
      poke: () => waiting.poke?.(),
      rateLimited,
      succeeded,
      succeededAt,
      hint,
      hintAt,
      queriesPerMinute: Effect.map(Clock.currentTimeMillis, rate.effective),
      inFlight,
      tokens
    }
  })
