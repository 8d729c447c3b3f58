/**
 * Cost: each completed request priced from its usage by the `@pydantic/genai-prices` table;
 * unknown is `null`, never 0; a cache hit costs 0; a strategy line costs its steps.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { calcPrice } from "@pydantic/genai-prices"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cost from "../src/Cost.js"
import * as Experiment from "../src/Experiment.js"
import { MockProvider } from "../src/testing/index.js"

const usage = { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 }

describe("Cost", () => {
  it("is the usage times the table's price, for two models; unknown models and APIs are null", () => {
    // the table's own figures: per million tokens, gpt-4o-mini $0.15 in / $0.60 out, claude-3-5-haiku $0.80 / $4
    expect(Cost.of({ api: "openai", model_name: "gpt-4o-mini", usage })).toBeCloseTo((1200 * 0.15 + 300 * 0.6) / 1e6, 12)
    expect(Cost.of({ api: "anthropic", model_name: "claude-3-5-haiku-latest", usage })).toBeCloseTo((1200 * 0.8 + 300 * 4) / 1e6, 12)
    expect(Cost.of({ api: "openai", model_name: "gpt-4o-mini", usage })).toBe(
      calcPrice({ input_tokens: 1200, output_tokens: 300 }, "gpt-4o-mini", { providerId: "openai" })!.total_price
    )
    expect(Cost.of({ api: "openai", model_name: "no-such-model", usage })).toBeNull()
    expect(Cost.of({ api: "test", model_name: "m", usage })).toBeNull()
    expect(Cost.of({ api: "openai", model_name: "gpt-4o-mini" })).toBeNull()
    // cached input tokens at their own rate
    const cached = Cost.of({ api: "openai", model_name: "gpt-4o", usage: { ...usage, prompt_tokens_details: { cached_tokens: 1000 } } as never })
    expect(cached).toBeLessThan(Cost.of({ api: "openai", model_name: "gpt-4o", usage })!)
  })

  it.live("every completed record gets its cost; a cache hit costs 0; a strategy line costs its steps", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-cost-"))
    const file = path.join(dir, "c.jsonl")
    const write = () => fs.writeFileSync(file, [
      { id: 1, api: "openai", model_name: "gpt-4o-mini", prompt: "p" },
      { id: 2, api: "openai", model_name: "not-a-model", prompt: "q" },
      { id: 3, api: "openai", model_name: "gpt-4o-mini", prompt: "r", strategy: "two_turn" }
    ].map((record) => JSON.stringify(record)).join("\n") + "\n")
    const mock = MockProvider.make("openai", { respond: () => ({ response: "ok", usage }) })
    const run = () => {
      write()
      return Experiment.run({ file, dataFolder: path.join(dir, "data"), maxQueries: 600_000, cache: {} }).pipe(
        Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock)))
      )
    }
    const read = (completed: string) =>
      new Map(fs.readFileSync(completed, "utf8").trim().split("\n").map((line) => JSON.parse(line)).map((r) => [r.id, r]))
    return Effect.gen(function*() {
      const first = read((yield* run()).files.completed)
      const one = Cost.of({ api: "openai", model_name: "gpt-4o-mini", usage })!
      expect(first.get(1).cost).toBe(one)
      expect(first.get(2).cost).toBeNull()
      expect(first.get(3).cost).toBeCloseTo(2 * one, 15)
      expect(first.get(3).steps.map((step: { cost: number }) => step.cost)).toEqual([one, one])
      const second = read((yield* run()).files.completed)
      expect(second.get(1)).toMatchObject({ cached: true, cost: 0 })
      expect(second.get(3).cost).toBe(0)
    })
  })
})
