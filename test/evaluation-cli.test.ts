/**
 * End-to-end tests of evaluation from the command line: `prompto run` with scorers, judges and
 * rephrasers on the built-in `test` API (the example in examples/evaluation), and
 * `prompto judge` / `prompto_create_judge_file` on prompto's own judge fixture.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "vitest"
import { childEnv, ls, readJsonl, runFilesOf, tempDirs } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, "..")
const binDir = path.join(repoRoot, "packages", "cli", "bin")
const example = path.join(repoRoot, "examples", "evaluation")
const promptoEvaluation = path.resolve(repoRoot, "test", "fixtures", "prompto-examples", "evaluation")
const testTimeoutMs = 90_000

const tempDir = tempDirs()

/** A temp folder holding the evaluation example: capitals.jsonl, judge/ and rephrase/. */
const exampleDir = (): string => {
  const dir = tempDir(path.join(example, "capitals.jsonl"))
  fs.cpSync(path.join(example, "judge"), path.join(dir, "judge"), { recursive: true })
  fs.cpSync(path.join(example, "rephrase"), path.join(dir, "rephrase"), { recursive: true })
  return dir
}

const run = (bin: string, args: ReadonlyArray<string>, cwd: string) =>
  spawnCli(path.join(binDir, bin), args, { cwd, env: childEnv, timeoutMs: 60_000 })

describe.concurrent("evaluation from the CLI", () => {
  it("run --scorer match,includes --judge-folder --judge: completed, judge and summary files", async ({ expect }) => {
    const dir = exampleDir()
    const result = await run("prompto.js", [
      "run", "-f", "capitals.jsonl", "-d", "data", "-mq", "6000",
      "--scorer", "match, includes,match", "-jf", "judge", "-j", "strict,lenient", "-jt", "template.txt,json-template.txt",
      "-jp", "yes_no"
    ], dir)
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/)
    expect(result.status).toBe(0)
    const main = path.join(dir, "data", "output", "capitals")
    const [completedFile] = runFilesOf(main, "completed", "capitals")
    const [summaryFile] = runFilesOf(main, "summary", "capitals")
    expect(completedFile).toBeDefined()
    expect(summaryFile).toBeDefined()
    const completed = readJsonl(path.join(main, completedFile!))
    expect(completed.map((record) => [record.id, record.match, record.includes]).sort()).toEqual([
      ["australia", false, false],
      ["canada", false, true],
      ["france", true, true],
      ["italy", false, true],
      ["japan", true, true],
      ["spain", false, false]
    ])

    const judgeDir = path.join(dir, "data", "output", "judge-capitals")
    const timestamp = completedFile!.slice(0, 19)
    expect(ls(judgeDir)).toEqual([
      `${timestamp}-completed-judge-capitals.jsonl`,
      `${timestamp}-input-judge-capitals.jsonl`,
      `${timestamp}-log-judge-capitals.txt`
    ])
    const judged = readJsonl(path.join(judgeDir, `${timestamp}-completed-judge-capitals.jsonl`))
    const expectedIds = ["strict", "lenient"].flatMap((judge) =>
      ["template", "json-template"].flatMap((template) =>
        completed.map((record) => `judge-${judge}-${template}-${String(record.id)}`)
      )
    )
    expect(judged.map((record) => record.id).sort()).toEqual(expectedIds.sort())
    const france = judged.find((record) => record.id === "judge-lenient-json-template-france")!
    expect(france).toMatchObject({
      template_name: "json-template",
      api: "test",
      model_name: "judge-lenient",
      "input-id": "france",
      "input-response": "Paris",
      "input-match": true,
      response: "Yes.",
      yes_no: true
    })
    // the template's own braces are sent as written
    expect(String(france.prompt)).toContain(`{"correct": true, "reason": "..."}`)
    expect(String(france.prompt)).toContain("ANSWER: Paris")

    const summary = JSON.parse(fs.readFileSync(path.join(main, summaryFile!), "utf8"))
    expect(summary.scorers).toEqual(expect.arrayContaining(["match", "includes", "strict/template", "lenient/json-template"]))
    const matchAll = summary.rows.find((row: { scorer: string; by: string }) => row.scorer === "match" && row.by === "all")
    expect(matchAll).toMatchObject({ count: 6, kind: "boolean" })
    expect(matchAll.mean).toBeCloseTo(2 / 6)
    expect(result.stdout).toMatch(/match\s+all\s+6\s+33\.3%/)
    expect(result.stdout).toContain("judge-capitals: ")
  }, testTimeoutMs)

  it("--scorer path/to/module.ts:exportName loads a scorer of your own (TypeScript and JavaScript)", async ({ expect }) => {
    const dir = exampleDir()
    fs.mkdirSync(path.join(dir, "scorers"))
    fs.writeFileSync(
      path.join(dir, "scorers", "mine.ts"),
      `export const short = (record: { readonly response: unknown }): boolean => String(record.response).length < 6\n`
    )
    fs.writeFileSync(
      path.join(dir, "scorers", "words.js"),
      `export const words = { name: "words", score: (record) => String(record.response).split(/\\s+/).length }\n`
    )
    const result = await run("prompto.js", [
      "run", "-f", "capitals.jsonl", "-d", "data", "-mq", "6000", "-s", "scorers/mine.ts:short,scorers/words.js:words"
    ], dir)
    expect(result.stderr).toBe(result.stderr.replace(/at .*\.ts:\d+/, ""))
    expect(result.status).toBe(0)
    const main = path.join(dir, "data", "output", "capitals")
    const completed = readJsonl(path.join(main, runFilesOf(main, "completed", "capitals")[0]!))
    expect(completed.map((record) => [record.id, record.short, record.words]).sort()).toEqual([
      ["australia", false, 1],
      ["canada", false, 6],
      ["france", true, 1],
      ["italy", true, 1],
      ["japan", true, 1],
      ["spain", false, 1]
    ])
    expect(result.stdout).toMatch(/short\s+all\s+6\s+50\.0%/)
    const missing = await run("prompto.js", ["run", "-f", "capitals.jsonl", "-d", "data", "-s", "scorers/mine.ts:long"], dir)
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(/long/)
    expect(missing.stderr).toMatch(/short/)
  }, testTimeoutMs)

  it("an unknown scorer or judge is a clear error before anything is sent", async ({ expect }) => {
    const dir = exampleDir()
    const scorer = await run("prompto.js", ["run", "-f", "capitals.jsonl", "-d", "data", "-s", "match,exact"], dir)
    expect(scorer.status).toBe(1)
    expect(scorer.stderr).toMatch(/exact/)
    expect(scorer.stderr).toMatch(/includes_ignore_case/)
    const judge = await run("prompto.js", ["run", "-f", "capitals.jsonl", "-d", "data", "-jf", "judge", "-j", "nobody"], dir)
    expect(judge.status).toBe(1)
    expect(judge.stderr).toMatch(/nobody/)
    expect(judge.stderr).toMatch(/strict/)
    const template = await run("prompto.js", ["run", "-f", "capitals.jsonl", "-d", "data", "-jf", "judge", "-j", "strict", "-jt", "missing.txt"], dir)
    expect(template.status).toBe(1)
    expect(template.stderr).toMatch(/missing/)
    const usage = await run("prompto.js", ["run", "-f", "capitals.jsonl", "-d", "data", "-j", "strict"], dir)
    expect(usage.status).toBe(2)
    expect(usage.stderr).toMatch(/--judge-folder/)
    for (const result of [scorer, judge, template, usage]) expect(result.stderr).not.toMatch(/at .*\.ts:\d+/)
    // nothing ran: the experiment never reached the data folder
    expect(ls(path.join(dir, "data", "output"))).toEqual([])
    expect(ls(path.join(dir, "data", "input"))).toEqual([])
  }, testTimeoutMs)

  it("run --rephrase-folder --rephrase-model --remove-original: rephrased prompts run as post-rephrase-<name>", async ({ expect }) => {
    const dir = exampleDir()
    const result = await run("prompto.js", [
      "run", "-f", "capitals.jsonl", "-d", "data", "-mq", "6000", "-rf", "rephrase", "-r", "paraphraser", "-ro"
    ], dir)
    expect(result.status).toBe(0)
    const main = path.join(dir, "data", "output", "post-rephrase-capitals")
    const [completedFile] = runFilesOf(main, "completed", "post-rephrase-capitals")
    const timestamp = completedFile!.slice(0, 19)
    expect(ls(main)).toContain(`${timestamp}-input-capitals.jsonl`)
    expect(ls(main)).toContain(`${timestamp}-input-post-rephrase-capitals.jsonl`)
    const completed = readJsonl(path.join(main, completedFile!))
    const ids = ["france", "italy", "spain", "japan", "canada", "australia"]
    expect(completed.map((record) => record.id).sort()).toEqual(
      [0, 1].flatMap((index) => ids.map((id) => `rephrase-paraphraser-${index}-${id}`)).sort()
    )
    // each rephrasal became a prompt for the original api and model, keeping input-id
    const first = completed.find((record) => record.id === "rephrase-paraphraser-0-france")!
    expect(first).toMatchObject({ api: "test", model_name: "small", "input-id": "france" })
    expect(String(first.prompt)).toMatch(/^This is a test response to: Write a paraphrase/)
    const rephraseDir = path.join(dir, "data", "output", "rephrase-capitals")
    expect(runFilesOf(rephraseDir, "completed", "rephrase-capitals").map((file) => file.slice(0, 19))).toEqual([timestamp])
  }, testTimeoutMs)

  describe("prompto judge", () => {
    it("makes prompto's judge file from a completed file; prompto_create_judge_file is the same", async ({ expect }) => {
      const dir = tempDir(path.join(promptoEvaluation, "completed_example.jsonl"))
      fs.cpSync(path.join(promptoEvaluation, "judge"), path.join(dir, "judge"), { recursive: true })
      const args = ["-i", "completed_example.jsonl", "-jf", "judge", "-j", "gpt-4o", "-jt", "template.txt,template2.txt"]
      const made = await run("prompto.js", ["judge", ...args, "-o", "out"], dir)
      expect(made.status).toBe(0)
      const alias = await run("prompto_create_judge_file.js", [...args, "-o", "out-alias"], dir)
      expect(alias.status).toBe(0)
      const fixtureInput = fs.readdirSync(path.join(promptoEvaluation, "data", "output", "judge-example"))
        .find((file) => file.includes("-input-"))!
      const expected = readJsonl(path.join(promptoEvaluation, "data", "output", "judge-example", fixtureInput))
      const byId = (records: ReadonlyArray<Record<string, unknown>>) =>
        [...records].sort((a, b) => String(a.id).localeCompare(String(b.id))).map((record) => JSON.stringify(record))
      for (const folder of ["out", "out-alias"]) {
        expect(ls(path.join(dir, folder))).toEqual(["judge-completed_example.jsonl"])
        expect(byId(readJsonl(path.join(dir, folder, "judge-completed_example.jsonl")))).toEqual(byId(expected))
      }
      expect(made.stdout).toMatch(/6 judge prompts/)
    }, testTimeoutMs)
  })
})
