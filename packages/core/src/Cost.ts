/**
 * What a request cost, in USD: its usage priced by a maintained price table, the
 * `@pydantic/genai-prices` package (OpenAI, Anthropic, Google and more, kept up to date by its
 * authors; the table ships in the package, so nothing is fetched at run time). A model the
 * table lacks has an unknown cost (`null`), never 0. Cached input tokens are priced at their
 * own rate where the API reports them.
 *
 * @since 0.1.0
 */
import { calcPrice } from "@pydantic/genai-prices"
import { Effect } from "effect"
import type { CompletedRecord } from "./PromptRecord.js"
import type * as RequestPath from "./RequestPath.js"

/**
 * The price table's provider for each prompto API (the others, local models, have no price).
 *
 * @since 0.1.0
 * @category constants
 */
export const providerIds: Readonly<Record<string, string>> = {
  openai: "openai",
  "azure-openai": "azure",
  anthropic: "anthropic",
  gemini: "google",
  vertexai: "google-vertex"
}

const count = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined

/**
 * The cost of one request in USD from its api, model and usage; `null` when the table has no
 * price for the model or the usage is not reported.
 *
 * @since 0.1.0
 * @category pricing
 */
export const of = (record: Pick<CompletedRecord, "api" | "model_name" | "usage">): number | null => {
  const providerId = providerIds[record.api]
  const usage = record.usage as Record<string, unknown> | undefined
  if (providerId === undefined || usage === undefined) return null
  const input = count(usage.prompt_tokens)
  const output = count(usage.completion_tokens)
  if (input === undefined && output === undefined) return null
  const details = usage.prompt_tokens_details as Record<string, unknown> | undefined
  const cached = count(usage.cached_tokens) ?? count(details?.cached_tokens)
  try {
    const price = calcPrice(
      {
        input_tokens: input ?? 0,
        output_tokens: output ?? 0,
        ...(cached === undefined ? {} : { cache_read_tokens: Math.min(cached, input ?? 0) })
      },
      record.model_name,
      { providerId }
    )
    return price === null || price === undefined ? null : price.total_price
  } catch {
    return null
  }
}

/**
 * The cost meter on the request path: every completed request gets `cost` (USD, `null` when
 * unknown; 0 for a cache hit, which paid nothing). Errors get none.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware: RequestPath.Middleware = (next) => (request) =>
  Effect.map(next(request), (completed) => {
    if (completed.error !== undefined) return completed
    return { ...completed, cost: completed.cached === true ? 0 : of(completed) }
  })
