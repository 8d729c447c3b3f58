import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as ExperimentFile from "../src/ExperimentFile.js"
import * as PromptRecord from "../src/PromptRecord.js"

const base = { id: 7, api: "openai", model_name: "gpt-4o", prompt: "2 + 2?" }

const step = (name: string, extra: Record<string, unknown> = {}) => ({
  step: name,
  api: "openai",
  model_name: "gpt-4o",
  prompt: [{ role: "user", content: "2 + 2?" }],
  response: "4",
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  latency_ms: 120,
  attempts: 1,
  ...extra
})

const decode = (value: unknown) => PromptRecord.decodeCompletedLine("out.jsonl", 3, JSON.stringify(value))

const problems = (result: ReturnType<typeof decode>) => {
  if (Either.isRight(result)) throw new Error(`expected problems, got ${JSON.stringify(result.right)}`)
  return result.left
}

const record = (result: ReturnType<typeof decode>) => {
  if (Either.isLeft(result)) throw new Error(result.left.map(ExperimentFile.formatProblem).join("\n"))
  return result.right
}

describe("PromptRecord.CompletedRecord", () => {
  it("decodes a completed record of a strategy: steps, answer, strategy", () => {
    const line = {
      ...base,
      response: "The answer is 4.",
      answer: 4,
      strategy: { name: "self-consistency", samples: 2 },
      steps: [step("sample-1"), step("sample-2", { parameters: { temperature: 1 }, error: undefined })],
      usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
      timestamp_sent: "04-12-2026-10-00-00",
      timestamp_received: "04-12-2026-10-00-01",
      latency_ms: 250,
      attempts: 2
    }
    const decoded = record(decode(line))
    expect(decoded.answer).toBe(4)
    expect(decoded.steps?.map((item) => item.step)).toEqual(["sample-1", "sample-2"])
    expect(decoded.steps?.[1]?.parameters).toEqual({ temperature: 1 })
    expect(decoded).toEqual(JSON.parse(JSON.stringify(line)))
  })

  it("a null answer (extraction failed) and an error record decode", () => {
    const decoded = record(decode({
      ...base,
      response: "Step \"vote\" failed: down",
      answer: null,
      error: { kind: "transient", message: "down", attempts: 5 }
    }))
    expect(decoded.answer).toBeNull()
    expect(decoded.error).toEqual({ kind: "transient", message: "down", attempts: 5 })
    expect(PromptRecord.isSuccess(decoded)).toBe(false)
  })

  it("keeps unknown keys, in the line's order, at the top and inside steps and usage", () => {
    const text = JSON.stringify({
      "input-id": 1,
      ...base,
      response: "4",
      judge: "yes",
      usage: { total_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } },
      steps: [step("draft", { finish_reason: "stop" })],
      scorer_errors: null
    })
    const decoded = record(PromptRecord.decodeCompletedLine("out.jsonl", 1, text))
    expect(JSON.stringify(decoded)).toBe(text)
    expect(decoded.judge).toBe("yes")
    expect(decoded.steps?.[0]).toHaveProperty("finish_reason", "stop")
  })

  it("a bad steps item is named by its key path", () => {
    const found = problems(decode({ ...base, response: "4", steps: [step("a"), { ...step("b"), step: 2 }] }))
    expect(found).toEqual([{ file: "out.jsonl", line: 3, key: "steps.1.step", message: "must be a string" }])
    expect(ExperimentFile.formatProblem(found[0]!)).toBe("out.jsonl:3: key \"steps.1.step\": must be a string")
  })

  it("a step without its prompt, a bad error and a bad usage count are each named", () => {
    const { prompt: _prompt, ...noPrompt } = step("a")
    const found = problems(decode({
      ...base,
      response: "4",
      steps: [noPrompt],
      error: { kind: "auth", message: "no key" },
      usage: { total_tokens: "12" }
    }))
    expect(found.map((problem) => [problem.key, problem.message])).toEqual([
      ["usage.total_tokens", "must be a number"],
      ["error.attempts", "is required but missing"],
      ["steps.0.prompt", "is required but missing"]
    ])
  })

  it("id and response are required", () => {
    const { id: _id, ...noId } = base
    const found = problems(decode(noId))
    expect(found.map((problem) => [problem.key, problem.message])).toEqual([
      ["id", "is required but missing"],
      ["response", "is required but missing"]
    ])
  })

  it("a line that is not JSON, or not an object, is one problem without a key", () => {
    const cut = PromptRecord.decodeCompletedLine("out.jsonl", 9, "{\"id\": 4, \"response\": \"cut off")
    expect(problems(cut)).toHaveLength(1)
    expect(ExperimentFile.formatProblem(problems(cut)[0]!)).toMatch(/^out\.jsonl:9: invalid JSON \(/)
    expect(problems(PromptRecord.decodeCompletedLine("out.jsonl", 2, "[1, 2]"))).toEqual([
      { file: "out.jsonl", line: 2, message: "must be a JSON object, got an array" }
    ])
  })

  it("a huge line that is not JSON is not quoted whole", () => {
    const text = `{"id": 1, "response": "${"x".repeat(10_000)}`
    const [problem] = problems(PromptRecord.decodeCompletedLine("out.jsonl", 1, text))
    expect(problem!.message.length).toBeLessThan(300)
  })

  it("encodes back to the same object (the schema transforms nothing)", () => {
    const line = { ...base, response: "4", answer: "4", steps: [step("only")], extra: [1, 2] }
    const decoded = record(decode(line))
    expect(Schema.encodeSync(PromptRecord.CompletedRecord)(decoded)).toEqual(line)
  })
})

describe("PromptRecord.CompletedOutcome", () => {
  const outcome = Schema.decodeUnknownEither(Schema.parseJson(PromptRecord.CompletedOutcome), { exact: true })

  it("reads only id, response and error", () => {
    expect(outcome(JSON.stringify({ id: "a", response: "x", steps: "not checked here" }))).toEqual(
      Either.right({ id: "a", response: "x" })
    )
    expect(Either.isRight(outcome(JSON.stringify({ id: 1, response: "x", error: null })))).toBe(true)
    expect(Either.isLeft(outcome(JSON.stringify({ id: 1 })))).toBe(true)
    expect(Either.isLeft(outcome(JSON.stringify({ response: "x" })))).toBe(true)
  })
})
