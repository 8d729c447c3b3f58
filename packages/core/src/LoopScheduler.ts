/**
 * An Effect scheduler that lets Node's event loop in at least every few milliseconds.
 *
 * Effect's default scheduler runs ready fibers in microtasks for up to 2,048 rounds before it
 * gives the event loop a turn, and while microtasks run no timer fires and no socket is read.
 * A run with a thousand requests in flight always has ready fibers, so the pacer's timers fired
 * tens of milliseconds late: at 1,000 requests a second that is tens of sends late at once.
 * This scheduler runs fibers the same way (microtasks, by priority) but for at most `sliceMs`
 * at a stretch, then continues after the event loop's pending I/O and timers (`setImmediate`,
 * which unlike `setTimeout(0)` adds no millisecond of its own).
 *
 * The CLI runs under it; a program can too: `Effect.withScheduler(LoopScheduler.make())`.
 *
 * @since 0.1.0
 */
import { Scheduler } from "effect"

/**
 * The longest stretch of fibers between two turns of the event loop, by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSliceMs = 2

/**
 * Makes the scheduler.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (sliceMs: number = defaultSliceMs): Scheduler.Scheduler => {
  // when the current stretch of microtask rounds began (-1: none open)
  let sliceStart = -1
  const closeSlice = () => {
    sliceStart = -1
  }
  const runner = new Scheduler.SchedulerRunner((depth, drain) => {
    const now = performance.now()
    if (sliceStart < 0) {
      sliceStart = now
      // the stretch ends with this turn of the event loop
      setImmediate(closeSlice)
    }
    if (now - sliceStart < sliceMs) {
      queueMicrotask(() => drain(depth + 1))
    } else {
      setImmediate(() => drain(0))
    }
  })
  return Scheduler.make((task, priority) => runner.scheduleTask(task, priority))
}
