/**
 * End-to-end tests of `prompto pipeline` / `prompto_run_pipeline` and `prompto missing` /
 * `prompto_obtain_missing_jsonl`, spawning the real bins, on the built-in `test` API.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "vitest"
import { childEnv, ls, readJsonl, runFilesOf, stripAnsi, tempDirs } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const binDir = path.join(path.resolve(here, ".."), "packages", "cli", "bin")
const testTimeoutMs = 90_000

const tempDir = tempDirs()

const run = (bin: string, args: ReadonlyArray<string>, cwd: string) =>
  spawnCli(path.join(binDir, bin), args, { cwd, env: childEnv, timeoutMs: 60_000 })

const prompt = (id: number | string, text = "hi") =>
  JSON.stringify({ id, api: "test", model_name: "m", prompt: text, parameters: { latency_ms: 10 } })
const jsonl = (...lines: ReadonlyArray<string>) => lines.join("\n") + "\n"
/** Sets a file's modification time `secondsAgo` in the past. */
const age = (file: string, secondsAgo: number) => {
  const at = new Date(Date.now() - secondsAgo * 1000)
  fs.utimesSync(file, at, at)
}

describe.concurrent("prompto pipeline from the CLI", () => {
  it("pipeline -d data --once runs the files in input/ oldest first, sets a bad one aside, and exits 1 for it", async ({ expect }) => {
    const dir = tempDir()
    const input = path.join(dir, "data", "input")
    fs.mkdirSync(input, { recursive: true })
    fs.writeFileSync(path.join(input, "second.jsonl"), jsonl(prompt(1), prompt(2, "yo")))
    fs.writeFileSync(path.join(input, "first.csv"), "id,api,model_name,prompt,parameters-latency_ms\na,test,m,hello,10\n")
    fs.writeFileSync(path.join(input, "broken.jsonl"), jsonl(prompt(1), "{not json"))
    age(path.join(input, "broken.jsonl"), 90)
    age(path.join(input, "first.csv"), 60)
    age(path.join(input, "second.jsonl"), 30)
    const result = await run("prompto.js", ["pipeline", "-d", "data", "--once", "-mq", "6000"], dir)
    const stderr = stripAnsi(result.stderr)
    expect(stderr).not.toMatch(/at .*\.ts:\d+/)
    // the other files ran, and a script learns that one failed
    expect(result.status).toBe(1)
    expect(stderr).toContain("1 file failed; see each one's log under output/")
    const order = [...stderr.matchAll(/^(Starting|Finished|Failed) \S+[\\/](\S+?)(?::|;| |$)/gm)].map((m) => `${m[1]} ${m[2]}`)
    expect(order).toEqual([
      "Starting broken.jsonl",
      "Failed broken.jsonl",
      "Starting first.csv",
      "Finished first.csv",
      "Starting second.jsonl",
      "Finished second.jsonl"
    ])
    expect(stderr).toContain("No more files: 2 finished, 1 failed")
    expect(ls(input)).toEqual([])

    const output = path.join(dir, "data", "output")
    const first = runFilesOf(path.join(output, "first"), "completed", "first")
    const second = runFilesOf(path.join(output, "second"), "completed", "second")
    expect(readJsonl(path.join(output, "first", first[0]!)).map((record) => [record.id, record.response])).toEqual([["a", "This is a test response to: hello"]])
    expect(readJsonl(path.join(output, "second", second[0]!)).map((record) => record.id).sort()).toEqual([1, 2])

    const broken = path.join(output, "broken")
    expect(runFilesOf(broken, "completed", "broken")).toEqual([])
    expect(runFilesOf(broken, "input", "broken")).toHaveLength(1)
    const [log] = runFilesOf(broken, "log", "broken")
    expect(fs.readFileSync(path.join(broken, log!), "utf8")).toContain("broken.jsonl:2: invalid JSON")
  }, testTimeoutMs)

  it("prompto_run_pipeline is prompto's name for it: --help shows prompto's flags and --once", async ({ expect }) => {
    const dir = tempDir()
    const result = await run("prompto_run_pipeline.js", ["--help"], dir)
    expect(result.status).toBe(0)
    const help = stripAnsi(result.stdout)
    for (const flag of ["--data-folder", "--env-file", "--max-queries", "--max-attempts", "--parallel", "--max-queries-json", "--timeout", "--once"]) {
      expect(help).toContain(flag)
    }
    expect(help).toContain("input/")
    expect(fs.existsSync(path.join(dir, "data"))).toBe(false)
  }, testTimeoutMs)

  it("a data folder that cannot be used is an error, exit 1", async ({ expect }) => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, "data"), "a file, not a folder")
    const result = await run("prompto_run_pipeline.js", ["-d", "data/inner", "--once"], dir)
    expect(result.status).toBe(1)
    expect(stripAnsi(result.stderr)).toMatch(/^error: .*inner.*: cannot create the folder/m)
  }, testTimeoutMs)
})

describe.concurrent("prompto missing from the CLI", () => {
  it("missing -i -o -n writes the prompts without a completed record; the alias appends to the same file", async ({ expect }) => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, "in.jsonl"), jsonl(prompt(1), prompt("1"), prompt(2), prompt(3)))
    // a run cut off while it wrote its last record
    fs.writeFileSync(path.join(dir, "out.jsonl"), jsonl(prompt(1), prompt(3)) + prompt(2).slice(0, 20))
    const first = await run("prompto.js", ["missing", "-i", "in.jsonl", "-o", "out.jsonl", "-n", "new.jsonl"], dir)
    expect(first.status).toBe(0)
    expect(first.stdout.trim()).toBe("Added 2 missing prompts to new.jsonl")
    expect(first.stderr).toMatch(/warning: .*out\.jsonl:3: the last line is not a complete record/)
    expect(readJsonl(path.join(dir, "new.jsonl")).map((record) => record.id)).toEqual(["1", 2])

    const again = await run("prompto_obtain_missing_jsonl.js", ["--input", "in.jsonl", "--output", "out.jsonl", "--new", "new.jsonl"], dir)
    expect(again.status).toBe(0)
    expect(again.stdout.trim()).toBe("Added 2 missing prompts to new.jsonl")
    expect(readJsonl(path.join(dir, "new.jsonl")).map((record) => record.id)).toEqual(["1", 2, "1", 2])

    const none = await run("prompto_obtain_missing_jsonl.js", ["-i", "in.jsonl", "-o", "in.jsonl", "-n", "none.jsonl"], dir)
    expect(none.status).toBe(0)
    expect(none.stdout.trim()).toBe("No missing prompts found")
    expect(fs.existsSync(path.join(dir, "none.jsonl"))).toBe(false)
  }, testTimeoutMs)

  it("a bad line is an error naming the file and line, exit 1, nothing written", async ({ expect }) => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, "in.jsonl"), jsonl(prompt(1), "{oops", prompt(3)))
    fs.writeFileSync(path.join(dir, "out.jsonl"), jsonl(prompt(1)))
    const result = await run("prompto.js", ["missing", "-i", "in.jsonl", "-o", "out.jsonl", "-n", "new.jsonl", "--id", "id"], dir)
    expect(result.status).toBe(1)
    expect(stripAnsi(result.stderr)).toMatch(/^error: in\.jsonl:2: invalid JSON/m)
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/)
    expect(fs.existsSync(path.join(dir, "new.jsonl"))).toBe(false)
  }, testTimeoutMs)
})
