/**
 * The response cache on the request path: a request asked before is answered from the cache
 * and sends nothing; anything that decides an answer (prompt, parameters, sample, step) makes
 * another key; errors are never kept.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as Experiment from "../src/Experiment.js"
import { PermanentError } from "../src/ProviderError.js"
import { MockProvider } from "../src/testing/index.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "prompto-cache-"))
const lines = (records: ReadonlyArray<unknown>) => records.map((record) => JSON.stringify(record)).join("\n") + "\n"
const readJsonl = (file: string): ReadonlyArray<Record<string, unknown>> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line))
const withMock = (mock: MockProvider.MockProvider) => Effect.provide(Layer.merge(NodeContext.layer, MockProvider.layer(mock)))
const prompts = (n: number, temperature = (_: number) => 0) =>
  Array.from({ length: n }, (_, i) => ({ id: i, api: "mock", model_name: "m", prompt: `q${i}`, parameters: { temperature: temperature(i) } }))

describe("Cache", () => {
  it.live("the same file again sends nothing; changed parameters, samples and strategy steps are asked anew", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const file = (name: string, records: ReadonlyArray<unknown>) => {
      const at = path.join(dir, name)
      fs.writeFileSync(at, lines(records))
      return at
    }
    const run = (name: string, records: ReadonlyArray<unknown>, mock: MockProvider.MockProvider, options: Partial<Experiment.RunOptions> = {}) =>
      Experiment.run({ file: file(name, records), dataFolder: data, maxQueries: 600_000, cache: {}, ...options }).pipe(withMock(mock))
    return Effect.gen(function*() {
      const first = MockProvider.make("mock", {
        respond: (record) => ({ response: `answer ${String(record.id)}`, usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } })
      })
      yield* run("a.jsonl", prompts(10), first)
      expect(first.calls).toHaveLength(10)

      const second = MockProvider.make("mock")
      const again = yield* run("b.jsonl", prompts(10), second)
      expect(second.calls).toHaveLength(0)
      const completed = readJsonl(again.files.completed)
      expect(completed.every((record) => record.cached === true && record.attempts === 0)).toBe(true)
      expect(completed.find((record) => record.id === 3)).toMatchObject({
        response: "answer 3",
        usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }
      })

      // three temperatures changed: three requests
      const third = MockProvider.make("mock")
      yield* run("c.jsonl", prompts(10, (i) => (i < 3 ? 1 : 0)), third)
      expect(third.calls.map((call) => call.id).sort()).toEqual([0, 1, 2])

      // repeats at temperature 1: each sample its own key, kept apart
      const fourth = MockProvider.make("mock", { respond: (record) => `sample ${String(record.sample)}` })
      const repeated = yield* run("d.jsonl", prompts(2, () => 1), fourth, { repeats: 3 })
      // the sample is part of the key: none of these were asked before
      expect(fourth.calls).toHaveLength(6)
      const fifth = MockProvider.make("mock")
      const repeatedAgain = yield* run("e.jsonl", prompts(2, () => 1), fifth, { repeats: 3 })
      expect(fifth.calls).toHaveLength(0)
      expect(readJsonl(repeatedAgain.files.completed).map((record) => record.response).sort()).toEqual(
        readJsonl(repeated.files.completed).map((record) => record.response).sort()
      )
      expect(new Set(readJsonl(repeatedAgain.files.completed).map((record) => record.response)).size).toBe(3)

      // a strategy's steps are cached step by step
      const strategyLine = [{ id: "s", api: "mock", model_name: "m", prompt: "hi", strategy: "two_turn" }]
      const sixth = MockProvider.make("mock")
      yield* run("f.jsonl", strategyLine, sixth)
      expect(sixth.calls).toHaveLength(2)
      const seventh = MockProvider.make("mock")
      const cachedStrategy = yield* run("g.jsonl", strategyLine, seventh)
      expect(seventh.calls).toHaveLength(0)
      expect(readJsonl(cachedStrategy.files.completed)[0]!.steps).toHaveLength(2)
    })
  })

  it.live("errors are never kept; read-only keeps nothing; refresh sends everything", () => {
    const dir = tempDir()
    const data = path.join(dir, "data")
    const source = path.join(dir, "x.jsonl")
    const write = () => fs.writeFileSync(source, lines(prompts(4)))
    const run = (mock: MockProvider.MockProvider, mode?: Cache.Mode) => {
      write()
      return Experiment.run({ file: source, dataFolder: data, maxQueries: 600_000, cache: { mode } }).pipe(withMock(mock))
    }
    return Effect.gen(function*() {
      const failing = MockProvider.make("mock", {
        respond: (record) => record.id === 0 ? new PermanentError({ reason: "bad_request", message: "no" }) : "ok"
      })
      yield* run(failing, "read-only")
      expect(failing.calls).toHaveLength(4)
      const kept = MockProvider.make("mock", { respond: (record) => record.id === 0 ? new PermanentError({ reason: "bad_request", message: "no" }) : "ok" })
      yield* run(kept)
      expect(kept.calls).toHaveLength(4) // read-only kept nothing
      const next = MockProvider.make("mock")
      yield* run(next)
      expect(next.calls.map((call) => call.id)).toEqual([0]) // the error was not kept
      const refresh = MockProvider.make("mock")
      yield* run(refresh, "refresh")
      expect(refresh.calls).toHaveLength(4)
      const stats = yield* Effect.scoped(Effect.flatMap(Cache.open(path.join(data, "cache")), (cache) => cache.stats))
      expect(stats.entries).toBe(4)
    })
  })

  it("the key covers prompt, parameters, sample and step, and not the id or other keys", () => {
    const base = { id: 1, api: "mock", model_name: "m", prompt: "p", parameters: { a: 1, b: 2 } }
    expect(Cache.key(base)).toBe(Cache.key({ ...base, id: 2, note: "x", parameters: { b: 2, a: 1 } }))
    expect(Cache.key(base)).not.toBe(Cache.key({ ...base, parameters: { a: 1, b: 3 } }))
    expect(Cache.key(base)).not.toBe(Cache.key({ ...base, sample: 0 }))
    expect(Cache.key(base)).not.toBe(Cache.key(base, "answer"))
    expect(Cache.key(base)).not.toBe(Cache.key({ ...base, model_name: "n" }))
  })

  it("a local media file counts by its content: the same bytes under another name hit, an edited file misses", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-cache-media-"))
    try {
      fs.writeFileSync(path.join(dir, "a.png"), "picture one")
      fs.writeFileSync(path.join(dir, "b.png"), "picture one")
      const hash = Cache.mediaHasher()(dir)
      const withImage = (name: string) => ({
        id: 1,
        api: "anthropic",
        model_name: "m",
        prompt: [{ role: "user", content: [{ type: "image", source: { media: name } }, { type: "text", text: "what?" }] }]
      })
      const openAi = (url: string) => ({
        id: 1,
        api: "openai",
        model_name: "m",
        prompt: [{ role: "user", content: [{ type: "image_url", image_url: { url } }] }]
      })
      const before = Cache.key(withImage("a.png"), undefined, hash)
      expect(Cache.key(withImage("b.png"), undefined, hash)).toBe(before)
      expect(Cache.key(openAi("a.png"), undefined, hash)).toBe(Cache.key(openAi("b.png"), undefined, hash))
      // URLs are sent as they are, so they are keyed as they are
      expect(Cache.key(openAi("https://x/a.png"), undefined, hash)).not.toBe(Cache.key(openAi("https://x/b.png"), undefined, hash))
      fs.writeFileSync(path.join(dir, "a.png"), "picture two, edited")
      expect(Cache.key(withImage("a.png"), undefined, hash)).not.toBe(before)
      // without the folder, or for a missing file, the name is the key
      expect(Cache.key(withImage("a.png"))).not.toBe(Cache.key(withImage("b.png")))
      expect(Cache.key(withImage("gone.png"), undefined, hash)).toBe(Cache.key(withImage("gone.png")))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
