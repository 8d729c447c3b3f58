/**
 * prompto's timestamp format, `DD-MM-YYYY-HH-MM-SS` in local time, used in file names and in
 * `timestamp_sent`.
 *
 * @since 0.1.0
 */

const pad = (n: number): string => String(n).padStart(2, "0")

// the last second `format` formatted, and how
let lastSecond = Number.NaN
let lastFormatted = ""

/**
 * Formats epoch milliseconds as `DD-MM-YYYY-HH-MM-SS` (local time).
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (millis: number): string => {
  // a run formats two stamps a request, nearly all in the same second as the last one
  const second = Math.floor(millis / 1000)
  if (second === lastSecond) return lastFormatted
  const d = new Date(millis)
  lastFormatted =
    `${pad(d.getDate())}-${pad(d.getMonth() + 1)}-${d.getFullYear()}-${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}`
  lastSecond = second
  return lastFormatted
}

/**
 * Formats epoch milliseconds as a log-line prefix, `DD-MM-YYYY, HH:MM` (local time).
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatLogPrefix = (millis: number): string => {
  const d = new Date(millis)
  return `${pad(d.getDate())}-${pad(d.getMonth() + 1)}-${d.getFullYear()}, ${pad(d.getHours())}:${pad(d.getMinutes())}`
}
