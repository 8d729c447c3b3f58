import { FileSystem } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import type { IdentifiedRecord } from "../src/PromptRecord.js"
import * as Rephrase from "../src/Rephrase.js"
import { evaluation, failsWith, folderWith, jsonl, withNode } from "./support/evaluationFixtures.js"

/** Records as JSON text, so that key order counts. */
const asJson = (records: ReadonlyArray<unknown>): ReadonlyArray<string> => records.map((r) => JSON.stringify(r))

const settings = {
  "llama": { api: "ollama", model_name: "llama3.2", parameters: { temperature: 0 } },
  "gpt": { api: "openai", model_name: "gpt-4o", parameters: {} }
}

/** A rephrase folder in a fresh temporary directory: `files` maps names to contents. */
const rephraseFolder = (files: Readonly<Record<string, string>>) => folderWith("prompto-rephrase-", files)

/** The error `effect` fails with, which must be a RephraseConfigError. */
const configError = failsWith<Rephrase.RephraseConfigError>("RephraseConfigError")

const original: IdentifiedRecord = {
  id: "q1",
  api: "openai",
  model_name: "gpt-4o-mini",
  prompt: "Where can I buy a can of coke?",
  parameters: { temperature: 1 },
  group: "g1"
}

describe("Rephrase", () => {
  describe("load", () => {
    it.effect("one template per non-blank line: \\n becomes a newline, each line stripped", () =>
      Effect.gen(function*() {
        const dir = yield* rephraseFolder({
          "settings.json": JSON.stringify(settings),
          "template.txt": "  Paraphrase: {INPUT_PROMPT}  \r\n\r\n   \nRewrite this.\\n\"{INPUT_PROMPT}\"\n\\nLeading and trailing\\n\n",
          "other.txt": "Only one {INPUT_PROMPT}"
        })
        const setup = yield* Rephrase.load({ folder: dir, models: ["gpt", "llama", "gpt"] })
        expect(setup).toEqual({
          models: [{ name: "gpt", ...settings.gpt }, { name: "llama", ...settings.llama }],
          templates: ["Paraphrase: {INPUT_PROMPT}", "Rewrite this.\n\"{INPUT_PROMPT}\"", "Leading and trailing"]
        })
        expect((yield* Rephrase.load({ folder: dir, models: ["llama"], templates: "other" })).templates).toEqual([
          "Only one {INPUT_PROMPT}"
        ])
        expect(Rephrase.templateLines("a\\nb\rc\n\n")).toEqual(["a\nb", "c"])
      }).pipe(withNode))

    it.effect("fails with RephraseConfigError naming the path, the model and the key", () =>
      Effect.gen(function*() {
        const dir = yield* rephraseFolder({
          "settings.json": JSON.stringify({ ...settings, "broken": { api: "ollama", parameters: "hot" } }),
          "template.txt": "{INPUT_PROMPT}",
          "empty.txt": "\n  \n\n",
          "notes.txt": "x"
        })
        const file = path.join(dir, "settings.json")
        const unknown = yield* configError(Rephrase.load({ folder: dir, models: ["mistral"] }))
        expect([unknown.path, unknown.message]).toEqual([
          file,
          "rephrase model \"mistral\" is not in settings.json; available: \"llama\", \"gpt\", \"broken\""
        ])
        const broken = yield* configError(Rephrase.load({ folder: dir, models: ["broken"] }))
        expect(broken.message).toBe(
          "rephrase model \"broken\": key \"model_name\" is required but missing; " +
            "rephrase model \"broken\": key \"parameters\" must be an object (a dictionary of API parameters)"
        )
        const none = yield* configError(Rephrase.load({ folder: dir, models: [] }))
        expect(none.message).toBe("no rephrase model given; available: \"llama\", \"gpt\", \"broken\"")
        const empty = yield* configError(Rephrase.load({ folder: dir, models: ["llama"], templates: "empty.txt" }))
        expect([empty.path, empty.message]).toEqual([
          path.join(dir, "empty.txt"),
          "the template file has no templates (each non-blank line is one template)"
        ])
        const missing = yield* configError(Rephrase.load({ folder: dir, models: ["llama"], templates: "t2.txt" }))
        expect([missing.path, missing.message]).toEqual([
          path.join(dir, "t2.txt"),
          "template \"t2.txt\" not found; .txt files in the folder: empty.txt, notes.txt, template.txt"
        ])
        const noFolder = yield* configError(Rephrase.load({ folder: path.join(dir, "nope"), models: ["llama"] }))
        expect(noFolder.message).toBe("the rephrase folder does not exist")
        const fs = yield* FileSystem.FileSystem
        yield* fs.remove(file)
        const noSettings = yield* configError(Rephrase.load({ folder: dir, models: ["llama"] }))
        expect(noSettings.message).toMatch(/^settings\.json is missing: a rephrase folder needs settings\.json/)
      }).pipe(withNode))
  })

  describe("records", () => {
    it("one record per model and template index (model outer), keys in prompto's order", () => {
      const setup: Rephrase.RephraseSetup = {
        models: [{ name: "llama", ...settings.llama }, { name: "gpt", ...settings.gpt }],
        templates: ["Paraphrase: \"{INPUT_PROMPT}\" {\"keep\": 1}", "Vary: {INPUT_PROMPT}"]
      }
      const out = Rephrase.records(original, setup)
      expect(out.map((r) => [r.id, r.template_index])).toEqual([
        ["rephrase-llama-0-q1", 0],
        ["rephrase-llama-1-q1", 1],
        ["rephrase-gpt-0-q1", 0],
        ["rephrase-gpt-1-q1", 1]
      ])
      expect(asJson([out[0]])).toEqual(asJson([{
        id: "rephrase-llama-0-q1",
        template_index: 0,
        prompt: "Paraphrase: \"Where can I buy a can of coke?\" {\"keep\": 1}",
        api: "ollama",
        model_name: "llama3.2",
        parameters: { temperature: 0 },
        "input-id": "q1",
        "input-api": "openai",
        "input-model_name": "gpt-4o-mini",
        "input-prompt": "Where can I buy a can of coke?",
        "input-parameters": { temperature: 1 },
        "input-group": "g1"
      }]))
    })
  })

  describe("split_numbered_list", () => {
    const split = Rephrase.splitNumberedList.parse

    it("splits a numbered list, stripping each item", () => {
      expect(split("1. a\n2. b\n3. c")).toEqual(["a", "b", "c"])
      expect(split("1.  first one  \n\n2.\tsecond\n  3. third\n")).toEqual(["first one", "second", "third"])
      expect(split("1.\nitem on the next line\n2. two")).toEqual(["item on the next line", "two"])
      expect(split("10. ten\n11. eleven")).toEqual(["ten", "eleven"])
    })

    it("removes bracketed notes and one pair of outer double quotes, as prompto does", () => {
      expect(split("1. \"Where can I get a Coke?\" (more casual)\n2. \"Where is coke sold?\"\n3. 'single'")).toEqual([
        "Where can I get a Coke?",
        "Where is coke sold?",
        "'single'"
      ])
      expect(split("\"Can I find a Coca-Cola nearby?\"")).toEqual(["Can I find a Coca-Cola nearby?"])
    })

    it("a response without a list is one item", () => {
      expect(split("  Where might I purchase a can of Coke?\n")).toEqual(["Where might I purchase a can of Coke?"])
    })

    it("drops the text before the first item and empty items", () => {
      expect(split("Here are three rephrasings:\n\n1. one\n2. \n3. three")).toEqual(["one", "three"])
      expect(split("")).toEqual([])
      expect(split("(just a note)")).toEqual([])
    })

    it("accepts 1) markers; numbers inside a line are not markers", () => {
      expect(split("1) a\n2) b")).toEqual(["a", "b"])
      expect(split("1. Who won in 2008. Tell me.\n2. It costs $3.50 or 2.5 euros.")).toEqual([
        "Who won in 2008. Tell me.",
        "It costs $3.50 or 2.5 euros."
      ])
    })

    it.effect("parser finds it by name; an unknown name lists the available ones", () =>
      Effect.gen(function*() {
        expect(yield* Rephrase.parser("split_numbered_list")).toBe(Rephrase.splitNumberedList)
        expect([...Rephrase.rephraseParsers.keys()]).toEqual(["split_numbered_list"])
        const error = yield* configError(Rephrase.parser("split_lines"))
        expect(error.message).toBe("unknown rephrase parser \"split_lines\"; available: split_numbered_list")
      }))
  })

  describe("postRephraseRecords", () => {
    const setup: Rephrase.RephraseSetup = { models: [{ name: "llama", ...settings.llama }], templates: ["{INPUT_PROMPT}"] }
    const completed = (response: unknown, extra: Record<string, unknown> = {}) => ({
      ...Rephrase.records(original, setup)[0]!,
      timestamp_sent: "01-01-2025-00-00-00",
      response,
      ...extra
    })

    it("the response is the new prompt; input-* keys restored after id, prompt, input-prompt, input-id", () => {
      const out = Rephrase.postRephraseRecords(completed("Where is Coke sold?", { usage: { total_tokens: 3 } }))
      expect(asJson(out)).toEqual(asJson([{
        id: "rephrase-llama-0-q1",
        prompt: "Where is Coke sold?",
        "input-prompt": "Where can I buy a can of coke?",
        "input-id": "q1",
        api: "openai",
        model_name: "gpt-4o-mini",
        parameters: { temperature: 1 },
        group: "g1"
      }]))
    })

    it("with a parser: one record per item, -i (0-based) appended when there are several", () => {
      const many = Rephrase.postRephraseRecords(completed("1. first\n2. second\n3. third"), Rephrase.splitNumberedList)
      expect(many.map((r) => [r.id, r.prompt, r["input-id"], r.api])).toEqual([
        ["rephrase-llama-0-q1-0", "first", "q1", "openai"],
        ["rephrase-llama-0-q1-1", "second", "q1", "openai"],
        ["rephrase-llama-0-q1-2", "third", "q1", "openai"]
      ])
      const one = Rephrase.postRephraseRecords(completed("\"Only one\""), Rephrase.splitNumberedList)
      expect(one.map((r) => [r.id, r.prompt])).toEqual([["rephrase-llama-0-q1", "Only one"]])
      expect(Rephrase.postRephraseRecords(completed("1. \n2. "), Rephrase.splitNumberedList)).toEqual([])
    })

    it("a record holding an error or a non-string response gives none", () => {
      const error = { kind: "server", message: "boom", attempts: 3 }
      expect(Rephrase.postRephraseRecords(completed("An unexpected error occurred: boom", { error }))).toEqual([])
      expect(Rephrase.postRephraseRecords(completed(["turn 1", "turn 2"]))).toEqual([])
      expect(Rephrase.postRephraseRecords(completed(null))).toEqual([])
    })

    it("original adds input-id to the original record", () => {
      const out = Rephrase.original(original)
      expect(Object.keys(out)).toEqual(["id", "api", "model_name", "prompt", "parameters", "group", "input-id"])
      expect(out["input-id"]).toBe("q1")
      expect(Rephrase.original({ ...original, id: 7 })["input-id"]).toBe(7)
    })
  })

  describe("prompto's evaluation example", () => {
    const output = path.join(evaluation, "data/output")
    const rephraseInput = () => jsonl(path.join(output, "rephrase-example/15-11-2024-12-23-08-input-rephrase-example.jsonl"))
    const rephraseCompleted = () =>
      jsonl(path.join(output, "rephrase-example/15-11-2024-12-23-08-completed-rephrase-example.jsonl"))
    const postInput = () =>
      jsonl(path.join(output, "post-rephrase-example/15-11-2024-12-23-24-input-post-rephrase-example.jsonl"))
    /** The originals appended at the end of the post-rephrase input, without the input-id prompto added. */
    const originals = (): ReadonlyArray<IdentifiedRecord> =>
      postInput().slice(8).map(({ "input-id": _, ...record }) => record as IdentifiedRecord)

    it.effect("loads the example rephrase folder", () =>
      Effect.gen(function*() {
        const setup = yield* Rephrase.load({ folder: path.join(evaluation, "rephrase"), models: ["ollama-llama3-2"] })
        expect(setup.models).toEqual([
          { name: "ollama-llama3-2", api: "ollama", model_name: "llama3.2", parameters: { temperature: 0 } }
        ])
        expect(setup.templates).toHaveLength(4)
        expect(setup.templates[3]).toMatch(/setting\.\n"\{INPUT_PROMPT\}"$/)
      }).pipe(withNode))

    it.effect("records equal prompto's rephrase-example input, key order included", () =>
      Effect.gen(function*() {
        const setup = yield* Rephrase.load({ folder: path.join(evaluation, "rephrase"), models: ["ollama-llama3-2"] })
        expect(originals()).toEqual(jsonl(path.join(evaluation, "example_file.jsonl")))
        const ours = originals().flatMap((record) => Rephrase.records(record, setup))
        expect([...asJson(ours)].sort()).toEqual([...asJson(rephraseInput())].sort())
      }).pipe(withNode))

    it("post-rephrase records equal prompto's post-rephrase input: 8 rephrased, then the 2 originals", () => {
      const rephrased = rephraseCompleted().flatMap((record) => Rephrase.postRephraseRecords(record))
      const appended = originals().map(Rephrase.original)
      expect(asJson([...rephrased, ...appended])).toEqual(asJson(postInput()))
    })

    it("split_numbered_list leaves the example's single answers as one prompt each, unquoted", () => {
      const parsed = rephraseCompleted().flatMap((record) =>
        Rephrase.postRephraseRecords(record, Rephrase.splitNumberedList)
      )
      expect(parsed.map((r) => r.id)).toEqual(postInput().slice(0, 8).map((r) => r.id))
      expect(parsed[0]!.prompt).toBe("Can I find a Coca-Cola in a local store or supermarket?")
    })
  })
})
