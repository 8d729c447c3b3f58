/**
 * End-to-end tests of the `prompto` command line: the real bin files are spawned with node, each
 * in a fresh temp folder, with `CI=1`, `TZ=UTC` and no API keys in the environment. Only the
 * built-in `test` API is used, with small latencies and high rates so every run is quick.
 *
 * Spawns are independent (one temp folder each), so the tests run concurrently.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { ExperimentCheck, Provider } from "@prompto/core"
import * as Providers from "@prompto/providers"
import { ConfigProvider, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { childEnv, ls, runFilesOf, stripAnsi, tempDirs } from "./e2e/cliHarness.js"
import { type Result, spawnCli } from "./e2e/spawnCli.js"
import { describe, it } from "vitest"

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, "..")
const binDir = path.join(repoRoot, "packages", "cli", "bin")
const bins = {
  prompto: path.join(binDir, "prompto.js"),
  runExperiment: path.join(binDir, "prompto_run_experiment.js"),
  checkExperiment: path.join(binDir, "prompto_check_experiment.js")
} as const
const fixtures = path.join(here, "fixtures", "cli")
const quickstart = path.join(repoRoot, "examples", "quickstart", "quickstart.jsonl")
const promptoExamples = path.resolve(repoRoot, "test", "fixtures", "prompto-examples")

/** Run timeouts: a spawn costs ~0.4 s of CPU from the bundle (~2 s through tsx), and up to 5 run at once on a small machine. */
const spawnTimeoutMs = 60_000
const testTimeoutMs = 90_000

/** Spawns a bin file with node in `cwd` and collects its exit code and output. */
const cli = (bin: string, args: ReadonlyArray<string>, cwd: string): Promise<Result> =>
  spawnCli(bin, args, { cwd, env: childEnv, timeoutMs: spawnTimeoutMs })

const prompto = (args: ReadonlyArray<string>, cwd: string) => cli(bins.prompto, args, cwd)

const tempDir = tempDirs()

const timestampPattern = /^\d{2}-\d{2}-\d{4}-\d{2}-\d{2}-\d{2}$/

type Json = Record<string, unknown>

const readJsonl = (file: string): ReadonlyArray<Json> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim().length > 0).map((line) => JSON.parse(line) as Json)

const byId = (records: ReadonlyArray<Json>): ReadonlyMap<unknown, Json> => new Map(records.map((record) => [record.id, record]))

/** The path printed after `completed file:` in a run's summary. */
const printedCompletedFile = (stdout: string): string | undefined => /^completed file: (.+)$/m.exec(stdout)?.[1]?.trim()

/** prompto's `DD-MM-YYYY-HH-MM-SS` of epoch milliseconds, in UTC (the spawns run with TZ=UTC). */
const utcTimestamp = (millis: number): string => {
  const d = new Date(millis)
  const pad = (n: number) => String(n).padStart(2, "0")
  return `${pad(d.getUTCDate())}-${pad(d.getUTCMonth() + 1)}-${d.getUTCFullYear()}-` +
    `${pad(d.getUTCHours())}-${pad(d.getUTCMinutes())}-${pad(d.getUTCSeconds())}`
}

const quickstartText = fs.readFileSync(quickstart, "utf8")
const noStackTrace = "    at "

describe.concurrent("prompto CLI", () => {
  it("run: the quickstart, twice in the same data folder", async ({ expect }) => {
    const dir = tempDir(quickstart)
    const data = path.join(dir, "data")
    const outputDir = path.join(data, "output", "quickstart")
    const args = ["run", "-f", "quickstart.jsonl", "-d", "data", "--max-queries", "6000"]

    const first = await prompto(args, dir)
    expect(first.stderr).not.toContain(noStackTrace)
    expect(first.status).toBe(0)
    expect(first.stdout).toContain("Completed quickstart")
    expect(first.stdout).toMatch(/prompts: 12 +succeeded: 12 +failed: 0/)

    const completedFiles = runFilesOf(outputDir, "completed", "quickstart")
    expect(completedFiles).toHaveLength(1)
    const completedName = completedFiles[0]!
    const completed = path.join(outputDir, completedName)
    // realpath: the CLI prints paths under its cwd, which may differ from os.tmpdir() by symlinks
    expect(fs.realpathSync(printedCompletedFile(first.stdout) ?? dir)).toBe(fs.realpathSync(completed))

    const records = readJsonl(completed)
    expect(records).toHaveLength(12)
    expect(records.map((record) => record.id).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 12 }, (_, i) => i)
    )
    for (const record of records) {
      expect(record, `record ${String(record.id)}`).toHaveProperty("response")
      expect(record.response, `record ${String(record.id)}`).toBeTruthy()
      expect(record.timestamp_sent, `record ${String(record.id)}`).toMatch(timestampPattern)
      expect(record.attempts, `record ${String(record.id)}`).toBeGreaterThanOrEqual(1)
      expect(record, `record ${String(record.id)}`).not.toHaveProperty("error")
    }
    const completedById = byId(records)
    // fail_attempts: 1 and rate_limit_attempts: 1 each cost one retry; the 3-turn prompt answers 3 times
    expect(completedById.get(5)?.attempts).toBe(2)
    expect(completedById.get(8)?.attempts).toBe(2)
    expect(completedById.get(0)?.attempts).toBe(1)
    expect(completedById.get(3)?.response).toHaveLength(3)

    // the input was moved into the output folder (same timestamp), the source was only copied
    const timestamp = completedName.slice(0, "DD-MM-YYYY-HH-MM-SS".length)
    expect(ls(outputDir)).toEqual(
      [`${timestamp}-completed-quickstart.jsonl`, `${timestamp}-input-quickstart.jsonl`, `${timestamp}-log-quickstart.txt`]
    )
    expect(fs.readFileSync(path.join(outputDir, `${timestamp}-input-quickstart.jsonl`), "utf8")).toBe(quickstartText)
    expect(ls(path.join(data, "input"))).toEqual([])
    expect(fs.readFileSync(path.join(dir, "quickstart.jsonl"), "utf8")).toBe(quickstartText)
    expect(fs.readFileSync(path.join(outputDir, `${timestamp}-log-quickstart.txt`), "utf8")).toContain(
      "Completed experiment quickstart.jsonl"
    )
    const firstCompletedText = fs.readFileSync(completed, "utf8")

    const second = await prompto(args, dir)
    expect(second.stderr).not.toContain(noStackTrace)
    expect(second.status).toBe(0)
    expect(second.stdout).toMatch(/prompts: 12 +succeeded: 12 +failed: 0/)
    expect(runFilesOf(outputDir, "completed", "quickstart")).toHaveLength(2)
    expect(runFilesOf(outputDir, "input", "quickstart")).toHaveLength(2)
    expect(runFilesOf(outputDir, "log", "quickstart")).toHaveLength(2)
    expect(ls(path.join(data, "input"))).toEqual([])
    // the second run wrote its own file and left the first run's untouched
    const secondCompleted = printedCompletedFile(second.stdout)
    expect(secondCompleted).not.toBe(completed)
    expect(readJsonl(secondCompleted ?? "")).toHaveLength(12)
    expect(fs.readFileSync(completed, "utf8")).toBe(firstCompletedText)
    expect(fs.readFileSync(path.join(dir, "quickstart.jsonl"), "utf8")).toBe(quickstartText)
  }, testTimeoutMs)

  it("prompto_run_experiment: prompto's flags (-f -d -mq -ma -p -mqj); error responses are recorded, exit 0", async ({ expect }) => {
    const dir = tempDir(path.join(fixtures, "errors.jsonl"), path.join(fixtures, "rates.json"))
    const result = await cli(
      bins.runExperiment,
      ["-f", "errors.jsonl", "-d", "data", "-mq", "6000", "-ma", "2", "-p", "-mqj", "rates.json"],
      dir
    )
    expect(result.stderr).not.toContain(noStackTrace)
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/prompts: 3 +succeeded: 1 +failed: 2/)
    // -mqj gives the "test" api its rate; the "other" group falls back to -mq
    expect(result.stdout).toMatch(/^test +3000\.0 /m)
    expect(result.stdout).toMatch(/^other +6000\.0 /m)

    const outputDir = path.join(dir, "data", "output", "errors")
    const completedFiles = runFilesOf(outputDir, "completed", "errors")
    expect(completedFiles).toHaveLength(1)
    const records = byId(readJsonl(path.join(outputDir, completedFiles[0]!)))
    expect([...records.keys()].sort()).toEqual(["boom", "flaky", "ok"])

    const ok = records.get("ok")
    expect(ok?.response).toBe("This is a test response to: hello")
    expect(ok).not.toHaveProperty("error")

    // raise_error "True" (prompto's ValueError): not retried
    const boom = records.get("boom")
    expect(boom?.response).toEqual(expect.stringContaining("This is a test error which we should handle and return"))
    expect(boom?.attempts).toBe(1)
    expect(boom?.error).toMatchObject({ message: "This is a test error which we should handle and return", attempts: 1 })
    expect(boom?.timestamp_sent).toMatch(timestampPattern)

    // raise_error_type "Exception": retried until -ma 2 attempts (the default would be 5)
    const flaky = records.get("flaky")
    expect(flaky?.attempts).toBe(2)
    expect(flaky?.response).toEqual(expect.stringContaining("after maximum 2 attempts"))
    expect(flaky?.error).toMatchObject({ attempts: 2 })
    expect(ls(path.join(dir, "data", "input"))).toEqual([])
  }, testTimeoutMs)

  it("check: reports every problem with file:line and key, exits non-zero; valid file exits 0; alias is the same", async ({ expect }) => {
    const dir = tempDir(path.join(fixtures, "bad.jsonl"), quickstart)
    const [bad, alias, valid] = await Promise.all([
      prompto(["check", "-f", "bad.jsonl"], dir),
      cli(bins.checkExperiment, ["-f", "bad.jsonl"], dir),
      prompto(["check", "-f", "quickstart.jsonl"], dir)
    ])
    expect(bad.stderr).not.toContain(noStackTrace)
    expect(bad.status).not.toBe(0)
    expect(bad.stdout).toContain("bad.jsonl: invalid (2 of 4 prompts have problems)")
    expect(bad.stdout).toMatch(/^ {2}error: bad\.jsonl:2: invalid JSON/m)
    expect(bad.stdout).toMatch(/^ {2}error: bad\.jsonl:3: key "model_name": is required but missing$/m)
    expect(bad.stdout).not.toContain("bad.jsonl:1:")
    expect(bad.stdout).not.toContain("bad.jsonl:4:")

    expect(alias.status).toBe(bad.status)
    expect(alias.stdout).toBe(bad.stdout)
    expect(alias.stderr).not.toContain(noStackTrace)

    expect(valid.stderr).not.toContain(noStackTrace)
    expect(valid.status).toBe(0)
    expect(valid.stdout).toContain("quickstart.jsonl: valid (12 prompts)")
    expect(valid.stdout).not.toContain("error:")

    // check sends nothing and moves nothing
    expect(fs.existsSync(path.join(dir, "bad.jsonl"))).toBe(true)
    expect(fs.existsSync(path.join(dir, "quickstart.jsonl"))).toBe(true)
    expect(fs.existsSync(path.join(dir, "data", "output"))).toBe(false)
  }, testTimeoutMs)

  it("run: an invalid file is refused without writing; --skip-invalid runs it and records the bad lines", async ({ expect }) => {
    const dir = tempDir(path.join(fixtures, "bad.jsonl"))
    const data = path.join(dir, "data")
    const refused = await prompto(["run", "-f", "bad.jsonl", "-d", "data", "-mq", "6000"], dir)
    expect(refused.status).not.toBe(0)
    expect(refused.stderr).not.toContain(noStackTrace)
    expect(refused.stderr).toMatch(/bad\.jsonl:2: invalid JSON/)
    expect(refused.stderr).toMatch(/bad\.jsonl:3: key "model_name": is required but missing/)
    expect(refused.stderr).toContain("--skip-invalid")
    expect(refused.stdout).not.toContain("Completed")
    expect(ls(path.join(data, "output"))).toEqual([])
    expect(ls(path.join(data, "input"))).toEqual([])
    expect(fs.existsSync(path.join(dir, "bad.jsonl"))).toBe(true)

    const skipped = await prompto(["run", "-f", "bad.jsonl", "-d", "data", "-mq", "6000", "--skip-invalid"], dir)
    expect(skipped.stderr).not.toContain(noStackTrace)
    expect(skipped.status).toBe(0)
    expect(skipped.stdout).toMatch(/prompts: 4 +succeeded: 2 +failed: 0 +invalid \(not sent\): 2/)
    const outputDir = path.join(data, "output", "bad")
    const completedFiles = runFilesOf(outputDir, "completed", "bad")
    expect(completedFiles).toHaveLength(1)
    const records = readJsonl(path.join(outputDir, completedFiles[0]!))
    expect(records).toHaveLength(4)
    const completedById = byId(records)
    for (const id of [1, 4]) {
      expect(completedById.get(id)?.response, `id ${id}`).toEqual(expect.stringMatching(/^This is a test response to: /))
      expect(completedById.get(id), `id ${id}`).not.toHaveProperty("error")
    }
    // the unparsable line gets an id from its line number
    const line2 = completedById.get("line-2")
    expect(line2?.response).toEqual(expect.stringMatching(/^ValidationError - line 2: invalid JSON/))
    expect(line2?.error).toMatchObject({ kind: "validation", attempts: 0 })
    expect(line2?.attempts).toBe(0)
    const line3 = completedById.get(3)
    expect(line3?.response).toEqual(expect.stringContaining("model_name"))
    expect(line3?.error).toMatchObject({ kind: "validation", attempts: 0 })
    expect(line3).not.toHaveProperty("timestamp_sent")
    expect(ls(path.join(data, "input"))).toEqual([])
  }, testTimeoutMs)

  it("run: bad flags give one clear error line and a non-zero exit", async ({ expect }) => {
    const dir = tempDir(quickstart)
    const [zero, negative, noFile] = await Promise.all([
      prompto(["run", "-f", "quickstart.jsonl", "-d", "data", "--max-queries", "0"], dir),
      prompto(["run", "-f", "quickstart.jsonl", "-d", "data", "-mq", "-5"], dir),
      prompto(["run", "-d", "data"], dir)
    ])
    const errorLines = (result: Result) => result.stderr.split("\n").filter((line) => line.startsWith("error:"))

    expect(zero.status).not.toBe(0)
    expect(zero.stderr).not.toContain(noStackTrace)
    expect(errorLines(zero)).toHaveLength(1)
    expect(errorLines(zero)[0]).toMatch(/--max-queries.*got 0$/)

    expect(negative.status).not.toBe(0)
    expect(negative.stderr).not.toContain(noStackTrace)
    expect(errorLines(negative)).toHaveLength(1)
    expect(errorLines(negative)[0]).toMatch(/--max-queries.*got -5$/)

    expect(noFile.status).not.toBe(0)
    expect(noFile.stderr).not.toContain(noStackTrace)
    expect(noFile.stderr + noFile.stdout).toContain("--file")
    expect(noFile.stdout).not.toContain("Completed")

    // a rejected flag is reported before anything is written
    expect(fs.existsSync(path.join(dir, "data"))).toBe(false)
    expect(fs.readFileSync(path.join(dir, "quickstart.jsonl"), "utf8")).toBe(quickstartText)
  }, testTimeoutMs)

  it("--help lists the commands and run's flags", async ({ expect }) => {
    const dir = tempDir()
    const [root, run] = await Promise.all([prompto(["--help"], dir), prompto(["run", "--help"], dir)])
    expect(root.status).toBe(0)
    const rootText = stripAnsi(root.stdout)
    expect(rootText).toMatch(/^ +- run /m)
    expect(rootText).toMatch(/^ +- check /m)
    expect(run.status).toBe(0)
    const runText = stripAnsi(run.stdout)
    expect(runText).toContain("--max-queries")
    expect(runText).toContain("--skip-invalid")
    expect(runText).not.toMatch(/^ +- check /m)
  }, testTimeoutMs)

  it("run: a run whose timestamp collides with an earlier run's files leaves them untouched", async ({ expect }) => {
    // Files of "earlier runs" are laid down for every second of the next minute and a half, so
    // this run's prompto timestamp (second resolution) is sure to collide with one of them.
    const dir = tempDir(quickstart)
    const outputDir = path.join(dir, "data", "output", "quickstart")
    fs.mkdirSync(outputDir, { recursive: true })
    const earlier = new Map<string, string>()
    const now = Date.now()
    for (let s = -2; s <= 90; s++) {
      const t = utcTimestamp(now + s * 1000)
      earlier.set(`${t}-completed-quickstart.jsonl`, `${JSON.stringify({ id: "from-an-earlier-run" })}\n`)
      earlier.set(`${t}-input-quickstart.jsonl`, `${JSON.stringify({ id: "earlier", api: "test", model_name: "m", prompt: "p" })}\n`)
      earlier.set(`${t}-log-quickstart.txt`, "01-01-2020, 00:00: an earlier run's log\n")
    }
    for (const [name, text] of earlier) fs.writeFileSync(path.join(outputDir, name), text)

    const result = await prompto(["run", "-f", "quickstart.jsonl", "-d", "data", "-mq", "6000"], dir)
    expect(result.stderr).not.toContain(noStackTrace)
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/prompts: 12 +succeeded: 12/)
    const completed = printedCompletedFile(result.stdout) ?? ""
    const records = readJsonl(completed)
    // precondition: the run really started within the prepared window
    const sent = records.find((record) => record.id === 0)?.timestamp_sent
    expect(earlier.has(`${String(sent)}-completed-quickstart.jsonl`)).toBe(true)

    // its own files: exactly its 12 records, under names no earlier run used
    expect(records.map((record) => record.id).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 12 }, (_, i) => i)
    )
    expect(earlier.has(path.basename(completed))).toBe(false)
    const own = ls(outputDir).filter((name) => !earlier.has(name))
    expect(own).toHaveLength(3)
    const timestamp = path.basename(completed).slice(0, "DD-MM-YYYY-HH-MM-SS".length)
    expect(own).toEqual(
      [`${timestamp}-completed-quickstart.jsonl`, `${timestamp}-input-quickstart.jsonl`, `${timestamp}-log-quickstart.txt`]
    )
    expect(fs.readFileSync(path.join(outputDir, `${timestamp}-input-quickstart.jsonl`), "utf8")).toBe(quickstartText)
    // every earlier file is as it was: nothing appended, nothing overwritten
    for (const [name, text] of earlier) {
      expect(fs.readFileSync(path.join(outputDir, name), "utf8"), name).toBe(text)
    }
  }, testTimeoutMs)
})

describe("check on Python prompto's example inputs (in-process)", () => {
  const files = fs.existsSync(promptoExamples)
    ? ls(promptoExamples).flatMap((example) => {
      const input = path.join(promptoExamples, example, "data", "input")
      return ls(input).filter((file) => file.endsWith(".jsonl")).map((file) => path.join(input, file))
    })
    : []

  it("finds the example inputs", ({ expect }) => {
    expect(files.length).toBeGreaterThan(0)
  })

  // every API configured (dummy keys and endpoints), images from the shared media folder
  const env = ConfigProvider.fromMap(new Map([
    ["OPENAI_API_KEY", "sk-test"],
    ["AZURE_OPENAI_API_KEY", "az-test"],
    ["AZURE_OPENAI_API_ENDPOINT", "http://127.0.0.1:9"],
    ["ANTHROPIC_API_KEY", "an-test"],
    ["GEMINI_API_KEY", "ge-test"],
    ["VERTEXAI_PROJECT_ID", "project"],
    ["VERTEXAI_LOCATION_ID", "us-central1"],
    ["OLLAMA_API_ENDPOINT", "http://127.0.0.1:9"],
    ["HUGGINGFACE_TGI_API_ENDPOINT", "http://127.0.0.1:9"],
    ["QUART_API_ENDPOINT", "http://127.0.0.1:9"]
  ]))
  const media = path.join(promptoExamples, "openai", "data", "media")
  // what prompto wrote for each id of an example, from the completed files beside it
  const promptoResponses = (input: string): ReadonlyMap<string, string> => {
    const output = path.join(path.dirname(path.dirname(input)), "output", path.basename(input, ".jsonl"))
    const responses = new Map<string, string>()
    for (const name of fs.existsSync(output) ? ls(output).filter((n) => n.includes("-completed-")) : []) {
      for (const line of fs.readFileSync(path.join(output, name), "utf8").split("\n").filter((l) => l.trim() !== "")) {
        const record = JSON.parse(line) as { readonly id?: unknown; readonly response?: unknown }
        responses.set(String(record.id), typeof record.response === "string" ? record.response : "")
      }
    }
    return responses
  }

  it.for(files.map((file) => [path.relative(promptoExamples, file), file] as const))(
    "%s: valid when its API is configured (only media files not shipped may be missing)",
    async ([, file], { expect }) => {
      const report = await Effect.runPromise(
        ExperimentCheck.check(file).pipe(
          Effect.locally(Provider.mediaFolder, media),
          Effect.provide(Providers.layer),
          Effect.provide(NodeContext.layer),
          Effect.withConfigProvider(env)
        )
      )
      const lines = fs.readFileSync(file, "utf8").split("\n")
      const nonBlank = lines.filter((line) => line.trim().length > 0).length
      expect(report.records).toBe(nonBlank)
      expect(report.records).toBeGreaterThan(0)
      expect(report.problemCount).toBe(report.problems.length)
      for (const problem of report.problems) {
        const where = `${problem.file}:${problem.line}: ${problem.key}: ${problem.message}`
        const record = JSON.parse(lines[problem.line - 1] ?? "null") as { readonly api?: unknown } | null
        const notInstalled = problem.key === "api" && problem.message.includes(`API "${String(record?.api)}" is not installed`)
        const unshippedMedia = problem.message.includes("media file not found") && !/\.(jpe?g|png)$/i.test(problem.message.trim())
        // lines that prompto itself rejected (its output records a TypeError/ValueError for them)
        const promptoRejected = /^(TypeError|ValueError|KeyError|NotImplementedError) - /.test(
          promptoResponses(file).get(String((record as { readonly id?: unknown } | null)?.id)) ?? ""
        )
        expect(notInstalled || unshippedMedia || promptoRejected, where).toBe(true)
      }
    }
  )
})
