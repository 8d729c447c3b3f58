/**
 * `prompto missing`: the prompts of an experiment with no completed record yet, as a new
 * experiment file (prompto's `prompto_obtain_missing_jsonl`).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Missing } from "@prompto/core"
import { Console, Effect } from "effect"
import * as SharedOptions from "../SharedOptions.js"

/**
 * The flags of `prompto missing`, as prompto's script has them.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  input: Options.text("input").pipe(
    Options.withAlias("i"),
    Options.withDescription("The experiment file (.jsonl) whose prompts should all have run.")
  ),
  output: Options.text("output").pipe(
    Options.withAlias("o"),
    Options.withDescription("The completed file (.jsonl) of a run of it; a last line cut off by a crash counts as not completed.")
  ),
  newFile: Options.text("new").pipe(
    Options.withAlias("n"),
    Options.withDescription(
      "Where the missing prompts go. Opened in append mode, as prompto does: lines already in it are kept, " +
        "so use a new name (or remove the file) to get only this call's prompts."
    )
  ),
  id: Options.text("id").pipe(
    Options.withDefault("id"),
    Options.withDescription("The key holding each record's id (ids compare by value and type: 1 and \"1\" differ). Default: id.")
  ),
  repeats: SharedOptions.number("repeats", { integer: true, atLeast: 1 }).pipe(
    Options.withDefault(1),
    Options.withDescription(
      "The run's --repeats: a repeated line's records are keyed (id, sample); a line with some samples missing is " +
        "written once per missing sample. Default: 1.")
  )
}

/**
 * `prompto missing`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("missing", options, (flags) =>
  Effect.gen(function*() {
    const result = yield* Missing.write({
      input: flags.input,
      output: flags.output,
      newFile: flags.newFile,
      idKey: flags.id,
      repeats: flags.repeats
    })
    for (const warning of result.warnings) yield* Console.error(`warning: ${warning}`)
    yield* Console.log(Missing.format(result, flags.newFile))
  })).pipe(
    Command.withDescription(
      "Append the input prompts whose id has no record in the completed file to a new experiment file " +
        "(prompto_obtain_missing_jsonl). The new file is appended to, not replaced."
    )
  )
