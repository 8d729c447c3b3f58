/**
 * The prompt record (one line of a prompto experiment file) and the completed record (one line
 * of a completed file), as `Schema`s.
 *
 * @since 0.1.0
 */
import { type Either, Schema } from "effect"
import type { LineProblem } from "./ExperimentFile.js"
import * as JsonLine from "./internal/jsonLine.js"

/**
 * One message of a chat history: `{ role, content }` (OpenAI, Anthropic, Ollama) or
 * `{ role, parts }` (Gemini, Vertex AI). Which roles and keys an API accepts is checked by
 * its provider.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatMessage = Schema.Struct(
  {
    role: Schema.String,
    content: Schema.optional(Schema.Unknown),
    parts: Schema.optional(Schema.Unknown)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).pipe(
  Schema.filter((message) =>
    message.content !== undefined || message.parts !== undefined
      ? undefined
      : "a chat message needs \"content\" or \"parts\""
  )
)

/**
 * @since 0.1.0
 * @category models
 */
export type ChatMessage = typeof ChatMessage.Type

/**
 * A prompt: a single turn (string), a multi-turn chat sent turn by turn (list of strings),
 * or a chat history sent at once (list of role/content or role/parts messages).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Prompt = Schema.Union(
  Schema.String,
  Schema.Array(Schema.String),
  Schema.Array(ChatMessage)
).annotations({
  identifier: "Prompt",
  message: () => ({
    message: "must be a string, a list of strings, or a list of {\"role\", \"content\" | \"parts\"} messages",
    override: true
  })
})

/**
 * @since 0.1.0
 * @category models
 */
export type Prompt = typeof Prompt.Type

/**
 * The id of a prompt: prompto files use integers or strings.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PromptId = Schema.Union(Schema.String, Schema.Number).annotations({
  message: () => ({ message: "must be a string or a number", override: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export type PromptId = typeof PromptId.Type

/**
 * The `parameters` object passed to the API as given.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Parameters = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  message: () => "must be an object (a dictionary of API parameters)"
})

const optionalString = Schema.optional(
  Schema.String.annotations({ message: () => "must be a string" })
)

/**
 * A prompto prompt dict. Keys other than the named ones are kept and written back unchanged.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PromptRecord = Schema.Struct(
  {
    id: Schema.optional(PromptId),
    api: Schema.String.annotations({ message: () => "must be a string" }),
    model_name: Schema.String.annotations({ message: () => "must be a string" }),
    prompt: Prompt,
    parameters: Schema.optional(Parameters),
    group: optionalString,
    mode: optionalString,
    safety_filter: optionalString,
    expected_response: Schema.optional(Schema.Unknown),
    /** Send the line this many times, each a record of its own with `sample` 0 to N - 1. */
    repeats: Schema.optionalWith(
      Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)).annotations({ message: () => "must be a whole number of at least 1" }),
      { exact: true }
    ),
    /** Which of a line's repeated samples this is: (id, sample) is a record's key. */
    sample: Schema.optionalWith(
      Schema.Int.pipe(Schema.greaterThanOrEqualTo(0)).annotations({ message: () => "must be a whole number of at least 0" }),
      { exact: true }
    )
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "PromptRecord" })

/**
 * @since 0.1.0
 * @category models
 */
export type PromptRecord = typeof PromptRecord.Type

/**
 * A prompt record whose `id` is known (given in the file, or assigned from its line).
 *
 * @since 0.1.0
 * @category models
 */
export type IdentifiedRecord = PromptRecord & { readonly id: PromptId }

const optionalNumber = Schema.optional(
  Schema.Number.annotations({ message: () => "must be a number" })
)

/** USD; `null` when the model's price is unknown. */
const optionalCost = Schema.optional(
  Schema.NullOr(Schema.Number).annotations({ message: () => "must be a number of USD or null" })
)

const optionalBoolean = Schema.optional(Schema.Boolean.annotations({ message: () => "must be true or false" }))

/**
 * Token usage as the API reports it. Keys other than the three named ones (an API's own
 * details) are kept.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Usage = Schema.Struct(
  {
    prompt_tokens: optionalNumber,
    completion_tokens: optionalNumber,
    total_tokens: optionalNumber
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "Usage" })

/**
 * The three counts of a usage; what the schema decodes may hold other keys too.
 *
 * @since 0.1.0
 * @category models
 */
export type Usage = Schema.Struct.Type<typeof Usage.fields>

/**
 * The structured error written beside prompto's error string in `response`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RecordError = Schema.Struct({
  kind: Schema.String.annotations({ message: () => "must be a string" }),
  message: Schema.String.annotations({ message: () => "must be a string" }),
  attempts: Schema.Number.annotations({ message: () => "must be a number" })
}).annotations({ identifier: "RecordError" })

/**
 * @since 0.1.0
 * @category models
 */
export type RecordError = typeof RecordError.Type

/**
 * A tool (function) call the model made, the same shape for every API: the call's `id` where
 * the API gives one, the tool's `name`, its `arguments` (a JSON value: OpenAI's argument string
 * is parsed, and kept as the string when it is not JSON), and `raw`, the API's own object as it
 * came (OpenAI's `tool_calls` item, Anthropic's `tool_use` block, Gemini's `functionCall` part),
 * so nothing the API returned is lost.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCall = Schema.Struct({
  id: optionalString,
  name: Schema.String.annotations({ message: () => "must be a string" }),
  arguments: Schema.Unknown,
  raw: Schema.optional(Schema.Unknown)
}).annotations({ identifier: "ToolCall" })

/**
 * @since 0.1.0
 * @category models
 */
export type ToolCall = typeof ToolCall.Type

/**
 * A record's `tool_calls`: the calls of its answer, or one list per answer where `response` is
 * a list (the turns of a multi-turn chat, the `n` choices).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCalls = Schema.Union(Schema.Array(ToolCall), Schema.Array(Schema.Array(ToolCall))).annotations({
  identifier: "ToolCalls",
  message: () => ({ message: "must be a list of {\"name\", \"arguments\"} tool calls, or a list of such lists", override: true })
})

/**
 * A record's `reasoning`: the reasoning (thinking) text the API returned with its answer, or
 * one per answer where `response` is a list (`null` for an answer that came without any).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reasoning = Schema.Union(Schema.String, Schema.Array(Schema.NullOr(Schema.String))).annotations({
  identifier: "Reasoning",
  message: () => ({ message: "must be a string, or a list of strings and nulls", override: true })
})

/**
 * One request of a multi-step strategy (a draft, a critique, a vote...): what was sent, what
 * came back, and when.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StepRecord = Schema.Struct({
  step: Schema.String.annotations({ message: () => "must be a string" }),
  api: Schema.String.annotations({ message: () => "must be a string" }),
  model_name: Schema.String.annotations({ message: () => "must be a string" }),
  prompt: Prompt,
  parameters: Schema.optional(Parameters),
  response: Schema.Unknown,
  tool_calls: Schema.optional(ToolCalls),
  reasoning: Schema.optional(Reasoning),
  usage: Schema.optional(Usage),
  cost: optionalCost,
  cached: optionalBoolean,
  latency_ms: optionalNumber,
  attempts: optionalNumber,
  timestamp_sent: optionalString,
  timestamp_received: optionalString,
  error: Schema.optional(RecordError)
}).annotations({ identifier: "StepRecord" })

/**
 * @since 0.1.0
 * @category models
 */
export type StepRecord = typeof StepRecord.Type

/**
 * A completed record: the input record plus what the run learned. `response` holds the text
 * (or a list for multi-turn prompts) or, as in prompto, an error message; `tool_calls` and
 * `reasoning`, where the API returned any, are shaped like it. A line run by a
 * strategy also holds its `strategy` as given, the extracted `answer` (`null` when extraction
 * failed) and its `steps`. Keys other than the named ones are kept.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CompletedRecord = Schema.Struct(
  {
    ...PromptRecord.fields,
    id: PromptId,
    response: Schema.Unknown,
    tool_calls: Schema.optional(ToolCalls),
    reasoning: Schema.optional(Reasoning),
    timestamp_sent: optionalString,
    timestamp_received: optionalString,
    latency_ms: optionalNumber,
    attempts: optionalNumber,
    usage: Schema.optional(Usage),
    cost: optionalCost,
    cached: optionalBoolean,
    error: Schema.optional(RecordError),
    answer: Schema.optional(Schema.Unknown),
    steps: Schema.optional(Schema.Array(StepRecord)),
    strategy: Schema.optional(Schema.Unknown)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "CompletedRecord" })

/**
 * @since 0.1.0
 * @category models
 */
export type CompletedRecord = typeof CompletedRecord.Type

/**
 * Decodes one line of a completed file: the record, or the problems naming the file, the line
 * and the key (`steps.0.step`). A line that is not JSON or not an object is one problem without
 * a key. Keys the schema does not name are kept, in the line's order.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeCompletedLine: (
  file: string,
  line: number,
  text: string
) => Either.Either<CompletedRecord, ReadonlyArray<LineProblem>> = JsonLine.decoder(CompletedRecord)

/**
 * What resuming a run needs of a completed line: its `id`, that it has a `response`, and whether
 * it holds an `error` (`null` counts as none). Reading only these keys keeps a resume over a
 * large completed file fast; other keys are not checked.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CompletedOutcome = Schema.Struct({
  id: PromptId,
  sample: Schema.optional(Schema.Number),
  choice_index: Schema.optional(Schema.Number),
  response: Schema.Unknown,
  error: Schema.optional(Schema.NullOr(RecordError)),
  cost: Schema.optional(Schema.Unknown)
}).annotations({ identifier: "CompletedOutcome" })

/**
 * @since 0.1.0
 * @category models
 */
export type CompletedOutcome = typeof CompletedOutcome.Type

/**
 * Whether a completed record holds a response rather than an error.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isSuccess = (record: CompletedRecord): boolean => record.error === undefined
