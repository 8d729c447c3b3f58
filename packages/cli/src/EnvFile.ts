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
  /** A warning to show, e.g. when the file does not exist. */
  readonly warning: string | undefined
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
    return {
      provider: ConfigProvider.fromMap(merged),
      names: Object.keys(fromFile),
      warning: text._tag === "Some" ? undefined : `No environment file found at ${path}; using the environment only`
    }
  })
