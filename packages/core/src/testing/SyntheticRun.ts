/**
 * Synthetic finished runs for tests and benchmarks of what reads runs (`prompto report`): a
 * completed file in prompto's layout, streamed to disk so a million records take no memory,
 * the same bytes for the same options (a seeded generator, fixed timestamps).
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"

/**
 * What to write.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The data folder's `output/` (the run goes to `<output>/<name>/`). */
  readonly output: string
  readonly name: string
  /** Records in total: each prompt is answered by every model, so prompts = records / models. */
  readonly records: number
  /** `api/model_name` of each model (default two). */
  readonly models?: ReadonlyArray<string>
  /** Share of records that are errors (default 0.01). */
  readonly errorRate?: number
  /** Added to every model's chance of a correct answer (to make a better second run). */
  readonly skill?: number
  readonly seed?: number
  /** `DD-MM-YYYY-HH-MM-SS` of the run (default a fixed one). */
  readonly timestamp?: string
}

/**
 * What was written.
 *
 * @since 0.1.0
 * @category models
 */
export interface Written {
  readonly folder: string
  readonly completed: string
  readonly bytes: number
  readonly errors: number
}

/** mulberry32: a small seeded generator, enough for test data. */
const generator = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const words = ["river", "capital", "engine", "quartz", "lantern", "meadow", "orbit", "signal", "harbor", "cipher", "falcon", "summit"]
const errorKinds = [
  ["rate_limited", "RateLimitError - 429 Too Many Requests"],
  ["timeout", "RequestTimeoutError - no response within 300 s"],
  ["transient", "TransientError - 503 Service Unavailable"],
  ["permanent", "PermanentError - 400 invalid request: max_tokens too large"]
] as const

const pad = (n: number) => String(n).padStart(2, "0")

/**
 * Writes a finished run of `records` records (as expanded from a template, so the models'
 * answers to a prompt pair up by `template`/`vars`), its summary declaring the scorers `match`
 * and `includes`, and its log.
 *
 * @since 0.1.0
 * @category constructors
 */
export const write = (options: Options): Written => {
  const random = generator(options.seed ?? 1)
  const models = options.models ?? ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"]
  const errorRate = options.errorRate ?? 0.01
  const timestamp = options.timestamp ?? "01-06-2025-09-00-00"
  const folder = path.join(options.output, options.name)
  fs.mkdirSync(folder, { recursive: true })
  const completed = path.join(folder, `${timestamp}-completed-${options.name}.jsonl`)
  const fd = fs.openSync(completed, "w")
  const start = new Date(2025, 5, 1, 9, 0, 0).getTime()
  const stamp = (ms: number) => {
    const d = new Date(ms)
    return `${pad(d.getDate())}-${pad(d.getMonth() + 1)}-${d.getFullYear()}-${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}`
  }
  let bytes = 0
  let errors = 0
  let batch: Array<string> = []
  const flush = () => {
    const text = batch.join("")
    bytes += Buffer.byteLength(text)
    fs.writeSync(fd, text)
    batch = []
  }
  try {
    for (let i = 0; i < options.records; i++) {
      const prompt = Math.floor(i / models.length)
      const m = i % models.length
      const [api, model_name] = models[m]!.split("/") as [string, string]
      const topic = words[prompt % words.length]!
      const sent = start + Math.floor(i / 200) * 1000
      // latencies roughly log-normal, slower for the second model
      const latency = Math.round(Math.exp(6.2 + m * 0.4 + 0.5 * (random() + random() + random() - 1.5)))
      const record: Record<string, unknown> = {
        id: `t0-v${prompt}-m${m}`,
        api,
        model_name,
        group: `g${prompt % 4}`,
        prompt: `Question ${prompt}: in one or two sentences, what is the ${topic} of item ${prompt}, and why?`,
        expected_response: `answer ${prompt}`,
        template: "Question {n}: in one or two sentences, what is the {topic} of item {n}, and why?",
        vars: { n: prompt, topic },
        template_index: 0,
        vars_index: prompt,
        timestamp_sent: stamp(sent)
      }
      if (random() < errorRate) {
        const [kind, message] = errorKinds[Math.floor(random() * errorKinds.length)]!
        const attempts = kind === "permanent" ? 1 : 5
        Object.assign(record, {
          response: `An unexpected error occurred when querying the API: (${message}) after maximum ${attempts} attempts`,
          timestamp_received: stamp(sent + latency),
          attempts,
          error: { kind, message, attempts }
        })
        errors++
      } else {
        const right = random() < 0.55 + m * 0.15 + (options.skill ?? 0)
        const attempts = random() < 0.95 ? 1 : random() < 0.8 ? 2 : 3
        const completionTokens = 20 + Math.floor(random() * 60)
        Object.assign(record, {
          response: right
            ? `The ${topic} of item ${prompt} is answer ${prompt}, because the record says so and the reasoning holds.`
            : `I believe the ${topic} of item ${prompt} is something else entirely, though I am not certain of it.`,
          timestamp_received: stamp(sent + latency),
          latency_ms: latency,
          attempts,
          usage: { prompt_tokens: 24, completion_tokens: completionTokens, total_tokens: 24 + completionTokens },
          cost: m === 0 ? (24 * 0.15 + completionTokens * 0.6) / 1e6 : null,
          match: right && random() < 0.5,
          includes: right
        })
      }
      batch.push(JSON.stringify(record) + "\n")
      if (batch.length >= 10_000) flush()
    }
    flush()
  } finally {
    fs.closeSync(fd)
  }
  fs.writeFileSync(
    path.join(folder, `${timestamp}-summary-${options.name}.json`),
    JSON.stringify({ experiment: options.name, completed_file: completed, scorers: ["match", "includes"], rows: [] }, null, 2) + "\n"
  )
  const seconds = (Math.ceil(options.records / 200) + 1).toFixed(3)
  fs.writeFileSync(
    path.join(folder, `${timestamp}-log-${options.name}.txt`),
    `${timestamp.slice(0, 10)}, 09:00: Completed experiment ${options.name}.jsonl! Experiment processing time: ${seconds} seconds, Average time per query: 0.005 seconds\n`
  )
  return { folder, completed, bytes, errors }
}
