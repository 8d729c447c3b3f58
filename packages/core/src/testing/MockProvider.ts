/**
 * Mock providers for tests and offline pipelines: answer any `api` with a function of the
 * record, record every call with its (test) clock time, and inject latency or failures.
 *
 * @since 0.1.0
 */
import { Cause, Clock, type Duration, Effect, Either, Exit, type Layer, Option, Runtime } from "effect"
import type { IdentifiedRecord, PromptRecord } from "../PromptRecord.js"
import {
  type Call,
  type Provider,
  type ProviderRegistry,
  type ProviderResponse,
  type RecordProblem,
  registryLayer
} from "../Provider.js"
import { PermanentError, type ProviderError } from "../ProviderError.js"

/**
 * One call the mock received.
 *
 * @since 0.1.0
 * @category models
 */
export interface MockCall {
  readonly id: IdentifiedRecord["id"]
  /** 1 for the first attempt of this id, 2 for its first retry, ... */
  readonly attempt: number
  /** Clock time in milliseconds when the call arrived (the `TestClock` time in tests). */
  readonly at: number
  readonly record: IdentifiedRecord
}

/**
 * What a mock answers: a text, a full response, or an effect that may fail with a
 * `ProviderError`.
 *
 * @since 0.1.0
 * @category models
 */
export type MockAnswer = string | ProviderResponse | Effect.Effect<string | ProviderResponse, ProviderError>

/**
 * A mock provider that also exposes the calls it received.
 *
 * @since 0.1.0
 * @category models
 */
export interface MockProvider extends Provider {
  readonly calls: ReadonlyArray<MockCall>
}

/**
 * Options of a mock provider.
 *
 * @since 0.1.0
 * @category models
 */
export interface MockOptions {
  /** The answer for a record and attempt; default: `"mock response to <id>"`. */
  readonly respond?: (record: IdentifiedRecord, attempt: number) => MockAnswer
  /** Simulated latency before answering (default none). */
  readonly latency?: Duration.DurationInput | ((record: IdentifiedRecord) => Duration.DurationInput)
  /** Problems reported by `check` (default none). */
  readonly check?: (record: PromptRecord) => ReadonlyArray<RecordProblem>
  /**
   * The mock also `prepare`s each request as a plain `Call`, so a run sends it on its hot path
   * (no fiber per request), as it does the HTTP providers': the call runs the same answer on a
   * fiber of the preparing fiber's runtime (its clock: a `TestClock` in tests). Default false.
   */
  readonly prepared?: boolean | undefined
}

/**
 * Makes a mock provider for `api`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (api: string, options: MockOptions = {}): MockProvider => {
  const calls: Array<MockCall> = []
  const attempts = new Map<unknown, number>()
  const respond = options.respond ?? ((record) => `mock response to ${String(record.id)}`)
  const query = (record: IdentifiedRecord) =>
      Effect.gen(function*() {
        const attempt = (attempts.get(record.id) ?? 0) + 1
        attempts.set(record.id, attempt)
        calls.push({ id: record.id, attempt, at: yield* Clock.currentTimeMillis, record })
        const latency = typeof options.latency === "function" ? options.latency(record) : options.latency
        if (latency !== undefined) yield* Effect.sleep(latency)
        const answer = respond(record, attempt)
        const resolved = Effect.isEffect(answer) ? yield* answer : answer
        return typeof resolved === "string" ? { response: resolved } : resolved
      })
  const prepare = (record: IdentifiedRecord): Effect.Effect<Call> =>
    Effect.map(Effect.runtime<never>(), (runtime): Call => (done) => {
      const fiber = Runtime.runFork(runtime)(query(record))
      fiber.addObserver((exit) => {
        if (Exit.isSuccess(exit)) return done(Either.right(exit.value))
        if (Cause.isInterruptedOnly(exit.cause)) return
        const failure = Cause.failureOption(exit.cause)
        done(Either.left(
          Option.isSome(failure)
            ? failure.value
            : new PermanentError({ reason: "internal", message: `the ${api} provider failed: ${Cause.pretty(exit.cause)}` })
        ))
      })
      return () => fiber.unsafeInterruptAsFork(fiber.id())
    })
  return {
    api,
    calls,
    check: (record) => Effect.sync(() => options.check?.(record) ?? []),
    query,
    ...(options.prepared === true ? { prepare } : {})
  }
}

/**
 * Installs the given mock (or any) providers, one entry each, so it composes with real
 * provider layers: `Layer.merge(Providers.layer, MockProvider.layer(openaiMock))`, or providing
 * it inside `Providers.layer`, answers `openai` with the mock and every other API for real.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (...providers: ReadonlyArray<Provider>): Layer.Layer<ProviderRegistry> => registryLayer(...providers)

/**
 * The milliseconds at which a mock received calls, for asserting on pacing.
 *
 * @since 0.1.0
 * @category utils
 */
export const callTimes = (mock: MockProvider): ReadonlyArray<number> => mock.calls.map((call) => call.at)

