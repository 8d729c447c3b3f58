/**
 * Waiting for an instant closer than Node's timers allow: they count whole milliseconds and
 * fire up to 2 ms late, so the last `pollWithinMs` before the instant are waited by checking
 * the clock at every turn of the event loop (`setImmediate`). The pacer waits for a slot this
 * way at a high rate (see `pacer.ts`); the bench's bare references under the bound do too.
 *
 * @since 0.1.0
 */

/**
 * How close to a slot the live clock's wait stops relying on a timer (see `pollUntil`).
 *
 * @since 0.1.0
 * @category constants
 */
export const pollWithinMs = 2

/**
 * What a polling wait runs on: a clock in milliseconds and the event loop's two callbacks, a
 * timer and the next turn (`setImmediate`); each returns how to cancel it.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventLoop {
  readonly now: () => number
  readonly timer: (callback: () => void, ms: number) => () => void
  readonly nextTurn: (callback: () => void) => () => void
}

/**
 * Node's event loop and `performance.now()`.
 *
 * @since 0.1.0
 * @category constants
 */
export const nodeEventLoop: EventLoop = {
  now: () => performance.now(),
  timer: (callback, ms) => {
    const handle = setTimeout(callback, ms)
    return () => clearTimeout(handle)
  },
  nextTurn: (callback) => {
    const handle = setImmediate(callback)
    return () => clearImmediate(handle)
  }
}

/**
 * Waits until `until` on `loop`, then calls `done` once: a timer up to `pollWithinMs` before,
 * then a check at every turn of the event loop. `poke` checks at once (between two turns: an
 * answer's callback); `cancel` ends the wait without calling `done`.
 *
 * @since 0.1.0
 * @category utils
 */
export const pollUntil = (
  until: number,
  loop: EventLoop,
  done: () => void
): { readonly poke: () => void; readonly cancel: () => void } => {
  let planned: (() => void) | undefined
  let over = false
  const cancel = () => {
    over = true
    planned?.()
    planned = undefined
  }
  // the time left, the wait over when none is
  const check = (): number => {
    if (over) return 0
    const left = until - loop.now()
    if (left <= 0) {
      cancel()
      done()
    }
    return left
  }
  const plan = () => {
    planned = undefined
    const left = check()
    if (left <= 0) return
    planned = left > pollWithinMs ? loop.timer(plan, left - pollWithinMs) : loop.nextTurn(plan)
  }
  plan()
  return { poke: () => void check(), cancel }
}

