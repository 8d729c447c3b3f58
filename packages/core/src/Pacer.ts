/**
 * Pacing: one send every `60 / qpm` seconds, the first at once, anchored to the clock.
 *
 * Sleeping a fixed interval between sends drifts (every timer fires a little late and the
 * delays add up), so the slots are a grid `start + k * interval` and a late tick is caught up
 * instead of lost. Only a short lag (`catchUpMs`) is caught up: after an idle spell the grid
 * restarts at the current time, so a queue never bursts to make up time it spent waiting for
 * work.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Queue, Schedule, type Scope } from "effect"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"

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
      // on the grid, or up to `catchUpMs` behind it (caught up now); further behind is an idle
      // spell, and the grid restarts at `now`
      const at = state.next === undefined || now - state.next > catchUpMs ? now : state.next
      return Effect.succeed([
        { next: at + intervalMs, count: state.count + 1 },
        state.count,
        ScheduleDecision.continueWith(ScheduleInterval.after(at))
      ] as const)
    }
  )

/**
 * A queue's pacer: `take` waits for this queue's next send slot. Callers are served strictly
 * in the order they asked, so a retry waits for one slot, not for a round of other prompts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pacer {
  readonly take: Effect.Effect<void>
}

/**
 * Makes a pacer for a rate in queries per minute. A fiber in the scope hands out the slots.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  queriesPerMinute: number,
  catchUpMs: number = defaultCatchUpMs
): Effect.Effect<Pacer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const driver = yield* Schedule.driver(slots(intervalMillis(queriesPerMinute), catchUpMs))
    const waiting = yield* Queue.unbounded<Deferred.Deferred<void>>()
    // `slots` never ends, so `next` cannot fail
    yield* Queue.take(waiting).pipe(
      Effect.tap(() => Effect.orDie(driver.next(undefined))),
      Effect.flatMap((waiter) => Deferred.succeed(waiter, undefined)),
      Effect.forever,
      Effect.forkScoped
    )
    const take = Effect.flatMap(Deferred.make<void>(), (waiter) =>
      Effect.zipRight(Queue.offer(waiting, waiter), Deferred.await(waiter)))
    return { take }
  })
