/**
 * @prompto/cli: the `prompto` command line, usable from code too.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as CliError from "./CliError.js"
/** @since 0.1.0 */
export * as EnvFile from "./EnvFile.js"
/** @since 0.1.0 */
export * as Main from "./main.js"
/** @since 0.1.0 */
export * as Progress from "./Progress.js"
/** @since 0.1.0 */
export * as PromptoFlags from "./PromptoFlags.js"
