/**
 * Run an experiment from TypeScript: build the records in code, provide the built-in providers,
 * run, and get the same files `prompto run` writes.
 *
 *   pnpm tsx examples/run-from-code.ts
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Experiment, RunSummary } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Effect, Stream } from "effect"

const questions = ["What is 2 + 2?", "Name a prime number above 50.", "Spell 'necessary'.", "What colour is the sky?"]

/** Runs the questions on the built-in `test` API, two models in separate queues. */
export const program = (dataFolder: string) =>
  Effect.gen(function*() {
    const records = Stream.fromIterable(questions).pipe(
      Stream.zipWithIndex,
      Stream.map(([prompt, i]) => ({
        id: i,
        api: "test",
        model_name: i % 2 === 0 ? "small" : "large",
        group: i % 2 === 0 ? "small-model" : "large-model",
        prompt,
        parameters: { latency_ms: 300 }
      }))
    )
    const result = yield* Experiment.runRecords({
      name: "from-code",
      records,
      dataFolder,
      parallel: true,
      maxQueriesJson: { "small-model": 600, "large-model": 300 }
    })
    for (const line of RunSummary.format(result.stats)) yield* Console.log(line)
    yield* Console.log(`completed file: ${result.files.completed}`)
    return result
  }).pipe(Effect.provide(Providers.layer))

if (import.meta.url === `file://${process.argv[1]}`) {
  program("examples/data").pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
}
