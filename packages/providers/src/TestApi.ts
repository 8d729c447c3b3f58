/**
 * The built-in `test` API: a provider that needs no key and no network. It answers every
 * prompt with a deterministic text derived from the prompt, waits a simulated latency (with
 * `Effect.sleep`, so `TestClock` controls it; on the live clock a single-turn prompt that does
 * not fail on purpose is a prepared call, a plain timer on the run's hot path), and fails on
 * request, so the quickstart and examples can show pacing and retries offline.
 *
 * Parameters (all optional, under a record's `parameters`):
 *
 * - `latency_ms` (number, default 200): simulated latency per turn; a multi-turn prompt waits
 *   once per turn.
 * - `raise_error` (`"True"` | `"False"`): as in Python prompto, `"True"` fails every attempt.
 * - `raise_error_type` (string): with `raise_error`, `"Exception"` gives a retryable
 *   `TransientError`; anything else (prompto's `ValueError`) a non-retryable `PermanentError`.
 * - `fail_attempts` (integer, default 0): the first n attempts of the record's id fail with a
 *   retryable `TransientError`, later attempts succeed.
 * - `rate_limit_attempts` (integer, default 0): the first n attempts of the record's id fail
 *   with a `RateLimitError` (before any `fail_attempts` failures).
 * - `retry_after_ms` (number): the `retryAfterMs` carried by those `RateLimitError`s.
 * - `reply` (string or list of strings): answer with this text instead of the echo, for offline
 *   judges and scorers; from a list, the reply is picked by a hash of the question, so the same
 *   question always gets the same reply.
 *
 * Unlike prompto's test API there is no random failure: every run of a file behaves the same.
 *
 * @since 0.1.0
 */
import { type PromptRecord, Provider, ProviderError } from "@prompto/core"
import { Clock, Effect, Either, Layer } from "effect"
import * as EmptyPrompt from "./internal/emptyPrompt.js"

/**
 * The `api` value this provider answers.
 *
 * @since 0.1.0
 * @category constants
 */
export const api = "test"

/**
 * The parameters the test API reads, for typing records in TypeScript (e.g.
 * `parameters: { latency_ms: 500, fail_attempts: 2 } satisfies TestApi.Parameters`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Parameters {
  readonly latency_ms?: number
  readonly raise_error?: "True" | "False"
  readonly raise_error_type?: string
  readonly fail_attempts?: number
  readonly rate_limit_attempts?: number
  readonly retry_after_ms?: number
  readonly reply?: string | ReadonlyArray<string>
}

/**
 * The description of one parameter, for help texts.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParameterDoc {
  readonly name: keyof Parameters
  readonly type: string
  readonly default?: string
  readonly description: string
}

/**
 * Every parameter the test API reads.
 *
 * @since 0.1.0
 * @category constants
 */
export const parametersDoc: ReadonlyArray<ParameterDoc> = [
  {
    name: "latency_ms",
    type: "number",
    default: "200",
    description: "Simulated latency in milliseconds; a multi-turn prompt waits once per turn."
  },
  {
    name: "raise_error",
    type: "\"True\" | \"False\"",
    default: "\"False\"",
    description: "\"True\" fails every attempt (as in Python prompto)."
  },
  {
    name: "raise_error_type",
    type: "string",
    default: "\"ValueError\"",
    description: "With raise_error: \"Exception\" fails retryably, anything else permanently (bad request)."
  },
  {
    name: "reply",
    type: "string | string[]",
    default: "the echo",
    description: "Answer with this text; from a list, one picked by a hash of the question (the same question, the same reply)."
  },
  {
    name: "fail_attempts",
    type: "integer",
    default: "0",
    description: "The first n attempts of the record's id fail with a retryable transient error."
  },
  {
    name: "rate_limit_attempts",
    type: "integer",
    default: "0",
    description: "The first n attempts of the record's id fail with a rate-limit error (before fail_attempts)."
  },
  {
    name: "retry_after_ms",
    type: "number",
    description: "The retry-after, in milliseconds, carried by the rate-limit errors."
  }
]

/**
 * The default simulated latency per turn, in milliseconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLatencyMs = 200

/**
 * The message of the error raised by `raise_error: "True"`, as in Python prompto.
 *
 * @since 0.1.0
 * @category constants
 */
export const errorMessage = "This is a test error which we should handle and return"

const maxEcho = 60

/**
 * The answer to one turn: `"This is a test response to: <text>"`, the text cut to 60
 * characters with `…`.
 *
 * @since 0.1.0
 * @category utils
 */
export const responseText = (text: string): string => {
  const chars = Array.from(text)
  const echo = chars.length > maxEcho ? `${chars.slice(0, maxEcho).join("")}…` : text
  return `This is a test response to: ${echo}`
}

/** A stable choice from a list, by the question's text (FNV-1a, then mixed so every bit counts). */
const pick = (replies: ReadonlyArray<string>, question: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < question.length; i++) hash = Math.imul(hash ^ question.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  hash ^= hash >>> 16
  return replies[(hash >>> 0) % replies.length] ?? ""
}

/**
 * The answer to one turn, given the record's `reply` parameter (if any).
 *
 * @since 0.1.0
 * @category utils
 */
export const answer = (question: string, reply: unknown): string =>
  typeof reply === "string"
    ? reply
    : Array.isArray(reply) && reply.length > 0
    ? pick(reply as ReadonlyArray<string>, question)
    : responseText(question)

const wordCount = (text: string): number => text.split(/\s+/).filter((word) => word.length > 0).length

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The text of `content` or `parts`: a string, `{ text }`, or a list of those (others skipped). */
const partsText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (Array.isArray(value)) return value.map(partsText).filter((text) => text.length > 0).join(" ")
  if (isRecord(value) && typeof value.text === "string") return value.text
  return ""
}

const messageText = (message: PromptRecord.ChatMessage): string =>
  partsText(message.content !== undefined ? message.content : message.parts)

const isTurns = (prompt: PromptRecord.Prompt): prompt is ReadonlyArray<string> =>
  typeof prompt !== "string" && prompt.every((turn) => typeof turn === "string")

interface Plan {
  /** The texts answered, one per turn. */
  readonly questions: ReadonlyArray<string>
  /** Every text sent, for the prompt token estimate. */
  readonly sent: ReadonlyArray<string>
  readonly multiTurn: boolean
}

const plan = (prompt: PromptRecord.Prompt): Plan => {
  if (typeof prompt === "string") return { questions: [prompt], sent: [prompt], multiTurn: false }
  if (isTurns(prompt)) return { questions: prompt, sent: prompt, multiTurn: true }
  const texts = prompt.map(messageText)
  const users = prompt.flatMap((message, index) => (message.role === "user" ? [index] : []))
  const question = texts[users.at(-1) ?? texts.length - 1] ?? ""
  return { questions: [question], sent: texts, multiTurn: false }
}

const sum = (values: ReadonlyArray<number>): number => values.reduce((total, value) => total + value, 0)

const numberParameter = (parameters: Readonly<Record<string, unknown>>, key: string, fallback: number): number => {
  const value = parameters[key]
  return typeof value === "number" && Number.isFinite(value) ? value : fallback
}

const isNonNegativeNumber = (value: unknown): boolean =>
  typeof value === "number" && Number.isFinite(value) && value >= 0

const isNonNegativeInteger = (value: unknown): boolean =>
  typeof value === "number" && Number.isInteger(value) && value >= 0

/**
 * Checks the parameters the test API reads. Any prompt shape is accepted but an empty list,
 * which every API refuses with the same words.
 *
 * @since 0.1.0
 * @category utils
 */
export const check = (record: PromptRecord.PromptRecord): ReadonlyArray<Provider.RecordProblem> => {
  const parameters = record.parameters ?? {}
  const problems: Array<Provider.RecordProblem> = EmptyPrompt.is(record.prompt) ? [EmptyPrompt.problem] : []
  const numberKeys = ["latency_ms", "retry_after_ms"] as const
  for (const key of numberKeys) {
    if (key in parameters && !isNonNegativeNumber(parameters[key])) {
      problems.push({ key: `parameters.${key}`, message: "must be a non-negative number (milliseconds)" })
    }
  }
  if (
    "reply" in parameters && typeof parameters.reply !== "string" &&
    !(Array.isArray(parameters.reply) && parameters.reply.length > 0 &&
      parameters.reply.every((item) => typeof item === "string"))
  ) {
    problems.push({ key: "parameters.reply", message: "must be a string or a non-empty list of strings" })
  }
  if ("raise_error" in parameters && parameters.raise_error !== "True" && parameters.raise_error !== "False") {
    problems.push({ key: "parameters.raise_error", message: "must be the string \"True\" or \"False\"" })
  }
  const integerKeys = ["fail_attempts", "rate_limit_attempts"] as const
  for (const key of integerKeys) {
    if (key in parameters && !isNonNegativeInteger(parameters[key])) {
      problems.push({ key: `parameters.${key}`, message: "must be a non-negative integer" })
    }
  }
  return problems
}

/**
 * A turn's latency: no timer at all for 0 ms (a timer fires a millisecond late at best). It
 * ends at the request's deadline with the timeout (`Provider.sleep`), so the run's timeout
 * needs no fiber of its own for this provider (`timesOut`).
 */
const wait = (latencyMs: number): Effect.Effect<void, ProviderError.RequestTimeoutError> =>
  latencyMs > 0 ? Provider.sleep(latencyMs) : Effect.void

/**
 * Makes a test API provider. Each instance counts attempts per record id on its own, so
 * `fail_attempts` and `rate_limit_attempts` start afresh with a new instance.
 *
 * Failures take one turn's latency, like a real round trip, then fail.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Provider.Provider => {
  const attempts = new Map<PromptRecord.PromptId, number>()
  const query = (record: PromptRecord.IdentifiedRecord): Effect.Effect<Provider.ProviderResponse, ProviderError.ProviderError> =>
      Effect.gen(function*() {
        if (EmptyPrompt.is(record.prompt)) return yield* EmptyPrompt.error()
        const parameters = record.parameters ?? {}
        const latency = Math.max(0, numberParameter(parameters, "latency_ms", defaultLatencyMs))
        const rateLimited = numberParameter(parameters, "rate_limit_attempts", 0)
        const transient = numberParameter(parameters, "fail_attempts", 0)
        // attempts are counted only for prompts that fail on purpose, so a long run of ordinary
        // prompts holds no memory per prompt
        const counted = rateLimited + transient > 0
        const attempt = counted ? (attempts.get(record.id) ?? 0) + 1 : 1
        if (counted) attempts.set(record.id, attempt)

        if (parameters.raise_error === "True") {
          yield* wait(latency)
          // named as prompto's test API raises them, so outputs compare with prompto's
          return yield* parameters.raise_error_type === "Exception"
            ? new ProviderError.TransientError({ message: errorMessage, errorName: "Exception" })
            : new ProviderError.PermanentError({ reason: "bad_request", message: errorMessage, errorName: "ValueError" })
        }
        if (attempt <= rateLimited) {
          yield* wait(latency)
          const retryAfter = parameters.retry_after_ms
          return yield* new ProviderError.RateLimitError({
            message: `test API rate limit (attempt ${attempt} of ${rateLimited} limited)`,
            ...(typeof retryAfter === "number" ? { retryAfterMs: retryAfter } : {})
          })
        }
        if (attempt <= rateLimited + transient) {
          yield* wait(latency)
          return yield* new ProviderError.TransientError({
            message: `test API failure (attempt ${attempt} of ${rateLimited + transient} failing)`,
            status: 503
          })
        }

        const planned = plan(record.prompt)
        for (let turn = 0; turn < planned.questions.length; turn++) yield* wait(latency)
        return responseOf(record, planned)
      })
  const prepare = (record: PromptRecord.IdentifiedRecord): Effect.Effect<Provider.Call | undefined> =>
    Effect.clockWith((clock) => {
      // on any clock but the live one (a test's `TestClock`) the wait is the Effect clock's: `query`
      if (clock.constructor !== liveClock.constructor || EmptyPrompt.is(record.prompt)) return Effect.succeed(undefined)
      const parameters = record.parameters ?? {}
      // failures on purpose, and turns (a wait each), are `query`'s
      if (
        parameters.raise_error === "True" || numberParameter(parameters, "rate_limit_attempts", 0) > 0 ||
        numberParameter(parameters, "fail_attempts", 0) > 0
      ) return Effect.succeed(undefined)
      const planned = plan(record.prompt)
      if (planned.questions.length !== 1) return Effect.succeed(undefined)
      const latency = Math.max(0, numberParameter(parameters, "latency_ms", defaultLatencyMs))
      return Effect.succeed<Provider.Call>((done) => {
        // no timer at all for 0 ms, as `wait`
        if (latency === 0) {
          done(Either.right(responseOf(record, planned)))
          return () => {}
        }
        const timer = setTimeout(() => done(Either.right(responseOf(record, planned))), latency)
        return () => clearTimeout(timer)
      })
    })
  return {
    api,
    check: (record) => Effect.sync(() => check(record)),
    timesOut: true,
    prepare,
    query
  }
}

const liveClock = Clock.make()

/** The answer to every question of a planned prompt, with its token counts. */
const responseOf = (record: PromptRecord.IdentifiedRecord, { multiTurn, questions, sent }: Plan): Provider.ProviderResponse => {
  const reply = record.parameters?.reply
  const answers = questions.map((question) => answer(question, reply))
  const promptTokens = sum(sent.map(wordCount))
  const completionTokens = sum(answers.map(wordCount))
  return {
    response: multiTurn ? answers : answers[0] ?? "",
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens
    },
    fields: { model: record.model_name, finish_reason: "stop" }
  }
}

/**
 * Installs the `test` provider as its own registry entry (composes with other provider layers
 * via `Layer.mergeAll`). A fresh provider (with its own attempt counts) is made each time the
 * layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Layer.suspend(() => Provider.layer(make()))
