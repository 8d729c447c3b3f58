/**
 * Scorers: small named functions from a completed record to a score, the built-ins (prompto's
 * `match` and `includes` plus the ones people reach for next), a Stream stage that scores
 * records as they complete, and `resolve` for names given on the command line.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Schema, Stream } from "effect"
import * as nodeFs from "node:fs"
import { resolve as resolvePath } from "node:path"
import { pathToFileURL } from "node:url"
import * as Metrics from "./Metrics.js"
import type { CompletedRecord } from "./PromptRecord.js"

/**
 * A score: `true`/`false`, a number, a label, or `null` when the record could not be scored.
 *
 * @since 0.1.0
 * @category models
 */
export type Score = Metrics.Score

/**
 * A named scorer. `score` may return the score, return an Effect of it (to call a model, say),
 * throw or fail; a scorer that throws or fails leaves `null` under its name and its message in
 * `scorer_errors`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scorer<E = never, R = never> {
  readonly name: string
  readonly score: (record: CompletedRecord) => Score | Effect.Effect<Score, E, R>
}

/**
 * A scorer named `name` (the key its score is written under).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(name: string, score: Scorer<E, R>["score"]): Scorer<E, R> => ({
  name,
  score
})

/**
 * A scorer name that is neither built in nor a loadable `module.ts:export`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ScorerNotFound extends Schema.TaggedError<ScorerNotFound>()("ScorerNotFound", {
  name: Schema.String,
  available: Schema.Array(Schema.String),
  message: Schema.String
}) {}

// -----------------------------------------------------------------------------
// reading records
// -----------------------------------------------------------------------------

/**
 * The text a scorer compares: a strategy's extracted `answer` when the record has one (`""`
 * when its extraction failed); else the response if it is a string; the last turn of a
 * multi-turn response (a list of strings); otherwise the response as JSON.
 *
 * @since 0.1.0
 * @category utils
 */
export const responseText = (record: CompletedRecord): string => {
  if (record.answer !== undefined) return record.answer === null ? "" : typeof record.answer === "string" ? record.answer : JSON.stringify(record.answer)
  const response = record.response
  if (typeof response === "string") return response
  if (Array.isArray(response) && response.length > 0 && response.every((turn) => typeof turn === "string")) {
    return response[response.length - 1] as string
  }
  return response === undefined ? "" : JSON.stringify(response)
}

/**
 * The value of `key` in the record; throws `no "<key>" in record <id>` when it is missing or
 * `null`.
 *
 * @since 0.1.0
 * @category utils
 */
export const required = (record: CompletedRecord, key: string): unknown => {
  const value = (record as Record<string, unknown>)[key]
  if (value === undefined || value === null) {
    throw new Error(`no "${key}" in record ${JSON.stringify(record.id)}`)
  }
  return value
}

const expectedText = (record: CompletedRecord): string => {
  const expected = required(record, "expected_response")
  return typeof expected === "string" ? expected : JSON.stringify(expected)
}

const normalize = (text: string): string => text.toLowerCase().replace(/\s+/g, " ").trim()

// -----------------------------------------------------------------------------
// built-ins
// -----------------------------------------------------------------------------

/**
 * `response` equals `expected_response` exactly (prompto's `match`).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const match: Scorer = make("match", (record) => responseText(record) === expectedText(record))

/**
 * `expected_response` occurs in `response` (prompto's `includes`).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const includes: Scorer = make("includes", (record) => responseText(record).includes(expectedText(record)))

/**
 * `response` equals `expected_response` ignoring case.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const matchIgnoreCase: Scorer = make(
  "match_ignore_case",
  (record) => responseText(record).toLowerCase() === expectedText(record).toLowerCase()
)

/**
 * `expected_response` occurs in `response` ignoring case.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const includesIgnoreCase: Scorer = make(
  "includes_ignore_case",
  (record) => responseText(record).toLowerCase().includes(expectedText(record).toLowerCase())
)

/**
 * `response` equals `expected_response` ignoring case, with whitespace runs collapsed and trimmed.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const matchNormalized: Scorer = make(
  "match_normalized",
  (record) => normalize(responseText(record)) === normalize(expectedText(record))
)

/**
 * `expected_response` occurs in `response` ignoring case, with whitespace runs collapsed and trimmed.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const includesNormalized: Scorer = make(
  "includes_normalized",
  (record) => normalize(responseText(record)).includes(normalize(expectedText(record)))
)

const toRegExp = (pattern: unknown, key: string, record: CompletedRecord): RegExp => {
  if (typeof pattern !== "string") {
    throw new Error(`"${key}" in record ${JSON.stringify(record.id)} is not a string`)
  }
  const literal = /^\/(.*)\/([a-z]*)$/s.exec(pattern)
  try {
    return literal === null ? new RegExp(pattern) : new RegExp(literal[1]!, literal[2]!)
  } catch (error) {
    throw new Error(
      `"${key}" in record ${JSON.stringify(record.id)} is not a valid regular expression: ${
        error instanceof Error ? error.message : String(error)
      }`
    )
  }
}

/**
 * A scorer that is true when `response` matches the regular expression in the record's `key`
 * (a pattern, or `/pattern/flags`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const regexFrom = (key: string, name: string = `regex(${key})`): Scorer =>
  make(name, (record) => toRegExp(required(record, key), key, record).test(responseText(record)))

/**
 * `response` matches the regular expression in `expected_pattern` (a pattern, or `/pattern/flags`).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const regex: Scorer = regexFrom("expected_pattern", "regex")

/**
 * `response`, trimmed, parses as JSON (strict: a fenced code block does not).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const jsonValid: Scorer = make("json_valid", (record) => {
  try {
    JSON.parse(responseText(record).trim())
    return true
  } catch {
    return false
  }
})

type Validate = ((data: unknown) => boolean) & { errors?: ReadonlyArray<{ readonly instancePath: string; readonly message?: string }> | null }

/** ajv, loaded on first use (only runs with this scorer pay for it), and each schema compiled once. */
let ajv: Promise<{ readonly compile: (schema: object) => Validate }> | undefined
const compiled = new Map<string, Validate>()

const validatorOf = (schema: object): Effect.Effect<Validate, Error> =>
  Effect.gen(function*() {
    const key = JSON.stringify(schema)
    const known = compiled.get(key)
    if (known !== undefined) return known
    ajv ??= import("ajv").then(({ default: Ajv }) => new Ajv.default({ allErrors: true, strict: false }))
    const instance = yield* Effect.promise(() => ajv!)
    const validate = yield* Effect.try({
      try: () => instance.compile(schema),
      catch: (error) => new Error(`the JSON schema is not valid: ${(error as Error).message}`)
    })
    // a run's schemas are few; a bound keeps a file with a schema per line from growing the map
    if (compiled.size < 1_000) compiled.set(key, validate)
    return validate
  })

/**
 * The JSON schema a record's response must follow: its `json_schema` key, else the schema of an
 * OpenAI `response_format` (`{"type": "json_schema", "json_schema": {"schema": ...}}`), else a
 * Gemini `response_schema` in its parameters; `undefined` when it names none.
 *
 * @since 0.1.0
 * @category utils
 */
export const schemaOf = (record: CompletedRecord): object | undefined => {
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === "object" && value !== null && !Array.isArray(value)
  const own = (record as Record<string, unknown>).json_schema
  if (isObject(own)) return own
  const parameters: Record<string, unknown> = record.parameters ?? {}
  const format = parameters.response_format
  if (isObject(format) && isObject(format.json_schema) && isObject(format.json_schema.schema)) return format.json_schema.schema
  const config = isObject(parameters.generation_config) ? parameters.generation_config : parameters
  const gemini = config.response_schema ?? config.responseSchema
  return isObject(gemini) ? gemini : undefined
}

/**
 * A scorer that is true when `response` (a strategy's `answer` when there is one) parses as JSON
 * and validates against a JSON schema (with `ajv`): the given one, or the record's own (see
 * `schemaOf`). A response that is not JSON, or does not follow the schema, scores false; a
 * record with no schema scores `null`, with the reason in `scorer_errors`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const jsonSchemaWith = (schema?: object | undefined, name: string = "json_schema"): Scorer<Error> =>
  make(name, (record) =>
    Effect.gen(function*() {
      const wanted = schema ?? schemaOf(record)
      if (wanted === undefined) {
        return yield* Effect.fail(
          new Error(`no JSON schema for record ${JSON.stringify(record.id)}: give "json_schema" in the line, or -s json_schema=FILE`)
        )
      }
      const validate = yield* validatorOf(wanted)
      let parsed: unknown
      try {
        parsed = JSON.parse(responseText(record).trim())
      } catch {
        return false
      }
      return validate(parsed)
    }))

/**
 * The response validates against the record's JSON schema (`json_schema` in the line, or the
 * schema of its structured-output parameters); `-s json_schema=FILE` gives one schema for all.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const jsonSchema: Scorer<Error> = jsonSchemaWith()

const numberPattern = /(?:(?<!\d)-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?:(?<!\d)-)?\.\d+/g

/**
 * The last number in a text (with an optional minus sign, decimals and thousands commas), or
 * `undefined` when there is none.
 *
 * @since 0.1.0
 * @category utils
 */
export const lastNumber = (text: string): number | undefined => {
  const found = text.match(numberPattern)
  const last = found?.[found.length - 1]
  return last === undefined ? undefined : Number(last.replaceAll(",", ""))
}

const expectedNumber = (record: CompletedRecord): number => {
  const expected = required(record, "expected_response")
  const value = typeof expected === "number"
    ? expected
    : typeof expected === "string" && expected.trim() !== ""
    ? Number(expected.trim().replaceAll(",", ""))
    : Number.NaN
  if (!Number.isFinite(value)) {
    throw new Error(`"expected_response" in record ${JSON.stringify(record.id)} is not a number: ${JSON.stringify(expected)}`)
  }
  return value
}

/**
 * A scorer that is true when the last number in `response` equals `expected_response` within
 * a relative `tolerance`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const numericMatchWithin = (tolerance: number, name: string = `numeric_match(${tolerance})`): Scorer =>
  make(name, (record) => {
    const expected = expectedNumber(record)
    const actual = lastNumber(responseText(record))
    return actual !== undefined &&
      (actual === expected || Math.abs(actual - expected) <= tolerance * Math.max(Math.abs(actual), Math.abs(expected)))
  })

/**
 * The last number in `response` equals `expected_response` (relative tolerance 1e-9).
 *
 * @since 0.1.0
 * @category built-ins
 */
export const numericMatch: Scorer = numericMatchWithin(1e-9, "numeric_match")

/**
 * The built-in scorers by name.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const builtIns: ReadonlyMap<string, Scorer<unknown>> = new Map(
  [match, includes, matchIgnoreCase, includesIgnoreCase, matchNormalized, includesNormalized, regex, jsonValid, jsonSchema, numericMatch]
    .map((scorer) => [scorer.name, scorer as Scorer<unknown>] as const)
)

// -----------------------------------------------------------------------------
// the stage
// -----------------------------------------------------------------------------

const messageOf = (error: unknown): string =>
  error instanceof Error
    ? error.message
    : typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

const isScore = (value: unknown): value is Score =>
  value === null || typeof value === "boolean" || typeof value === "number" || typeof value === "string"

/**
 * Runs one scorer on one record: its score, or the message of what went wrong.
 *
 * @since 0.1.0
 * @category combinators
 */
export const run = <E, R>(
  scorer: Scorer<E, R>,
  record: CompletedRecord
): Effect.Effect<{ readonly score: Score; readonly error?: string }, never, R> =>
  Effect.suspend(() => {
    const out = scorer.score(record)
    return Effect.isEffect(out) ? out : Effect.succeed(out)
  }).pipe(
    Effect.map((score): { readonly score: Score; readonly error?: string } =>
      isScore(score)
        ? { score }
        : { score: null, error: `returned ${typeof score}, not a boolean, number, string or null` }
    ),
    Effect.catchAllCause((cause) =>
      Effect.succeed({
        score: null,
        error: Cause.isInterruptedOnly(cause) ? "interrupted" : messageOf(Cause.squash(cause))
      })
    )
  )

/**
 * Scores one completed record: each scorer's score under its name, in order, and the
 * messages of failed scorers under `scorer_errors`. Records with an `error` are returned
 * unchanged. Every score is also recorded into `Metrics` when that service is provided.
 *
 * @since 0.1.0
 * @category combinators
 */
export const scoreRecord = <E, R>(
  scorers: ReadonlyArray<Scorer<E, R>>,
  record: CompletedRecord
): Effect.Effect<CompletedRecord, never, R> =>
  Effect.gen(function*() {
    if (record.error !== undefined || scorers.length === 0) return record
    const scores: Record<string, Score> = {}
    const previous = (record as { readonly scorer_errors?: unknown }).scorer_errors
    const errors: Record<string, string> = {}
    if (typeof previous === "object" && previous !== null) {
      for (const [name, message] of Object.entries(previous)) {
        if (!scorers.some((scorer) => scorer.name === name) && typeof message === "string") errors[name] = message
      }
    }
    for (const scorer of scorers) {
      const result = yield* run(scorer, record)
      scores[scorer.name] = result.score
      if (result.error !== undefined) errors[scorer.name] = result.error
      yield* Metrics.record({
        scorer: scorer.name,
        api: record.api,
        model_name: record.model_name,
        group: record.group,
        value: result.score,
        prompt: record.sample === undefined ? undefined : record.id
      })
    }
    const { scorer_errors: _previous, ...rest } = record as CompletedRecord & { readonly scorer_errors?: unknown }
    const scored: CompletedRecord = { ...rest, ...scores }
    return Object.keys(errors).length === 0 ? scored : { ...scored, scorer_errors: errors }
  })

/**
 * A Stream stage that scores records as they complete (up to 16 at once, order kept); see
 * `scoreRecord`. A scorer that fails never stops the run.
 *
 * @since 0.1.0
 * @category streams
 */
export const stage = <E, R>(scorers: ReadonlyArray<Scorer<E, R>>) =>
<E0, R0>(records: Stream.Stream<CompletedRecord, E0, R0>): Stream.Stream<CompletedRecord, E0, R0 | R> =>
  Stream.mapEffect(records, (record) => scoreRecord(scorers, record), { concurrency: 16 })

// -----------------------------------------------------------------------------
// resolving names
// -----------------------------------------------------------------------------

const moduleExtension = /\.(?:[cm]?[jt]s|tsx|jsx)$/

const customHelp =
  "A custom scorer is given as path/to/module.ts:exportName (.ts, .js, .mjs or .mts), exporting a function " +
  "(record) => score or an object with \"name\" and \"score\"."

const notFound = (name: string, message: string) =>
  new ScorerNotFound({ name, available: [...builtIns.keys()], message })

/**
 * How a scorer module is loaded: `import()` by default; the CLI passes a loader that compiles
 * TypeScript wherever the file lives.
 *
 * @since 0.1.0
 * @category models
 */
export type ModuleLoader = (url: string) => Promise<Record<string, unknown>>

const nativeImport: ModuleLoader = (url) => import(url) as Promise<Record<string, unknown>>

const fromModule = (
  spec: string,
  cwd: string,
  load: ModuleLoader
): Effect.Effect<Scorer<unknown, never>, ScorerNotFound> =>
  Effect.gen(function*() {
    const colon = spec.lastIndexOf(":")
    const file = colon < 0 ? spec : spec.slice(0, colon).trim()
    const exportName = colon < 0 ? "default" : spec.slice(colon + 1).trim()
    if (file === "" || exportName === "") {
      return yield* notFound(spec, `scorer "${spec}" needs a module path and an export name. ${customHelp}`)
    }
    const path = resolvePath(cwd, file)
    const module = yield* Effect.tryPromise({
      try: () => load(pathToFileURL(path).href),
      catch: (error) => notFound(spec, `cannot load scorer module "${path}" (from "${spec}"): ${messageOf(error)}`)
    })
    const exported = module[exportName]
    if (exported === undefined) {
      const names = Object.keys(module)
      return yield* notFound(
        spec,
        `scorer module "${path}" has no export "${exportName}"; its exports: ${names.length === 0 ? "(none)" : names.join(", ")}`
      )
    }
    if (typeof exported === "function") {
      const name = exportName === "default"
        ? (exported.name !== "" && exported.name !== "default" ? exported.name : file.replace(/^.*[\\/]/, "").replace(moduleExtension, ""))
        : exportName
      return make(name, exported as Scorer<unknown, never>["score"])
    }
    if (
      typeof exported === "object" && exported !== null && "name" in exported && typeof exported.name === "string" &&
      "score" in exported && typeof exported.score === "function"
    ) {
      return exported as Scorer<unknown, never>
    }
    return yield* notFound(
      spec,
      `export "${exportName}" of "${path}" is not a scorer: expected a function (record) => score or an object with "name" and "score"`
    )
  })

/** `-s json_schema=FILE`: one schema (a JSON file) for every record. */
const schemaFile = (file: string, cwd: string): Effect.Effect<Scorer<unknown>, ScorerNotFound> =>
  Effect.try({
    try: () => {
      const schema: unknown = JSON.parse(nodeFs.readFileSync(resolvePath(cwd, file), "utf8"))
      if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw new Error("not a JSON object")
      return jsonSchemaWith(schema) as Scorer<unknown>
    },
    catch: (error) => notFound(`json_schema=${file}`, `json_schema=${file}: cannot read the schema: ${(error as Error).message}`)
  })

/**
 * Scorers from names: a built-in name, `json_schema=FILE`, or `path/to/module.ts:exportName` loaded relative to
 * `cwd`. Names are trimmed and de-duplicated in order; two scorers with the same name are an
 * error, since each writes its score under its name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (
  specs: ReadonlyArray<string>,
  options?: { readonly cwd?: string | undefined; readonly load?: ModuleLoader | undefined }
): Effect.Effect<ReadonlyArray<Scorer<unknown, never>>, ScorerNotFound> =>
  Effect.gen(function*() {
    const cwd = options?.cwd ?? process.cwd()
    const names = [...new Set(specs.map((spec) => spec.trim()).filter((spec) => spec !== ""))]
    const scorers: Array<Scorer<unknown, never>> = []
    const specOf = new Map<string, string>()
    for (const name of names) {
      const builtIn = builtIns.get(name)
      const scorer = builtIn !== undefined
        ? builtIn
        : name.startsWith("json_schema=")
        ? yield* schemaFile(name.slice("json_schema=".length), cwd)
        : name.includes(":") || moduleExtension.test(name)
        ? yield* fromModule(name, cwd, options?.load ?? nativeImport)
        : yield* notFound(name, `unknown scorer "${name}". Built-in scorers: ${[...builtIns.keys()].join(", ")}. ${customHelp}`)
      const clash = specOf.get(scorer.name)
      if (clash !== undefined) {
        return yield* notFound(name, `scorers "${clash}" and "${name}" are both named "${scorer.name}"; each needs its own name`)
      }
      specOf.set(scorer.name, name)
      scorers.push(scorer)
    }
    return scorers
  })
