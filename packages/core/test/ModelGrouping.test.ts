/**
 * Ollama lines are sent grouped by model, as prompto sorts them, within windows of lines; the
 * swaps a local server makes between models drop from one per line to about one per model and
 * window.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Experiment from "../src/Experiment.js"
import * as ModelGrouping from "../src/internal/modelGrouping.js"
import type { IdentifiedRecord } from "../src/PromptRecord.js"
import { MockProvider } from "../src/testing/index.js"

const line = (id: number, api: string, model: string): IdentifiedRecord => ({ id, api, model_name: model, prompt: `q${id}` })

describe("ModelGrouping", () => {
  it("groups a window's Ollama lines by model at the first line's place; other lines keep their order", () => {
    const lines = [
      line(1, "ollama", "a"),
      line(2, "test", "x"),
      line(3, "ollama", "b"),
      line(4, "ollama", "a"),
      line(5, "test", "y"),
      line(6, "ollama", "b")
    ]
    const { last, lines: out } = ModelGrouping.groupWindow(lines, undefined)
    expect(out.map((l) => l.id)).toEqual([1, 4, 2, 3, 6, 5])
    expect(last).toBe("ollama\u0000b")
    // the next window starts with the model the last one ended on
    expect(ModelGrouping.groupWindow([line(7, "ollama", "a"), line(8, "ollama", "b")], last).lines.map((l) => l.id)).toEqual([8, 7])
    expect(ModelGrouping.swaps(lines)).toBe(3)
    expect(ModelGrouping.swaps(out)).toBe(1)
  })

  it.effect("a stream of 2,500 lines alternating between 3 models swaps 6 times (2 a window) instead of 2,499", () =>
    Effect.gen(function*() {
      const lines = Array.from({ length: 2_500 }, (_, i) => line(i, "ollama", ["a", "b", "c"][i % 3]!))
      const out = Chunk.toReadonlyArray(yield* Stream.runCollect(ModelGrouping.groupByModel()(Stream.fromIterable(lines))))
      expect(out).toHaveLength(2_500)
      expect(new Set(out.map((l) => l.id)).size).toBe(2_500)
      expect(ModelGrouping.swaps(lines)).toBe(2_499)
      // 3 windows: 2 swaps in the first, then each starts on the model the last ended on
      expect(ModelGrouping.swaps(out)).toBe(6)
    }))

  it.live("a run sends Ollama lines grouped by model; other APIs' lines are not held back", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-grouping-"))
    const file = path.join(dir, "o.jsonl")
    fs.writeFileSync(file, Array.from({ length: 30 }, (_, i) => JSON.stringify(line(i, "ollama", i % 2 === 0 ? "llama3" : "mistral"))).join("\n") + "\n")
    const ollama = MockProvider.make("ollama")
    return Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000 }).pipe(
      Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(ollama))),
      Effect.map(() => {
        const models = ollama.calls.map((call) => call.record.model_name)
        expect(models).toEqual([...Array(15).fill("llama3"), ...Array(15).fill("mistral")])
      }),
      Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
  })
})
