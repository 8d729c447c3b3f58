/**
 * Run statistics, per queue and in total, gathered from scheduler events: sent, succeeded,
 * failed, retries, achieved rate. Used for the progress display, the final summary and the log.
 *
 * @since 0.1.0
 */
import type { SchedulerEvent } from "./Scheduler.js"

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
  firstSentAt: number | undefined
  lastSentAt: number | undefined
}

/**
 * Mutable run statistics (updated synchronously by `record`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunStats {
  readonly queues: Map<string, QueueStats>
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

const emptyQueue = (key: string, queriesPerMinute: number, total: number): QueueStats => ({
  key,
  queriesPerMinute,
  total,
  sent: 0,
  succeeded: 0,
  failed: 0,
  retries: 0,
  pauses: 0,
  firstSentAt: undefined,
  lastSentAt: undefined
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
  skipped: 0,
  startedAt,
  finishedAt: undefined
})

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
    case "Completed":
      if (event.ok) queue.succeeded++
      else queue.failed++
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

const fixed = (n: number | undefined, digits = 1) => n === undefined ? "-" : n.toFixed(digits)

/**
 * The final summary as text lines: totals, wall time, and a table per queue.
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
        `${event.error._tag} - ${event.error.message}. Adding to the queue to try again later...`
    case "Completed":
      return event.ok ? undefined : `Error (id=${String(event.record.id)}): ${String(event.record.response)}`
    case "Paused":
      return `Rate limited (id=${String(event.id)}): queue ${event.queue} paused for ` +
        `${((event.until - event.at) / 1000).toFixed(1)} s (` +
        (event.reason === "retry_after" ? "the server's retry-after" : `backoff, ${event.level} in a row`) + `)`
    default:
      return undefined
  }
}
