/**
 * Numbers as text for people, `1,234,567.89`, without `Intl`: a process's first `Intl` object
 * loads ICU's data, about 7 MB of memory and 16 ms, which every run would pay for the few numbers
 * of its summary and progress line (start-up memory, issue 14).
 *
 * @since 0.1.0
 */

/**
 * `value` with `digits` decimals (rounded as `toFixed` does) and its whole part grouped by
 * thousands with commas, as `Intl.NumberFormat("en-US")` writes it.
 *
 * @since 0.1.0
 * @category formatting
 */
export const grouped = (value: number, digits: number = 0): string => {
  if (!Number.isFinite(value)) return String(value)
  const magnitude = Math.abs(value)
  // `toFixed` turns to exponents from 1e21: such a number is whole, and BigInt writes it out
  const fixed = magnitude >= 1e21
    ? `${BigInt(magnitude)}${digits > 0 ? "." + "0".repeat(digits) : ""}`
    : magnitude.toFixed(digits)
  const point = fixed.indexOf(".")
  const whole = point === -1 ? fixed : fixed.slice(0, point)
  const rest = point === -1 ? "" : fixed.slice(point)
  // -0 and a negative that rounds to zero are written as 0
  const sign = value < 0 && /[1-9]/.test(fixed) ? "-" : ""
  return sign + whole.replace(/\B(?=(\d{3})+$)/g, ",") + rest
}
