/**
 * Strategies as written in files: the `strategy` key of a line, a strategy JSON file
 * (`--strategy file.json`) and a strategy folder (`settings.json` of named strategies plus
 * templates that override the defaults). Each shape is a `Schema`, decoded once; a problem names
 * its key (`strategy.samples: ...`).
 *
 * A strategy is a name (`"self_consistency"`, or a name from the folder's `settings.json`) or an
 * object with `name` and its settings:
 *
 * ```json
 * {"name": "self_consistency", "samples": 5, "extract": "last_number", "vote": "majority"}
 * {"name": "mixture_of_agents", "proposers": [{"api": "openai", "model_name": "gpt-4o-mini"}],
 *  "aggregator": {"api": "anthropic", "model_name": "claude-3-5-haiku-latest"}, "layers": 1}
 * ```
 *
 * A proposer, aggregator, critic or rewriter without `api`/`model_name` uses the line's.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as Extract from "./Extract.js"
import type { IdentifiedRecord } from "./PromptRecord.js"
import * as Strategy from "./Strategy.js"

/**
 * A strategy that cannot be built: unknown name, bad setting, unreadable file or folder.
 *
 * @since 0.1.0
 * @category errors
 */
export class StrategyConfigError extends Schema.TaggedError<StrategyConfigError>()("StrategyConfigError", {
  /** The file at fault, or `""` for a line's key. */
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * The built-in strategy names.
 *
 * @since 0.1.0
 * @category constants
 */
export const builtInNames: ReadonlyArray<string> = [
  "basic",
  "two_turn",
  "self_consistency",
  "mixture_of_agents",
  "critique",
  "best_of"
]

/** An optional key: absent, or a valid value (never `undefined` written out). */
const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

const positiveInt = Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)).annotations({
  message: () => "must be a whole number of at least 1"
})
const text = Schema.String.annotations({ message: () => "must be a string" })
const parameters = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  message: () => "must be an object"
})

/**
 * A model of a step: `api`, `model_name` and `parameters`, each defaulting to the line's.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ModelRef = Schema.Struct({
  api: optional(text),
  model_name: optional(text),
  parameters: optional(parameters)
})

/**
 * A proposer or aggregator: a model, optionally answering through a strategy of its own.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Participant = Schema.Struct({
  ...ModelRef.fields,
  strategy: optional(Schema.Unknown)
})

const common = { name: Schema.String, extract: optional(Schema.Unknown) }

/**
 * The settings of each built-in strategy, by name.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Settings = {
  basic: Schema.Struct({ name: Schema.String }),
  two_turn: Schema.Struct({ ...common, prompt: optional(text) }),
  self_consistency: Schema.Struct({
    ...common,
    samples: optional(positiveInt),
    vote: optional(Schema.Unknown),
    use_n: optional(Schema.Boolean.annotations({ message: () => "must be true or false" })),
    of: optional(Schema.Unknown)
  }),
  mixture_of_agents: Schema.Struct({
    ...common,
    proposers: Schema.NonEmptyArray(Participant).annotations({
      message: () => "must be a non-empty list of {\"api\", \"model_name\", \"parameters\"}"
    }),
    aggregator: optional(Participant),
    layers: optional(positiveInt),
    template: optional(text)
  }),
  critique: Schema.Struct({
    ...common,
    critic: optional(ModelRef),
    rewriter: optional(ModelRef),
    rounds: optional(positiveInt)
  }),
  best_of: Schema.Struct({
    ...common,
    samples: optional(positiveInt),
    of: optional(Schema.Unknown),
    aggregator: optional(ModelRef)
  })
} as const

/**
 * What strategies are built with: the step templates (defaults, or a folder's) and the named
 * strategies of a folder's `settings.json`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StrategySetup {
  readonly templates: Strategy.Templates
  readonly named: ReadonlyMap<string, unknown>
  /** The strategy of lines that name none (`--strategy`); `undefined` is `basic`. */
  readonly default?: unknown
}

/**
 * The setup with default templates and no named strategies.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSetup: StrategySetup = { templates: Strategy.defaultTemplates, named: new Map() }

const issues = (error: ParseResult.ParseError, at: string): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
    const key = [at, ...issue.path.map(String)].join(".")
    return `${key}: ${issue._tag === "Missing" ? "is required but missing" : issue.message}`
  }).join("; ")

const fail = (message: string) => Either.left(new StrategyConfigError({ path: "", message }))

const extractorAt = (spec: unknown, at: string) =>
  spec === undefined
    ? Either.right(undefined)
    : Either.mapLeft(Extract.fromSpec(spec), (error) => new StrategyConfigError({ path: "", message: `${at}.extract: ${error.message}` }))

/**
 * Builds a strategy from how a file writes it; `at` is the key path used in messages.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (
  spec: unknown,
  setup: StrategySetup = defaultSetup,
  at: string = "strategy",
  seen: ReadonlySet<string> = new Set()
): Either.Either<Strategy.Strategy, StrategyConfigError> =>
  Either.gen(function*() {
    const known = () => [...builtInNames, ...setup.named.keys()].map((name) => `"${name}"`).join(", ")
    if (typeof spec === "string") {
      if (setup.named.has(spec)) {
        if (seen.has(spec)) return yield* fail(`${at}: strategy "${spec}" refers to itself`)
        return yield* decode(setup.named.get(spec), setup, at, new Set([...seen, spec]))
      }
      if (!builtInNames.includes(spec)) return yield* fail(`${at}: unknown strategy "${spec}"; known: ${known()}`)
      return yield* decode({ name: spec }, setup, at, seen)
    }
    if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
      return yield* fail(`${at}: must be a strategy name or an object with "name" and its settings`)
    }
    const name = (spec as { readonly name?: unknown }).name
    if (typeof name !== "string") return yield* fail(`${at}.name: is required (one of ${known()})`)
    if (!Object.hasOwn(Settings, name)) {
      if (setup.named.has(name)) return yield* decode(name, setup, at, seen)
      return yield* fail(`${at}.name: unknown strategy "${name}"; known: ${known()}`)
    }
    const schema = Settings[name as keyof typeof Settings] as unknown as Schema.Schema<Record<string, unknown>, unknown>
    const decoded = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(spec)
    if (Either.isLeft(decoded)) return yield* fail(issues(decoded.left, at))
    const s = decoded.right as Record<string, any>
    const extract = yield* extractorAt(s.extract, at)
    const nested = (value: unknown, key: string) =>
      value === undefined ? Either.right(undefined) : decode(value, setup, `${at}.${key}`, seen)
    const participant = (value: any, key: string) =>
      Either.map(nested(value?.strategy, `${key}.strategy`), (strategy): Strategy.Participant => ({
        api: value?.api,
        model_name: value?.model_name,
        parameters: value?.parameters,
        strategy
      }))
    switch (name) {
      case "basic":
        return Strategy.basic
      case "two_turn":
        return Strategy.twoTurn({ prompt: s.prompt ?? setup.templates.extract, extract })
      case "self_consistency": {
        const vote = s.vote === undefined
          ? undefined
          : yield* Either.mapLeft(Extract.voteFromSpec(s.vote), (error) =>
            new StrategyConfigError({ path: "", message: `${at}.vote: ${error.message}` }))
        return Strategy.selfConsistency({ samples: s.samples, of: yield* nested(s.of, "of"), extract, vote, useN: s.use_n })
      }
      case "mixture_of_agents": {
        const proposers: Array<Strategy.Participant> = []
        for (const [i, proposer] of (s.proposers as ReadonlyArray<unknown>).entries()) {
          proposers.push(yield* participant(proposer, `proposers.${i}`))
        }
        return Strategy.mixtureOfAgents({
          proposers,
          aggregator: s.aggregator === undefined ? undefined : yield* participant(s.aggregator, "aggregator"),
          layers: s.layers,
          template: s.template ?? setup.templates.aggregate,
          extract
        })
      }
      case "critique":
        return Strategy.critique({
          critic: s.critic,
          rewriter: s.rewriter,
          rounds: s.rounds,
          critiqueTemplate: setup.templates.critique,
          rewriteTemplate: setup.templates.rewrite,
          extract
        })
      default:
        return Strategy.bestOf({
          samples: s.samples,
          of: yield* nested(s.of, "of"),
          aggregator: s.aggregator,
          template: setup.templates.select,
          extract
        })
    }
  })

/**
 * A model a strategy sends to, with the key that names it (`strategy.proposers.1`), so a check
 * can run that model's provider checks (its key, its parameters) before anything is sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelUse {
  readonly key: string
  readonly model: Strategy.ModelRef
  /** `n` choices asked for in one request (`use_n`). */
  readonly n?: number | undefined
  /** Whether the model is sent the line's prompt, or a prompt the strategy builds (an aggregate). */
  readonly prompt: "line" | "built"
}

/**
 * Every model a valid strategy sends to, the line's own included (as `strategy`), with nested
 * and named strategies followed.
 *
 * @since 0.1.0
 * @category decoding
 */
export const modelUses = (spec: unknown, setup: StrategySetup = defaultSetup, at: string = "strategy"): ReadonlyArray<ModelUse> => {
  const uses: Array<ModelUse> = []
  const walk = (value: unknown, key: string, model: Strategy.ModelRef, depth: number, prompt: ModelUse["prompt"] = "line"): void => {
    if (depth > 20) return
    if (typeof value === "string") {
      if (setup.named.has(value)) walk(setup.named.get(value), key, model, depth + 1, prompt)
      else uses.push({ key, model, prompt })
      return
    }
    if (typeof value !== "object" || value === null) return
    const s = value as Record<string, any>
    if (typeof s.name === "string" && !Object.hasOwn(Settings, s.name) && setup.named.has(s.name)) {
      return walk(s.name, key, model, depth + 1, prompt)
    }
    const n = s.use_n === true ? (typeof s.samples === "number" ? s.samples : 5) : undefined
    uses.push({ key, model, n, prompt })
    const merge = (inner: any): Strategy.ModelRef => ({
      api: inner?.api ?? model.api,
      model_name: inner?.model_name ?? model.model_name,
      parameters: inner?.parameters ?? model.parameters
    })
    if (s.of !== undefined) walk(s.of, `${key}.of`, model, depth + 1, prompt)
    if (Array.isArray(s.proposers)) {
      s.proposers.forEach((proposer: any, i: number) =>
        walk(proposer?.strategy ?? "basic", `${key}.proposers.${i}`, merge(proposer), depth + 1, prompt))
    }
    for (const role of ["aggregator", "critic", "rewriter"]) {
      if (s[role] !== undefined) walk(s[role]?.strategy ?? "basic", `${key}.${role}`, merge(s[role]), depth + 1, "built")
    }
  }
  walk(spec, at, {}, 0)
  return uses
}

/**
 * Whether a strategy as written is plain `basic` (the line is sent as it is, with no `steps`).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isBasic = (spec: unknown, setup: StrategySetup = defaultSetup): boolean =>
  spec === undefined || ((spec === "basic" || (typeof spec === "object" && spec !== null &&
    (spec as { name?: unknown }).name === "basic" && Object.keys(spec).length === 1)) && !setup.named.has("basic"))

/**
 * The strategy of each line: its `strategy` key, else the setup's default. Decoded strategies
 * are kept by their JSON text, so a file of a million lines naming the same strategy decodes it
 * once. `undefined` means the line is sent as it is.
 *
 * @since 0.1.0
 * @category decoding
 */
export const resolver = (
  setup: StrategySetup = defaultSetup
): (line: IdentifiedRecord) => Either.Either<Strategy.Strategy | undefined, StrategyConfigError> => {
  const cache = new Map<string, Either.Either<Strategy.Strategy | undefined, StrategyConfigError>>()
  return (line) => {
    const spec = line.strategy ?? setup.default
    if (isBasic(spec, setup)) return Either.right(undefined)
    const key = typeof spec === "string" ? spec : JSON.stringify(spec)
    let found = cache.get(key)
    if (found === undefined) {
      found = decode(spec, setup)
      if (cache.size < 10_000) cache.set(key, found)
    }
    return found
  }
}

const templateFiles: ReadonlyArray<keyof Strategy.Templates> = ["aggregate", "critique", "rewrite", "extract", "select"]

/**
 * Loads a strategy setup: templates and named strategies from `folder` (its `settings.json`
 * maps names to strategies; `aggregate.txt`, `critique.txt`, `rewrite.txt`, `extract.txt`,
 * `select.txt` replace the default templates), and the default strategy `strategy`: a built-in
 * or folder name, or a `.json` file holding a strategy. Every problem is a
 * `StrategyConfigError` naming the file and key.
 *
 * @since 0.1.0
 * @category loading
 */
export const load = (options: {
  readonly folder?: string | undefined
  readonly strategy?: string | undefined
}): Effect.Effect<StrategySetup, StrategyConfigError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const readJson = (file: string) =>
      fs.readFileString(file).pipe(
        Effect.mapError((error) => new StrategyConfigError({ path: file, message: `cannot read the file: ${error.message}` })),
        Effect.flatMap((content) =>
          Effect.try({
            try: () => JSON.parse(content) as unknown,
            catch: (error) =>
              new StrategyConfigError({ path: file, message: `invalid JSON (${error instanceof Error ? error.message : String(error)})` })
          })
        )
      )
    let templates = Strategy.defaultTemplates
    const named = new Map<string, unknown>()
    if (options.folder !== undefined) {
      const folder = options.folder
      const info = yield* Effect.either(fs.stat(folder))
      if (Either.isLeft(info) || info.right.type !== "Directory") {
        return yield* new StrategyConfigError({ path: folder, message: "the strategy folder does not exist or is not a folder" })
      }
      const settingsFile = path.join(folder, "settings.json")
      if (yield* fs.exists(settingsFile).pipe(Effect.orElseSucceed(() => false))) {
        const settings = yield* readJson(settingsFile)
        if (typeof settings !== "object" || settings === null || Array.isArray(settings)) {
          return yield* new StrategyConfigError({ path: settingsFile, message: "must be a JSON object of {\"<strategy name>\": <strategy>}" })
        }
        for (const [name, spec] of Object.entries(settings)) named.set(name, spec)
      }
      const overrides: Partial<Record<keyof Strategy.Templates, string>> = {}
      for (const name of templateFiles) {
        const file = path.join(folder, `${name}.txt`)
        if (yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))) {
          overrides[name] = (yield* fs.readFileString(file).pipe(
            Effect.mapError((error) => new StrategyConfigError({ path: file, message: `cannot read the template: ${error.message}` }))
          )).replace(/\r?\n$/, "")
        }
      }
      templates = { ...templates, ...overrides }
    }
    const setup: StrategySetup = { templates, named }
    // every named strategy is checked now, not when a line first uses it
    for (const [name, spec] of named) {
      const checked = decode(spec, setup, name)
      if (Either.isLeft(checked)) {
        return yield* new StrategyConfigError({ path: path.join(options.folder!, "settings.json"), message: checked.left.message })
      }
    }
    if (options.strategy === undefined) return setup
    const given = options.strategy
    const spec = given.endsWith(".json") ? yield* readJson(given) : given
    const checked = decode(spec, setup, given.endsWith(".json") ? "strategy" : "--strategy")
    if (Either.isLeft(checked)) {
      return yield* new StrategyConfigError({ path: given.endsWith(".json") ? given : "", message: checked.left.message })
    }
    return { ...setup, default: spec }
  })
