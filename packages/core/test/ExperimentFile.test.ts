import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, type Scope, Stream } from "effect"
import * as path from "node:path"
import * as ExperimentFile from "../src/ExperimentFile.js"
import type { RawEntry } from "../src/ExperimentFile.js"

/** Writes `content` to `name` in a fresh temporary folder (removed with the scope) and returns its path. */
const tempFile = (name: string, content: string | Uint8Array) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "prompto-experiment-file-" })
    const file = path.join(dir, name)
    if (typeof content === "string") yield* fs.writeFileString(file, content)
    else yield* fs.writeFile(file, content)
    return file
  })

const readAll = (file: string) => ExperimentFile.read(file).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** Runs a test body that writes temporary files and reads them with the Node file system. */
const withFiles = <A, E>(body: Effect.Effect<A, E, FileSystem.FileSystem | Scope.Scope>) =>
  body.pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))

const entry = (value: unknown, line = 1): RawEntry => ({ line, ordinal: 0, value, problems: [] })

const decodeValue = (value: unknown, line = 1) => ExperimentFile.decode("exp.jsonl", entry(value, line))

const problemsOf = (decoded: ExperimentFile.Decoded) => {
  if (decoded._tag !== "Invalid") throw new Error(`expected Invalid, got ${JSON.stringify(decoded)}`)
  return decoded.problems
}

const validOf = (decoded: ExperimentFile.Decoded) => {
  if (decoded._tag !== "Valid") throw new Error(`expected Valid, got ${JSON.stringify(decoded)}`)
  return decoded
}

describe("ExperimentFile", () => {
  describe("formatOf and read", () => {
    it.effect("knows .jsonl and .csv and rejects other extensions with ExperimentFileError", () =>
      Effect.gen(function*() {
        expect(ExperimentFile.formatOf("data/input/a.jsonl")).toEqual(Either.right("jsonl"))
        expect(ExperimentFile.formatOf("a.csv")).toEqual(Either.right("csv"))
        for (const file of ["a.json", "a.txt", "a.jsonl.bak", "jsonl"]) {
          const error = yield* Effect.flip(readAll(file))
          expect(error).toBeInstanceOf(ExperimentFile.ExperimentFileError)
          expect(error._tag).toBe("ExperimentFileError")
          expect(error.file).toBe(file)
          expect(error.message).toBe("an experiment file must end in .jsonl or .csv")
        }
      }).pipe(withFiles))

    it.effect("a missing file fails with ExperimentFileError, not a defect", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "prompto-experiment-file-" })
        for (const name of ["missing.jsonl", "missing.csv"]) {
          const file = path.join(dir, name)
          // Effect.flip only sees failures: a defect would fail the test
          const error = yield* Effect.flip(readAll(file))
          expect(error).toBeInstanceOf(ExperimentFile.ExperimentFileError)
          expect(error.file).toBe(file)
          expect(error.message).toBe("cannot read the file: no such file or folder")
        }
      }).pipe(withFiles))
  })

  describe("JSONL", () => {
    it.effect("streams records with 1-based line numbers, skipping (but counting) blank lines", () =>
      Effect.gen(function*() {
        const file = yield* tempFile(
          "exp.jsonl",
          "\n{\"id\": 0, \"api\": \"test\"}\n\n   \n{\"id\": 1}\n\t\n{\"id\": 2}\n\n"
        )
        const entries = yield* readAll(file)
        expect(entries.map((e) => [e.line, e.ordinal, e.value])).toEqual([
          [2, 0, { id: 0, api: "test" }],
          [5, 1, { id: 1 }],
          [7, 2, { id: 2 }]
        ])
        expect(entries.every((e) => e.problems.length === 0 && e.text === undefined)).toBe(true)
      }).pipe(withFiles))

    it.effect("strips a UTF-8 BOM and reads CRLF line endings", () =>
      Effect.gen(function*() {
        const text = "{\"id\": \"a\", \"prompt\": \"héllo\"}\r\n\r\n{\"id\": \"b\", \"prompt\": \"naïve\"}\r\n"
        const file = yield* tempFile("bom.jsonl", new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)]))
        const entries = yield* readAll(file)
        expect(entries.map((e) => [e.line, e.value, e.problems])).toEqual([
          [1, { id: "a", prompt: "héllo" }, []],
          [3, { id: "b", prompt: "naïve" }, []]
        ])
        const lines = yield* ExperimentFile.lines(file).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        expect(lines).toEqual([
          { line: 1, text: "{\"id\": \"a\", \"prompt\": \"héllo\"}" },
          { line: 3, text: "{\"id\": \"b\", \"prompt\": \"naïve\"}" }
        ])
      }).pipe(withFiles))

    it.effect("reads a file larger than one chunk with multi-byte characters across chunk boundaries", () =>
      Effect.gen(function*() {
        const count = 3000
        const prompt = (i: number) => `${i}: ${"日本語のプロンプト🙂".repeat(3)} é`
        const text = Array.from({ length: count }, (_, i) =>
          JSON.stringify({ id: i, api: "test", model_name: "m", prompt: prompt(i) })).join("\r\n")
        expect(new TextEncoder().encode(text).length).toBeGreaterThan(3 * 64 * 1024)
        const file = yield* tempFile("big.jsonl", text)
        const entries = yield* readAll(file)
        expect(entries).toHaveLength(count)
        const mismatched = entries.filter((e, i) =>
          e.line !== i + 1 || e.ordinal !== i || (e.value as { prompt: string }).prompt !== prompt(i)
        )
        expect(mismatched).toEqual([])
      }).pipe(withFiles))

    it.effect("reports lines that are not JSON objects with file and line, keeping their text", () =>
      Effect.gen(function*() {
        const file = yield* tempFile(
          "bad.jsonl",
          [
            "{\"id\": 1, \"api\": \"test\", \"model_name\": \"m\", \"prompt\": \"ok\"}",
            "{\"id\": 2, \"api\": \"test\",",
            "[\"api\", \"test\"]",
            "42",
            "",
            "null",
            "\"a string\"",
            "{\"id\": 3, \"api\": \"test\", \"model_name\": \"m\", \"prompt\": \"still read\"}"
          ].join("\n")
        )
        const entries = yield* readAll(file)
        expect(entries.map((e) => e.line)).toEqual([1, 2, 3, 4, 6, 7, 8])
        expect(entries.map((e) => e.ordinal)).toEqual([0, 1, 2, 3, 4, 5, 6])
        const bad = entries.filter((e) => e.problems.length > 0)
        expect(bad.map((e) => [e.line, e.value, e.text])).toEqual([
          [2, undefined, "{\"id\": 2, \"api\": \"test\","],
          [3, undefined, "[\"api\", \"test\"]"],
          [4, undefined, "42"],
          [6, undefined, "null"],
          [7, undefined, "\"a string\""]
        ])
        expect(bad.map((e) => e.problems.map((p) => [p.file, p.line, p.key]))).toEqual([
          [[file, 2, undefined]],
          [[file, 3, undefined]],
          [[file, 4, undefined]],
          [[file, 6, undefined]],
          [[file, 7, undefined]]
        ])
        expect(bad[0]!.problems[0]!.message).toMatch(/^invalid JSON \(.+\)$/)
        expect(bad.slice(1).map((e) => e.problems[0]!.message)).toEqual([
          "must be a JSON object, got an array",
          "must be a JSON object, got a number",
          "must be a JSON object, got null",
          "must be a JSON object, got a string"
        ])
        // decode passes the read problems through unchanged
        expect(bad.map((e) => ExperimentFile.decode(file, e))).toEqual(
          bad.map((e) => ({ _tag: "Invalid", problems: e.problems }))
        )
        expect(ExperimentFile.decode(file, entries[6]!)._tag).toBe("Valid")
      }).pipe(withFiles))

    it.effect("decoding a file: each problem names the file, the line and the key", () =>
      Effect.gen(function*() {
        const file = yield* tempFile(
          "keys.jsonl",
          [
            "{\"id\": 1, \"model_name\": \"m\", \"prompt\": \"p\"}",
            "{\"id\": 2, \"api\": \"test\", \"prompt\": \"p\"}",
            "{\"id\": 3, \"api\": \"test\", \"model_name\": \"m\"}",
            "{\"id\": 4, \"api\": \"test\", \"model_name\": \"m\", \"prompt\": 5}",
            "{\"id\": 5, \"api\": \"test\", \"model_name\": \"m\", \"prompt\": \"p\", \"parameters\": [\"temperature\", 1]}",
            "{\"id\": 6, \"api\": \"test\", \"model_name\": 4, \"prompt\": \"p\"}",
            "{\"id\": true, \"api\": \"test\", \"model_name\": \"m\", \"prompt\": \"p\"}",
            "{\"id\": 8, \"api\": 8, \"model_name\": \"m\", \"prompt\": \"p\", \"group\": 1}",
            "{\"id\": 9, \"api\": \"test\", \"model_name\": \"m\", \"prompt\": \"p\"}"
          ].join("\n")
        )
        const decoded = (yield* readAll(file)).map((e) => ExperimentFile.decode("keys.jsonl", e))
        expect(decoded.map((d) => d._tag)).toEqual([
          "Invalid",
          "Invalid",
          "Invalid",
          "Invalid",
          "Invalid",
          "Invalid",
          "Invalid",
          "Invalid",
          "Valid"
        ])
        const problems = decoded.flatMap((d) => (d._tag === "Invalid" ? d.problems : []))
        expect(problems.map((p) => [p.file, p.line, p.key])).toEqual([
          ["keys.jsonl", 1, "api"],
          ["keys.jsonl", 2, "model_name"],
          ["keys.jsonl", 3, "prompt"],
          ["keys.jsonl", 4, "prompt"],
          ["keys.jsonl", 5, "parameters"],
          ["keys.jsonl", 6, "model_name"],
          ["keys.jsonl", 7, "id"],
          ["keys.jsonl", 8, "api"],
          ["keys.jsonl", 8, "group"]
        ])
        expect(problems.map((p) => ExperimentFile.formatProblem(p)).filter((_, i) => [0, 1, 2, 4, 5, 7, 8].includes(i)))
          .toEqual([
            "keys.jsonl:1: key \"api\": is required but missing",
            "keys.jsonl:2: key \"model_name\": is required but missing",
            "keys.jsonl:3: key \"prompt\": is required but missing",
            "keys.jsonl:5: key \"parameters\": must be an object (a dictionary of API parameters)",
            "keys.jsonl:6: key \"model_name\": must be a string",
            "keys.jsonl:8: key \"api\": must be a string",
            "keys.jsonl:8: key \"group\": must be a string"
          ])
        // prompt and id are unions: the message must say what was expected
        expect(problems[3]!.message).toMatch(/string/)
        expect(problems[6]!.message).toMatch(/string/)
      }).pipe(withFiles))
  })

  describe("decode", () => {
    it.effect("keeps the original object: extra keys and key order", () =>
      Effect.sync(() => {
        const value = {
          model_name: "gpt-4o",
          custom: { nested: [1, 2] },
          id: "q-1",
          prompt: "Hi",
          api: "openai",
          expected_response: "Hello",
          parameters: { temperature: 0.2 },
          zzz: null
        }
        const valid = validOf(decodeValue(value, 3))
        expect(valid.record).toBe(value)
        expect(Object.keys(valid.record)).toEqual([
          "model_name",
          "custom",
          "id",
          "prompt",
          "api",
          "expected_response",
          "parameters",
          "zzz"
        ])
        expect(valid.warnings).toEqual([])
      }))

    it.effect("assigns line-<n> to a record without id, with a warning on key id", () =>
      Effect.sync(() => {
        const valid = validOf(decodeValue({ api: "test", model_name: "m", prompt: "p", extra: 1 }, 12))
        expect(valid.record).toEqual({ api: "test", model_name: "m", prompt: "p", extra: 1, id: "line-12" })
        expect(Object.keys(valid.record)).toEqual(["api", "model_name", "prompt", "extra", "id"])
        expect(valid.warnings).toEqual([
          { file: "exp.jsonl", line: 12, key: "id", message: "no id; assigned \"line-12\"" }
        ])
        expect(ExperimentFile.assignedId(7)).toBe("line-7")
      }))

    it.effect("keeps numeric and string ids as given, including 0", () =>
      Effect.sync(() => {
        expect(validOf(decodeValue({ id: 0, api: "test", model_name: "m", prompt: "p" })).record.id).toBe(0)
        expect(validOf(decodeValue({ id: "", api: "test", model_name: "m", prompt: "p" })).record.id).toBe("")
        expect(validOf(decodeValue({ id: 0, api: "test", model_name: "m", prompt: "p" })).warnings).toEqual([])
      }))

    it.effect("accepts prompto's prompt shapes", () =>
      Effect.sync(() => {
        const prompts: ReadonlyArray<unknown> = [
          "single turn",
          ["How does international trade create jobs?", "I want a joke about that"],
          [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }],
          [{ role: "user", parts: ["describe", { type: "image", media: "pantani_giro.jpg" }] }],
          [{ role: "user", content: ["describe", { type: "image_url", image_url: "a.jpg" }] }]
        ]
        expect(prompts.map((prompt) => decodeValue({ id: 1, api: "test", model_name: "m", prompt })._tag)).toEqual([
          "Valid",
          "Valid",
          "Valid",
          "Valid",
          "Valid"
        ])
      }))

    it.effect("rejects bad prompt shapes on key prompt", () =>
      Effect.sync(() => {
        const bad: ReadonlyArray<unknown> = [5, null, { role: "user", content: "hi" }, ["a", 1], [{ role: "user" }], [
          { content: "no role" }
        ]]
        for (const prompt of bad) {
          const problems = problemsOf(decodeValue({ id: 1, api: "test", model_name: "m", prompt }, 4))
          expect(problems).toHaveLength(1)
          expect([problems[0]!.file, problems[0]!.line, problems[0]!.key?.split(".")[0]]).toEqual(["exp.jsonl", 4, "prompt"])
        }
      }))

    it.effect("reports every missing required key at once", () =>
      Effect.sync(() => {
        expect(problemsOf(decodeValue({ id: 1 }, 2))).toEqual([
          { file: "exp.jsonl", line: 2, key: "api", message: "is required but missing" },
          { file: "exp.jsonl", line: 2, key: "model_name", message: "is required but missing" },
          { file: "exp.jsonl", line: 2, key: "prompt", message: "is required but missing" }
        ])
      }))

    it.effect("rejects wrong types of the optional string keys", () =>
      Effect.sync(() => {
        const base = { id: 1, api: "test", model_name: "m", prompt: "p" }
        expect(problemsOf(decodeValue({ ...base, mode: 1, safety_filter: false }))).toEqual([
          { file: "exp.jsonl", line: 1, key: "mode", message: "must be a string" },
          { file: "exp.jsonl", line: 1, key: "safety_filter", message: "must be a string" }
        ])
        expect(problemsOf(decodeValue({ ...base, parameters: "temperature=1" }))).toEqual([
          { file: "exp.jsonl", line: 1, key: "parameters", message: "must be an object (a dictionary of API parameters)" }
        ])
      }))

    it.effect("formatProblem writes file:line: key \"k\": message, leaving out a missing key", () =>
      Effect.sync(() => {
        expect(ExperimentFile.formatProblem({ file: "a.jsonl", line: 3, key: "prompt", message: "is required but missing" }))
          .toBe("a.jsonl:3: key \"prompt\": is required but missing")
        expect(ExperimentFile.formatProblem({ file: "a.jsonl", line: 9, message: "invalid JSON (x)" })).toBe(
          "a.jsonl:9: invalid JSON (x)"
        )
        expect(ExperimentFile.formatProblem({ file: "b.csv", line: 1, key: undefined, message: "m" })).toBe("b.csv:1: m")
      }))
  })

  describe("CSV", () => {
    it.effect("reads rows as prompt dicts: typed cells, parameters-X folded, empty cells dropped", () =>
      Effect.gen(function*() {
        const file = yield* tempFile(
          "exp.csv",
          [
            "id,api,model_name,prompt,parameters-temperature,parameters-max_tokens,flag,note",
            "0,openai,gpt-4o,How does technology impact us?,0.5,100,True,plain",
            "q1,gemini,gemini-1.5-flash,\"Hello, world\",,,False,",
            "2,test,m,12345,1e-1,,true,\"multi",
            "line, with \"\"quotes\"\"\"",
            "",
            "3,test,m,007,,,,"
          ].join("\n")
        )
        const entries = yield* readAll(file)
        expect(entries.map((e) => [e.line, e.ordinal, e.problems])).toEqual([
          [2, 0, []],
          [3, 1, []],
          [5, 2, []],
          [7, 3, []]
        ])
        const values = entries.map((e) => e.value)
        expect(values).toEqual([
          {
            id: 0,
            api: "openai",
            model_name: "gpt-4o",
            prompt: "How does technology impact us?",
            flag: true,
            note: "plain",
            parameters: { temperature: 0.5, max_tokens: 100 }
          },
          { id: "q1", api: "gemini", model_name: "gemini-1.5-flash", prompt: "Hello, world", flag: false },
          {
            id: 2,
            api: "test",
            model_name: "m",
            prompt: "12345",
            flag: true,
            note: "multi\nline, with \"quotes\"",
            parameters: { temperature: 0.1 }
          },
          { id: 3, api: "test", model_name: "m", prompt: "007" }
        ])
        // the parameters object comes last; parameters-X columns are not kept
        expect(Object.keys(values[0] as object)).toEqual(["id", "api", "model_name", "prompt", "flag", "note", "parameters"])
        const decoded = entries.map((e) => ExperimentFile.decode("exp.csv", e))
        expect(decoded.map((d) => d._tag)).toEqual(["Valid", "Valid", "Valid", "Valid"])
      }).pipe(withFiles))

    it.effect("strips a BOM, trims header names and reads CRLF", () =>
      Effect.gen(function*() {
        const text = " id , api ,model_name,prompt\r\n1,test,m,hi\r\n\r\n2,test,m,there\r\n"
        const file = yield* tempFile("bom.csv", new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)]))
        const entries = yield* readAll(file)
        expect(entries.map((e) => [e.line, e.value])).toEqual([
          [2, { id: 1, api: "test", model_name: "m", prompt: "hi" }],
          [4, { id: 2, api: "test", model_name: "m", prompt: "there" }]
        ])
      }).pipe(withFiles))

    it.effect("reports a ragged row with its line; decode makes it invalid", () =>
      Effect.gen(function*() {
        const file = yield* tempFile(
          "ragged.csv",
          "id,api,model_name,prompt\n1,test,m,ok\n2,test,m\n3,test,m,too,many\n4,test,m,fine\n"
        )
        const entries = yield* readAll(file)
        expect(entries.map((e) => [e.line, e.problems])).toEqual([
          [2, []],
          [3, [{ file, line: 3, message: "the row has 3 cells but the header has 4 columns" }]],
          [4, [{ file, line: 4, message: "the row has 5 cells but the header has 4 columns" }]],
          [5, []]
        ])
        expect(entries.map((e) => ExperimentFile.decode(file, e)._tag)).toEqual(["Valid", "Invalid", "Invalid", "Valid"])
        expect(ExperimentFile.formatProblem(entries[1]!.problems[0]!)).toBe(
          `${file}:3: the row has 3 cells but the header has 4 columns`
        )
      }).pipe(withFiles))

    it.effect("a header-only file has no entries", () =>
      Effect.gen(function*() {
        const file = yield* tempFile("empty.csv", "id,api,model_name,prompt\n")
        expect(yield* readAll(file)).toEqual([])
      }).pipe(withFiles))

    it.effect("a malformed CSV (unclosed quote) fails with ExperimentFileError, not a defect", () =>
      Effect.gen(function*() {
        const file = yield* tempFile("broken.csv", "id,api,model_name,prompt\n1,test,m,\"never closed\n2,test,m,p\n")
        const error = yield* Effect.flip(readAll(file))
        expect(error).toBeInstanceOf(ExperimentFile.ExperimentFileError)
        expect(error.file).toBe(file)
        expect(error.message).toBe("a quote opened after line 1 is never closed")
      }).pipe(withFiles))

    it.effect("stops reading early without hanging when only the first rows are taken", () =>
      Effect.gen(function*() {
        const rows = Array.from({ length: 20_000 }, (_, i) => `${i},test,m,prompt ${i} ${"x".repeat(40)}`)
        const file = yield* tempFile("big.csv", ["id,api,model_name,prompt", ...rows].join("\n"))
        const first = yield* ExperimentFile.read(file).pipe(Stream.take(2), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        expect(first.map((e) => [e.line, (e.value as { id: number }).id])).toEqual([[2, 0], [3, 1]])
        const all = yield* readAll(file)
        expect(all).toHaveLength(20_000)
        expect(all[19_999]!.line).toBe(20_001)
      }).pipe(withFiles))

    it.effect("typeCsvCell types numbers and True/False as pandas does, leaving other text alone", () =>
      Effect.sync(() => {
        const cells = ["42", "-1.5e3", " 7 ", ".5", "+3", "True", "true", "False", "false", "TRUE", "0x10", "1,000", "abc", "1e", "NaN"]
        expect(cells.map(ExperimentFile.typeCsvCell)).toEqual([
          42,
          -1500,
          7,
          0.5,
          3,
          true,
          true,
          false,
          false,
          "TRUE",
          "0x10",
          "1,000",
          "abc",
          "1e",
          "NaN"
        ])
      }))

    it.effect("csvRowToObject keeps prompt as text and a non-numeric id as text", () =>
      Effect.sync(() => {
        const header = ["id", "api", "model_name", "prompt", "parameters-n", "parameters-stop", "expected_response"]
        expect(ExperimentFile.csvRowToObject(header, ["True", "test", "m", "3.14", "2", "False", "42"])).toEqual({
          id: "True",
          api: "test",
          model_name: "m",
          prompt: "3.14",
          expected_response: 42,
          parameters: { n: 2, stop: false }
        })
        expect(ExperimentFile.csvRowToObject(header, ["7", "test", "m", "True"])).toEqual({
          id: 7,
          api: "test",
          model_name: "m",
          prompt: "True"
        })
      }))

    it.effect("cells pandas reads as missing (None, NaN, NULL, N/A, ...) are dropped from parameters, as prompto does", () =>
      Effect.sync(() => {
        const header = ["id", "api", "model_name", "prompt", "parameters-temperature", "parameters-top_p", "parameters-stop", "parameters-seed"]
        for (const missing of ["None", "NaN", "NULL", "N/A", "nan", "<NA>", "null", "#N/A"]) {
          expect(ExperimentFile.csvRowToObject(header, ["1", "test", "m", "p", missing, "0.9", missing, ""])).toEqual({
            id: 1,
            api: "test",
            model_name: "m",
            prompt: "p",
            parameters: { top_p: 0.9 }
          })
        }
        // a cell with more than the token is text, as pandas reads it
        expect(ExperimentFile.csvRowToObject(header, ["1", "test", "m", "p", "None at all"])).toMatchObject({
          parameters: { temperature: "None at all" }
        })
      }))
  })
})
