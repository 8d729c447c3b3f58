/**
 * Options shared by several commands, with prompto's names, short forms and defaults.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"

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
  Options.withDescription("The .env file holding API keys and endpoints.")
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
  Options.withDescription("The data folder (input/, output/ and media/ are created in it).")
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
