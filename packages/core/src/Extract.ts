/**
 * Answer extractors and votes for multi-step prompting strategies. Self-consistency samples k
 * answers, extracts each one's final answer with an `Extractor`, and keeps the most common
 * (`majority`) or the most similar to the rest (`similarity`), as light-prompter does. A failed
 * extraction is data (`NotFound`), never a throw, so one bad sample cannot sink a vote.
 *
 * @since 0.1.0
 */
import { Data, Either, Schema } from "effect"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What an extractor found: the answer, or why there is none.
 *
 * @since 0.1.0
 * @category models
 */
export type ExtractResult = Data.TaggedEnum<{
  readonly Extracted: { readonly answer: string }
  readonly NotFound: { readonly reason: string }
}>

const ExtractResult = Data.taggedEnum<ExtractResult>()

/**
 * A named function from a response text to its final answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Extractor {
  readonly name: string
  readonly extract: (text: string) => ExtractResult
}

/**
 * The outcome of a vote. `winner` is an index into the answers (the earliest of the winning
 * group), `votes` how many answers agree with it, `total` how many answers were given (failed
 * extractions included, so `votes / total` is the agreement over all samples).
 *
 * @since 0.1.0
 * @category models
 */
export interface VoteResult {
  readonly winner: number | undefined
  readonly answer: string | undefined
  readonly votes: number
  readonly total: number
}

/**
 * A named way to pick one answer out of several. `undefined` answers (failed extractions) never
 * win; ties go to the earliest answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Vote {
  readonly name: string
  readonly pick: (answers: ReadonlyArray<string | undefined>) => VoteResult
}

/**
 * An extractor or vote that cannot be built: an unknown name, a missing option, an invalid
 * regular expression. Raised when the strategy is read, not when a response is extracted.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExtractorConfigError extends Schema.TaggedError<ExtractorConfigError>()("ExtractorConfigError", {
  message: Schema.String
}) {}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * An extraction that found `answer`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const extracted = (answer: string): ExtractResult => ExtractResult.Extracted({ answer })

/**
 * An extraction that found nothing, and why.
 *
 * @since 0.1.0
 * @category constructors
 */
export const notFound = (reason: string): ExtractResult => ExtractResult.NotFound({ reason })

/**
 * An extractor named `name`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string, extract: Extractor["extract"]): Extractor => ({ name, extract })

/**
 * The answer of a result, or `undefined` when nothing was found: the shape votes take.
 *
 * @since 0.1.0
 * @category utils
 */
export const getAnswer = (result: ExtractResult): string | undefined =>
  result._tag === "Extracted" ? result.answer : undefined

// -----------------------------------------------------------------------------
// built-ins
// -----------------------------------------------------------------------------

// A minus counts only when it does not join two words ("GPT-4" is 4, "x = -4" is -4), and a
// dot counts only when a digit follows, so the period that ends a sentence is left out.
// U+2212 is the minus sign models write in typeset maths.
const numberPattern =
  /(?:(?<![\p{L}\p{N}_])[-\u2212])?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?:(?<![\p{L}\p{N}_])[-\u2212])?(?<!\d)\.\d+/gu

/**
 * The last number in the text, as written but without thousands separators ("1,234" gives
 * "1234", "42.0" stays "42.0", "$3.50" gives "3.50"); a sentence's closing period is not part of
 * it. `majority` compares numbers by value, so "42" and "42.0" still agree.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const lastNumber: Extractor = make("last_number", (text) => {
  const found = text.match(numberPattern)
  const last = found?.[found.length - 1]
  return last === undefined ? notFound("no number in the text") : extracted(last.replaceAll(",", "").replace("\u2212", "-"))
})

const letter = String.raw`(\*\*)?\s*(\()?\s*([A-Ja-j])\s*\)?\s*(?:\*\*)?(?![\p{L}\p{N}])`

// Phrases that name the answer outright win over formatting cues, wherever they stand.
const choicePhrases = [
  new RegExp(String.raw`\banswer\b(?:\s+is)?(?:\s*[:=\-])?\s*(?:(?:option|choice|letter)\s+)?` + letter, "giu"),
  new RegExp(String.raw`\bcorrect\s+(?:answer|option|choice|letter)\s+(?:is\s*)?(?:[:=]\s*)?` + letter, "giu"),
  new RegExp(String.raw`\b(?:option|choice)\s+` + letter + String.raw`\s+is\s+(?:the\s+)?(?:correct|right)`, "giu")
]

// Formatting cues: a bold letter, a parenthesised letter closing a line, a line that is only
// the letter. Capital letters only, so the article "a" is never read as an answer.
const choiceCues = [
  /\*\*\s*\(?([A-J])\)?\.?\s*\*\*/gu,
  /\(([A-J])\)[.!]?[ \t]*$/gmu,
  /^[ \t]*\(?([A-J])[.)]?[ \t]*$/gmu
]

const lastMatch = (patterns: ReadonlyArray<RegExp>, text: string, accept: (match: RegExpExecArray) => string | undefined) => {
  let best: { readonly index: number; readonly answer: string } | undefined
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) {
      const answer = accept(match)
      if (answer !== undefined && (best === undefined || match.index >= best.index)) best = { index: match.index, answer }
    }
  }
  return best?.answer
}

/**
 * A multiple-choice letter (A to J), upper-cased. Answer phrases ("Answer: (B)", "the answer is
 * C", "correct option is D") win, the last one found; failing those, the last formatting cue
 * ("**B**", "(B)" closing a line, a line that is just "B", "B." or "B)"). A lower-case letter
 * counts only in brackets or bold, since "the answer is a ..." is prose.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const multipleChoice: Extractor = make("multiple_choice", (text) => {
  const phrase = lastMatch(choicePhrases, text, (match) => {
    const [, bold, paren, found] = match
    return found === undefined || (found === found.toLowerCase() && bold === undefined && paren === undefined)
      ? undefined
      : found.toUpperCase()
  })
  const answer = phrase ?? lastMatch(choiceCues, text, (match) => match[1])
  return answer === undefined ? notFound("no multiple-choice letter (A-J) in the text") : extracted(answer)
})

const boxStart = /\\(?:boxed|fbox)\s*\{/g

// The index just past the brace that closes the one before `from`, or -1 when unbalanced.
// A backslash escapes the next character, so `\{` and `\}` are content, not braces.
const closingBrace = (text: string, from: number): number => {
  let depth = 1
  for (let i = from; i < text.length; i++) {
    const char = text[i]
    if (char === "\\") i++
    else if (char === "{") depth++
    else if (char === "}" && --depth === 0) return i
  }
  return -1
}

/**
 * The content of the last `\boxed{...}` (or `\fbox{...}`), nested braces kept:
 * `\boxed{\frac{1}{2}}` gives `\frac{1}{2}`. A box inside a box belongs to the outer one; empty
 * or unclosed boxes are skipped.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const boxed: Extractor = make("boxed", (text) => {
  let answer: string | undefined
  let unclosed = false
  boxStart.lastIndex = 0
  for (let start = boxStart.exec(text); start !== null; start = boxStart.exec(text)) {
    const open = start.index + start[0].length
    const close = closingBrace(text, open)
    if (close < 0) {
      unclosed = true
      break
    }
    const content = text.slice(open, close).trim()
    if (content !== "") answer = content
    boxStart.lastIndex = close + 1
  }
  return answer !== undefined
    ? extracted(answer)
    : notFound(unclosed ? "\\boxed{ is never closed" : "no non-empty \\boxed{...} in the text")
})

const answerLabel = /\b(?:final\s+)?answer\s*:/gi

// Peels markdown bold, a closing period and whitespace until none is left, in any order:
// "**42**.", "**42.**" and "42." all give "42".
const cleanAnswer = (raw: string): string => {
  let text = raw.trim()
  for (let previous = ""; previous !== text;) {
    previous = text
    text = text.replace(/^(?:\*\*|__)/, "").replace(/(?:\*\*|__)$/, "").replace(/(?<!\.)\.$/, "").trim()
  }
  return text
}

/**
 * The text after the last "Answer:" or "Final answer:" (any case) to the end of that line,
 * trimmed, without surrounding `**` bold or a closing period. When the label ends its line
 * ("Final Answer:\n\n42") the next non-empty line is the answer.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const afterAnswer: Extractor = make("answer_colon", (text) => {
  const labels = [...text.matchAll(answerLabel)]
  const label = labels[labels.length - 1]
  if (label === undefined) return notFound("no \"Answer:\" in the text")
  const lines = text.slice(label.index + label[0].length).split(/\r?\n/)
  const answer = lines.map(cleanAnswer).find((line) => line !== "")
  return answer === undefined ? notFound("nothing after the last \"Answer:\"") : extracted(answer)
})

/**
 * The built-in extractors by name.
 *
 * @since 0.1.0
 * @category built-ins
 */
export const builtIns: ReadonlyMap<string, Extractor> = new Map(
  [lastNumber, multipleChoice, boxed, afterAnswer].map((extractor) => [extractor.name, extractor] as const)
)

// -----------------------------------------------------------------------------
// configurable extractors
// -----------------------------------------------------------------------------

const fence = /```[ \t]*(?:json)?[ \t]*\r?\n([\s\S]*?)```/gi

// The end of the object opening at `from` (strings and their escapes skipped), or -1.
const objectEnd = (text: string, from: number): number => {
  let depth = 0
  let inString = false
  for (let i = from; i < text.length; i++) {
    const char = text[i]
    if (inString) {
      if (char === "\\") i++
      else if (char === "\"") inString = false
    } else if (char === "\"") inString = true
    else if (char === "{") depth++
    else if (char === "}" && --depth === 0) return i
  }
  return -1
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const parseObject = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

// Fenced blocks first (a model that fences its JSON means that block), then the first
// balanced `{...}` anywhere that parses, so prose with stray braces before it does no harm.
const firstObject = (text: string): Record<string, unknown> | undefined => {
  for (const [, body] of text.matchAll(fence)) {
    const found = body === undefined ? undefined : parseObject(body.trim()) ?? firstObject(body)
    if (found !== undefined) return found
  }
  for (let open = text.indexOf("{"); open >= 0; open = text.indexOf("{", open + 1)) {
    const close = objectEnd(text, open)
    if (close < 0) return undefined
    const found = parseObject(text.slice(open, close + 1))
    if (found !== undefined) return found
  }
  return undefined
}

const fieldOf = (root: unknown, path: string): unknown => {
  if (isObject(root) && Object.hasOwn(root, path)) return root[path]
  let value = root
  for (const key of path.split(".")) {
    if (Array.isArray(value) && /^\d+$/.test(key)) value = value[Number(key)]
    else if (isObject(value) && Object.hasOwn(value, key)) value = value[key]
    else return undefined
  }
  return value
}

/**
 * An extractor named `json_field(<field>)`: the field of the first JSON object in the text
 * (a ```json fence is looked in first). `field` may be a dotted path ("result.value", "items.0").
 * A string is returned as it is, other values as JSON; a missing or `null` field is `NotFound`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const jsonField = (field: string): Extractor =>
  make(`json_field(${field})`, (text) => {
    const root = firstObject(text)
    if (root === undefined) return notFound("no JSON object in the text")
    const value = fieldOf(root, field)
    return value === undefined || value === null
      ? notFound(`no "${field}" in the JSON object`)
      : extracted(typeof value === "string" ? value : JSON.stringify(value))
  })

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/**
 * An extractor named `regex(<pattern>)` (`regex(/<pattern>/<flags>)` with flags) giving the last
 * match: its group 1 when the pattern has groups and group 1 took part, else the whole match.
 * An invalid pattern or flag fails here, when the strategy is read.
 *
 * @since 0.1.0
 * @category constructors
 */
export const regex = (pattern: string, flags: string = ""): Either.Either<Extractor, ExtractorConfigError> => {
  let compiled: RegExp
  try {
    // "g" is what lets matchAll see every match; the caller's flags are kept as given.
    compiled = new RegExp(pattern, flags.includes("g") ? flags : flags + "g")
  } catch (error) {
    return Either.left(new ExtractorConfigError({ message: `invalid regular expression /${pattern}/${flags}: ${messageOf(error)}` }))
  }
  const name = flags === "" ? `regex(${pattern})` : `regex(/${pattern}/${flags})`
  return Either.right(make(name, (text) => {
    const matches = [...text.matchAll(compiled)]
    const last = matches[matches.length - 1]
    return last === undefined
      ? notFound(`no match for /${pattern}/${flags}`)
      : extracted(last[1] ?? last[0])
  }))
}

const regexLiteral = /^\/(.*)\/([a-z]*)$/s

/**
 * `regex` from a pattern or a `/pattern/flags` literal.
 *
 * @since 0.1.0
 * @category constructors
 */
export const regexFrom = (spec: string): Either.Either<Extractor, ExtractorConfigError> => {
  const literal = regexLiteral.exec(spec)
  return literal === null ? regex(spec) : regex(literal[1]!, literal[2]!)
}

// -----------------------------------------------------------------------------
// specs
// -----------------------------------------------------------------------------

const configError = (message: string) => Either.left(new ExtractorConfigError({ message }))

const knownExtractors = [...builtIns.keys(), "json_field", "regex"]

const stringOption = (
  spec: Record<string, unknown>,
  name: string,
  key: string,
  required: boolean
): Either.Either<string | undefined, ExtractorConfigError> => {
  const value = spec[key]
  if (value === undefined && !required) return Either.right(undefined)
  return typeof value === "string" && (value !== "" || !required)
    ? Either.right(value)
    : configError(`extractor "${name}" needs "${key}" as a non-empty string, got ${JSON.stringify(value) ?? "nothing"}`)
}

/**
 * An extractor from how a strategy names one: a built-in name (`"last_number"`,
 * `"multiple_choice"`, `"boxed"`, `"answer_colon"`), `{ "name": "json_field", "field": "x" }`
 * or `{ "name": "regex", "pattern": "...", "flags": "i" }` (the pattern may be a `/.../flags`
 * literal). Unknown names fail with the known ones listed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSpec = (spec: unknown): Either.Either<Extractor, ExtractorConfigError> =>
  Either.gen(function*() {
    const options = typeof spec === "string" ? { name: spec } : spec
    if (!isObject(options) || typeof options.name !== "string") {
      return yield* configError(
        `an extractor is a name or an object with "name", got ${JSON.stringify(spec) ?? String(spec)}`
      )
    }
    const name = options.name.trim()
    const builtIn = builtIns.get(name)
    if (builtIn !== undefined) return builtIn
    if (name === "json_field") return jsonField((yield* stringOption(options, name, "field", true))!)
    if (name === "regex") {
      const pattern = (yield* stringOption(options, name, "pattern", true))!
      const flags = yield* stringOption(options, name, "flags", false)
      return yield* (flags === undefined ? regexFrom(pattern) : regex(pattern, flags))
    }
    return yield* configError(`unknown extractor "${name}"; known extractors: ${knownExtractors.join(", ")}`)
  })

// -----------------------------------------------------------------------------
// votes
// -----------------------------------------------------------------------------

const numeric = /^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:e[-+]?\d+)?$/

/**
 * The key `majority` groups answers by: trimmed, whitespace runs collapsed, lower-cased; a
 * number is keyed by its value, so "42", "42.0" and "4.2e1" are one answer.
 *
 * @since 0.1.0
 * @category votes
 */
export const normalize = (answer: string): string => {
  const text = answer.trim().replace(/\s+/g, " ").toLowerCase()
  if (/\d/.test(text) && numeric.test(text)) {
    const value = Number(text.replaceAll(",", ""))
    if (Number.isFinite(value)) return `#${value}`
  }
  return text
}

const noWinner = (total: number): VoteResult => ({ winner: undefined, answer: undefined, votes: 0, total })

const agreeing = (answers: ReadonlyArray<string | undefined>, index: number): number => {
  const key = normalize(answers[index]!)
  return answers.filter((answer) => answer !== undefined && normalize(answer) === key).length
}

/**
 * The most common answer, compared after `normalize`; the earliest answer of the winning group is
 * the one returned.
 *
 * @since 0.1.0
 * @category votes
 */
export const majority: Vote = {
  name: "majority",
  pick: (answers) => {
    const groups = new Map<string, { first: number; count: number }>()
    answers.forEach((answer, index) => {
      if (answer === undefined) return
      const key = normalize(answer)
      const group = groups.get(key)
      if (group === undefined) groups.set(key, { first: index, count: 1 })
      else group.count++
    })
    let best: { first: number; count: number } | undefined
    // Map keeps insertion order, which is first-appearance order: a strict ">" leaves ties
    // with the earliest group.
    for (const group of groups.values()) if (best === undefined || group.count > best.count) best = group
    return best === undefined
      ? noWinner(answers.length)
      : { winner: best.first, answer: answers[best.first], votes: best.count, total: answers.length }
  }
}

const tokens = (text: string): ReadonlySet<string> => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])

/**
 * Jaccard similarity of the sets of lower-case word tokens: shared over all, from 0 to 1. Two
 * texts without tokens are the same (1).
 *
 * @since 0.1.0
 * @category votes
 */
export const jaccard = (a: string, b: string): number => {
  const left = tokens(a)
  const right = tokens(b)
  if (left.size === 0 && right.size === 0) return 1
  let shared = 0
  for (const token of left) if (right.has(token)) shared++
  return shared / (left.size + right.size - shared)
}

/**
 * The answer with the highest total similarity to all the others (light-prompter's "most
 * similar"): the central answer, for free-form answers that rarely match exactly. `votes` counts
 * the answers equal to the winner after `normalize`.
 *
 * @since 0.1.0
 * @category votes
 */
export const similarity = (
  similarityFn: (a: string, b: string) => number = jaccard,
  name: string = "similarity"
): Vote => ({
  name,
  pick: (answers) => {
    const given = answers.flatMap((answer, index) => answer === undefined ? [] : [{ answer, index }])
    let best: { readonly index: number; readonly score: number } | undefined
    for (const candidate of given) {
      let score = 0
      for (const other of given) if (other !== candidate) score += similarityFn(candidate.answer, other.answer)
      // Sums of the same similarities in another order can differ in the last bit; a tie
      // within that noise still goes to the earlier answer.
      if (best === undefined || score > best.score + 1e-9) best = { index: candidate.index, score }
    }
    return best === undefined
      ? noWinner(answers.length)
      : { winner: best.index, answer: answers[best.index], votes: agreeing(answers, best.index), total: answers.length }
  }
})

/**
 * The votes by name.
 *
 * @since 0.1.0
 * @category votes
 */
export const votes: ReadonlyMap<string, Vote> = new Map([majority, similarity()].map((vote) => [vote.name, vote] as const))

/**
 * A vote from how a strategy names one: `"majority"`, `"similarity"`, or `{ "name": ... }`.
 * Unknown names fail with the known ones listed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const voteFromSpec = (spec: unknown): Either.Either<Vote, ExtractorConfigError> => {
  const name = typeof spec === "string" ? spec : isObject(spec) ? spec.name : undefined
  if (typeof name !== "string") {
    return configError(`a vote is a name or an object with "name", got ${JSON.stringify(spec) ?? String(spec)}`)
  }
  const vote = votes.get(name.trim())
  return vote !== undefined
    ? Either.right(vote)
    : configError(`unknown vote "${name}"; known votes: ${[...votes.keys()].join(", ")}`)
}
