/**
 * The estimate before a run (the run played through without sending: its request count equals
 * the real run's, strategies, repeats and judges included), the token counts it rests on, and
 * the spend cap that uses them.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cost from "../src/Cost.js"
import * as Estimate from "../src/Estimate.js"
import * as Evaluation from "../src/Evaluation.js"
import * as Experiment from "../src/Experiment.js"
import type { Provider } from "../src/Provider.js"
import { MockProvider } from "../src/testing/index.js"
import * as TokenCount from "../src/TokenCount.js"

const lines = (records: ReadonlyArray<object>) => records.map((record) => JSON.stringify(record)).join("\n") + "\n"

const tempDir = (files: Readonly<Record<string, string>>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-estimate-test-"))
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return dir
}

const withProviders = <A, E>(providers: ReadonlyArray<Provider>, body: Effect.Effect<A, E, any>) =>
  body.pipe(Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(...providers)))) as Effect.Effect<A, E>

const usage = { prompt_tokens: 40, completion_tokens: 10, total_tokens: 50 }

describe("TokenCount", () => {
  it.effect("counts OpenAI chat requests with the chat format's overhead, turns with their history", () =>
    Effect.gen(function*() {
      const counter = yield* TokenCount.load
      // "Hello world" is 2 tokens in o200k_base; the chat format adds 3 for the message, 1 for
      // its role and 3 to prime the reply
      expect(counter.text("openai", "gpt-4o", "Hello world")).toBe(2)
      const single = counter.request({ id: 1, api: "openai", model_name: "gpt-4o", prompt: "Hello world" })
      expect(single).toEqual({ input: 2 + 3 + 1 + 3, output: TokenCount.defaultOutputTokens, requests: 1, exact: true })
      const history = counter.request({
        id: 2,
        api: "openai",
        model_name: "gpt-4o",
        prompt: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello world" }],
        parameters: { max_tokens: 20, n: 3 }
      })
      expect(history).toMatchObject({ input: 3 + (3 + 1 + counter.text("openai", "gpt-4o", "Be brief.")) + (3 + 1 + 2), output: 60 })
      // two turns: the second request carries the first turn and its answer (max_tokens long)
      const turns = counter.request({ id: 3, api: "openai", model_name: "gpt-4o", prompt: ["Hello world", "Hello world"], parameters: { max_tokens: 7 } })
      const turn = 3 + 1 + 2
      expect(turns).toEqual({ input: (3 + turn) + (3 + turn + (3 + 1 + 7) + turn), output: 14, requests: 2, exact: true })
      // GPT-4 uses cl100k_base; other providers are an approximation
      expect(counter.text("openai", "gpt-4", "Hello world")).toBe(2)
      expect(counter.request({ id: 4, api: "anthropic", model_name: "claude-3-5-haiku-latest", prompt: "x" }).exact).toBe(false)
      expect(TokenCount.outputTokens({ id: 5, api: "gemini", model_name: "g", prompt: "x", parameters: { generation_config: { max_output_tokens: 99 } } }))
        .toBe(99)
    }))
})

describe("Estimate", () => {
  it.live("counts exactly the requests the run sends: strategies, repeats and judges included; prices the range", () => {
    const experiment = [
      { id: 1, api: "openai", model_name: "gpt-4o-mini", prompt: "What is 2 + 2?", parameters: { max_tokens: 10 } },
      { id: 2, api: "openai", model_name: "gpt-4o-mini", prompt: "Name a colour.", repeats: 3 },
      { id: 3, api: "openai", model_name: "gpt-4o", prompt: "What is 3 * 7?", strategy: { name: "self_consistency", samples: 4 } },
      { id: 4, api: "openai", model_name: "gpt-4o", prompt: "Write a haiku.", strategy: { name: "critique", rounds: 2 } },
      {
        id: 5,
        api: "openai",
        model_name: "gpt-4o-mini",
        prompt: "Capital of France?",
        strategy: {
          name: "mixture_of_agents",
          proposers: [{ api: "openai", model_name: "gpt-4o-mini" }, { api: "local", model_name: "llama" }],
          aggregator: { api: "openai", model_name: "gpt-4o" }
        }
      }
    ]
    const dir = tempDir({
      "exp.jsonl": lines(experiment),
      "judge/settings.json": JSON.stringify({ j: { api: "openai", model_name: "gpt-4o-mini", parameters: { max_tokens: 5 } } }),
      "judge/template.txt": "Is this right? {INPUT_PROMPT} -> {OUTPUT_RESPONSE}"
    })
    const openai = MockProvider.make("openai", { respond: () => ({ response: "fine", usage }) })
    const local = MockProvider.make("local", { respond: () => "fine" })
    const options = (evaluation: Evaluation.Evaluation) => ({
      file: path.join(dir, "exp.jsonl"),
      dataFolder: path.join(dir, "data"),
      maxQueries: 60,
      repeats: 2,
      stages: evaluation.stages
    })
    return withProviders(
      [openai, local],
      Effect.gen(function*() {
        const evaluation = yield* Evaluation.make({ judge: { folder: path.join(dir, "judge"), judges: ["j"] } })
        const estimate = yield* Estimate.make({ ...options(evaluation), outputTokens: 100 })
        expect(openai.calls).toHaveLength(0)
        expect(local.calls).toHaveLength(0)
        // nothing is left behind: the data folder is not even made
        expect(fs.existsSync(path.join(dir, "data"))).toBe(false)
        yield* Experiment.run({ ...options(evaluation), maxQueries: 600_000 })
        expect(estimate.requests).toBe(openai.calls.length + local.calls.length)
        const byModel = new Map(estimate.by_model.map((model) => [`${model.api}/${model.model_name}`, model]))
        expect(byModel.get("local/llama")).toMatchObject({ requests: local.calls.length, cost_min: null, cost_max: null, exact_tokens: false })
        expect(estimate.cost_max).toBeNull()
        const mini = byModel.get("openai/gpt-4o-mini")!
        expect(mini.requests).toBe(openai.calls.filter((call) => call.record.model_name === "gpt-4o-mini").length)
        expect(mini.cost_min).toBeCloseTo(Cost.price("openai", "gpt-4o-mini", { input: mini.input_tokens, output: 0 })!, 12)
        expect(mini.cost_max).toBeCloseTo(
          Cost.price("openai", "gpt-4o-mini", { input: mini.input_tokens, output: mini.output_tokens })!,
          12
        )
        // one queue at 60 a minute: a second a request
        expect(estimate.seconds).toBe(estimate.requests)
        expect(Estimate.format(estimate).join("\n")).toMatch(/total .* \+ unknown/)
      }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
    )
  })
})

describe("Estimate with the cache", () => {
  it.live("counts what the cache would answer apart, and makes no cache folder when there is none", () => {
    const dir = tempDir({
      "exp.jsonl": lines(Array.from({ length: 6 }, (_, i) => ({ id: i, api: "openai", model_name: "gpt-4o-mini", prompt: `q ${i}` })))
    })
    const openai = MockProvider.make("openai", { respond: () => ({ response: "fine", usage }) })
    const file = path.join(dir, "exp.jsonl")
    const dataFolder = path.join(dir, "data")
    return withProviders(
      [openai],
      Effect.gen(function*() {
        const before = yield* Estimate.make({ file, dataFolder, cache: {} })
        expect(before).toMatchObject({ requests: 6, cached: 0 })
        expect(fs.existsSync(path.join(dataFolder, "cache"))).toBe(false)
        fs.writeFileSync(path.join(dir, "half.jsonl"), fs.readFileSync(file, "utf8").split("\n").slice(0, 3).join("\n") + "\n")
        yield* Experiment.run({ file: path.join(dir, "half.jsonl"), dataFolder, maxQueries: 600_000, cache: {} })
        const after = yield* Estimate.make({ file, dataFolder, cache: {} })
        expect(after).toMatchObject({ requests: 3, cached: 3 })
        expect(Estimate.format(after).join("\n")).toContain("Cached: requests the response cache would answer")
        expect(openai.calls).toHaveLength(3)
      }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
    )
  })
})

describe("SpendCap", () => {
  it.live("stops the run before the spend would cross the cap, and a resume counts what was spent", () => {
    const experiment = Array.from({ length: 40 }, (_, i) => ({
      id: i,
      api: "openai",
      model_name: "gpt-4o-mini",
      prompt: `Question number ${i}`,
      parameters: { max_tokens: 10 }
    }))
    const dir = tempDir({ "exp.jsonl": lines(experiment) })
    // what the server reports is at most what was reserved (the prompt is about 11 tokens)
    const reported = { prompt_tokens: 9, completion_tokens: 10, total_tokens: 19 }
    const openai = MockProvider.make("openai", { latency: "5 millis", respond: () => ({ response: "ok", usage: reported }) })
    const one = Cost.of({ api: "openai", model_name: "gpt-4o-mini", usage: reported })!
    const limit = one * 15.5
    return withProviders(
      [openai],
      Effect.gen(function*() {
        const first = yield* Experiment.run({ file: path.join(dir, "exp.jsonl"), dataFolder: path.join(dir, "data"), maxQueries: 60_000, maxCost: limit })
        expect(first.stopped).toBe(true)
        expect(first.stopReason).toBe("spend-cap")
        expect(first.spent!).toBeLessThanOrEqual(limit)
        const written = fs.readFileSync(first.files.completed, "utf8").trim().split("\n").map((line) => JSON.parse(line))
        // each request is reserved at its most (its prompt and 10 output tokens), a bit above what it costs
        expect(written.length).toBeGreaterThanOrEqual(10)
        expect(written.length).toBeLessThanOrEqual(15)
        expect(openai.calls).toHaveLength(written.length)
        expect(written.reduce((sum, record) => sum + record.cost, 0)).toBeCloseTo(first.spent!, 12)
        const log = fs.readFileSync(first.files.log, "utf8")
        expect(log).toContain("Spend cap reached")
        expect(log).toContain("resume with: prompto run --resume")
        // the same cap again: what was spent counts, so nothing more is sent
        const again = yield* Experiment.resume({ from: first.files.folder, maxQueries: 60_000, maxCost: limit })
        expect(again.stopReason).toBe("spend-cap")
        expect(openai.calls).toHaveLength(written.length)
        // a higher cap finishes it
        const rest = yield* Experiment.resume({ from: first.files.folder, maxQueries: 60_000, maxCost: one * 100 })
        expect(rest.stopped).toBe(false)
        expect(openai.calls).toHaveLength(40)
        expect(rest.spent!).toBeCloseTo(one * 40, 12)
      }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
    )
  })
})
