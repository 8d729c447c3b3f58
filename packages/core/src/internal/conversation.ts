/**
 * Continuing a conversation in the history shape of its API: `{role, parts}` with roles
 * `user`/`model` for Gemini and Vertex AI, `{role, content}` with `user`/`assistant` elsewhere.
 *
 * @internal
 */
import type { IdentifiedRecord } from "../PromptRecord.js"

const usesParts = (api: string): boolean => api === "gemini" || api === "vertexai"

const message = (api: string, role: "user" | "assistant", text: string): Record<string, unknown> =>
  usesParts(api)
    ? { role: role === "assistant" ? "model" : "user", parts: text }
    : { role, content: text }

const textOf = (value: unknown): string =>
  typeof value === "string" ? value : value === undefined || value === null ? "" : JSON.stringify(value)

/**
 * The history of `prompt` answered by `response`, followed by the user turn `next`. A list of
 * turns is interleaved with its list of answers; a history is extended as it is.
 */
export const continued = (
  api: string,
  prompt: IdentifiedRecord["prompt"],
  response: unknown,
  next: string
): IdentifiedRecord["prompt"] => {
  const answers = Array.isArray(response) ? response : [response]
  const history: Array<Record<string, unknown>> = []
  if (typeof prompt === "string") {
    history.push(message(api, "user", prompt), message(api, "assistant", textOf(answers[answers.length - 1])))
  } else if (prompt.every((turn): turn is string => typeof turn === "string")) {
    prompt.forEach((turn, i) => {
      history.push(message(api, "user", turn), message(api, "assistant", textOf(answers[i] ?? "")))
    })
  } else {
    history.push(...(prompt as ReadonlyArray<Record<string, unknown>>))
    history.push(message(api, "assistant", textOf(answers[answers.length - 1])))
  }
  history.push(message(api, "user", next))
  return history as unknown as IdentifiedRecord["prompt"]
}
