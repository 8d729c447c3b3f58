/**
 * The `.env` file: read with dotenv and turned into the `ConfigProvider` that providers read
 * their keys from (variables already in the environment win, as with python-dotenv).
 * Values are never printed.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { ConfigProvider, Effect } from "effect"
import * as dotenv from "dotenv"

/**
 * What loading found.
 *
 * @since 0.1.0
 * @category models
 */
export interface EnvFile {
  readonly provider: ConfigProvider.ConfigProvider
  /** Names defined in the file (never the values). */
  readonly names: ReadonlyArray<string>
  /** Warnings to show: the file does not exist, or lines that are not `NAME=value` (ignored). */
  readonly warnings: ReadonlyArray<string>
}

const assignment = /^\s*(export\s+)?[\w.-]+\s*[=:]/

/**
 * The numbers of the lines dotenv cannot read as `NAME=value` (it ignores them silently): not
 * blank, not a comment, and not inside a quoted value that spans lines.
 *
 * @since 0.1.0
 * @category parsing
 */
export const unreadableLines = (text: string): ReadonlyArray<number> => {
  const bad: Array<number> = []
  let open: string | undefined
  text.split(/\r?\n/).forEach((line, i) => {
    if (open !== undefined) {
      if (line.includes(open)) open = undefined
      return
    }
    const trimmed = line.trim()
    if (trimmed === "" || trimmed.startsWith("#")) return
    if (!assignment.test(line)) {
      bad.push(i + 1)
      return
    }
    // a quoted value may go on over the next lines
    const value = line.slice(line.search(/[=:]/) + 1).trimStart()
    const quote = value[0]
    if ((quote === "\"" || quote === "'" || quote === "`") && value.indexOf(quote, 1) === -1) open = quote
  })
  return bad
}

/**
 * Loads `path` (missing is a warning, not an error) into a `ConfigProvider`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (path: string): Effect.Effect<EnvFile, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(Effect.option)
    const fromFile = text._tag === "Some" ? dotenv.parse(text.value) : {}
    const merged = new Map<string, string>(Object.entries(fromFile))
    for (const [name, value] of Object.entries(process.env)) if (value !== undefined) merged.set(name, value)
    // only line numbers: a line that is not NAME=value may still hold a secret
    const unreadable = text._tag === "Some" ? unreadableLines(text.value) : []
    return {
      provider: ConfigProvider.fromMap(merged),
      names: Object.keys(fromFile),
      warnings: text._tag === "Some"
        ? unreadable.map((line) => `${path}:${line}: not a NAME=value line; ignored`)
        : [`No environment file found at ${path}; using the environment only`]
    }
  })
