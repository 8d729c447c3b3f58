/**
 * What a request cost, in USD: its usage priced by a maintained price table, the
 * `@pydantic/genai-prices` package (OpenAI, Anthropic, Google and more, kept up to date by its
 * authors; the table ships in the package, so nothing is fetched at run time). A model the
 * table lacks has an unknown cost (`null`), never 0. Cached input tokens and tokens written to
 * a prompt cache are priced at their own rates where the API reports them.
 *
 * A prices file (`--prices FILE`) adds or overrides prices, for local models or models too new
 * for the table:
 *
 * ```json
 * { "openai": { "my-finetune": { "input_mtok": 0.3, "output_mtok": 1.2 } },
 *   "ollama": { "*": { "input_mtok": 0, "output_mtok": 0 } } }
 * ```
 *
 * Keys are prompto's `api` and `model_name`; prices are USD per million tokens. An exact model
 * overrides the table; `"*"` prices the API's models the table lacks.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import type * as GenaiPrices from "@pydantic/genai-prices"
import { Effect, Either, ParseResult, Schema } from "effect"
import { createRequire } from "node:module"
import * as FileSystemError from "./internal/fileSystemError.js"
import type { CompletedRecord, Usage } from "./PromptRecord.js"

/**
 * The price table's provider for each prompto API (the others, local models, have no price
 * unless a prices file gives one).
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

const perMillion = Schema.Number.pipe(Schema.finite(), Schema.nonNegative()).annotations({
  message: () => "must be a price in USD per million tokens (a number of at least 0)"
})

/**
 * The prices of one model, in USD per million tokens (the table's own units and names).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ModelPrice = Schema.Struct({
  input_mtok: perMillion,
  output_mtok: perMillion,
  /** Input tokens read from the provider's prompt cache (default: `input_mtok`). */
  cache_read_mtok: Schema.optional(perMillion),
  /** Input tokens written to the provider's prompt cache (default: `input_mtok`). */
  cache_write_mtok: Schema.optional(perMillion)
}).annotations({ identifier: "ModelPrice" })

/**
 * The prices file: `api` → `model_name` (or `"*"`) → prices.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PricesFile = Schema.Record({
  key: Schema.String,
  value: Schema.Record({ key: Schema.String, value: ModelPrice })
}).annotations({ identifier: "PricesFile" })

/**
 * Prices that add to or override the table.
 *
 * @since 0.1.0
 * @category models
 */
export type Prices = typeof PricesFile.Type

/**
 * The prices file cannot be read or is not valid.
 *
 * @since 0.1.0
 * @category errors
 */
export class PricesError extends Schema.TaggedError<PricesError>()("PricesError", {
  path: Schema.String,
  message: Schema.String
}) {}

const decodePrices = Schema.decodeUnknownEither(PricesFile, { onExcessProperty: "error" })

/**
 * Reads a prices file; a bad entry is named by its key (`ollama.llama3.input_mtok`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadPrices = (file: string): Effect.Effect<Prices, PricesError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((error) => new PricesError({ path: file, message: `cannot read it: ${FileSystemError.describe(error)}` }))
    )
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) => new PricesError({ path: file, message: `not valid JSON: ${(error as Error).message}` })
    })
    const decoded = decodePrices(json)
    if (Either.isRight(decoded)) return decoded.right
    const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
    const key = issue === undefined || issue.path.length === 0 ? "" : `key "${issue.path.join(".")}": `
    return yield* new PricesError({ path: file, message: `${key}${issue?.message ?? "not a prices file"}` })
  })

/**
 * The tokens of a request, as priced: `input` and `output` are all the tokens billed, of which
 * `cachedInput` were read from and `cacheWrite` written to the provider's prompt cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tokens {
  readonly input: number
  readonly output: number
  readonly cachedInput?: number | undefined
  readonly cacheWrite?: number | undefined
}

const count = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined

/**
 * The priced tokens of a usage (prompto's `usage` keys, with the OpenAI SDK's nested
 * `prompt_tokens_details.cached_tokens` read too); `undefined` when it reports no count.
 *
 * @since 0.1.0
 * @category pricing
 */
export const tokensOf = (usage: Usage | Readonly<Record<string, unknown>> | undefined): Tokens | undefined => {
  if (usage === undefined) return undefined
  const fields = usage as Readonly<Record<string, unknown>>
  const input = count(fields.prompt_tokens)
  const output = count(fields.completion_tokens)
  if (input === undefined && output === undefined) return undefined
  const details = fields.prompt_tokens_details as Readonly<Record<string, unknown>> | undefined
  const cachedInput = count(fields.cached_tokens) ?? count(details?.cached_tokens)
  const cacheWrite = count(fields.cache_write_tokens)
  return { input: input ?? 0, output: output ?? 0, cachedInput, cacheWrite }
}

const userPrice = (price: typeof ModelPrice.Type, tokens: Tokens): number => {
  const cached = Math.min(tokens.cachedInput ?? 0, tokens.input)
  const written = Math.min(tokens.cacheWrite ?? 0, tokens.input - cached)
  const plain = tokens.input - cached - written
  return (plain * price.input_mtok +
    cached * (price.cache_read_mtok ?? price.input_mtok) +
    written * (price.cache_write_mtok ?? price.input_mtok) +
    tokens.output * price.output_mtok) / 1e6
}

// The table is about 12 MB of a run's memory once loaded, and pricing is synchronous (it runs
// as each answer is written): it is required on the first price asked of it, so a run of
// local models or of the `test` API never loads it. (The CLI's bundle leaves the package
// external, as it does lmdb, and depends on it itself so that this resolves from the bundle.)
let table: typeof GenaiPrices | undefined
const loadTable = (): typeof GenaiPrices =>
  table ??= createRequire(import.meta.url)("@pydantic/genai-prices") as typeof GenaiPrices
const calcPrice: typeof GenaiPrices.calcPrice = (...args) => loadTable().calcPrice(...args)

/**
 * Loads the price table now when `api` is priced by it: for a queue's first line, before any
 * of its sends. Loaded at the first answer instead, its 30 ms or so would stall every queue's
 * sending just when the answers start (a lost slot for every interval of it at a high rate).
 *
 * @since 0.1.0
 * @category pricing
 */
export const preload = (api: string): void => {
  if (providerIds[api] === undefined) return
  try {
    loadTable()
  } catch {
    // a table that cannot be loaded prices nothing: the answers' costs say so (`tablePrice`)
  }
}

// the models the table does not know, per provider: looking a model up scans the provider's
// models (about 20 µs), and a run asks again for every answer of a model it does not know (a
// local or OpenAI-compatible server's); the table does not change while prompto runs
const unknownModels = new Set<string>()

const tablePrice = (providerId: string, model: string, tokens: Tokens): number | null => {
  const key = `${providerId}\u0000${model}`
  if (unknownModels.has(key)) return null
  const cached = Math.min(tokens.cachedInput ?? 0, tokens.input)
  const written = Math.min(tokens.cacheWrite ?? 0, tokens.input - cached)
  try {
    const price = calcPrice(
      {
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        ...(cached > 0 ? { cache_read_tokens: cached } : {}),
        ...(written > 0 ? { cache_write_tokens: written } : {})
      },
      model,
      { providerId }
    )
    if (price === null || price === undefined) {
      if (unknownModels.size < 10_000) unknownModels.add(key)
      return null
    }
    return price.total_price
  } catch {
    return null
  }
}

/**
 * The price of the given tokens on a model in USD: the prices file's exact entry, else the
 * table, else the file's `"*"` entry for the API; `null` when none knows the model.
 *
 * @since 0.1.0
 * @category pricing
 */
export const price = (api: string, model: string, tokens: Tokens, prices?: Prices | undefined): number | null => {
  const own = prices?.[api]
  const exact = own?.[model]
  if (exact !== undefined) return userPrice(exact, tokens)
  const providerId = providerIds[api]
  const fromTable = providerId === undefined ? null : tablePrice(providerId, model, tokens)
  if (fromTable !== null) return fromTable
  const anyModel = own?.["*"]
  return anyModel === undefined ? null : userPrice(anyModel, tokens)
}

/**
 * Whether a model has a known price (in the prices file or the table).
 *
 * @since 0.1.0
 * @category pricing
 */
export const isKnown = (api: string, model: string, prices?: Prices | undefined): boolean =>
  price(api, model, { input: 1, output: 1 }, prices) !== null

/**
 * The cost of one request in USD from its api, model and usage; `null` when no price is known
 * for the model or the usage is not reported.
 *
 * @since 0.1.0
 * @category pricing
 */
export const of = (
  record: Pick<CompletedRecord, "api" | "model_name" | "usage">,
  prices?: Prices | undefined
): number | null => {
  const tokens = tokensOf(record.usage)
  return tokens === undefined ? null : price(record.api, record.model_name, tokens, prices)
}

/**
 * The request path's pricing of each answered request (`SchedulerOptions.price`), with the given
 * prices over the table: `cost` in USD, `null` when unknown.
 *
 * @since 0.1.0
 * @category pricing
 */
export const pricer = (prices?: Prices | undefined) => (record: CompletedRecord): number | null => of(record, prices)
