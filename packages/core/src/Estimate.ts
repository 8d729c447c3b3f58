/**
 * What a run would send and cost, before it is run (`prompto estimate`). The run itself is
 * played through, in a scratch data folder, with the same options (strategies, repeats, judges,
 * rephrasers, the cache read-only), except that the bottom of the request path answers every
 * request at once with a stand-in answer as long as the request allows instead of sending it.
 * So the requests counted are the requests the run makes, step by step.
 *
 * - **Input tokens:** `TokenCount` (exact for OpenAI models, an approximation elsewhere).
 * - **Output tokens:** what each request allows (`max_tokens` and kin, times `n`), or
 *   `outputTokens` per answer when no limit is set (default `TokenCount.defaultOutputTokens`).
 *   A judge or an aggregator reads stand-in answers of that length.
 * - **Cost:** from the prompts alone (the least any run can cost) to the prompts plus every
 *   answer at full length; `null` where a price is unknown.
 * - **Time:** each queue's requests at its rate; queues run side by side, so the run takes as
 *   long as its slowest queue (plus the last answers' latency, not counted).
 *
 * What depends on real answers cannot be known: how many prompts a rephraser's parser finds in
 * an answer (a stand-in answer gives one), and a judge's verdicts.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Effect } from "effect"
import * as nodeFs from "node:fs"
import * as Cost from "./Cost.js"
import * as Experiment from "./Experiment.js"
import * as NumberText from "./internal/numberText.js"
import type { CompletedRecord } from "./PromptRecord.js"
import type { ProviderRegistry } from "./Provider.js"
import * as RequestPath from "./RequestPath.js"
import * as Timestamp from "./Timestamp.js"
import * as TokenCount from "./TokenCount.js"

/**
 * The figures of one model, or of the whole run.
 *
 * @since 0.1.0
 * @category models
 */
export interface Figures {
  /** HTTP requests (a multi-turn prompt makes one per turn); cache hits not included. */
  readonly requests: number
  readonly input_tokens: number
  readonly output_tokens: number
  /** USD for the prompts alone; `null` when a price is unknown. */
  readonly cost_min: number | null
  /** USD with every answer at full length; `null` when a price is unknown. */
  readonly cost_max: number | null
  /** Seconds the rate limits imply. */
  readonly seconds: number
  /** Requests the response cache would answer (not sent, cost 0). */
  readonly cached: number
}

/**
 * One model's figures.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelFigures extends Figures {
  readonly api: string
  readonly model_name: string
  /** Whether the input tokens come from the model's own tokenizer (OpenAI) or an approximation. */
  readonly exact_tokens: boolean
}

/**
 * The estimate of a run: the totals, and `by_model`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Estimate extends Figures {
  readonly by_model: ReadonlyArray<ModelFigures>
  /** The output tokens assumed per answer where a request sets no limit. */
  readonly default_output_tokens: number
}

/**
 * What to estimate: a run's options, and the output tokens assumed per answer where a request
 * sets no limit.
 *
 * @since 0.1.0
 * @category models
 */
export interface EstimateOptions<E = never, R = never>
  extends Omit<Experiment.RunOptions<E, R>, "moveToInput" | "stop" | "grace" | "maxCost" | "inputStageOnly" | "outputAsCsv">
{
  readonly outputTokens?: number | undefined
}

interface Tally {
  api: string
  model: string
  requests: number
  input: number
  output: number
  costMin: number | null
  costMax: number | null
  cached: number
  exact: boolean
  queues: Set<string>
}

const addCost = (sum: number | null, value: number | null): number | null =>
  sum === null || value === null ? null : sum + value

/** A stand-in answer of about `tokens` tokens (one token a word). */
const standIn = (tokens: number): string => "word ".repeat(Math.max(1, Math.min(tokens, 100_000))).trimEnd()

/**
 * Estimates a run without sending anything.
 *
 * @since 0.1.0
 * @category estimating
 */
export const make = <E = never, R = never>(
  options: EstimateOptions<E, R>
): Effect.Effect<
  Estimate,
  Experiment.RunError | E,
  FileSystem.FileSystem | Path.Path | ProviderRegistry | Exclude<R, Experiment.StageServices>
> =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const counter = yield* TokenCount.load
    const fallback = options.outputTokens ?? TokenCount.defaultOutputTokens
    const scratch = yield* fs.makeTempDirectoryScoped({ prefix: "prompto-estimate-" }).pipe(Effect.orDie)
    const dataFolder = path.resolve(options.dataFolder ?? "data")
    // the run's checks read local images from the real media folder
    const media = path.join(dataFolder, "media")
    if (nodeFs.existsSync(media)) nodeFs.symlinkSync(media, path.join(scratch, "media"), "dir")
    // the cache is only read, and only if it exists (an estimate makes no folder)
    const cacheFolder = options.cache === undefined ? undefined : options.cache.folder ?? path.join(dataFolder, "cache")
    const cache = cacheFolder !== undefined && nodeFs.existsSync(cacheFolder)
      ? { folder: cacheFolder, mode: "read-only" as const }
      : undefined
    const tallies = new Map<string, Tally>()
    const slots = new Map<string, { count: number; queriesPerMinute: number }>()
    const tallyOf = (record: CompletedRecord | RequestPath.Request["record"]): Tally => {
      const name = `${record.api}\u0000${record.model_name}`
      let tally = tallies.get(name)
      if (tally === undefined) {
        tally = {
          api: record.api,
          model: record.model_name,
          requests: 0,
          input: 0,
          output: 0,
          costMin: 0,
          costMax: 0,
          cached: 0,
          exact: TokenCount.openAiApis.has(record.api),
          queues: new Set()
        }
        tallies.set(name, tally)
      }
      return tally
    }
    const estimator: RequestPath.Middleware = (_next, context) => (request) =>
      Effect.gen(function*() {
        const { record } = request
        const tokens = counter.request(record, fallback)
        const tally = tallyOf(record)
        tally.requests += tokens.requests
        tally.input += tokens.input
        tally.output += tokens.output
        tally.costMin = addCost(tally.costMin, Cost.price(record.api, record.model_name, { input: tokens.input, output: 0 }, options.prices))
        tally.costMax = addCost(
          tally.costMax,
          Cost.price(record.api, record.model_name, { input: tokens.input, output: tokens.output }, options.prices)
        )
        const route = context.route(request)
        tally.queues.add(route.key)
        const slot = slots.get(route.key) ?? { count: 0, queriesPerMinute: route.queriesPerMinute }
        slot.count++
        slots.set(route.key, slot)
        const perAnswer = Math.round(tokens.output / tokens.requests)
        const turns = Array.isArray(record.prompt) && record.prompt.every((turn) => typeof turn === "string")
        const at = Timestamp.format(yield* Clock.currentTimeMillis)
        const completed: CompletedRecord = {
          ...record,
          timestamp_sent: at,
          response: turns ? record.prompt.map(() => standIn(perAnswer)) : standIn(perAnswer),
          timestamp_received: at,
          latency_ms: 0,
          attempts: 1,
          usage: { prompt_tokens: tokens.input, completion_tokens: tokens.output, total_tokens: tokens.input + tokens.output }
        }
        return yield* RequestPath.answerHere(context, request, completed)
      })
    yield* Experiment.run({
      ...options,
      dataFolder: scratch,
      cache,
      middleware: [...(options.middleware ?? []), estimator],
      onEvent: (event) =>
        Effect.sync(() => {
          if (event._tag === "Completed" && event.record.cached === true) tallyOf(event.record).cached++
        })
    })
    const seconds = (queues: Iterable<string>) => {
      let most = 0
      for (const key of queues) {
        const slot = slots.get(key)
        if (slot !== undefined) most = Math.max(most, (slot.count / slot.queriesPerMinute) * 60)
      }
      return most
    }
    const byModel: Array<ModelFigures> = [...tallies.values()]
      .sort((a, b) => a.api.localeCompare(b.api) || a.model.localeCompare(b.model))
      .map((tally) => ({
        api: tally.api,
        model_name: tally.model,
        requests: tally.requests,
        input_tokens: tally.input,
        output_tokens: tally.output,
        cost_min: tally.requests === 0 ? 0 : tally.costMin,
        cost_max: tally.requests === 0 ? 0 : tally.costMax,
        seconds: seconds(tally.queues),
        cached: tally.cached,
        exact_tokens: tally.exact
      }))
    const sum = (pick: (model: ModelFigures) => number) => byModel.reduce((total, model) => total + pick(model), 0)
    return {
      requests: sum((model) => model.requests),
      input_tokens: sum((model) => model.input_tokens),
      output_tokens: sum((model) => model.output_tokens),
      cost_min: byModel.reduce<number | null>((total, model) => addCost(total, model.cost_min), 0),
      cost_max: byModel.reduce<number | null>((total, model) => addCost(total, model.cost_max), 0),
      seconds: seconds(slots.keys()),
      cached: sum((model) => model.cached),
      by_model: byModel,
      default_output_tokens: fallback
    } satisfies Estimate
  }))

const thousands = (n: number): string => NumberText.grouped(n)

const usd = (value: number | null): string =>
  value === null ? "unknown" : value === 0 ? "0" : value < 1 ? value.toPrecision(3) : value.toFixed(2)

/**
 * A duration for people: `45 s`, `12 min 5 s`, `3 h 20 min`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const duration = (seconds: number): string => {
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/**
 * The estimate as a table, per model and in total, with what its figures assume.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (estimate: Estimate): ReadonlyArray<string> => {
  const rows = [
    ...estimate.by_model.map((model) => ({ name: `${model.api}/${model.model_name}${model.exact_tokens ? "" : " *"}`, figures: model })),
    { name: "total", figures: estimate as Figures }
  ]
  // the total of known prices, with "+ unknown" for the rest, rather than no figure at all
  const known = estimate.by_model.filter((model) => model.cost_min !== null && model.cost_max !== null)
  const knownRange = `${usd(known.reduce((sum, model) => sum + model.cost_min!, 0))} - ${usd(known.reduce((sum, model) => sum + model.cost_max!, 0))}`
  const cost = (figures: Figures) =>
    figures.cost_min !== null && figures.cost_max !== null
      ? `${usd(figures.cost_min)} - ${usd(figures.cost_max)}`
      : figures === estimate && known.length > 0
      ? `${knownRange} + unknown`
      : "unknown"
  const width = Math.max(5, ...rows.map((row) => row.name.length))
  const showCached = estimate.cached > 0
  const lines = [
    `${"model".padEnd(width)}  ${"requests".padStart(8)}  ${"input tokens".padStart(12)}  ${"output tokens".padStart(13)}  ` +
    `${"cost (USD)".padStart(31)}  ${"time".padStart(13)}${showCached ? `  ${"cached".padStart(7)}` : ""}`
  ]
  for (const { figures, name } of rows) {
    lines.push(
      `${name.padEnd(width)}  ${thousands(figures.requests).padStart(8)}  ${thousands(figures.input_tokens).padStart(12)}  ` +
        `${thousands(figures.output_tokens).padStart(13)}  ${cost(figures).padStart(31)}  ${duration(figures.seconds).padStart(13)}` +
        (showCached ? `  ${thousands(figures.cached).padStart(7)}` : "")
    )
  }
  lines.push(
    "",
    "Nothing was sent.",
    ...(estimate.by_model.some((model) => !model.exact_tokens)
      ? ["* input tokens approximated (OpenAI's o200k_base count of the same text); OpenAI models are counted exactly."]
      : ["Input tokens counted with OpenAI's tokenizer."]),
    `Output tokens: each request's max_tokens where set, else ${estimate.default_output_tokens} per answer (--output-tokens).`,
    "Cost: the prompts alone - every answer at that length; unknown where no price is known (--prices).",
    "Time: each queue's requests at its rate; queues run side by side."
  )
  if (showCached) lines.push("Cached: requests the response cache would answer (not sent, not counted above).")
  return lines
}
