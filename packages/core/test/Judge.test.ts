import { FileSystem } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as nodeFs from "node:fs"
import * as path from "node:path"
import * as ExperimentFile from "../src/ExperimentFile.js"
import * as Judge from "../src/Judge.js"
import { evaluation, failsWith, folderWith, jsonl, withNode } from "./support/evaluationFixtures.js"

/** Records as JSON text (so key order counts), sorted (so line order does not). */
const asSortedJson = (records: ReadonlyArray<unknown>): ReadonlyArray<string> => records.map((r) => JSON.stringify(r)).sort()

const settings = {
  "gpt-4o": { api: "openai", model_name: "gpt-4o", parameters: { temperature: 0.5 } },
  "local": { api: "ollama", model_name: "llama3.1", parameters: {} }
}

/** A judge folder in a fresh temporary directory: `files` maps names to contents. */
const judgeFolder = (files: Readonly<Record<string, string>>) => folderWith("prompto-judge-", files)

/** The error `effect` fails with, which must be a JudgeConfigError. */
const configError = failsWith<Judge.JudgeConfigError>("JudgeConfigError")

describe("Judge", () => {
  describe("load", () => {
    it.effect("reads judges and templates; names with or without .txt, duplicates dropped in order", () =>
      Effect.gen(function*() {
        const dir = yield* judgeFolder({
          "settings.json": JSON.stringify(settings),
          "a.txt": "A {INPUT_PROMPT}",
          "b.txt": "B {OUTPUT_RESPONSE}\n"
        })
        const setup = yield* Judge.load({
          folder: dir,
          judges: ["local", " gpt-4o", "local", ""],
          templates: ["b", "a.txt", "b.txt", "a"]
        })
        expect(setup).toEqual({
          judges: [{ name: "local", ...settings.local }, { name: "gpt-4o", ...settings["gpt-4o"] }],
          templates: [{ name: "b", text: "B {OUTPUT_RESPONSE}\n" }, { name: "a", text: "A {INPUT_PROMPT}" }]
        })
        const byDefault = yield* Judge.load({ folder: dir, judges: ["gpt-4o"], templates: ["a"] })
        expect(byDefault.templates.map((t) => t.name)).toEqual(["a"])
        const missingDefault = yield* configError(Judge.load({ folder: dir, judges: ["gpt-4o"] }))
        expect(missingDefault.path).toBe(path.join(dir, "template.txt"))
        expect(missingDefault.message).toBe("template \"template.txt\" not found; .txt files in the folder: a.txt, b.txt")
      }).pipe(withNode))

    it.effect("a missing folder, settings.json, bad JSON or a non-object each fail naming the path", () =>
      Effect.gen(function*() {
        const dir = yield* judgeFolder({ "template.txt": "{OUTPUT_RESPONSE}" })
        const missing = path.join(dir, "nope")
        const noFolder = yield* configError(Judge.load({ folder: missing, judges: ["gpt-4o"] }))
        expect([noFolder.path, noFolder.message]).toEqual([missing, "the judge folder does not exist"])

        const notFolder = yield* configError(Judge.load({ folder: path.join(dir, "template.txt"), judges: ["gpt-4o"] }))
        expect(notFolder.message).toBe("the judge folder is not a folder")

        const noSettings = yield* configError(Judge.load({ folder: dir, judges: ["gpt-4o"] }))
        expect(noSettings.path).toBe(path.join(dir, "settings.json"))
        expect(noSettings.message).toMatch(/^settings\.json is missing: a judge folder needs settings\.json/)

        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(path.join(dir, "settings.json"), "{\"gpt-4o\": {\"api\": \"openai\",")
        const badJson = yield* configError(Judge.load({ folder: dir, judges: ["gpt-4o"] }))
        expect(badJson.path).toBe(path.join(dir, "settings.json"))
        expect(badJson.message).toMatch(/^invalid JSON \(.+\)$/)

        yield* fs.writeFileString(path.join(dir, "settings.json"), "[{\"api\": \"openai\"}]")
        const notObject = yield* configError(Judge.load({ folder: dir, judges: ["gpt-4o"] }))
        expect(notObject.message).toBe(
          "must be a JSON object of {\"<judge name>\": {\"api\", \"model_name\", \"parameters\"}}, got an array"
        )
      }).pipe(withNode))

    it.effect("each judge entry needs api, model_name (strings) and parameters (an object)", () =>
      Effect.gen(function*() {
        const dir = yield* judgeFolder({
          "settings.json": JSON.stringify({
            "no-api": { model_name: "m", parameters: {} },
            "no-params": { api: "openai", model_name: "m" },
            "bad-types": { api: 1, model_name: "m", parameters: [0.5] },
            "not-object": "openai",
            "fine": { api: "openai", model_name: "m", parameters: {}, extra: true }
          }),
          "template.txt": "{OUTPUT_RESPONSE}"
        })
        const file = path.join(dir, "settings.json")
        const message = (judges: ReadonlyArray<string>) =>
          configError(Judge.load({ folder: dir, judges })).pipe(
            Effect.tap((error) => Effect.sync(() => expect(error.path).toBe(file))),
            Effect.map((error) => error.message)
          )
        expect(yield* message(["no-api"])).toBe("judge \"no-api\": key \"api\" is required but missing")
        expect(yield* message(["no-params"])).toBe("judge \"no-params\": key \"parameters\" is required but missing")
        expect(yield* message(["bad-types"])).toBe(
          "judge \"bad-types\": key \"api\" must be a string; judge \"bad-types\": key \"parameters\" must be an object (a dictionary of API parameters)"
        )
        expect(yield* message(["not-object"])).toBe(
          "judge \"not-object\": must be an object with \"api\", \"model_name\" and \"parameters\", got a string"
        )
        // only the judges asked for are checked; extra keys are ignored
        const setup = yield* Judge.load({ folder: dir, judges: ["fine"] })
        expect(setup.judges).toEqual([{ name: "fine", api: "openai", model_name: "m", parameters: {} }])
      }).pipe(withNode))

    it.effect("an unknown judge or an empty judge list fails listing the judges available", () =>
      Effect.gen(function*() {
        const dir = yield* judgeFolder({ "settings.json": JSON.stringify(settings), "template.txt": "x" })
        const unknown = yield* configError(Judge.load({ folder: dir, judges: ["gpt-4o", "claude"] }))
        expect([unknown.path, unknown.message]).toEqual([
          path.join(dir, "settings.json"),
          "judge \"claude\" is not in settings.json; available: \"gpt-4o\", \"local\""
        ])
        const two = yield* configError(Judge.load({ folder: dir, judges: ["a", "b"] }))
        expect(two.message).toBe("judges \"a\", \"b\" are not in settings.json; available: \"gpt-4o\", \"local\"")
        const none = yield* configError(Judge.load({ folder: dir, judges: [" ", ""] }))
        expect(none.message).toBe("no judge given; available: \"gpt-4o\", \"local\"")
      }).pipe(withNode))

    it.effect("a missing template lists the .txt files present", () =>
      Effect.gen(function*() {
        const dir = yield* judgeFolder({
          "settings.json": JSON.stringify(settings),
          "template.txt": "x",
          "harm.txt": "y",
          "notes.md": "z"
        })
        const error = yield* configError(Judge.load({ folder: dir, judges: ["gpt-4o"], templates: ["template", "funny"] }))
        expect(error.path).toBe(path.join(dir, "funny.txt"))
        expect(error.message).toBe("template \"funny.txt\" not found; .txt files in the folder: harm.txt, template.txt")
      }).pipe(withNode))
  })

  describe("records", () => {
    const setup: Judge.JudgeSetup = {
      judges: [{ name: "j1", ...settings["gpt-4o"] }, { name: "j2", ...settings.local }],
      templates: [{ name: "t1", text: "Q: {INPUT_PROMPT} A: {OUTPUT_RESPONSE} {\"json\": true}" }, {
        name: "t2",
        text: "{OUTPUT_RESPONSE}"
      }]
    }

    it("one record per judge and template (judge outer), keys in prompto's order", () => {
      const completed = { id: "q1", api: "test", model_name: "m", prompt: "hi", response: "hello {INPUT_PROMPT}", extra: [1] }
      const out = Judge.records(completed, setup)
      expect(out.map((r) => r.id)).toEqual(["judge-j1-t1-q1", "judge-j1-t2-q1", "judge-j2-t1-q1", "judge-j2-t2-q1"])
      expect(out[0]).toEqual({
        id: "judge-j1-t1-q1",
        template_name: "t1",
        prompt: "Q: hi A: hello {INPUT_PROMPT} {\"json\": true}",
        api: "openai",
        model_name: "gpt-4o",
        parameters: { temperature: 0.5 },
        "input-id": "q1",
        "input-api": "test",
        "input-model_name": "m",
        "input-prompt": "hi",
        "input-response": "hello {INPUT_PROMPT}",
        "input-extra": [1]
      })
      expect(Object.keys(out[3]!)).toEqual([
        "id",
        "template_name",
        "prompt",
        "api",
        "model_name",
        "parameters",
        "input-id",
        "input-api",
        "input-model_name",
        "input-prompt",
        "input-response",
        "input-extra"
      ])
    })

    it("puts non-string prompts and responses in as JSON; a record without id is NA", () => {
      const [first] = Judge.records({ prompt: ["a", "b"], response: ["x", "y"] }, setup)
      expect(first!.id).toBe("judge-j1-t1-NA")
      expect(first!.prompt).toBe("Q: [\"a\",\"b\"] A: [\"x\",\"y\"] {\"json\": true}")
      expect(Judge.records({ id: 0, prompt: "p", response: "r" }, setup)[0]!.id).toBe("judge-j1-t1-0")
    })

    it("judgeable: a record holding an error is not judged", () => {
      expect(Judge.judgeable({ id: 1, response: "ok" })).toBe(true)
      expect(Judge.judgeable({ id: 1, response: "ok", error: null })).toBe(true)
      expect(Judge.judgeable({ id: 1, response: "boom", error: { kind: "x", message: "boom", attempts: 3 } })).toBe(false)
    })

    it("fileName: judge- and the name without completed-", () => {
      expect(Judge.fileName("15-11-2024-12-23-08-completed-example.jsonl")).toBe("judge-15-11-2024-12-23-08-example.jsonl")
      expect(Judge.fileName("completed_example.jsonl")).toBe("judge-completed_example.jsonl")
      expect(Judge.fileName("completed-run.csv")).toBe("judge-run.jsonl")
    })
  })

  describe("prompto's evaluation example", () => {
    const judgeDir = path.join(evaluation, "judge")
    const judgeInput = () =>
      jsonl(path.join(evaluation, "data/output/judge-example/15-11-2024-12-24-03-input-judge-example.jsonl"))

    it.effect("loads the example judge folder", () =>
      Effect.gen(function*() {
        const setup = yield* Judge.load({
          folder: judgeDir,
          judges: ["gpt-4o", "ollama-llama3-1"],
          templates: ["template.txt", "template2"]
        })
        expect(setup.judges).toEqual([
          { name: "gpt-4o", api: "openai", model_name: "gpt-4o", parameters: { temperature: 0.5 } },
          { name: "ollama-llama3-1", api: "ollama", model_name: "llama3.1", parameters: { temperature: 0 } }
        ])
        expect(setup.templates.map((t) => t.name)).toEqual(["template", "template2"])
        expect(setup.templates[0]!.text).toBe(nodeFs.readFileSync(path.join(judgeDir, "template.txt"), "utf-8"))
        const unknown = yield* configError(Judge.load({ folder: judgeDir, judges: ["gpt-5"] }))
        expect(unknown.message).toBe(
          "judge \"gpt-5\" is not in settings.json; available: \"gpt-4o\", \"gemini-1.0-pro\", \"ollama-llama3-1\""
        )
      }).pipe(withNode))

    it.effect("records equal prompto's judge-example input, key order included", () =>
      Effect.gen(function*() {
        const setup = yield* Judge.load({ folder: judgeDir, judges: ["gpt-4o"], templates: ["template", "template2"] })
        const completed = jsonl(path.join(evaluation, "completed_example.jsonl"))
        const ours = completed.flatMap((record) => Judge.records(record, setup))
        expect(ours).toHaveLength(6)
        expect(asSortedJson(ours)).toEqual(asSortedJson(judgeInput()))
      }).pipe(withNode))

    it.effect("createFile writes judge-<name> with the same records, skipping error records, replacing an old file", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "prompto-judge-file-" })
        const input = path.join(dir, "01-01-2025-00-00-00-completed-example.jsonl")
        const errorRecord = {
          id: 3,
          api: "some-api",
          model_name: "some-model",
          prompt: "tell me a joke about dogs",
          response: "An unexpected error occurred when querying the API: boom",
          error: { kind: "server", message: "boom", attempts: 5 }
        }
        const text = nodeFs.readFileSync(path.join(evaluation, "completed_example.jsonl"), "utf-8")
        yield* fs.writeFileString(input, `${text.trimEnd()}\n\n${JSON.stringify(errorRecord)}\n`)
        const outputFolder = path.join(dir, "out", "judge")
        const target = path.join(outputFolder, "judge-01-01-2025-00-00-00-example.jsonl")
        yield* fs.makeDirectory(outputFolder, { recursive: true })
        yield* fs.writeFileString(target, "old content that must go\n".repeat(100))

        const result = yield* Judge.createFile({
          inputFile: input,
          folder: judgeDir,
          judges: ["gpt-4o"],
          templates: ["template", "template2"],
          outputFolder
        })
        expect(result).toEqual({ path: target, records: 6, skipped: 1 })
        expect(asSortedJson(jsonl(target))).toEqual(asSortedJson(judgeInput()))
        expect(nodeFs.readdirSync(outputFolder)).toEqual(["judge-01-01-2025-00-00-00-example.jsonl"])
      }).pipe(withNode))
  })

  describe("createFile", () => {
    const folderWithInput = (input: string) =>
      Effect.gen(function*() {
        const dir = yield* judgeFolder({
          "settings.json": JSON.stringify(settings),
          "template.txt": "{INPUT_PROMPT} -> {OUTPUT_RESPONSE}",
          "completed-run.jsonl": input
        })
        return { dir, input: path.join(dir, "completed-run.jsonl"), out: path.join(dir, "out") }
      })

    it.effect("creates the output folder and writes one line per judge, template and record", () =>
      Effect.gen(function*() {
        const { dir, input, out } = yield* folderWithInput(
          [{ id: "a", prompt: "p1", response: "r1" }, { id: "b", prompt: "p2", response: "r2" }].map((r) => JSON.stringify(r))
            .join("\n")
        )
        const result = yield* Judge.createFile({ inputFile: input, folder: dir, judges: ["gpt-4o", "local"], outputFolder: out })
        expect(result).toEqual({ path: path.join(out, "judge-run.jsonl"), records: 4, skipped: 0 })
        expect(jsonl(result.path).map((r) => [r.id, r.prompt])).toEqual([
          ["judge-gpt-4o-template-a", "p1 -> r1"],
          ["judge-local-template-a", "p1 -> r1"],
          ["judge-gpt-4o-template-b", "p2 -> r2"],
          ["judge-local-template-b", "p2 -> r2"]
        ])
      }).pipe(withNode))

    it.effect("a line that is not a JSON object fails naming the file and line; nothing is written", () =>
      Effect.gen(function*() {
        const { dir, input, out } = yield* folderWithInput("{\"id\": 1, \"prompt\": \"p\", \"response\": \"r\"}\n\n[1, 2]\n")
        const error = yield* Effect.flip(Judge.createFile({ inputFile: input, folder: dir, judges: ["gpt-4o"], outputFolder: out }))
        expect(error._tag).toBe("ExperimentFileError")
        expect((error as ExperimentFile.ExperimentFileError).file).toBe(input)
        expect(error.message).toBe(`${input}:3: must be a JSON object, got an array`)
        expect(nodeFs.readdirSync(out)).toEqual([])
      }).pipe(withNode))

    it.effect("a record without response fails naming the line (not a completed file)", () =>
      Effect.gen(function*() {
        const { dir, input, out } = yield* folderWithInput("{\"id\": 1, \"api\": \"a\", \"model_name\": \"m\", \"prompt\": \"p\"}\n")
        const error = yield* Effect.flip(Judge.createFile({ inputFile: input, folder: dir, judges: ["gpt-4o"], outputFolder: out }))
        expect(error.message).toBe(`${input}:1: key "response": is required but missing (is this a completed file?)`)
      }).pipe(withNode))

    it.effect("no completed records, or only error records, fail with JudgeConfigError; an old file is kept", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const { dir, input, out } = yield* folderWithInput("\n\n")
        yield* fs.makeDirectory(out)
        yield* fs.writeFileString(path.join(out, "judge-run.jsonl"), "keep me\n")
        const empty = yield* configError(
          Judge.createFile({ inputFile: input, folder: dir, judges: ["gpt-4o"], outputFolder: out })
        )
        expect([empty.path, empty.message]).toEqual([input, `no completed records in ${input}`])

        yield* fs.writeFileString(input, JSON.stringify({ id: 1, prompt: "p", response: "failed", error: { kind: "x" } }))
        const allErrors = yield* configError(
          Judge.createFile({ inputFile: input, folder: dir, judges: ["gpt-4o"], outputFolder: out })
        )
        expect(allErrors.message).toBe(`nothing to judge in ${input}: all 1 completed records hold an error`)
        expect(nodeFs.readdirSync(out)).toEqual(["judge-run.jsonl"])
        expect(nodeFs.readFileSync(path.join(out, "judge-run.jsonl"), "utf-8")).toBe("keep me\n")
      }).pipe(withNode))

    it.effect("a missing input file fails with ExperimentFileError; a bad judge fails before reading it", () =>
      Effect.gen(function*() {
        const { dir, out } = yield* folderWithInput("")
        const missing = path.join(dir, "missing.jsonl")
        const error = yield* Effect.flip(Judge.createFile({ inputFile: missing, folder: dir, judges: ["gpt-4o"], outputFolder: out }))
        expect(error._tag).toBe("ExperimentFileError")
        expect(error.message).toBe("cannot read the file: no such file or folder")
        yield* configError(Judge.createFile({ inputFile: missing, folder: dir, judges: ["x"], outputFolder: out }))
      }).pipe(withNode))
  })

  describe("verdict parsers", () => {
    it("yes_no reads the first word", () => {
      const table: ReadonlyArray<readonly [unknown, boolean | null]> = [
        ["Yes", true],
        ["yes.", true],
        ["  **YES**, it is harmful", true],
        ["\"No\"", false],
        ["no", false],
        ["No, it is not.", false],
        ["Not harmful", null],
        ["I think yes", null],
        ["Yesterday", null],
        ["", null],
        [["Maybe", "No"], false],
        [42, null],
        [null, null]
      ]
      for (const [answer, expected] of table) expect([answer, Judge.yesNo.parse(answer)]).toEqual([answer, expected])
    })

    it("score_1_10 reads the first whole number from 1 to 10", () => {
      const table: ReadonlyArray<readonly [unknown, number | null]> = [
        ["8", 8],
        ["Score: 7/10", 7],
        ["10. Excellent", 10],
        ["I'd say 0, no wait, 3", 3],
        ["15 out of 100, so 2", 2],
        ["gpt-4o rates it 6", 6],
        ["7.5", null],
        ["7.5 rounds to 8", 8],
        ["no score", null],
        [5, null]
      ]
      for (const [answer, expected] of table) expect([answer, Judge.score1To10.parse(answer)]).toEqual([answer, expected])
    })

    it("number reads the first number", () => {
      const table: ReadonlyArray<readonly [unknown, number | null]> = [
        ["0.75", 0.75],
        ["Probability: 0.9.", 0.9],
        ["-3 points", -3],
        ["about 42 or 43", 42],
        ["gpt-4o says 12", 12],
        ["none", null]
      ]
      for (const [answer, expected] of table) expect([answer, Judge.number.parse(answer)]).toEqual([answer, expected])
    })

    it.effect("parser finds them by name; an unknown name lists the available ones", () =>
      Effect.gen(function*() {
        expect([...Judge.verdictParsers.keys()]).toEqual(["yes_no", "score_1_10", "number"])
        expect(yield* Judge.parser("score_1_10")).toBe(Judge.score1To10)
        const error = yield* configError(Judge.parser("stars"))
        expect(error.message).toBe("unknown verdict parser \"stars\"; available: yes_no, score_1_10, number")
      }))

    it("yes_no reads every answer of prompto's judge-example", () => {
      const completed = jsonl(path.join(evaluation, "data/output/judge-example/15-11-2024-12-24-03-completed-judge-example.jsonl"))
      const verdicts = completed.map((record) => Judge.yesNo.parse(record.response))
      expect(verdicts).toHaveLength(6)
      expect(verdicts.every((verdict) => typeof verdict === "boolean")).toBe(true)
    })
  })
})
