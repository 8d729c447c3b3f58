/**
 * What the command-line end-to-end tests share: the child environment (no secrets, CI mode, UTC
 * file names), temp folders removed after the file's tests, and helpers to find run files.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

/** The environment of every spawn: no API keys or other secrets, CI mode, UTC file names. */
export const childEnv: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|ENDPOINT|PROJECT_ID|LOCATION_ID|^VITEST/i.test(name)) continue
    env[name] = value
  }
  env.CI = "1"
  env.TZ = "UTC"
  return env
})()

/**
 * Returns a maker of fresh temp folders holding copies of the given files (by base name); the
 * folders are removed when the calling test file is done.
 */
export const tempDirs = (): ((...files: ReadonlyArray<string>) => string) => {
  const made: Array<string> = []
  afterAll(() => {
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
  })
  return (...files) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-cli-test-"))
    made.push(dir)
    for (const file of files) fs.copyFileSync(file, path.join(dir, path.basename(file)))
    return dir
  }
}

/** Terminal colour codes removed. */
export const stripAnsi = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, "")

/** The sorted entries of a folder (none if it does not exist). */
export const ls = (dir: string): ReadonlyArray<string> => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [])

/** The run files in `output/<name>/` of one kind, e.g. `completed` → `T-completed-<name>.jsonl`. */
export const runFilesOf = (
  outputDir: string,
  kind: "input" | "completed" | "log" | "summary",
  name: string
): ReadonlyArray<string> => {
  const ext = kind === "log" ? "txt" : kind === "summary" ? "json" : "jsonl"
  const pattern = new RegExp(`^\\d{2}-\\d{2}-\\d{4}-\\d{2}-\\d{2}-\\d{2}-${kind}-${name}\\.${ext}$`)
  return ls(outputDir).filter((file) => pattern.test(file))
}

/** The records of a JSONL file. */
export const readJsonl = (file: string): ReadonlyArray<Record<string, unknown>> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line))

/** Calls `then` once the completed file of run `name` in `dir/data/output/name` has at least `lines` lines. */
export const whenCompleted = (dir: string, name: string, lines: number, then: () => void): void => {
  const output = path.join(dir, "data", "output", name)
  const timer = setInterval(() => {
    const [file] = runFilesOf(output, "completed", name)
    if (file === undefined) return
    const count = fs.readFileSync(path.join(output, file), "utf8").split("\n").length - 1
    if (count >= lines) {
      clearInterval(timer)
      then()
    }
  }, 20)
  timer.unref()
}
