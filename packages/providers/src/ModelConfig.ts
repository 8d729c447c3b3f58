/**
 * Provider configuration read through Effect `Config`, with prompto's per-model override rule:
 * for a variable `VAR` and a record's `model_name`, `VAR_<model id>` is tried before `VAR`,
 * where the id is `model_name` with `- / . : space` turned into `_`.
 *
 * @since 0.1.0
 */
import { type Provider, ProviderError } from "@prompto/core"
import { Config, type ConfigProvider, Effect, Option, Redacted } from "effect"

/**
 * The identifier of a model in variable names: `- / . : space` become `_` (prompto's
 * `get_model_name_identifier`).
 *
 * @since 0.1.0
 * @category utils
 */
export const modelIdentifier = (modelName: string): string => modelName.replace(/[-/.: ]/g, "_")

/**
 * The names tried for `name` and a model, most specific first.
 *
 * @since 0.1.0
 * @category utils
 */
export const candidates = (name: string, modelName: string): readonly [string, string] => [
  `${name}_${modelIdentifier(modelName)}`,
  name
]

/**
 * Looks a variable up for a model (model-specific first). Empty values count as unset.
 *
 * @since 0.1.0
 * @category lookups
 */
export const lookup = (name: string, modelName: string): Effect.Effect<Option.Option<string>> =>
  Effect.gen(function*() {
    for (const candidate of candidates(name, modelName)) {
      const value = yield* Config.string(candidate).pipe(Config.option, Effect.orElseSucceed(() => Option.none<string>()))
      if (Option.isSome(value) && value.value.trim() !== "") return Option.some(value.value)
    }
    return Option.none()
  })

/**
 * Looks a secret up for a model; the value stays `Redacted` so it is never printed.
 *
 * @since 0.1.0
 * @category lookups
 */
export const lookupSecret = (name: string, modelName: string): Effect.Effect<Option.Option<Redacted.Redacted<string>>> =>
  Effect.map(lookup(name, modelName), Option.map(Redacted.make))

/**
 * The problem reported when a required variable is missing (names only, never values).
 *
 * @since 0.1.0
 * @category problems
 */
export const missingMessage = (name: string, modelName: string): string =>
  `at least one of the environment variables ${candidates(name, modelName).map((candidate) => `"${candidate}"`).join(", ")} must be set`

/**
 * Requires a variable for a model, failing with a permanent configuration error that names it.
 *
 * @since 0.1.0
 * @category lookups
 */
export const require = (name: string, modelName: string): Effect.Effect<string, ProviderError.PermanentError> =>
  Effect.flatMap(lookup(name, modelName), Option.match({
    onNone: () =>
      Effect.fail(new ProviderError.PermanentError({ reason: "configuration", message: missingMessage(name, modelName) })),
    onSome: Effect.succeed
  }))

/**
 * `check` problems for required variables that are not set, on key `api`.
 *
 * @since 0.1.0
 * @category problems
 */
export const checkRequired = (
  names: ReadonlyArray<string>,
  modelName: string
): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.map(
    Effect.forEach(names, (name) => Effect.map(lookup(name, modelName), (value) => [name, value] as const)),
    (found) =>
      found.filter(([, value]) => Option.isNone(value)).map(([name]) => ({ key: "api", message: missingMessage(name, modelName) }))
  )

/**
 * Memoizes what a provider derives from its variables (a client, the problems of its
 * configuration), once per model and configuration: reading the variables for every request
 * costs more than a request. Failures are not kept, so a fixed variable is seen next time.
 *
 * @since 0.1.0
 * @category caching
 */
export const perModel = <A, E>(
  derive: (modelName: string) => Effect.Effect<A, E>
): (modelName: string) => Effect.Effect<A, E> => {
  const byConfig = new WeakMap<ConfigProvider.ConfigProvider, Map<string, A>>()
  return (modelName) =>
    Effect.configProviderWith((config) => {
      let byModel = byConfig.get(config)
      if (byModel === undefined) {
        byModel = new Map()
        byConfig.set(config, byModel)
      }
      const known = byModel.get(modelName)
      if (known !== undefined) return Effect.succeed(known)
      const models = byModel
      return Effect.tap(derive(modelName), (value) => Effect.sync(() => models.set(modelName, value)))
    })
}
