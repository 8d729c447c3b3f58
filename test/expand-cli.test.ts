/**
 * `prompto expand` end to end: the real bin, spawned with node in a temp folder, then the file
 * it wrote checked and run on the built-in `test` API by the same bin.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "vitest"
import { childEnv, readJsonl, runFilesOf, tempDirs } from "./e2e/cliHarness.js"
import { type Result, spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const bin = path.join(here, "..", "packages", "cli", "bin", "prompto.js")

const prompto = (args: ReadonlyArray<string>, cwd: string): Promise<Result> =>
  spawnCli(bin, args, { cwd, env: childEnv, timeoutMs: 60_000 })

const tempDir = tempDirs()

/** A temp folder holding batch-prompt's README example and two models on the `test` API. */
const batchPromptFolder = (): string => {
  const dir = tempDir()
  fs.writeFileSync(path.join(dir, "templates.txt"), "I like {food}\nI hate {food}\n")
  fs.writeFileSync(path.join(dir, "vars.csv"), "food\npizza\napples\n")
  fs.writeFileSync(
    path.join(dir, "models.json"),
    JSON.stringify([
      { api: "test", model_name: "small", parameters: { latency_ms: 5 } },
      { api: "test", model_name: "large", parameters: { latency_ms: 10 } }
    ])
  )
  return dir
}

const noStackTrace = "    at "

describe.concurrent("prompto expand", () => {
  it("expands batch-prompt's example × 2 models × 3 repeats; check accepts it; run completes all 24 with their keys", async ({ expect }) => {
    const dir = batchPromptFolder()
    const expanded = await prompto(
      ["expand", "--templates", "templates.txt", "--vars", "vars.csv", "--models", "models.json", "--repeats", "3", "-o", "food.jsonl"],
      dir
    )
    expect(expanded.stderr).toBe("")
    expect(expanded.status).toBe(0)
    expect(expanded.stdout.trim()).toBe("wrote 24 lines to food.jsonl (2 templates × 2 rows × 2 models × 3 samples)")
    const lines = readJsonl(path.join(dir, "food.jsonl"))
    expect(lines).toHaveLength(24)
    expect(new Set(lines.map((line) => line.id)).size).toBe(24)
    // template-major, as batch-prompt: each template, each row, each model, each sample
    expect(lines.filter((line) => line.model_name === "small" && line.sample === 0).map((line) => line.prompt)).toEqual(
      ["I like pizza", "I like apples", "I hate pizza", "I hate apples"]
    )

    const checked = await prompto(["check", "-f", "food.jsonl"], dir)
    expect(checked.stderr).not.toContain(noStackTrace)
    expect(checked.status).toBe(0)
    expect(checked.stdout).toContain("food.jsonl: valid (24 prompts)")

    const run = await prompto(["run", "-f", "food.jsonl", "-d", "data", "-mq", "6000"], dir)
    expect(run.stderr).not.toContain(noStackTrace)
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/prompts: 24 +succeeded: 24 +failed: 0/)
    const outputDir = path.join(dir, "data", "output", "food")
    const [completedFile] = runFilesOf(outputDir, "completed", "food")
    const completed = readJsonl(path.join(outputDir, completedFile!))
    expect(completed).toHaveLength(24)
    const byId = new Map(lines.map((line) => [line.id, line]))
    for (const record of completed) {
      const line = byId.get(record.id)!
      expect(record, String(record.id)).not.toHaveProperty("error")
      expect(record.response, String(record.id)).toBe(`This is a test response to: ${line.prompt as string}`)
      // the keys of the generated line pass through to the completed record
      for (const key of ["template", "vars", "template_index", "vars_index", "sample", "model_name", "prompt"]) {
        expect(record[key], `${String(record.id)} ${key}`).toEqual(line[key])
      }
    }
    const counts = new Map<string, number>()
    for (const record of completed) {
      const key = `${record.template as string}|${(record.vars as { food: string }).food}|${record.model_name as string}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    expect([...counts.values()]).toEqual(Array.from({ length: 8 }, () => 3))
    expect(completed.map((record) => record.sample).sort()).toEqual([...Array.from({ length: 8 }, () => [0, 1, 2])].flat().sort())
  })

  it("a bad input: exits non-zero with one clear line naming file:line and the name, and writes nothing", async ({ expect }) => {
    const dir = batchPromptFolder()
    fs.writeFileSync(path.join(dir, "vars.csv"), "meal\nsoup\n")
    const result = await prompto(
      ["expand", "--templates", "templates.txt", "--vars", "vars.csv", "--models", "models.json", "--allow-unused", "-o", "food.jsonl"],
      dir
    )
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).not.toContain(noStackTrace)
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      "error: vars.csv:1: key \"food\": no column for the placeholder {food} used by templates.txt:1, 2"
    ])
    expect(fs.readdirSync(dir).sort()).toEqual(["models.json", "templates.txt", "vars.csv"])
  })

  it("examples/templates: the README's command gives 36 lines that check accepts", async ({ expect }) => {
    const example = path.join(here, "..", "examples", "templates")
    const dir = tempDir(...["templates.txt", "vars.csv", "models.json"].map((name) => path.join(example, name)))
    const expanded = await prompto(
      ["expand", "--templates", "templates.txt", "--vars", "vars.csv", "--models", "models.json", "--repeats", "2", "-o", "grid.jsonl"],
      dir
    )
    expect(expanded.status).toBe(0)
    expect(expanded.stdout.trim()).toBe("wrote 36 lines to grid.jsonl (3 templates × 3 rows × 2 models × 2 samples)")
    const lines = readJsonl(path.join(dir, "grid.jsonl"))
    expect(lines.find((line) => line.id === "t2-v1-m1-s0")?.prompt).toBe("Reply with JSON such as {\"capital\": \"...\"}: the capital of Japan.")
    expect(lines.find((line) => line.id === "t1-v2-m0-s1")?.prompt).toBe("You are a geography teacher.\nName the capital of Peru, in one word.")
    const checked = await prompto(["check", "-f", "grid.jsonl"], dir)
    expect(checked.status).toBe(0)
    expect(checked.stdout).toContain("grid.jsonl: valid (36 prompts)")
  })

  it("--help lists the flags", async ({ expect }) => {
    const result = await prompto(["expand", "--help"], tempDir())
    expect(result.status).toBe(0)
    for (const flag of ["--templates", "--vars", "--models", "--repeats", "--id-prefix", "--allow-unused", "--output"]) {
      expect(result.stdout).toContain(flag)
    }
  })
})
