import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import * as PlainLine from "../src/internal/plainLine.js"
import { PromptRecord } from "../src/PromptRecord.js"

const schemaAccepts = (value: unknown): boolean => Either.isRight(Schema.decodeUnknownEither(PromptRecord)(value))

/** JSON-like values of every kind, for the keys a line may have. */
const anyJson = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -3, max: 3 }),
  fc.double({ noNaN: true }),
  fc.string({ maxLength: 4 }),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 3 }),
  fc.array(fc.record({ role: fc.string(), content: fc.string() }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.string(), fc.integer()), { maxKeys: 2 })
)

const keys = ["id", "api", "model_name", "prompt", "parameters", "group", "mode", "safety_filter", "repeats", "sample", "expected_response", "other"]

describe("isPlainLine (the schema's fast path for plain lines)", () => {
  it("accepts nothing the schema refuses, over random lines of every key and kind", () => {
    fc.assert(
      fc.property(fc.record(Object.fromEntries(keys.map((key) => [key, anyJson])), { requiredKeys: [] }), (line) => {
        if (PlainLine.isPlainLine(line)) expect(schemaAccepts(line), JSON.stringify(line)).toBe(true)
      }),
      { numRuns: 5_000 }
    )
  })

  it("accepts the lines most files are made of", () => {
    const lines: ReadonlyArray<unknown> = [
      { id: "a", api: "openai", model_name: "gpt-4o", prompt: "hi" },
      { id: 3, api: "test", model_name: "m", prompt: ["one", "two"], parameters: { temperature: 0 } },
      { api: "quart", model_name: "m", prompt: "hi", group: "g", mode: "chat", safety_filter: "none", expected_response: 4, extra: [1] }
    ]
    for (const line of lines) {
      expect(PlainLine.isPlainLine(line)).toBe(true)
      expect(schemaAccepts(line)).toBe(true)
    }
  })

  it("leaves the rest to the schema", () => {
    const lines: ReadonlyArray<unknown> = [
      { id: "a", api: "openai", model_name: "m", prompt: [{ role: "user", content: "hi" }] },
      { id: "a", api: "openai", model_name: "m", prompt: "hi", repeats: 3 },
      { id: "a", api: "openai", model_name: "m", prompt: "hi", sample: 0 },
      { id: true, api: "openai", model_name: "m", prompt: "hi" },
      { id: "a", api: 1, model_name: "m", prompt: "hi" },
      { id: "a", api: "openai", model_name: "m", prompt: "hi", parameters: [1] },
      { id: "a", api: "openai", model_name: "m", prompt: "hi", group: 2 },
      [1, 2],
      null
    ]
    for (const line of lines) expect(PlainLine.isPlainLine(line), JSON.stringify(line)).toBe(false)
  })
})
