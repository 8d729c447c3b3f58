/**
 * The prompt record: one line of a prompto experiment file, as a `Schema`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

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
    expected_response: Schema.optional(Schema.Unknown)
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

/**
 * Token usage as the API reports it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage {
  readonly prompt_tokens?: number
  readonly completion_tokens?: number
  readonly total_tokens?: number
}

/**
 * The structured error written beside prompto's error string in `response`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordError {
  readonly kind: string
  readonly message: string
  readonly attempts: number
}

/**
 * A completed record: the input record plus what the run learned. `response` holds the text
 * (or a list for multi-turn prompts) or, as in prompto, an error message.
 *
 * @since 0.1.0
 * @category models
 */
export type CompletedRecord = IdentifiedRecord & {
  readonly response: unknown
  readonly timestamp_sent?: string
  readonly timestamp_received?: string
  readonly latency_ms?: number
  readonly attempts?: number
  readonly usage?: Usage
  readonly error?: RecordError
}

/**
 * Whether a completed record holds a response rather than an error.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isSuccess = (record: CompletedRecord): boolean => record.error === undefined
