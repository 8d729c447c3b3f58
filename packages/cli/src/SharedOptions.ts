/**
 * Options shared by several commands, with prompto's names, short forms and defaults.
 *
 * @since 0.1.0
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect } from "effect"

/**
 * `--file/-f`: the experiment file (`.jsonl` or `.csv`).
 *
 * @since 0.1.0
 * @category options
 */
export const file = Options.text("file").pipe(
  Options.withAlias("f"),
  Options.withDescription("The experiment file (.jsonl or .csv).")
)

/**
 * `--env-file/-e`: the `.env` file with API keys (default `.env`; missing is a warning).
 *
 * @since 0.1.0
 * @category options
 */
export const envFile = Options.text("env-file").pipe(
  Options.withAlias("e"),
  Options.withDefault(".env"),
  Options.withDescription("The .env file holding API keys and endpoints. Default: .env.")
)

/**
 * `--data-folder/-d`: the data folder holding `input/`, `output/` and `media/` (default `data`).
 *
 * @since 0.1.0
 * @category options
 */
export const dataFolder = Options.text("data-folder").pipe(
  Options.withAlias("d"),
  Options.withDefault("data"),
  Options.withDescription("The data folder (input/, output/ and media/ are created in it). Default: data.")
)

/**
 * `--move-to-input/-m`: move the file into `input/` instead of copying it.
 *
 * @since 0.1.0
 * @category options
 */
export const moveToInput = Options.boolean("move-to-input").pipe(
  Options.withAlias("m"),
  Options.withDescription("Move the experiment file into the data folder's input/ instead of copying it.")
)

/**
 * A number flag whose bad value is reported with the flag's name and the range it needs
 * (`error: --max-queries: must be a number more than 0, got "abc"`); `Options.float` says only
 * `'abc' is not a float`. A bad value is a usage error (exit code 2), found before anything runs.
 *
 * @since 0.1.0
 * @category options
 */
export const number = (
  name: string,
  range: { readonly integer?: boolean; readonly moreThan?: number; readonly atLeast?: number } = {}
): Options.Options<number> => {
  const kind = range.integer === true ? "a whole number" : "a number"
  const bound = range.moreThan !== undefined
    ? ` more than ${range.moreThan}`
    : range.atLeast !== undefined
    ? ` of at least ${range.atLeast}`
    : ""
  return Options.text(name).pipe(
    Options.withPseudoName(range.integer === true ? "integer" : "number"),
    Options.mapEffect((text) => {
      const value = text.trim() === "" ? Number.NaN : Number(text)
      const ok = Number.isFinite(value) &&
        (range.integer !== true || Number.isInteger(value)) &&
        (range.moreThan === undefined || value > range.moreThan) &&
        (range.atLeast === undefined || value >= range.atLeast)
      return ok ? Effect.succeed(value) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(
        `error: --${name}: must be ${kind}${bound}, got ${Number.isNaN(value) ? JSON.stringify(text) : text}`
      )))
    })
  )
}
