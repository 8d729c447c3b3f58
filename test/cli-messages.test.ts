/**
 * What a new user sees from the CLI: help with each flag's own description and default and no
 * escape codes off a terminal, an unknown flag named with a suggestion, a folder given as `-f`
 * named as given, unreadable `.env` lines warned about, and `pipeline --once` failing when a
 * file failed.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "vitest"
import * as CliConsole from "../packages/cli/src/CliConsole.js"
import * as EnvFile from "../packages/cli/src/EnvFile.js"
import { childEnv, tempDirs } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const promptoBin = path.join(here, "..", "packages", "cli", "bin", "prompto.js")
const tempDir = tempDirs()
const prompto = (args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = childEnv) =>
  spawnCli(promptoBin, args, { cwd, env, timeoutMs: 60_000 })

// eslint-disable-next-line no-control-regex
const escape = /\x1b\[/

describe("help", () => {
  it("off a terminal: no escape codes, no generic lines, each flag's own description with its default", async ({ expect }) => {
    const dir = tempDir()
    const [run, estimate] = await Promise.all([prompto(["run", "--help"], dir), prompto(["estimate", "--help"], dir)])
    expect(run.status).toBe(0)
    expect(run.stdout).not.toMatch(escape)
    expect(run.stdout).not.toContain("A user-defined piece of text.")
    expect(run.stdout).not.toContain("A true or false value.")
    expect(run.stdout).not.toContain("This setting is optional.")
    expect(run.stdout).toContain("Queries per minute of each queue (prompto's -mq). Default: 10.")
    expect(run.stdout).toContain("Seconds requests in flight may still take after Ctrl-C (a second Ctrl-C stops at once). Default: 30.")
    expect(run.stdout).toContain("--max-cost number")
    expect(estimate.stdout).toContain("--output-tokens integer")
  }, 90_000)

  it("NO_COLOR keeps escape codes out, terminal or not", ({ expect }) => {
    const text = "\x1b[0;1m--file\x1b[0m\n\n  A user-defined piece of text.\n\n  The experiment file.\n\n  This setting is optional.\n"
    expect(CliConsole.cleanHelp(text, false)).toBe("--file\n\n  The experiment file.\n")
    expect(CliConsole.cleanHelp(text, true)).toBe("\x1b[0;1m--file\x1b[0m\n\n  The experiment file.\n")
    const saved = process.env.NO_COLOR
    process.env.NO_COLOR = "1"
    try {
      expect(CliConsole.colour({ isTTY: true })).toBe(false)
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR
      else process.env.NO_COLOR = saved
    }
    expect(CliConsole.colour({ isTTY: false })).toBe(false)
  })
})

describe("errors", () => {
  it("an unknown flag: error:, the nearest flag, exit 2", async ({ expect }) => {
    const dir = tempDir()
    const [typo, far] = await Promise.all([
      prompto(["run", "-f", "x.jsonl", "--max-cots", "3"], dir),
      prompto(["run", "--zzzzzzzz"], dir)
    ])
    expect(typo.status).toBe(2)
    expect(typo.stderr.trim()).toBe("error: unknown flag --max-cots; did you mean --max-cost? (prompto run --help lists the flags)")
    expect(far.status).toBe(2)
    expect(far.stderr.trim()).toBe("error: unknown flag --zzzzzzzz (prompto run --help lists the flags)")
    expect(CliConsole.unknownArgument("--fle", ["--file", "-f", "--flatten-choices"], "run")).toContain("did you mean --file?")
  }, 90_000)

  it("-f on a folder names the path given", async ({ expect }) => {
    const dir = tempDir()
    fs.mkdirSync(path.join(dir, "experiments"))
    const result = await prompto(["run", "-f", "experiments"], dir)
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("\nerror: experiments: is a folder: give an experiment file (.jsonl or .csv)\n")
  }, 90_000)

  it("unreadable .env lines are warned about by line number, never by content", async ({ expect }) => {
    expect(EnvFile.unreadableLines([
      "# a comment",
      "OPENAI_API_KEY=sk-1",
      "export GEMINI_API_KEY = g",
      "this line is junk sk-secret",
      "MULTI=\"first",
      "second line of it\"",
      "",
      "=novalue"
    ].join("\n"))).toEqual([4, 8])
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, ".env"), "OPENAI_API_KEY=sk-1\nnot a pair sk-secret\n")
    fs.writeFileSync(path.join(dir, "t.jsonl"), JSON.stringify({ id: 1, api: "test", model_name: "m", prompt: "hi" }) + "\n")
    const result = await prompto(["check", "-f", "t.jsonl"], dir)
    expect(result.stderr).toContain("warning: .env:2: not a NAME=value line; ignored")
    expect(result.stderr).not.toContain("sk-secret")
  }, 90_000)

  it("pipeline --once exits non-zero when a file failed", async ({ expect }) => {
    const dir = tempDir()
    fs.mkdirSync(path.join(dir, "data", "input"), { recursive: true })
    fs.writeFileSync(path.join(dir, "data", "input", "good.jsonl"), JSON.stringify({ id: 1, api: "test", model_name: "m", prompt: "hi", parameters: { latency_ms: 0 } }) + "\n")
    fs.writeFileSync(path.join(dir, "data", "input", "bad.jsonl"), "{ not json\n")
    const result = await prompto(["pipeline", "-d", "data", "--once", "-mq", "6000"], dir)
    expect(result.status, result.stderr).toBe(1)
    expect(result.stderr).toContain("1 file failed")
    const good = await prompto(["pipeline", "-d", "data", "--once", "-mq", "6000"], dir)
    expect(good.status, good.stderr).toBe(0)
  }, 90_000)
})
