/**
 * Runs a measured Node.js child process: `node --import rusage.mjs <script> ...args`, timing
 * its wall clock from spawn to exit and reading the CPU time and peak RSS that the preload
 * wrote as it exited. A child can also be started and stopped by the caller (`start`), to
 * measure something while it runs.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { repoRoot, rusagePreload } from "./Paths.js"

/** How a measured child ended, and what it used. */
export interface ChildResult {
  readonly status: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  /** Spawn to exit, milliseconds, as the bench's clock saw it. */
  readonly wallMs: number
  /** User + system CPU time, milliseconds (`NaN` if the child did not report it). */
  readonly cpuMs: number
  /** Peak resident set size, MB (`NaN` if the child did not report it). */
  readonly maxRssMb: number
  /** The last 64 kB of each stream. */
  readonly stdout: string
  readonly stderr: string
}

/** Options of a measured run. */
export interface ChildOptions {
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
  /** Stopped after this long (SIGTERM, again, then SIGKILL). */
  readonly timeoutMs: number
  /** Extra `node` flags before the preload, e.g. `["--import", "tsx"]`. */
  readonly nodeFlags?: ReadonlyArray<string>
}

const keep = 64 * 1024

/**
 * The environment children start from: the bench's own, without anything that looks like a
 * credential or an endpoint, so the children see only what a scenario sets.
 */
export const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|ENDPOINT|BASE_URL|PROJECT_ID|LOCATION_ID|^VITEST|^npm_/i.test(name)) continue
    env[name] = value
  }
  env.TZ = "UTC"
  return env
}

/** A measured child that is still running. */
export interface RunningChild {
  /** When it was spawned, epoch milliseconds (`performance.timeOrigin + performance.now()`, as the loopback server stamps arrivals). */
  readonly spawnedAt: number
  /**
   * Stops it the way a timeout does: SIGTERM (a graceful stop), again after `graceMs` (default
   * 2 s: stop now), SIGKILL 8 s after that.
   */
  readonly stop: (graceMs?: number) => void
  /** How many signals it was sent (0 while it runs unasked; 2 or more: the graceful stop took longer than its grace). */
  readonly signalsSent: () => number
  /** How it ended, and what it used. */
  readonly result: Promise<ChildResult>
}

/** Starts `node [flags] --import rusage.mjs <script> ...args`, to be measured when it exits. */
export const start = (script: string, args: ReadonlyArray<string>, options: ChildOptions): RunningChild => {
  const usageFile = path.join(os.tmpdir(), `prompto-bench-rusage-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`)
  const argv = [...(options.nodeFlags ?? []), "--import", pathToFileURL(rusagePreload).href, script, ...args]
  const started = performance.now()
  const spawnedAt = performance.timeOrigin + started
  const child = spawn(process.execPath, argv, {
    cwd: options.cwd,
    env: { ...options.env, BENCH_RUSAGE_FILE: usageFile },
    stdio: ["ignore", "pipe", "pipe"]
  })
  // SIGTERM (a graceful stop), a second SIGTERM (stop now), then SIGKILL, so a child that
  // handles signals still exits normally and reports its resource usage
  const escalation: Array<NodeJS.Timeout> = []
  let signals = 0
  const signal = (name: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    signals++
    child.kill(name)
  }
  const stop = (graceMs = 2_000) => {
    if (escalation.length > 0 || child.exitCode !== null || child.signalCode !== null) return
    signal("SIGTERM")
    escalation.push(setTimeout(() => signal("SIGTERM"), graceMs), setTimeout(() => signal("SIGKILL"), graceMs + 8_000))
  }
  const result = new Promise<ChildResult>((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    const tail = (text: string) => (text.length > keep ? text.slice(-keep) : text)
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout = tail(stdout + chunk)))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = tail(stderr + chunk)))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      stop()
    }, options.timeoutMs)
    const clearTimers = () => {
      clearTimeout(timer)
      escalation.forEach(clearTimeout)
    }
    child.on("error", (error) => {
      clearTimers()
      reject(error)
    })
    child.on("exit", () => {
      // the wall ends when the process does, not when its pipes drain
      const wallMs = performance.now() - started
      clearTimers()
      child.on("close", (status, signal) => {
        let cpuMs = Number.NaN
        let maxRssMb = Number.NaN
        try {
          const usage = JSON.parse(fs.readFileSync(usageFile, "utf8")) as NodeJS.ResourceUsage
          cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000
          maxRssMb = usage.maxRSS / 1024
        } catch {
          // killed, or it exited before the preload ran: the figures stay NaN
        }
        fs.rmSync(usageFile, { force: true })
        resolve({ status, signal, timedOut, wallMs, cpuMs, maxRssMb, stdout, stderr })
      })
    })
  })
  return { spawnedAt, stop, signalsSent: () => signals, result }
}

/** Runs `node [flags] --import rusage.mjs <script> ...args` and measures it. */
export const run = (script: string, args: ReadonlyArray<string>, options: ChildOptions): Promise<ChildResult> =>
  start(script, args, options).result

/** A one-line account of a child that failed, for error messages. */
export const describeFailure = (what: string, result: ChildResult): string =>
  `${what} ${result.timedOut ? "timed out" : `exited with ${result.status ?? result.signal}`}` +
  (result.stderr.trim() === "" ? "" : `: ${result.stderr.trim().split("\n").slice(-5).join(" | ")}`)

/** What a bench client script (`bareClient.ts`, `pacedClient.ts`, ...) prints as its last line. */
export interface ClientReport {
  readonly n: number
  readonly elapsedMs: number
  readonly failed: number
}

/**
 * Runs a bench client script through tsx against a server, measured like any child, and reads
 * its report. Fails when the client fails or saw a failed request.
 */
export const runClient = async (
  what: string,
  script: string,
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv,
  timeoutMs: number
): Promise<{ readonly child: ChildResult; readonly report: ClientReport }> => {
  const child = await run(script, args, { cwd: repoRoot, env, timeoutMs, nodeFlags: ["--import", "tsx"] })
  if (child.status !== 0) throw new Error(describeFailure(what, child))
  const report = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}") as ClientReport
  if (report.failed > 0) throw new Error(`${what} saw ${report.failed} failed requests`)
  return { child, report }
}
