/**
 * Long runs, end to end: a `prompto run` process killed with SIGKILL mid-run (records cut
 * mid-write included) and then resumed, and a graceful Ctrl-C (SIGINT) that prints the resume
 * command. The invariant: every input id ends up in the completed file exactly once.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { ChildProcess } from "node:child_process"
import { describe, it } from "vitest"
import { childEnv, ls, readJsonl, runFilesOf, tempDirs, whenCompleted } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const prompto = path.join(here, "..", "packages", "cli", "bin", "prompto.js")
const tempDir = tempDirs()
const testTimeoutMs = 120_000

/** An experiment of `n` test-API prompts; every fifth fails twice before it answers. */
const writeExperiment = (dir: string, n: number): void => {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      id: i,
      api: "test",
      model_name: i % 2 === 0 ? "even" : "odd",
      group: i % 2 === 0 ? "even" : "odd",
      prompt: `question ${i}`,
      parameters: { latency_ms: 200 + (i % 7) * 50, ...(i % 5 === 0 ? { fail_attempts: 2 } : {}) }
    }))
  fs.writeFileSync(path.join(dir, "long.jsonl"), lines.join("\n") + "\n")
}


const run = (dir: string, args: ReadonlyArray<string>, whileRunning?: (child: ChildProcess) => void) =>
  spawnCli(prompto, args, { cwd: dir, env: childEnv, timeoutMs: 90_000, ...(whileRunning === undefined ? {} : { whileRunning }) })

const completedIds = (dir: string): ReadonlyArray<unknown> => {
  const output = path.join(dir, "data", "output", "long")
  const [file] = runFilesOf(output, "completed", "long")
  return readJsonl(path.join(output, file!)).map((record) => record.id)
}

describe.concurrent("long runs from the CLI", () => {
  it("SIGKILL mid-run, a cut-off last line, then --resume: every id exactly once", async ({ expect }) => {
    const dir = tempDir()
    const n = 300
    writeExperiment(dir, n)
    const flags = ["-d", "data", "-mq", "3000", "-p"]
    const killed = await run(dir, ["run", "-f", "long.jsonl", ...flags], (child) =>
      whenCompleted(dir, "long", 60, () => child.kill("SIGKILL")))
    expect(killed.status).toBe(null)
    const output = path.join(dir, "data", "output", "long")
    const [file] = runFilesOf(output, "completed", "long")
    const before = readJsonl(path.join(output, file!)).length
    expect(before).toBeGreaterThanOrEqual(60)
    expect(before).toBeLessThan(n)
    // a power cut mid-write: half a record at the end of the file
    fs.appendFileSync(path.join(output, file!), `{"id": 299, "api": "test", "resp`)

    const resumed = await run(dir, ["run", "--resume", output, ...flags])
    expect(resumed.stderr).not.toMatch(/\n\s+at /)
    expect(resumed.status).toBe(0)
    expect(resumed.stdout).toMatch(/resumed: \d+ prompts answered before were not sent again/)
    const ids = completedIds(dir)
    expect(ids.length).toBe(n)
    expect(new Set(ids).size).toBe(n)
    const log = fs.readFileSync(path.join(output, runFilesOf(output, "log", "long")[0]!), "utf8")
    expect(log).toMatch(/Resumed: \d+ prompts already answered are not sent again; \d+ to send/)
    expect(log).toMatch(/1 cut-off lines removed/)
    // one run's files: the resume appended to them
    expect(runFilesOf(output, "completed", "long")).toHaveLength(1)
    expect(ls(path.join(dir, "data", "input"))).toEqual([])
  }, testTimeoutMs)

  it("Ctrl-C stops gracefully: whole lines, exit 130, the exact resume command, which completes the run", async ({ expect }) => {
    const dir = tempDir()
    const n = 120
    writeExperiment(dir, n)
    const stopped = await run(dir, ["run", "-f", "long.jsonl", "-d", "data", "-mq", "2400", "--grace", "10"], (child) =>
      whenCompleted(dir, "long", 20, () => child.kill("SIGINT")))
    expect(stopped.status).toBe(130)
    expect(stopped.stderr).toMatch(/Stopping: no more prompts are sent/)
    const command = stopped.stdout.split("\n").find((line) => line.trim().startsWith("prompto run --resume"))
    expect(command).toBeDefined()
    const args = command!.trim().split(/\s+/).slice(1)
    expect(args).toEqual(["run", "--resume", path.join(dir, "data", "output", "long"), "-d", "data", "-mq", "2400", "--grace", "10"])
    const partial = completedIds(dir)
    expect(partial.length).toBeLessThan(n)
    expect(new Set(partial).size).toBe(partial.length)

    const resumed = await run(dir, args)
    expect(resumed.status).toBe(0)
    const ids = completedIds(dir)
    expect(ids.length).toBe(n)
    expect(new Set(ids).size).toBe(n)
  }, testTimeoutMs)

  it("a second Ctrl-C stops at once, without waiting for the grace period, and still prints the summary and the resume command; the file stays whole", async ({ expect }) => {
    const dir = tempDir()
    const n = 60
    // slow answers, so requests are still in flight when the signals come
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({ id: i, api: "test", model_name: "m", prompt: `q${i}`, parameters: { latency_ms: 20_000 } }))
    fs.writeFileSync(path.join(dir, "long.jsonl"), lines.join("\n") + "\n")
    const started = Date.now()
    let firstAt = 0
    const stopped = await run(dir, ["run", "-f", "long.jsonl", "-d", "data", "-mq", "600", "--grace", "60"], (child) =>
      child.stderr?.on("data", (chunk: Buffer) => {
        if (firstAt === 0 && chunk.toString().includes("prompto run:")) {
          firstAt = Date.now()
          setTimeout(() => child.kill("SIGINT"), 500)
          setTimeout(() => child.kill("SIGINT"), 1500)
        }
      }))
    // stopped by the second signal, well before the 60 s grace or the 20 s answers
    expect(stopped.status).toBe(130)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(stopped.stderr).toMatch(/Stopping: no more prompts are sent/)
    expect(stopped.stderr).toMatch(/Stopping now: requests in flight are abandoned/)
    expect(stopped.stdout).toMatch(/^Stopped long/m)
    expect(stopped.stdout).toMatch(/^\d+ prompts not done\. Resume with:/m)
    expect(stopped.stdout).toMatch(/prompto run --resume \S+ -d data -mq 600 --grace 60/)
    const output = path.join(dir, "data", "output", "long")
    const [log] = runFilesOf(output, "log", "long")
    expect(fs.readFileSync(path.join(output, log!), "utf8")).toMatch(/Stopped with \d+ prompts not done/)
    const [file] = runFilesOf(output, "completed", "long")
    const text = fs.readFileSync(path.join(output, file!), "utf8")
    expect(text === "" || text.endsWith("\n")).toBe(true)
    for (const line of text.split("\n").filter((line) => line !== "")) expect(() => JSON.parse(line)).not.toThrow()
  }, testTimeoutMs)
})
