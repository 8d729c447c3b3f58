/**
 * The progress display: each queue's line fits the terminal (from 40 to 200 columns), with its
 * counts, its achieved rate against the asked one, the elapsed time and the time left; off a
 * terminal, plain lines with the same figures.
 */
import { RunSummary } from "@prompto/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as Progress from "../src/Progress.js"

const stats = () => {
  const run = RunSummary.make([{ key: "openai-gpt-4o-mini", queriesPerMinute: 600, total: 1000 }], 0)
  const queue = run.queues.get("openai-gpt-4o-mini")!
  Object.assign(queue, { sent: 251, succeeded: 240, failed: 10, retries: 1, firstSentAt: 0, lastSentAt: 25_000 })
  return { run, queue }
}

describe("Progress", () => {
  it("a queue's line fits the terminal, dropping the least useful parts first", () => {
    const { queue } = stats()
    for (const columns of [40, 60, 80, 120, 200]) {
      const line = Progress.queueLine(queue, { columns, keyWidth: queue.key.length, elapsedMs: 25_000 })
      expect(line.length, `${columns}: ${line}`).toBeLessThan(columns)
    }
    const wide = Progress.queueLine(queue, { columns: 200, keyWidth: queue.key.length, elapsedMs: 25_000 })
    // 250 done at 600 QPM achieved: 750 left take 75 s
    expect(wide).toContain("250/1000 25%")
    expect(wide).toContain("ok 240 failed 10")
    expect(wide).toContain("600/600 QPM")
    expect(wide).toContain("25s ETA 1m15s")
    expect(wide).toContain("retries 1")
    expect(wide).toMatch(/\[=+ +\]/)
    const narrow = Progress.queueLine(queue, { columns: 60, keyWidth: queue.key.length, elapsedMs: 25_000 })
    expect(narrow).toContain("250/1000 25%")
    expect(narrow).not.toContain("retries")
  })

  it("off a terminal: plain lines with elapsed time, ETA and each queue's rate", () => {
    const { run } = stats()
    const lines: Array<string> = []
    let now = 0
    const progress = Progress.make({ interactive: false, everySeconds: 5, write: (line) => lines.push(line), now: () => now })
    const report = { invalidRecords: 0 } as never
    const completed = { _tag: "Completed", queue: "openai-gpt-4o-mini", ok: true, record: {} } as never
    Effect.runSync(progress.onEvent({ _tag: "Started", stats: run, report, files: {} } as never))
    now = 25_000
    Effect.runSync(progress.onEvent(completed))
    expect(lines).toEqual([
      "progress: 250/1000 done (ok 240, failed 10, retries 1, in flight 0); 25s elapsed, ETA 1m15s; openai-gpt-4o-mini 600/600 QPM"
    ])
    now = 26_000
    Effect.runSync(progress.onEvent(completed))
    expect(lines).toHaveLength(1)
    expect(Progress.clock(3_725_000)).toBe("1h02m")
  })
})
