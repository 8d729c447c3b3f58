/**
 * How a failed command reports itself: one clear message (no stack trace), a non-zero exit.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A command failed; its message has already been printed.
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  exitCode: Schema.Number
}) {}

/**
 * Flags that do not go together (for example `--judge` without `--judge-folder`): exit code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String
}) {}

/**
 * The text to print for any error a command can end with.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const tagged = error as { readonly _tag: string; readonly message?: string; readonly file?: string; readonly path?: string }
    switch (tagged._tag) {
      case "ExperimentInvalid":
        return tagged.message ?? "the experiment file is invalid"
      case "ExperimentFileError":
        return `error: ${tagged.file}: ${tagged.message}`
      case "DataFolderError":
      case "OutputError":
      case "JudgeConfigError":
      case "RephraseConfigError":
      case "CacheError":
      case "PricesError":
      case "ReportError":
        return `error: ${tagged.path}: ${tagged.message}`
      case "ExpandError":
        // one line per problem, each naming its file, line and key
        return (tagged.message ?? "").split("\n").map((line) => `error: ${line}`).join("\n")
      case "StrategyConfigError":
        return tagged.path === "" ? `error: ${tagged.message}` : `error: ${tagged.path}: ${tagged.message}`
      default:
        return `error: ${tagged.message ?? tagged._tag}`
    }
  }
  return `error: ${error instanceof Error ? error.message : String(error)}`
}
