/**
 * The placeholder language of `prompto expand`: `{name}` is a variable, `{{` and `}}` are
 * literal braces, and every other brace is a mistake to report (not text to keep, as the judge
 * and rephrase templates do: a template made for expansion that holds `{ name }` or `{name`
 * almost certainly meant a variable, and silently sending the braces would spoil a whole run).
 *
 * A template is parsed once into pieces; filling it is then a join, with no searching, so a
 * million rows cost a million joins.
 *
 * @internal
 */
import { Either } from "effect"

/** A variable name: a letter or underscore, then letters, digits and underscores. */
const namePattern = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The longest excerpt of a template quoted in a problem. */
const maxExcerpt = 24

/** A `{name}` in a template. */
export interface Placeholder {
  readonly name: string
}

/** A parsed template string: literal text and placeholders, in order. */
export type Pieces = ReadonlyArray<string | Placeholder>

/** A brace that is neither a placeholder nor an escaped literal. */
export interface BraceProblem {
  /** 1-based position of the brace in the string. */
  readonly column: number
  /** The text at fault (`{1}`, `{name`, `}`), cut to a short excerpt. */
  readonly text: string
  readonly kind: "unclosed" | "not-a-name" | "unopened"
}

const excerpt = (text: string): string => text.length > maxExcerpt ? `${text.slice(0, maxExcerpt)}...` : text

/**
 * Parses a template string into pieces, or lists every brace at fault. Scanning goes on after a
 * problem so that one pass reports all of a line's mistakes.
 */
export const parse = (text: string): Either.Either<Pieces, ReadonlyArray<BraceProblem>> => {
  const pieces: Array<string | Placeholder> = []
  const problems: Array<BraceProblem> = []
  let literal = ""
  let from = 0
  let at = 0
  const flush = (to: number) => {
    literal += text.slice(from, to)
  }
  while (at < text.length) {
    const char = text[at]
    if (char !== "{" && char !== "}") {
      at++
      continue
    }
    flush(at)
    if (text[at + 1] === char) {
      // `{{` or `}}`: one literal brace
      literal += char
      at += 2
      from = at
      continue
    }
    if (char === "}") {
      problems.push({ column: at + 1, text: "}", kind: "unopened" })
      at++
      from = at
      continue
    }
    const close = text.indexOf("}", at + 1)
    const nextOpen = text.indexOf("{", at + 1)
    if (close === -1 || (nextOpen !== -1 && nextOpen < close)) {
      problems.push({ column: at + 1, text: excerpt(text.slice(at, nextOpen === -1 ? text.length : nextOpen)), kind: "unclosed" })
      at++
      from = at
      continue
    }
    const name = text.slice(at + 1, close)
    if (namePattern.test(name)) {
      if (literal !== "") pieces.push(literal)
      literal = ""
      pieces.push({ name })
    } else {
      problems.push({ column: at + 1, text: excerpt(text.slice(at, close + 1)), kind: "not-a-name" })
    }
    at = close + 1
    from = at
  }
  flush(text.length)
  if (literal !== "") pieces.push(literal)
  return problems.length > 0 ? Either.left(problems) : Either.right(pieces)
}

/**
 * What is wrong with a brace, in words; `where` names the position (`column 7`, `character 7
 * of the string`).
 */
export const describe = (problem: BraceProblem, where: string): string => {
  switch (problem.kind) {
    case "unclosed":
      return `unclosed "{" at ${where} (${JSON.stringify(problem.text)}): close it with "}", or write "{{" for a literal brace`
    case "not-a-name":
      return `${JSON.stringify(problem.text)} at ${where} is not a placeholder: a name is a letter or "_" ` +
        `followed by letters, digits and "_" (write "{{" and "}}" for literal braces)`
    case "unopened":
      return `"}" at ${where} has no "{" before it (write "}}" for a literal brace)`
  }
}

/**
 * A template value (a string, or any JSON value holding strings, such as a chat history) with
 * every string parsed: strings without placeholders are kept as they are.
 */
export type Compiled =
  | { readonly _tag: "Value"; readonly value: unknown }
  | { readonly _tag: "Text"; readonly pieces: Pieces }
  | { readonly _tag: "List"; readonly items: ReadonlyArray<Compiled> }
  | { readonly _tag: "Object"; readonly entries: ReadonlyArray<readonly [string, Compiled]> }

/** A brace problem in one string of a template value, with the key path to that string. */
export interface PathProblem {
  /** The keys from the value's root to the string (`["1", "content"]`); empty for a string. */
  readonly path: ReadonlyArray<string>
  readonly problem: BraceProblem
}

/** Parses every string of a JSON value (object keys are not templates and are kept). */
export const compile = (value: unknown): Either.Either<Compiled, ReadonlyArray<PathProblem>> => {
  const problems: Array<PathProblem> = []
  const walk = (item: unknown, path: ReadonlyArray<string>): Compiled => {
    if (typeof item === "string") {
      return Either.match(parse(item), {
        onLeft: (found) => {
          for (const problem of found) problems.push({ path, problem })
          return { _tag: "Value", value: item }
        },
        onRight: (pieces): Compiled =>
          pieces.every((piece) => typeof piece === "string")
            ? { _tag: "Value", value: pieces.join("") }
            : { _tag: "Text", pieces }
      })
    }
    if (Array.isArray(item)) return { _tag: "List", items: item.map((child, i) => walk(child, [...path, String(i)])) }
    if (typeof item === "object" && item !== null) {
      return {
        _tag: "Object",
        entries: Object.entries(item).map(([key, child]) => [key, walk(child, [...path, key])] as const)
      }
    }
    return { _tag: "Value", value: item }
  }
  const compiled = walk(value, [])
  return problems.length > 0 ? Either.left(problems) : Either.right(compiled)
}

/** The placeholder names a compiled value uses, each once, in order of first use. */
export const names = (compiled: Compiled): ReadonlyArray<string> => {
  const found = new Set<string>()
  const walk = (node: Compiled): void => {
    switch (node._tag) {
      case "Text":
        for (const piece of node.pieces) if (typeof piece !== "string") found.add(piece.name)
        return
      case "List":
        return node.items.forEach(walk)
      case "Object":
        return node.entries.forEach(([, child]) => walk(child))
      case "Value":
        return
    }
  }
  walk(compiled)
  return [...found]
}

/**
 * Fills a compiled value. `text` gives each placeholder's text; the caller has checked that
 * every name has one. A substituted text is never parsed again, so a value holding braces
 * stays as it is.
 */
export const fill = (compiled: Compiled, text: (name: string) => string): unknown => {
  switch (compiled._tag) {
    case "Value":
      return compiled.value
    case "Text": {
      let out = ""
      for (const piece of compiled.pieces) out += typeof piece === "string" ? piece : text(piece.name)
      return out
    }
    case "List":
      return compiled.items.map((item) => fill(item, text))
    case "Object": {
      const out: Record<string, unknown> = {}
      for (const [key, child] of compiled.entries) {
        // a JSON key "__proto__" is data, as `JSON.parse` made it, not the prototype
        Object.defineProperty(out, key, { value: fill(child, text), enumerable: true, writable: true, configurable: true })
      }
      return out
    }
  }
}
