import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Expand from "../src/Expand.js"
import * as ExperimentFile from "../src/ExperimentFile.js"

const made: Array<string> = []
afterAll(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

/** A temp folder holding the given files (text or bytes); returns a function from a name to its path. */
const inFolder = (files: Record<string, string | Uint8Array>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-expand-"))
  made.push(dir)
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return (name: string) => path.join(dir, name)
}

const jsonl = (...values: ReadonlyArray<unknown>) => values.map((value) => JSON.stringify(value)).join("\n") + "\n"

const twoModels = JSON.stringify([
  { api: "test", model_name: "alpha" },
  { api: "test", model_name: "beta", parameters: { latency_ms: 5 } }
])

/** batch-prompt's README example. */
const batchPrompt = {
  "templates.txt": "I like {food}\nI hate {food}\n",
  "vars.jsonl": jsonl({ food: "pizza" }, { food: "apples" }),
  "vars.csv": "food\npizza\napples\n",
  "models.json": twoModels
}

const collect = (options: Expand.Options) =>
  Stream.runCollect(Expand.records(options)).pipe(Effect.map(Chunk.toReadonlyArray), Effect.provide(NodeContext.layer))

const check = (options: Expand.Options & { readonly output?: string }) =>
  Expand.check(options).pipe(Effect.provide(NodeContext.layer))

const write = (options: Expand.WriteOptions) => Expand.write(options).pipe(Effect.provide(NodeContext.layer))

/** The problems as `file:line: key "k": message` lines, with the temp folder taken out of the paths. */
const problemLines = (report: { readonly problems: ReadonlyArray<ExperimentFile.LineProblem> }) =>
  report.problems.map((problem) =>
    ExperimentFile.formatProblem(problem).replaceAll(path.dirname(problem.file) + path.sep, "")
  )

const readLines = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((text) => text !== "").map((text) => JSON.parse(text) as Record<string, unknown>)

describe("Expand.records", () => {
  it.effect("batch-prompt's README example: template-major, four prompts", () => {
    const file = inFolder(batchPrompt)
    return Effect.gen(function*() {
      for (const vars of ["vars.jsonl", "vars.csv"]) {
        const records = yield* collect({ templates: file("templates.txt"), vars: file(vars), models: file("models.json") })
        const alpha = records.filter((record) => record.model_name === "alpha")
        expect(alpha.map((record) => record.prompt)).toEqual(["I like pizza", "I like apples", "I hate pizza", "I hate apples"])
        expect(alpha.map((record) => [record.template, record.vars, record.template_index, record.vars_index])).toEqual([
          ["I like {food}", { food: "pizza" }, 0, 0],
          ["I like {food}", { food: "apples" }, 0, 1],
          ["I hate {food}", { food: "pizza" }, 1, 0],
          ["I hate {food}", { food: "apples" }, 1, 1]
        ])
        // each model right after the other, for each template and row
        expect(records.map((record) => record.id)).toEqual([
          "t0-v0-m0", "t0-v0-m1", "t0-v1-m0", "t0-v1-m1", "t1-v0-m0", "t1-v0-m1", "t1-v1-m0", "t1-v1-m1"
        ])
        expect(records[1]).toMatchObject({ api: "test", model_name: "beta", parameters: { latency_ms: 5 } })
        expect(records[0]).not.toHaveProperty("parameters")
        expect(records[0]).not.toHaveProperty("sample")
      }
    })
  })

  it.effect("JSONL templates name their own api and model: exactly batch-prompt's four lines", () => {
    const file = inFolder({
      "templates.jsonl": jsonl(
        { api: "test", model_name: "m", prompt: "I like {food}" },
        { api: "test", model_name: "m", prompt: "I hate {food}" }
      ),
      "vars.jsonl": batchPrompt["vars.jsonl"]
    })
    return Effect.gen(function*() {
      const records = yield* collect({ templates: file("templates.jsonl"), vars: file("vars.jsonl") })
      expect(records).toEqual([
        { id: "t0-v0", api: "test", model_name: "m", prompt: "I like pizza", template: "I like {food}", vars: { food: "pizza" }, template_index: 0, vars_index: 0 },
        { id: "t0-v1", api: "test", model_name: "m", prompt: "I like apples", template: "I like {food}", vars: { food: "apples" }, template_index: 0, vars_index: 1 },
        { id: "t1-v0", api: "test", model_name: "m", prompt: "I hate pizza", template: "I hate {food}", vars: { food: "pizza" }, template_index: 1, vars_index: 0 },
        { id: "t1-v1", api: "test", model_name: "m", prompt: "I hate apples", template: "I hate {food}", vars: { food: "apples" }, template_index: 1, vars_index: 1 }
      ])
    })
  })

  it.effect("two models and repeats 3: 24 lines, distinct ids, samples 0 to 2", () => {
    const file = inFolder(batchPrompt)
    return Effect.gen(function*() {
      const records = yield* collect({
        templates: file("templates.txt"),
        vars: file("vars.jsonl"),
        models: file("models.json"),
        repeats: 3,
        idPrefix: "exp-"
      })
      expect(records).toHaveLength(24)
      expect(new Set(records.map((record) => record.id)).size).toBe(24)
      expect(records.slice(0, 4).map((record) => [record.id, record.model_name, record.sample])).toEqual([
        ["exp-t0-v0-m0-s0", "alpha", 0],
        ["exp-t0-v0-m0-s1", "alpha", 1],
        ["exp-t0-v0-m0-s2", "alpha", 2],
        ["exp-t0-v0-m1-s0", "beta", 0]
      ])
      expect(records.at(-1)).toMatchObject({ id: "exp-t1-v1-m1-s2", prompt: "I hate apples", template_index: 1, vars_index: 1, sample: 2 })
    })
  })

  it.effect("duplicate template lines are allowed and get distinct ids", () => {
    const file = inFolder({ ...batchPrompt, "templates.txt": "Say {food}\n\nSay {food}\n" })
    return Effect.gen(function*() {
      const records = yield* collect({ templates: file("templates.txt"), vars: file("vars.csv"), models: file("models.json") })
      expect(records).toHaveLength(8)
      expect(new Set(records.map((record) => record.id)).size).toBe(8)
      expect(new Set(records.map((record) => record.prompt))).toEqual(new Set(["Say pizza", "Say apples"]))
      expect(records.map((record) => record.template_index)).toEqual([0, 0, 0, 0, 1, 1, 1, 1])
    })
  })

  it.effect("JSONL chat-history templates: placeholders in several messages, other keys kept, parameters merged under the model's", () => {
    const history = [
      { role: "system", content: "You are {persona}." },
      { role: "user", content: "Tell me about {topic}." },
      { role: "assistant", content: "Which part of {topic}?" },
      { role: "user", content: "{question} {{not a placeholder}}" }
    ]
    const file = inFolder({
      "templates.jsonl": jsonl(
        { prompt: history, api: "ignored", model_name: "ignored", parameters: { temperature: 0, latency_ms: 1 }, group: "chat", strategy: "two_turn", note: "kept" },
        { prompt: [{ role: "user", parts: ["{question}", "as {persona}"] }] },
        { prompt: ["Hi {persona}", "and {topic}"] }
      ),
      "vars.jsonl": jsonl({ persona: "a pirate", topic: "ships", question: { n: 1, list: ["a"] } }),
      "models.json": twoModels
    })
    return Effect.gen(function*() {
      const records = yield* collect({ templates: file("templates.jsonl"), vars: file("vars.jsonl"), models: file("models.json") })
      expect(records).toHaveLength(6)
      expect(records[0]).toEqual({
        id: "t0-v0-m0",
        api: "test",
        model_name: "alpha",
        prompt: [
          { role: "system", content: "You are a pirate." },
          { role: "user", content: "Tell me about ships." },
          { role: "assistant", content: "Which part of ships?" },
          { role: "user", content: "{\"n\":1,\"list\":[\"a\"]} {not a placeholder}" }
        ],
        parameters: { temperature: 0, latency_ms: 1 },
        group: "chat",
        strategy: "two_turn",
        note: "kept",
        template: history,
        vars: { persona: "a pirate", topic: "ships", question: { n: 1, list: ["a"] } },
        template_index: 0,
        vars_index: 0
      })
      // the model's parameters win over the template's
      expect(records[1]!.parameters).toEqual({ temperature: 0, latency_ms: 5 })
      expect(records[2]!.prompt).toEqual([{ role: "user", parts: ["{\"n\":1,\"list\":[\"a\"]}", "as a pirate"] }])
      expect(records[4]!.prompt).toEqual(["Hi a pirate", "and ships"])
    })
  })

  it.effect("{{ and }} are literal braces; a substituted value is never parsed again; \\n in a .txt line is a newline", () => {
    const file = inFolder({
      "templates.txt": "Reply as JSON: {{\"answer\": \"{food}\"}}\\nThen stop. {{{food}}}\n",
      "vars.jsonl": jsonl({ food: "{food} }{" }),
      "models.json": twoModels
    })
    return Effect.gen(function*() {
      const records = yield* collect({ templates: file("templates.txt"), vars: file("vars.jsonl"), models: file("models.json") })
      expect(records[0]!.prompt).toBe("Reply as JSON: {\"answer\": \"{food} }{\"}\nThen stop. {{food} }{}")
      expect(records[0]!.template).toBe("Reply as JSON: {{\"answer\": \"{food}\"}}\nThen stop. {{{food}}}")
    })
  })

  it.effect("CSV values stay text: 007 is 007, an empty cell is an empty value", () => {
    const file = inFolder({
      "templates.txt": "[{a}] [{b}]\n",
      "vars.csv": "a,b\n007,\nTrue,\"x, \"\"y\"\"\"\n",
      "models.json": twoModels
    })
    return Effect.gen(function*() {
      const records = yield* collect({ templates: file("templates.txt"), vars: file("vars.csv"), models: file("models.json") })
      expect(records.filter((record) => record.model_name === "alpha").map((record) => [record.prompt, record.vars])).toEqual([
        ["[007] []", { a: "007", b: "" }],
        ["[True] [x, \"y\"]", { a: "True", b: "x, \"y\"" }]
      ])
    })
  })
})

describe("Expand.check: every problem with its file, line and key", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly files: Record<string, string | Uint8Array>
    readonly options?: Partial<Expand.Options> & { readonly output?: string }
    /** Each problem line; a pattern where the text comes from Node's JSON parser (it differs between versions). */
    readonly problems: ReadonlyArray<string | RegExp>
  }> = [
    {
      name: "a missing variable (JSONL rows), named on its line",
      files: { "vars.jsonl": jsonl({ food: "pizza" }, { drink: "tea", food: "x" }, { meal: "soup" }), "templates.txt": "I like {food}\nI drink {drink}\n" },
      options: { allowUnused: true },
      problems: [
        "vars.jsonl:1: key \"drink\": no value for the placeholder {drink} used by templates.txt:2",
        "vars.jsonl:3: key \"food\": no value for the placeholder {food} used by templates.txt:1",
        "vars.jsonl:3: key \"drink\": no value for the placeholder {drink} used by templates.txt:2"
      ]
    },
    {
      name: "a missing variable (CSV): no column for it, named on the header",
      files: { "vars.csv": "meal\nsoup\n", "templates.txt": "I like {food}\n\nI hate {food}\n" },
      options: { allowUnused: true },
      problems: ["vars.csv:1: key \"food\": no column for the placeholder {food} used by templates.txt:1, 3"]
    },
    {
      name: "a missing variable is an error even with allowUnused",
      files: { "vars.jsonl": jsonl({}), "templates.txt": "{food}\n" },
      options: { allowUnused: true },
      problems: ["vars.jsonl:1: key \"food\": no value for the placeholder {food} used by templates.txt:1"]
    },
    {
      name: "an unused variable (CSV column)",
      files: { "vars.csv": "food,colour\npizza,red\n" },
      problems: ["vars.csv:1: key \"colour\": the variable is used by no template (allow it with --allow-unused)"]
    },
    {
      name: "an unused variable (JSONL key), named once, on the line it first shows",
      files: { "vars.jsonl": jsonl({ food: "a" }, { food: "b", colour: "red" }, { food: "c", colour: "blue" }) },
      problems: ["vars.jsonl:2: key \"colour\": the variable is used by no template (allow it with --allow-unused)"]
    },
    {
      name: "an unclosed brace, and every other stray brace, with its column",
      files: { "templates.txt": "I like {food}\n\nI like {food and {food}\nbad {1} { a } } {} {{ok}}\n" },
      problems: [
        "templates.txt:3: unclosed \"{\" at column 8 (\"{food and \"): close it with \"}\", or write \"{{\" for a literal brace",
        "templates.txt:4: \"{1}\" at column 5 is not a placeholder: a name is a letter or \"_\" followed by letters, digits and \"_\" (write \"{{\" and \"}}\" for literal braces)",
        "templates.txt:4: \"{ a }\" at column 9 is not a placeholder: a name is a letter or \"_\" followed by letters, digits and \"_\" (write \"{{\" and \"}}\" for literal braces)",
        "templates.txt:4: \"}\" at column 15 has no \"{\" before it (write \"}}\" for a literal brace)",
        "templates.txt:4: \"{}\" at column 17 is not a placeholder: a name is a letter or \"_\" followed by letters, digits and \"_\" (write \"{{\" and \"}}\" for literal braces)"
      ]
    },
    {
      name: "an unclosed brace in a JSONL chat message, named by its key",
      files: {
        "templates.jsonl": jsonl({ prompt: [{ role: "user", content: "fine {food}" }, { role: "user", content: "about {food" }] })
      },
      problems: [
        "templates.jsonl:1: key \"prompt.1.content\": unclosed \"{\" at character 7 of the string (\"{food\"): close it with \"}\", or write \"{{\" for a literal brace"
      ]
    },
    {
      name: "an empty vars file",
      files: { "vars.jsonl": "\n\n" },
      problems: ["vars.jsonl: the file has no rows of variables"]
    },
    {
      name: "a CSV with a header only",
      files: { "vars.csv": "food\n" },
      problems: ["vars.csv:1: the file has a header but no rows of variables"]
    },
    {
      name: "a CSV row with the wrong number of cells, and a duplicate column",
      files: { "vars.csv": "food,food\npizza,apples\npizza\n" },
      problems: [
        "vars.csv:1: key \"food\": the column appears twice in the header",
        "vars.csv:3: the row has 1 cells but the header has 2 columns"
      ]
    },
    {
      name: "non-UTF-8 input: a template line, a CSV value, a JSONL value",
      files: {
        "templates.txt": Buffer.concat([Buffer.from("I like {food}\n"), Buffer.from([0x49, 0xff, 0x20, 0x7b, 0x7d, 0x0a])]),
        "vars.csv": Buffer.concat([Buffer.from("food\npizza\n"), Buffer.from([0x61, 0xff, 0x0a])])
      },
      problems: [
        "templates.txt:2: the line is not valid UTF-8 text (save the file as UTF-8)",
        "vars.csv:3: key \"food\": the value is not valid UTF-8 text (save the file as UTF-8)"
      ]
    },
    {
      name: "non-UTF-8 in a JSONL vars line",
      files: { "vars.jsonl": Buffer.concat([Buffer.from("{\"food\": \"a\"}\n{\"food\": \""), Buffer.from([0xff]), Buffer.from("\"}\n")]) },
      problems: ["vars.jsonl:2: key \"food\": the value is not valid UTF-8 text (save the file as UTF-8)"]
    },
    {
      name: "bad JSON in a vars line",
      files: { "vars.jsonl": "{\"food\": \"a\"}\n{oops\n[1]\n" },
      problems: [
        /^vars\.jsonl:2: invalid JSON \(.+\)$/,
        "vars.jsonl:3: must be a JSON object, got an array"
      ]
    },
    {
      name: "repeats 0",
      files: {},
      options: { repeats: 0 },
      problems: ["--repeats: must be a whole number of at least 1, got 0"]
    },
    {
      name: "repeats negative",
      files: {},
      options: { repeats: -1 },
      problems: ["--repeats: must be a whole number of at least 1, got -1"]
    },
    {
      name: "repeats not a whole number",
      files: {},
      options: { repeats: 1.5 },
      problems: ["--repeats: must be a whole number of at least 1, got 1.5"]
    },
    {
      name: "an empty templates file",
      files: { "templates.txt": "\n   \n\\n\n" },
      problems: ["templates.txt: the file has no templates (each non-blank line is one)"]
    },
    {
      name: "a models file that is not a list",
      files: { "models.json": "{\"api\": \"test\"}" },
      problems: ["models.json: must be a JSON list of {\"api\", \"model_name\", \"parameters\"} objects"]
    },
    {
      name: "a models file with an empty list",
      files: { "models.json": "[]" },
      problems: ["models.json: holds no models (the list is empty)"]
    },
    {
      name: "a models file with bad entries, each named by its key",
      files: { "models.json": JSON.stringify([{ api: "test" }, { api: "test", model_name: "", temperature: 1 }, { api: "test", model_name: "m", parameters: [] }]) },
      problems: [
        "models.json: key \"0.model_name\": is required but missing",
        "models.json: key \"1.temperature\": is unexpected, expected: \"api\" | \"model_name\" | \"parameters\"",
        "models.json: key \"1.model_name\": must be a non-empty string",
        "models.json: key \"2.parameters\": must be an object (a dictionary of API parameters)"
      ]
    },
    {
      name: "a models file that is not JSON",
      files: { "models.json": "[{\"api\": \"test\",\n" },
      problems: [/^models\.json: invalid JSON \([^\n]+\)$/]
    },
    {
      name: "no models file: a .txt template has no api",
      files: { "templates.txt": "I like {food}\nI hate {food}\n" },
      options: { models: undefined },
      problems: [
        "templates.txt:1: key \"api\": is required: a .txt template is only a prompt, so give a models file (--models) to say which api and model_name to send it to"
      ]
    },
    {
      name: "no models file: a .jsonl template without api or model_name",
      files: { "templates.jsonl": jsonl({ api: "test", model_name: "m", prompt: "{food}" }, { api: "test", prompt: "{food}" }, { prompt: "{food}" }) },
      options: { models: undefined },
      problems: [
        "templates.jsonl:2: key \"model_name\": is required when no models file (--models) is given",
        "templates.jsonl:3: key \"api\": is required when no models file (--models) is given (and so is \"model_name\")"
      ]
    },
    {
      name: "bad JSONL template lines: a key the expansion sets, a bad prompt, bad JSON",
      files: { "templates.jsonl": jsonl({ prompt: "{food}", id: 7 }, { prompt: 5 }, { prompt: "{food}", group: 1 }) + "{nope\n" },
      problems: [
        "templates.jsonl:1: key \"id\": is set by prompto expand on every generated line: remove it from the template",
        "templates.jsonl:2: key \"prompt\": must be a string, a list of strings, or a list of {\"role\", \"content\" | \"parts\"} messages",
        "templates.jsonl:3: key \"group\": must be a string",
        /^templates\.jsonl:4: invalid JSON \(.+\)$/
      ]
    },
    {
      name: "files that are missing or of the wrong kind",
      files: { "templates.md": "x" },
      options: { templates: "templates.md", vars: "absent.csv", models: "models.yaml", output: "out.txt" },
      problems: [
        "out.txt: the output file must end in .jsonl or .csv",
        "templates.md: a templates file must end in .txt or .jsonl",
        "models.yaml: a models file must end in .json",
        "absent.csv: cannot read the file: no such file or folder"
      ]
    },
    {
      name: "a .csv output cannot hold a chat history or a nested parameter",
      files: {
        "templates.jsonl": jsonl({ prompt: ["a {food}", "b"] }, { prompt: "{food}", parameters: { stop: ["x"] }, strategy: { name: "critique" } })
      },
      options: { output: "out.csv" },
      problems: [
        "templates.jsonl:1: key \"prompt\": is a list of turns or messages: in a .csv output it would not read back as written: write a .jsonl file instead",
        "templates.jsonl:2: key \"strategy\": in a .csv output it would not read back as written: write a .jsonl file instead",
        "templates.jsonl:2: key \"parameters.stop\": in a .csv output it would not read back as written: write a .jsonl file instead"
      ]
    }
  ]
  for (const testCase of cases) {
    it.effect(testCase.name, () => {
      const file = inFolder({ ...batchPrompt, ...testCase.files })
      const names = { templates: "templates.txt", vars: "vars.jsonl", models: "models.json", ...testCase.options }
      for (const name of Object.keys(testCase.files)) {
        if (name.startsWith("templates.")) names.templates = names.templates === "templates.txt" ? name : names.templates
        if (name.startsWith("vars.")) names.vars = name
      }
      return Effect.gen(function*() {
        const report = yield* check({
          ...names,
          templates: file(names.templates),
          vars: file(names.vars),
          models: names.models === undefined ? undefined : file(names.models),
          ...(names.output === undefined ? {} : { output: file(names.output) })
        })
        const lines = problemLines(report)
        expect(lines).toHaveLength(testCase.problems.length)
        testCase.problems.forEach((expected, i) =>
          typeof expected === "string" ? expect(lines[i]).toBe(expected) : expect(lines[i]).toMatch(expected)
        )
        expect(report.problemCount).toBe(testCase.problems.length)
      })
    })
  }

  it.effect("allowUnused: an unused variable is allowed and kept in vars", () => {
    const file = inFolder({ ...batchPrompt, "vars.csv": "food,colour\npizza,red\n" })
    return Effect.gen(function*() {
      const options = { templates: file("templates.txt"), vars: file("vars.csv"), models: file("models.json"), allowUnused: true }
      const report = yield* check(options)
      expect(report).toMatchObject({ problems: [], problemCount: 0, templates: 2, rows: 1, models: 2, samples: 1, lines: 4 })
      const records = yield* collect(options)
      expect(records[0]).toMatchObject({ prompt: "I like pizza", vars: { food: "pizza", colour: "red" } })
    })
  })

  it.effect("many problems: the first maxListed listed, all counted", () => {
    const file = inFolder({ ...batchPrompt, "vars.jsonl": jsonl(...Array.from({ length: 500 }, () => ({ drink: "tea" }))) })
    return Effect.gen(function*() {
      const report = yield* check({ templates: file("templates.txt"), vars: file("vars.jsonl"), models: file("models.json"), allowUnused: true })
      expect(report.problems).toHaveLength(Expand.maxListed)
      expect(report.problemCount).toBe(500)
      const error = yield* Effect.flip(collect({ templates: file("templates.txt"), vars: file("vars.jsonl"), models: file("models.json"), allowUnused: true }))
      expect(error._tag).toBe("ExpandError")
      expect(error.message.split("\n")).toHaveLength(Expand.maxListed + 1)
      expect(error.message.split("\n").at(-1)).toBe(`... and ${500 - Expand.maxListed} more problems`)
    })
  })
})

describe("Expand.write", () => {
  it.effect("a bad input writes nothing, and leaves an existing output as it was", () => {
    const file = inFolder({ ...batchPrompt, "vars.jsonl": jsonl({ food: "pizza" }, { drink: "tea" }), "out.jsonl": "old\n" })
    return Effect.gen(function*() {
      const error = yield* Effect.flip(write({
        templates: file("templates.txt"),
        vars: file("vars.jsonl"),
        models: file("models.json"),
        output: file("out.jsonl")
      }))
      expect(error._tag).toBe("ExpandError")
      expect(error.message).toContain("vars.jsonl:2: key \"food\": no value for the placeholder {food}")
      expect(fs.readFileSync(file("out.jsonl"), "utf8")).toBe("old\n")
      expect(fs.readdirSync(path.dirname(file("out.jsonl"))).filter((name) => name.includes("partial"))).toEqual([])
    })
  })

  it.effect("refuses to write over an input", () => {
    const file = inFolder(batchPrompt)
    return Effect.gen(function*() {
      const error = yield* Effect.flip(write({ templates: file("templates.txt"), vars: file("vars.jsonl"), models: file("models.json"), output: file("vars.jsonl") }))
      expect(error.message).toContain("the output file must not be one of the input files")
      expect(fs.readFileSync(file("vars.jsonl"), "utf8")).toBe(batchPrompt["vars.jsonl"])
    })
  })

  it.effect("JSONL output: the lines of records, and a one-line account", () => {
    const file = inFolder(batchPrompt)
    return Effect.gen(function*() {
      const options = { templates: file("templates.txt"), vars: file("vars.jsonl"), models: file("models.json"), repeats: 3 }
      const result = yield* write({ ...options, output: file("out/expanded.jsonl") })
      expect(Expand.format(result)).toBe(`wrote 24 lines to ${file("out/expanded.jsonl")} (2 templates × 2 rows × 2 models × 3 samples)`)
      expect(readLines(file("out/expanded.jsonl"))).toEqual(yield* collect(options))
    })
  })

  it.effect("CSV output read back through ExperimentFile.readCsv gives the same records (vars stays a JSON string)", () => {
    const file = inFolder({
      ...batchPrompt,
      "templates.jsonl": jsonl(
        { prompt: "I like {food}\nvery much", parameters: { temperature: 0.5, stream: false }, group: "likes", note: "multi, line" },
        { prompt: "I hate {food}", expected_response: "no" }
      ),
      "models.json": JSON.stringify([
        { api: "test", model_name: "alpha", parameters: { max_tokens: 10 } },
        { api: "test", model_name: "beta" }
      ])
    })
    return Effect.gen(function*() {
      const options = { templates: file("templates.jsonl"), vars: file("vars.csv"), models: file("models.json"), repeats: 2 }
      const result = yield* write({ ...options, output: file("out.csv") })
      expect(result.lines).toBe(16)
      const expected = yield* collect(options)
      const entries = yield* Stream.runCollect(ExperimentFile.readCsv(file("out.csv"))).pipe(
        Effect.map(Chunk.toReadonlyArray),
        Effect.provide(NodeContext.layer)
      )
      expect(entries.flatMap((entry) => entry.problems)).toEqual([])
      const readBack = entries.map((entry) => entry.value as Record<string, unknown>)
      expect(readBack.map((record) => record.prompt)).toEqual(expected.map((record) => record.prompt))
      expect(readBack.map((record) => ({ ...record, vars: JSON.parse(record.vars as string) }))).toEqual(expected)
      // and every line decodes as an experiment record
      for (const entry of entries) expect(ExperimentFile.decode("out.csv", entry)._tag).toBe("Valid")
    })
  })

  it.effect("streams: 2 templates × 100,000 vars rows through a file", () => {
    const rows = 100_000
    const file = inFolder({
      "templates.txt": "I like {food} number {n}\nI hate {food}\n",
      "vars.csv": "food,n\n" + Array.from({ length: rows }, (_, i) => `food ${i},${i}`).join("\n") + "\n",
      "models.json": JSON.stringify([{ api: "test", model_name: "m" }])
    })
    return Effect.gen(function*() {
      const output = file("big.jsonl")
      const result = yield* write({ templates: file("templates.txt"), vars: file("vars.csv"), models: file("models.json"), output, allowUnused: true })
      expect(result.lines).toBe(2 * rows)
      const text = fs.readFileSync(output, "utf8")
      const lines = text.split("\n").filter((line) => line !== "")
      expect(lines).toHaveLength(2 * rows)
      expect(JSON.parse(lines[rows - 1]!)).toMatchObject({ id: `t0-v${rows - 1}-m0`, prompt: `I like food ${rows - 1} number ${rows - 1}` })
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ id: `t1-v${rows - 1}-m0`, prompt: `I hate food ${rows - 1}` })
      expect(fs.readdirSync(path.dirname(output)).filter((name) => name.includes("partial"))).toEqual([])
    })
  }, 120_000)
})
