/**
 * `prompto check`: check an experiment file without sending anything (prompto's
 * `prompto_check_experiment`). Unlike prompto, an invalid file exits non-zero.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { DataFolder, ExperimentCheck, Provider, StrategySpec } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { Console, Effect, Option } from "effect"
import { CommandFailed } from "../CliError.js"
import * as EnvFile from "../EnvFile.js"
import * as SharedOptions from "../SharedOptions.js"

const logFile = Options.text("log-file").pipe(
  Options.withAlias("l"),
  Options.optional,
  Options.withDescription("Also write the report to this file.")
)

/**
 * `prompto check`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("check", {
  file: SharedOptions.file,
  envFile: SharedOptions.envFile,
  logFile,
  dataFolder: SharedOptions.dataFolder,
  moveToInput: SharedOptions.moveToInput,
  strategyFolder: Options.text("strategy-folder").pipe(
    Options.withAlias("sf"),
    Options.optional,
    Options.withDescription("A strategy folder whose named strategies lines may use (see prompto run --strategy-folder).")
  )
}, (flags) =>
  Effect.gen(function*() {
    const env = yield* EnvFile.load(flags.envFile)
    for (const warning of env.warnings) yield* Console.error(`warning: ${warning}`)
    const path = yield* Path.Path
    const strategies = yield* StrategySpec.load({ folder: Option.getOrUndefined(flags.strategyFolder) })
    const report = yield* ExperimentCheck.check(flags.file, { strategies }).pipe(
      Effect.locally(Provider.mediaFolder, path.join(path.resolve(flags.dataFolder), "media")),
      Effect.provide(Providers.layer),
      Effect.withConfigProvider(env.provider)
    )
    const lines = ExperimentCheck.formatReport(report)
    for (const line of lines) yield* Console.log(line)
    const fs = yield* FileSystem.FileSystem
    if (Option.isSome(flags.logFile)) {
      yield* fs.writeFileString(flags.logFile.value, lines.join("\n") + "\n")
    }
    if (!ExperimentCheck.isValid(report)) return yield* new CommandFailed({ exitCode: 1 })
    if (flags.moveToInput) {
      const folder = yield* DataFolder.prepare(flags.dataFolder)
      const target = path.join(folder.input, path.basename(flags.file))
      yield* fs.rename(flags.file, target)
      yield* Console.log(`moved to ${target}`)
    }
  })).pipe(Command.withDescription("Check an experiment file: every line, its keys and its API, without sending anything."))
