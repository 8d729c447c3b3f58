/**
 * The machine a run's figures came from, recorded beside them in `bench/results.json`.
 */
import { execFileSync } from "node:child_process"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { promptoBin, repoRoot } from "./Paths.js"

/** What the figures depend on. */
export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly totalMemoryGb: number
  readonly node: string
  readonly os: string
  readonly date: string
  /** `git rev-parse HEAD`, if git and a repository are there. */
  readonly commit: string | undefined
  /** How `bin/prompto.js` started the CLI: its esbuild bundle, or the sources through tsx. */
  readonly cli: "bundle" | "tsx" | "unknown"
  /** The CLI that ran, when `PROMPTO_BENCH_CLI` named another build's. */
  readonly cliPath: string | undefined
  /** The 1-, 5- and 15-minute load averages when the bench started: above `cores`, other work competed. */
  readonly loadAverage: ReadonlyArray<number>
}

const gitCommit = (): string | undefined => {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

/** Whether the CLI's launcher would take the bundle (asks the `launch.js` beside `bin/prompto.js`, when there is one). */
export const cliMode = async (): Promise<Machine["cli"]> => {
  try {
    const launcher = pathToFileURL(path.join(path.dirname(promptoBin), "launch.js")).href
    const module = (await import(launcher)) as { readonly bundleIsFresh?: () => boolean }
    if (typeof module.bundleIsFresh !== "function") return "unknown"
    return module.bundleIsFresh() ? "bundle" : "tsx"
  } catch {
    return "tsx"
  }
}

/** Describes this machine. */
export const describe = async (): Promise<Machine> => ({
  cpu: os.cpus()[0]?.model.trim() ?? "unknown",
  cores: os.availableParallelism(),
  totalMemoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  node: process.version,
  os: `${os.type()} ${os.release()} (${os.platform()} ${os.arch()})`,
  date: new Date().toISOString(),
  commit: gitCommit(),
  cli: await cliMode(),
  cliPath: process.env.PROMPTO_BENCH_CLI === undefined || process.env.PROMPTO_BENCH_CLI === "" ? undefined : promptoBin,
  loadAverage: loadAverage()
})

/** The 1-, 5- and 15-minute load averages, two decimals. */
export const loadAverage = (): ReadonlyArray<number> => os.loadavg().map((load) => Math.round(load * 100) / 100)
