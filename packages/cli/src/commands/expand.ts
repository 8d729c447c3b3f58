/**
 * `prompto expand`: an experiment file from prompt templates, a file of variable rows and,
 * optionally, a list of models (batch-prompt's expansion).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Expand } from "@prompto/core"
import { Console, Effect, Option } from "effect"

/**
 * The flags of `prompto expand`.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  templates: Options.text("templates").pipe(
    Options.withDescription(
      "The templates: a .txt file (one template per line, a literal \\n is a newline) or a .jsonl file " +
        "(objects with \"prompt\", optionally \"api\", \"model_name\", \"parameters\", \"strategy\" and other keys kept). " +
        "{name} is a variable; {{ and }} are literal braces."
    )
  ),
  vars: Options.text("vars").pipe(
    Options.withDescription(
      "The variable rows: a .csv file (a header, then one row per expansion) or a .jsonl file (one object per line)."
    )
  ),
  models: Options.text("models").pipe(
    Options.optional,
    Options.withDescription(
      "A .json list of {\"api\", \"model_name\", \"parameters\"}: every template is expanded for each model. " +
        "Without it, each template must name its own api and model_name."
    )
  ),
  repeats: Options.integer("repeats").pipe(
    Options.optional,
    Options.withDescription("Generate every line this many times, with \"sample\" 0 to N-1.")
  ),
  idPrefix: Options.text("id-prefix").pipe(
    Options.withDefault(""),
    Options.withDescription("Put in front of every generated id (t<template>-v<row>[-m<model>][-s<sample>]). Default: none.")
  ),
  allowUnused: Options.boolean("allow-unused").pipe(
    Options.withDescription("A variable used by no template is not an error (a missing one always is).")
  ),
  output: Options.text("output").pipe(
    Options.withAlias("o"),
    Options.withDescription("The experiment file to write, .jsonl or .csv; replaced only once it is complete.")
  )
}

/**
 * `prompto expand`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("expand", options, (flags) =>
  Effect.gen(function*() {
    const result = yield* Expand.write({
      templates: flags.templates,
      vars: flags.vars,
      models: Option.getOrUndefined(flags.models),
      repeats: Option.getOrUndefined(flags.repeats),
      idPrefix: flags.idPrefix,
      allowUnused: flags.allowUnused,
      output: flags.output
    })
    yield* Console.log(Expand.format(result))
  })).pipe(
    Command.withDescription(
      "Write an experiment file from templates with {placeholders} and a file of variables: each template, " +
        "for each vars row, for each model, for each repeat. Every input is checked before anything is written."
    )
  )
