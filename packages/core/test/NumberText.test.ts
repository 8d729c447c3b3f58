import { describe, expect, it } from "@effect/vitest"
import * as NumberText from "../src/internal/numberText.js"

describe("NumberText.grouped", () => {
  it("writes numbers as Intl.NumberFormat('en-US') does", () => {
    const cases: ReadonlyArray<readonly [number, number]> = [
      [0, 0], [7, 0], [999, 0], [1000, 0], [12345, 0], [1234567.89, 2], [1234567.891, 0], [-1234.5, 2],
      [0.000123, 6], [123456.789, 4], [1e21, 0], [999999.5, 0], [-0.0000001, 2]
    ]
    for (const [value, digits] of cases) {
      const intl = new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
      expect(NumberText.grouped(value, digits), `${value} with ${digits} digits`).toBe(intl.format(value).replace(/^-0(\.0*)?$/, "0$1"))
    }
  })

  it("leaves what is not finite as JavaScript writes it", () => {
    expect(NumberText.grouped(Number.NaN)).toBe("NaN")
    expect(NumberText.grouped(Number.POSITIVE_INFINITY)).toBe("Infinity")
  })
})
