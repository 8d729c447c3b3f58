/**
 * RunSummary: scheduler events folded into per-queue and per-model tallies of tokens and cost,
 * and the summary's token and cost tables (unknown prices never shown as 0).
 */
import { describe, expect, it } from "@effect/vitest"
import type { CompletedRecord } from "../src/PromptRecord.js"
import { TransientError } from "../src/ProviderError.js"
import * as RunSummary from "../src/RunSummary.js"
import type { SchedulerEvent } from "../src/Scheduler.js"

const completed = (
  queue: string,
  fields: Partial<CompletedRecord> & Pick<CompletedRecord, "api" | "model_name">,
  ok = true
): SchedulerEvent => ({
  _tag: "Completed",
  queue,
  ok,
  record: { id: 1, prompt: "p", response: ok ? "answer" : "error", ...fields } as CompletedRecord
})

const queued = (queue: string): SchedulerEvent => ({ _tag: "Queued", queue, queriesPerMinute: 60, id: 1 })

const mini = { api: "openai", model_name: "gpt-4o-mini" } as const
const haiku = { api: "anthropic", model_name: "claude-3-5-haiku" } as const
const usage = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 }

/** Statistics of the given queues with the events folded in (each queue's records queued first). */
const fold = (events: ReadonlyArray<SchedulerEvent>, queues: ReadonlyArray<string> = ["default"]) => {
  const stats = RunSummary.make(queues.map((key) => ({ key, queriesPerMinute: 60, total: 0 })), 0)
  for (const event of events) {
    if (event._tag === "Completed") RunSummary.record(stats, queued(event.queue))
    RunSummary.record(stats, event)
  }
  stats.finishedAt = 2000
  return stats
}

/** The lines `format` adds after the queue table. */
const usageLines = (stats: RunSummary.RunStats) => RunSummary.format(stats).slice(2 + stats.queues.size)

describe("RunSummary", () => {
  it("tallies ok requests per queue and per model: tokens, cache hits, known and unpriced cost; failures add nothing", () => {
    const stats = fold([
      completed("default", { ...mini, usage, cost: 0.000036 }),
      completed("default", {
        ...mini,
        usage: { ...usage, cached_tokens: 100, reasoning_tokens: 10 } as CompletedRecord["usage"],
        cost: 0.00003
      }),
      // the OpenAI SDK's nested details count too
      completed("default", {
        ...mini,
        usage: { ...usage, prompt_tokens_details: { cached_tokens: 20 }, completion_tokens_details: { reasoning_tokens: 5 } } as never,
        cost: 0.00004
      }),
      // a cache hit: its kept usage was not sent again, and it costs a known 0
      completed("default", { ...mini, usage, cost: 0, cached: true }),
      completed("default", { ...haiku, usage, cost: null }),
      // no usage: a request, no tokens
      completed("default", { ...haiku, cost: null }),
      completed("default", { ...mini, error: { kind: "server", message: "boom", attempts: 3 } }, false)
    ])
    const queue = stats.queues.get("default")!
    expect(queue.succeeded).toBe(6)
    expect(queue.failed).toBe(1)
    expect(queue.usage).toEqual({
      requests: 6,
      cacheHits: 1,
      inputTokens: 480,
      cachedInputTokens: 120,
      outputTokens: 120,
      reasoningTokens: 15,
      cost: expect.closeTo(0.000106, 12),
      unpriced: 2
    })
    expect(RunSummary.byModel(stats)).toEqual([
      {
        api: "anthropic",
        model: "claude-3-5-haiku",
        requests: 2,
        cacheHits: 0,
        inputTokens: 120,
        cachedInputTokens: 0,
        outputTokens: 30,
        reasoningTokens: 0,
        cost: 0,
        unpriced: 2
      },
      {
        api: "openai",
        model: "gpt-4o-mini",
        requests: 4,
        cacheHits: 1,
        inputTokens: 360,
        cachedInputTokens: 120,
        outputTokens: 90,
        reasoningTokens: 15,
        cost: expect.closeTo(0.000106, 12),
        unpriced: 0
      }
    ])
    expect(RunSummary.usageTotals(stats)).toEqual(queue.usage)
  })

  it("a record without a cost key counts as unpriced, never as $0", () => {
    const stats = fold([completed("default", { ...mini, usage })])
    expect(RunSummary.usageTotals(stats)).toMatchObject({ requests: 1, cost: 0, unpriced: 1 })
    expect(RunSummary.formatCost(RunSummary.usageTotals(stats))).toBe("unknown")
  })

  it("formats costs: known, unknown, mixed, cache hits only, and the digits by size", () => {
    const tally = (cost: number, requests: number, unpriced: number): RunSummary.UsageTally => ({
      requests,
      cacheHits: 0,
      inputTokens: 0,
      cachedInputTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
      cost,
      unpriced
    })
    expect(RunSummary.formatCost(tally(0.0036, 10, 0))).toBe("0.003600")
    expect(RunSummary.formatCost(tally(0, 10, 10))).toBe("unknown")
    expect(RunSummary.formatCost(tally(0.0036, 10, 3))).toBe("0.003600 + unknown")
    expect(RunSummary.formatCost(tally(0, 4, 0))).toBe("0.000000")
    expect(RunSummary.formatCost(tally(12.345678, 1, 0))).toBe("12.3457")
    expect(RunSummary.formatCost(tally(1234.5678, 1, 0))).toBe("1,234.57")
  })

  it("appends a table per model with the total; a single queue gets no second table", () => {
    const stats = fold([
      ...Array.from({ length: 100 }, () => completed("default", { ...mini, usage, cost: 0.000036 })),
      ...Array.from({ length: 10 }, () => completed("default", { ...haiku, usage, cost: null })),
      completed("default", { ...haiku, usage }, false)
    ])
    const lines = RunSummary.format(stats)
    // the existing lines come first, unchanged
    expect(lines[0]).toBe("prompts: 111  succeeded: 110  failed: 1  attempts: 0  retries: 0  wall time: 2.0 s")
    expect(lines[2]).toMatch(/^default +60\.0 +- +0 +110 +1 +0$/)
    expect(usageLines(stats)).toEqual([
      "model                       requests  cache hits  input tok  (cached)  output tok  (reasoning)          cost (USD)",
      "anthropic/claude-3-5-haiku        10           0      1,200         0         300            0             unknown",
      "openai/gpt-4o-mini               100           0     12,000         0       3,000            0            0.003600",
      "total                            110           0     13,200         0       3,300            0  0.003600 + unknown"
    ])
  })

  it("a row of cache hits only costs a known 0", () => {
    const stats = fold([completed("default", { ...mini, usage, cost: 0, cached: true })])
    expect(usageLines(stats)).toEqual([
      "model               requests  cache hits  input tok  (cached)  output tok  (reasoning)  cost (USD)",
      "openai/gpt-4o-mini         1           1          0         0           0            0    0.000000",
      "total                      1           1          0         0           0            0    0.000000"
    ])
  })

  it("adds a table per queue when a queue holds several models or a model several queues", () => {
    const stats = fold([
      completed("openai", { ...mini, usage, cost: 0.000036 }),
      completed("openai", { api: "openai", model_name: "gpt-4o", usage, cost: 0.0006 }),
      completed("judge-strict/openai", { ...mini, usage, cost: 0.000036 })
    ], ["openai"])
    expect(usageLines(stats)).toEqual([
      "model                requests  cache hits  input tok  (cached)  output tok  (reasoning)  cost (USD)",
      "openai/gpt-4o               1           0        120         0          30            0    0.000600",
      "openai/gpt-4o-mini          2           0        240         0          60            0    0.000072",
      "total                       3           0        360         0          90            0    0.000672",
      "queue                requests  cache hits  input tok  (cached)  output tok  (reasoning)  cost (USD)",
      "openai                      2           0        240         0          60            0    0.000636",
      "judge-strict/openai         1           0        120         0          30            0    0.000036"
    ])
  })

  it("leaves the queue table out when each queue holds one model of its own", () => {
    const stats = fold([
      completed("openai", { ...mini, usage, cost: 0.000036 }),
      completed("anthropic", { ...haiku, usage, cost: null })
    ], ["openai", "anthropic"])
    const lines = usageLines(stats)
    expect(lines.map((line) => line.split(" ")[0])).toEqual(["model", "anthropic/claude-3-5-haiku", "openai/gpt-4o-mini", "total"])
  })

  it("adds nothing to the summary when no request was answered", () => {
    const stats = fold([
      completed("default", { ...mini, error: { kind: "server", message: "boom", attempts: 3 } }, false),
      completed("default", { ...mini, error: { kind: "server", message: "boom", attempts: 3 } }, false)
    ])
    expect(RunSummary.format(stats)).toEqual([
      "prompts: 2  succeeded: 0  failed: 2  attempts: 0  retries: 0  wall time: 2.0 s",
      "queue         QPM  achieved    sent      ok  failed  retries",
      "default      60.0         -       0       0       2        0"
    ])
    expect(RunSummary.usageTotals(stats).requests).toBe(0)
  })

  it("folds RateChanged events into each queue's rate over time: a summary line and a log line", () => {
    const stats = RunSummary.make([{ key: "openai/gpt-4o", queriesPerMinute: 1200, total: 3 }, { key: "other", queriesPerMinute: 60, total: 1 }], 0)
    const sent = (queue: string, at: number): SchedulerEvent => ({ _tag: "Sent", queue, id: 1, attempt: 1, at })
    const rate = (at: number, queriesPerMinute: number, reason: "rate_limited" | "recovering"): SchedulerEvent => ({
      _tag: "RateChanged",
      queue: "openai/gpt-4o",
      at,
      queriesPerMinute,
      configured: 1200,
      reason
    })
    const events = [
      sent("openai/gpt-4o", 0),
      sent("other", 0),
      rate(10_000, 840, "rate_limited"),
      rate(20_000, 1200, "recovering"),
      sent("openai/gpt-4o", 40_000),
      sent("other", 40_000)
    ]
    for (const event of events) RunSummary.record(stats, event)
    stats.finishedAt = 40_000
    const queue = stats.queues.get("openai/gpt-4o")!
    expect(queue.rate).toEqual({
      steps: [{ at: 0, queriesPerMinute: 1200 }, { at: 10_000, queriesPerMinute: 840 }, { at: 20_000, queriesPerMinute: 1200 }],
      lowest: 840,
      lowered: 1
    })
    // 10 s of 40 at 840, the rest at 1,200
    expect(RunSummary.meanEffectiveQpm(queue)).toBeCloseTo(1110, 9)
    const lines = RunSummary.format(stats)
    // appended last; a queue whose rate never moved has no line
    expect(lines.at(-1)).toBe(
      `effective rate of openai/gpt-4o: configured 1200.0 QPM, lowest 840.0, mean 1110.0, final 1200.0 (lowered 1 time by "slow down" answers)`
    )
    expect(lines.filter((line) => line.startsWith("effective rate"))).toHaveLength(1)
    expect(RunSummary.logMessage(rate(10_000, 840, "rate_limited"))).toBe(
      `Rate of queue openai/gpt-4o: 840.0 QPM of 1200.0 (lowered after a "slow down")`
    )
  })

  it("a retry's log line names the error as prompto does (the test API's ValueError, an SDK's class), else by its kind", () => {
    const retrying = (error: TransientError) =>
      RunSummary.logMessage({ _tag: "Retrying", queue: "q", id: "p-1", attempt: 1, maxAttempts: 3, error })
    expect(retrying(new TransientError({ message: "boom", errorName: "Exception" }))).toBe(
      "Error (id=p-1) on attempt 1 of 3: Exception - boom. Adding to the queue to try again later..."
    )
    expect(retrying(new TransientError({ message: "boom" }))).toBe(
      "Error (id=p-1) on attempt 1 of 3: TransientError - boom. Adding to the queue to try again later..."
    )
  })
})
