/**
 * The shape most experiment lines have, checked without the schema (see `isPlainLine`).
 *
 * @since 0.1.0
 */
import type { PromptRecord } from "../PromptRecord.js"

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isOptionalString = (value: unknown): boolean => value === undefined || typeof value === "string"

/**
 * True for the lines most files are made of, which `PromptRecord` accepts: an `id` that is a
 * string or a number (or none), `api` and `model_name` strings, a string prompt or a list of
 * strings, an object of `parameters` or none, the optional strings as strings, and neither
 * `repeats` nor `sample`. Any other line, valid or not, goes through the schema. The schema
 * only checks, so a line accepted here is the record it would give; checking it directly spares
 * every line two schema decodes (the check pass and the sender each decode it), about 5 KB of
 * garbage and 2-3 µs each (issue 14).
 *
 * @since 0.1.0
 * @category decoding
 */
export const isPlainLine = (value: unknown): value is PromptRecord => {
  if (!isObject(value)) return false
  const { api, id, model_name, parameters, prompt } = value
  if (typeof api !== "string" || typeof model_name !== "string") return false
  if (id !== undefined && typeof id !== "string" && typeof id !== "number") return false
  if (typeof prompt !== "string" && !(Array.isArray(prompt) && prompt.every((turn) => typeof turn === "string"))) return false
  if (parameters !== undefined && !isObject(parameters)) return false
  return isOptionalString(value.group) && isOptionalString(value.mode) && isOptionalString(value.safety_filter) &&
    value.repeats === undefined && value.sample === undefined
}
