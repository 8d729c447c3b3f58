/**
 * Answers with several choices: a request with `parameters.n` > 1 (OpenAI's `n`) answers a list
 * of choices in one record. `flatten` turns such a record into one record per choice, each with
 * `choice_index`: batch-prompt's flat format, where every result is one model output.
 *
 * @since 0.1.0
 */
import type { CompletedRecord } from "./PromptRecord.js"

/**
 * How many choices a record asked for (`parameters.n`), or 1.
 *
 * @since 0.1.0
 * @category getters
 */
export const requested = (record: CompletedRecord): number => {
  const n = record.parameters?.n
  return typeof n === "number" && Number.isInteger(n) && n > 1 ? n : 1
}

/**
 * Whether a record's `response` is a list of choices (rather than a multi-turn chat's list of
 * answers, which a list-of-strings prompt gives).
 *
 * @since 0.1.0
 * @category predicates
 */
export const hasChoices = (record: CompletedRecord): boolean =>
  requested(record) > 1 && Array.isArray(record.response) && record.error === undefined &&
  !(Array.isArray(record.prompt) && record.prompt.every((turn) => typeof turn === "string"))

/**
 * One record per choice, each with `choice_index` and its choice as `response`; the request's
 * `usage` stays on the first only, so adding up usage over records counts the request once.
 * Any other record is returned as it is.
 *
 * @since 0.1.0
 * @category combinators
 */
export const flatten = (record: CompletedRecord): ReadonlyArray<CompletedRecord> => {
  if (!hasChoices(record)) return [record]
  const choices = record.response as ReadonlyArray<unknown>
  return choices.map((response, choice_index) => {
    const { usage, ...rest } = record
    return {
      ...rest,
      response,
      choice_index,
      ...(choice_index === 0 && usage !== undefined ? { usage } : {})
    } as CompletedRecord
  })
}
