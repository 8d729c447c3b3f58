/**
 * Which queue each prompt goes to, and each queue's rate: prompto's rules, exactly.
 *
 * Without `parallel`, one queue at `maxQueries`. With `parallel`, a prompt's key is its `group`,
 * else its `api`; when `maxQueriesJson[key]` is an object that names the prompt's `model_name`,
 * the key becomes `key-model_name`. Queues are seeded from `maxQueriesJson` (a number gives
 * `key` at that rate; an object gives `key` at its `default` entry, if any, and `key-model` per
 * model entry); any other key gets a queue at `maxQueries`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { PromptRecord } from "./PromptRecord.js"

/**
 * The `--max-queries-json` document: `{ key: rate | { model | "default": rate } }`.
 *
 * @since 0.1.0
 * @category models
 */
export type MaxQueriesJson = Readonly<Record<string, number | Readonly<Record<string, number>>>>

/**
 * A bad rate or a malformed `--max-queries-json`.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateConfigError extends Schema.TaggedError<RateConfigError>()("RateConfigError", {
  message: Schema.String
}) {}

/**
 * The name of the single queue used without `parallel`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultQueueKey = "default"

/**
 * How queues are formed.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueOptions {
  readonly maxQueries: number
  readonly parallel: boolean
  readonly maxQueriesJson?: MaxQueriesJson | undefined
}

/**
 * The plan: the rate of each queue, and the queue of any record.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueuePlan {
  /** The queue key for a record. */
  readonly keyFor: (record: PromptRecord) => string
  /** The rate of a queue in queries per minute (seeded, or `maxQueries`). */
  readonly rateOf: (key: string) => number
  /** The queues seeded from `maxQueriesJson`, in its order. */
  readonly seeded: ReadonlyArray<string>
}

const checkRate = (where: string, value: unknown): number => {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    // JSON.stringify writes NaN and Infinity as "null": show numbers as they are
    const got = typeof value === "number" ? String(value) : JSON.stringify(value)
    throw new RateConfigError({ message: `${where}: the rate must be a number of queries per minute, got ${got}` })
  }
  if (value <= 0) {
    throw new RateConfigError({ message: `${where}: the rate must be greater than 0 queries per minute, got ${value}` })
  }
  return value
}

/**
 * Checks a parsed `--max-queries-json` document and returns it typed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeMaxQueriesJson = (value: unknown, source = "--max-queries-json"): MaxQueriesJson => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RateConfigError({ message: `${source}: must be a JSON object of {"api or group": rate | {"model": rate}}` })
  }
  const out: Record<string, number | Record<string, number>> = {}
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === "object" && entry !== null && !Array.isArray(entry)) {
      const models: Record<string, number> = {}
      for (const [model, rate] of Object.entries(entry)) {
        models[model] = checkRate(`${source}: "${key}"."${model}"`, rate)
      }
      out[key] = models
    } else {
      out[key] = checkRate(`${source}: "${key}"`, entry)
    }
  }
  return out
}

/**
 * Builds the queue plan. Throws `RateConfigError` for a rate that is not a positive number.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: QueueOptions): QueuePlan => {
  const maxQueries = checkRate("--max-queries", options.maxQueries)
  const rates = new Map<string, number>()
  const json = options.parallel ? options.maxQueriesJson ?? {} : {}
  for (const [key, entry] of Object.entries(json)) {
    if (typeof entry === "number") {
      rates.set(key, checkRate(`"${key}"`, entry))
    } else {
      for (const [model, rate] of Object.entries(entry)) {
        rates.set(model === "default" ? key : `${key}-${model}`, checkRate(`"${key}"."${model}"`, rate))
      }
    }
  }
  const keyFor = options.parallel
    ? (record: PromptRecord): string => {
      const key = record.group ?? record.api
      const entry = json[key]
      return typeof entry === "object" && Object.hasOwn(entry, record.model_name)
        ? `${key}-${record.model_name}`
        : key
    }
    : () => defaultQueueKey
  return {
    keyFor,
    rateOf: (key) => rates.get(key) ?? maxQueries,
    seeded: [...rates.keys()]
  }
}
