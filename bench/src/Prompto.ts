/**
 * Running the real product: writes experiment files, runs `prompto run` as a measured child
 * process in a temporary folder, and reads back what it left (the log's processing time, the
 * completed file).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Child from "./Child.js"
import { promptoBin } from "./Paths.js"

/** One prompt as written to an experiment file. */
export interface PromptLine {
  readonly id: string
  readonly api: string
  readonly model_name: string
  readonly prompt: string
  readonly parameters?: Readonly<Record<string, unknown>>
}

/**
 * Writes `count` lines made by `line(i)` to `file`, in large chunks through a stream, so a
 * million-line file is written in seconds without holding it in memory.
 */
export const writeLines = async (file: string, count: number, line: (index: number) => string): Promise<void> => {
  const stream = fs.createWriteStream(file)
  const chunkLines = 10_000
  for (let start = 0; start < count; start += chunkLines) {
    const end = Math.min(count, start + chunkLines)
    let text = ""
    for (let index = start; index < end; index++) text += line(index) + "\n"
    if (!stream.write(text)) await new Promise<void>((resolve) => stream.once("drain", () => resolve()))
  }
  await new Promise<void>((resolve, reject) => {
    stream.once("error", reject)
    stream.end(() => resolve())
  })
}

/** Writes prompts as a JSONL experiment file. */
export const writeExperiment = (file: string, prompts: ReadonlyArray<PromptLine>): Promise<void> =>
  writeLines(file, prompts.length, (index) => JSON.stringify(prompts[index]))

/** Counts the lines of a file (newline characters, plus a last line without one), streaming. */
export const countLines = async (file: string): Promise<number> => {
  let lines = 0
  let last = 10
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let at = chunk.indexOf(10)
    while (at !== -1) {
      lines++
      at = chunk.indexOf(10, at + 1)
    }
    if (chunk.length > 0) last = chunk[chunk.length - 1]!
  }
  return last === 10 ? lines : lines + 1
}

/**
 * Makes a temporary folder under the OS's, runs `use` in it and removes it afterwards (unless
 * `keep`, for debugging; its path is printed then).
 */
export const withTempDir = async <A>(prefix: string, keep: boolean, use: (dir: string) => Promise<A>): Promise<A> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `prompto-bench-${prefix}-`))
  try {
    return await use(dir)
  } finally {
    if (keep) console.error(`kept ${dir}`)
    else fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** What a `prompto run` left. */
export interface RunResult {
  readonly child: Child.ChildResult
  /** The run's own wall time: the log's "Experiment processing time", milliseconds. */
  readonly processingMs: number
  /** The completed file, if the run made one. */
  readonly completedFile: string | undefined
}

/** Options of a `prompto run`. */
export interface RunOptions {
  /** The temporary folder: the experiment file is in it, the data folder is made in it. */
  readonly dir: string
  /** The experiment file's name in `dir`. */
  readonly file: string
  /** Flags after `run -f <file> -d data`. */
  readonly flags: ReadonlyArray<string>
  readonly env: NodeJS.ProcessEnv
  readonly timeoutMs: number
}

/** A `prompto run` that did not exit 0 (or timed out); what it used is still in `child`. */
export class RunError extends Error {
  constructor(message: string, readonly child: Child.ChildResult) {
    super(message)
  }
}

const processingPattern = /Experiment processing time: ([0-9.]+) seconds/

/**
 * Runs `node packages/cli/bin/prompto.js run -f <file> -d data ...flags` in `dir` and reads the
 * log's processing time and the completed file's path. Throws a `RunError` if the run did not
 * exit 0.
 */
export const run = async (options: RunOptions): Promise<RunResult> => {
  const child = await Child.run(promptoBin, ["run", "-f", options.file, "-d", "data", ...options.flags], {
    cwd: options.dir,
    env: options.env,
    timeoutMs: options.timeoutMs
  })
  if (child.status !== 0) throw new RunError(Child.describeFailure("prompto run", child), child)
  const { completed, log } = outputs(options.dir, options.file)
  const match = log === undefined ? null : processingPattern.exec(fs.readFileSync(log, "utf8"))
  return {
    child,
    processingMs: match === null ? Number.NaN : Number(match[1]) * 1000,
    completedFile: completed
  }
}

/**
 * Starts `node packages/cli/bin/prompto.js run -f <file> -d data ...flags` in `dir` without
 * waiting for it, so the caller can watch the server and stop it (gracefully) when it has seen
 * enough.
 */
export const start = (options: RunOptions): Child.RunningChild =>
  Child.start(promptoBin, ["run", "-f", options.file, "-d", "data", ...options.flags], {
    cwd: options.dir,
    env: options.env,
    timeoutMs: options.timeoutMs
  })

/** The completed file and the log a run of `file` in `dir` wrote (so far), if any. */
export const outputs = (dir: string, file: string): { readonly completed?: string; readonly log?: string } => {
  const output = path.join(dir, "data", "output", path.basename(file).replace(/\.(jsonl|csv)$/, ""))
  const files = fs.existsSync(output) ? fs.readdirSync(output) : []
  const log = files.find((name) => name.includes("-log-"))
  const completed = files.find((name) => name.includes("-completed-") && name.endsWith(".jsonl"))
  return {
    ...(log === undefined ? {} : { log: path.join(output, log) }),
    ...(completed === undefined ? {} : { completed: path.join(output, completed) })
  }
}

/** Runs `node packages/cli/bin/prompto.js ...args` (e.g. `--help`) in `dir` and measures it. */
export const runArgs = (args: ReadonlyArray<string>, dir: string, env: NodeJS.ProcessEnv, timeoutMs: number) =>
  Child.run(promptoBin, args, { cwd: dir, env, timeoutMs })

/** The records of a completed file: how many, and how many carry an `error`. */
export const completedCounts = (file: string | undefined): { readonly records: number; readonly errors: number } => {
  if (file === undefined) return { records: 0, errors: 0 }
  const lines = fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "")
  const errors = lines.filter((line) => (JSON.parse(line) as { readonly error?: unknown }).error !== undefined).length
  return { records: lines.length, errors }
}

/** The environment that points the `openai` API at the loopback server. */
export const openAiEnv = (serverUrl: string): NodeJS.ProcessEnv => ({
  ...Child.baseEnv(),
  OPENAI_API_KEY: "bench",
  OPENAI_BASE_URL: `${serverUrl}/v1`
})
