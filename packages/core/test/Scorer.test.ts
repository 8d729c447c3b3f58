import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Metrics from "../src/Metrics.js"
import type { CompletedRecord } from "../src/PromptRecord.js"
import * as Scorer from "../src/Scorer.js"

const completed = (fields: Record<string, unknown>): CompletedRecord => ({
  id: 1,
  api: "openai",
  model_name: "gpt-4o",
  prompt: "p",
  response: "",
  ...fields
})

/** Runs a scorer synchronously: its score, or "fail" when it throws or fails. */
const scoreOf = (scorer: Scorer.Scorer, record: CompletedRecord): Scorer.Score | "fail" => {
  const result = Effect.runSync(Scorer.run(scorer, record))
  return result.error === undefined ? result.score : "fail"
}

type Case = readonly [response: unknown, fields: Record<string, unknown>, expected: Scorer.Score | "fail"]

const cases: ReadonlyArray<readonly [Scorer.Scorer, ReadonlyArray<Case>]> = [
  [Scorer.match, [
    ["Paris", { expected_response: "Paris" }, true],
    ["Paris.", { expected_response: "Paris" }, false],
    ["paris", { expected_response: "Paris" }, false],
    ["42", { expected_response: 42 }, true],
    [["hi", "Paris"], { expected_response: "Paris" }, true],
    ["Paris", {}, "fail"]
  ]],
  [Scorer.includes, [
    ["The answer is Paris.", { expected_response: "Paris" }, true],
    ["The answer is paris.", { expected_response: "Paris" }, false],
    ["Paris", {}, "fail"]
  ]],
  [Scorer.matchIgnoreCase, [
    ["PARIS", { expected_response: "paris" }, true],
    [" PARIS", { expected_response: "paris" }, false],
    ["x", { expected_response: null }, "fail"]
  ]],
  [Scorer.includesIgnoreCase, [
    ["It is PARIS!", { expected_response: "paris" }, true],
    ["It is Lyon", { expected_response: "paris" }, false],
    ["x", {}, "fail"]
  ]],
  [Scorer.matchNormalized, [
    ["  New\n  YORK ", { expected_response: "new york" }, true],
    ["NewYork", { expected_response: "new york" }, false],
    ["x", {}, "fail"]
  ]],
  [Scorer.includesNormalized, [
    ["I think\tNEW   york is big", { expected_response: " New York " }, true],
    ["I think newyork", { expected_response: "new york" }, false],
    ["x", {}, "fail"]
  ]],
  [Scorer.regex, [
    ["Answer: B", { expected_pattern: "^Answer: [A-D]$" }, true],
    ["answer: b", { expected_pattern: "/^answer: [a-d]$/i" }, true],
    ["Answer: E", { expected_pattern: "^Answer: [A-D]$" }, false],
    ["x", {}, "fail"],
    ["x", { expected_pattern: "(" }, "fail"],
    ["x", { expected_pattern: 3 }, "fail"]
  ]],
  [Scorer.jsonValid, [
    [" {\"a\": [1, 2]}\n", {}, true],
    ["null", {}, true],
    ["```json\n{\"a\": 1}\n```", {}, false],
    ["{a: 1}", {}, false],
    ["", {}, false]
  ]],
  [Scorer.numericMatch, [
    ["So the total is 1,234.5", { expected_response: 1234.5 }, true],
    ["It is -3 degrees, not 5 or -3", { expected_response: "-3" }, true],
    ["from 10-20", { expected_response: 20 }, true],
    ["0.1 + 0.2 = 0.30000000000000004", { expected_response: 0.3 }, true],
    ["The answer is 41", { expected_response: 42 }, false],
    ["no number here", { expected_response: 42 }, false],
    ["42", {}, "fail"],
    ["42", { expected_response: "forty-two" }, "fail"]
  ]]
]

describe("Scorer built-ins", () => {
  for (const [scorer, table] of cases) {
    it(`${scorer.name}`, () => {
      for (const [response, fields, expected] of table) {
        expect([response, fields, scoreOf(scorer, completed({ response, ...fields }))]).toEqual([response, fields, expected])
      }
    })
  }

  it("are all in builtIns under their CLI names", () => {
    expect([...Scorer.builtIns.keys()]).toEqual([
      "match",
      "includes",
      "match_ignore_case",
      "includes_ignore_case",
      "match_normalized",
      "includes_normalized",
      "regex",
      "json_valid",
      "json_schema",
      "numeric_match"
    ])
  })

  it.effect("json_schema validates the response with ajv against the line's schema, a structured-output schema, or a file's", () =>
    Effect.gen(function*() {
      const person = { type: "object", properties: { name: { type: "string" }, age: { type: "integer", minimum: 0 } }, required: ["name"] }
      const score = (record: CompletedRecord, scorer = Scorer.jsonSchema) => Scorer.run(scorer, record)
      expect(yield* score(completed({ response: "{\"name\": \"Ada\", \"age\": 36}", json_schema: person }))).toEqual({ score: true })
      expect(yield* score(completed({ response: "{\"age\": -1}", json_schema: person }))).toEqual({ score: false })
      expect(yield* score(completed({ response: "not json", json_schema: person }))).toEqual({ score: false })
      // OpenAI's response_format and Gemini's response_schema name the schema too
      const openAi = { response_format: { type: "json_schema", json_schema: { name: "p", schema: person } } }
      expect(yield* score(completed({ response: "{\"name\": \"Ada\"}", parameters: openAi }))).toEqual({ score: true })
      expect(yield* score(completed({ response: "{\"name\": 3}", parameters: { generation_config: { response_schema: person } } })))
        .toEqual({ score: false })
      const missing = yield* score(completed({ id: "q9", response: "{}" }))
      expect(missing.score).toBeNull()
      expect(missing.error).toContain("no JSON schema for record \"q9\"")
      // -s json_schema=FILE: one schema for every record
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-schema-"))
      fs.writeFileSync(path.join(dir, "person.json"), JSON.stringify(person))
      const [fromFile] = yield* Scorer.resolve(["json_schema=person.json"], { cwd: dir })
      expect(fromFile!.name).toBe("json_schema")
      expect(yield* score(completed({ response: "{\"name\": \"Ada\"}" }), fromFile as never)).toEqual({ score: true })
      const bad = yield* Effect.either(Scorer.resolve(["json_schema=nope.json"], { cwd: dir }))
      expect(Either.isLeft(bad) && bad.left.message).toContain("json_schema=nope.json: cannot read the schema")
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  it("fail with a message naming the missing key and the record", () => {
    const result = Effect.runSync(Scorer.run(Scorer.match, completed({ id: "q7", response: "x" })))
    expect(result).toEqual({ score: null, error: "no \"expected_response\" in record \"q7\"" })
  })

  it("regexFrom and numericMatchWithin build variants", () => {
    const answer = Scorer.regexFrom("answer_pattern", "answer")
    expect(answer.name).toBe("answer")
    expect(scoreOf(answer, completed({ response: "B", answer_pattern: "^[AB]$" }))).toBe(true)
    const rough = Scorer.numericMatchWithin(0.01)
    expect(scoreOf(rough, completed({ response: "about 99.5", expected_response: 100 }))).toBe(true)
    expect(scoreOf(rough, completed({ response: "about 98", expected_response: 100 }))).toBe(false)
  })
})

const runStage = <E, R>(scorers: ReadonlyArray<Scorer.Scorer<E, R>>, records: ReadonlyArray<CompletedRecord>) =>
  Stream.fromIterable(records).pipe(Scorer.stage(scorers), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

describe("Scorer.stage", () => {
  it.effect("writes each score under its scorer's name, in order", () =>
    Effect.gen(function*() {
      const [record] = yield* runStage([Scorer.match, Scorer.includes], [
        completed({ response: "Paris is the answer", expected_response: "Paris", extra: "kept" })
      ])
      expect(record).toMatchObject({ response: "Paris is the answer", extra: "kept", match: false, includes: true })
      expect(Object.keys(record!).slice(-2)).toEqual(["match", "includes"])
      expect(record).not.toHaveProperty("scorer_errors")
    }))

  it.effect("passes records with an error through untouched", () =>
    Effect.gen(function*() {
      const failed = completed({
        response: "PermanentError - 400",
        expected_response: "x",
        error: { kind: "bad_request", message: "400", attempts: 1 }
      })
      const [record] = yield* runStage([Scorer.match], [failed])
      expect(record).toBe(failed)
    }))

  it.effect("a failing scorer leaves null and its message, and the run goes on", () =>
    Effect.gen(function*() {
      const throws = Scorer.make("throws", () => {
        throw new Error("boom")
      })
      const fails = Scorer.make("fails", () => Effect.fail({ message: "judge unavailable" }))
      const dies = Scorer.make("dies", () => Effect.die("kaput"))
      const records = yield* runStage([throws, Scorer.match, fails, dies], [
        completed({ id: 1, response: "a", expected_response: "a" }),
        completed({ id: 2, response: "b" })
      ])
      expect(records).toHaveLength(2)
      expect(records[0]).toMatchObject({
        response: "a",
        throws: null,
        match: true,
        fails: null,
        dies: null,
        scorer_errors: { throws: "boom", fails: "judge unavailable", dies: "kaput" }
      })
      expect(records[1]).toMatchObject({
        response: "b",
        match: null,
        scorer_errors: { match: "no \"expected_response\" in record 2" }
      })
    }))

  it.effect("runs Effect-returning scorers with their services, keeping record order", () => {
    class Judge extends Context.Tag("test/Judge")<Judge, { readonly grade: (text: string) => Effect.Effect<number> }>() {}
    const judged = Scorer.make("judged", (record) =>
      Effect.flatMap(Judge, (judge) => judge.grade(Scorer.responseText(record))))
    return Effect.gen(function*() {
      const records = yield* runStage(
        [Scorer.jsonValid, judged],
        [1, 2, 3, 4, 5].map((id) => completed({ id, response: "1".repeat(id) }))
      )
      expect(records.map((r) => [r.id, r["json_valid"], r["judged"]])).toEqual([1, 2, 3, 4, 5].map((id) => [id, true, id]))
    }).pipe(Effect.provideService(Judge, {
      // longer responses answer sooner: the output order is still the input order
      grade: (text) => Effect.as(Effect.repeatN(Effect.yieldNow(), 10 - text.length), text.length)
    }))
  })

  it.effect("records every score into Metrics when the layer is provided", () =>
    Effect.gen(function*() {
      const throws = Scorer.make("throws", () => {
        throw new Error("boom")
      })
      yield* runStage([Scorer.match, throws], [
        completed({ response: "a", expected_response: "a", group: "g" }),
        completed({ response: "b", expected_response: "a", model_name: "other" }),
        completed({ response: "x", expected_response: "a", error: { kind: "timeout", message: "t", attempts: 1 } })
      ])
      const { rows } = yield* Effect.flatMap(Metrics.Metrics, (metrics) => metrics.summary)
      expect(rows.map((row) => [row.scorer, row.by, row.model_name ?? row.group ?? "", row.count, row.unscored, row.mean]))
        .toEqual([
          ["match", "all", "", 2, 0, 0.5],
          ["match", "model", "gpt-4o", 1, 0, 1],
          ["match", "model", "other", 1, 0, 0],
          ["match", "group", "g", 1, 0, 1],
          ["throws", "all", "", 0, 2, null],
          ["throws", "model", "gpt-4o", 0, 1, null],
          ["throws", "model", "other", 0, 1, null],
          ["throws", "group", "g", 0, 1, null]
        ])
    }).pipe(Effect.provide(Metrics.layer)))
})

describe("Scorer.resolve", () => {
  it.effect("resolves built-ins, trimmed and de-duplicated in order", () =>
    Effect.gen(function*() {
      const scorers = yield* Scorer.resolve([" includes", "match", "includes ", "match", "json_valid"])
      expect(scorers.map((s) => s.name)).toEqual(["includes", "match", "json_valid"])
      expect(scorers[1]).toBe(Scorer.match)
    }))

  it.effect("an unknown name fails listing the built-ins and the module form", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Scorer.resolve(["match", "exact"]))
      expect(error._tag).toBe("ScorerNotFound")
      expect(error.name).toBe("exact")
      expect(error.available).toEqual([...Scorer.builtIns.keys()])
      expect(error.message).toContain("unknown scorer \"exact\"")
      expect(error.message).toContain("match, includes, match_ignore_case")
      expect(error.message).toContain("path/to/module.ts:exportName")
    }))

  describe("custom modules", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-scorer-"))
    fs.writeFileSync(
      path.join(dir, "scorers.ts"),
      [
        "type Rec = { readonly response: unknown }",
        "export const shortAnswer = (record: Rec): boolean => String(record.response).length < 10",
        "export const wordCount = {",
        "  name: \"word_count\",",
        "  score: (record: Rec): number => String(record.response).split(/\\s+/).length",
        "}",
        "export const notAScorer = 3"
      ].join("\n")
    )

    it.effect("loads a function export and a {name, score} export from a .ts file", () =>
      Effect.gen(function*() {
        const scorers = yield* Scorer.resolve(["scorers.ts:shortAnswer", ` ${path.join(dir, "scorers.ts")}:wordCount `, "match"], {
          cwd: dir
        })
        expect(scorers.map((s) => s.name)).toEqual(["shortAnswer", "word_count", "match"])
        const [record] = yield* runStage(scorers, [completed({ response: "one two three", expected_response: "x" })])
        expect(record).toMatchObject({ shortAnswer: false, word_count: 3, match: false })
      }))

    it.effect("a missing export fails naming the path, the export and the exports there are", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Scorer.resolve(["scorers.ts:longAnswer"], { cwd: dir }))
        expect(error._tag).toBe("ScorerNotFound")
        expect(error.message).toContain(path.join(dir, "scorers.ts"))
        expect(error.message).toContain("no export \"longAnswer\"")
        expect(error.message).toContain("shortAnswer, wordCount, notAScorer")
      }))

    it.effect("an export that is not a scorer, or a module that cannot load, fails clearly", () =>
      Effect.gen(function*() {
        const notScorer = yield* Effect.flip(Scorer.resolve(["scorers.ts:notAScorer"], { cwd: dir }))
        expect(notScorer.message).toContain("export \"notAScorer\"")
        expect(notScorer.message).toContain("is not a scorer")
        const missing = yield* Effect.either(Scorer.resolve(["nowhere.ts:score"], { cwd: dir }))
        expect(Either.isLeft(missing) && missing.left.message).toContain(
          `cannot load scorer module "${path.join(dir, "nowhere.ts")}"`
        )
      }))
  })
})

describe("scorers and strategies", () => {
  it("compare a strategy's extracted answer when there is one", () => {
    const base = { id: 1, api: "test", model_name: "m", prompt: "p", expected_response: "42" }
    expect(Scorer.responseText({ ...base, response: "The answer is 42.", answer: "42" })).toBe("42")
    expect(Scorer.responseText({ ...base, response: "no idea", answer: null })).toBe("")
    expect(Scorer.match.score({ ...base, response: "The answer is 42.", answer: "42" })).toBe(true)
    expect(Scorer.match.score({ ...base, response: "42", answer: null })).toBe(false)
  })
})
