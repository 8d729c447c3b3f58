/**
 * `prompto estimate`: what `prompto run` with the same flags would send, how many tokens, what
 * it would cost and how long the rate limits make it take, without sending anything.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Cost, Estimate, Evaluation, StrategySpec } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Effect, Option } from "effect"
import * as CliError from "../CliError.js"
import * as PromptoFlags from "../PromptoFlags.js"
import * as SharedOptions from "../SharedOptions.js"
import * as run from "./run.js"

const json = Options.boolean("json").pipe(
  Options.withDescription(
    "Print one JSON object: requests, input_tokens, output_tokens, cost_min, cost_max (USD, null where a price is " +
      "unknown), seconds, and by_model (the same per api and model_name)."
  )
)
const outputTokens = SharedOptions.number("output-tokens", { integer: true, atLeast: 1 }).pipe(
  Options.optional,
  Options.withDescription("Output tokens assumed per answer where a request sets no max_tokens (default 256).")
)

/**
 * The flags of `prompto estimate`: those of `prompto run` (so a command line is estimated by
 * changing only its verb), `--json` and `--output-tokens`.
 *
 * @since 0.1.0
 * @category options
 */
export const options = { ...run.options, json, outputTokens }

/**
 * `prompto estimate`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("estimate", options, (flags) =>
  Effect.gen(function*() {
    const { env, rates } = yield* run.loadSetup(flags)
    if (Option.isNone(flags.file)) {
      return yield* new CliError.UsageError({
        message: Option.isSome(flags.resume)
          ? "prompto estimate works on an experiment file (--file); to see what a resume would send, use prompto missing"
          : "prompto estimate needs --file (an experiment file)"
      })
    }
    const evaluationFlags = yield* run.evaluationOptions(flags)
    const estimate = yield* Effect.gen(function*() {
      const evaluation = yield* Evaluation.make({ ...evaluationFlags, loadModule: run.loadScorerModule })
      const strategies = yield* StrategySpec.load({
        folder: Option.getOrUndefined(flags.strategyFolder),
        strategy: Option.getOrUndefined(flags.strategy)
      })
      return yield* Estimate.make({
        ...run.queueSettings(flags, rates),
        file: flags.file.pipe(Option.getOrElse(() => "")),
        skipInvalid: flags.skipInvalid,
        flattenChoices: flags.flattenChoices,
        cache: Option.isNone(flags.cache) ? undefined : {
          folder: flags.cache.value === PromptoFlags.defaultCacheFolder ? undefined : flags.cache.value
        },
        stages: evaluation.stages,
        inputStage: evaluation.inputStage,
        strategies,
        prices: Option.isSome(flags.prices) ? yield* Cost.loadPrices(flags.prices.value) : undefined,
        outputTokens: Option.getOrUndefined(flags.outputTokens)
      })
    }).pipe(
      Effect.provide(Providers.layer),
      Effect.withConfigProvider(env.provider)
    )
    if (flags.json) {
      const { default_output_tokens: _, ...figures } = estimate
      yield* Console.log(JSON.stringify(figures))
      return
    }
    for (const line of Estimate.format(estimate)) yield* Console.log(line)
    if (Option.isSome(flags.maxCost) && estimate.cost_max !== null && estimate.cost_max > flags.maxCost.value) {
      yield* Console.log(`--max-cost ${flags.maxCost.value}: the run may stop at the cap before it is done.`)
    }
  })).pipe(
    Command.withDescription(
      "Estimate a run without sending anything: per model and in total, the requests (strategies, repeats, judges and " +
        "rephrasers included), input and output tokens, the cost range and the time the rate limits imply. Takes the " +
        "flags of prompto run."
    )
  )
