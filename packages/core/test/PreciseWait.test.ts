import { describe, expect, it } from "@effect/vitest"
import * as PreciseWait from "../src/internal/preciseWait.js"

describe("pollUntil (the live clock's wait for a slot at a short interval)", () => {
  /** An event loop whose time moves only when told, recording what the wait asked of it. */
  const fakeLoop = () => {
    let now = 0
    const asked: Array<string> = []
    let pending: Array<{ readonly callback: () => void; readonly at: number; cancelled: boolean }> = []
    const loop: PreciseWait.EventLoop = {
      now: () => now,
      timer: (callback, ms) => {
        asked.push(`timer ${ms}`)
        const entry = { callback, at: now + ms, cancelled: false }
        pending.push(entry)
        return () => {
          entry.cancelled = true
        }
      },
      nextTurn: (callback) => {
        asked.push("turn")
        const entry = { callback, at: now, cancelled: false }
        pending.push(entry)
        return () => {
          entry.cancelled = true
        }
      }
    }
    /** Moves the time to `to` and runs what is due then (one turn of the loop). */
    const turn = (to: number) => {
      now = to
      const due = pending.filter((entry) => !entry.cancelled && entry.at <= now)
      pending = pending.filter((entry) => !due.includes(entry))
      for (const entry of due) entry.callback()
    }
    const live = () => pending.filter((entry) => !entry.cancelled).length
    return { loop, asked, turn, live }
  }

  it("sleeps on a timer until pollWithinMs before the time, then checks at every turn", () => {
    const { asked, loop, turn } = fakeLoop()
    let done = 0
    PreciseWait.pollUntil(10, loop, () => done++)
    expect(asked).toEqual([`timer ${10 - PreciseWait.pollWithinMs}`])
    turn(8.5)
    expect(asked.slice(1)).toEqual(["turn"])
    turn(9.2)
    turn(9.9)
    expect(done).toBe(0)
    turn(10.1)
    expect(done).toBe(1)
    expect(asked.slice(1)).toEqual(["turn", "turn", "turn"])
  })

  it("a poke ends the wait when the time has come, and cancels what was planned", () => {
    const { live, loop, turn } = fakeLoop()
    let done = 0
    const wait = PreciseWait.pollUntil(1.5, loop, () => done++)
    turn(0.4)
    wait.poke()
    expect(done).toBe(0)
    expect(live()).toBe(1)
    turn(0.9)
    // between two turns: the answer's callback pokes after the time
    turn(1.2)
    expect(done).toBe(0)
    turn(1.6)
    expect(done).toBe(1)
    wait.poke()
    expect(done).toBe(1)
    expect(live()).toBe(0)
  })

  it("a poke between turns ends the wait at once", () => {
    const { live, loop } = fakeLoop()
    let done = 0
    let now = 0
    const timed: PreciseWait.EventLoop = { ...loop, now: () => now }
    const wait = PreciseWait.pollUntil(1, timed, () => done++)
    now = 1.01
    wait.poke()
    expect(done).toBe(1)
    expect(live()).toBe(0)
  })

  it("cancel ends the wait without calling back", () => {
    const { live, loop, turn } = fakeLoop()
    let done = 0
    const wait = PreciseWait.pollUntil(5, loop, () => done++)
    wait.cancel()
    expect(live()).toBe(0)
    turn(10)
    wait.poke()
    expect(done).toBe(0)
  })

  it("a time already past calls back at once", () => {
    const { asked, loop } = fakeLoop()
    let done = 0
    PreciseWait.pollUntil(0, loop, () => done++)
    expect(done).toBe(1)
    expect(asked).toEqual([])
  })
})
