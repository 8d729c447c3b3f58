/**
 * Strategies in TypeScript: every line of `strategies/questions.jsonl` is a program of requests
 * (self-consistency, mixture-of-agents with a self-consistent proposer, critique, two-turn,
 * best-of), and lines that name no strategy run one given in code. The sub-requests of all lines
 * go into their paced queues together; each completed line carries `response`, `answer` and
 * `steps`.
 *
 *   pnpm tsx examples/strategies.ts
 *
 * The same file runs from the command line with the strategy folder (named strategies and a
 * critique template):
 *
 *   pnpm prompto run -f examples/strategies/questions.jsonl -d examples/data -mq 600 -p \
 *     --strategy-folder examples/strategies/folder --strategy sc3
 *
 * It runs on the built-in `test` API (no key). `test/examples.test.ts` runs it once on the real
 * providers layer and once on a mocked layer whose samples disagree.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Experiment, Extract, Scorer, Strategy, StrategySpec } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Effect } from "effect"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))

/** Lines that name no strategy: three samples, each answered in two turns, voted on their last number. */
export const defaultStrategy = Strategy.selfConsistency({
  samples: 3,
  of: Strategy.twoTurn(),
  extract: Extract.lastNumber,
  vote: Extract.majority
})

/** The experiment with its strategies; needs a provider registry (real or mocked). */
export const program = (dataFolder: string) =>
  Effect.gen(function*() {
    // named strategies ("sc3") and template overrides (critique.txt) from a strategy folder
    const strategies = yield* StrategySpec.load({ folder: here("./strategies/folder") })
    const result = yield* Experiment.run({
      file: here("./strategies/questions.jsonl"),
      dataFolder,
      maxQueries: 600,
      parallel: true,
      strategies,
      strategy: defaultStrategy,
      stages: (records) => records.pipe(Scorer.stage([Scorer.match]))
    })
    const completed = fs.readFileSync(result.files.completed, "utf8").trim().split("\n").map((line) => JSON.parse(line))
    for (const record of completed) {
      yield* Console.log(
        `${String(record.id).padEnd(8)} ${String(record.steps?.length ?? 1).padStart(2)} requests  ` +
          `answer: ${JSON.stringify(record.answer ?? null)}  match: ${JSON.stringify(record.match ?? null)}`
      )
    }
    yield* Console.log(`completed file: ${result.files.completed}`)
    return result
  })

if (import.meta.url === `file://${process.argv[1]}`) {
  program("examples/data").pipe(
    Effect.provide(Providers.layer),
    Effect.provide(NodeContext.layer),
    NodeRuntime.runMain
  )
}
