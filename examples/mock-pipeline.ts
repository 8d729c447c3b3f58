/**
 * Compose a pipeline in TypeScript and test it offline with a mocked provider layer:
 * records -> paced queue -> (mock) provider -> a scoring stage -> your own sink.
 *
 * The mock stands in for the real `openai` provider: same record, same pipeline, no key and
 * no network. Swap `MockProvider.layer(...)` for the real providers layer to go live.
 *
 *   pnpm tsx examples/mock-pipeline.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { type PromptRecord, Scheduler } from "@prompto/core"
import { MockProvider } from "@prompto/core/testing"
import { Chunk, Console, Effect, Stream } from "effect"

const records: ReadonlyArray<PromptRecord.IdentifiedRecord> = [
  { id: "q1", api: "openai", model_name: "gpt-4o-mini", prompt: "What is the capital of France?", expected_response: "Paris" },
  { id: "q2", api: "openai", model_name: "gpt-4o-mini", prompt: "What is the capital of Italy?", expected_response: "Rome" },
  { id: "q3", api: "openai", model_name: "gpt-4o-mini", prompt: "What is the capital of Spain?", expected_response: "Madrid" }
]

/** A mock `openai` that knows two capitals out of three. */
export const mockOpenAi = MockProvider.make("openai", {
  latency: "50 millis",
  respond: (record) => String(record.prompt).includes("France") ? "Paris" : String(record.prompt).includes("Italy") ? "Rome" : "I am not sure"
})

/** A scoring stage: prompto's `match`, applied as each record completes. */
export const match = <E, R>(stream: Stream.Stream<PromptRecord.CompletedRecord, E, R>) =>
  Stream.map(stream, (record) => ({ ...record, match: record.response === record.expected_response }))

/** The pipeline: one queue at 600 QPM, scored, collected. */
export const program = Scheduler.run(
  [{ key: "openai", queriesPerMinute: 600, records: Stream.fromIterable(records) }],
  { maxAttempts: 3, timeout: "30 seconds" }
).pipe(
  match,
  Stream.runCollect,
  Effect.map(Chunk.toReadonlyArray),
  Effect.tap((scored) =>
    Console.log(`accuracy: ${scored.filter((record) => record.match).length}/${scored.length}`)
  ),
  Effect.provide(MockProvider.layer(mockOpenAi))
)

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program)
}
