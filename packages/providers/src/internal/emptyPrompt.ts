/**
 * A prompt that is an empty list, said the same way by every API: `check` reports it on key
 * `prompt`, and `query` refuses it with the same sentence, so a user meets one wording whatever
 * the line's `api`.
 *
 * @since 0.1.0
 * @internal
 */
import { type Provider, ProviderError } from "@prompto/core"

/**
 * What is wrong with an empty prompt list (the problem's key is `prompt`).
 *
 * @since 0.1.0
 * @category constants
 */
export const message = "the list is empty: give at least one turn or message"

/**
 * Whether a prompt is an empty list.
 *
 * @since 0.1.0
 * @category predicates
 */
export const is = (prompt: unknown): boolean => Array.isArray(prompt) && prompt.length === 0

/**
 * The `check` problem for an empty prompt list.
 *
 * @since 0.1.0
 * @category constants
 */
export const problem: Provider.RecordProblem = { key: "prompt", message }

/**
 * The error `query` fails with for an empty prompt list: `prompt: the list is empty: ...`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const error = (): ProviderError.PermanentError =>
  new ProviderError.PermanentError({ reason: "validation", message: `${problem.key}: ${message}` })
