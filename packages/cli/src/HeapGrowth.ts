/**
 * How far V8 lets the heap grow between full collections, held in check once the heap is
 * large. A run allocates fast and keeps little (its requests in flight and a window of the
 * file), and V8 sizes the next collection's limit from how fast the program allocates: up to
 * four times the live heap. A 300k-line run of the `test` API peaked at 270-290 MB RSS with
 * 34 MB live. A fixed factor of 1.5 (`--heap-growing-percent=50`) holds it to about 190 MB, for
 * 10-20 % more CPU. It is set only while the heap is larger than `budgetBytes`, so a small run
 * keeps V8's own growth. The budget has to be low: the peak comes in the first cycle after the
 * factor changes, from the limit V8 set before it, so 96 or 128 MB left the 300k-line run at
 * 270-290 MB (bench/README.md, issue 14). A factor given to node itself
 * (`node --heap-growing-percent=...`) is left alone.
 *
 * @since 0.1.0
 */
import * as v8 from "node:v8"

/**
 * The heap size (V8's total heap, bytes) above which its growth is held to 1.5 times.
 *
 * @since 0.1.0
 * @category constants
 */
export const budgetBytes = 64 * 1024 * 1024

/**
 * V8's own growth factor of the young generation, which `bin/launch.js` holds at 1 while the
 * bundle loads (start-up memory) and `watch` restores.
 *
 * @since 0.1.0
 * @category constants
 */
export const youngGenerationGrowth = 2

/**
 * Restores the young generation's growth (`youngGenerationGrowth`), then watches the heap every
 * 100 ms (an unreferenced timer: it keeps no process alive) and sets V8's growing factor to 1.5
 * while the heap is above `budgetBytes`, and back to V8's own when it is below. Returns how to
 * stop watching. Every half second was too slow once a run wrote 34,000 records a second: one
 * 300k-line run in three set the factor after V8 had raised its limit, and peaked at 243 MB
 * instead of 195 (at 100 ms, six runs in six at 194-198 MB).
 *
 * @since 0.1.0
 * @category constructors
 */
export const watch = (): () => void => {
  if (!process.execArgv.some((flag) => flag.includes("semi-space"))) {
    v8.setFlagsFromString(`--semi-space-growth-factor=${youngGenerationGrowth}`)
  }
  if (process.execArgv.some((flag) => flag.includes("heap-growing-percent"))) return () => {}
  let held = false
  const timer = setInterval(() => {
    const large = v8.getHeapStatistics().total_heap_size > budgetBytes
    if (large === held) return
    held = large
    v8.setFlagsFromString(large ? "--heap-growing-percent=50" : "--heap-growing-percent=0")
  }, 100)
  timer.unref()
  return () => clearInterval(timer)
}
