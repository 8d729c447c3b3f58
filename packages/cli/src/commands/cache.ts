/**
 * `prompto cache stats|clear`: what the response cache holds, and emptying it (all of it, or
 * what is older than a given age).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Cache } from "@prompto/core"
import { Clock, Console, Duration, Effect, Option } from "effect"
import * as path from "node:path"
import * as CliError from "../CliError.js"
import * as SharedOptions from "../SharedOptions.js"

const dir = Options.text("cache-dir").pipe(
  Options.optional,
  Options.withDescription("The cache folder (default: <data folder>/cache, as `prompto run --cache` uses).")
)

const folderOf = (flags: { readonly dataFolder: string; readonly cacheDir: Option.Option<string> }) =>
  Option.getOrElse(flags.cacheDir, () => path.join(flags.dataFolder, "cache"))

/**
 * `prompto cache stats`.
 *
 * @since 0.1.0
 * @category commands
 */
export const stats = Command.make("stats", { dataFolder: SharedOptions.dataFolder, cacheDir: dir }, (flags) =>
  Effect.scoped(Effect.gen(function*() {
    const cache = yield* Cache.open(folderOf(flags))
    const figures = yield* cache.stats
    yield* Console.log(`cache ${cache.path}: ${figures.entries} entries, ${(figures.bytes / 1e6).toFixed(1)} MB`)
  }))).pipe(Command.withDescription("How many answers the response cache holds, and its size on disk."))

/**
 * `prompto cache clear`.
 *
 * @since 0.1.0
 * @category commands
 */
export const clear = Command.make("clear", {
  dataFolder: SharedOptions.dataFolder,
  cacheDir: dir,
  olderThan: Options.text("older-than").pipe(
    Options.optional,
    Options.withDescription("Only answers kept longer ago than this: a duration such as \"7 days\", \"12 hours\", \"30 minutes\".")
  )
}, (flags) =>
  Effect.scoped(Effect.gen(function*() {
    let before: number | undefined
    if (Option.isSome(flags.olderThan)) {
      const age = Duration.decodeUnknown(flags.olderThan.value)
      if (Option.isNone(age)) {
        return yield* new CliError.UsageError({
          message: `--older-than must be a duration such as "7 days" or "12 hours", got "${flags.olderThan.value}"`
        })
      }
      before = (yield* Clock.currentTimeMillis) - Duration.toMillis(age.value)
    }
    const cache = yield* Cache.open(folderOf(flags))
    const removed = yield* cache.clear(before)
    yield* Console.log(`removed ${removed} entries from ${cache.path}`)
  }))).pipe(Command.withDescription("Empty the response cache, or only what is older than --older-than."))

/**
 * `prompto cache`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("cache").pipe(
  Command.withDescription("The response cache of `prompto run --cache`: stats and clear."),
  Command.withSubcommands([stats, clear])
)
