/**
 * Strategies: a line of an experiment as a program of requests. A strategy is an Effect program
 * that, given a line, calls the request path any number of times, one after another or at once,
 * and returns the final result. Every sub-request goes into the paced queue of its own api and
 * model the moment its program asks for it, so the sub-requests of all lines are sent together
 * and lines progress independently (light-prompter's "batching across many inputs", by design).
 *
 * The built-ins follow light-prompter: `basic` (one request), `twoTurn` (answer, then an
 * extraction turn), `selfConsistency` (k samples, extract, vote), `mixtureOfAgents` (proposers,
 * then an aggregator, in layers), `critique` (answer, critique, rewrite, in rounds) and `bestOf`
 * (k samples, then a judge model picks one). They nest: a proposer or a sample may itself be any
 * strategy. Write your own with `make` and `generate`.
 *
 * @since 0.1.0
 */
import { Clock, Effect, FiberRef, Schema } from "effect"
import * as Extract from "./Extract.js"
import * as Conversation from "./internal/conversation.js"
import type { CompletedRecord, IdentifiedRecord, Usage } from "./PromptRecord.js"
import * as RequestPath from "./RequestPath.js"
import * as Template from "./Template.js"
import * as Timestamp from "./Timestamp.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What a strategy gives back for a line.
 *
 * @since 0.1.0
 * @category models
 */
export interface Outcome {
  /** The final output (a text, or what the last request answered). */
  readonly response: unknown
  /** The extracted answer, when the strategy extracts one (`null` when extraction failed). */
  readonly answer?: string | null | undefined
  /** Why the answer could not be extracted. */
  readonly answerError?: string | undefined
  /** Further keys for the completed record (a vote's tally, a pick's index). */
  readonly fields?: Readonly<Record<string, unknown>> | undefined
}

/**
 * A step failed for good (after the run's retries): the line becomes an error record naming it.
 *
 * @since 0.1.0
 * @category errors
 */
export class StepFailed extends Schema.TaggedError<StepFailed>()("StepFailed", {
  step: Schema.String,
  record: Schema.Unknown
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return `step "${this.step}" failed: ${String((this.record as CompletedRecord).response)}`
  }
}

/**
 * A step was given up by a graceful stop: the line is not written, so a resume runs it again.
 *
 * @since 0.1.0
 * @category errors
 */
export class StepAbandoned extends Schema.TaggedError<StepAbandoned>()("StepAbandoned", {
  step: Schema.String
}) {}

/**
 * How a step can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type StepError = StepFailed | StepAbandoned

/**
 * A strategy: a name and a program over the request path.
 *
 * @since 0.1.0
 * @category models
 */
export interface Strategy {
  readonly name: string
  readonly run: (line: IdentifiedRecord) => Effect.Effect<Outcome, StepError, RequestPath.RequestPath>
}

/**
 * Makes a strategy of your own. Inside, call `generate` for each request and `step` to name a
 * part of the program (nested strategies' steps are named `<part>/<step>`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string, run: Strategy["run"]): Strategy => ({ name, run })

/**
 * A model a step is sent to: any of `api`, `model_name`, `parameters` left out is the line's.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelRef {
  readonly api?: string | undefined
  readonly model_name?: string | undefined
  readonly parameters?: Readonly<Record<string, unknown>> | undefined
}

/**
 * A participant of a strategy: a model, answering through a strategy of its own (default
 * `basic`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Participant extends ModelRef {
  readonly strategy?: Strategy | undefined
}

// -----------------------------------------------------------------------------
// steps
// -----------------------------------------------------------------------------

/** The steps of the line being run. */
interface StepLog {
  readonly steps: Array<{ readonly order: ReadonlyArray<number>; readonly record: CompletedRecord; readonly step: string }>
}

/**
 * Where in the program a step is: the name prefix and the position of its part, so steps are
 * listed in the program's order (a part's steps together, parts in the order they began), not
 * in whatever order parallel fibers happened to run.
 */
interface StepScope {
  readonly prefix: string
  readonly order: ReadonlyArray<number>
  next: number
}

const stepLog = FiberRef.unsafeMake<StepLog | undefined>(undefined)
const stepScope = FiberRef.unsafeMake<StepScope>({ prefix: "", order: [], next: 0 })

/**
 * Names a part of a program: the steps inside are named `<name>/<step>`.
 *
 * @since 0.1.0
 * @category steps
 */
export const step = (name: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(stepScope), (parent) =>
    Effect.locally(effect, stepScope, {
      prefix: `${parent.prefix}${name}/`,
      order: [...parent.order, parent.next++],
      next: 0
    }))

const compareOrder = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** The keys of a line that a sub-request keeps (the rest stay on the line's record). */
const requestKeys = ["api", "model_name", "prompt", "parameters", "group", "mode", "safety_filter", "sample"] as const

/**
 * The record a step sends: the line's prompt keys, with the model and prompt given.
 *
 * @since 0.1.0
 * @category steps
 */
export const request = (
  line: IdentifiedRecord,
  prompt: IdentifiedRecord["prompt"],
  model: ModelRef = {}
): IdentifiedRecord => {
  const record: Record<string, unknown> = { id: line.id }
  for (const key of requestKeys) if (line[key] !== undefined) record[key] = line[key]
  const other = (model.api !== undefined && model.api !== line.api) ||
    (model.model_name !== undefined && model.model_name !== line.model_name)
  if (model.api !== undefined) record.api = model.api
  if (model.model_name !== undefined) record.model_name = model.model_name
  if (model.parameters !== undefined) record.parameters = model.parameters
  // another model's requests go to that model's queue, not the line's group
  if (other) delete record.group
  record.prompt = prompt
  return record as IdentifiedRecord
}

/**
 * Sends one request as the step `name` of the current line and gives its completed record. A
 * request that finally fails fails the program with `StepFailed`; one given up by a stop, with
 * `StepAbandoned`. Each step is its own request: paced, retried and (later) cached on its own.
 *
 * @since 0.1.0
 * @category steps
 */
export const generate = (
  record: IdentifiedRecord,
  name: string
): Effect.Effect<CompletedRecord, StepError, RequestPath.RequestPath> =>
  Effect.gen(function*() {
    const scope = yield* FiberRef.get(stepScope)
    const log = yield* FiberRef.get(stepLog)
    const stepName = `${scope.prefix}${name}`
    const order = [...scope.order, scope.next++]
    const path = yield* RequestPath.RequestPath
    // a repeated line's samples each run the strategy: the sample keeps their requests apart
    const id = record.sample === undefined ? String(record.id) : `${String(record.id)}/${record.sample}`
    const completed = yield* path.send({ record: Object.assign({}, record, { id: `${id}#${stepName}` }), step: stepName })
    if (RequestPath.isAbandoned(completed)) return yield* new StepAbandoned({ step: stepName })
    log?.steps.push({ order, record: completed, step: stepName })
    if (completed.error !== undefined) return yield* new StepFailed({ step: stepName, record: completed })
    return completed
  })

/**
 * The text of a response: a string as it is, the last turn of a list of turns, else JSON.
 *
 * @since 0.1.0
 * @category utils
 */
export const text = (response: unknown): string =>
  typeof response === "string"
    ? response
    : Array.isArray(response) && response.length > 0 && typeof response[response.length - 1] === "string"
    ? response[response.length - 1] as string
    : response === undefined || response === null
    ? ""
    : JSON.stringify(response)

const withAnswer = (outcome: Outcome, extract: Extract.Extractor | undefined): Outcome => {
  if (extract === undefined) return outcome
  const found = extract.extract(text(outcome.response))
  return found._tag === "Extracted"
    ? { ...outcome, answer: found.answer, answerError: undefined }
    : { ...outcome, answer: null, answerError: `${extract.name}: ${found.reason}` }
}

// -----------------------------------------------------------------------------
// templates
// -----------------------------------------------------------------------------

/**
 * The prompt templates of the steps that build prompts. Placeholders: `{INPUT_PROMPT}`,
 * `{OUTPUT_RESPONSE}`, `{CRITIQUE}`, `{RESPONSES}` (numbered), `{N}`. Override any of them from
 * a strategy folder (`aggregate.txt`, `critique.txt`, `rewrite.txt`, `extract.txt`,
 * `select.txt`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Templates {
  /** Mixture-of-agents: the aggregator's (and later layers') prompt. */
  readonly aggregate: string
  /** Critique: the critic's prompt. */
  readonly critique: string
  /** Critique: the rewriter's prompt. */
  readonly rewrite: string
  /** Two-turn: the second turn. */
  readonly extract: string
  /** Best-of: the selector's prompt; its answer is the number of the best response. */
  readonly select: string
}

/**
 * The default templates (mixture-of-agents' is the MoA paper's aggregate-and-synthesize prompt).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTemplates: Templates = {
  aggregate: "You have been provided with a set of responses from various models to the latest user query. " +
    "Your task is to synthesize these responses into a single, high-quality response. It is crucial to " +
    "critically evaluate the information provided in these responses, recognizing that some of it may be " +
    "biased or incorrect. Your response should not simply replicate the given answers but should offer a " +
    "refined, accurate, and comprehensive reply to the instruction.\n\nUser query:\n{INPUT_PROMPT}\n\n" +
    "Responses from models:\n{RESPONSES}",
  critique: "Review the following answer to the question below. Point out any mistakes, gaps or unclear " +
    "reasoning, and say how to fix them. Do not rewrite the answer.\n\nQuestion:\n{INPUT_PROMPT}\n\n" +
    "Answer:\n{OUTPUT_RESPONSE}",
  rewrite: "Rewrite the answer to the question below, taking the critique into account. Reply with the " +
    "improved answer only.\n\nQuestion:\n{INPUT_PROMPT}\n\nAnswer:\n{OUTPUT_RESPONSE}\n\nCritique:\n{CRITIQUE}",
  extract: "Based on your answer above, state only the final answer, with no explanation.",
  select: "Below are {N} candidate responses to the question. Reply with the number of the best response " +
    "only.\n\nQuestion:\n{INPUT_PROMPT}\n\nResponses:\n{RESPONSES}"
}

const numbered = (responses: ReadonlyArray<unknown>): string =>
  responses.map((response, i) => `${i + 1}. ${text(response)}`).join("\n\n")

// -----------------------------------------------------------------------------
// built-ins
// -----------------------------------------------------------------------------

/**
 * One request with the line as it is (the default).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const basic: Strategy = make("basic", (line) =>
  Effect.map(generate(line, "answer"), (completed) => ({ response: completed.response })))

/**
 * Options of `twoTurn`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TwoTurnOptions {
  /** The second turn's text (default `defaultTemplates.extract`). */
  readonly prompt?: string | undefined
  /** Applied to the second answer; without it the answer is the second answer, trimmed. */
  readonly extract?: Extract.Extractor | undefined
}

/**
 * Answer, then a second turn in the same conversation that asks for the bare final answer.
 * `response` is the first answer, `answer` the second (or what `extract` finds in it).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const twoTurn = (options: TwoTurnOptions = {}): Strategy =>
  make("two_turn", (line) =>
    Effect.gen(function*() {
      const first = yield* generate(line, "answer")
      const history = Conversation.continued(line.api, line.prompt, first.response, options.prompt ?? defaultTemplates.extract)
      const second = yield* generate(request(line, history), "extract")
      const base: Outcome = { response: first.response, answer: text(second.response).trim() }
      return options.extract === undefined ? base : { ...withAnswer({ response: second.response }, options.extract), response: first.response }
    }))

/**
 * Runs parts at once and waits for every one of them: a part that fails does not cut the others
 * short (their requests are already sent, and their steps belong in the record). Then the first
 * failure, if any, fails the whole, a stop before a step's failure.
 *
 * @since 0.1.0
 * @category steps
 */
export const all = <A, R>(
  parts: ReadonlyArray<Effect.Effect<A, StepError, R>>
): Effect.Effect<Array<A>, StepError, R> =>
  Effect.flatMap(Effect.all(parts, { concurrency: "unbounded", mode: "either" }), (results) => {
    const failures = results.flatMap((result) => (result._tag === "Left" ? [result.left] : []))
    if (failures.length === 0) return Effect.succeed(results.map((result) => (result as { readonly right: A }).right))
    return Effect.fail(failures.find((failure) => failure._tag === "StepAbandoned") ?? failures[0]!)
  })

/** `samples` answers of `of` at once, each the part `sample <i>`. */
const draw = (of: Strategy, line: IdentifiedRecord, samples: number) =>
  all(Array.from({ length: samples }, (_, i) => step(`sample ${i}`)(of.run(line))))

/**
 * Options of `selfConsistency`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SelfConsistencyOptions {
  /** Samples drawn (default 5). */
  readonly samples?: number | undefined
  /** How each sample is answered (default `basic`). */
  readonly of?: Strategy | undefined
  /**
   * Reads each sample's final answer from its own `answer` (a nested strategy's), else from its
   * response (default: that text as it is).
   */
  readonly extract?: Extract.Extractor | undefined
  /** How the answers are reconciled (default `Extract.majority`). */
  readonly vote?: Extract.Vote | undefined
  /** Ask for `n` choices in one request (OpenAI) instead of one request per sample. */
  readonly useN?: boolean | undefined
}

/**
 * Self-consistency: draw `samples` answers, extract each one's final answer, and keep the one
 * the vote picks (the most common, or the most similar to the others). Each sample is its own
 * request, so it is paced and retried on its own; `useN` asks for `n` choices in one request.
 * `response` is the winning sample's response, `answer` its answer, `vote` the tally.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const selfConsistency = (options: SelfConsistencyOptions = {}): Strategy => {
  const samples = Math.max(1, Math.floor(options.samples ?? 5))
  const of = options.of ?? basic
  const vote = options.vote ?? Extract.majority
  return make("self_consistency", (line) =>
    Effect.gen(function*() {
      const outcomes: ReadonlyArray<Outcome> = options.useN === true
        ? yield* Effect.map(
          generate({ ...line, parameters: { ...line.parameters, n: samples } }, "samples"),
          (completed) =>
            (Array.isArray(completed.response) ? completed.response : [completed.response]).map((response) => ({ response }))
        )
        : yield* draw(of, line, samples)
      // a sample's own answer (a nested two-turn's second turn) is what its final answer is read from
      const answers = outcomes.map((outcome) => {
        if (outcome.answer === null) return undefined
        const source = outcome.answer ?? text(outcome.response)
        return options.extract === undefined ? source : Extract.getAnswer(options.extract.extract(source))
      })
      const result = vote.pick(answers)
      const tally = { method: vote.name, answers: answers.map((answer) => answer ?? null), votes: result.votes, total: result.total }
      if (result.winner === undefined) {
        return {
          response: outcomes[0]?.response ?? null,
          answer: null,
          answerError: "no sample gave an answer",
          fields: { vote: tally }
        }
      }
      return { response: outcomes[result.winner]!.response, answer: result.answer ?? null, fields: { vote: tally } }
    }))
}

/**
 * Options of `mixtureOfAgents`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MixtureOfAgentsOptions {
  /** The proposers of every layer. */
  readonly proposers: ReadonlyArray<Participant>
  /** The model that writes the final answer from the last layer's answers (default the line's). */
  readonly aggregator?: Participant | undefined
  /** Layers of proposers (default 1): a later layer answers with the previous layer's answers in view. */
  readonly layers?: number | undefined
  /** The aggregator's prompt (default `defaultTemplates.aggregate`). */
  readonly template?: string | undefined
  /** Reads the final answer from the aggregate. */
  readonly extract?: Extract.Extractor | undefined
}

/**
 * Mixture-of-agents: every proposer answers, then the aggregator writes the final answer from
 * their answers (its prompt holds each of them). With `layers` > 1, each later layer of proposers
 * answers the aggregate prompt built from the layer before.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const mixtureOfAgents = (options: MixtureOfAgentsOptions): Strategy => {
  const layers = Math.max(1, Math.floor(options.layers ?? 1))
  const template = options.template ?? defaultTemplates.aggregate
  return make("mixture_of_agents", (line) =>
    Effect.gen(function*() {
      const input = Template.promptText(line.prompt)
      let previous: ReadonlyArray<unknown> = []
      for (let layer = 1; layer <= layers; layer++) {
        const prompt = layer === 1
          ? line.prompt
          : Template.fill(template, { INPUT_PROMPT: input, RESPONSES: numbered(previous) })
        const outcomes = yield* all(
          options.proposers.map((proposer, i) =>
            step(layers === 1 ? `proposer ${i}` : `layer ${layer}/proposer ${i}`)(
              (proposer.strategy ?? basic).run(request(line, prompt, proposer))
            )
          )
        )
        previous = outcomes.map((outcome) => outcome.response)
      }
      const aggregator = options.aggregator ?? {}
      const aggregated = yield* step("aggregate")((aggregator.strategy ?? basic).run(
        request(line, Template.fill(template, { INPUT_PROMPT: input, RESPONSES: numbered(previous) }), aggregator)
      ))
      return withAnswer({ response: aggregated.response }, options.extract)
    }))
}

/**
 * Options of `critique`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CritiqueOptions {
  /** The model that critiques (default the line's). */
  readonly critic?: ModelRef | undefined
  /** The model that rewrites (default the line's). */
  readonly rewriter?: ModelRef | undefined
  /** Critique-and-rewrite rounds (default 1). */
  readonly rounds?: number | undefined
  /** The critic's prompt (default `defaultTemplates.critique`). */
  readonly critiqueTemplate?: string | undefined
  /** The rewriter's prompt (default `defaultTemplates.rewrite`). */
  readonly rewriteTemplate?: string | undefined
  /** Reads the final answer from the last rewrite. */
  readonly extract?: Extract.Extractor | undefined
}

/**
 * Critique: the line's model answers, a critic critiques the answer, a rewriter rewrites it with
 * the critique in view; `rounds` times, in order. `response` is the last rewrite.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const critique = (options: CritiqueOptions = {}): Strategy => {
  const rounds = Math.max(1, Math.floor(options.rounds ?? 1))
  return make("critique", (line) =>
    Effect.gen(function*() {
      const input = Template.promptText(line.prompt)
      let answer = (yield* generate(line, "answer")).response
      for (let round = 1; round <= rounds; round++) {
        const suffix = rounds === 1 ? "" : ` ${round}`
        const critiqueText = (yield* generate(
          request(line, Template.fill(options.critiqueTemplate ?? defaultTemplates.critique, {
            INPUT_PROMPT: input,
            OUTPUT_RESPONSE: text(answer)
          }), options.critic),
          `critique${suffix}`
        )).response
        answer = (yield* generate(
          request(line, Template.fill(options.rewriteTemplate ?? defaultTemplates.rewrite, {
            INPUT_PROMPT: input,
            OUTPUT_RESPONSE: text(answer),
            CRITIQUE: text(critiqueText)
          }), options.rewriter),
          `rewrite${suffix}`
        )).response
      }
      return withAnswer({ response: answer }, options.extract)
    }))
}

/**
 * Options of `bestOf`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BestOfOptions {
  /** Samples drawn (default 4). */
  readonly samples?: number | undefined
  /** How each sample is answered (default `basic`). */
  readonly of?: Strategy | undefined
  /** The model that picks the best sample (default the line's). */
  readonly aggregator?: ModelRef | undefined
  /** The selector's prompt (default `defaultTemplates.select`). */
  readonly template?: string | undefined
  /** Reads the final answer from the picked sample. */
  readonly extract?: Extract.Extractor | undefined
}

/**
 * Best-of: draw `samples` answers, then the aggregator picks the best one by its number.
 * `response` is the picked sample (the first when the pick cannot be read, with `pick_error`).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const bestOf = (options: BestOfOptions = {}): Strategy => {
  const samples = Math.max(1, Math.floor(options.samples ?? 4))
  const of = options.of ?? basic
  return make("best_of", (line) =>
    Effect.gen(function*() {
      const outcomes = yield* draw(of, line, samples)
      const responses = outcomes.map((outcome) => outcome.response)
      const selection = yield* generate(
        request(line, Template.fill(options.template ?? defaultTemplates.select, {
          INPUT_PROMPT: Template.promptText(line.prompt),
          RESPONSES: numbered(responses),
          N: String(samples)
        }), options.aggregator),
        "select"
      )
      const number = Extract.getAnswer(Extract.lastNumber.extract(text(selection.response)))
      const index = number === undefined ? NaN : Number(number) - 1
      const picked = Number.isInteger(index) && index >= 0 && index < samples ? index : undefined
      const fields = picked === undefined
        ? { pick: null, pick_error: `could not read a response number from 1 to ${samples} in the selection` }
        : { pick: picked }
      return withAnswer({ response: responses[picked ?? 0], fields }, options.extract)
    }))
}

// -----------------------------------------------------------------------------
// running a line
// -----------------------------------------------------------------------------

const addUsage = (total: Record<string, number>, usage: Usage | undefined) => {
  if (usage === undefined) return
  for (const [key, value] of Object.entries(usage)) {
    if (typeof value === "number") total[key] = (total[key] ?? 0) + value
  }
}

const stepRecord = (step: string, record: CompletedRecord): Record<string, unknown> => {
  const out: Record<string, unknown> = {
    step,
    api: record.api,
    model_name: record.model_name,
    prompt: record.prompt
  }
  if (record.parameters !== undefined) out.parameters = record.parameters
  out.response = record.response
  for (
    const key of [
      "tool_calls",
      "reasoning",
      "usage",
      "cost",
      "cached",
      "latency_ms",
      "attempts",
      "timestamp_sent",
      "timestamp_received",
      "error"
    ] as const
  ) {
    if (record[key] !== undefined) out[key] = record[key]
  }
  return out
}

/**
 * Runs a line's strategy and builds its completed record: the line's keys, `response` (the final
 * output), `answer` (where the strategy extracts one), `steps` (every request in the order it was
 * started, with its step name, api, model, prompt, response, usage, latency and attempts), and
 * `usage`, `attempts` and `latency_ms` over all steps. A step that fails for good makes the line
 * an error record naming the step. Gives `undefined` for a line a graceful stop cut short (it is
 * not written, so a resume runs it again from the start).
 *
 * @since 0.1.0
 * @category running
 */
export const runLine = (
  strategy: Strategy,
  line: IdentifiedRecord
): Effect.Effect<CompletedRecord | undefined, never, RequestPath.RequestPath> =>
  Effect.gen(function*() {
    const log: StepLog = { steps: [] }
    const startedAt = yield* Clock.currentTimeMillis
    const result = yield* Effect.either(strategy.run(line).pipe(
      Effect.locally(stepLog, log),
      Effect.locally(stepScope, { prefix: "", order: [], next: 0 })
    ))
    const finishedAt = yield* Clock.currentTimeMillis
    if (result._tag === "Left" && result.left._tag === "StepAbandoned") return undefined
    const ordered = [...log.steps].sort((a, b) => compareOrder(a.order, b.order))
    const usage: Record<string, number> = {}
    let attempts = 0
    // the line's cost is its steps' (unknown when one step's is), when the run meters cost
    let cost: number | null | undefined
    for (const { record } of ordered) {
      addUsage(usage, record.usage)
      attempts += record.attempts ?? 0
      const stepCost = record.cost as number | null | undefined
      if (stepCost !== undefined) cost = stepCost === null || cost === null ? null : (cost ?? 0) + stepCost
    }
    const common: Record<string, unknown> = {
      timestamp_sent: Timestamp.format(startedAt),
      timestamp_received: Timestamp.format(finishedAt),
      latency_ms: finishedAt - startedAt,
      attempts,
      ...(Object.keys(usage).length === 0 ? {} : { usage }),
      ...(cost === undefined ? {} : { cost }),
      steps: ordered.map(({ record, step }) => stepRecord(step, record))
    }
    if (result._tag === "Left") {
      const failed = result.left as StepFailed
      const record = failed.record as CompletedRecord
      return <CompletedRecord> {
        ...line,
        response: `Step "${failed.step}" failed: ${String(record.response)}`,
        ...common,
        error: {
          kind: record.error?.kind ?? "unknown",
          message: `step "${failed.step}": ${record.error?.message ?? String(record.response)}`,
          attempts: record.error?.attempts ?? record.attempts ?? 0
        }
      }
    }
    const outcome = result.right
    return <CompletedRecord> {
      ...line,
      response: outcome.response,
      ...(outcome.answer === undefined ? {} : { answer: outcome.answer }),
      ...(outcome.answerError === undefined ? {} : { answer_error: outcome.answerError }),
      ...outcome.fields,
      ...common
    }
  })
