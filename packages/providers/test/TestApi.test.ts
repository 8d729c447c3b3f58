import { describe, expect, it } from "@effect/vitest"
import { type PromptRecord, Provider, ProviderError, RetryPolicy, Scheduler } from "@prompto/core"
import { Duration, Effect, Either, Fiber, Option, Stream, TestClock } from "effect"
import * as Providers from "../src/index.js"
import { TestApi } from "../src/index.js"

const record = (
  prompt: PromptRecord.Prompt,
  parameters?: Readonly<Record<string, unknown>>,
  id: PromptRecord.PromptId = 1
): PromptRecord.IdentifiedRecord => ({
  id,
  api: "test",
  model_name: "test-model",
  prompt,
  ...(parameters !== undefined ? { parameters } : {})
})

/** Runs one query to completion, letting the test clock run past any latency. */
const send = (provider: Provider.Provider, input: PromptRecord.IdentifiedRecord) =>
  Effect.gen(function*() {
    const fiber = yield* provider.query(input).pipe(Effect.either, Effect.fork)
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.join(fiber)
  })

const answer = (provider: Provider.Provider, input: PromptRecord.IdentifiedRecord) =>
  Effect.flatMap(send(provider, input), (result) =>
    Either.isRight(result) ? Effect.succeed(result.right) : Effect.die(result.left))

const failure = (provider: Provider.Provider, input: PromptRecord.IdentifiedRecord) =>
  Effect.flatMap(send(provider, input), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.die(`expected a failure, got ${String(result.right.response)}`))

describe("TestApi", () => {
  describe("responses", () => {
    it.effect("answers a string prompt with usage and fields", () =>
      Effect.gen(function*() {
        const response = yield* answer(TestApi.make(), record("What is the capital of France?"))
        expect(response).toEqual({
          response: "This is a test response to: What is the capital of France?",
          usage: { prompt_tokens: 6, completion_tokens: 12, total_tokens: 18 },
          fields: { model: "test-model", finish_reason: "stop" }
        })
      }))

    it.effect("cuts a long prompt to 60 characters with an ellipsis", () =>
      Effect.gen(function*() {
        const prompt = "x".repeat(59) + "yz" + "w".repeat(40)
        const response = yield* answer(TestApi.make(), record(prompt))
        expect(response.response).toBe(`This is a test response to: ${"x".repeat(59)}y…`)
        expect(TestApi.responseText("short")).toBe("This is a test response to: short")
        expect(TestApi.responseText("a".repeat(60))).toBe(`This is a test response to: ${"a".repeat(60)}`)
      }))

    it.effect("answers a multi-turn prompt with one response per turn", () =>
      Effect.gen(function*() {
        const response = yield* answer(TestApi.make(), record(["Hello", "How are you?"]))
        expect(response.response).toEqual([
          "This is a test response to: Hello",
          "This is a test response to: How are you?"
        ])
        expect(response.usage).toEqual({ prompt_tokens: 4, completion_tokens: 16, total_tokens: 20 })
      }))

    it.effect("answers the last user message of a chat history (content string or text parts)", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        const openAi = yield* answer(
          provider,
          record([
            { role: "system", content: "Be brief" },
            { role: "user", content: "first question" },
            { role: "assistant", content: "ok" },
            { role: "user", content: [{ type: "text", text: "second" }, { type: "image_url" }, { type: "text", text: "question" }] }
          ])
        )
        expect(openAi.response).toBe("This is a test response to: second question")
        // every message is sent: 2 + 2 + 1 + 2 words
        expect(openAi.usage).toEqual({ prompt_tokens: 7, completion_tokens: 8, total_tokens: 15 })

        const gemini = yield* answer(
          provider,
          record([{ role: "user", parts: [{ text: "hi there" }] }, { role: "model", parts: "hello" }], undefined, 2)
        )
        expect(gemini.response).toBe("This is a test response to: hi there")
      }))
  })

  describe("latency", () => {
    it.effect("waits latency_ms before answering", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(TestApi.make().query(record("hi", { latency_ms: 500 })))
        yield* TestClock.adjust("499 millis")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        yield* TestClock.adjust("1 millis")
        const done = yield* Fiber.poll(fiber)
        expect(Option.isSome(done)).toBe(true)
        expect((yield* Fiber.join(fiber)).response).toBe("This is a test response to: hi")
      }))

    it.effect("waits 200 ms by default", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(TestApi.make().query(record("hi")))
        yield* TestClock.adjust("199 millis")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        yield* TestClock.adjust("1 millis")
        expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
      }))

    it.effect("a latency past the run's timeout is cut at the deadline on the request's own fiber (timesOut)", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        expect(provider.timesOut).toBe(true)
        const fiber = yield* Scheduler.run([{
          key: "q",
          queriesPerMinute: 60,
          records: Stream.make(record("slow", { latency_ms: 10_000 }, "slow"), record("quick", { latency_ms: 500 }, "quick"))
        }], { maxAttempts: 1, timeout: "2 seconds" }).pipe(Stream.runCollect, Effect.timed, Effect.fork)
        yield* TestClock.adjust("1 minute")
        const [took, done] = yield* Fiber.join(fiber)
        const byId = new Map([...done].map((completed) => [completed.id, completed]))
        expect(byId.get("slow")?.error).toMatchObject({ kind: "timeout", message: "no response within 2s" })
        expect(byId.get("quick")?.response).toContain("quick")
        // the slow line ends at its deadline (2 s), not at its latency (10 s)
        expect(Duration.toMillis(took)).toBe(2000)
      }).pipe(Effect.provide(Provider.layer(TestApi.make()))))

    it.effect("waits once per turn of a multi-turn prompt", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(TestApi.make().query(record(["a", "b", "c"], { latency_ms: 100 })))
        yield* TestClock.adjust("299 millis")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        yield* TestClock.adjust("1 millis")
        expect(Option.isSome(yield* Fiber.poll(fiber))).toBe(true)
      }))

    it.effect("failures also take the latency", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(
          Effect.either(TestApi.make().query(record("hi", { latency_ms: 300, fail_attempts: 1 })))
        )
        yield* TestClock.adjust("299 millis")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        yield* TestClock.adjust("1 millis")
        expect(Either.isLeft(yield* Fiber.join(fiber))).toBe(true)
      }))
  })

  describe("failure injection", () => {
    it.effect("raise_error \"True\" fails every attempt permanently by default (prompto's ValueError)", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        for (const _ of [1, 2, 3]) {
          const error = yield* failure(provider, record("hi", { raise_error: "True" }))
          expect(error).toBeInstanceOf(ProviderError.PermanentError)
          expect(error.retryable).toBe(false)
          expect(error).toMatchObject({ reason: "bad_request", message: TestApi.errorMessage })
        }
        const valueError = yield* failure(provider, record("hi", { raise_error: "True", raise_error_type: "ValueError" }))
        expect(valueError).toBeInstanceOf(ProviderError.PermanentError)
        // the record's response names prompto's error type, so outputs compare with prompto's
        expect(RetryPolicy.errorResponse(valueError, 1, 5)).toBe(`ValueError - ${TestApi.errorMessage}`)
      }))

    it.effect("raise_error_type \"Exception\" fails retryably", () =>
      Effect.gen(function*() {
        const error = yield* failure(TestApi.make(), record("hi", { raise_error: "True", raise_error_type: "Exception" }))
        expect(error).toBeInstanceOf(ProviderError.TransientError)
        expect(error.retryable).toBe(true)
        expect(error.message).toBe("This is a test error which we should handle and return")
        expect(RetryPolicy.errorResponse(error, 5, 5)).toBe(
          `An unexpected error occurred when querying the API: (Exception - ${TestApi.errorMessage}) after maximum 5 attempts`
        )
      }))

    it.effect("raise_error \"False\" answers normally", () =>
      Effect.gen(function*() {
        const response = yield* answer(TestApi.make(), record("hi", { raise_error: "False" }))
        expect(response.response).toBe("This is a test response to: hi")
      }))

    it.effect("fail_attempts fails exactly n attempts of that id, then succeeds", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        const failing = record("hi", { fail_attempts: 2 }, "a")
        const first = yield* failure(provider, failing)
        const second = yield* failure(provider, failing)
        for (const error of [first, second]) {
          expect(error).toBeInstanceOf(ProviderError.TransientError)
          expect(error.retryable).toBe(true)
        }
        // another id has its own count
        const other = yield* failure(provider, record("hi", { fail_attempts: 2 }, "b"))
        expect(other).toBeInstanceOf(ProviderError.TransientError)
        expect((yield* answer(provider, failing)).response).toBe("This is a test response to: hi")
        expect((yield* answer(provider, failing)).response).toBe("This is a test response to: hi")
      }))

    it.effect("a retry policy on `retryable` gets through fail_attempts", () =>
      Effect.gen(function*() {
        let attempts = 0
        const fiber = yield* TestApi.make().query(record("hi", { fail_attempts: 3, latency_ms: 100 })).pipe(
          Effect.tapError(() => Effect.sync(() => attempts++)),
          Effect.retry({ while: (error) => error.retryable, times: 5 }),
          Effect.fork
        )
        yield* TestClock.adjust("1 second")
        const response = yield* Fiber.join(fiber)
        expect(attempts).toBe(3)
        expect(response.response).toBe("This is a test response to: hi")
      }))

    it.effect("a fresh instance starts its counts afresh", () =>
      Effect.gen(function*() {
        const failing = record("hi", { fail_attempts: 1 })
        const a = TestApi.make()
        expect(yield* failure(a, failing)).toBeInstanceOf(ProviderError.TransientError)
        expect((yield* answer(a, failing)).response).toBe("This is a test response to: hi")
        expect(yield* failure(TestApi.make(), failing)).toBeInstanceOf(ProviderError.TransientError)
      }))

    it.effect("rate_limit_attempts fails with RateLimitError carrying retry_after_ms", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        const limited = record("hi", { rate_limit_attempts: 1, retry_after_ms: 1500 })
        const error = yield* failure(provider, limited)
        expect(error).toBeInstanceOf(ProviderError.RateLimitError)
        expect(error.retryable).toBe(true)
        expect(error).toMatchObject({ _tag: "RateLimitError", retryAfterMs: 1500 })
        expect((yield* answer(provider, limited)).response).toBe("This is a test response to: hi")

        const bare = yield* failure(provider, record("hi", { rate_limit_attempts: 1 }, 2))
        expect(bare).toBeInstanceOf(ProviderError.RateLimitError)
        expect(bare instanceof ProviderError.RateLimitError ? bare.retryAfterMs : "not a rate limit").toBeUndefined()
      }))

    it.effect("rate limits come before fail_attempts failures", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        const both = record("hi", { rate_limit_attempts: 2, fail_attempts: 1 })
        const tags: Array<string> = []
        for (const _ of [1, 2, 3]) tags.push((yield* failure(provider, both))._tag)
        expect(tags).toEqual(["RateLimitError", "RateLimitError", "TransientError"])
        expect((yield* answer(provider, both)).response).toBe("This is a test response to: hi")
      }))
  })

  describe("check", () => {
    it("accepts records without parameters or with valid ones", () => {
      expect(TestApi.check(record("hi"))).toEqual([])
      expect(
        TestApi.check(record(["a", "b"], {
          latency_ms: 0,
          raise_error: "False",
          raise_error_type: "Exception",
          fail_attempts: 2,
          rate_limit_attempts: 0,
          retry_after_ms: 250.5,
          temperature: 0.7
        }))
      ).toEqual([])
    })

    it("reports each bad parameter by key", () => {
      const problems = TestApi.check(record("hi", {
        latency_ms: -1,
        raise_error: true,
        fail_attempts: 1.5,
        rate_limit_attempts: "2",
        retry_after_ms: "soon"
      }))
      expect(problems.map((problem) => problem.key).sort()).toEqual([
        "parameters.fail_attempts",
        "parameters.latency_ms",
        "parameters.raise_error",
        "parameters.rate_limit_attempts",
        "parameters.retry_after_ms"
      ])
      expect(problems.every((problem) => problem.message.length > 0)).toBe(true)
    })

    it.effect("an empty prompt list is refused by check and query in the words every API uses", () =>
      Effect.gen(function*() {
        expect(TestApi.check(record([], { latency_ms: -1 }))).toEqual([
          { key: "prompt", message: "the list is empty: give at least one turn or message" },
          { key: "parameters.latency_ms", message: "must be a non-negative number (milliseconds)" }
        ])
        const error = yield* failure(TestApi.make(), record([]))
        expect(error).toMatchObject({
          _tag: "PermanentError",
          reason: "validation",
          message: "prompt: the list is empty: give at least one turn or message"
        })
      }))

    it("rejects raise_error values other than the strings \"True\" and \"False\"", () => {
      for (const value of ["true", "yes", 1, null]) {
        expect(TestApi.check(record("hi", { raise_error: value })).map((problem) => problem.key)).toEqual([
          "parameters.raise_error"
        ])
      }
      expect(TestApi.check(record("hi", { latency_ms: "200" })).map((problem) => problem.key)).toEqual([
        "parameters.latency_ms"
      ])
    })
  })

  describe("reply", () => {
    it.effect("answers with a fixed reply, or a stable pick from a list of replies", () =>
      Effect.gen(function*() {
        const provider = TestApi.make()
        expect((yield* answer(provider, record("Is this harmful?", { reply: "no" }))).response).toBe("no")
        const replies = ["yes", "no"]
        const picks = []
        for (let i = 0; i < 20; i++) {
          const first = (yield* answer(provider, record(`question ${i}`, { reply: replies }, `a${i}`))).response
          const again = (yield* answer(provider, record(`question ${i}`, { reply: replies }, `b${i}`))).response
          expect(again).toBe(first)
          picks.push(first)
        }
        expect(new Set(picks)).toEqual(new Set(replies))
        expect(TestApi.check(record("x", { reply: [] }))).toEqual([
          { key: "parameters.reply", message: "must be a string or a non-empty list of strings" }
        ])
        expect(TestApi.check(record("x", { reply: [1] })).length).toBe(1)
        expect(TestApi.check(record("x", { reply: "yes" }))).toEqual([])
      }))
  })

  describe("layers", () => {
    it.effect("TestApi.layer registers the test API", () =>
      Effect.gen(function*() {
        const registry = yield* Provider.registry
        expect([...registry.keys()]).toEqual(["test"])
        const provider = registry.get("test")!
        expect((yield* answer(provider, record("hi"))).response).toBe("This is a test response to: hi")
      }).pipe(Effect.provide(TestApi.layer)))

    it.effect("the package layer holds every built-in provider", () =>
      Effect.gen(function*() {
        const registry = yield* Provider.registry
        expect([...registry.keys()].sort()).toEqual(["anthropic", "azure-openai", "gemini", "huggingface-tgi", "ollama", "openai", "quart", "test", "vertexai"])
        expect(registry.has(TestApi.api)).toBe(true)
        expect(TestApi.parametersDoc.map((doc) => doc.name)).toContain("latency_ms")
      }).pipe(Effect.provide(Providers.layer)))
  })
})

describe("the test API on the run's hot path", () => {
  it.live("on the live clock a plain prompt is a prepared call (a timer) that answers as query does", () =>
    Effect.gen(function*() {
      const provider = TestApi.make()
      const input = record("what is 2 + 2?", { latency_ms: 20, reply: ["four", "4"] })
      const call = yield* provider.prepare!(input)
      expect(call).toBeDefined()
      const started = Date.now()
      const outcome = yield* Effect.async<Provider.Outcome>((resume) => {
        call!((result) => resume(Effect.succeed(result)))
      })
      expect(Date.now() - started).toBeGreaterThanOrEqual(19)
      expect(outcome).toEqual(Either.right(yield* provider.query(input)))
      // a cancelled call never answers
      let answered = false
      const cancel = (yield* provider.prepare!(input))!(() => (answered = true))
      cancel()
      yield* Effect.sleep("40 millis")
      expect(answered).toBe(false)
    }))

  it.live("failures on purpose and turns are query's", () =>
    Effect.gen(function*() {
      const provider = TestApi.make()
      expect(yield* provider.prepare!(record("x", { fail_attempts: 1 }))).toBeUndefined()
      expect(yield* provider.prepare!(record("x", { raise_error: "True" }))).toBeUndefined()
      expect(yield* provider.prepare!(record(["a", "b"]))).toBeUndefined()
    }))

  it.effect("under the TestClock every prompt is query's (its waits are the Effect clock's)", () =>
    Effect.gen(function*() {
      expect(yield* TestApi.make().prepare!(record("x"))).toBeUndefined()
    }))
})
