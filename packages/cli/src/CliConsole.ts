/**
 * The console the CLI writes through. `@effect/cli` renders help and usage errors itself, in
 * colour, with a generic line per flag type ("A user-defined piece of text.") and "This setting
 * is optional." under every flag; our descriptions say what a flag is and what its default is,
 * so those lines are dropped. Escape codes are dropped too when the output is not a terminal or
 * `NO_COLOR` is set, so `prompto --help | less` and logs stay readable. An unknown flag gets
 * `error:` and the nearest flag of the command.
 *
 * @since 0.1.0
 */
import { Command, HelpDoc, Usage } from "@effect/cli"
import { Console, Effect } from "effect"

// eslint-disable-next-line no-control-regex
const ansi = /\x1b\[[0-9;]*m/g

/** `@effect/cli`'s generic lines about a flag's type and optionality. */
const generic = [
  /^\s*A user-defined piece of text\.\s*$/,
  /^\s*A user-defined piece of text that is confidential\.\s*$/,
  /^\s*A true or false value\.\s*$/,
  /^\s*A floating point number\.\s*$/,
  /^\s*An integer\.\s*$/,
  /^\s*One of the following: .*$/,
  /^\s*This setting is optional\.\s*$/
]

/**
 * Whether escape codes may be written: a terminal, and no `NO_COLOR` (https://no-color.org).
 *
 * @since 0.1.0
 * @category predicates
 */
export const colour = (stream: { readonly isTTY?: boolean } = process.stdout): boolean =>
  stream.isTTY === true && (process.env.NO_COLOR ?? "") === ""

/**
 * Help text without the generic lines (and the blank line each leaves), and without escape codes
 * unless `keepColour`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const cleanHelp = (text: string, keepColour: boolean): string => {
  const lines = text.split("\n")
  const kept: Array<string> = []
  for (let i = 0; i < lines.length; i++) {
    const plain = lines[i]!.replace(ansi, "")
    if (generic.some((pattern) => pattern.test(plain))) {
      // the paragraph's blank line goes with it
      if (i + 1 < lines.length && lines[i + 1]!.replace(ansi, "").trim() === "") i++
      continue
    }
    kept.push(keepColour ? lines[i]! : plain)
  }
  return kept.join("\n")
}

/**
 * The edit distance of two strings (for flag suggestions).
 *
 * @since 0.1.0
 * @category utils
 */
export const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * The flags a command's usage names (`--file`, `-f`, ...).
 *
 * @since 0.1.0
 * @category utils
 */
export const flagsOf = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>): ReadonlyArray<string> => {
  const usage = HelpDoc.toAnsiText(Usage.getHelp(Command.getUsage(command))).replace(ansi, "")
  return [...new Set(usage.match(/--?[a-z][a-z-]*/g) ?? [])]
}

/**
 * The message for an unknown argument: `error:`, and the nearest known flag when one is close.
 *
 * @since 0.1.0
 * @category formatting
 */
export const unknownArgument = (argument: string, known: ReadonlyArray<string>, command: string): string => {
  const flag = argument.split("=", 1)[0]!
  const nearest = known
    .filter((name) => name.startsWith("--"))
    .map((name) => ({ name, cost: distance(flag, name) }))
    .sort((a, b) => a.cost - b.cost)[0]
  const suggestion = nearest !== undefined && nearest.cost <= Math.max(2, Math.floor(flag.length / 3))
    ? `; did you mean ${nearest.name}?`
    : ""
  return `error: unknown flag ${flag}${suggestion} (prompto ${command} --help lists the flags)`
}

/**
 * Runs `effect` with a console that cleans help and errors as above; `commands` gives each
 * subcommand's flags, for suggestions, and `argv` (without node and the script) names the
 * subcommand being run.
 *
 * @since 0.1.0
 * @category running
 */
export const withCliConsole = (
  commands: ReadonlyMap<string, ReadonlyArray<string>>,
  argv: ReadonlyArray<string>
) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Console.consoleWith(Effect.succeed), (base) => {
    const subcommand = argv.find((arg) => commands.has(arg)) ?? ""
    const rewrite = (text: unknown, keepColour: boolean): unknown => {
      if (typeof text !== "string") return text
      const unknown = /Received unknown argument: '([^']+)'/.exec(text.replace(ansi, ""))
      if (unknown !== null) return unknownArgument(unknown[1]!, commands.get(subcommand) ?? [], subcommand || "<command>")
      return cleanHelp(text, keepColour)
    }
    const console: Console.Console = {
      ...base,
      log: (...args) => base.log(...args.map((arg) => rewrite(arg, colour(process.stdout)))),
      error: (...args) => base.error(...args.map((arg) => rewrite(arg, colour(process.stderr))))
    }
    return Effect.withConsole(effect, console)
  })
