import { describe, expect, it } from "@effect/vitest"
import { IdIndex } from "../src/internal/idIndex.js"

describe("IdIndex", () => {
  it("returns undefined for a new id and the first line for a repeat", () => {
    const ids = new IdIndex()
    expect(ids.firstLineOrAdd("a", 1)).toBeUndefined()
    expect(ids.firstLineOrAdd("b", 2)).toBeUndefined()
    expect(ids.firstLineOrAdd("a", 3)).toBe(1)
    expect(ids.firstLineOrAdd("a", 4)).toBe(1)
    expect(ids.firstLineOrAdd("b", 5)).toBe(2)
    expect(ids.size).toBe(2)
  })

  it("finds repeats with their first line after the table and arena have grown", () => {
    const ids = new IdIndex()
    const count = 100_000
    const wrong: Array<number> = []
    for (let i = 0; i < count; i++) if (ids.firstLineOrAdd(`p-${i}`, i + 1) !== undefined) wrong.push(i)
    for (let i = 0; i < count; i++) if (ids.firstLineOrAdd(i, count + i + 1) !== undefined) wrong.push(i)
    expect(wrong).toEqual([])
    expect(ids.size).toBe(2 * count)
    for (let i = 0; i < count; i++) {
      if (ids.firstLineOrAdd(`p-${i}`, 3 * count + i + 1) !== i + 1) wrong.push(i)
      if (ids.firstLineOrAdd(i, 4 * count + i + 1) !== count + i + 1) wrong.push(i)
    }
    expect(wrong).toEqual([])
    expect(ids.size).toBe(2 * count)
  })

  it("keeps a number id and a string id of the same text apart", () => {
    const ids = new IdIndex()
    expect(ids.firstLineOrAdd(1, 1)).toBeUndefined()
    expect(ids.firstLineOrAdd("1", 2)).toBeUndefined()
    expect(ids.firstLineOrAdd(1.5, 3)).toBeUndefined()
    expect(ids.firstLineOrAdd("1.5", 4)).toBeUndefined()
    expect(ids.firstLineOrAdd(1, 5)).toBe(1)
    expect(ids.firstLineOrAdd("1", 6)).toBe(2)
    expect(ids.firstLineOrAdd(1.0, 7)).toBe(1)
    expect(ids.firstLineOrAdd(1.5, 8)).toBe(3)
    expect(ids.size).toBe(4)
  })

  it("compares numbers as a Map does: 0 and -0 are one id, NaN equals NaN", () => {
    const ids = new IdIndex()
    const map = new Map<number, number>()
    const keys = [0, -0, Number.NaN, 0 / 0, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, 1e-300, Number.MIN_VALUE]
    keys.forEach((key, i) => {
      expect(ids.firstLineOrAdd(key, i + 1)).toBe(map.get(key))
      if (!map.has(key)) map.set(key, i + 1)
    })
    expect(ids.size).toBe(map.size)
    expect(ids.firstLineOrAdd(-0, 99)).toBe(1)
    expect(ids.firstLineOrAdd(Number.NaN, 99)).toBe(3)
  })

  it("keeps unicode ids exact, lone surrogates included", () => {
    const ids = new IdIndex()
    const keys = ["é", "e\u0301", "ÿ", "Ā", "日本", "日本語", "😀", "\ud83d", "\ude00", "\ud800", "\udfff", "", "\u0000", "a\u0000"]
    keys.forEach((key, i) => expect(ids.firstLineOrAdd(key, i + 1)).toBeUndefined())
    keys.forEach((key, i) => expect(ids.firstLineOrAdd(key, 100 + i)).toBe(i + 1))
    // a wide id and a narrow id whose bytes would read alike are different ids
    expect(ids.firstLineOrAdd("\u0101", 200)).toBeUndefined()
    expect(ids.firstLineOrAdd("\u0001\u0001", 201)).toBeUndefined()
    expect(ids.size).toBe(keys.length + 2)
  })

  it("handles long ids (multi-byte length headers)", () => {
    const ids = new IdIndex()
    const long = "x".repeat(100_000)
    const longWide = "λ".repeat(20_000)
    expect(ids.firstLineOrAdd(long, 1)).toBeUndefined()
    expect(ids.firstLineOrAdd(longWide, 2)).toBeUndefined()
    expect(ids.firstLineOrAdd(`${long}y`, 3)).toBeUndefined()
    expect(ids.firstLineOrAdd("x".repeat(100_000), 4)).toBe(1)
    expect(ids.firstLineOrAdd("λ".repeat(20_000), 5)).toBe(2)
    expect(ids.firstLineOrAdd("x".repeat(99_999), 6)).toBeUndefined()
  })

  it("reports no false duplicate over 1,000,000 distinct ids", () => {
    const ids = new IdIndex()
    let duplicates = 0
    for (let i = 0; i < 500_000; i++) if (ids.firstLineOrAdd(`p-${String(i).padStart(6, "0")}`, i + 1) !== undefined) duplicates++
    for (let i = 0; i < 500_000; i++) if (ids.firstLineOrAdd(i, 500_001 + i) !== undefined) duplicates++
    expect(duplicates).toBe(0)
    expect(ids.size).toBe(1_000_000)
  })

  it("rejects a line that cannot be stored", () => {
    const ids = new IdIndex()
    expect(() => ids.firstLineOrAdd("a", 2 ** 32)).toThrow(RangeError)
    expect(() => ids.firstLineOrAdd("a", 1.5)).toThrow(RangeError)
    expect(ids.size).toBe(0)
  })
})
