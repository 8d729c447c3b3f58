/**
 * The evaluation of a run, set up from prompto's flags: scorers (`--scorer`), judges
 * (`--judge-folder`, `--judge`, `--judge-templates`) and rephrasers (`--rephrase-folder`,
 * `--rephrase-model`, ...), turned into the stages `Experiment.run` takes. Everything is loaded
 * and checked here, before any request is sent: unknown scorers, judges, templates and parsers,
 * and judge or rephrase models whose API is missing or not configured.
 *
 * @since 0.1.0
 */
import type { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"
import type * as Experiment from "./Experiment.js"
import * as Judge from "./Judge.js"
import type * as LinkedRun from "./LinkedRun.js"
import type { IdentifiedRecord } from "./PromptRecord.js"
import { missingProviderMessage, type ProviderRegistry, registry as providerRegistry } from "./Provider.js"
import * as Rephrase from "./Rephrase.js"
import * as Scorer from "./Scorer.js"

/**
 * What to evaluate; every part is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface EvaluationOptions {
  /** Scorer names (built-ins) or `path/to/module.ts:exportName`. */
  readonly scorers?: ReadonlyArray<string> | undefined
  readonly judge?: {
    readonly folder: string
    readonly judges: ReadonlyArray<string>
    /** Template files (default `template.txt`). */
    readonly templates?: ReadonlyArray<string> | undefined
    /** A verdict parser name (`yes_no`, `score_1_10`, `number`): verdicts then count as scores. */
    readonly parser?: string | undefined
  } | undefined
  readonly rephrase?: {
    readonly folder: string
    readonly models: ReadonlyArray<string>
    /** The template file (default `template.txt`). */
    readonly templates?: string | undefined
    /** A rephrase parser name (`split_numbered_list`). */
    readonly parser?: string | undefined
    /** Send only the rephrased prompts, not the originals. */
    readonly removeOriginal?: boolean | undefined
  } | undefined
  /** Where scorer module paths are resolved from (default the working directory). */
  readonly cwd?: string | undefined
  /** How scorer modules are loaded (default `import()`). */
  readonly loadModule?: Scorer.ModuleLoader | undefined
}

/**
 * The stages of a run, ready for `Experiment.run`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Evaluation {
  /** Scorers, then judges, on completed records (undefined when there are none). */
  readonly stages: Experiment.Stage<LinkedRun.LinkedRunError, LinkedRun.LinkedRuns> | undefined
  /** The rephraser, before the queues (undefined without rephrasing). */
  readonly inputStage: Experiment.InputStage<LinkedRun.LinkedRunError, LinkedRun.LinkedRuns> | undefined
  /** One line per part, for the log and the console. */
  readonly description: ReadonlyArray<string>
}

/**
 * Why an evaluation cannot start.
 *
 * @since 0.1.0
 * @category errors
 */
export type EvaluationError = Scorer.ScorerNotFound | Judge.JudgeConfigError | Rephrase.RephraseConfigError

/** The problems a model's provider reports for a sample record, or the missing API. */
const modelProblems = (record: IdentifiedRecord): Effect.Effect<ReadonlyArray<string>, never, ProviderRegistry> =>
  Effect.gen(function*() {
    const registry = yield* providerRegistry
    const provider = registry.get(record.api)
    if (provider === undefined) return [missingProviderMessage(record.api, registry)]
    const problems = yield* provider.check(record)
    return problems.map((problem) => `${problem.key}: ${problem.message}`)
  })

/**
 * Loads and checks everything, and builds the stages.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: EvaluationOptions
): Effect.Effect<Evaluation, EvaluationError, FileSystem.FileSystem | Path.Path | ProviderRegistry> =>
  Effect.gen(function*() {
    const description: Array<string> = []
    const scorers = options.scorers === undefined || options.scorers.length === 0
      ? []
      : yield* Scorer.resolve(options.scorers, { cwd: options.cwd, load: options.loadModule })
    if (scorers.length > 0) description.push(`scorers: ${scorers.map((scorer) => scorer.name).join(", ")}`)

    let judging: ReturnType<typeof Judge.stage> | undefined
    if (options.judge !== undefined) {
      const setup = yield* Judge.load({
        folder: options.judge.folder,
        judges: options.judge.judges,
        ...(options.judge.templates === undefined ? {} : { templates: options.judge.templates })
      })
      const parser = options.judge.parser === undefined ? undefined : yield* Judge.parser(options.judge.parser)
      for (const judge of setup.judges) {
        const sample = Judge.records({ id: "check", prompt: "", response: "" }, { judges: [judge], templates: setup.templates })[0]
        const problems = sample === undefined ? [] : yield* modelProblems(sample)
        if (problems.length > 0) {
          return yield* new Judge.JudgeConfigError({
            path: options.judge.folder,
            message: `judge "${judge.name}" (${judge.api} ${judge.model_name}) cannot be used: ${problems.join("; ")}`
          })
        }
      }
      judging = Judge.stage(setup, parser === undefined ? {} : { parser })
      description.push(
        `judges: ${setup.judges.map((judge) => `${judge.name} (${judge.api} ${judge.model_name})`).join(", ")}; ` +
          `templates: ${setup.templates.map((template) => template.name).join(", ")}` +
          (parser === undefined ? "" : `; verdicts parsed by ${parser.name}`)
      )
    }

    let inputStage: Evaluation["inputStage"]
    if (options.rephrase !== undefined) {
      const setup = yield* Rephrase.load({
        folder: options.rephrase.folder,
        models: options.rephrase.models,
        ...(options.rephrase.templates === undefined ? {} : { templates: options.rephrase.templates })
      })
      const parser = options.rephrase.parser === undefined ? undefined : yield* Rephrase.parser(options.rephrase.parser)
      for (const model of setup.models) {
        const sample = Rephrase.records(
          { id: "check", api: model.api, model_name: model.model_name, prompt: "" },
          { models: [model], templates: setup.templates.slice(0, 1) }
        )[0]
        const problems = sample === undefined ? [] : yield* modelProblems(sample)
        if (problems.length > 0) {
          return yield* new Rephrase.RephraseConfigError({
            path: options.rephrase.folder,
            message: `rephrase model "${model.name}" (${model.api} ${model.model_name}) cannot be used: ${problems.join("; ")}`
          })
        }
      }
      inputStage = Rephrase.stage(setup, {
        parser,
        removeOriginal: options.rephrase.removeOriginal === true
      })
      description.push(
        `rephrase: ${setup.models.map((model) => `${model.name} (${model.api} ${model.model_name})`).join(", ")}; ` +
          `${setup.templates.length} templates` + (parser === undefined ? "" : `; answers split by ${parser.name}`) +
          (options.rephrase.removeOriginal === true ? "; originals not sent" : "")
      )
    }

    const scoring = scorers.length === 0 ? undefined : Scorer.stage(scorers)
    const stages: Evaluation["stages"] = scoring === undefined && judging === undefined
      ? undefined
      : (records) => {
        const scored = scoring === undefined ? records : scoring(records)
        return judging === undefined ? scored : judging(scored)
      }
    return { stages, inputStage, description }
  })
