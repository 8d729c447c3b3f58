/**
 * Run statistics, per queue and in total, gathered from scheduler events: sent, succeeded,
 * failed, retries, achieved rate, and the tokens and cost of the answered requests per queue and
 * per model. Used for the progress display, the final summary and the log.
 *
 * @since 0.1.0
 */
import type { CompletedRecord } from "./PromptRecord.js"
import type { SchedulerEvent } from "./Scheduler.js"
import * as NumberText from "./internal/numberText.js"
import { errorName } from "./RetryPolicy.js"

/**
 * Tokens and cost of the requests answered without error (the request path's `Completed`
 * events with `ok`); a failed request reports no usage and adds nothing. Tokens are those of
 * this run's traffic: a cache hit keeps its original usage on the record, but nothing was sent,
 * so it adds no tokens (and costs 0).
 *
 * @since 0.1.0
 * @category models
 */
export interface UsageTally {
  /** Requests answered, cache hits included (a record without `usage` counts, with no tokens). */
  requests: number
  /** Of `requests`, those answered from prompto's cache (nothing sent). */
  cacheHits: number
  /** Prompt tokens (`usage.prompt_tokens`). */
  inputTokens: number
  /** Of `inputTokens`, those read from the provider's prompt cache (`usage.cached_tokens`). */
  cachedInputTokens: number
  /** Completion tokens (`usage.completion_tokens`). */
  outputTokens: number
  /** Of `outputTokens`, the model's reasoning (`usage.reasoning_tokens`). */
  reasoningTokens: number
  /** USD: the sum of the known costs (a cache hit's is a known 0). */
  cost: number
  /** Of `requests`, those whose cost is unknown (`cost` null, the model has no price, or absent). */
  unpriced: number
}

/**
 * The tally of one model, `api` and `model_name` as the records name them.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelUsage extends UsageTally {
  readonly api: string
  readonly model: string
}

/**
 * The figures of one queue.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueStats {
  readonly key: string
  readonly queriesPerMinute: number
  /** Prompts in this queue. */
  total: number
  /** Attempts sent (one per prompt and try; a multi-turn prompt is one attempt), retries included. */
  sent: number
  succeeded: number
  failed: number
  retries: number
  /** Times the API said "slow down" and the queue paused (or its pause grew). */
  pauses: number
  /** The queue's effective rate over time, when it ever moved from the configured rate. */
  rate: RateHistory | undefined
  firstSentAt: number | undefined
  lastSentAt: number | undefined
  /** Tokens and cost of the queue's answered requests. */
  readonly usage: UsageTally
}

/**
 * How a queue's effective rate moved (its `RateChanged` events).
 *
 * @since 0.1.0
 * @category models
 */
export interface RateHistory {
  /** The reported rates and when (clock milliseconds), the first being the configured rate at the queue's first send. */
  readonly steps: Array<{ readonly at: number; readonly queriesPerMinute: number }>
  lowest: number
  /** Times a "slow down" lowered it. */
  lowered: number
}

/**
 * Mutable run statistics (updated synchronously by `record`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunStats {
  readonly queues: Map<string, QueueStats>
  /**
   * Tokens and cost per model: `api` → `model_name` → tally (two lookups and no key to build on
   * each event); `byModel` lists them.
   */
  readonly models: Map<string, Map<string, ModelUsage>>
  /** Records written as errors without being sent (invalid lines under `--skip-invalid`). */
  skipped: number
  /**
   * Lines of the experiment to send, when it differs from the requests (strategies make
   * several requests a line).
   */
  lines?: number | undefined
  readonly startedAt: number
  finishedAt: number | undefined
}

const emptyTally = (): UsageTally => ({
  requests: 0,
  cacheHits: 0,
  inputTokens: 0,
  cachedInputTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  cost: 0,
  unpriced: 0
})

const emptyQueue = (key: string, queriesPerMinute: number, total: number): QueueStats => ({
  key,
  queriesPerMinute,
  total,
  sent: 0,
  succeeded: 0,
  failed: 0,
  retries: 0,
  pauses: 0,
  rate: undefined,
  firstSentAt: undefined,
  lastSentAt: undefined,
  usage: emptyTally()
})

/**
 * New statistics for the given queues.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  queues: ReadonlyArray<{ readonly key: string; readonly queriesPerMinute: number; readonly total: number }>,
  startedAt: number
): RunStats => ({
  queues: new Map(queues.map(({ key, queriesPerMinute, total }) => [key, emptyQueue(key, queriesPerMinute, total)])),
  models: new Map(),
  skipped: 0,
  startedAt,
  finishedAt: undefined
})

/**
 * Adds `requests` planned requests to a queue's total, making the queue on first sight (the
 * check of a large file finds its queues as it goes).
 *
 * @since 0.1.0
 * @category combinators
 */
export const planned = (stats: RunStats, key: string, queriesPerMinute: number, requests: number): void => {
  const known = stats.queues.get(key)
  if (known === undefined) stats.queues.set(key, emptyQueue(key, queriesPerMinute, requests))
  else known.total += requests
}

/** A token count from a usage, 0 when absent or not a count. */
const tokens = (value: unknown): number => typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0

/** A count nested in the OpenAI SDK's `*_tokens_details`, which some providers pass on as is. */
const detail = (details: unknown, key: string): number =>
  typeof details === "object" && details !== null ? tokens((details as Readonly<Record<string, unknown>>)[key]) : 0

const modelTally = (stats: RunStats, api: string, model: string): ModelUsage => {
  let ofApi = stats.models.get(api)
  if (ofApi === undefined) stats.models.set(api, ofApi = new Map())
  let tally = ofApi.get(model)
  if (tally === undefined) ofApi.set(model, tally = { api, model, ...emptyTally() })
  return tally
}

const add = (
  tally: UsageTally,
  hit: boolean,
  cost: number | undefined,
  input: number,
  cachedInput: number,
  output: number,
  reasoning: number
) => {
  tally.requests++
  if (hit) tally.cacheHits++
  if (cost === undefined) tally.unpriced++
  else tally.cost += cost
  tally.inputTokens += input
  tally.cachedInputTokens += cachedInput
  tally.outputTokens += output
  tally.reasoningTokens += reasoning
}

/** Adds an answered request to its queue's and its model's tallies (scalars only: hot path). */
const tallyAnswered = (stats: RunStats, queue: QueueStats, record: CompletedRecord) => {
  const hit = record.cached === true
  // a missing cost counts as unknown too: a run without pricing must not claim $0
  const cost = typeof record.cost === "number" && Number.isFinite(record.cost) ? record.cost : undefined
  let input = 0, cachedInput = 0, output = 0, reasoning = 0
  const usage = record.usage as Readonly<Record<string, unknown>> | undefined
  if (!hit && usage !== undefined) {
    input = tokens(usage.prompt_tokens)
    output = tokens(usage.completion_tokens)
    cachedInput = tokens(usage.cached_tokens) || detail(usage.prompt_tokens_details, "cached_tokens")
    reasoning = tokens(usage.reasoning_tokens) || detail(usage.completion_tokens_details, "reasoning_tokens")
  }
  add(queue.usage, hit, cost, input, cachedInput, output, reasoning)
  add(modelTally(stats, record.api, record.model_name), hit, cost, input, cachedInput, output, reasoning)
}

/**
 * Folds one scheduler event into the statistics.
 *
 * @since 0.1.0
 * @category combinators
 */
export const record = (stats: RunStats, event: SchedulerEvent): void => {
  if (event._tag === "Queued") {
    // queues made during the run (judges, rephrasers, rephrased prompts) grow as records arrive
    const known = stats.queues.get(event.queue)
    if (known === undefined) stats.queues.set(event.queue, emptyQueue(event.queue, event.queriesPerMinute, 1))
    else known.total++
    return
  }
  const queue = stats.queues.get(event.queue)
  if (queue === undefined) return
  switch (event._tag) {
    case "Sent":
      queue.sent++
      queue.firstSentAt ??= event.at
      queue.lastSentAt = event.at
      break
    case "Retrying":
      queue.retries++
      break
    case "Paused":
      queue.pauses++
      break
    case "RateChanged": {
      const rate = queue.rate ??= {
        steps: [{ at: queue.firstSentAt ?? event.at, queriesPerMinute: queue.queriesPerMinute }],
        lowest: queue.queriesPerMinute,
        lowered: 0
      }
      rate.steps.push({ at: event.at, queriesPerMinute: event.queriesPerMinute })
      rate.lowest = Math.min(rate.lowest, event.queriesPerMinute)
      if (event.reason === "rate_limited") rate.lowered++
      break
    }
    case "Completed":
      if (event.ok) {
        queue.succeeded++
        tallyAnswered(stats, queue, event.record)
      } else {
        queue.failed++
      }
      break
  }
}

/**
 * The achieved send rate of a queue in queries per minute (from its first to its last send).
 *
 * @since 0.1.0
 * @category getters
 */
export const achievedQpm = (queue: QueueStats): number | undefined =>
  queue.firstSentAt === undefined || queue.lastSentAt === undefined || queue.sent < 2 ||
    queue.lastSentAt === queue.firstSentAt
    ? undefined
    : ((queue.sent - 1) / (queue.lastSentAt - queue.firstSentAt)) * 60_000

/**
 * Totals over all queues.
 *
 * @since 0.1.0
 * @category getters
 */
export const totals = (stats: RunStats) => {
  let total = 0, sent = 0, succeeded = 0, failed = 0, retries = 0, pauses = 0
  for (const queue of stats.queues.values()) {
    total += queue.total
    sent += queue.sent
    succeeded += queue.succeeded
    failed += queue.failed
    retries += queue.retries
    pauses += queue.pauses
  }
  return { total, sent, succeeded, failed, retries, pauses, skipped: stats.skipped }
}

const addTally = (into: UsageTally, from: UsageTally) => {
  into.requests += from.requests
  into.cacheHits += from.cacheHits
  into.inputTokens += from.inputTokens
  into.cachedInputTokens += from.cachedInputTokens
  into.outputTokens += from.outputTokens
  into.reasoningTokens += from.reasoningTokens
  into.cost += from.cost
  into.unpriced += from.unpriced
}

/**
 * The tokens and cost of the whole run (a new tally, the sum of the queues').
 *
 * @since 0.1.0
 * @category getters
 */
export const usageTotals = (stats: RunStats): UsageTally => {
  const total = emptyTally()
  for (const queue of stats.queues.values()) addTally(total, queue.usage)
  return total
}

/**
 * The per-model tallies, ordered by `api/model_name` (first answers arrive in no fixed order).
 *
 * @since 0.1.0
 * @category getters
 */
export const byModel = (stats: RunStats): ReadonlyArray<ModelUsage> =>
  [...stats.models.values()].flatMap((ofApi) => [...ofApi.values()])
    .sort((a, b) => a.api < b.api ? -1 : a.api > b.api ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0)

const modelLabel = (usage: ModelUsage) => `${usage.api}/${usage.model}`

const dollars = (digits: number) => (value: number) => NumberText.grouped(value, digits)
const sixDigits = dollars(6), fourDigits = dollars(4), twoDigits = dollars(2)

// micro-dollars below $1, where runs of small models live; fewer digits once the sum is large
const usd = (amount: number) => (amount < 1 ? sixDigits : amount < 100 ? fourDigits : twoDigits)(amount)

/**
 * A tally's cost as text: USD (6 decimals below $1, 4 below $100, 2 above), `unknown` when
 * no request of it has a known price, `<sum> + unknown` when some have none. An unknown price
 * never shows as 0; a tally of cache hits only is a known 0.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatCost = (tally: UsageTally): string =>
  tally.unpriced === 0
    ? usd(tally.cost)
    : tally.unpriced === tally.requests
    ? "unknown"
    : `${usd(tally.cost)} + unknown`

/**
 * A count as people read it: rounded, its thousands grouped with commas (`12,345`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatCount = (value: number): string => NumberText.grouped(value)

const grouped = { format: formatCount }

const sameTally = (a: UsageTally, b: UsageTally) =>
  a.requests === b.requests && a.cacheHits === b.cacheHits && a.inputTokens === b.inputTokens &&
  a.cachedInputTokens === b.cachedInputTokens && a.outputTokens === b.outputTokens &&
  a.reasoningTokens === b.reasoningTokens && a.cost === b.cost && a.unpriced === b.unpriced

/**
 * Whether the per-queue table would only repeat the per-model one: one queue, or each queue's
 * figures are those of a model of its own (a queue per model).
 */
const queuesRepeatModels = (queues: ReadonlyArray<UsageTally>, models: ReadonlyArray<UsageTally>) => {
  if (queues.length <= 1) return true
  if (queues.length !== models.length) return false
  const unmatched = [...models]
  return queues.every((queue) => {
    const at = unmatched.findIndex((model) => sameTally(model, queue))
    if (at < 0) return false
    unmatched.splice(at, 1)
    return true
  })
}

const usageColumns: ReadonlyArray<readonly [string, (tally: UsageTally) => string]> = [
  ["requests", (t) => grouped.format(t.requests)],
  ["cache hits", (t) => grouped.format(t.cacheHits)],
  ["input tok", (t) => grouped.format(t.inputTokens)],
  ["(cached)", (t) => grouped.format(t.cachedInputTokens)],
  ["output tok", (t) => grouped.format(t.outputTokens)],
  ["(reasoning)", (t) => grouped.format(t.reasoningTokens)],
  ["cost (USD)", formatCost]
]

/**
 * The token and cost tables: one per model with the run's total, and one per queue when the
 * queues split the requests otherwise than the models do (a queue holding several models, or
 * a model in several queues, as a judge on the answering model); none when nothing was answered.
 * Columns: `requests` answered (cache hits included), `cache hits` answered from prompto's
 * cache, `input tok` and of them `(cached)` read from the provider's prompt cache, `output tok`
 * and of them `(reasoning)`, `cost (USD)` as `formatCost` gives it.
 */
const usageLines = (stats: RunStats): ReadonlyArray<string> => {
  const total = usageTotals(stats)
  if (total.requests === 0) return []
  const models = byModel(stats)
  const queues = [...stats.queues.values()].filter((queue) => queue.usage.requests > 0)
  const tables: Array<readonly [string, ReadonlyArray<readonly [string, UsageTally]>]> = [
    ["model", [...models.map((model) => [modelLabel(model), model] as const), ["total", total] as const]]
  ]
  if (!queuesRepeatModels(queues.map((queue) => queue.usage), models)) {
    tables.push(["queue", queues.map((queue) => [queue.key, queue.usage] as const)])
  }
  // one set of widths, so the two tables line up
  const cells = tables.map(([, rows]) => rows.map(([, tally]) => usageColumns.map(([, cell]) => cell(tally))))
  const labelWidth = Math.max(...tables.flatMap(([heading, rows]) => [heading.length, ...rows.map(([label]) => label.length)]))
  const widths = usageColumns.map(([heading], column) =>
    Math.max(heading.length, ...cells.flatMap((rows) => rows.map((row) => row[column]!.length)))
  )
  const line = (label: string, row: ReadonlyArray<string>) =>
    `${label.padEnd(labelWidth)}  ${row.map((cell, column) => cell.padStart(widths[column]!)).join("  ")}`
  return tables.flatMap(([heading, rows], table) => [
    line(heading, usageColumns.map(([name]) => name)),
    ...rows.map(([label], row) => line(label, cells[table]![row]!))
  ])
}

const fixed = (n: number | undefined, digits = 1) => n === undefined ? "-" : n.toFixed(digits)

/**
 * A queue's effective rate averaged over time, from its first to its last send (the rate in
 * force over each stretch, weighted by the stretch's length); `undefined` before two sends.
 *
 * @since 0.1.0
 * @category getters
 */
export const meanEffectiveQpm = (queue: QueueStats): number | undefined => {
  const { firstSentAt: from, lastSentAt: to, rate } = queue
  if (from === undefined || to === undefined || to <= from) return undefined
  if (rate === undefined) return queue.queriesPerMinute
  let sum = 0
  rate.steps.forEach((step, i) => {
    const start = Math.max(from, step.at)
    const end = Math.min(to, rate.steps[i + 1]?.at ?? to)
    if (end > start) sum += step.queriesPerMinute * (end - start)
  })
  return sum / (to - from)
}

/**
 * One line per queue whose effective rate moved: the lowest, the time-weighted mean and the
 * final rate, and how often a "slow down" lowered it (the log has every step with its time).
 */
const rateLines = (rows: ReadonlyArray<QueueStats>): ReadonlyArray<string> =>
  rows.flatMap((queue) => {
    const rate = queue.rate
    if (rate === undefined) return []
    const final = rate.steps.at(-1)!.queriesPerMinute
    return [
      `effective rate of ${queue.key}: configured ${fixed(queue.queriesPerMinute)} QPM, lowest ${fixed(rate.lowest)}, ` +
      `mean ${fixed(meanEffectiveQpm(queue))}, final ${fixed(final)} (lowered ${rate.lowered} ` +
      `${rate.lowered === 1 ? "time" : "times"} by "slow down" answers)`
    ]
  })

/**
 * The final summary as text lines: totals, wall time, and a table per queue; then, when any
 * request was answered, the tokens and cost per model with the run's total (a line starting
 * `total`), and per queue when that tells more (see `UsageTally` for what is counted); last, a
 * line for each queue whose effective rate moved (see `RateHistory`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (stats: RunStats): ReadonlyArray<string> => {
  const t = totals(stats)
  const wall = ((stats.finishedAt ?? stats.startedAt) - stats.startedAt) / 1000
  const lines = [
    (stats.lines !== undefined && stats.lines !== t.total
      ? `prompts: ${stats.lines + t.skipped}  requests: ${t.total}  succeeded: ${t.succeeded}  failed: ${t.failed}`
      : `prompts: ${t.total + t.skipped}  succeeded: ${t.succeeded}  failed: ${t.failed}`) +
    (t.skipped > 0 ? `  invalid (not sent): ${t.skipped}` : "") +
    `  attempts: ${t.sent}  retries: ${t.retries}` +
    (t.pauses > 0 ? `  rate-limit pauses: ${t.pauses}` : "") +
    `  wall time: ${wall.toFixed(1)} s`
  ]
  const rows = [...stats.queues.values()].filter((queue) => queue.total > 0)
  const width = Math.max(5, ...rows.map((queue) => queue.key.length))
  lines.push(`${"queue".padEnd(width)}  ${"QPM".padStart(8)}  ${"achieved".padStart(8)}  ${"sent".padStart(6)}  ${"ok".padStart(6)}  ${"failed".padStart(6)}  ${"retries".padStart(7)}`)
  for (const queue of rows) {
    lines.push(
      `${queue.key.padEnd(width)}  ${fixed(queue.queriesPerMinute).padStart(8)}  ${fixed(achievedQpm(queue)).padStart(8)}  ` +
      `${String(queue.sent).padStart(6)}  ${String(queue.succeeded).padStart(6)}  ${String(queue.failed).padStart(6)}  ${String(queue.retries).padStart(7)}`
    )
  }
  lines.push(...usageLines(stats))
  // last, so the lines before keep their places
  lines.push(...rateLines(rows))
  return lines
}

/**
 * The log line for a scheduler event, in prompto's wording where prompto has one (retries and
 * errors), or `undefined` for events that are not logged.
 *
 * @since 0.1.0
 * @category formatting
 */
export const logMessage = (event: SchedulerEvent): string | undefined => {
  switch (event._tag) {
    case "Retrying":
      return `Error (id=${String(event.id)}) on attempt ${event.attempt} of ${event.maxAttempts}: ` +
        `${errorName(event.error)} - ${event.error.message}. Adding to the queue to try again later...`
    case "Completed":
      return event.ok ? undefined : `Error (id=${String(event.record.id)}): ${String(event.record.response)}`
    case "Paused":
      return `Rate limited (id=${String(event.id)}): queue ${event.queue} paused for ` +
        `${((event.until - event.at) / 1000).toFixed(1)} s (` +
        (event.reason === "retry_after" ? "the server's retry-after" : `backoff, ${event.level} in a row`) + `)`
    case "RateChanged":
      return `Rate of queue ${event.queue}: ${event.queriesPerMinute.toFixed(1)} QPM of ${event.configured.toFixed(1)} (` +
        (event.reason === "rate_limited"
          ? "lowered after a \"slow down\""
          : event.reason === "recovering"
          ? "raised after successes"
          : "capped by the API's count of requests left") + `)`
    default:
      return undefined
  }
}
