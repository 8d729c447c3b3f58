/**
 * The line runner: every line of a run is a program (a strategy over the request path), started
 * on a fiber of its own as soon as its feed reaches it, so the requests of all lines wait in
 * their queues together and lines progress independently.
 *
 * @internal
 */
import { Deferred, Effect, Exit, FiberId, Stream } from "effect"
import type { CompletedRecord, IdentifiedRecord } from "../PromptRecord.js"
import type { LineTicket, SendJob } from "../RequestPath.js"
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
  program: (line: IdentifiedRecord, feed: F, ticket: LineTicket) => Effect.Effect<CompletedRecord | undefined, never, R2>,
  options: {
    /**
     * The program of a line without a fiber of its own, when it can (`LineProgram`'s `direct`):
     * started on the feed's fiber and ended through `job`; `undefined` runs `program`.
     */
    readonly direct?:
      | ((line: IdentifiedRecord, feed: F, ticket: LineTicket, job: SendJob<CompletedRecord | undefined>) =>
        | Effect.Effect<void>
        | undefined)
      | undefined
    readonly stopping: () => boolean
    readonly backlog?: number | undefined
    readonly lookahead?: number | undefined
    /** Feeds found while the others run (a queue whose first line comes late in the file). */
    readonly more?: Stream.Stream<LineFeed<F, E, R>, E, R> | undefined
  }
): Stream.Stream<CompletedRecord, E, R | R2> =>
  Stream.suspend(() => {
    const lookahead = Math.max(1, options.lookahead ?? defaultLookahead)
    const source = ({ feed, records }: LineFeed<F, E, R>) => {
      // lines of this feed not yet admitted to a queue, and the feed waiting for one of them
      let waiting = 0
      let wakeUp: Deferred.Deferred<void> | undefined
      const release = () => {
        waiting--
        if (wakeUp !== undefined) {
          Deferred.unsafeDone(wakeUp, Exit.void)
          wakeUp = undefined
        }
      }
      const admit = (): Effect.Effect<"send" | "stop"> =>
        Effect.suspend(() => {
          if (options.stopping()) return Effect.succeed("stop" as const)
          if (waiting < lookahead) {
            waiting++
            return Effect.succeed("send" as const)
          }
          wakeUp ??= Deferred.unsafeMake<void>(FiberId.none)
          return Effect.zipRight(Deferred.await(wakeUp), admit())
        })
      const direct = options.direct
      return {
        records,
        admit,
        sendNow: direct === undefined ? undefined : (line: IdentifiedRecord, job: SendJob<CompletedRecord | undefined>) => {
          const ticket = new Ticket(release)
          return direct(line, feed, ticket, {
            done: (completed) => {
              ticket.done()
              job.done(completed)
            },
            defect: (cause) => {
              ticket.done()
              job.defect(cause)
            },
            track: (cancel) => job.track(cancel)
          })
        },
        send: (line: IdentifiedRecord) => {
          const ticket = new Ticket(release)
          return Effect.map(program(line, feed, ticket), (completed) => {
            ticket.done()
            return completed
          })
        }
      }
    }
    return fanOut(feeds.map(source), options.backlog, options.more === undefined ? undefined : Stream.map(options.more, source))
  })

/** A line's ticket: `admitted` once its first request has its slot (or it ends without one). */
class Ticket implements LineTicket {
  state: 0 | 1 | 2 = 0
  constructor(private readonly release: () => void) {}
  private released = false
  admitted(): void {
    this.state = 2
    this.done()
  }
  done(): void {
    if (this.released) return
    this.released = true
    this.release()
  }
}
