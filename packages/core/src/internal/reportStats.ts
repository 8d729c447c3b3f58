/**
 * The running figures of a report, each O(1) or bounded in memory: a mean with its 95 %
 * interval, a log-bucketed latency sketch (quantiles and a histogram from the same buckets),
 * and counters.
 *
 * @internal
 */

// -----------------------------------------------------------------------------
// means and intervals
// -----------------------------------------------------------------------------

/** A running mean and variance (Welford), counting booleans as 1/0. */
export interface MeanCell {
  n: number
  mean: number
  m2: number
  /** Values that were numbers (not booleans): the interval is then a t interval. */
  numbers: number
  /** Values that could not be counted: `null`, strings, non-finite numbers. */
  unscored: number
}

/** An empty cell. */
export const meanCell = (): MeanCell => ({ n: 0, mean: 0, m2: 0, numbers: 0, unscored: 0 })

/** A score as a number: booleans as 1/0; anything else that is not a finite number is `undefined`. */
export const scoreValue = (value: unknown): number | undefined => {
  const x = typeof value === "boolean" ? (value ? 1 : 0) : value
  return typeof x === "number" && Number.isFinite(x) ? x : undefined
}

/** Adds one observation (a score as given: boolean, number, or anything unscorable). */
export const addScore = (cell: MeanCell, value: unknown): void => {
  const x = scoreValue(value)
  if (x === undefined) {
    cell.unscored++
    return
  }
  if (typeof value === "number") cell.numbers++
  addNumber(cell, x)
}

/** Adds one number. */
export const addNumber = (cell: MeanCell, x: number): void => {
  cell.n++
  const delta = x - cell.mean
  cell.mean += delta / cell.n
  cell.m2 += delta * (x - cell.mean)
}

/** Two-sided 97.5 % quantiles of Student's t for 1 to 30 degrees of freedom (standard tables). */
const tTable = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
  2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042
]

/**
 * The 97.5 % quantile of Student's t with `df` degrees of freedom: the table up to 30, then
 * the Cornish-Fisher expansion around the normal's 1.96 (off by less than 0.001 from 31 on).
 */
export const t975 = (df: number): number => {
  if (df < 1) return Number.NaN
  if (df <= 30) return tTable[Math.floor(df) - 1]!
  const z = 1.959964
  const z3 = z ** 3
  const z5 = z ** 5
  const z7 = z ** 7
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3)
}

/** What an interval was computed with. */
export type IntervalMethod = "wilson" | "t" | "none"

/** A mean with its 95 % interval. */
export interface Interval {
  readonly n: number
  readonly unscored: number
  readonly mean: number | null
  readonly low: number | null
  readonly high: number | null
  /** `"wilson"` for booleans (an accuracy), `"t"` for numbers, `"none"` below two values. */
  readonly method: IntervalMethod
}

/**
 * The mean and its 95 % interval: the Wilson score interval when every value was a boolean (it
 * stays within [0, 1] and behaves at 0 % and 100 %), else mean ± t(0.975, n − 1) · s / √n.
 */
export const interval = (cell: MeanCell): Interval => {
  const { n, unscored } = cell
  if (n === 0) return { n, unscored, mean: null, low: null, high: null, method: "none" }
  if (cell.numbers === 0) {
    const z = 1.959964
    const p = cell.mean
    const denominator = 1 + (z * z) / n
    const centre = (p + (z * z) / (2 * n)) / denominator
    const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denominator
    return { n, unscored, mean: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), method: "wilson" }
  }
  if (n < 2) return { n, unscored, mean: cell.mean, low: null, high: null, method: "none" }
  const half = t975(n - 1) * Math.sqrt(cell.m2 / (n - 1)) / Math.sqrt(n)
  return { n, unscored, mean: cell.mean, low: cell.mean - half, high: cell.mean + half, method: "t" }
}

/** A paired difference: always a t interval over the per-id differences. */
export const differenceInterval = (cell: MeanCell): Interval => {
  const { n, unscored } = cell
  if (n === 0) return { n, unscored, mean: null, low: null, high: null, method: "none" }
  if (n < 2) return { n, unscored, mean: cell.mean, low: null, high: null, method: "none" }
  const half = t975(n - 1) * Math.sqrt(cell.m2 / (n - 1)) / Math.sqrt(n)
  return { n, unscored, mean: cell.mean, low: cell.mean - half, high: cell.mean + half, method: "t" }
}

// -----------------------------------------------------------------------------
// latency sketch
// -----------------------------------------------------------------------------

/**
 * Relative accuracy of the latency quantiles: a value is stored as the index of its
 * logarithmic bucket, and a quantile is read back as its bucket's middle, within 1 % of the
 * true value (the DDSketch construction).
 */
export const relativeAccuracy = 0.01
const gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
const logGamma = Math.log(gamma)

/** Latencies in logarithmic buckets: bounded by the range of values (about 115 buckets a decade). */
export interface LatencySketch {
  count: number
  sum: number
  min: number
  max: number
  /** Values of at most 1 ms, counted apart (the log scale starts there). */
  low: number
  readonly buckets: Map<number, number>
}

/** An empty sketch. */
export const latencySketch = (): LatencySketch => ({
  count: 0,
  sum: 0,
  min: Number.POSITIVE_INFINITY,
  max: 0,
  low: 0,
  buckets: new Map()
})

/** Adds one latency in milliseconds (negative or non-finite values are ignored). */
export const addLatency = (sketch: LatencySketch, ms: number): void => {
  if (!Number.isFinite(ms) || ms < 0) return
  sketch.count++
  sketch.sum += ms
  if (ms < sketch.min) sketch.min = ms
  if (ms > sketch.max) sketch.max = ms
  if (ms <= 1) {
    sketch.low++
    return
  }
  const index = Math.ceil(Math.log(ms) / logGamma)
  sketch.buckets.set(index, (sketch.buckets.get(index) ?? 0) + 1)
}

const bucketValue = (index: number): number => (2 * gamma ** index) / (gamma + 1)

/** The value at quantile `q` (0 to 1), within 1 % of the true one; `null` for an empty sketch. */
export const quantile = (sketch: LatencySketch, q: number): number | null => {
  if (sketch.count === 0) return null
  const rank = q * (sketch.count - 1)
  let seen = sketch.low
  if (rank < seen) return Math.min(sketch.max, 1)
  const indices = [...sketch.buckets.keys()].sort((a, b) => a - b)
  for (const index of indices) {
    seen += sketch.buckets.get(index)!
    if (rank < seen) return Math.min(sketch.max, Math.max(sketch.min, bucketValue(index)))
  }
  return sketch.max
}

/** One bar of a latency histogram. */
export interface HistogramBin {
  /** Lower and upper edge in ms. */
  readonly x1: number
  readonly x2: number
  readonly count: number
}

/** Edges of the shared histogram: 10 bins a decade from 1 ms. */
const binsPerDecade = 10

/**
 * The sketch as a histogram of 10 logarithmic bins a decade (the same edges for every model, so
 * their histograms compare); values of at most 1 ms go in the first bin.
 */
export const histogram = (sketch: LatencySketch): ReadonlyArray<HistogramBin> => {
  const bins = new Map<number, number>()
  if (sketch.low > 0) bins.set(0, sketch.low)
  for (const [index, count] of sketch.buckets) {
    const bin = Math.max(0, Math.floor(Math.log10(bucketValue(index)) * binsPerDecade))
    bins.set(bin, (bins.get(bin) ?? 0) + count)
  }
  return [...bins.entries()].sort((a, b) => a[0] - b[0]).map(([bin, count]) => ({
    x1: 10 ** (bin / binsPerDecade),
    x2: 10 ** ((bin + 1) / binsPerDecade),
    count
  }))
}

// -----------------------------------------------------------------------------
// counters
// -----------------------------------------------------------------------------

/** Adds `by` to the count of `key`. */
export const count = <K>(map: Map<K, number>, key: K, by = 1): void => {
  map.set(key, (map.get(key) ?? 0) + by)
}

/** The entry of `key`, made by `make` when missing. */
export const entry = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  let value = map.get(key)
  if (value === undefined) map.set(key, value = make())
  return value
}
