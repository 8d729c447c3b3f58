/**
 * How many tokens a request is, before it is sent: the input by a real tokenizer for OpenAI
 * models (`gpt-tokenizer`: `o200k_base` for the GPT-4o family, GPT-4.1, GPT-5 and the o-series,
 * `cl100k_base` for GPT-4 and GPT-3.5), with the chat format's overhead counted as OpenAI
 * documents it (3 tokens a message, 3 to prime the reply). Other providers do not publish
 * their tokenizers, so their counts are an approximation: the `o200k_base` count of the same
 * text (usually within 10-20 % of Claude's and Gemini's own). An image counts a fixed amount
 * per API (OpenAI 765, a 1024×1024 picture in high detail; Anthropic 1,600; Gemini 258).
 *
 * The output is what the request allows (`max_tokens` and its per-API names), times `n`
 * choices, or a stated default when no limit is set.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { IdentifiedRecord } from "./PromptRecord.js"

/**
 * The output tokens assumed per answer when a request sets no limit.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultOutputTokens = 256

/**
 * The APIs whose models OpenAI's tokenizers count exactly.
 *
 * @since 0.1.0
 * @category constants
 */
export const openAiApis: ReadonlySet<string> = new Set(["openai", "azure-openai"])

const imageTokens: Readonly<Record<string, number>> = {
  openai: 765,
  "azure-openai": 765,
  anthropic: 1600,
  gemini: 258,
  vertexai: 258
}

/** Per message, and to prime the reply: OpenAI's chat format (its cookbook's count). */
const perMessage = 3
const replyPriming = 3

/**
 * The tokens of one request as the API will see it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestTokens {
  /** Input tokens, summed over the HTTP requests of a multi-turn prompt. */
  readonly input: number
  /** Output tokens allowed (or assumed), summed likewise. */
  readonly output: number
  /** HTTP requests: one, or one per turn of a list-of-strings prompt. */
  readonly requests: number
  /** Counted by the model's own tokenizer (OpenAI models), not approximated. */
  readonly exact: boolean
}

/**
 * A loaded tokenizer.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenCounter {
  /** The tokens of a text for a model (exact for OpenAI models). */
  readonly text: (api: string, model: string, text: string) => number
  /**
   * The tokens of a request; each answer a multi-turn prompt's later turns carry in their
   * history counts as `outputPerAnswer` (default: what the request allows).
   */
  readonly request: (record: IdentifiedRecord, defaultOutput?: number) => RequestTokens
}

const usesCl100k = (model: string): boolean => {
  const name = model.toLowerCase()
  return /^(gpt-4(?![o.])|gpt-4-|gpt-3\.5|text-embedding-(ada|3)|davinci-002|babbage-002)/.test(name)
}

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const outputKeys = ["max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens", "max_new_tokens", "num_predict"]

/**
 * The output tokens one answer of the request may take: its limit (`max_tokens`,
 * `max_completion_tokens`, `max_output_tokens`, `max_new_tokens`, `num_predict`, also inside
 * `generation_config`/`options`), or `fallback`; times `n` (or `candidate_count`) choices.
 *
 * @since 0.1.0
 * @category counting
 */
export const outputTokens = (record: IdentifiedRecord, fallback: number = defaultOutputTokens): number => {
  const parameters: Readonly<Record<string, unknown>> = record.parameters ?? {}
  const places = [parameters, parameters.generation_config, parameters.options].filter(isObject)
  let limit: number | undefined
  let choices = 1
  for (const place of places) {
    for (const key of outputKeys) {
      const value = place[key]
      if (typeof value === "number" && value > 0 && limit === undefined) limit = value
    }
    for (const key of ["n", "candidate_count"]) {
      const value = place[key]
      if (typeof value === "number" && value > 1) choices = value
    }
  }
  return (limit ?? fallback) * choices
}

/**
 * Loads the tokenizers (their tables are a few megabytes, so only commands that count load them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const load: Effect.Effect<TokenCounter> = Effect.promise(async () => {
  const [o200k, cl100k] = await Promise.all([
    import("gpt-tokenizer/encoding/o200k_base"),
    import("gpt-tokenizer/encoding/cl100k_base")
  ])
  const text = (api: string, model: string, value: string): number =>
    value.length === 0
      ? 0
      : openAiApis.has(api) && usesCl100k(model)
      ? cl100k.countTokens(value)
      : o200k.countTokens(value)
  const partTokens = (api: string, model: string, part: unknown): number => {
    if (typeof part === "string") return text(api, model, part)
    if (!isObject(part)) return 0
    if (typeof part.text === "string") return text(api, model, part.text)
    return imageTokens[api] ?? 765
  }
  const contentTokens = (api: string, model: string, content: unknown): number =>
    typeof content === "string"
      ? text(api, model, content)
      : Array.isArray(content)
      ? content.reduce<number>((sum, part) => sum + partTokens(api, model, part), 0)
      : content === undefined || content === null
      ? 0
      : partTokens(api, model, content)
  const messageTokens = (api: string, model: string, message: Readonly<Record<string, unknown>>): number =>
    perMessage + text(api, model, String(message.role ?? "")) +
    contentTokens(api, model, message.content ?? message.parts)
  const request = (record: IdentifiedRecord, fallback: number = defaultOutputTokens): RequestTokens => {
    const { api, model_name: model, prompt } = record
    const exact = openAiApis.has(api)
    const output = outputTokens(record, fallback)
    if (record.mode === "completion" && typeof prompt === "string") {
      return { input: text(api, model, prompt), output, requests: 1, exact }
    }
    if (typeof prompt === "string") {
      return { input: replyPriming + perMessage + text(api, model, "user") + text(api, model, prompt), output, requests: 1, exact }
    }
    if (prompt.every((turn): turn is string => typeof turn === "string")) {
      // each turn is a request carrying the turns and answers before it
      const userRole = perMessage + text(api, model, "user")
      const answer = perMessage + text(api, model, "assistant") + output
      let history = 0
      let input = 0
      prompt.forEach((turn, i) => {
        const user = userRole + text(api, model, turn)
        input += replyPriming + history + user
        history += user + (i < prompt.length - 1 ? answer : 0)
      })
      return { input, output: output * prompt.length, requests: prompt.length, exact }
    }
    const input = (prompt as ReadonlyArray<Readonly<Record<string, unknown>>>).reduce(
      (sum, message) => sum + messageTokens(api, model, message),
      replyPriming
    )
    return { input, output, requests: 1, exact }
  }
  return { text, request }
})
