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
  return (
    line: IdentifiedRecord,
    route: RequestPath.Route | undefined,
    ticket?: RequestPath.LineTicket
  ): Effect.Effect<CompletedRecord | undefined> => {
    const named = strategyOf(line)
    const strategy = Either.isRight(named) && named.right !== undefined
      ? named.right
      : line.strategy === undefined
      ? fallback
      : undefined
    if (strategy !== undefined) {
      const run = Effect.provideService(Strategy.runLine(strategy, line), RequestPath.RequestPath, path)
      return ticket === undefined ? run : Effect.locally(run, RequestPath.lineTicket, ticket)
    }
    return Effect.map(
      path.send({ record: line, route, planned: route !== undefined, ticket }),
      (completed) => (RequestPath.isAbandoned(completed) ? undefined : completed)
    )
  }
}
