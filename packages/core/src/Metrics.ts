/**
 * Metrics over scores: a running accumulator fed as records are scored, and the summary at the
 * end of a run (count, mean or accuracy, standard error) per scorer, overall, per model and per
 * group.
 *
 * @since 0.1.0
 */
import * as Extract from "./Extract.js"
import { Context, Effect, Layer, Option, Schema } from "effect"

/**
 * What a scorer gives: `true`/`false` (counted as 1/0), a number, a label, or `null` when the
 * record could not be scored.
 *
 * @since 0.1.0
 * @category models
 */
export type Score = boolean | number | string | null

/**
 * One score of one record.
 *
 * @since 0.1.0
 * @category models
 */
export interface Observation {
  /** The scorer's name, e.g. `"match"` or `"judge gpt-4o/template"`. */
  readonly scorer: string
  readonly api: string
  readonly model_name: string
  readonly group?: string | undefined
  readonly value: Score
  /**
   * The prompt a sample of a repeated line belongs to (its id; set for records with `sample`):
   * its samples' scores are also averaged per prompt.
   */
  readonly prompt?: unknown
}

/**
 * One line of the summary: the figures of one scorer over all records, one model or one group.
 *
 * @since 0.1.0
 * @category models
 */
export interface Row {
  readonly scorer: string
  /**
   * `"prompt"`: over the prompts of repeated lines, each counted once by the mean of its
   * samples (so the standard error is across prompts, not samples); for `answer agreement`,
   * each prompt's share of samples that gave its most common answer.
   */
  readonly by: "all" | "model" | "group" | "prompt"
  /** Set when `by` is `"model"`. */
  readonly api?: string
  /** Set when `by` is `"model"`. */
  readonly model_name?: string
  /** Set when `by` is `"group"`. */
  readonly group?: string
  /** `"boolean"`: every counted value was a boolean, and the mean is an accuracy. */
  readonly kind: "boolean" | "number" | "other"
  /** Observations with a boolean or (finite) number value. */
  readonly count: number
  /** Observations that could not be counted: `null` (the scorer failed), strings, non-finite numbers. */
  readonly unscored: number
  readonly mean: number | null
  /** Sample standard deviation (n - 1) over the square root of n; `null` when `count < 2`. */
  readonly standard_error: number | null
}

/**
 * The summary of a run: rows ordered by scorer (first seen first), then the `"all"` row, then
 * one row per model, then one row per group (each in first-seen order).
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly rows: ReadonlyArray<Row>
}

/**
 * The accumulator.
 *
 * @since 0.1.0
 * @category models
 */
export interface MetricsService {
  readonly record: (observation: Observation) => Effect.Effect<void>
  /** The answer of one sample of a repeated line (`prompt`: its id), for the answer agreement. */
  readonly answer: (prompt: unknown, answer: unknown) => Effect.Effect<void>
  readonly summary: Effect.Effect<Summary>
}

/**
 * The metrics accumulator of the current run.
 *
 * @since 0.1.0
 * @category tags
 */
export class Metrics extends Context.Tag("@prompto/core/Metrics")<Metrics, MetricsService>() {}

/** Running figures of one cell, by Welford's algorithm. */
interface Cell {
  count: number
  unscored: number
  mean: number
  m2: number
  numbers: number
}

interface ScorerCells {
  readonly all: Cell
  readonly models: Map<string, { readonly api: string; readonly model_name: string; readonly cell: Cell }>
  readonly groups: Map<string, Cell>
}

const emptyCell = (): Cell => ({ count: 0, unscored: 0, mean: 0, m2: 0, numbers: 0 })

const add = (cell: Cell, value: Score): void => {
  const x = typeof value === "boolean" ? (value ? 1 : 0) : value
  if (typeof x !== "number" || !Number.isFinite(x)) {
    cell.unscored++
    return
  }
  if (typeof value === "number") cell.numbers++
  cell.count++
  const delta = x - cell.mean
  cell.mean += delta / cell.count
  cell.m2 += delta * (x - cell.mean)
}

const figures = (cell: Cell) => ({
  kind: cell.count === 0 ? "other" as const : cell.numbers === 0 ? "boolean" as const : "number" as const,
  count: cell.count,
  unscored: cell.unscored,
  mean: cell.count === 0 ? null : cell.mean,
  standard_error: cell.count < 2 ? null : Math.sqrt(cell.m2 / (cell.count - 1)) / Math.sqrt(cell.count)
})

/**
 * A fresh accumulator: O(1) memory per scorer and model or group.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<MetricsService> = Effect.sync(() => {
  const scorers = new Map<string, ScorerCells>()
  // per prompt of a repeated line: each scorer's running sum and count, and its answers' counts
  const perPrompt = new Map<string, Map<string, { sum: number; count: number }>>()
  const answers = new Map<string, Map<string, number>>()
  const record = (observation: Observation): Effect.Effect<void> =>
    Effect.sync(() => {
      if (observation.prompt !== undefined) {
        const x = typeof observation.value === "boolean" ? (observation.value ? 1 : 0) : observation.value
        if (typeof x === "number" && Number.isFinite(x)) {
          let prompts = perPrompt.get(observation.scorer)
          if (prompts === undefined) perPrompt.set(observation.scorer, prompts = new Map())
          const key = JSON.stringify(observation.prompt)
          const cell = prompts.get(key)
          if (cell === undefined) prompts.set(key, { sum: x, count: 1 })
          else {
            cell.sum += x
            cell.count++
          }
        }
      }
      let cells = scorers.get(observation.scorer)
      if (cells === undefined) {
        cells = { all: emptyCell(), models: new Map(), groups: new Map() }
        scorers.set(observation.scorer, cells)
      }
      add(cells.all, observation.value)
      const modelKey = JSON.stringify([observation.api, observation.model_name])
      let model = cells.models.get(modelKey)
      if (model === undefined) {
        model = { api: observation.api, model_name: observation.model_name, cell: emptyCell() }
        cells.models.set(modelKey, model)
      }
      add(model.cell, observation.value)
      if (observation.group !== undefined) {
        let group = cells.groups.get(observation.group)
        if (group === undefined) {
          group = emptyCell()
          cells.groups.set(observation.group, group)
        }
        add(group, observation.value)
      }
    })
  const summary: Effect.Effect<Summary> = Effect.sync(() => {
    const rows: Array<Row> = []
    for (const [scorer, cells] of scorers) {
      rows.push({ scorer, by: "all", ...figures(cells.all) })
      for (const { api, cell, model_name } of cells.models.values()) {
        rows.push({ scorer, by: "model", api, model_name, ...figures(cell) })
      }
      for (const [group, cell] of cells.groups) {
        rows.push({ scorer, by: "group", group, ...figures(cell) })
      }
      const prompts = perPrompt.get(scorer)
      if (prompts !== undefined) {
        const cell = emptyCell()
        for (const { count, sum } of prompts.values()) add(cell, sum / count)
        rows.push({ scorer, by: "prompt", ...figures(cell), kind: "number" })
      }
    }
    if (answers.size > 0) {
      const cell = emptyCell()
      for (const counts of answers.values()) {
        let total = 0
        let most = 0
        for (const n of counts.values()) {
          total += n
          most = Math.max(most, n)
        }
        add(cell, most / total)
      }
      rows.push({ scorer: "answer agreement", by: "prompt", ...figures(cell), kind: "number" })
    }
    return { rows }
  })
  const answer = (prompt: unknown, value: unknown): Effect.Effect<void> =>
    Effect.sync(() => {
      const key = JSON.stringify(prompt)
      let counts = answers.get(key)
      if (counts === undefined) answers.set(key, counts = new Map())
      // answers are compared as the self-consistency vote compares them
      const text = value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value)
      const normal = Extract.normalize(text)
      counts.set(normal, (counts.get(normal) ?? 0) + 1)
    })
  return { record, answer, summary }
})

/**
 * A layer with a fresh accumulator.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Metrics> = Layer.effect(Metrics, make)

/**
 * Records an observation into the `Metrics` service if one is provided; otherwise does nothing.
 *
 * @since 0.1.0
 * @category combinators
 */
export const record = (observation: Observation): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.serviceOption(Metrics),
    Option.match({ onNone: () => Effect.void, onSome: (metrics) => metrics.record(observation) })
  )

const formatNumber = (x: number): string => {
  if (Number.isInteger(x)) return String(x)
  if (Math.abs(x) >= 1000) return x.toFixed(1)
  return String(Number(x.toPrecision(4)))
}

const label = (row: Row): string =>
  row.by === "all"
    ? "all"
    : row.by === "prompt"
    ? "per prompt"
    : row.by === "model"
    ? `model ${row.api ?? ""}/${row.model_name ?? ""}`
    : `group ${row.group ?? ""}`

/**
 * The summary as a plain-text table, one line per row after a header: scorer, what the row
 * covers, n, mean (booleans: accuracy as a percentage), standard error and unscored records.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (summary: Summary): ReadonlyArray<string> => {
  const cells = summary.rows.map((row) => {
    const percent = row.kind === "boolean"
    const value = (x: number | null) =>
      x === null ? "-" : percent ? `${(x * 100).toFixed(1)}%` : formatNumber(x)
    return [
      row.scorer,
      label(row),
      String(row.count),
      value(row.mean),
      row.standard_error === null ? "-" : `± ${value(row.standard_error)}`,
      String(row.unscored)
    ] as const
  })
  const header = ["scorer", "model or group", "n", "mean/accuracy", "± stderr", "unscored"] as const
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((cell) => cell[i]!.length)))
  const line = (cell: ReadonlyArray<string>) =>
    cell.map((text, i) => (i < 2 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!))).join("  ").trimEnd()
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...cells.map(line)]
}

/**
 * The summary document written as `<T>-summary-<name>.json`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const toJson = (
  summary: Summary,
  meta: { readonly experiment: string; readonly completedFile: string }
): unknown => ({
  experiment: meta.experiment,
  completed_file: meta.completedFile,
  scorers: [...new Set(summary.rows.map((row) => row.scorer))],
  rows: summary.rows.map((row) => ({ ...row }))
})

/**
 * The summary document as read back (by `prompto report`): what `toJson` writes. Only the
 * scorer names are needed to read it; the rows are kept as given.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SummaryFile = Schema.Struct({
  experiment: Schema.optional(Schema.String),
  completed_file: Schema.optional(Schema.String),
  scorers: Schema.Array(Schema.String),
  rows: Schema.optional(Schema.Array(Schema.Unknown))
}).annotations({ identifier: "SummaryFile" })
