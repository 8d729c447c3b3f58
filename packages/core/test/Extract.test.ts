import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Extract from "../src/Extract.js"

/** The answer an extractor gives, or "NotFound". */
const answerOf = (extractor: Extract.Extractor, text: string): string => {
  const result = extractor.extract(text)
  return result._tag === "Extracted" ? result.answer : "NotFound"
}

const right = <A>(either: Either.Either<A, Extract.ExtractorConfigError>): A => {
  if (Either.isLeft(either)) throw new Error(`expected Right, got ${either.left.message}`)
  return either.right
}

const left = <A>(either: Either.Either<A, Extract.ExtractorConfigError>): Extract.ExtractorConfigError => {
  if (Either.isRight(either)) throw new Error("expected Left")
  return either.left
}

type Case = readonly [text: string, expected: string]

const cases: ReadonlyArray<readonly [Extract.Extractor, ReadonlyArray<Case>]> = [
  [Extract.lastNumber, [
    ["The answer is 42.", "42"],
    ["First 3, then 7, finally 12", "12"],
    ["It drops to -5 degrees", "-5"],
    ["x = \u22125", "-5"],
    ["Total: 1,234,567 people.", "1234567"],
    ["It costs $3.50.", "3.50"],
    ["about 42.0", "42.0"],
    ["pi is roughly 3.14159", "3.14159"],
    ["only .5 left", ".5"],
    ["GPT-4 says", "4"],
    ["pages 3-5", "5"],
    ["no digits here", "NotFound"],
    ["", "NotFound"]
  ]],
  [Extract.multipleChoice, [
    ["Answer: (B)", "B"],
    ["I think the answer is C.", "C"],
    ["The correct option is D", "D"],
    ["Option E is correct.", "E"],
    ["Let me think.\n**B**", "B"],
    ["After weighing it all I'd go with (A)", "A"],
    ["Reasoning...\nB.", "B"],
    ["Reasoning...\nC)", "C"],
    ["Reasoning...\n  J  ", "J"],
    ["answer: (b)", "B"],
    ["First I thought Answer: A, but on reflection the answer is D", "D"],
    ["Answer: C\n\n(A) is wrong because ... (B) too.\n**D** was tempting", "C"],
    ["The answer is a bit unclear; **C** it is", "C"],
    ["(A) cats (B) dogs (C) birds", "NotFound"],
    ["I cannot decide.", "NotFound"],
    ["The answer is K", "NotFound"]
  ]],
  [Extract.boxed, [
    ["So \\boxed{42}.", "42"],
    ["\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"],
    ["First \\boxed{1}, then \\boxed{2}", "2"],
    ["\\fbox{x^{2}}", "x^{2}"],
    ["\\boxed{ \\{1, 2\\} }", "\\{1, 2\\}"],
    ["\\boxed{\\boxed{7} + 1}", "\\boxed{7} + 1"],
    ["\\boxed{3} and \\boxed{}", "3"],
    ["no box here: 42", "NotFound"],
    ["\\boxed{}", "NotFound"],
    ["\\boxed{\\frac{1}{2}", "NotFound"]
  ]],
  [Extract.afterAnswer, [
    ["Reasoning.\nAnswer: Paris", "Paris"],
    ["Final answer: 42.", "42"],
    ["**Answer:** Paris\nBecause it is the capital.", "Paris"],
    ["ANSWER: **New York**.", "New York"],
    ["Answer: 1\nHmm, no.\nFinal Answer: 2", "2"],
    ["Final Answer:\n\n  3.14  ", "3.14"],
    ["It is Paris.", "NotFound"],
    ["Answer:   \n\n", "NotFound"],
    ["My answers: many", "NotFound"]
  ]]
]

describe("Extract", () => {
  describe("built-ins", () => {
    for (const [extractor, list] of cases) {
      for (const [text, expected] of list) {
        it(`${extractor.name}: ${JSON.stringify(text)} -> ${expected}`, () => {
          expect(answerOf(extractor, text)).toBe(expected)
        })
      }
    }

    it("gives NotFound with a reason, never a throw", () => {
      const result = Extract.lastNumber.extract("nothing")
      expect(result._tag).toBe("NotFound")
      expect(result).toEqual(Extract.notFound("no number in the text"))
      expect(Extract.getAnswer(result)).toBeUndefined()
      expect(Extract.getAnswer(Extract.extracted("7"))).toBe("7")
    })

    it("lists the built-ins by name", () => {
      expect([...Extract.builtIns.keys()]).toEqual(["last_number", "multiple_choice", "boxed", "answer_colon"])
    })
  })

  describe("jsonField", () => {
    it("reads a top-level field from JSON inside prose", () => {
      const extractor = Extract.jsonField("answer")
      expect(extractor.name).toBe("json_field(answer)")
      expect(answerOf(extractor, "Sure! {\"answer\": \"Paris\", \"confidence\": 0.9} Hope that helps.")).toBe("Paris")
    })

    it("follows dotted paths and stringifies non-strings", () => {
      const text = "{\"result\": {\"value\": 42, \"items\": [\"a\", {\"b\": true}], \"tags\": [\"x\"]}}"
      expect(answerOf(Extract.jsonField("result.value"), text)).toBe("42")
      expect(answerOf(Extract.jsonField("result.items.1.b"), text)).toBe("true")
      expect(answerOf(Extract.jsonField("result.tags"), text)).toBe("[\"x\"]")
      expect(answerOf(Extract.jsonField("result"), text)).toBe(
        "{\"value\":42,\"items\":[\"a\",{\"b\":true}],\"tags\":[\"x\"]}"
      )
    })

    it("prefers a ```json fence and skips braces that are not JSON", () => {
      const text = "Using {x} as a placeholder.\n```json\n{\"answer\": \"B\", \"note\": \"a } in a string\"}\n```\n{\"answer\": \"C\"}"
      expect(answerOf(Extract.jsonField("answer"), text)).toBe("B")
      expect(answerOf(Extract.jsonField("note"), text)).toBe("a } in a string")
      expect(answerOf(Extract.jsonField("answer"), "set {x} then {\"answer\": 3}")).toBe("3")
    })

    it("gives NotFound without JSON, without the field, or with null", () => {
      expect(Extract.jsonField("answer").extract("no json")).toEqual(Extract.notFound("no JSON object in the text"))
      expect(Extract.jsonField("answer").extract("{\"other\": 1}")).toEqual(
        Extract.notFound("no \"answer\" in the JSON object")
      )
      expect(answerOf(Extract.jsonField("a.b"), "{\"a\": {\"c\": 1}}")).toBe("NotFound")
      expect(answerOf(Extract.jsonField("answer"), "{\"answer\": null}")).toBe("NotFound")
      expect(answerOf(Extract.jsonField("answer"), "{\"answer\": \"x\"")).toBe("NotFound")
    })
  })

  describe("regex", () => {
    it("takes group 1 of the last match", () => {
      const extractor = right(Extract.regex("answer=(\\w+)"))
      expect(extractor.name).toBe("regex(answer=(\\w+))")
      expect(answerOf(extractor, "answer=cat ... answer=dog")).toBe("dog")
    })

    it("takes the whole last match without groups", () => {
      expect(answerOf(right(Extract.regex("\\d+")), "a 1 b 22 c")).toBe("22")
    })

    it("honours flags, given apart or as a /pattern/flags literal", () => {
      expect(answerOf(right(Extract.regex("answer: (\\w+)", "i")), "ANSWER: Yes")).toBe("Yes")
      const literal = right(Extract.regexFrom("/answer: (\\w+)/i"))
      expect(literal.name).toBe("regex(/answer: (\\w+)/i)")
      expect(answerOf(literal, "ANSWER: Yes")).toBe("Yes")
      expect(answerOf(right(Extract.regexFrom("answer: (\\w+)")), "ANSWER: Yes")).toBe("NotFound")
    })

    it("gives NotFound when nothing matches", () => {
      expect(answerOf(right(Extract.regex("\\d+")), "none")).toBe("NotFound")
    })

    it("fails when built with an invalid pattern or flag", () => {
      const error = left(Extract.regex("(unclosed"))
      expect(error._tag).toBe("ExtractorConfigError")
      expect(error.message).toContain("invalid regular expression /(unclosed/")
      expect(left(Extract.regex("a", "q"))._tag).toBe("ExtractorConfigError")
      expect(left(Extract.regexFrom("/[/"))._tag).toBe("ExtractorConfigError")
    })
  })

  describe("fromSpec", () => {
    it("builds every built-in from its name, bare or as an object", () => {
      for (const [name, extractor] of Extract.builtIns) {
        expect(right(Extract.fromSpec(name))).toBe(extractor)
        expect(right(Extract.fromSpec({ name }))).toBe(extractor)
      }
    })

    it("builds json_field and regex from objects", () => {
      const json = right(Extract.fromSpec({ name: "json_field", field: "result.value" }))
      expect(json.name).toBe("json_field(result.value)")
      expect(answerOf(json, "{\"result\": {\"value\": \"ok\"}}")).toBe("ok")
      const regex = right(Extract.fromSpec({ name: "regex", pattern: "final: (\\w+)", flags: "i" }))
      expect(answerOf(regex, "FINAL: yes")).toBe("yes")
      const literal = right(Extract.fromSpec({ name: "regex", pattern: "/final: (\\w+)/i" }))
      expect(answerOf(literal, "FINAL: yes")).toBe("yes")
    })

    it("fails on an unknown name, listing the known ones", () => {
      const error = left(Extract.fromSpec("first_number"))
      expect(error.message).toBe(
        "unknown extractor \"first_number\"; known extractors: last_number, multiple_choice, boxed, answer_colon, json_field, regex"
      )
      expect(left(Extract.fromSpec({ name: "nope" })).message).toContain("known extractors")
    })

    it("fails on malformed specs", () => {
      expect(left(Extract.fromSpec(42)).message).toContain("a name or an object with \"name\"")
      expect(left(Extract.fromSpec({ field: "x" })).message).toContain("a name or an object with \"name\"")
      expect(left(Extract.fromSpec({ name: "json_field" })).message).toContain("needs \"field\"")
      expect(left(Extract.fromSpec({ name: "regex", pattern: "" })).message).toContain("needs \"pattern\"")
      expect(left(Extract.fromSpec({ name: "regex", pattern: "a", flags: 1 })).message).toContain("needs \"flags\"")
      expect(left(Extract.fromSpec({ name: "regex", pattern: "(" })).message).toContain("invalid regular expression")
    })
  })

  describe("majority", () => {
    it("picks the most common answer after normalization", () => {
      expect(Extract.majority.pick(["Paris", " paris ", "Lyon", "PARIS"])).toEqual({
        winner: 0,
        answer: "Paris",
        votes: 3,
        total: 4
      })
      expect(Extract.majority.pick(["New  York", "new york", "Boston"]).votes).toBe(2)
    })

    it("compares numbers by value", () => {
      expect(Extract.majority.pick(["7", "42", "42.0", "4.2e1", "7"])).toEqual({
        winner: 1,
        answer: "42",
        votes: 3,
        total: 5
      })
      expect(Extract.majority.pick(["1,234", "1234", "99"]).votes).toBe(2)
      expect(Extract.normalize("42.0")).toBe(Extract.normalize("42"))
      expect(Extract.normalize("4 2")).not.toBe(Extract.normalize("42"))
    })

    it("gives ties to the earliest answer", () => {
      expect(Extract.majority.pick(["B", "A", "A", "B"])).toEqual({ winner: 0, answer: "B", votes: 2, total: 4 })
      expect(Extract.majority.pick(["C", "A", "B"]).answer).toBe("C")
    })

    it("never lets a failed extraction win", () => {
      expect(Extract.majority.pick([undefined, undefined, "A", undefined])).toEqual({
        winner: 2,
        answer: "A",
        votes: 1,
        total: 4
      })
      expect(Extract.majority.pick([undefined, undefined])).toEqual({
        winner: undefined,
        answer: undefined,
        votes: 0,
        total: 2
      })
      expect(Extract.majority.pick([])).toEqual({ winner: undefined, answer: undefined, votes: 0, total: 0 })
    })
  })

  describe("similarity", () => {
    it("measures token-set Jaccard", () => {
      expect(Extract.jaccard("The cat sat", "the CAT sat!")).toBe(1)
      expect(Extract.jaccard("a b", "b c")).toBeCloseTo(1 / 3)
      expect(Extract.jaccard("a", "b")).toBe(0)
      expect(Extract.jaccard("", "")).toBe(1)
      expect(Extract.jaccard("", "a")).toBe(0)
    })

    it("picks the answer closest to all the others", () => {
      // Totals: 1.0, 0, 1.27, 0.93: the third shares most words with the rest.
      const answers = ["a cat sat on a mat", "dogs bark loudly", "the cat sat on the mat", "the cat sat"]
      const result = Extract.similarity().pick(answers)
      expect(result.winner).toBe(2)
      expect(result.answer).toBe("the cat sat on the mat")
      expect(result.total).toBe(4)
      expect(result.votes).toBe(1)
    })

    it("skips failed extractions, breaks ties early, and takes a custom similarity", () => {
      expect(Extract.similarity().pick([undefined, "x y", "x y", undefined])).toEqual({
        winner: 1,
        answer: "x y",
        votes: 2,
        total: 4
      })
      expect(Extract.similarity().pick([undefined]).winner).toBeUndefined()
      const byLength = Extract.similarity((a, b) => -Math.abs(a.length - b.length), "length")
      expect(byLength.name).toBe("length")
      expect(byLength.pick(["a", "aaaaaaaaaa", "aaaa", "aaaaaa"]).answer).toBe("aaaa")
    })
  })

  describe("voteFromSpec", () => {
    it("builds votes by name, bare or as an object", () => {
      expect(right(Extract.voteFromSpec("majority"))).toBe(Extract.majority)
      expect(right(Extract.voteFromSpec({ name: "similarity" })).name).toBe("similarity")
      expect([...Extract.votes.keys()]).toEqual(["majority", "similarity"])
    })

    it("fails on an unknown name, listing the known ones", () => {
      expect(left(Extract.voteFromSpec("plurality")).message).toBe(
        "unknown vote \"plurality\"; known votes: majority, similarity"
      )
      expect(left(Extract.voteFromSpec(3))._tag).toBe("ExtractorConfigError")
    })
  })
})
