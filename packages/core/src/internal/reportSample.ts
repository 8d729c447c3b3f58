/**
 * The report table's sample: a fair, bounded choice of prompts made in one pass, keeping every
 * answer to a chosen prompt together, plus every error row up to a cap.
 *
 * The choice is a bottom-k sample over prompt keys: each key is hashed, and the keys with the
 * smallest hashes are kept, as many as fit in the row budget. A hash is a fixed function of the
 * key, so records of one prompt arriving far apart (another model, another run) are kept or
 * dropped together, every prompt has the same chance, and the same files give the same sample.
 *
 * @internal
 */

/** One row of the table: one record, cut to what the page shows. */
export interface SampleRow {
  readonly run: number
  readonly model: number
  readonly id: unknown
  readonly sample?: number
  readonly error?: { readonly kind: string; readonly message: string }
  /** Scores by name; judge verdicts are added once the judge run is read. */
  readonly scores: Record<string, unknown>
  readonly [key: string]: unknown
}

/** A prompt and its kept rows. */
export interface SampleGroup {
  readonly key: string
  readonly rows: Array<SampleRow>
  /** Kept only for its error rows: other answers to this prompt were not sampled. */
  readonly errorsOnly: boolean
}

/** What the sample holds at the end. */
export interface SampleResult {
  readonly groups: ReadonlyArray<SampleGroup>
  /** Rows shown (sampled plus error rows). */
  readonly shownRows: number
  /** Prompts whose every answer is shown (the sampled ones). */
  readonly sampledPrompts: number
  readonly sampledRows: number
  /** Error rows shown, and error rows seen. */
  readonly errorRowsShown: number
  readonly errorRowsTotal: number
}

/** cyrb53: a fast 53-bit string hash, well spread, with no dependencies. */
export const hash53 = (text: string): number => {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

interface Kept {
  readonly key: string
  readonly hash: number
  readonly rows: Array<SampleRow>
}

const before = (a: { readonly hash: number; readonly key: string }, b: { readonly hash: number; readonly key: string }) =>
  a.hash !== b.hash ? a.hash < b.hash : a.key < b.key

/** The table sample of one report. */
export class TableSample {
  readonly #maxRows: number
  readonly #maxErrorRows: number
  readonly #kept = new Map<string, Kept>()
  #keptRows = 0
  /** Keys at or above this (hash, key) are out for good; `undefined` until the budget first fills. */
  #threshold: { hash: number; key: string } | undefined
  readonly #errors = new Map<string, Array<SampleRow>>()
  #errorRowsShown = 0
  #errorRowsTotal = 0
  /** Kept rows by run, id and sample, to attach judge verdicts. */
  readonly #index = new Map<string, SampleRow>()

  constructor(maxRows: number, maxErrorRows: number) {
    this.#maxRows = Math.max(0, maxRows)
    this.#maxErrorRows = Math.max(0, maxErrorRows)
  }

  /** The index key of a row. */
  static rowKey(run: number, id: unknown, sample: unknown): string {
    return `${run}\u0000${JSON.stringify(id)}\u0000${typeof sample === "number" ? sample : ""}`
  }

  /**
   * Offers one record under its prompt key; `make` builds its row only when it is kept, so the
   * records that are not shown cost a hash and a comparison.
   */
  offer(key: string, isError: boolean, make: () => SampleRow): void {
    if (isError) this.#errorRowsTotal++
    const kept = this.#kept.get(key)
    if (this.#maxRows > 0 && kept === undefined && this.#threshold !== undefined) {
      if (!before({ hash: hash53(key), key }, this.#threshold)) {
        if (isError) this.#keepError(key, make)
        return
      }
    }
    if (this.#maxRows === 0) {
      if (isError) this.#keepError(key, make)
      return
    }
    const row = make()
    const entry = kept ?? { key, hash: hash53(key), rows: [] }
    if (kept === undefined) this.#kept.set(key, entry)
    entry.rows.push(row)
    this.#keptRows++
    this.#index.set(TableSample.rowKey(row.run, row.id, row.sample), row)
    // compact in batches: the sample holds at most twice its budget between compactions
    if (this.#keptRows > 2 * this.#maxRows) this.#compact()
  }

  /** The kept row of `run`, `id` and `sample`, if any (for judge verdicts). */
  find(run: number, id: unknown, sample: unknown): SampleRow | undefined {
    return this.#index.get(TableSample.rowKey(run, id, sample))
  }

  #keepError(key: string, row: SampleRow | (() => SampleRow)): void {
    if (this.#errorRowsShown >= this.#maxErrorRows) return
    if (typeof row === "function") row = row()
    let rows = this.#errors.get(key)
    if (rows === undefined) this.#errors.set(key, rows = [])
    rows.push(row)
    this.#errorRowsShown++
    this.#index.set(TableSample.rowKey(row.run, row.id, row.sample), row)
  }

  /** Drops the prompts with the largest hashes until the rows fit the budget. */
  #compact(): void {
    if (this.#keptRows <= this.#maxRows) return
    const order = [...this.#kept.values()].sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0))
    let rows = 0
    let cut = order.length
    for (let i = 0; i < order.length; i++) {
      // the first prompt is kept even when it alone is over the budget
      if (i > 0 && rows + order[i]!.rows.length > this.#maxRows) {
        cut = i
        break
      }
      rows += order[i]!.rows.length
    }
    if (cut === order.length) return
    this.#threshold = { hash: order[cut]!.hash, key: order[cut]!.key }
    for (const dropped of order.slice(cut)) {
      this.#kept.delete(dropped.key)
      this.#keptRows -= dropped.rows.length
      for (const row of dropped.rows) {
        this.#index.delete(TableSample.rowKey(row.run, row.id, row.sample))
        if (row.error !== undefined) this.#keepError(dropped.key, row)
      }
    }
  }

  /** The sample: the sampled prompts in hash order (a fair shuffle), then the error-only prompts. */
  finish(): SampleResult {
    this.#compact()
    const sampled = [...this.#kept.values()].sort((a, b) => (before(a, b) ? -1 : 1))
    const errorRowsInSample = sampled.reduce((n, kept) => n + kept.rows.filter((row) => row.error !== undefined).length, 0)
    return {
      groups: [
        ...sampled.map((kept): SampleGroup => ({ key: kept.key, rows: kept.rows, errorsOnly: false })),
        ...[...this.#errors.entries()].map(([key, rows]): SampleGroup => ({ key, rows, errorsOnly: true }))
      ],
      shownRows: this.#keptRows + this.#errorRowsShown,
      sampledPrompts: sampled.length,
      sampledRows: this.#keptRows,
      errorRowsShown: this.#errorRowsShown + errorRowsInSample,
      errorRowsTotal: this.#errorRowsTotal
    }
  }
}
