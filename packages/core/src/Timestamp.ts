/**
 * prompto's timestamp format, `DD-MM-YYYY-HH-MM-SS` in local time, used in file names and in
 * `timestamp_sent`.
 *
 * @since 0.1.0
 */

const pad = (n: number): string => String(n).padStart(2, "0")

/**
 * Formats epoch milliseconds as `DD-MM-YYYY-HH-MM-SS` (local time).
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (millis: number): string => {
  const d = new Date(millis)
  return `${pad(d.getDate())}-${pad(d.getMonth() + 1)}-${d.getFullYear()}-${pad(d.getHours())}-${pad(d.getMinutes())}-${pad(d.getSeconds())}`
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
