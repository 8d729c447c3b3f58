/**
 * The report's one pass: records go in one at a time, figures come out at the end. Memory is
 * bounded by the number of runs, models, groups, scorers and error kinds, plus the table sample;
 * only a two-run comparison holds one number per scored prompt of the first run (to pair it).
 *
 * @internal
 */
import * as Judge from "../Judge.js"
import * as Stats from "./reportStats.js"
import { type SampleRow, TableSample } from "./reportSample.js"

/** Characters of a prompt the table keeps: enough to read it, bounded for a million rows. */
export const promptChars = 500
/** Characters of an answer the table keeps. */
export const responseChars = 1000
const stepChars = 300
const maxSteps = 12
const errorChars = 300

/** The keys of a completed record that are not scores even when they hold a number or boolean. */
const notScores = new Set([
  "id", "api", "model_name", "prompt", "parameters", "group", "mode", "safety_filter", "expected_response",
  "repeats", "sample", "response", "timestamp_sent", "timestamp_received", "latency_ms", "attempts", "usage",
  "cost", "cached", "error", "answer", "steps", "strategy", "template", "vars", "template_index", "vars_index",
  "choice_index", "choices", "finish_reason", "model", "scorer_errors", "vote", "pick", "template_name", "n",
  "tool_calls", "reasoning"
])

/** The fields of a record the report reads, as decoded. */
export interface RecordFields {
  readonly id: unknown
  readonly api: string
  readonly model_name: string
  readonly group?: string | undefined
  readonly sample?: number | undefined
  readonly error?: { readonly kind: string; readonly message: string; readonly attempts?: number } | null | undefined
  readonly usage?: { readonly prompt_tokens?: number | undefined; readonly completion_tokens?: number | undefined; readonly total_tokens?: number | undefined } | undefined
  readonly cost?: number | null | undefined
  readonly cached?: boolean | undefined
  readonly latency_ms?: number | undefined
  readonly attempts?: number | undefined
}

/** A model (or judge) of the report. */
export interface ModelInfo {
  readonly api: string
  readonly model_name: string
  readonly label: string
  readonly role: "model" | "judge"
}

/** One run as the report describes it. */
export interface RunInfo {
  readonly label: string
  readonly name: string
  readonly timestamp: string
  readonly completed: string
  readonly judge: string | null
  records: number
  ok: number
  errors: number
  judgeRecords: number
  unreadable: number
  readonly problems: Array<string>
  wallSeconds: number | null
  wallSource: "log" | "timestamps" | null
  firstSent: number | null
  lastReceived: number | null
  readonly scorers: Array<string>
  readonly judges: Array<string>
}

interface RequestStats {
  records: number
  ok: number
  errors: number
  readonly latency: Stats.LatencySketch
  readonly attempts: Map<number, number>
  promptTokens: number
  completionTokens: number
  totalTokens: number
  cost: number
  costUnknown: number
  cached: number
}

interface ScoreCell {
  readonly run: number
  readonly scorer: string
  readonly source: "scorer" | "judge"
  readonly by: "all" | "model" | "group"
  readonly model?: number
  readonly group?: string
  readonly cell: Stats.MeanCell
}

/** A prompt's table key: its template and vars for expanded files, else its id. */
export const promptKey = (raw: Readonly<Record<string, unknown>>): string =>
  raw.template !== undefined && raw.vars !== undefined
    ? `t${JSON.stringify([raw.template, raw.vars])}`
    : `i${JSON.stringify(raw.id)}`

/** A record's key when two runs are compared: its id, sample and choice (ids name the model in expanded files). */
const pairKeyOf = (id: unknown, sample: unknown, choice: unknown): string =>
  JSON.stringify([id, typeof sample === "number" ? sample : null, typeof choice === "number" ? choice : null])

const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text)

/** A prompt or response as text: strings as they are, a list of turns one per line, anything else as JSON. */
const asText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value === undefined || value === null) return ""
  if (Array.isArray(value)) {
    return value.map((turn) =>
      typeof turn === "string"
        ? turn
        : typeof turn === "object" && turn !== null && "role" in turn
        ? `${String((turn as { role: unknown }).role)}: ${asText((turn as { content?: unknown; parts?: unknown }).content ?? (turn as { parts?: unknown }).parts)}`
        : JSON.stringify(turn)
    ).join("\n")
  }
  return JSON.stringify(value)
}

/**
 * The structured error of a record: its `error`, or for prompto's Python outputs (which keep
 * errors only in `response`) one read from prompto's wording.
 */
const errorOf = (fields: RecordFields, raw: Readonly<Record<string, unknown>>): { kind: string; message: string } | undefined => {
  if (fields.error !== undefined && fields.error !== null) return fields.error
  const response = raw.response
  if (typeof response !== "string") return undefined
  if (response.startsWith("An unexpected error occurred when querying the API")) {
    const kind = /RateLimit/i.test(response) ? "rate_limited" : /Timeout/i.test(response) ? "timeout" : "transient"
    return { kind, message: response }
  }
  if (/^(NotImplementedError|KeyError|ValueError|TypeError|FileNotFoundError) - /.test(response)) {
    return { kind: "permanent", message: response }
  }
  return undefined
}

const emptyRequests = (): RequestStats => ({
  records: 0,
  ok: 0,
  errors: 0,
  latency: Stats.latencySketch(),
  attempts: new Map(),
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
  cost: 0,
  costUnknown: 0,
  cached: 0
})

const verdictKeys = [...Judge.verdictParsers.keys()]

/** The accumulator of one report. */
export class ReportAccumulator {
  readonly runs: Array<RunInfo> = []
  readonly models: Array<ModelInfo> = []
  readonly #modelIndex = new Map<string, number>()
  readonly #requests = new Map<string, { run: number; model: number; stats: RequestStats }>()
  readonly #scores = new Map<string, ScoreCell>()
  readonly #errorsByKind = new Map<string, number>()
  readonly #errorsByQueue = new Map<string, number>()
  readonly #errorsByModel = new Map<string, number>()
  readonly sample: TableSample
  /** With two runs: the first run's scores by scorer and paired key, taken out as the second run pairs them. */
  readonly #pairs = new Map<string, Map<string, number>>()
  readonly #differences = new Map<string, Stats.MeanCell>()
  #pairing = false
  #declared = new Set<string>()
  /** Whether the run has a summary: then its scorers are exactly the declared ones. */
  #hasSummary = false

  constructor(options: { readonly maxRows: number; readonly maxErrorRows: number }) {
    this.sample = new TableSample(options.maxRows, options.maxErrorRows)
  }

  /** Starts a run; `scorers` are the names its summary declares. Returns its index. */
  startRun(
    info: Omit<RunInfo, "records" | "ok" | "errors" | "judgeRecords" | "unreadable" | "problems" | "wallSeconds" | "wallSource" | "firstSent" | "lastReceived" | "scorers" | "judges">,
    scorers: ReadonlyArray<string> | undefined,
    pairing: boolean
  ): number {
    this.runs.push({
      ...info,
      records: 0,
      ok: 0,
      errors: 0,
      judgeRecords: 0,
      unreadable: 0,
      problems: [],
      wallSeconds: null,
      wallSource: null,
      firstSent: null,
      lastReceived: null,
      scorers: [],
      judges: []
    })
    this.#declared = new Set(scorers)
    this.#hasSummary = scorers !== undefined
    this.#pairing = pairing
    return this.runs.length - 1
  }

  /** A line that could not be read: counted, and the first few problems kept. */
  problem(run: number, message: string): void {
    const info = this.runs[run]!
    info.unreadable++
    if (info.problems.length < 5) info.problems.push(message)
  }

  #model(api: string, model_name: string, role: ModelInfo["role"]): number {
    const key = `${api}\u0000${model_name}`
    let index = this.#modelIndex.get(key)
    if (index === undefined) {
      index = this.models.length
      this.models.push({ api, model_name, label: `${api}/${model_name}`, role })
      this.#modelIndex.set(key, index)
    }
    return index
  }

  #request(run: number, model: number, fields: RecordFields, error: unknown): void {
    const entry = Stats.entry(this.#requests, `${run}\u0000${model}`, () => ({ run, model, stats: emptyRequests() }))
    const stats = entry.stats
    stats.records++
    if (error === undefined) stats.ok++
    else stats.errors++
    if (typeof fields.latency_ms === "number") Stats.addLatency(stats.latency, fields.latency_ms)
    const attempts = fields.attempts ?? fields.error?.attempts
    if (typeof attempts === "number") Stats.count(stats.attempts, attempts)
    const usage = fields.usage
    if (usage !== undefined) {
      stats.promptTokens += usage.prompt_tokens ?? 0
      stats.completionTokens += usage.completion_tokens ?? 0
      stats.totalTokens += usage.total_tokens ?? (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0)
    }
    if (typeof fields.cost === "number") stats.cost += fields.cost
    else if (fields.cost === null) stats.costUnknown++
    if (fields.cached === true) stats.cached++
  }

  #error(run: number, model: number, queue: string, kind: string): void {
    Stats.count(this.#errorsByKind, `${run}\u0000${kind}`)
    Stats.count(this.#errorsByQueue, `${run}\u0000${queue}\u0000${kind}`)
    Stats.count(this.#errorsByModel, `${run}\u0000${model}\u0000${kind}`)
  }

  #score(run: number, scorer: string, source: ScoreCell["source"], model: number, group: string | undefined, value: unknown): void {
    const add = (by: ScoreCell["by"], key: string, extra: Partial<ScoreCell>) =>
      Stats.addScore(
        Stats.entry(this.#scores, `${run}\u0000${scorer}\u0000${by}\u0000${key}`, () => ({ run, scorer, source, by, ...extra, cell: Stats.meanCell() })).cell,
        value
      )
    add("all", "", {})
    add("model", String(model), { model })
    if (group !== undefined) add("group", group, { group })
  }

  #pair(run: number, scorer: string, key: string, value: unknown): void {
    if (!this.#pairing) return
    const x = Stats.scoreValue(value)
    if (x === undefined) return
    if (run === 0) {
      Stats.entry(this.#pairs, scorer, () => new Map()).set(key, x)
      return
    }
    const first = this.#pairs.get(scorer)
    const before = first?.get(key)
    if (before === undefined) return
    first!.delete(key)
    Stats.addNumber(Stats.entry(this.#differences, scorer, Stats.meanCell), x - before)
  }

  #timestamps(run: number, raw: Readonly<Record<string, unknown>>, parse: (text: unknown) => number | undefined): void {
    const info = this.runs[run]!
    const sent = parse(raw.timestamp_sent)
    const received = parse(raw.timestamp_received) ?? sent
    if (sent !== undefined && (info.firstSent === null || sent < info.firstSent)) info.firstSent = sent
    if (received !== undefined && (info.lastReceived === null || received > info.lastReceived)) info.lastReceived = received
  }

  /** One record of a run's completed file. */
  record(run: number, fields: RecordFields, raw: Readonly<Record<string, unknown>>, parseTime: (text: unknown) => number | undefined): void {
    const info = this.runs[run]!
    info.records++
    const model = this.#model(fields.api, fields.model_name, "model")
    const error = errorOf(fields, raw)
    this.#request(run, model, fields, error)
    this.#timestamps(run, raw, parseTime)
    const key = promptKey(raw)
    const pairKey = pairKeyOf(fields.id, fields.sample, raw.choice_index)
    const scores: Record<string, unknown> = {}
    if (error !== undefined) {
      info.errors++
      this.#error(run, model, fields.group ?? fields.api, error.kind)
    } else {
      info.ok++
      for (const name in raw) {
        const value = raw[name]
        // with a summary the scorers are the ones it names; prompto's Python outputs have none,
        // and there any other key holding a boolean or a number is an evaluation's result
        if (this.#hasSummary ? !this.#declared.has(name) : notScores.has(name) || name.startsWith("input-") || (typeof value !== "boolean" && typeof value !== "number")) continue
        if (!info.scorers.includes(name)) info.scorers.push(name)
        scores[name] = value
        this.#score(run, name, "scorer", model, fields.group, value)
        this.#pair(run, name, pairKey, value)
      }
    }
    this.sample.offer(key, error !== undefined, () => this.#row(run, model, fields, raw, error, scores))
  }

  #row(
    run: number,
    model: number,
    fields: RecordFields,
    raw: Readonly<Record<string, unknown>>,
    error: { kind: string; message: string } | undefined,
    scores: Record<string, unknown>
  ): SampleRow {
    const row: Record<string, unknown> = { run, model, id: fields.id, scores }
    if (fields.sample !== undefined) row.sample = fields.sample
    if (fields.group !== undefined) row.group = fields.group
    row.prompt = cut(asText(raw.prompt), promptChars)
    if (error !== undefined) {
      row.error = { kind: error.kind, message: cut(error.message, errorChars) }
    } else {
      row.response = cut(asText(raw.response), responseChars)
      if (raw.answer !== undefined) row.answer = raw.answer === null ? null : cut(asText(raw.answer), responseChars)
    }
    if (typeof fields.latency_ms === "number") row.latency_ms = fields.latency_ms
    if (typeof fields.attempts === "number") row.attempts = fields.attempts
    if (fields.cost !== undefined) row.cost = fields.cost
    if (fields.usage !== undefined) row.tokens = [fields.usage.prompt_tokens ?? null, fields.usage.completion_tokens ?? null]
    // what the API returned besides the text: tool calls, reasoning and its token count
    const reasoningTokens = (raw.usage as { readonly reasoning_tokens?: unknown } | undefined)?.reasoning_tokens
    if (typeof reasoningTokens === "number") row.reasoning_tokens = reasoningTokens
    if (raw.tool_calls !== undefined && raw.tool_calls !== null) {
      const calls = (Array.isArray(raw.tool_calls) ? raw.tool_calls : [raw.tool_calls]).flat()
      const shown = calls.map((call: unknown) => {
        const c = (typeof call === "object" && call !== null ? call : {}) as Record<string, unknown>
        return `${String(c.name ?? "?")}(${asText(c.arguments ?? "")})`
      })
      if (shown.length > 0) row.tool_calls = shown.map((text: string) => cut(text, stepChars))
    }
    if (raw.reasoning !== undefined && raw.reasoning !== null) row.reasoning = cut(asText(raw.reasoning), responseChars)
    if (Array.isArray(raw.steps)) {
      row.steps = raw.steps.slice(0, maxSteps).map((step: unknown) => {
        const s = (typeof step === "object" && step !== null ? step : {}) as Record<string, unknown>
        const out: Record<string, unknown> = {
          step: String(s.step ?? ""),
          model: `${String(s.api ?? "")}/${String(s.model_name ?? "")}`,
          prompt: cut(asText(s.prompt), stepChars),
          response: cut(asText(s.response), stepChars)
        }
        if (typeof s.latency_ms === "number") out.latency_ms = s.latency_ms
        const stepError = s.error as { kind?: unknown } | undefined
        if (stepError !== undefined && stepError !== null) out.error = String(stepError.kind ?? "error")
        return out
      })
      if (raw.steps.length > maxSteps) row.moreSteps = raw.steps.length - maxSteps
    }
    return row as unknown as SampleRow
  }

  /**
   * One record of a run's judge run: its verdict counts as the score `<judge>/<template>` of the
   * judged model (the verdict parser's value, or for prompto's Python outputs, which parse
   * nothing, a yes/no read from the answer), and its request counts under the judge's model.
   */
  judgeRecord(run: number, fields: RecordFields, raw: Readonly<Record<string, unknown>>, parseTime: (text: unknown) => number | undefined): void {
    const info = this.runs[run]!
    info.judgeRecords++
    const judgeModel = this.#model(fields.api, fields.model_name, "judge")
    const error = errorOf(fields, raw)
    this.#request(run, judgeModel, fields, error)
    this.#timestamps(run, raw, parseTime)
    if (error !== undefined) {
      this.#error(run, judgeModel, `judge ${fields.model_name}`, error.kind)
      return
    }
    const template = String(raw.template_name ?? "")
    const inputId = raw["input-id"]
    const id = String(fields.id)
    const tail = `-${template}-${String(inputId)}`
    const judge = id.startsWith("judge-") && id.endsWith(tail) ? id.slice(6, id.length - tail.length) : fields.model_name
    const label = `${judge}/${template}`
    if (!info.judges.includes(label)) info.judges.push(label)
    const parsed = verdictKeys.find((key) => raw[key] !== undefined)
    const value = parsed !== undefined ? raw[parsed] : Judge.yesNo.parse(raw.response)
    const judged = this.#model(String(raw["input-api"] ?? ""), String(raw["input-model_name"] ?? ""), "model")
    const group = raw["input-group"]
    this.#score(run, label, "judge", judged, typeof group === "string" ? group : undefined, value)
    const sample = raw["input-sample"]
    this.#pair(run, label, pairKeyOf(inputId, sample, raw["input-choice_index"]), value)
    const row = this.sample.find(run, inputId, sample)
    if (row !== undefined) row.scores[label] = value
  }

  /** The figures, once every file is read. */
  finish() {
    const requests = [...this.#requests.values()].map(({ model, run, stats }) => ({
      run,
      model,
      records: stats.records,
      ok: stats.ok,
      errors: stats.errors,
      latency: stats.latency.count === 0 ? null : {
        count: stats.latency.count,
        mean: stats.latency.sum / stats.latency.count,
        p50: Stats.quantile(stats.latency, 0.5),
        p95: Stats.quantile(stats.latency, 0.95),
        p99: Stats.quantile(stats.latency, 0.99),
        max: stats.latency.max,
        histogram: Stats.histogram(stats.latency)
      },
      attempts: [...stats.attempts.entries()].sort((a, b) => a[0] - b[0]).map(([attempts, count]) => ({ attempts, count })),
      tokens: { prompt: stats.promptTokens, completion: stats.completionTokens, total: stats.totalTokens },
      cost: { usd: stats.cost, unknown: stats.costUnknown, cached: stats.cached }
    }))
    const scores = [...this.#scores.values()].map(({ cell, ...rest }) => {
      const interval = Stats.interval(cell)
      return { ...rest, ...interval, boolean: cell.numbers === 0 }
    })
    const split = (map: Map<string, number>, names: ReadonlyArray<string>) =>
      [...map.entries()].map(([key, count]) => {
        const parts = key.split("\u0000")
        const out: Record<string, unknown> = { run: Number(parts[0]), count }
        names.forEach((name, i) => (out[name] = name === "model" ? Number(parts[i + 1]) : parts[i + 1]))
        return out
      })
    const differences = [...this.#differences.entries()].map(([scorer, cell]) => ({ scorer, ...Stats.differenceInterval(cell) }))
    for (const info of this.runs) {
      if (info.wallSeconds === null && info.firstSent !== null && info.lastReceived !== null) {
        // prompto's timestamps have whole seconds: the span is rounded to the second
        info.wallSeconds = Math.max(1, (info.lastReceived - info.firstSent) / 1000)
        info.wallSource = "timestamps"
      }
    }
    return {
      runs: this.runs,
      models: this.models,
      requests,
      scores,
      differences,
      errors: {
        byKind: split(this.#errorsByKind, ["kind"]),
        byQueue: split(this.#errorsByQueue, ["queue", "kind"]),
        byModel: split(this.#errorsByModel, ["model", "kind"])
      },
      sample: this.sample.finish()
    }
  }
}
