/**
 * Decoding one line of a JSONL file against a `Schema`, with problems that name the file, the
 * line and the key: the one way the input, completed and other JSONL files are read.
 *
 * @internal
 */
import { Either, ParseResult, Schema, type SchemaAST } from "effect"
import type { LineProblem } from "../ExperimentFile.js"

/** The longest parser message quoted in a problem: a huge line is never printed whole. */
const maxQuoted = 200

/** A parser message cut to `maxQuoted` characters. */
export const quoted = (text: string): string => text.length > maxQuoted ? `${text.slice(0, maxQuoted)}...` : text

/** What a JSON value is, for a message: `null`, `an array`, `a string`... */
export const kindOf = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`

const issueMessage = (issue: ParseResult.ArrayFormatterIssue): string =>
  issue._tag === "Missing" ? "is required but missing" : issue.message

/**
 * The problems of a record that did not decode: one per top-level key (a union reports one
 * issue per member: the first message for each key is kept), each with its full key path
 * (`steps.0.step`).
 */
export const problemsOf = (file: string, line: number, error: ParseResult.ParseError): ReadonlyArray<LineProblem> => {
  const seen = new Set<string>()
  const problems: Array<LineProblem> = []
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const key = issue.path.length === 0 ? undefined : issue.path.map(String).join(".")
    const top = issue.path.length === 0 ? "" : String(issue.path[0])
    if (seen.has(top)) continue
    seen.add(top)
    problems.push({ file, line, key, message: issueMessage(issue) })
  }
  return problems
}

/**
 * The problems of a line decoded with `Schema.parseJson(schema)`: text that is not JSON and a
 * value that is not an object are said so, as for the input file; anything else is named by key.
 */
const lineProblems = (file: string, line: number, error: ParseResult.ParseError): ReadonlyArray<LineProblem> => {
  const issue = error.issue
  if (issue._tag === "Transformation" && issue.kind === "Encoded") {
    const detail = ParseResult.ArrayFormatter.formatIssueSync(issue.issue)[0]?.message ?? "cannot be parsed"
    return [{ file, line, message: `invalid JSON (${quoted(detail)})` }]
  }
  if (issue._tag === "Transformation" && issue.kind === "Type" && issue.issue._tag === "Type") {
    return [{ file, line, message: `must be a JSON object, got ${kindOf(issue.issue.actual)}` }]
  }
  return problemsOf(file, line, error)
}

/**
 * How a line is decoded: every problem reported, a required key must be present (even one whose
 * schema accepts `undefined`), and keys the schema does not name are kept, in the line's order.
 */
const lineOptions: SchemaAST.ParseOptions = {
  errors: "all",
  exact: true,
  onExcessProperty: "preserve",
  propertyOrder: "original"
}

/**
 * A decoder of JSONL lines for `schema`: the decoded value, or problems naming the file, the
 * line and the key.
 */
export const decoder = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const decode = Schema.decodeUnknownEither(Schema.parseJson(schema), lineOptions)
  return (file: string, line: number, text: string): Either.Either<A, ReadonlyArray<LineProblem>> =>
    Either.mapLeft(decode(text), (error) => lineProblems(file, line, error))
}
