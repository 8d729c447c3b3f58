/**
 * Experiments from templates (`prompto expand`): prompt templates with `{name}` placeholders,
 * a file of variable rows and, optionally, a list of models, expanded into an ordinary
 * experiment file, as batch-prompt does.
 *
 * The order is template-major: for each template, each vars row, each model, each sample.
 * Templates and models are small and held in memory; the vars file is streamed (once to check
 * it, then once per template), so a million rows need no more memory than ten. Everything is
 * checked before the first line is produced, and `write` goes through a temporary file renamed
 * at the end, so a bad input never leaves output behind.
 *
 * Each generated line is `{id, api, model_name, prompt, parameters?, ...the template line's other
 * keys, template, vars, template_index, vars_index, sample?}`. The id is
 * `<prefix>t<template index>-v<vars index>`, then `-m<model index>` with a models file and
 * `-s<sample>` with `repeats` (all 0-based): unique whatever the templates hold (duplicate
 * template lines are allowed and get their own index), and the same on every expansion of the
 * same files, so a resumed or re-run experiment keeps its ids.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { stringify } from "csv-stringify/sync"
import { Chunk, Effect, Either, ParseResult, Schema, Stream } from "effect"
import * as ExperimentFile from "./ExperimentFile.js"
import type { LineProblem } from "./ExperimentFile.js"
import * as FileSystemError from "./internal/fileSystemError.js"
import * as JsonLine from "./internal/jsonLine.js"
import * as Placeholders from "./internal/placeholders.js"
import { notUtf8, readVars } from "./internal/varsFile.js"
import * as Output from "./Output.js"
import * as PromptRecord from "./PromptRecord.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What to expand.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `.txt` (a template per line, a literal `\n` made a newline) or `.jsonl` (objects with `prompt`). */
  readonly templates: string
  /** `.csv` (header and rows, values as strings) or `.jsonl` (objects, values of any JSON type). */
  readonly vars: string
  /** `.json`: a list of `{api, model_name, parameters?}`; every template is expanded for each. */
  readonly models?: string | undefined
  /** Generate each line this many times, with `sample` 0 to N - 1. */
  readonly repeats?: number | undefined
  /** Put in front of every generated id (default none). */
  readonly idPrefix?: string | undefined
  /** A variable used by no template is not an error (a missing one always is). */
  readonly allowUnused?: boolean | undefined
}

/**
 * Options of `write`: `output` is the experiment file to write, `.jsonl` or `.csv`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions extends Options {
  readonly output: string
}

/**
 * A generated line: an ordinary prompt record plus where it came from.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpandedRecord = PromptRecord.IdentifiedRecord & {
  readonly id: string
  /** The template before filling: the line of a `.txt` file, or a `.jsonl` line's `prompt`. */
  readonly template: unknown
  /** The vars row the template was filled from, as read (CSV values are strings). */
  readonly vars: Readonly<Record<string, unknown>>
  readonly template_index: number
  readonly vars_index: number
  /** Which repeat this is (only with `repeats`). */
  readonly sample?: number
}

/**
 * A problem as `ExpandError` carries it: the file, the 1-based line (0 for the whole file or an
 * option), the key or variable name at fault, and what is wrong.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Problem = Schema.Struct({
  file: Schema.String,
  line: Schema.Number,
  key: Schema.optional(Schema.String),
  message: Schema.String
})

/**
 * The inputs cannot be expanded; nothing was written. `problems` lists the first `maxListed`,
 * `problemCount` counts them all.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExpandError extends Schema.TaggedError<ExpandError>()("ExpandError", {
  problems: Schema.Array(Problem),
  problemCount: Schema.Number
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return formatProblems(this).join("\n")
  }
}

/**
 * What the checking pass found, and how many lines the expansion gives when there is nothing
 * wrong.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  /** The first `maxListed` problems, in the order found. */
  readonly problems: ReadonlyArray<LineProblem>
  readonly problemCount: number
  readonly templates: number
  readonly rows: number
  /** Models in the models file (1 without one). */
  readonly models: number
  /** Repeats of each line (1 without `repeats`). */
  readonly samples: number
  /** The lines the expansion gives: templates × rows × models × samples. */
  readonly lines: number
}

/**
 * What `write` did.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteResult extends Omit<Report, "problems" | "problemCount"> {
  readonly output: string
}

/**
 * The most problems a report or an error lists; the count is always exact.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxListed = 100

// -----------------------------------------------------------------------------
// schemas
// -----------------------------------------------------------------------------

const nonEmptyString = Schema.String.pipe(Schema.minLength(1)).annotations({ message: () => "must be a non-empty string" })

/**
 * One model of a models file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Model = Schema.Struct({
  api: nonEmptyString,
  model_name: nonEmptyString,
  parameters: Schema.optional(PromptRecord.Parameters)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Model = typeof Model.Type

/**
 * A models file: a non-empty JSON list of models.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ModelsFile = Schema.Array(Model).annotations({
  message: () => "must be a JSON list of {\"api\", \"model_name\", \"parameters\"} objects"
}).pipe(Schema.filter((models) => models.length > 0 || "holds no models (the list is empty)"))

/** Keys every generated line gets from the expansion: a template that sets them would be overwritten. */
const setByExpand = Schema.optional(Schema.Never.annotations({
  message: () => "is set by prompto expand on every generated line: remove it from the template"
}))

/**
 * One line of a `.jsonl` templates file: a prompt record whose `prompt` may hold placeholders
 * in any string, whose `api` and `model_name` may be left to a models file, and without the
 * keys the expansion sets. Other keys are kept on the generated lines.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TemplateLine = Schema.Struct(
  {
    ...PromptRecord.PromptRecord.fields,
    api: Schema.optional(nonEmptyString),
    model_name: Schema.optional(nonEmptyString),
    id: setByExpand,
    template: setByExpand,
    vars: setByExpand,
    template_index: setByExpand,
    vars_index: setByExpand,
    sample: setByExpand
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "TemplateLine" })

// -----------------------------------------------------------------------------
// problems
// -----------------------------------------------------------------------------

/**
 * The problems of an error or a report as lines, `file:line: key "k": message`, with a last
 * line counting those not listed.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatProblems = (
  found: { readonly problems: ReadonlyArray<LineProblem>; readonly problemCount: number }
): ReadonlyArray<string> => [
  // a message quoting a file (a JSON parser's excerpt) may hold a line break: one problem, one line
  ...found.problems.map((problem) => ExperimentFile.formatProblem(problem).replace(/\s*[\r\n]+\s*/g, " ")),
  ...(found.problemCount > found.problems.length ? [`... and ${found.problemCount - found.problems.length} more problems`] : [])
]

/** Problems collected in a pass: the first `maxListed` kept, all counted. */
class Problems {
  readonly list: Array<LineProblem> = []
  count = 0
  add(problem: LineProblem): void {
    this.count++
    if (this.list.length < maxListed) this.list.push(problem)
  }
  addAll(problems: ReadonlyArray<LineProblem>): void {
    for (const problem of problems) this.add(problem)
  }
  merge(other: Problems): void {
    this.addAll(other.list)
    this.count += other.count - other.list.length
  }
}

const fileProblem = (file: string, message: string): LineProblem => ({ file, line: 0, message })

const extensionOf = (file: string, allowed: ReadonlyArray<string>, what: string): Either.Either<string, LineProblem> => {
  const found = allowed.find((extension) => file.toLowerCase().endsWith(extension))
  return found === undefined
    ? Either.left(fileProblem(file, `${what} must end in ${allowed.join(" or ")}`))
    : Either.right(found)
}


// -----------------------------------------------------------------------------
// templates
// -----------------------------------------------------------------------------

/** A template ready to fill. */
interface Template {
  readonly line: number
  readonly index: number
  /** Written as `template`: the `.txt` line or the `.jsonl` line's `prompt`. */
  readonly raw: unknown
  readonly prompt: Placeholders.Compiled
  readonly names: ReadonlyArray<string>
  readonly api: string | undefined
  readonly model_name: string | undefined
  readonly parameters: Readonly<Record<string, unknown>> | undefined
  /** The `.jsonl` line's other keys, in its order. */
  readonly extra: Readonly<Record<string, unknown>>
}

/**
 * A `.txt` line as a template, as prompto reads its rephrase templates (`Rephrase.templateLines`):
 * a literal `\n` made a newline, the ends trimmed.
 */
const txtTemplate = (text: string): string => text.replaceAll("\\n", "\n").trim()

const decodeTemplateLine = JsonLine.decoder(TemplateLine)

const keyPath = (path: ReadonlyArray<string>): string => ["prompt", ...path].join(".")

/** A `.txt` line: its braces are checked on the line as written, so columns are the file's. */
const parseTxtLine = (file: string, entry: ExperimentFile.Line, index: number): Either.Either<Template, ReadonlyArray<LineProblem>> => {
  if (entry.invalidUtf8 === true) return Either.left([{ file, line: entry.line, message: `the line ${notUtf8}` }])
  const atColumns = (problems: ReadonlyArray<Placeholders.BraceProblem>): ReadonlyArray<LineProblem> =>
    problems.map((problem) => ({ file, line: entry.line, message: Placeholders.describe(problem, `column ${problem.column}`) }))
  const braces = Placeholders.parse(entry.text)
  if (Either.isLeft(braces)) return Either.left(atColumns(braces.left))
  // making `\n` a newline and trimming touch no brace: what parsed as written parses the same
  const raw = txtTemplate(entry.text)
  return Either.map(
    Either.mapLeft(Placeholders.compile(raw), (found) => atColumns(found.map(({ problem }) => problem))),
    (prompt): Template => ({
      line: entry.line,
      index,
      raw,
      prompt,
      names: Placeholders.names(prompt),
      api: undefined,
      model_name: undefined,
      parameters: undefined,
      extra: {}
    })
  )
}

const parseJsonlLine = (file: string, entry: ExperimentFile.Line, index: number): Either.Either<Template, ReadonlyArray<LineProblem>> => {
  if (entry.invalidUtf8 === true) return Either.left([{ file, line: entry.line, message: `the line ${notUtf8}` }])
  return Either.flatMap(decodeTemplateLine(file, entry.line, entry.text), (value) => {
    const { api, model_name, parameters, prompt, ...extra } = value
    return Either.map(
      Either.mapLeft(Placeholders.compile(prompt), (found) =>
        found.map(({ path, problem }): LineProblem => ({
          file,
          line: entry.line,
          key: keyPath(path),
          message: Placeholders.describe(problem, `character ${problem.column} of the string`)
        }))),
      (compiled): Template => ({
        line: entry.line,
        index,
        raw: prompt,
        prompt: compiled,
        names: Placeholders.names(compiled),
        api,
        model_name,
        parameters,
        extra
      })
    )
  })
}

/** The templates of a file, read whole (a templates file is small); problems go to `problems`. */
const loadTemplates = (file: string, problems: Problems): Effect.Effect<ReadonlyArray<Template>, never, FileSystem.FileSystem> =>
  Either.match(extensionOf(file, [".txt", ".jsonl"], "a templates file"), {
    onLeft: (problem) => Effect.sync(() => problems.add(problem)).pipe(Effect.as([])),
    onRight: (extension) => {
      const parseLine = extension === ".txt" ? parseTxtLine : parseJsonlLine
      const templates: Array<Template> = []
      return Stream.runForEach(ExperimentFile.lines(file), (entry) =>
        Effect.sync(() => {
          // a `.txt` line holding only `\n` is blank once read: not a template, and no index
          if (extension === ".txt" && txtTemplate(entry.text) === "" && entry.invalidUtf8 !== true) return
          Either.match(parseLine(file, entry, templates.length), {
            onLeft: (found) => problems.addAll(found),
            onRight: (template) => templates.push(template)
          })
        })).pipe(
          Effect.catchAll((error) => Effect.sync(() => problems.add(fileProblem(file, error.message)))),
          Effect.map(() => templates)
        )
    }
  })

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

const decodeModels = Schema.decodeUnknownEither(ModelsFile, { errors: "all", onExcessProperty: "error" })

/** One problem per key path (a union or `optional` reports several issues for one key). */
const schemaProblems = (file: string, error: ParseResult.ParseError): ReadonlyArray<LineProblem> => {
  const seen = new Set<string>()
  const out: Array<LineProblem> = []
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const key = issue.path.map(String).join(".")
    if (seen.has(key)) continue
    seen.add(key)
    out.push({
      file,
      line: 0,
      ...(key === "" ? {} : { key }),
      message: issue._tag === "Missing" ? "is required but missing" : issue.message
    })
  }
  return out
}

const loadModels = (file: string, problems: Problems): Effect.Effect<ReadonlyArray<Model>, never, FileSystem.FileSystem> =>
  Either.match(extensionOf(file, [".json"], "a models file"), {
    onLeft: (problem) => Effect.sync(() => problems.add(problem)).pipe(Effect.as([])),
    onRight: () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const bytes = yield* fs.readFile(file)
        let text: string
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(bytes)
        } catch {
          return yield* Effect.fail(`the file ${notUtf8}`)
        }
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch (error) {
          // the parser's message quotes the text, line breaks and all: a problem is one line
          const detail = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ")
          return yield* Effect.fail(`invalid JSON (${JsonLine.quoted(detail)})`)
        }
        return yield* Either.match(decodeModels(value), {
          onLeft: (error) => Effect.sync(() => problems.addAll(schemaProblems(file, error))).pipe(Effect.as([])),
          onRight: Effect.succeed
        })
      }).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() =>
            problems.add(fileProblem(file, typeof error === "string" ? error : `cannot read the file: ${FileSystemError.describe(error)}`))
          ).pipe(Effect.as([]))
        )
      )
  })

// -----------------------------------------------------------------------------
// vars
// -----------------------------------------------------------------------------

/** How a variable is put into a template: a string as it is, any other JSON value as JSON. */
const textOf = (value: unknown): string => typeof value === "string" ? value : JSON.stringify(value)

// -----------------------------------------------------------------------------
// checking
// -----------------------------------------------------------------------------

/** Everything the expansion needs, once checked. */
interface Plan {
  readonly vars: string
  readonly varsExtension: string
  readonly templates: ReadonlyArray<Template>
  readonly models: ReadonlyArray<Model> | undefined
  readonly samples: number | undefined
  readonly idPrefix: string
  readonly rows: number
}

const listTemplates = (file: string, lines: ReadonlyArray<number>): string =>
  `${file}:${lines.slice(0, 3).join(", ")}${lines.length > 3 ? ", ..." : ""}`

/** The template lines that use each placeholder name, in order of first use. */
const usersOf = (templates: ReadonlyArray<Template>): ReadonlyMap<string, ReadonlyArray<number>> => {
  const users = new Map<string, Array<number>>()
  for (const template of templates) {
    for (const name of template.names) {
      const lines = users.get(name) ?? []
      lines.push(template.line)
      users.set(name, lines)
    }
  }
  return users
}

/**
 * Checks the vars file in one streaming pass: its rows (format, UTF-8), that every row has a
 * value for every placeholder and, unless `allowUnused`, that every variable is used. With
 * `templates` undefined (the templates file has problems), only the file itself is checked.
 */
const checkVars = (
  options: Options,
  extension: string,
  templates: ReadonlyArray<Template> | undefined,
  problems: Problems
): Effect.Effect<number, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const file = options.vars
    const users = usersOf(templates ?? [])
    const used = (name: string) => templates === undefined || users.has(name)
    const missing = (name: string, lines: ReadonlyArray<number>, what: string): string =>
      `no ${what} for the placeholder {${name}} used by ${listTemplates(options.templates, lines)}`
    const unused = "the variable is used by no template (allow it with --allow-unused)"
    // JSONL rows may differ in keys: each unused one is named once, on the line it first shows
    const firstSeen = new Set<string>()
    let header: { readonly line: number; readonly columns: ReadonlyArray<string> } | undefined
    let rows = 0
    let readable = true
    yield* Stream.runForEach(readVars(file, extension), (entry) =>
      Effect.sync(() => {
        if (entry._tag === "Header") {
          header = entry
          problems.addAll(entry.problems)
          const seen = new Set<string>()
          for (const column of entry.columns) {
            if (seen.has(column)) problems.add({ file, line: entry.line, key: column, message: "the column appears twice in the header" })
            seen.add(column)
            if (!used(column) && options.allowUnused !== true) problems.add({ file, line: entry.line, key: column, message: unused })
          }
          for (const [name, lines] of users) {
            if (!seen.has(name)) problems.add({ file, line: entry.line, key: name, message: missing(name, lines, "column") })
          }
          return
        }
        rows++
        problems.addAll(entry.problems)
        // a CSV row has every column the header has (a short row is its own problem)
        if (entry.values === undefined || extension === ".csv") return
        for (const [name, lines] of users) {
          if (!Object.hasOwn(entry.values, name)) {
            problems.add({ file, line: entry.line, key: name, message: missing(name, lines, "value") })
          }
        }
        if (options.allowUnused === true) return
        for (const key of Object.keys(entry.values)) {
          if (!used(key) && !firstSeen.has(key)) {
            firstSeen.add(key)
            problems.add({ file, line: entry.line, key, message: unused })
          }
        }
      })).pipe(Effect.catchAll((error) =>
        Effect.sync(() => {
          readable = false
          problems.add(fileProblem(file, error.message))
        })
      ))
    if (rows === 0 && readable) {
      problems.add(
        header === undefined
          ? fileProblem(file, "the file has no rows of variables")
          : { file, line: header.line, message: "the file has a header but no rows of variables" }
      )
    }
    return rows
  })

/** A value as a CSV cell: booleans as prompto's `True`/`False` (csv-stringify would write `1` and nothing). */
const csvCell = (value: unknown): string =>
  typeof value === "boolean" ? (value ? "True" : "False") : typeof value === "string" ? value : JSON.stringify(value)

/** Whether prompto's CSV reading (`ExperimentFile.typeCsvCell`) gives a value back as it was written. */
const roundTrips = (value: unknown): boolean =>
  (typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) &&
  csvCell(value) !== "" && ExperimentFile.typeCsvCell(csvCell(value)) === value

/**
 * A CSV output is read back by prompto's CSV reading (`ExperimentFile.readCsv`): cells are
 * typed and nested values cannot be told from text. What would not come back as written is a
 * problem, so a `.csv` output always reads back to the lines a `.jsonl` one would hold (apart
 * from `vars`, kept as a JSON string).
 */
const checkCsvOutput = (options: Options, templates: ReadonlyArray<Template>, models: ReadonlyArray<Model> | undefined, problems: Problems) => {
  const advice = "in a .csv output it would not read back as written: write a .jsonl file instead"
  for (const template of templates) {
    const at = { file: options.templates, line: template.line }
    if (typeof template.raw !== "string") {
      problems.add({ ...at, key: "prompt", message: `is a list of turns or messages: ${advice}` })
    } else if (!roundTrips(template.raw) && template.raw !== "") {
      problems.add({ ...at, key: "prompt", message: `the template reads back as ${kindOfCell(template.raw)}: ${advice}` })
    }
    for (const [key, value] of Object.entries(template.extra)) {
      if (!roundTrips(value)) problems.add({ ...at, key, message: advice })
    }
    for (const [key, value] of Object.entries(template.parameters ?? {})) {
      if (!roundTrips(value)) problems.add({ ...at, key: `parameters.${key}`, message: advice })
    }
  }
  models?.forEach((model, index) => {
    for (const [key, value] of Object.entries(model.parameters ?? {})) {
      if (!roundTrips(value)) problems.add({ file: options.models!, line: 0, key: `${index}.parameters.${key}`, message: advice })
    }
  })
}

const kindOfCell = (text: string): string => `${typeof ExperimentFile.typeCsvCell(text)} ${JSON.stringify(ExperimentFile.typeCsvCell(text))}`

/**
 * Without a models file, every template must say where it goes. A `.txt` file never can: that
 * is said once, not once per line.
 */
const checkTargets = (file: string, templates: ReadonlyArray<Template>, problems: Problems): void => {
  const txt = file.toLowerCase().endsWith(".txt")
  for (const template of txt ? templates.slice(0, 1) : templates) {
    const lacking = [template.api === undefined ? "api" : undefined, template.model_name === undefined ? "model_name" : undefined]
      .filter((key) => key !== undefined)
    if (lacking.length === 0) continue
    problems.add({
      file,
      line: template.line,
      key: lacking[0]!,
      message: txt
        ? "is required: a .txt template is only a prompt, so give a models file (--models) to say which api and model_name to send it to"
        : `is required when no models file (--models) is given${lacking.length > 1 ? " (and so is \"model_name\")" : ""}`
    })
  }
}

/**
 * The checking pass: every problem of every input, found before anything is generated. The
 * vars file is checked against the placeholders only when every template could be read (with
 * one missing, an "unused" variable may well be that template's).
 */
const prepare = (
  options: Options & { readonly output?: string | undefined }
): Effect.Effect<{ readonly plan: Plan; readonly problems: Problems }, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const problems = new Problems()
    const samples = options.repeats
    if (samples !== undefined && !(Number.isInteger(samples) && samples >= 1)) {
      problems.add({ file: "--repeats", line: 0, message: `must be a whole number of at least 1, got ${samples}` })
    }
    if (options.output !== undefined) {
      Either.match(extensionOf(options.output, [".jsonl", ".csv"], "the output file"), {
        onLeft: (problem) => problems.add(problem),
        onRight: () => undefined
      })
    }
    const templateProblems = new Problems()
    const templates = yield* loadTemplates(options.templates, templateProblems)
    if (templateProblems.count === 0 && templates.length === 0) {
      templateProblems.add(fileProblem(options.templates, "the file has no templates (each non-blank line is one)"))
    }
    problems.merge(templateProblems)
    const models = options.models === undefined ? undefined : yield* loadModels(options.models, problems)
    if (models === undefined) checkTargets(options.templates, templates, problems)
    const rows = yield* Either.match(extensionOf(options.vars, [".csv", ".jsonl"], "a vars file"), {
      onLeft: (problem) => Effect.sync(() => problems.add(problem)).pipe(Effect.as(0)),
      onRight: (extension) => checkVars(options, extension, templateProblems.count === 0 ? templates : undefined, problems)
    })
    if (options.output?.toLowerCase().endsWith(".csv") === true) checkCsvOutput(options, templates, models, problems)
    const plan: Plan = {
      vars: options.vars,
      varsExtension: options.vars.toLowerCase().endsWith(".csv") ? ".csv" : ".jsonl",
      templates,
      models,
      samples,
      idPrefix: options.idPrefix ?? "",
      rows
    }
    return { plan, problems }
  })

const countsOf = (plan: Plan) => {
  const models = plan.models?.length ?? 1
  const samples = plan.samples ?? 1
  return {
    templates: plan.templates.length,
    rows: plan.rows,
    models,
    samples,
    lines: plan.templates.length * plan.rows * models * samples
  }
}

/**
 * The checking pass alone: reads the templates and models files and streams the vars file
 * once, and reports every problem (file, line, key or variable name). Never fails: a file
 * that cannot be read is a problem too. Give `output` to check it as well (its extension, and
 * for `.csv` that every value can be written as a cell).
 *
 * @since 0.1.0
 * @category checking
 */
export const check = (
  options: Options & { readonly output?: string | undefined }
): Effect.Effect<Report, never, FileSystem.FileSystem> =>
  Effect.map(prepare(options), ({ plan, problems }) => ({
    problems: problems.list,
    problemCount: problems.count,
    ...countsOf(plan)
  }))

const checked = (
  options: Options & { readonly output?: string | undefined }
): Effect.Effect<Plan, ExpandError, FileSystem.FileSystem> =>
  Effect.flatMap(prepare(options), ({ plan, problems }) =>
    problems.count === 0
      ? Effect.succeed(plan)
      : Effect.fail(new ExpandError({ problems: problems.list, problemCount: problems.count })))

// -----------------------------------------------------------------------------
// expanding
// -----------------------------------------------------------------------------

/** Where one template's lines go: the template's own api and model, or each model's. */
interface Target {
  readonly id: string
  readonly api: string
  readonly model_name: string
  readonly parameters: Readonly<Record<string, unknown>> | undefined
}

/** A template's targets, worked out once per template rather than once per row. */
const targetsOf = (plan: Plan, template: Template): ReadonlyArray<Target> =>
  plan.models === undefined
    ? [{ id: "", api: template.api!, model_name: template.model_name!, parameters: template.parameters }]
    : plan.models.map((model, index) => ({
      id: `-m${index}`,
      api: model.api,
      model_name: model.model_name,
      // the model's parameters win over the template's
      parameters: template.parameters === undefined && model.parameters === undefined
        ? undefined
        : { ...template.parameters, ...model.parameters }
    }))

/**
 * The generated lines of one template and one vars row: each target, each sample.
 */
const linesOf = (
  plan: Plan,
  template: Template,
  targets: ReadonlyArray<Target>,
  row: { readonly index: number; readonly values: Readonly<Record<string, unknown>> }
): ReadonlyArray<ExpandedRecord> => {
  const prompt = Placeholders.fill(template.prompt, (name) => textOf(row.values[name])) as PromptRecord.Prompt
  const base = `${plan.idPrefix}t${template.index}-v${row.index}`
  const out: Array<ExpandedRecord> = []
  for (const target of targets) {
    for (let sample = 0; sample < (plan.samples ?? 1); sample++) {
      out.push({
        id: plan.samples === undefined ? `${base}${target.id}` : `${base}${target.id}-s${sample}`,
        api: target.api,
        model_name: target.model_name,
        prompt,
        ...(target.parameters === undefined ? {} : { parameters: target.parameters }),
        ...template.extra,
        template: template.raw,
        vars: row.values,
        template_index: template.index,
        vars_index: row.index,
        ...(plan.samples === undefined ? {} : { sample })
      })
    }
  }
  return out
}

/**
 * The vars rows again, for one template. The file was checked; if it changed since, its new
 * problems still stop the expansion.
 */
const rowsFor = (plan: Plan, template: Template) => {
  const targets = targetsOf(plan, template)
  return readVars(plan.vars, plan.varsExtension).pipe(
    Stream.mapError((error) => new ExpandError({ problems: [fileProblem(plan.vars, error.message)], problemCount: 1 })),
    Stream.mapChunksEffect((chunk) => {
      const out: Array<ExpandedRecord> = []
      for (const entry of chunk) {
        if (entry._tag === "Header") continue
        const values = entry.values
        const lacking = values === undefined ? undefined : template.names.find((name) => !Object.hasOwn(values, name))
        if (values === undefined || entry.problems.length > 0 || lacking !== undefined) {
          const problems = entry.problems.length > 0
            ? entry.problems
            : [{ file: plan.vars, line: entry.line, ...(lacking === undefined ? {} : { key: lacking }), message: "the file changed while it was expanded" }]
          return Effect.fail(new ExpandError({ problems, problemCount: problems.length }))
        }
        for (const line of linesOf(plan, template, targets, { index: entry.index, values })) out.push(line)
      }
      return Effect.succeed(Chunk.unsafeFromArray(out))
    })
  )
}

const expand = (plan: Plan): Stream.Stream<ExpandedRecord, ExpandError, FileSystem.FileSystem> =>
  Stream.fromIterable(plan.templates).pipe(Stream.flatMap((template) => rowsFor(plan, template)))

/**
 * The generated lines, streamed in template-major order (each template, each vars row, each
 * model, each sample). The inputs are checked first, in a pass of their own: the stream fails
 * with every problem before it gives a single line.
 *
 * @since 0.1.0
 * @category expanding
 */
export const records = (options: Options): Stream.Stream<ExpandedRecord, ExpandError, FileSystem.FileSystem> =>
  Stream.unwrap(Effect.map(checked(options), expand))

// -----------------------------------------------------------------------------
// writing
// -----------------------------------------------------------------------------

/** The CSV columns, all known before the first row: prompto's layout, `parameters` folded into `parameters-<key>`. */
const csvColumns = (plan: Plan): ReadonlyArray<string> => {
  const parameters = new Set<string>()
  const extra = new Set<string>()
  for (const template of plan.templates) {
    for (const key of Object.keys(template.parameters ?? {})) parameters.add(key)
    for (const key of Object.keys(template.extra)) extra.add(key)
  }
  for (const model of plan.models ?? []) for (const key of Object.keys(model.parameters ?? {})) parameters.add(key)
  return [
    "id",
    "api",
    "model_name",
    "prompt",
    ...[...parameters].map((key) => `parameters-${key}`),
    ...extra,
    "template",
    "vars",
    "template_index",
    "vars_index",
    ...(plan.samples === undefined ? [] : ["sample"])
  ]
}

const csvRow = (columns: ReadonlyArray<string>, record: ExpandedRecord): ReadonlyArray<string> => {
  const fields = record as unknown as Readonly<Record<string, unknown>>
  return columns.map((column) => {
    const value = column.startsWith("parameters-")
      ? record.parameters?.[column.slice("parameters-".length)]
      : fields[column]
    return value === undefined ? "" : column === "vars" ? JSON.stringify(value) : csvCell(value)
  })
}

/**
 * Expands into an experiment file, `.jsonl` or `.csv` by the extension of `output`. Everything
 * is checked first (nothing is written when anything is wrong), the lines go to a temporary
 * file beside `output`, and that file is renamed to `output` when complete, so `output` is
 * either the whole expansion or what it was before.
 *
 * @since 0.1.0
 * @category writing
 */
export const write = (
  options: WriteOptions
): Effect.Effect<WriteResult, ExpandError | Output.OutputError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const output = options.output
    for (const input of [options.templates, options.vars, options.models]) {
      if (input !== undefined && path.resolve(input) === path.resolve(output)) {
        return yield* new ExpandError({ problems: [fileProblem(output, "the output file must not be one of the input files")], problemCount: 1 })
      }
    }
    const plan = yield* checked(options)
    const folder = path.dirname(output)
    const partial = path.join(folder, `.${path.basename(output)}.partial`)
    const outputError = (file: string) => (error: unknown) =>
      new Output.OutputError({ path: file, message: FileSystemError.describe(error) })
    yield* fs.makeDirectory(folder, { recursive: true }).pipe(Effect.mapError(outputError(folder)))
    yield* Effect.scoped(Effect.gen(function*() {
      yield* fs.writeFileString(partial, "").pipe(Effect.mapError(outputError(partial)))
      const writer = yield* Output.appendLines(partial)
      const csv = output.toLowerCase().endsWith(".csv")
      const columns = csv ? csvColumns(plan) : []
      if (csv) yield* writer.write([stringify([columns]).trimEnd()])
      yield* Stream.runForEachChunk(expand(plan), (chunk) =>
        chunk.length === 0
          ? Effect.void
          : writer.write(
            csv
              ? [stringify(Chunk.toReadonlyArray(chunk).map((record) => csvRow(columns, record))).trimEnd()]
              : Chunk.toReadonlyArray(chunk).map((record) => JSON.stringify(record))
          ))
    })).pipe(Effect.onError(() => fs.remove(partial).pipe(Effect.ignore)))
    yield* fs.rename(partial, output).pipe(
      Effect.mapError(outputError(output)),
      Effect.onError(() => fs.remove(partial).pipe(Effect.ignore))
    )
    return { output, ...countsOf(plan) }
  })

/**
 * A one-line account of a write: `wrote 24 lines to out.jsonl (2 templates × 2 rows × 2 models × 3 samples)`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (result: WriteResult): string => {
  const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`
  const factors = [
    plural(result.templates, "template"),
    plural(result.rows, "row"),
    plural(result.models, "model"),
    plural(result.samples, "sample")
  ]
  return `wrote ${plural(result.lines, "line")} to ${result.output} (${factors.join(" × ")})`
}
