/**
 * The response cache through `prompto run --cache`, against the loopback OpenAI server (real
 * `openai` SDK): the second run of a file sends nothing, changed parameters are asked anew,
 * repeated samples stay distinct, and a `kill -9` during heavy cache writes leaves a cache that
 * opens with every entry whole.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Cache } from "@prompto/core"
import { Effect } from "effect"
import { describe, it } from "vitest"
import { childEnv, readJsonl, runFilesOf, tempDirs } from "./e2e/cliHarness.js"
import * as Loopback from "./e2e/loopback.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const promptoBin = path.join(here, "..", "packages", "cli", "bin", "prompto.js")
const tempDir = tempDirs()

const lines = (n: number, temperature: (i: number) => number, prefix = "q") =>
  Array.from({ length: n }, (_, i) => ({
    id: i,
    api: "openai",
    model_name: "gpt-4o-mini",
    prompt: `${prefix} ${i}`,
    parameters: { temperature: temperature(i) }
  }))

const write = (file: string, records: ReadonlyArray<unknown>) =>
  fs.writeFileSync(file, records.map((record) => JSON.stringify(record)).join("\n") + "\n")

const chatRequests = (servers: Loopback.Servers) => servers.generations().openai?.length ?? 0

describe("prompto run --cache", () => {
  it("the same file again sends nothing; 10 changed temperatures send 10; --repeats 5 at temperature 1 keeps 5 distinct answers", async ({ expect }) => {
    const dir = tempDir()
    const servers = await Loopback.start(dir)
    try {
      fs.writeFileSync(path.join(dir, ".env"), Loopback.envFileText(servers.env))
      const run = async (name: string, records: ReadonlyArray<unknown>, flags: ReadonlyArray<string> = []) => {
        write(path.join(dir, `${name}.jsonl`), records)
        const result = await spawnCli(promptoBin, ["run", "-f", `${name}.jsonl`, "-d", "data", "-mq", "60000", "--cache", ...flags], {
          cwd: dir,
          env: { ...childEnv, ...servers.processEnv },
          timeoutMs: 60_000
        })
        expect(result.status, result.stderr).toBe(0)
        const [completed] = runFilesOf(path.join(dir, "data", "output", name), "completed", name)
        return readJsonl(path.join(dir, "data", "output", name, completed!))
      }
      const first = await run("a", lines(100, () => 0))
      expect(chatRequests(servers)).toBe(100)
      expect(first.every((record) => record.cached === undefined)).toBe(true)

      const second = await run("b", lines(100, () => 0))
      expect(chatRequests(servers)).toBe(100)
      expect(second).toHaveLength(100)
      expect(second.every((record) => record.cached === true)).toBe(true)
      expect(second.map((record) => record.response).sort()).toEqual(first.map((record) => record.response).sort())

      await run("c", lines(100, (i) => (i % 10 === 0 ? 0.5 : 0)))
      expect(chatRequests(servers)).toBe(110)

      const repeated = await run("d", lines(4, () => 1, "sampled"), ["--repeats", "5"])
      expect(chatRequests(servers)).toBe(130)
      expect(repeated).toHaveLength(20)
      const again = await run("e", lines(4, () => 1, "sampled"), ["--repeats", "5"])
      expect(chatRequests(servers)).toBe(130)
      expect(again.every((record) => record.cached === true)).toBe(true)
      const keys = new Set(again.map((record) => `${String(record.id)}/${String(record.sample)}`))
      expect(keys.size).toBe(20)

      const stats = await spawnCli(promptoBin, ["cache", "stats", "-d", "data"], { cwd: dir, env: childEnv, timeoutMs: 30_000 })
      expect(stats.stdout).toContain("130 entries")
    } finally {
      await servers.close()
    }
  }, 120_000)

  it("kill -9 during heavy cache writes: the cache opens again and every entry is whole", async ({ expect }) => {
    const dir = tempDir()
    // the test API: no server, answers at once, so the run is all cache writes
    write(path.join(dir, "heavy.jsonl"), Array.from({ length: 60_000 }, (_, i) => ({
      id: i,
      api: "test",
      model_name: "m",
      prompt: `heavy ${i} ${"x".repeat(200)}`,
      parameters: { latency_ms: 0 }
    })))
    const child = spawn(process.execPath, [promptoBin, "run", "-f", "heavy.jsonl", "-d", "data", "-mq", "100000000", "--cache"], {
      cwd: dir,
      env: childEnv,
      stdio: ["ignore", "ignore", "pipe"]
    })
    const cacheFile = path.join(dir, "data", "cache", "data.mdb")
    // kill once the cache has grown well past its first pages
    await new Promise<void>((resolve, reject) => {
      const started = Date.now()
      const timer = setInterval(() => {
        const size = fs.existsSync(cacheFile) ? fs.statSync(cacheFile).size : 0
        if (size > 2_000_000 || Date.now() - started > 40_000) {
          clearInterval(timer)
          child.kill("SIGKILL")
          resolve()
        }
      }, 20)
      child.on("error", reject)
    })
    await new Promise((resolve) => child.on("exit", resolve))
    expect(fs.statSync(cacheFile).size).toBeGreaterThan(2_000_000)
    // every entry decodes whole
    const whole: Array<boolean> = []
    const entries = await Effect.runPromise(Effect.scoped(Effect.flatMap(
      Cache.open(path.join(dir, "data", "cache")),
      (cache) => cache.forEach((entry) => whole.push(/^This is a test response to: heavy \d+/.test(String(entry.response))))
    )))
    expect(whole.every((ok) => ok)).toBe(true)
    expect(entries).toBeGreaterThan(1000)
    // and a rerun uses it: the answered prompts come from the cache
    const rerun = await spawnCli(promptoBin, ["run", "-f", "heavy.jsonl", "-d", "data", "-mq", "100000000", "--cache"], {
      cwd: dir,
      env: childEnv,
      timeoutMs: 120_000
    })
    expect(rerun.status, rerun.stderr).toBe(0)
    const outputs = fs.readdirSync(path.join(dir, "data", "output", "heavy")).filter((name) => name.includes("-completed-")).sort()
    const latest = readJsonl(path.join(dir, "data", "output", "heavy", outputs.at(-1)!))
    expect(latest).toHaveLength(60_000)
    expect(latest.filter((record) => record.cached === true).length).toBeGreaterThanOrEqual(entries)
  }, 180_000)
})
