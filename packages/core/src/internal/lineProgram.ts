/**
 * The program of one line: sent as it is, or its strategy run over the request path.
 *
 * @internal
 */
import { Effect, Either } from "effect"
import type { CompletedRecord, IdentifiedRecord } from "../PromptRecord.js"
import * as RequestPath from "../RequestPath.js"
import * as Strategy from "../Strategy.js"
import * as StrategySpec from "../StrategySpec.js"

/**
 * Which strategy runs a line: its `strategy` key (decoded with `setup`), else `fallback` (a
 * strategy value given in code), else the setup's default; none means the line is sent as it
 * is. A line a stop cut short gives `undefined` (not written).
 */
export const make = (
  path: RequestPath.RequestPathService,
  setup: StrategySpec.StrategySetup = StrategySpec.defaultSetup,
  fallback?: Strategy.Strategy | undefined
) => {
  const strategyOf = StrategySpec.resolver(fallback === undefined ? setup : { ...setup, default: undefined })
  const strategyFor = (line: IdentifiedRecord): Strategy.Strategy | undefined => {
    const named = strategyOf(line)
    return Either.isRight(named) && named.right !== undefined
      ? named.right
      : line.strategy === undefined
      ? fallback
      : undefined
  }
  const sendNow = path.sendNow
  /**
   * The program of a line sent as it is, without a fiber of its own (`RequestPath.sendNow`), or
   * `undefined` (a strategy's line, a path without the hot path): run the program.
   */
  const direct = sendNow === undefined ? undefined : (
    line: IdentifiedRecord,
    route: RequestPath.Route | undefined,
    ticket: RequestPath.LineTicket,
    job: RequestPath.SendJob<CompletedRecord | undefined>
  ): Effect.Effect<void> | undefined =>
    strategyFor(line) !== undefined ? undefined : sendNow({ record: line, route, planned: route !== undefined, ticket }, {
      done: (completed) => job.done(RequestPath.isAbandoned(completed) ? undefined : completed),
      defect: (cause) => job.defect(cause),
      track: (cancel) => job.track(cancel)
    })
  const program = (
    line: IdentifiedRecord,
    route: RequestPath.Route | undefined,
    ticket?: RequestPath.LineTicket
  ): Effect.Effect<CompletedRecord | undefined> => {
    const strategy = strategyFor(line)
    if (strategy !== undefined) {
      const run = Effect.provideService(Strategy.runLine(strategy, line), RequestPath.RequestPath, path)
      return ticket === undefined ? run : Effect.locally(run, RequestPath.lineTicket, ticket)
    }
    return Effect.map(
      path.send({ record: line, route, planned: route !== undefined, ticket }),
      (completed) => (RequestPath.isAbandoned(completed) ? undefined : completed)
    )
  }
  return Object.assign(program, { direct })
}
