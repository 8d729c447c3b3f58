/**
 * What an answer holds besides its text, the same way for every API: the tool calls the model
 * made and the reasoning (thinking) text the API returned, written into the completed record as
 * `tool_calls` and `reasoning`, shaped like `response` (one value for one answer, one per answer
 * where `response` is a list). Each provider reads its own wire format into `Extras`.
 *
 * @since 0.1.0
 * @internal
 */
import type { PromptRecord } from "@prompto/core"

/**
 * The tool calls and reasoning of one answer (one choice, or one turn of a chat).
 *
 * @since 0.1.0
 * @category models
 */
export interface Extras {
  readonly toolCalls: ReadonlyArray<PromptRecord.ToolCall>
  /** The reasoning text; `undefined` when the API returned none (or only an empty one). */
  readonly reasoning: string | undefined
}

/**
 * An answer with neither.
 *
 * @since 0.1.0
 * @category constants
 */
export const none: Extras = { toolCalls: [], reasoning: undefined }

/**
 * A tool call's arguments as a JSON value: a string that is JSON is parsed (OpenAI sends the
 * arguments as a JSON string), anything else, including a string the model got wrong, is kept
 * as it came.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseArguments = (value: unknown): unknown => {
  if (typeof value !== "string") return value
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

/**
 * A tool call; `id` only when the API gave one. `args` is kept as given: an API that sends the
 * arguments as a JSON string passes them through `parseArguments` first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toolCall = (id: unknown, name: unknown, args: unknown, raw: unknown): PromptRecord.ToolCall => ({
  ...(typeof id === "string" && id !== "" ? { id } : {}),
  name: typeof name === "string" ? name : "",
  arguments: args,
  raw
})

/**
 * Reasoning texts joined into one, or `undefined` when there is no text at all.
 *
 * @since 0.1.0
 * @category constructors
 */
export const joinReasoning = (texts: ReadonlyArray<string>): string | undefined => {
  const text = texts.join("")
  return text === "" ? undefined : text
}

/**
 * The `tool_calls` and `reasoning` keys of a completed record. With `list` false (one answer)
 * they hold the first answer's values; with `list` true (a multi-turn chat, `n` choices) one
 * entry per answer: `[]` and `null` for an answer without. Each key is present only when some
 * answer has a value, so records of plain text answers are unchanged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fields = (answers: ReadonlyArray<Extras>, list: boolean): Readonly<Record<string, unknown>> => {
  const out: Record<string, unknown> = {}
  if (answers.some((answer) => answer.toolCalls.length > 0)) {
    out.tool_calls = list ? answers.map((answer) => answer.toolCalls) : answers[0]!.toolCalls
  }
  if (answers.some((answer) => answer.reasoning !== undefined)) {
    out.reasoning = list ? answers.map((answer) => answer.reasoning ?? null) : answers[0]!.reasoning
  }
  return out
}
