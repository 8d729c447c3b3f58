/**
 * The `prompto` command line: parses flags and delegates to `@prompto/core`; holds no logic a
 * TypeScript user could not call.
 *
 * @since 0.1.0
 */
import { Command, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect } from "effect"
import * as CliConsole from "./CliConsole.js"
import * as CliError from "./CliError.js"
import * as cache from "./commands/cache.js"
import * as check from "./commands/check.js"
import * as estimate from "./commands/estimate.js"
import * as expand from "./commands/expand.js"
import * as judge from "./commands/judge.js"
import * as missing from "./commands/missing.js"
import * as pipeline from "./commands/pipeline.js"
import * as report from "./commands/report.js"
import * as run from "./commands/run.js"
import * as PromptoFlags from "./PromptoFlags.js"

/**
 * The version printed by `prompto --version`.
 *
 * @since 0.1.0
 * @category constants
 */
export const version = "0.1.0"

/** The subcommands, once: for the root command and for flag suggestions. */
const subcommands = [
  run.command,
  check.command,
  estimate.command,
  expand.command,
  judge.command,
  pipeline.command,
  missing.command,
  cache.command,
  report.command
] as const

/**
 * The root command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("prompto").pipe(
  Command.withDescription("Run large prompt experiments against many LLM APIs at once."),
  Command.withSubcommands(subcommands)
)

const cli = Command.run(command, { name: "prompto", version })

/** Each subcommand's flags, for the suggestion after an unknown flag. */
const subcommandFlags: ReadonlyMap<string, ReadonlyArray<string>> = new Map(
  (subcommands as ReadonlyArray<Command.Command<any, any, any, any>>).map((subcommand) =>
    [[...Command.getNames(subcommand)][0]!, CliConsole.flagsOf(subcommand)] as const
  )
)

/**
 * Runs the CLI on `argv` (as `process.argv`: node and script first). Prints one clear line for
 * any error and fails with `CommandFailed` carrying the exit code.
 *
 * @since 0.1.0
 * @category running
 */
export const main = (argv: ReadonlyArray<string>): Effect.Effect<void, CliError.CommandFailed> =>
  cli([...argv.slice(0, 2), ...PromptoFlags.normalize(argv.slice(2))]).pipe(
    CliConsole.withCliConsole(subcommandFlags, argv.slice(2)),
    Effect.catchAll((error) =>
      error instanceof CliError.CommandFailed
        ? Effect.fail(error)
        // @effect/cli has already shown the usage error
        : ValidationError.isValidationError(error)
        ? Effect.fail(new CliError.CommandFailed({ exitCode: 2 }))
        : error instanceof CliError.UsageError
        ? Effect.zipRight(Console.error(CliError.describe(error)), Effect.fail(new CliError.CommandFailed({ exitCode: 2 })))
        : Effect.zipRight(Console.error(CliError.describe(error)), Effect.fail(new CliError.CommandFailed({ exitCode: 1 })))
    ),
    Effect.provide(NodeContext.layer)
  )
