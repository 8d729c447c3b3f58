/**
 * The process entry point: `prompto <command> [flags]`.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { main } from "./main.js"

main(process.argv).pipe(
  Effect.catchTag("CommandFailed", (failed) => Effect.sync(() => { process.exitCode = failed.exitCode })),
  NodeRuntime.runMain
)
