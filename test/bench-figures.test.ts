/**
 * The arithmetic behind `pnpm bench` (bench/src/Figures.ts), on inputs whose answers are known
 * by hand: bursts, achieved rates, the ideals of paced and serial queues, the one-by-one
 * speed-up, verdicts and the table layout.
 */
import { describe, expect, it } from "vitest"
import * as Figures from "../bench/src/Figures.js"

describe("bench figures", () => {
  it("busiestWindow counts the most times in any half-open window, in any order", () => {
    // one every 10 ms: a 100 ms window holds 10 of them, never 11 ([0, 100) excludes 100)
    const even = Array.from({ length: 50 }, (_, i) => i * 10)
    expect(Figures.busiestWindow(even, 100)).toBe(10)
    // a burst of 5 at 250 ms on top of the even times
    const burst = [...even, 250, 250.1, 250.2, 250.3, 250.4].reverse()
    expect(Figures.busiestWindow(burst, 100)).toBe(15)
    expect(Figures.busiestWindow([], 100)).toBe(0)
    expect(Figures.busiestWindow([5], 100)).toBe(1)
  })

  it("achievedRatePerSecond is (n - 1) gaps over the span", () => {
    expect(Figures.achievedRatePerSecond([0, 1, 2, 3, 4])).toBe(1000)
    expect(Figures.achievedRatePerSecond([2000, 0, 1000])).toBe(1)
    expect(Figures.achievedRatePerSecond([7])).toBeNaN()
    expect(Figures.achievedRatePerSecond([3, 3])).toBeNaN()
  })

  it("queueIdealMs: the last send plus one latency; a serial server needs n service times", () => {
    // the scenario 1: 1,999 ms of sending plus 1,000 ms
    expect(Figures.queueIdealMs({ n: 2000, qpm: 60_000, latencyMs: 1000 })).toBeCloseTo(2999, 6)
    // the paper's serial endpoint: 100 x 2.7 s, far above the 11.88 s of pacing + 2.7 s
    expect(Figures.queueIdealMs({ n: 100, qpm: 500, latencyMs: 2700, serial: true })).toBeCloseTo(270_000, 6)
    expect(Figures.queueIdealMs({ n: 100, qpm: 500, latencyMs: 1300 })).toBeCloseTo(99 * 120 + 1300, 6)
    expect(Figures.queueIdealMs({ n: 0, qpm: 500, latencyMs: 1300 })).toBe(0)
    // scaling latencies by s and rates by 1/s scales every ideal by s
    const full = Figures.slowestIdealMs([
      { n: 100, qpm: 500, latencyMs: 1300 },
      { n: 100, qpm: 500, latencyMs: 2700, serial: true }
    ])
    const scaled = Figures.slowestIdealMs([
      { n: 100, qpm: 2500, latencyMs: 260 },
      { n: 100, qpm: 2500, latencyMs: 540, serial: true }
    ])
    expect(scaled / full).toBeCloseTo(0.2, 9)
  })

  it("serialServiceTimesMs measures each answer from when the server could start it", () => {
    const served = [
      { arrivedAt: 0, answeredAt: 100 },
      { arrivedAt: 10, answeredAt: 200 }, // waited behind the first: 100 ms of service
      { arrivedAt: 500, answeredAt: 600 } // the server was idle: from its arrival
    ]
    expect(Figures.serialServiceTimesMs([...served].reverse())).toEqual([100, 100, 100])
  })

  it("speedUp is the one-by-one time over the wall", () => {
    expect(Figures.speedUp([1000, 2000, 3000], 1500)).toBe(4)
  })

  it("median takes the middle, or the mean of the two middles", () => {
    expect(Figures.median([5, 1, 3])).toBe(3)
    expect(Figures.median([4, 1, 3, 2])).toBe(2.5)
    expect(Figures.median([])).toBeNaN()
  })

  it("combineRuns takes each figure's median and range over the runs, and a missing run makes it NaN", () => {
    const combined = Figures.combineRuns([
      [{ name: "rate", measured: 0.9 }, { name: "burst", measured: 103 }],
      [{ name: "rate", measured: 0.92 }, { name: "burst", measured: 121 }],
      [{ name: "burst", measured: 111 }, { name: "rate", measured: 0.91 }, { name: "late", measured: 5 }]
    ])
    expect(combined.map((figure) => figure.name)).toEqual(["rate", "burst", "late"])
    expect(combined[0]).toMatchObject({ median: 0.91, low: 0.9, high: 0.92, runs: [0.9, 0.92, 0.91] })
    expect(combined[1]).toMatchObject({ median: 111, low: 103, high: 121 })
    // measured in one run of three: not passed on that run's word
    expect(combined[2]!.median).toBeNaN()
    expect(combined[2]).toMatchObject({ low: 5, high: 5 })
    expect(Figures.verdict(combined[2]!.median, Figures.atMost(10))).toBe("miss")
    expect(Figures.combineRuns([[{ name: "x", measured: Number.NaN }]])[0]).toMatchObject({ low: Number.NaN })
  })

  it("verdict holds a figure to its target, and NaN always misses", () => {
    expect(Figures.verdict(1.05, Figures.atMost(1.05))).toBe("pass")
    expect(Figures.verdict(1.051, Figures.atMost(1.05))).toBe("miss")
    expect(Figures.verdict(999, Figures.below(1000))).toBe("pass")
    expect(Figures.verdict(1000, Figures.below(1000))).toBe("miss")
    expect(Figures.verdict(0.9, Figures.atLeast(0.9))).toBe("pass")
    expect(Figures.verdict(0.89, Figures.atLeast(0.9))).toBe("miss")
    expect(Figures.verdict(0.991, Figures.within(1, 0.01))).toBe("pass")
    expect(Figures.verdict(1.011, Figures.within(1, 0.01))).toBe("miss")
    expect(Figures.verdict(Number.NaN, Figures.atMost(1))).toBe("miss")
    expect(Figures.verdict(Number.NaN, Figures.info)).toBe("-")
  })

  it("formatTable pads every column to its widest cell", () => {
    const table = Figures.formatTable(["a", "figure"], [["1 pacing", "x"], ["2", Figures.formatNumber(1.2345, 2, "s")]])
    expect(table.split("\n")).toEqual([
      "a         figure",
      "--------  ------",
      "1 pacing  x",
      "2         1.23 s"
    ])
    expect(Figures.formatNumber(Number.NaN, 2)).toBe("n/a")
    expect(Figures.formatTarget(Figures.within(1, 0.01), 4)).toBe("1.0000 ± 1%")
  })
})
