/**
 * The line runner: every line of a run is a program (a strategy over the request path), started
 * on a fiber of its own as soon as its feed reaches it, so the requests of all lines wait in
 * their queues together and lines progress independently.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import type { CompletedRecord, IdentifiedRecord } from "../PromptRecord.js"
import { type LineTicket, lineTicket } from "../RequestPath.js"
import { fanOut } from "./fanOut.js"

/**
 * One source of lines (a queue of the plan, read in file order).
 */
export interface LineFeed<F, E, R> {
  readonly feed: F
  readonly records: Stream.Stream<IdentifiedRecord, E, R>
}

/**
 * Lines of a feed that wait for their first send slot, at most: enough for every slot that can
 * come due at once, few enough that a slow queue does not take the whole backlog from the
 * others.
 */
export const defaultLookahead = 256

/**
 * Runs each line's program as its feed reaches it and emits the completed lines as they finish.
 * A feed starts its next line only while fewer than `lookahead` of its lines wait to be
 * admitted to a queue; a program giving `undefined` (a line given up by a stop) emits nothing.
 */
export const runLines = <F, E, R, R2>(
  feeds: ReadonlyArray<LineFeed<F, E, R>>,
  program: (line: IdentifiedRecord, feed: F) => Effect.Effect<CompletedRecord | undefined, never, R2>,
  options: {
    readonly stopping: () => boolean
    readonly backlog?: number | undefined
    readonly lookahead?: number | undefined
  }
): Stream.Stream<CompletedRecord, E, R | R2> =>
  Stream.unwrap(Effect.gen(function*() {
    const lookahead = Math.max(1, options.lookahead ?? defaultLookahead)
    const sources = yield* Effect.forEach(feeds, ({ feed, records }) =>
      Effect.map(Effect.makeSemaphore(lookahead), (waiting) => ({
        records,
        admit: () =>
          Effect.flatMap(waiting.take(1), () => {
            if (!options.stopping()) return Effect.succeed("send" as const)
            return Effect.as(waiting.release(1), "stop" as const)
          }),
        send: (line: IdentifiedRecord) => {
          let released = false
          const release = Effect.suspend(() => {
            if (released) return Effect.void
            released = true
            return waiting.release(1)
          })
          return program(line, feed).pipe(
            Effect.locally(lineTicket, { state: 0, admitted: release } satisfies LineTicket as LineTicket),
            Effect.ensuring(release)
          )
        }
      })))
    return fanOut(sources, options.backlog)
  }))
