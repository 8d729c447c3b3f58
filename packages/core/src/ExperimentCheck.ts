/**
 * Checking an experiment file in one streaming pass: every line decoded, ids checked for
 * duplicates, each record's API looked up and its provider's own checks run.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { Effect, Stream } from "effect"
import * as ExperimentFile from "./ExperimentFile.js"
import type { LineProblem } from "./ExperimentFile.js"
import { yieldToEventLoop } from "./internal/fanOut.js"
import { IdIndex } from "./internal/idIndex.js"
import type { IdentifiedRecord, PromptRecord } from "./PromptRecord.js"
import * as Strategy from "./Strategy.js"
import * as StrategySpec from "./StrategySpec.js"
import {
  missingProviderMessage,
  type Provider,
  type ProviderRegistry,
  registry as providerRegistry
} from "./Provider.js"

/**
 * The most problems (and warnings) a report keeps; the counts are always exact.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxListed = 1000

/** The APIs that answer `n` choices in one request (a strategy's `use_n`). */
const nChoiceApis: ReadonlyArray<string> = ["openai", "azure-openai"]

/** The top-level key a problem is about: `parameters` for `parameters.max_tokens`. */
const topKey = (key: string | undefined): string | undefined => key?.split(/[.[]/)[0]

/**
 * The problems the line's provider finds in a line that did not decode (a prompt of no shape
 * the schema knows, `parameters` that is not an object...), so that `check` lists every problem
 * of the line, a missing API key above all, not only the first. The provider sees the line with
 * the keys at fault left out (a placeholder text for `prompt`, which it needs), and what it says
 * about those keys is dropped: the schema already said it. Nothing when `api` or `model_name`
 * are themselves at fault.
 */
const undecodedProblems = (
  registry: ReadonlyMap<string, Provider>,
  file: string,
  entry: ExperimentFile.RawEntry,
  problems: ReadonlyArray<LineProblem>
): Effect.Effect<ReadonlyArray<LineProblem>> =>
  Effect.gen(function*() {
    const value = entry.value
    if (typeof value !== "object" || value === null || Array.isArray(value)) return []
    const fields = value as Readonly<Record<string, unknown>>
    if (typeof fields.api !== "string" || typeof fields.model_name !== "string") return []
    const atFault = new Set(problems.map((problem) => topKey(problem.key)))
    if (atFault.has(undefined) || atFault.has("api") || atFault.has("model_name")) return []
    const provider = registry.get(fields.api)
    if (provider === undefined) {
      return [{ file, line: entry.line, key: "api", message: missingProviderMessage(fields.api, registry) }]
    }
    const probe: Record<string, unknown> = { prompt: "" }
    for (const [key, field] of Object.entries(fields)) if (!atFault.has(key)) probe[key] = field
    const found = yield* provider.check(probe as PromptRecord)
    return found
      .filter((problem) => !atFault.has(topKey(problem.key)))
      .map((problem) => ({ file, line: entry.line, key: problem.key, message: problem.message }))
  })

/**
 * What a check found.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckReport {
  readonly file: string
  /** Records in the file (non-blank lines or CSV rows). */
  readonly records: number
  readonly validRecords: number
  readonly invalidRecords: number
  /** Problems that make lines invalid (at most `maxListed`). */
  readonly problems: ReadonlyArray<LineProblem>
  readonly problemCount: number
  /** Warnings that do not make a line invalid (at most `maxListed`). */
  readonly warnings: ReadonlyArray<LineProblem>
  readonly warningCount: number
  /** Record count per API. */
  readonly apis: ReadonlyMap<string, number>
}

/**
 * Whether the file can run as it is.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isValid = (report: CheckReport): boolean => report.invalidRecords === 0 && report.records > 0

/**
 * One entry's verdict, handed to `onEntry` during the pass.
 *
 * @since 0.1.0
 * @category models
 */
export type EntryVerdict =
  | { readonly _tag: "Valid"; readonly ordinal: number; readonly record: IdentifiedRecord }
  | {
    readonly _tag: "Invalid"
    readonly ordinal: number
    readonly entry: ExperimentFile.RawEntry
    readonly problems: ReadonlyArray<LineProblem>
  }

/**
 * Checks a file. `onEntry` sees each entry's verdict in file order (the run uses it to plan
 * queues in the same pass).
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (
  file: string,
  options: {
    readonly onEntry?: (verdict: EntryVerdict) => void
    readonly displayName?: string
    /** Strategies named by lines (a folder's named strategies, templates); default: the built-ins. */
    readonly strategies?: StrategySpec.StrategySetup | undefined
    /**
     * Lets the event loop run (I/O, timers) every this many entries: a check that runs beside
     * the sending of a run must not hold back its requests (default: never).
     */
    readonly yieldEvery?: number | undefined
  } = {}
): Effect.Effect<CheckReport, ExperimentFile.ExperimentFileError, FileSystem.FileSystem | ProviderRegistry> =>
  Effect.gen(function*() {
    const registry = yield* providerRegistry
    const name = options.displayName ?? file
    const problems: Array<LineProblem> = []
    const warnings: Array<LineProblem> = []
    let problemCount = 0
    let warningCount = 0
    let records = 0
    let invalidRecords = 0
    const apis = new Map<string, number>()
    const ids = new IdIndex()
    const strategyOf = StrategySpec.resolver(options.strategies ?? StrategySpec.defaultSetup)
    const addProblems = (list: ReadonlyArray<LineProblem>) => {
      problemCount += list.length
      for (const problem of list) if (problems.length < maxListed) problems.push(problem)
    }
    const addWarnings = (list: ReadonlyArray<LineProblem>) => {
      warningCount += list.length
      for (const warning of list) if (warnings.length < maxListed) warnings.push(warning)
    }
    // the problems of a line's strategy: every other model it sends to, checked as its provider would check it
    const strategyProblems = (entry: ExperimentFile.RawEntry, record: IdentifiedRecord) =>
      Effect.gen(function*() {
        const lineProblems: Array<LineProblem> = []
        const spec = record.strategy ?? options.strategies?.default
        for (const use of StrategySpec.modelUses(spec, options.strategies ?? StrategySpec.defaultSetup)) {
          // a prompt the strategy builds (an aggregate, a critique) is a text
          const sub = Strategy.request(record, use.prompt === "line" ? record.prompt : "(built by the strategy)", use.model)
          const sent = use.n === undefined ? sub : { ...sub, parameters: { ...sub.parameters, n: use.n } }
          if (sent.api === record.api && sent.model_name === record.model_name && use.n === undefined &&
            sent.parameters === record.parameters && use.prompt === "line") continue
          if (use.n !== undefined && !nChoiceApis.includes(sent.api)) {
            lineProblems.push({
              file: name,
              line: entry.line,
              key: `${use.key}.use_n`,
              message: `the ${sent.api} API does not answer n choices in one request (${nChoiceApis.join(", ")} do); ` +
                `leave out "use_n" to send each sample as its own request`
            })
          }
          const other = registry.get(sent.api)
          if (other === undefined) {
            lineProblems.push({ file: name, line: entry.line, key: `${use.key}.api`, message: missingProviderMessage(sent.api, registry) })
            continue
          }
          for (const problem of yield* other.check(sent)) {
            lineProblems.push({
              file: name,
              line: entry.line,
              key: `${use.key}.${problem.key}`,
              message: `${sent.api} model "${sent.model_name}": ${problem.message}`
            })
          }
        }
        return lineProblems
      })
    const finish = (entry: ExperimentFile.RawEntry, record: IdentifiedRecord | undefined, lineProblems: ReadonlyArray<LineProblem>) => {
      if (record !== undefined && lineProblems.length === 0) {
        options.onEntry?.({ _tag: "Valid", ordinal: entry.ordinal, record })
        return
      }
      invalidRecords++
      addProblems(lineProblems)
      options.onEntry?.({ _tag: "Invalid", ordinal: entry.ordinal, entry, problems: lineProblems })
    }
    // one line: plain code and the few effects the line needs (its provider's check, and a
    // strategy's or an undecoded line's), chained without a generator: once a line, a generator's
    // steps were a fifth of the check pass's CPU (issue 14)
    const checkEntry = (entry: ExperimentFile.RawEntry): Effect.Effect<void> => {
      const decoded = ExperimentFile.decode(name, entry)
      if (decoded._tag === "Invalid") {
        return Effect.map(
          undecodedProblems(registry, name, entry, decoded.problems),
          (more) => finish(entry, undefined, [...decoded.problems, ...more])
        )
      }
      const record = decoded.record
      const lineProblems: Array<LineProblem> = []
      addWarnings(decoded.warnings)
      // the samples of a repeated line share its id: (id, sample) is the key
      const firstLine = ids.firstLineOrAdd(
        record.sample === undefined ? record.id : `\u0000${JSON.stringify(record.id)}\u0000${record.sample}`,
        entry.line
      )
      if (firstLine !== undefined) {
        lineProblems.push({
          file: name,
          line: entry.line,
          key: "id",
          message: `duplicate id ${JSON.stringify(record.id)}${
            record.sample === undefined ? "" : ` with sample ${record.sample}`
          } (first on line ${firstLine})`
        })
      }
      apis.set(record.api, (apis.get(record.api) ?? 0) + 1)
      const provider = registry.get(record.api)
      if (provider === undefined) {
        lineProblems.push({ file: name, line: entry.line, key: "api", message: missingProviderMessage(record.api, registry) })
      }
      const strategy = strategyOf(record)
      const withStrategy = (): Effect.Effect<void> => {
        if (strategy._tag === "Left") {
          const message = strategy.left.message
          const key = /^strategy[.\w ]*:/.test(message) ? message.slice(0, message.indexOf(":")) : "strategy"
          lineProblems.push({ file: name, line: entry.line, key, message: message.slice(message.indexOf(":") + 1).trim() })
        } else if (strategy.right !== undefined && provider !== undefined) {
          return Effect.map(strategyProblems(entry, record), (more) => finish(entry, record, [...lineProblems, ...more]))
        }
        finish(entry, record, lineProblems)
        return Effect.void
      }
      if (provider === undefined) return withStrategy()
      return Effect.flatMap(provider.check(record), (found) => {
        for (const problem of found) {
          lineProblems.push({ file: name, line: entry.line, key: problem.key, message: problem.message })
        }
        return withStrategy()
      })
    }
    yield* ExperimentFile.read(file).pipe(
      Stream.runForEach((entry) => {
        records++
        return options.yieldEvery !== undefined && records % options.yieldEvery === 0
          ? Effect.zipRight(yieldToEventLoop, Effect.suspend(() => checkEntry(entry)))
          : checkEntry(entry)
      })
    )
    if (records === 0) {
      addProblems([{ file: name, line: 0, message: "the file holds no prompts" }])
    }
    return {
      file: name,
      records,
      validRecords: records - invalidRecords,
      invalidRecords,
      problems,
      problemCount,
      warnings,
      warningCount,
      apis
    }
  })

const lineRanges = (lines: ReadonlyArray<number>): string => {
  const ranges: Array<string> = []
  let start = lines[0]!
  let end = start
  const flush = () => ranges.push(start === end ? String(start) : `${start}-${end}`)
  for (const line of lines.slice(1)) {
    if (line === end + 1) {
      end = line
    } else {
      flush()
      start = end = line
    }
  }
  flush()
  return ranges.length > 10 ? `${ranges.slice(0, 10).join(", ")}, ...` : ranges.join(", ")
}

/**
 * Problems as text lines, one per distinct problem: the same key and message on several lines
 * (an API that is not installed, say) is one line naming all of them.
 *
 * @since 0.1.0
 * @category formatting
 */
export const groupProblems = (problems: ReadonlyArray<LineProblem>): ReadonlyArray<string> => {
  const groups = new Map<string, { readonly first: LineProblem; readonly lines: Array<number> }>()
  for (const problem of problems) {
    const id = `${problem.file}\u0000${problem.key ?? ""}\u0000${problem.message}`
    const group = groups.get(id)
    if (group === undefined) groups.set(id, { first: problem, lines: [problem.line] })
    else group.lines.push(problem.line)
  }
  return [...groups.values()].map(({ first, lines }) =>
    lines.length === 1
      ? ExperimentFile.formatProblem(first)
      : `${first.file}:lines ${lineRanges(lines)}: ${first.key === undefined ? "" : `key "${first.key}": `}${first.message}`
  )
}

/**
 * A report as text lines: a headline, then every problem and warning with file, line and key.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatReport = (report: CheckReport): ReadonlyArray<string> => {
  const out: Array<string> = []
  const more = (listed: number, count: number) => count > listed ? [`... and ${count - listed} more`] : []
  out.push(
    isValid(report)
      ? `${report.file}: valid (${report.records} ${report.records === 1 ? "prompt" : "prompts"})`
      : report.records === 0
      ? `${report.file}: invalid (no prompts)`
      : `${report.file}: invalid (${report.invalidRecords} of ${report.records} prompts have problems)`
  )
  for (const line of groupProblems(report.problems)) out.push(`  error: ${line}`)
  out.push(...more(report.problems.length, report.problemCount))
  for (const warning of report.warnings) out.push(`  warning: ${ExperimentFile.formatProblem(warning)}`)
  out.push(...more(report.warnings.length, report.warningCount))
  return out
}
