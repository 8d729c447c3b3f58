/**
 * Progress while a run goes: a line per queue on a terminal (cli-progress), redrawn in place and
 * fitted to the terminal's width, with its counts, its achieved rate against the asked one, the
 * elapsed time and an estimate of the time left; plain periodic lines otherwise (CI logs,
 * pipes), each with the same figures. Written to stderr, so stdout holds only the summary.
 *
 * @since 0.1.0
 */
import { Experiment, RunSummary } from "@prompto/core"
import cliProgress from "cli-progress"
import { Effect } from "effect"

/**
 * A progress display fed with run events.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly onEvent: (event: Experiment.RunEvent) => Effect.Effect<void>
  /** `onEvent`, done at once (a run's subscriber: no Effect step per event). */
  readonly record: (event: Experiment.RunEvent) => void
  /** Stops the display (also on failure or interruption). */
  readonly stop: Effect.Effect<void>
}

/**
 * Options of the display.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProgressOptions {
  /** Draw lines in place (a terminal) or print plain lines. */
  readonly interactive: boolean
  /** Seconds between plain lines (default 5). */
  readonly everySeconds?: number
  readonly write?: (line: string) => void
  /** The terminal's width (default: stderr's, else 80). */
  readonly columns?: () => number
  /** The clock, in milliseconds (default `Date.now`). */
  readonly now?: () => number
}

const done = (queue: RunSummary.QueueStats) => queue.succeeded + queue.failed

/**
 * A duration for a progress line: `45s`, `12m05s`, `3h20m`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const clock = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

/**
 * The time left for a queue at its achieved rate, or `undefined` before it has one.
 *
 * @since 0.1.0
 * @category formatting
 */
export const etaMs = (queue: RunSummary.QueueStats): number | undefined => {
  const rate = RunSummary.achievedQpm(queue)
  const left = queue.total - done(queue)
  if (left <= 0) return 0
  return rate === undefined || rate <= 0 ? undefined : (left / rate) * 60_000
}

const rate = (qpm: number | undefined): string =>
  qpm === undefined ? "-" : qpm >= 100 ? RunSummary.formatCount(qpm) : qpm.toFixed(1)

/**
 * One queue's line, fitted to `columns`: the key, a bar as wide as the rest leaves room for (at
 * least 10, or none on a very narrow terminal), the counts, the rate, the elapsed time and the
 * time left. Parts are dropped from the right of the least useful first when the line would not
 * fit.
 *
 * @since 0.1.0
 * @category formatting
 */
export const queueLine = (
  queue: RunSummary.QueueStats,
  context: { readonly columns: number; readonly keyWidth: number; readonly elapsedMs: number }
): string => {
  const finished = done(queue)
  const percent = queue.total > 0 ? Math.floor((100 * finished) / queue.total) : 100
  const eta = etaMs(queue)
  const parts = [
    `${finished}/${queue.total} ${percent}%`,
    `ok ${queue.succeeded}` + (queue.failed > 0 ? ` failed ${queue.failed}` : ""),
    `${rate(RunSummary.achievedQpm(queue))}/${rate(queue.queriesPerMinute)} QPM`,
    `${clock(context.elapsedMs)}` + (eta === undefined || finished >= queue.total ? "" : ` ETA ${clock(eta)}`),
    ...(queue.retries > 0 ? [`retries ${queue.retries}`] : [])
  ]
  // what goes first when space is short: retries, then the time, then the rate
  const dropOrder = [4, 3, 2, 1]
  const key = queue.key.padEnd(context.keyWidth)
  const fit = (shown: ReadonlyArray<string>, bar: number) => {
    const filled = Math.round((bar * Math.min(finished, queue.total)) / Math.max(1, queue.total))
    const drawn = bar > 0 ? ` [${"=".repeat(filled)}${" ".repeat(bar - filled)}]` : ""
    return `${key}${drawn} ${shown.join(" | ")}`
  }
  let shown = [...parts]
  for (const drop of [undefined, ...dropOrder]) {
    if (drop !== undefined && drop < parts.length) shown = shown.filter((part) => part !== parts[drop])
    const room = context.columns - 1 - fit(shown, 0).length - 3
    if (room >= 10) return fit(shown, Math.min(room, 40))
  }
  return fit(shown, 0).slice(0, Math.max(10, context.columns - 1))
}

/**
 * A plain progress line for logs: the whole run's counts, then each queue's rate and time left.
 *
 * @since 0.1.0
 * @category formatting
 */
export const plainLine = (stats: RunSummary.RunStats, invalid: number, elapsedMs: number): string => {
  const t = RunSummary.totals(stats)
  const finished = t.succeeded + t.failed
  const etas = [...stats.queues.values()].filter((queue) => queue.total > 0).map(etaMs)
  const eta = etas.some((value) => value === undefined) ? undefined : Math.max(0, ...etas.map((value) => value ?? 0))
  const queues = [...stats.queues.values()]
    .filter((queue) => queue.total > 0)
    .map((queue) => `${queue.key} ${rate(RunSummary.achievedQpm(queue))}/${rate(queue.queriesPerMinute)} QPM`)
  return `progress: ${finished + t.skipped}/${t.total + invalid} done (ok ${t.succeeded}, failed ${t.failed}, ` +
    (invalid > 0 ? `invalid ${t.skipped}, ` : "") + `retries ${t.retries}, in flight ${t.sent - t.retries - finished}); ` +
    `${clock(elapsedMs)} elapsed` + (eta === undefined || finished >= t.total ? "" : `, ETA ${clock(eta)}`) +
    (queues.length > 0 ? `; ${queues.join(", ")}` : "")
}

/**
 * Makes a progress display.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ProgressOptions): Progress => {
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"))
  const now = options.now ?? Date.now
  const columns = options.columns ?? (() => process.stderr.columns ?? 80)
  let stats: RunSummary.RunStats | undefined
  if (options.interactive) {
    let keyWidth = 0
    const multibar = new cliProgress.MultiBar({
      // the whole line is ours: drawn from the live statistics, so time and rate move on redraws
      format: (_options, _params, payload: { readonly key: string }) => {
        const queue = stats?.queues.get(payload.key)
        if (queue === undefined || stats === undefined) return payload.key
        return queueLine(queue, { columns: columns(), keyWidth, elapsedMs: now() - stats.startedAt })
      },
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      linewrap: false,
      fps: 5,
      stream: process.stderr
    }, cliProgress.Presets.shades_classic)
    const bars = new Map<string, cliProgress.SingleBar>()
    const update = (queue: RunSummary.QueueStats) => {
      const bar = bars.get(queue.key)
      // queues made during the run (judges, rephrasers) get their line on their first record
      if (bar === undefined) {
        keyWidth = Math.max(keyWidth, queue.key.length)
        bars.set(queue.key, multibar.create(queue.total, done(queue), { key: queue.key }))
        return
      }
      bar.setTotal(queue.total)
      bar.update(done(queue), { key: queue.key })
    }
    const record = (event: Experiment.RunEvent): void => {
      if (event._tag === "Started") {
        stats = event.stats
        keyWidth = Math.max(0, ...[...event.stats.queues.keys()].map((key) => key.length))
        for (const queue of event.stats.queues.values()) update(queue)
      } else if (event._tag !== "Finished" && stats !== undefined && "queue" in event) {
        const queue = stats.queues.get(event.queue)
        if (queue !== undefined) update(queue)
      }
    }
    return { record, onEvent: (event) => Effect.sync(() => record(event)), stop: Effect.sync(() => multibar.stop()) }
  }
  const every = (options.everySeconds ?? 5) * 1000
  let last = 0
  let invalid = 0
  const line = (final: boolean) => {
    if (stats === undefined) return
    const at = now()
    if (!final && at - last < every) return
    last = at
    write(plainLine(stats, invalid, at - stats.startedAt))
  }
  const record = (event: Experiment.RunEvent): void => {
    if (event._tag === "Started") {
      stats = event.stats
      invalid = event.report?.invalidRecords ?? 0
      last = now()
    } else if (event._tag === "Checked") {
      invalid = event.report.invalidRecords
    } else if (event._tag === "Finished") {
      line(true)
    } else if (event._tag === "Completed") {
      line(false)
    }
  }
  return { record, onEvent: (event) => Effect.sync(() => record(event)), stop: Effect.void }
}
