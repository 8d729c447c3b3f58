/**
 * The pure arithmetic of the benchmark: arrival statistics (busiest window, achieved rate),
 * the ideal wall times of paced queues, the one-by-one speed-up, verdicts against targets and
 * the printed table. No I/O, so `test/bench-figures.test.ts` checks it on known inputs.
 */

/**
 * The most timestamps that fall in any window `[t, t + windowMs)`: the worst burst a queue
 * produced. Times in milliseconds, in any order.
 */
export const busiestWindow = (times: ReadonlyArray<number>, windowMs: number): number => {
  const sorted = Float64Array.from(times).sort()
  let most = 0
  let start = 0
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++
    most = Math.max(most, end - start + 1)
  }
  return most
}

/**
 * The rate, per second, at which `times` (milliseconds) arrived: `(n - 1)` gaps over the span
 * from the first to the last. `NaN` for fewer than two times or a zero span.
 */
export const achievedRatePerSecond = (times: ReadonlyArray<number>): number => {
  if (times.length < 2) return Number.NaN
  let first = Infinity
  let last = -Infinity
  for (const time of times) {
    if (time < first) first = time
    if (time > last) last = time
  }
  return last > first ? ((times.length - 1) * 1000) / (last - first) : Number.NaN
}

/**
 * The interval between sends, in milliseconds, of a queue at `qpm` queries per minute.
 */
export const intervalMs = (qpm: number): number => 60_000 / qpm

/**
 * One queue of a run, as the ideal sees it: `n` prompts sent at `qpm`, each answered after
 * `latencyMs`; a `serial` server answers one request at a time, each taking `latencyMs` of
 * service after the previous one.
 */
export interface QueueShape {
  readonly n: number
  readonly qpm: number
  readonly latencyMs: number
  readonly serial?: boolean
}

/**
 * The ideal wall time of a queue, in milliseconds, from its first send: the last request goes
 * out after `(n - 1)` intervals and is answered one latency later; a serial server cannot
 * finish before `n` service times have passed since the first arrival.
 */
export const queueIdealMs = (queue: QueueShape): number => {
  if (queue.n <= 0) return 0
  const paced = (queue.n - 1) * intervalMs(queue.qpm) + queue.latencyMs
  return queue.serial === true ? Math.max(paced, queue.n * queue.latencyMs) : paced
}

/**
 * The ideal wall time of queues run at once: the slowest queue's ideal.
 */
export const slowestIdealMs = (queues: ReadonlyArray<QueueShape>): number =>
  queues.reduce((slowest, queue) => Math.max(slowest, queueIdealMs(queue)), 0)

/**
 * How much faster a run was than sending the same requests one by one, each waiting for the
 * previous answer: the sum of the per-request latencies over the run's wall time.
 */
export const speedUp = (latenciesMs: ReadonlyArray<number>, wallMs: number): number =>
  latenciesMs.reduce((sum, latency) => sum + latency, 0) / wallMs

/**
 * The service time of each request at a serial server, given its arrival and answer times in
 * answer order: the time from when the server could start it (its arrival, or the previous
 * answer if that came later) to its answer.
 */
export const serialServiceTimesMs = (
  requests: ReadonlyArray<{ readonly arrivedAt: number; readonly answeredAt: number }>
): Array<number> => {
  const ordered = [...requests].sort((a, b) => a.answeredAt - b.answeredAt)
  let previous = -Infinity
  return ordered.map((request) => {
    const service = request.answeredAt - Math.max(request.arrivedAt, previous)
    previous = request.answeredAt
    return service
  })
}

/**
 * How much the delay from a request's sending to its reading at the server varies: for the
 * requests that carry the sender's stamp, the delays `arrived - sent`, less the smallest of
 * them (so a constant offset between the two processes' clocks cancels out), at the given
 * quantiles (0.99, 1 for the largest). If every delay lies within `[d, d + J]`, the requests read
 * in any window of length `W` were sent in a window of `W + J`: the allowance for read jitter at
 * the server. `NaN`s when no request carries a stamp.
 */
export const delaySpread = (
  requests: ReadonlyArray<{ readonly sentAt: number; readonly arrivedAt: number }>,
  quantiles: ReadonlyArray<number>
): ReadonlyArray<number> => {
  const delays = Float64Array.from(
    requests.filter((request) => Number.isFinite(request.sentAt)).map((request) => request.arrivedAt - request.sentAt)
  ).sort()
  if (delays.length === 0) return quantiles.map(() => Number.NaN)
  return quantiles.map((q) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]! - delays[0]!)
}

/**
 * The middle value (the mean of the two middle ones for an even count); `NaN` if empty.
 */
export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/**
 * One figure over repeated runs of a scenario: the median, which the verdict is taken on, and
 * the lowest and highest of the runs, so the table shows how much the figure moved.
 */
export interface Combined {
  readonly name: string
  readonly median: number
  readonly low: number
  readonly high: number
  readonly runs: ReadonlyArray<number>
}

/**
 * Combines the figures of repeated runs of one scenario, name by name, in the order of the
 * first run that has each name. A run that did not report a figure counts as `NaN` for it, and
 * a `NaN` anywhere makes the median `NaN` (so it misses): a figure that could not be measured
 * in one run is not passed on the others' word.
 */
export const combineRuns = (
  runs: ReadonlyArray<ReadonlyArray<{ readonly name: string; readonly measured: number }>>
): ReadonlyArray<Combined> => {
  const names: Array<string> = []
  for (const run of runs) {
    for (const { name } of run) if (!names.includes(name)) names.push(name)
  }
  return names.map((name) => {
    const values = runs.map((run) => run.find((figure) => figure.name === name)?.measured ?? Number.NaN)
    const finite = values.filter(Number.isFinite)
    return {
      name,
      median: finite.length === values.length ? median(values) : Number.NaN,
      low: finite.length === 0 ? Number.NaN : Math.min(...finite),
      high: finite.length === 0 ? Number.NaN : Math.max(...finite),
      runs: values
    }
  })
}

/**
 * A target a figure is held to: at most, at least, or within a relative tolerance of a value.
 */
export type Target =
  | { readonly _tag: "AtMost"; readonly value: number }
  | { readonly _tag: "Below"; readonly value: number }
  | { readonly _tag: "AtLeast"; readonly value: number }
  | { readonly _tag: "Within"; readonly value: number; readonly tolerance: number }
  | { readonly _tag: "Info" }

/** A figure at most `value`. */
export const atMost = (value: number): Target => ({ _tag: "AtMost", value })
/** A figure strictly below `value`. */
export const below = (value: number): Target => ({ _tag: "Below", value })
/** A figure at least `value`. */
export const atLeast = (value: number): Target => ({ _tag: "AtLeast", value })
/** A figure within `tolerance` (relative, e.g. 0.01) of `value`. */
export const within = (value: number, tolerance: number): Target => ({ _tag: "Within", value, tolerance })
/** A figure reported without a target. */
export const info: Target = { _tag: "Info" }

/**
 * Whether a measured value meets its target: `"pass"`, `"miss"`, or `"-"` for a figure without
 * a target. A value that could not be measured (`NaN`) misses.
 */
export const verdict = (measured: number, target: Target): "pass" | "miss" | "-" => {
  if (target._tag === "Info") return "-"
  if (!Number.isFinite(measured)) return "miss"
  switch (target._tag) {
    case "AtMost":
      return measured <= target.value ? "pass" : "miss"
    case "Below":
      return measured < target.value ? "pass" : "miss"
    case "AtLeast":
      return measured >= target.value ? "pass" : "miss"
    case "Within":
      return Math.abs(measured - target.value) <= target.tolerance * Math.abs(target.value) ? "pass" : "miss"
  }
}

/**
 * A number with `digits` decimals and the unit after it, or `"n/a"` if it is not finite.
 */
export const formatNumber = (value: number, digits: number, unit = ""): string =>
  Number.isFinite(value) ? `${value.toFixed(digits)}${unit === "" ? "" : ` ${unit}`}` : "n/a"

/**
 * A target as printed in the table, with the figure's unit and decimals.
 */
export const formatTarget = (target: Target, digits: number, unit = ""): string => {
  switch (target._tag) {
    case "Info":
      return ""
    case "AtMost":
      return `<= ${formatNumber(target.value, digits, unit)}`
    case "Below":
      return `< ${formatNumber(target.value, digits, unit)}`
    case "AtLeast":
      return `>= ${formatNumber(target.value, digits, unit)}`
    case "Within":
      return `${formatNumber(target.value, digits, unit)} ± ${(target.tolerance * 100).toFixed(0)}%`
  }
}

/**
 * Lays out rows of cells as a plain-text table: a header, a rule, and columns padded to the
 * widest cell (numbers are left as the caller formatted them).
 */
export const formatTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) =>
    rows.reduce((widest, row) => Math.max(widest, (row[column] ?? "").length), title.length)
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n")
}
