/**
 * prompto's flags as its users type them. Python's argparse accepts single-dash short forms of
 * several letters (`-mq 50`, `-mqj file.json`); this maps them to our long names before
 * `@effect/cli` parses the command line, so prompto scripts run unchanged.
 *
 * @since 0.1.0
 */

/**
 * prompto's multi-letter short flags and the long flag each stands for.
 *
 * @since 0.1.0
 * @category constants
 */
export const multiLetterShortFlags: Readonly<Record<string, string>> = {
  "-mq": "--max-queries",
  "-ma": "--max-attempts",
  "-mqj": "--max-queries-json",
  "-rf": "--rephrase-folder",
  "-rt": "--rephrase-templates",
  "-rp": "--rephrase-parser",
  "-ro": "--remove-original",
  "-or": "--only-rephrase",
  "-jf": "--judge-folder",
  "-jt": "--judge-templates",
  "-jp": "--judge-parser",
  "-sf": "--strategy-folder"
}

/**
 * Rewrites prompto's multi-letter short flags (also in `-mq=50` form) to long flags.
 *
 * @since 0.1.0
 * @category utils
 */
export const normalize = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args.map((arg, i) => {
    // `--cache` takes an optional folder: alone, it means the data folder's cache/
    if (arg === "--cache" && (i + 1 >= args.length || args[i + 1]!.startsWith("-"))) return `--cache=${defaultCacheFolder}`
    const [flag = arg, value] = arg.split(/=(.*)/s, 2)
    const long = multiLetterShortFlags[flag]
    return long === undefined ? arg : value === undefined ? long : `${long}=${value}`
  })

/**
 * What a bare `--cache` stands for: the data folder's `cache/`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCacheFolder = "<data folder>/cache"
