/**
 * Cost and budgets through the CLI, against the loopback OpenAI server (real `openai` SDK; the
 * server counts prompt tokens with `js-tiktoken` and OpenAI's chat-format overhead, as the real
 * service does): `prompto estimate` agrees with the run's request count exactly and with the
 * server's input tokens within 5 %; `--max-cost` at about half the estimate stops the run near
 * half, under the cap plus one request's cost, with exit code 3, and the resume finishes it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "vitest"
import { childEnv, readJsonl, runFilesOf, tempDirs } from "./e2e/cliHarness.js"
import * as Loopback from "./e2e/loopback.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const promptoBin = path.join(here, "..", "packages", "cli", "bin", "prompto.js")
const tempDir = tempDirs()

const subjects = ["the capital of France", "seven times eight", "a synonym of quick", "the boiling point of water in kelvin"]

const experiment = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: i,
    api: "openai",
    model_name: i % 3 === 0 ? "gpt-4o" : "gpt-4o-mini",
    prompt: i % 4 === 1
      ? [{ role: "system", content: "You answer in one short sentence." }, { role: "user", content: `Tell me ${subjects[i % 4]}, case ${i}.` }]
      : `Question ${i}: what is ${subjects[i % 4]}? Think about it carefully, then answer in a few words.`,
    parameters: { max_tokens: 40, temperature: 0 }
  }))

const write = (file: string, records: ReadonlyArray<unknown>) =>
  fs.writeFileSync(file, records.map((record) => JSON.stringify(record)).join("\n") + "\n")

const chatRequests = (servers: Loopback.Servers) => servers.generations().openai?.length ?? 0

describe("prompto estimate and --max-cost", () => {
  it("estimate agrees with the run: requests exactly (strategies and repeats included), input tokens within 5 %", async ({ expect }) => {
    const dir = tempDir()
    const servers = await Loopback.start(dir)
    try {
      fs.writeFileSync(path.join(dir, ".env"), Loopback.envFileText(servers.env))
      const records = [
        ...experiment(40),
        { id: "sc", api: "openai", model_name: "gpt-4o-mini", prompt: "What is 6 * 7?", strategy: { name: "self_consistency", samples: 3 } },
        { id: "cr", api: "openai", model_name: "gpt-4o", prompt: "Name a prime.", strategy: { name: "critique", rounds: 1 }, parameters: { max_tokens: 30 } }
      ]
      write(path.join(dir, "exp.jsonl"), records)
      const flags = ["-f", "exp.jsonl", "-d", "data", "-mq", "60000", "--repeats", "2"]
      const estimated = await spawnCli(promptoBin, ["estimate", ...flags, "--json"], { cwd: dir, env: { ...childEnv, ...servers.processEnv }, timeoutMs: 60_000 })
      expect(estimated.status, estimated.stderr).toBe(0)
      const estimate = JSON.parse(estimated.stdout)
      expect(chatRequests(servers)).toBe(0)
      expect(Object.keys(estimate).sort()).toEqual(["by_model", "cached", "cost_max", "cost_min", "input_tokens", "output_tokens", "requests", "seconds"])
      const text = await spawnCli(promptoBin, ["estimate", ...flags], { cwd: dir, env: { ...childEnv, ...servers.processEnv }, timeoutMs: 60_000 })
      expect(text.stdout).toMatch(/^openai\/gpt-4o-mini\s+\d+/m)
      expect(text.stdout).toContain("Nothing was sent.")

      const ran = await spawnCli(promptoBin, ["run", ...flags], { cwd: dir, env: { ...childEnv, ...servers.processEnv }, timeoutMs: 60_000 })
      expect(ran.status, ran.stderr).toBe(0)
      expect(estimate.requests).toBe(chatRequests(servers))
      const [completed] = runFilesOf(path.join(dir, "data", "output", "exp"), "completed", "exp")
      const written = readJsonl(path.join(dir, "data", "output", "exp", completed!))
      const reported = written.reduce((sum, record) => sum + ((record.usage as { prompt_tokens: number }).prompt_tokens), 0)
      expect(Math.abs(estimate.input_tokens - reported) / reported).toBeLessThan(0.05)
      // the two models' figures add up to the total, and each is priced
      const byModel = estimate.by_model as ReadonlyArray<{ model_name: string; requests: number; cost_min: number; cost_max: number }>
      expect(byModel.map((model) => model.model_name)).toEqual(["gpt-4o", "gpt-4o-mini"])
      expect(byModel.reduce((sum, model) => sum + model.requests, 0)).toBe(estimate.requests)
      const cost = written.reduce((sum, record) => sum + (record.cost as number), 0)
      expect(cost).toBeGreaterThanOrEqual(estimate.cost_min)
      expect(cost).toBeLessThanOrEqual(estimate.cost_max)
      // the summary shows tokens and cost per model and in total
      expect(ran.stdout).toMatch(/^total\s+\d+\s+0\s+[\d,]+\s+0\s+[\d,]+\s+0\s+0\.\d{6}$/m)
    } finally {
      await servers.close()
    }
  }, 120_000)

  it("--max-cost at half the estimate stops near half, under the cap plus one request's cost, exit 3; the resume finishes", async ({ expect }) => {
    const dir = tempDir()
    const servers = await Loopback.start(dir)
    try {
      fs.writeFileSync(path.join(dir, ".env"), Loopback.envFileText(servers.env))
      const records = experiment(100).map((record) => ({ ...record, model_name: "gpt-4o-mini" }))
      write(path.join(dir, "exp.jsonl"), records)
      const env = { ...childEnv, ...servers.processEnv }
      const estimated = await spawnCli(promptoBin, ["estimate", "-f", "exp.jsonl", "--json"], { cwd: dir, env, timeoutMs: 60_000 })
      const estimate = JSON.parse(estimated.stdout)
      const cap = estimate.cost_max / 2
      const perRequest = estimate.cost_max / 100
      const run = await spawnCli(promptoBin, ["run", "-f", "exp.jsonl", "-d", "data", "-mq", "6000", "--max-cost", String(cap)], {
        cwd: dir,
        env,
        timeoutMs: 60_000
      })
      expect(run.status, run.stderr).toBe(3)
      expect(run.stdout).toContain("Stopped at the spend cap")
      const folder = path.join(dir, "data", "output", "exp")
      const [completed] = runFilesOf(folder, "completed", "exp")
      const written = readJsonl(path.join(folder, completed!))
      const spent = written.reduce((sum, record) => sum + (record.cost as number), 0)
      // near the cap: what was reserved for the requests in flight at the stop, at their most, is all that is left
      expect(spent).toBeLessThan(cap + perRequest)
      expect(spent).toBeGreaterThan(cap * 0.8)
      expect(written.length).toBeGreaterThanOrEqual(40)
      expect(written.length).toBeLessThan(100)
      expect(chatRequests(servers)).toBe(written.length)
      const [log] = runFilesOf(folder, "log", "exp")
      expect(fs.readFileSync(path.join(folder, log!), "utf8")).toContain("Spend cap reached")
      // the printed command resumes without the cap
      const resumeLine = run.stdout.split("\n").find((line) => line.trim().startsWith("prompto run --resume"))!
      expect(resumeLine).not.toContain("--max-cost")
      const resumed = await spawnCli(promptoBin, ["run", "--resume", folder, "-d", "data", "-mq", "6000"], { cwd: dir, env, timeoutMs: 60_000 })
      expect(resumed.status, resumed.stderr).toBe(0)
      expect(readJsonl(path.join(folder, completed!))).toHaveLength(100)
      expect(chatRequests(servers)).toBe(100)
    } finally {
      await servers.close()
    }
  }, 120_000)

  it("the cost example: estimate prices every model of the evaluation example, and --max-cost stops its run at the cap", async ({ expect }) => {
    const dir = tempDir()
    const example = path.join(here, "..", "examples")
    fs.copyFileSync(path.join(example, "evaluation", "capitals.jsonl"), path.join(dir, "capitals.jsonl"))
    const prices = path.join(example, "cost", "prices.json")
    const estimate = await spawnCli(promptoBin, ["estimate", "-f", "capitals.jsonl", "-mq", "600", "-s", "match,includes", "--prices", prices], {
      cwd: dir,
      env: childEnv,
      timeoutMs: 60_000
    })
    expect(estimate.status, estimate.stderr).toBe(0)
    expect(estimate.stdout).toMatch(/test\/large \*\s+3\s/)
    expect(estimate.stdout).toMatch(/total\s+6\s+[\d,]+\s+[\d,]+\s+0\.\d+ - 0\.\d+/)
    expect(estimate.stdout).not.toMatch(/\+ unknown|\s unknown\s/)
    const capped = await spawnCli(promptoBin, ["run", "-f", "capitals.jsonl", "-mq", "600", "-s", "match,includes", "--prices", prices, "--max-cost", "0.003"], {
      cwd: dir,
      env: childEnv,
      timeoutMs: 60_000
    })
    expect(capped.status, capped.stderr).toBe(3)
    expect(capped.stdout + capped.stderr).toMatch(/Stopped at the spend cap: \$0\.\d+ spent of \$0\.003/)
    const output = path.join(dir, "data", "output", "capitals")
    const written = readJsonl(path.join(output, runFilesOf(output, "completed", "capitals")[0]!))
    expect(written.length).toBeGreaterThan(0)
    expect(written.length).toBeLessThan(6)
    expect(written.every((record) => typeof record.cost === "number")).toBe(true)
  }, 120_000)
})

