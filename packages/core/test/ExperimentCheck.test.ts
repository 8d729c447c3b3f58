import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, type Scope } from "effect"
import * as nodeFs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as ExperimentCheck from "../src/ExperimentCheck.js"
import * as ExperimentFile from "../src/ExperimentFile.js"
import { knownApis, type Provider, type ProviderRegistry } from "../src/Provider.js"
import { MockProvider } from "../src/testing/index.js"

const knownList = knownApis.join(", ")

/** Writes `content` to `name` in a fresh temporary folder (removed with the scope) and returns its path. */
const tempFile = (name: string, content: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "prompto-experiment-check-" })
    const file = path.join(dir, name)
    yield* fs.writeFileString(file, content)
    return file
  })

const jsonl = (...records: ReadonlyArray<unknown>) => records.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n")

/** Runs a test body with temporary files, the Node file system and a registry of the given providers. */
const withRegistry = (...providers: ReadonlyArray<Provider>) =>
<A, E>(body: Effect.Effect<A, E, FileSystem.FileSystem | ProviderRegistry | Scope.Scope>) =>
  body.pipe(Effect.scoped, Effect.provide(Layer.merge(NodeFileSystem.layer, MockProvider.layer(...providers))))

const withTest = withRegistry(MockProvider.make("test"))

const checkText = (name: string, content: string, options: { readonly onEntry?: (verdict: ExperimentCheck.EntryVerdict) => void } = {}) =>
  Effect.gen(function*() {
    const file = yield* tempFile(name, content)
    return yield* ExperimentCheck.check(file, { ...options, displayName: name })
  })

const r = (id: number | string | undefined, api = "test", prompt: unknown = `prompt ${String(id)}`) =>
  id === undefined ? { api, model_name: "m", prompt } : { id, api, model_name: "m", prompt }

describe("ExperimentCheck", () => {
  it.effect("reports a valid file: counts, apis, the id warning, and formatReport", () =>
    Effect.gen(function*() {
      const report = yield* checkText("exp.jsonl", jsonl(r(1), r(undefined), "", r(3), "") + "\n")
      expect(report).toEqual({
        file: "exp.jsonl",
        records: 3,
        validRecords: 3,
        invalidRecords: 0,
        problems: [],
        problemCount: 0,
        warnings: [{ file: "exp.jsonl", line: 2, key: "id", message: "no id; assigned \"line-2\"" }],
        warningCount: 1,
        apis: new Map([["test", 3]])
      })
      expect(ExperimentCheck.isValid(report)).toBe(true)
      expect(ExperimentCheck.formatReport(report)).toEqual([
        "exp.jsonl: valid (3 prompts)",
        "  warning: exp.jsonl:2: key \"id\": no id; assigned \"line-2\""
      ])
    }).pipe(withTest))

  it.effect("names problems after the file path when no displayName is given", () =>
    Effect.gen(function*() {
      const file = yield* tempFile("named.jsonl", jsonl(r(1), "{oops"))
      const report = yield* ExperimentCheck.check(file)
      expect(report.file).toBe(file)
      expect(report.problems.map((p) => [p.file, p.line])).toEqual([[file, 2]])
      expect(ExperimentCheck.formatReport(report)[0]).toBe(`${file}: invalid (1 of 2 prompts have problems)`)
    }).pipe(withTest))

  it.effect("reports duplicate ids on key id, naming the line of the first", () =>
    Effect.gen(function*() {
      const report = yield* checkText(
        "dup.jsonl",
        jsonl({ ...r(1), id: "line-4" }, r(2), r(2), r(undefined), "", r(2))
      )
      expect(report.records).toBe(5)
      expect(report.invalidRecords).toBe(3)
      expect(report.validRecords).toBe(2)
      expect(report.problems).toEqual([
        { file: "dup.jsonl", line: 3, key: "id", message: "duplicate id 2 (first on line 2)" },
        { file: "dup.jsonl", line: 4, key: "id", message: "duplicate id \"line-4\" (first on line 1)" },
        { file: "dup.jsonl", line: 6, key: "id", message: "duplicate id 2 (first on line 2)" }
      ])
      expect(report.problemCount).toBe(3)
      expect(ExperimentCheck.isValid(report)).toBe(false)
    }).pipe(withTest))

  it.effect("reports an unknown api and a known api that is not installed, on key api", () =>
    Effect.gen(function*() {
      const report = yield* checkText("apis.jsonl", jsonl(r(1, "foo"), r(2, "openai"), r(3, "test")))
      expect(report.problems).toEqual([
        { file: "apis.jsonl", line: 1, key: "api", message: `"foo" is not a valid API (known: ${knownList})` },
        {
          file: "apis.jsonl",
          line: 2,
          key: "api",
          message: "API \"openai\" is not installed in this build of prompto (installed: test)"
        }
      ])
      expect([report.records, report.validRecords, report.invalidRecords]).toEqual([3, 1, 2])
      expect(report.apis).toEqual(new Map([["foo", 1], ["openai", 1], ["test", 1]]))
    }).pipe(withTest))

  it.effect("surfaces the provider's own check problems with their key", () =>
    Effect.gen(function*() {
      const report = yield* checkText(
        "provider.jsonl",
        jsonl(r(1), r(2, "test", ["a", "b"]), r(3, "test", "bad"))
      )
      expect(report.problems).toEqual([
        { file: "provider.jsonl", line: 2, key: "prompt", message: "test takes a single string" },
        { file: "provider.jsonl", line: 3, key: "parameters.temperature", message: "is required for bad prompts" },
        { file: "provider.jsonl", line: 3, key: "mode", message: "must be chat" }
      ])
      expect([report.validRecords, report.invalidRecords, report.problemCount]).toEqual([1, 2, 3])
      expect(ExperimentCheck.formatReport(report)).toEqual([
        "provider.jsonl: invalid (2 of 3 prompts have problems)",
        "  error: provider.jsonl:2: key \"prompt\": test takes a single string",
        "  error: provider.jsonl:3: key \"parameters.temperature\": is required for bad prompts",
        "  error: provider.jsonl:3: key \"mode\": must be chat"
      ])
    }).pipe(withRegistry(MockProvider.make("test", {
      check: (record) =>
        typeof record.prompt !== "string"
          ? [{ key: "prompt", message: "test takes a single string" }]
          : record.prompt === "bad"
          ? [{ key: "parameters.temperature", message: "is required for bad prompts" }, {
            key: "mode",
            message: "must be chat"
          }]
          : []
    }))))

  it.effect("a line whose prompt or parameters do not decode still gets the provider's other problems (a missing key)", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const provider = MockProvider.make("test", {
        check: (record) => {
          seen.push(record)
          return [
            { key: "prompt", message: "a problem the provider finds in the prompt" },
            { key: "parameters.max_tokens", message: "is required" },
            { key: "api", message: "at least one of the environment variables \"TEST_API_KEY\" must be set" }
          ]
        }
      })
      const report = yield* checkText(
        "both.jsonl",
        jsonl(
          { id: 1, api: "test", model_name: "m", prompt: 5, group: "g" },
          { id: 2, api: "test", model_name: "m", prompt: "p", parameters: "hot" },
          { id: 3, api: "foo", model_name: "m", prompt: ["a", { role: "user", content: "b" }] }
        )
      ).pipe(withRegistry(provider))
      const missingKey = "at least one of the environment variables \"TEST_API_KEY\" must be set"
      expect(report.problems.map((problem) => [problem.line, problem.key, problem.message])).toEqual([
        [1, "prompt", "must be a string, a list of strings, or a list of {\"role\", \"content\" | \"parts\"} messages"],
        [1, "parameters.max_tokens", "is required"],
        [1, "api", missingKey],
        [2, "parameters", "must be an object (a dictionary of API parameters)"],
        [2, "prompt", "a problem the provider finds in the prompt"],
        [2, "api", missingKey],
        [3, "prompt", "must be a string, a list of strings, or a list of {\"role\", \"content\" | \"parts\"} messages"],
        [3, "api", `"foo" is not a valid API (known: ${knownList})`]
      ])
      // the provider saw each line without the keys at fault, a placeholder text for the prompt
      expect(seen).toEqual([
        { prompt: "", id: 1, api: "test", model_name: "m", group: "g" },
        { prompt: "p", id: 2, api: "test", model_name: "m" }
      ])
      expect(report.invalidRecords).toBe(3)
    }))

  it.effect("does not run the provider check on a record whose api or model_name does not decode", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const report = yield* checkText("nocheck.jsonl", jsonl({ id: 1, api: "test", prompt: "p" }, r(2))).pipe(
        withRegistry(MockProvider.make("test", {
          check: (record) => {
            seen.push(record.id)
            return []
          }
        }))
      )
      expect(seen).toEqual([2])
      expect(report.problems).toEqual([
        { file: "nocheck.jsonl", line: 1, key: "model_name", message: "is required but missing" }
      ])
    }))

  it.effect("an empty file and a blank-only file are invalid: the file holds no prompts", () =>
    Effect.gen(function*() {
      for (const [name, content] of [["empty.jsonl", ""], ["blank.jsonl", "\n  \n\r\n\t\n"], ["header.csv", "id,api,model_name,prompt\n"]] as const) {
        const report = yield* checkText(name, content)
        expect(report).toEqual({
          file: name,
          records: 0,
          validRecords: 0,
          invalidRecords: 0,
          problems: [{ file: name, line: 0, message: "the file holds no prompts" }],
          problemCount: 1,
          warnings: [],
          warningCount: 0,
          apis: new Map()
        })
        expect(ExperimentCheck.isValid(report)).toBe(false)
        expect(ExperimentCheck.formatReport(report)).toEqual([
          `${name}: invalid (no prompts)`,
          `  error: ${name}: the file holds no prompts`
        ])
      }
    }).pipe(withTest))

  it.effect("onEntry receives each verdict in file order with its ordinal", () =>
    Effect.gen(function*() {
      const verdicts: Array<ExperimentCheck.EntryVerdict> = []
      const report = yield* checkText(
        "order.jsonl",
        jsonl(r("a"), "", "[1, 2]", r(undefined), r("a"), r("d", "foo"), "", "", r("e")),
        { onEntry: (verdict) => verdicts.push(verdict) }
      )
      expect(verdicts.map((v) => [v._tag, v.ordinal])).toEqual([
        ["Valid", 0],
        ["Invalid", 1],
        ["Valid", 2],
        ["Invalid", 3],
        ["Invalid", 4],
        ["Valid", 5]
      ])
      expect(verdicts.map((v) => (v._tag === "Valid" ? v.record.id : v.entry.line))).toEqual(["a", 3, "line-4", 5, 6, "e"])
      const invalid = verdicts.filter((v) => v._tag === "Invalid")
      expect(invalid.map((v) => v.problems.map((p) => [p.line, p.key]))).toEqual([
        [[3, undefined]],
        [[5, "id"]],
        [[6, "api"]]
      ])
      expect(invalid[0]!.entry.text).toBe("[1, 2]")
      expect([report.records, report.validRecords, report.invalidRecords]).toEqual([6, 3, 3])
    }).pipe(withTest))

  it.effect("formatReport lists problems then warnings, with file, line and key", () =>
    Effect.gen(function*() {
      const report = yield* checkText(
        "mixed.jsonl",
        jsonl(r(undefined), "not json", { id: 3, api: "test", model_name: "m", prompt: "p", parameters: [1] }, r(undefined, "foo"))
      )
      expect(ExperimentCheck.formatReport(report).map((line) => line.replace(/invalid JSON \(.*\)$/, "invalid JSON (…)")))
        .toEqual([
          "mixed.jsonl: invalid (3 of 4 prompts have problems)",
          "  error: mixed.jsonl:2: invalid JSON (…)",
          "  error: mixed.jsonl:3: key \"parameters\": must be an object (a dictionary of API parameters)",
          `  error: mixed.jsonl:4: key "api": "foo" is not a valid API (known: ${knownList})`,
          "  warning: mixed.jsonl:1: key \"id\": no id; assigned \"line-1\"",
          "  warning: mixed.jsonl:4: key \"id\": no id; assigned \"line-4\""
        ])
    }).pipe(withTest))

  it.effect("keeps at most maxListed problems and warnings but counts them all", () =>
    Effect.gen(function*() {
      const n = ExperimentCheck.maxListed + 2
      const bad = yield* checkText("many-bad.jsonl", Array.from({ length: n }, () => "x").join("\n"))
      expect([bad.records, bad.invalidRecords, bad.problems.length, bad.problemCount]).toEqual([n, n, 1000, n])
      expect(bad.problems[999]!.line).toBe(1000)
      const badLines = ExperimentCheck.formatReport(bad)
      // the same problem on many lines is one line naming them all
      expect(badLines).toHaveLength(1 + 1 + 1)
      expect(badLines[1]).toMatch(/^  error: many-bad\.jsonl:lines 1-1000: invalid JSON/)
      expect(badLines.at(-1)).toBe("... and 2 more")

      const noIds = yield* checkText("many-warnings.jsonl", jsonl(...Array.from({ length: n }, (_, i) => r(undefined, "test", `p${i}`))))
      expect([noIds.validRecords, noIds.warnings.length, noIds.warningCount]).toEqual([n, 1000, n])
      const warnLines = ExperimentCheck.formatReport(noIds)
      expect(warnLines[0]).toBe(`many-warnings.jsonl: valid (${n} prompts)`)
      expect(warnLines.at(-1)).toBe("... and 2 more")
    }).pipe(withTest))

  it.effect("checks CSV files too: a ragged row is invalid", () =>
    Effect.gen(function*() {
      const report = yield* checkText(
        "exp.csv",
        "id,api,model_name,prompt,parameters-temperature\n1,test,m,hi,0.5\n2,test,m\n3,openai,gpt-4o,hello,1\n"
      )
      expect(report.problems).toEqual([
        { file: "exp.csv", line: 3, message: "the row has 3 cells but the header has 5 columns" },
        {
          file: "exp.csv",
          line: 4,
          key: "api",
          message: "API \"openai\" is not installed in this build of prompto (installed: test)"
        }
      ])
      expect([report.records, report.validRecords]).toEqual([3, 1])
    }).pipe(withTest))

  it.effect("a missing file fails with ExperimentFileError", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "prompto-experiment-check-" })
      const file = path.join(dir, "nope.jsonl")
      const error = yield* Effect.flip(ExperimentCheck.check(file))
      expect(error).toBeInstanceOf(ExperimentFile.ExperimentFileError)
      expect(error.file).toBe(file)
      expect(error.message).toBe("cannot read the file: no such file or folder")
      const wrong = yield* Effect.flip(ExperimentCheck.check(path.join(dir, "exp.json")))
      expect(wrong.message).toBe("an experiment file must end in .jsonl or .csv")
    }).pipe(withTest))

  describe("prompto's own example files", () => {
    const examples = path.resolve(
      path.dirname(fileURLToPath(import.meta.url)),
      "../../../test/fixtures/prompto-examples"
    )
    const inputFiles = (): ReadonlyArray<string> => [
      ...nodeFs.readdirSync(examples, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .flatMap((d) => {
          const input = path.join(examples, d.name, "data", "input")
          return nodeFs.existsSync(input)
            ? nodeFs.readdirSync(input).filter((f) => f.endsWith(".jsonl")).map((f) => path.join(input, f))
            : []
        }),
      ...(nodeFs.existsSync(path.join(examples, "notebooks", "parallel_data_example", "input"))
        ? nodeFs.readdirSync(path.join(examples, "notebooks", "parallel_data_example", "input"))
          .filter((f) => f.endsWith(".jsonl"))
          .map((f) => path.join(examples, "notebooks", "parallel_data_example", "input", f))
        : [])
    ].sort()

    /** What the file holds, counted without the code under test. */
    const expected = (file: string) => {
      const records = nodeFs.readFileSync(file, "utf-8").split(/\r?\n/).filter((line) => line.trim() !== "")
        .map((line) => JSON.parse(line) as { api: string })
      const apis = new Map<string, number>()
      for (const record of records) apis.set(record.api, (apis.get(record.api) ?? 0) + 1)
      return { records: records.length, apis }
    }

    it.effect("every example input decodes with no problems when all prompto APIs are registered", () =>
      Effect.gen(function*() {
        const files = inputFiles()
        expect(files.filter((f) => f.includes(`${path.sep}data${path.sep}input${path.sep}`)).length).toBeGreaterThanOrEqual(12)
        for (const file of files) {
          const verdicts: Array<string> = []
          const report = yield* ExperimentCheck.check(file, { onEntry: (v) => verdicts.push(v._tag) })
          const want = expected(file)
          expect({ file, problems: ExperimentCheck.formatReport(report).slice(1) }).toEqual({ file, problems: [] })
          expect(report.records).toBe(want.records)
          expect(report.validRecords).toBe(want.records)
          expect(report.apis).toEqual(want.apis)
          expect(verdicts).toEqual(Array.from({ length: want.records }, () => "Valid"))
          expect(ExperimentCheck.isValid(report)).toBe(true)
        }
      }).pipe(withRegistry(...knownApis.map((api) => MockProvider.make(api)))))
  })

  describe("strategies", () => {
    it.effect("a bad strategy key is a problem naming its key; every model a strategy uses is checked by its provider", () =>
      withRegistry(
        MockProvider.make("test"),
        MockProvider.make("strict", { check: (record) => record.model_name === "bad" ? [{ key: "model_name", message: "unknown model" }] : [] })
      )(Effect.gen(function*() {
        const report = yield* checkText("s.jsonl", jsonl(
          { ...r(1), strategy: { name: "self_consistency", samples: 0 } },
          { ...r(2), strategy: "nope" },
          { ...r(3), strategy: { name: "mixture_of_agents", proposers: [{ api: "strict", model_name: "bad" }, { api: "missing" }] } },
          { ...r(4), strategy: { name: "self_consistency", use_n: true } },
          { ...r(5), strategy: { name: "critique", critic: { api: "strict", model_name: "good" } } }
        ))
        expect(report.invalidRecords).toBe(4)
        expect(report.problems.map((p) => [p.line, p.key])).toEqual([
          [1, "strategy.samples"],
          [2, "strategy"],
          [3, "strategy.proposers.0.model_name"],
          [3, "strategy.proposers.1.api"],
          [4, "strategy.use_n"]
        ])
        expect(report.problems[0]!.message).toBe("must be a whole number of at least 1")
        expect(report.problems[2]!.message).toBe(`strict model "bad": unknown model`)
      })))
  })
})
