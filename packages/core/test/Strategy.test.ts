import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream, TestClock } from "effect"
import * as Extract from "../src/Extract.js"
import type { CompletedRecord, IdentifiedRecord } from "../src/PromptRecord.js"
import { PermanentError, TransientError } from "../src/ProviderError.js"
import * as RequestPath from "../src/RequestPath.js"
import * as Scheduler from "../src/Scheduler.js"
import * as Strategy from "../src/Strategy.js"
import * as StrategySpec from "../src/StrategySpec.js"
import { MockProvider } from "../src/testing/index.js"

const lines = (n: number, extra: Partial<IdentifiedRecord> = {}): ReadonlyArray<IdentifiedRecord> =>
  Array.from({ length: n }, (_, i) => ({ id: `q${i}`, api: "mock", model_name: "m", prompt: `question ${i}`, ...extra }))

/** Runs lines through one queue per api, each at its rate, and collects the completed lines. */
const runLines = (
  records: ReadonlyArray<IdentifiedRecord>,
  options: Partial<Scheduler.SchedulerOptions> & { readonly rates?: Readonly<Record<string, number>> } = {}
) =>
  Effect.gen(function*() {
    const rates = options.rates ?? { mock: 60 }
    const route = (record: IdentifiedRecord): RequestPath.Route => ({ key: record.api, queriesPerMinute: rates[record.api] ?? 60 })
    const byQueue = new Map<string, Array<IdentifiedRecord>>()
    for (const record of records) byQueue.set(record.api, [...(byQueue.get(record.api) ?? []), record])
    const fiber = yield* Scheduler.run(
      [...byQueue].map(([key, list]) => ({ key, queriesPerMinute: rates[key] ?? 60, records: Stream.fromIterable(list) })),
      { maxAttempts: 3, timeout: "5 minutes", route, ...options }
    ).pipe(Stream.runCollect, Effect.fork)
    yield* TestClock.adjust("2 hours")
    return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
  })

const byId = (records: ReadonlyArray<CompletedRecord>) => new Map(records.map((record) => [record.id, record]))

/** The k-th call is at least k intervals after the first. */
const expectPaced = (times: ReadonlyArray<number>, qpm: number) => {
  const sorted = [...times].sort((a, b) => a - b)
  sorted.forEach((t, k) => expect(t - sorted[0]!).toBeGreaterThanOrEqual(k * (60_000 / qpm) - 1))
}

describe("Strategy", () => {
  it.effect("20 lines × self-consistency(5) make exactly 100 calls, paced, in about 100 intervals", () => {
    const mock = MockProvider.make("mock", { latency: "10 seconds", respond: (record) => `so the answer is ${String(record.id).length % 3}` })
    return Effect.gen(function*() {
      const done = yield* runLines(lines(20), {
        strategy: Strategy.selfConsistency({ samples: 5, of: Strategy.basic, extract: Extract.lastNumber })
      })
      expect(done).toHaveLength(20)
      expect(mock.calls).toHaveLength(100)
      const times = MockProvider.callTimes(mock)
      expectPaced(times, 60)
      // every call at its own slot, one a second: no line waits for another line's answers
      expect(Math.max(...times)).toBe(99_000)
      // lines progress independently: the second line starts before the first one's answers are in
      const firstOfLine = (id: string) => Math.min(...mock.calls.filter((c) => String(c.id).startsWith(`${id}#`)).map((c) => c.at))
      expect(firstOfLine("q1")).toBeLessThan(10_000)
      // the last line is done at its last call plus the latency: 109 s, not 20 chains of 5 s + 10 s
      // (every line starts at 0, so its latency is when it finished)
      expect(Math.max(...done.map((record) => record.latency_ms!))).toBe(109_000)
      for (const record of done) {
        expect(record.steps).toHaveLength(5)
        expect(record.answer).toMatch(/^[0-2]$/)
        expect(record.vote).toMatchObject({ method: "majority", votes: 5, total: 5 })
        expect((record.steps as ReadonlyArray<{ step: string }>).map((s) => s.step)).toEqual(
          [0, 1, 2, 3, 4].map((i) => `sample ${i}/answer`)
        )
      }
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("mixture-of-agents over three APIs paces each API at its own rate; the aggregator sees every answer", () => {
    const a = MockProvider.make("api-a", { latency: "1 second", respond: (r) => `alpha says ${String(r.id)}` })
    const b = MockProvider.make("api-b", { latency: "1 second", respond: (r) => `beta says ${String(r.id)}` })
    const c = MockProvider.make("api-c", { latency: "1 second", respond: (r) => `gamma says ${String(r.id)}` })
    const strategy = Strategy.mixtureOfAgents({
      proposers: [{ api: "api-a", model_name: "ma" }, { api: "api-b", model_name: "mb" }, { api: "api-c", model_name: "mc" }],
      aggregator: { api: "api-a", model_name: "agg" }
    })
    return Effect.gen(function*() {
      const records = lines(6, { api: "api-a" })
      const done = yield* runLines(records, { strategy, rates: { "api-a": 60, "api-b": 30, "api-c": 120 } })
      expect(done).toHaveLength(6)
      // proposers: 6 per api; aggregations: 6 more on api-a
      expect(a.calls).toHaveLength(12)
      expect(b.calls).toHaveLength(6)
      expect(c.calls).toHaveLength(6)
      expectPaced(MockProvider.callTimes(a), 60)
      expectPaced(MockProvider.callTimes(b), 30)
      expectPaced(MockProvider.callTimes(c), 120)
      // each queue at its own rate: api-c's six calls are done in 2.5 s, api-b's take 10 s
      expect(Math.max(...MockProvider.callTimes(c))).toBe(2_500)
      expect(Math.max(...MockProvider.callTimes(b))).toBe(10_000)
      for (const record of done) {
        const aggregate = a.calls.find((call) => call.record.model_name === "agg" && String(call.id).startsWith(`${record.id}#`))!
        const prompt = String(aggregate.record.prompt)
        for (const who of ["alpha", "beta", "gamma"]) expect(prompt).toContain(`${who} says ${record.id}#proposer`)
        expect(prompt).toContain(`question ${String(record.id).slice(1)}`)
        expect((record.steps as ReadonlyArray<{ step: string; api: string }>).map((s) => [s.step, s.api])).toEqual([
          ["proposer 0/answer", "api-a"],
          ["proposer 1/answer", "api-b"],
          ["proposer 2/answer", "api-c"],
          ["aggregate/answer", "api-a"]
        ])
        expect(record.response).toBe(`alpha says ${record.id}#aggregate/answer`)
      }
    }).pipe(Effect.provide(MockProvider.layer(a, b, c)))
  })

  it.effect("a critique makes its three calls in order: answer, critique, rewrite", () => {
    const mock = MockProvider.make("mock", { latency: "2 seconds", respond: (r) => `reply to ${String(r.id)}` })
    const critic = MockProvider.make("critic", { latency: "2 seconds", respond: () => "too short" })
    return Effect.gen(function*() {
      const done = yield* runLines(lines(1), {
        strategy: Strategy.critique({ critic: { api: "critic", model_name: "judge" } }),
        rates: { mock: 600, critic: 600 }
      })
      const calls = [...mock.calls, ...critic.calls].sort((x, y) => x.at - y.at)
      expect(calls.map((call) => [String(call.id), call.at])).toEqual([
        ["q0#answer", 0],
        ["q0#critique", 2000],
        ["q0#rewrite", 4000]
      ])
      const rewrite = mock.calls.find((call) => String(call.id) === "q0#rewrite")!
      expect(String(rewrite.record.prompt)).toContain("reply to q0#answer")
      expect(String(rewrite.record.prompt)).toContain("too short")
      expect(done[0]!.response).toBe("reply to q0#rewrite")
      expect(done[0]!.steps).toHaveLength(3)
    }).pipe(Effect.provide(MockProvider.layer(mock, critic)))
  })

  it.effect("a failing step is retried under the normal policy; one that finally fails makes the line an error naming it", () => {
    const mock = MockProvider.make("mock", {
      respond: (record, attempt) => {
        const id = String(record.id)
        if (id === "q0#sample 1/answer" && attempt === 1) return new TransientError({ message: "503" })
        if (id === "q1#sample 2/answer") return new TransientError({ message: "503 for good" })
        return "42"
      }
    })
    return Effect.gen(function*() {
      const done = byId(yield* runLines(lines(2), { strategy: Strategy.selfConsistency({ samples: 3 }), maxAttempts: 3 }))
      expect(mock.calls.filter((c) => c.id === "q0#sample 1/answer").map((c) => c.attempt)).toEqual([1, 2])
      const q0 = done.get("q0")!
      expect(q0.error).toBeUndefined()
      expect(q0.answer).toBe("42")
      expect(q0.attempts).toBe(4)
      expect(mock.calls.filter((c) => c.id === "q1#sample 2/answer")).toHaveLength(3)
      const q1 = done.get("q1")!
      expect(q1.error?.kind).toBe("transient")
      expect(q1.error?.message).toContain(`step "sample 2/answer"`)
      expect(String(q1.response)).toContain(`Step "sample 2/answer" failed`)
      expect(String(q1.response)).toContain("after maximum 3 attempts")
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("a step that fails does not cut its parallel siblings short: their answers are in the error record's steps", () => {
    const mock = MockProvider.make("mock", {
      latency: "1 second",
      respond: (record) => String(record.id) === "q0#sample 1/answer" ? new PermanentError({ reason: "bad_request", message: "400 bad request" }) : "7"
    })
    return Effect.gen(function*() {
      const events: Array<Scheduler.SchedulerEvent> = []
      const [done] = yield* runLines(lines(1), {
        strategy: Strategy.selfConsistency({ samples: 3 }),
        onEvent: (event) => Effect.sync(() => events.push(event))
      })
      expect(done!.error?.message).toContain(`step "sample 1/answer"`)
      expect((done!.steps as ReadonlyArray<{ step: string }>).map((s) => s.step)).toEqual(
        ["sample 0/answer", "sample 1/answer", "sample 2/answer"]
      )
      // every request sent was also completed
      expect(events.filter((e) => e._tag === "Completed")).toHaveLength(events.filter((e) => e._tag === "Sent").length)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("two-turn continues the conversation in the API's history shape", () => {
    const mock = MockProvider.make("mock", { respond: (r) => (String(r.id).endsWith("extract") ? " 7 " : "Let me think. It is 7.") })
    return Effect.gen(function*() {
      const [done] = yield* runLines(lines(1), { strategy: Strategy.twoTurn() })
      expect(done!.response).toBe("Let me think. It is 7.")
      expect(done!.answer).toBe("7")
      expect(mock.calls[1]!.record.prompt).toEqual([
        { role: "user", content: "question 0" },
        { role: "assistant", content: "Let me think. It is 7." },
        { role: "user", content: Strategy.defaultTemplates.extract }
      ])
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("strategies nest: mixture-of-agents over self-consistent proposers; a failed extraction is recorded, not thrown", () => {
    const mock = MockProvider.make("mock", { respond: (r) => (String(r.id).includes("aggregate") ? "no number here" : "answer 3") })
    const strategy = Either.getOrThrow(StrategySpec.decode({
      name: "mixture_of_agents",
      proposers: [{ strategy: { name: "self_consistency", samples: 3, extract: "last_number" } }, {}],
      extract: "last_number"
    }))
    return Effect.gen(function*() {
      const [done] = yield* runLines(lines(1), { strategy })
      // 3 samples + 1 proposer + 1 aggregator
      expect(mock.calls).toHaveLength(5)
      expect((done!.steps as ReadonlyArray<{ step: string }>).map((s) => s.step)).toEqual([
        "proposer 0/sample 0/answer",
        "proposer 0/sample 1/answer",
        "proposer 0/sample 2/answer",
        "proposer 1/answer",
        "aggregate/answer"
      ])
      expect(done!.answer).toBeNull()
      expect(done!.answer_error).toContain("last_number")
      expect(done!.error).toBeUndefined()
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("best-of picks the sample the aggregator names; use_n asks for n choices in one request", () => {
    const mock = MockProvider.make("mock", {
      respond: (r) => {
        const id = String(r.id)
        if (id.endsWith("select")) return "The best is response 2."
        if (id.endsWith("samples")) return { response: ["9", "9", "8"] }
        return `candidate ${id}`
      }
    })
    return Effect.gen(function*() {
      const [best] = yield* runLines(lines(1), { strategy: Strategy.bestOf({ samples: 3 }) })
      expect(best!.response).toBe("candidate q0#sample 1/answer")
      expect(best!.pick).toBe(1)
      const [voted] = yield* runLines(lines(1, { id: "n" }), { strategy: Strategy.selfConsistency({ samples: 3, useN: true }) })
      const call = mock.calls.find((c) => c.id === "n#samples")!
      expect(call.record.parameters).toEqual({ n: 3 })
      expect(voted!.answer).toBe("9")
      expect(voted!.steps).toHaveLength(1)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })

  it.effect("a line's own strategy key wins over the default; basic lines are written as they are, without steps", () => {
    const mock = MockProvider.make("mock")
    return Effect.gen(function*() {
      const records = [
        ...lines(1),
        { id: "plain", api: "mock", model_name: "m", prompt: "p", strategy: "basic" },
        { id: "two", api: "mock", model_name: "m", prompt: "p", strategy: "two_turn" }
      ]
      const done = byId(yield* runLines(records, { strategy: Strategy.selfConsistency({ samples: 2 }) }))
      expect(done.get("q0")!.steps).toHaveLength(2)
      expect(done.get("plain")!.steps).toBeUndefined()
      expect(done.get("plain")!.response).toBe("mock response to plain")
      expect(done.get("two")!.steps).toHaveLength(2)
      expect(mock.calls).toHaveLength(5)
    }).pipe(Effect.provide(MockProvider.layer(mock)))
  })
})

describe("StrategySpec", () => {
  it("decodes every built-in and names the key of a bad setting", () => {
    for (const name of StrategySpec.builtInNames) {
      const spec = name === "mixture_of_agents" ? { name, proposers: [{}] } : name
      expect(Either.isRight(StrategySpec.decode(spec))).toBe(true)
    }
    const bad = (spec: unknown) => Either.flip(StrategySpec.decode(spec)).pipe(Either.getOrThrow).message
    expect(bad({ name: "self_consistency", samples: 0 })).toMatch(/^strategy\.samples: must be a whole number of at least 1/)
    expect(bad({ name: "self_consistency", extract: "nope" })).toMatch(/^strategy\.extract: /)
    expect(bad({ name: "mixture_of_agents", proposers: [] })).toMatch(/^strategy\.proposers/)
    expect(bad({ name: "mixture_of_agents", proposers: [{ api: 3 }] })).toMatch(/^strategy\.proposers\.0\.api: must be a string/)
    expect(bad({ name: "critique", round: 2 })).toMatch(/^strategy\.round: is unexpected/)
    expect(bad("nope")).toMatch(/unknown strategy "nope"; known: "basic"/)
    expect(bad({ name: "mixture_of_agents", proposers: [{ strategy: "nope" }] })).toMatch(/^strategy\.proposers\.0\.strategy: unknown/)
  })

  it("named strategies from a setup resolve, and a cycle is an error", () => {
    const setup: StrategySpec.StrategySetup = {
      ...StrategySpec.defaultSetup,
      named: new Map<string, unknown>([["sc3", { name: "self_consistency", samples: 3 }], ["loop", "loop"]])
    }
    expect(Either.getOrThrow(StrategySpec.decode("sc3", setup)).name).toBe("self_consistency")
    expect(Either.isLeft(StrategySpec.decode("loop", setup))).toBe(true)
    const resolve = StrategySpec.resolver({ ...setup, default: "sc3" })
    expect(Either.getOrThrow(resolve(lines(1)[0]!))?.name).toBe("self_consistency")
    expect(Either.getOrThrow(resolve({ ...lines(1)[0]!, strategy: "basic" }))).toBeUndefined()
  })
})
