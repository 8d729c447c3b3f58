/**
 * `prompto report` from the command line, without a browser: `--open` hands the written file to
 * the platform's opener, and `--max-error-rows` bounds the error records added to the table
 * (saying so), while the charts count every one.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { childEnv, tempDirs } from "./e2e/cliHarness.js"
import { spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const prompto = path.join(here, "..", "packages", "cli", "bin", "prompto.js")
const tempDir = tempDirs()

/** A finished run on the `test` API of 12 prompts, 5 of them failing for good. */
const finishedRun = async (): Promise<string> => {
  const dir = tempDir()
  const lines = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({
      id: `p-${i}`,
      api: "test",
      model_name: "m",
      prompt: `question ${i}`,
      parameters: i < 5 ? { latency_ms: 0, raise_error: "True" } : { latency_ms: 0 }
    }))
  fs.writeFileSync(path.join(dir, "small.jsonl"), lines.join("\n") + "\n")
  const run = await spawnCli(prompto, ["run", "-f", "small.jsonl", "-mq", "600000", "-ma", "1"], { cwd: dir, env: childEnv, timeoutMs: 60_000 })
  expect(run.status, run.stderr).toBe(0)
  return dir
}

describe("prompto report (command line)", () => {
  it("--open hands the report to the platform's opener; --max-error-rows bounds the error rows beyond the sample and says so", async () => {
    const dir = await finishedRun()
    // a stand-in for xdg-open on the PATH that writes down what it was asked to open
    const bin = path.join(dir, "bin")
    fs.mkdirSync(bin)
    const opened = path.join(dir, "opened.txt")
    fs.writeFileSync(path.join(bin, "xdg-open"), `#!/bin/sh\necho "$@" > ${JSON.stringify(opened)}\n`, { mode: 0o755 })
    const result = await spawnCli(
      prompto,
      ["report", path.join("data", "output", "small"), "-o", "r.html", "--open", "--max-rows", "0", "--max-error-rows", "2"],
      { cwd: dir, env: { ...childEnv, PATH: `${bin}${path.delimiter}${childEnv.PATH ?? process.env.PATH}` }, timeoutMs: 60_000 }
    )
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/report: .*r\.html .*12 records/)
    expect(result.stderr).toContain("note: the table holds 2 of 5 error records (--max-error-rows 5 holds them all)")
    // the opener runs detached: wait for its note
    for (let i = 0; i < 100 && !fs.existsSync(opened); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(fs.readFileSync(opened, "utf8").trim()).toBe(path.join(fs.realpathSync(dir), "r.html"))
    const html = fs.readFileSync(path.join(dir, "r.html"), "utf8")
    expect(html).toContain('"errorRowsShown":2')
    expect(html).toContain('"errorRowsTotal":5')
  }, 120_000)
})
