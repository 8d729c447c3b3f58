/**
 * Scenario 8, the API pushes back: prompto configured for 1,200 requests a minute (`-mq 1200`,
 * `api: openai`) against a model the server allows 300 a minute, as OpenAI enforces it: a token
 * bucket that holds 10 requests and refills at 5 a second, a 429 in OpenAI's format beyond it.
 * prompto has to find the real rate itself, and lose no prompt on the way. Two variants, run
 * at the same time on two models with a bucket each (a few requests a second cost the machine
 * nothing, and it halves the scenario's time):
 *
 * - (a) every answer and every 429 carries OpenAI's `x-ratelimit-{limit,remaining,reset}-requests`
 *   (the reset as a Go-style duration until the bucket is full again), so prompto can slow down
 *   before the bucket is empty;
 * - (b) no such headers and no `retry-after`: the adaptive rate (AIMD) alone.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as Figures from "../Figures.js"
import type { ServedRequest } from "../LoopbackServer.js"
import * as Prompto from "../Prompto.js"
import { type Context, type Figure, figure, type Scenario } from "../Scenario.js"

const perMinute = 300
const capacity = 10
const configuredQpm = 1_200
const latencyMs = 200

/** One way the server pushes back. */
interface Variant {
  readonly label: string
  readonly model: string
  readonly headers: boolean
}

const variants: ReadonlyArray<Variant> = [
  { label: "(a) x-ratelimit headers", model: "limited-headers", headers: true },
  { label: "(b) no headers, AIMD alone", model: "limited-bare", headers: false }
]

/** What the log says about a queue's effective rate (its summary line), when it moved. */
interface RateSummary {
  readonly lowest: number
  readonly mean: number
  readonly final: number
  readonly lowered: number
}

const rateSummaryPattern =
  /effective rate of .*: configured [0-9.]+ QPM, lowest ([0-9.]+), mean ([0-9.]+), final ([0-9.]+) \(lowered (\d+)/

const rateSummary = (log: string): RateSummary | undefined => {
  const match = rateSummaryPattern.exec(log)
  return match === null
    ? undefined
    : { lowest: Number(match[1]), mean: Number(match[2]), final: Number(match[3]), lowered: Number(match[4]) }
}

/** The completed records: how many, how many failed, and how many of those failed on the rate limit. */
const completedOutcome = (file: string | undefined) => {
  const lines = file === undefined ? [] : fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "")
  const failed = lines
    .map((line) => JSON.parse(line) as { readonly error?: unknown; readonly response?: unknown })
    .filter((record) => record.error !== undefined)
  const rateLimited = failed.filter((record) => /429|rate.?limit/i.test(`${JSON.stringify(record.error)} ${String(record.response)}`))
  return { records: lines.length, failed: failed.length, failedRateLimited: rateLimited.length }
}

/** One variant's prompto run; a run that fails or times out still reports what it left. */
const runVariant = (context: Context, variant: Variant, n: number, timeoutMs: number) =>
  Prompto.withTempDir("pushback", context.keep, async (dir) => {
    const file = `pushback-${variant.model}.jsonl`
    await Prompto.writeLines(
      path.join(dir, file),
      n,
      (i) => JSON.stringify({ id: `p-${i}`, api: "openai", model_name: variant.model, prompt: `question ${i}` })
    )
    let processingMs = Number.NaN
    let error: string | undefined
    try {
      processingMs = (await Prompto.run({
        dir,
        file,
        flags: ["-mq", String(configuredQpm)],
        env: Prompto.openAiEnv(context.server.url),
        timeoutMs
      })).processingMs
    } catch (cause) {
      if (!(cause instanceof Prompto.RunError)) throw cause
      context.progress(`8 pushback ${variant.label}: ${cause.message}`)
      error = cause.message
    }
    const { completed, log } = Prompto.outputs(dir, file)
    const logText = log === undefined ? "" : fs.readFileSync(log, "utf8")
    return {
      processingMs,
      error,
      completed: completedOutcome(completed),
      rate: rateSummary(logText),
      // the log's lines about the rate, as they came (for results.json)
      rateLines: logText.split("\n").filter((line) => /rate/i.test(line)).slice(0, 200)
    }
  })

const variantFigures = (
  variant: Variant,
  n: number,
  run: Awaited<ReturnType<typeof runVariant>>,
  requests: ReadonlyArray<ServedRequest>
): { readonly figures: ReadonlyArray<Figure>; readonly details: Readonly<Record<string, unknown>> } => {
  const mine = requests.filter((request) => request.model === variant.model)
  const limited = mine.filter((request) => request.status === 429).length
  const idealMs = ((n - 1) / perMinute) * 60_000
  const { label } = variant
  const notCompleted = n - run.completed.records
  return {
    figures: [
      figure(`${label}: requests at the server`, mine.length, { digits: 0 }),
      figure(`${label}: share of requests answered 429`, (100 * limited) / mine.length, {
        digits: 1,
        unit: "%",
        target: Figures.below(5)
      }),
      figure(`${label}: prompts failed (or not completed)`, run.completed.failed + notCompleted, {
        digits: 0,
        target: Figures.atMost(0)
      }),
      figure(`${label}: of which failed as rate-limited`, run.completed.failedRateLimited, { digits: 0 }),
      figure(`${label}: run wall (log)`, run.processingMs / 1000, { digits: 1, unit: "s" }),
      figure(`${label}: run wall / ideal ((n-1)/${perMinute} min = ${(idealMs / 1000).toFixed(1)} s)`, run.processingMs / idealMs, {
        digits: 3
      }),
      figure(`${label}: lowest effective rate (log)`, run.rate?.lowest ?? Number.NaN, { digits: 0, unit: "QPM" }),
      figure(`${label}: mean effective rate (log)`, run.rate?.mean ?? Number.NaN, { digits: 0, unit: "QPM" })
    ],
    details: {
      model: variant.model,
      headers: variant.headers,
      requestsAtServer: mine.length,
      answered429: limited,
      idealMs,
      ...run
    }
  }
}

/** Scenario 8. */
export const scenario: Scenario = {
  id: 8,
  title: () => "8 the API pushes back",
  run: async (context) => {
    const n = context.quick ? 90 : 300
    const timeoutMs = ((n - 1) / perMinute) * 60_000 * 2 + 30_000
    const { server } = context
    await server.configure(Object.fromEntries(variants.map((variant) => [
      variant.model,
      { latencyMs, rateLimit: { perMinute, capacity, headers: variant.headers } }
    ])))
    await server.reset()
    context.progress(
      `8 pushback: ${n} prompts at ${configuredQpm} QPM against a bucket of ${capacity} at ${perMinute}/min, ` +
        `variants (a) and (b) at once (about ${Math.round(((n - 1) / perMinute) * 60)} s)`
    )
    const runs = await Promise.all(variants.map((variant) => runVariant(context, variant, n, timeoutMs)))
    const { requests, cpuMs: serverCpuMs } = await server.requests()
    const outcomes = variants.map((variant, index) => variantFigures(variant, n, runs[index]!, requests))
    return {
      figures: outcomes.flatMap((outcome) => outcome.figures),
      details: {
        prompts: n,
        perMinute,
        capacity,
        configuredQpm,
        latencyMs,
        serverCpuMs,
        variants: outcomes.map((outcome) => outcome.details)
      }
    }
  }
}
