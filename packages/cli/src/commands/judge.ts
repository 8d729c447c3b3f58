/**
 * `prompto judge`: make a judge experiment file from a completed file (prompto's
 * `prompto_create_judge_file`). To judge responses while a run goes, use `prompto run --judge`.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Judge } from "@prompto/core"
import { Console, Effect } from "effect"
import { commaList } from "./run.js"

/**
 * The flags of `prompto judge`, as prompto's script has them.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  inputFile: Options.text("input-file").pipe(
    Options.withAlias("i"),
    Options.withDescription("A completed file (.jsonl) whose responses are to be judged.")
  ),
  judgeFolder: Options.text("judge-folder").pipe(
    Options.withAlias("jf"),
    Options.withDescription("The judge folder: settings.json and template files.")
  ),
  judgeTemplates: Options.text("judge-templates").pipe(
    Options.withAlias("jt"),
    Options.withDefault("template.txt"),
    Options.withDescription("Template files in the judge folder (comma list). Default: template.txt.")
  ),
  judge: Options.text("judge").pipe(
    Options.withAlias("j"),
    Options.withDescription("Judges from settings.json (comma list).")
  ),
  outputFolder: Options.text("output-folder").pipe(
    Options.withAlias("o"),
    Options.withDefault("./"),
    Options.withDescription("Where judge-<name>.jsonl is written. Default: ./.")
  )
}

/**
 * `prompto judge`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("judge", options, (flags) =>
  Effect.gen(function*() {
    const made = yield* Judge.createFile({
      inputFile: flags.inputFile,
      folder: flags.judgeFolder,
      judges: commaList(flags.judge),
      templates: commaList(flags.judgeTemplates),
      outputFolder: flags.outputFolder
    })
    yield* Console.log(
      `Wrote ${made.records} judge prompts to ${made.path}` +
        (made.skipped > 0 ? ` (${made.skipped} records holding errors were not judged)` : "")
    )
    yield* Console.log(`Run them with: prompto run -f ${made.path}`)
  })).pipe(Command.withDescription("Make a judge experiment file from a completed file (prompto_create_judge_file)."))
