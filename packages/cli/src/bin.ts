/**
 * The process entry point: `prompto <command> [flags]`. Signals go through `Signals`, so a
 * first Ctrl-C stops a run gracefully and a second one at once.
 *
 * @since 0.1.0
 */
import { Effect, Exit } from "effect"
import * as HeapGrowth from "./HeapGrowth.js"
import { main } from "./main.js"
import * as Signals from "./Signals.js"

// a large run holds its heap growth in check (see HeapGrowth)
const stopWatchingHeap = HeapGrowth.watch()

const fiber = Effect.runFork(
  main(process.argv).pipe(
    Effect.catchTag("CommandFailed", (failed) => Effect.sync(() => { process.exitCode = failed.exitCode }))
  )
)
const uninstall = Signals.install(fiber, (line) => process.stderr.write(line + "\n"))
// keep the process alive while the program runs (timers alone may not)
const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
fiber.addObserver((exit) => {
  uninstall()
  stopWatchingHeap()
  clearInterval(keepAlive)
  if (Exit.isFailure(exit)) {
    if (Exit.isInterrupted(exit)) {
      process.exitCode = 130
    } else {
      process.stderr.write(`error: ${String(exit.cause)}\n`)
      process.exitCode = 1
    }
  }
})
