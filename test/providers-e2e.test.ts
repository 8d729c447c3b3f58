/**
 * End to end: every prompto example input (`<shared fixtures>/prompto-examples/<api>/data/input/*.jsonl`)
 * run through the real `prompto run` CLI (a child process) against loopback servers speaking each
 * API's wire protocol (`packages/providers/test/servers/`), started in this process.
 *
 * Each example file gets its own temp folder (its `.env`, credentials file, data folder with the
 * shared media) and its own set of servers, so what each server received belongs to one run.
 * The files run concurrently (one CLI process each, the fewest the CLI allows: `-f` takes one file).
 *
 * Per file: exit code 0; one completed file; every input id exactly once; lines prompto itself
 * rejected (its completed output beside the input says `TypeError - ...` and the like) are error
 * records and were never sent; lines whose model the loopback service does not have (as prompto's
 * own run found: Azure's unknown deployment, Ollama's model that is not pulled) are sent once and
 * recorded as permanent errors; every other line has the server's answer; each completed record
 * has at least the keys of prompto's completed record for the same id; and the servers received
 * exactly one request per sent prompt (per turn for a multi-turn prompt), with the right credentials
 * (Vertex AI: the bearer token google-auth-library got from the loopback token endpoint).
 *
 * Keys of prompto's records not required here: `timestamp_sent` of a line prompto rejected itself
 * (prompto stamped it before validating at query time; here such a line is never sent), and the
 * evaluation example's `more_than_10_words`/`word_count` (written by the notebook's evaluation
 * functions, not by a run).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, it } from "vitest"
import * as Loopback from "./e2e/loopback.js"
import { type Result, spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, "..")
const promptoBin = path.join(repoRoot, "packages", "cli", "bin", "prompto.js")
const examples = path.resolve(repoRoot, "test", "fixtures", "prompto-examples")
const sharedMedia = path.join(examples, "openai", "data", "media")

const spawnTimeoutMs = 45_000
const testTimeoutMs = 55_000

type Json = Record<string, unknown>

const ls = (dir: string): ReadonlyArray<string> => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [])

const readJsonl = (file: string): ReadonlyArray<Json> =>
  fs.readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as Json)

const isRecord = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

/** Every `*.jsonl` in `<example>/data/input/`. */
const inputFiles: ReadonlyArray<string> = ls(examples).flatMap((example) => {
  const input = path.join(examples, example, "data", "input")
  return ls(input).filter((file) => file.endsWith(".jsonl")).map((file) => path.join(input, file))
})

/** prompto's completed records for an input file (`../output/<name>/*-completed-*.jsonl`), by id. */
const promptoCompleted = (input: string): ReadonlyMap<string, Json> => {
  const name = path.basename(input, ".jsonl")
  const output = path.join(path.dirname(path.dirname(input)), "output", name)
  const records = new Map<string, Json>()
  for (const file of ls(output).filter((file) => /-completed-.*\.jsonl$/.test(file))) {
    for (const record of readJsonl(path.join(output, file))) records.set(String(record.id), record)
  }
  return records
}

/** prompto rejected the line itself, before or instead of a successful query. */
const promptoRejection = /^(TypeError|ValueError|KeyError|NotImplementedError) - /

/** Keys prompto's completed records have that `prompto run` does not write, per example file. */
const notFromRun: Readonly<Record<string, ReadonlyArray<string>>> = {
  // added by the example notebook's evaluation functions (prompto's `Experiment(evaluation_funcs=...)`), not by the run
  "evaluation-example": ["more_than_10_words", "word_count"]
}

/** The media files (local names) the prompts of a file reference: `media` values and `image_url` strings. */
const referencedMedia = (records: ReadonlyArray<Json>): ReadonlyArray<string> => {
  const found = new Set<string>()
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk)
    if (!isRecord(value)) return
    for (const [key, inner] of Object.entries(value)) {
      if ((key === "media" || key === "image_url") && typeof inner === "string" && !/^[a-z][a-z0-9+.-]*:/i.test(inner)) {
        found.add(inner)
      }
      walk(inner)
    }
  }
  records.forEach((record) => walk(record.prompt))
  return [...found].sort()
}

/** The texts of a content/parts value: strings and `{type: "text", text}` parts. */
const textsOf = (content: unknown): ReadonlyArray<string> =>
  typeof content === "string"
    ? [content]
    : Array.isArray(content)
    ? content.flatMap(textsOf)
    : isRecord(content) && typeof content.text === "string"
    ? [content.text]
    : []

/** Per turn sent, the user text the answer must echo: the string, each string of a list, or the last user message's texts. */
const questions = (prompt: unknown): ReadonlyArray<ReadonlyArray<string>> => {
  if (typeof prompt === "string") return [[prompt]]
  if (Array.isArray(prompt) && prompt.every((turn) => typeof turn === "string")) return prompt.map((turn) => [turn])
  const messages: ReadonlyArray<unknown> = Array.isArray(prompt) ? prompt : []
  const lastUser = [...messages].reverse().find((message) => isRecord(message) && message.role === "user")
  return [isRecord(lastUser) ? textsOf(lastUser.content ?? lastUser.parts) : []]
}

/** The requests one sent line costs: one per turn of a list of strings, else one. */
const turnsOf = (prompt: unknown): number =>
  Array.isArray(prompt) && prompt.length > 0 && prompt.every((turn) => typeof turn === "string") ? prompt.length : 1

/** The loopback service does not have this model (prompto's run got an API error for these lines too). */
const serverRefuses = (record: Json): boolean =>
  (record.api === "azure-openai" && !Loopback.azureDeployments.includes(String(record.model_name))) ||
  (record.api === "ollama" && !Loopback.ollamaModels.includes(String(record.model_name)))

const permanentKinds = ["bad_request", "auth", "not_found", "validation", "unknown_api", "configuration", "internal"]

/** The environment of every spawn: none of the API variables (the process environment beats `.env`), CI, UTC. */
const baseChildEnv: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|ENDPOINT|BASE_URL|PROJECT|LOCATION|^GOOGLE_|^GCLOUD|PROXY|^VITEST/i.test(name)) continue
    env[name] = value
  }
  env.CI = "1"
  env.TZ = "UTC"
  return env
})()

/** Spawns `node prompto.js ...args` (asynchronously: the servers answer from this event loop). */
const prompto = (args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv): Promise<Result> =>
  spawnCli(promptoBin, args, { cwd, env, timeoutMs: spawnTimeoutMs })

/** One example file run through the CLI in its own temp folder against its own servers. */
interface Run {
  readonly servers: Loopback.Servers
  readonly result: Result
  readonly data: string
}

/** Sets up the temp folder (`.env`, copy of the file, data folder with media) and spawns `prompto run`. */
const runExample = async (file: string, dir: string, servers: Loopback.Servers): Promise<Run> => {
  const name = path.basename(file, ".jsonl")
  const envFile = path.join(dir, ".env")
  fs.writeFileSync(envFile, Loopback.envFileText(servers.env))
  const copied = path.join(dir, `${name}.jsonl`)
  fs.copyFileSync(file, copied)
  const data = path.join(dir, "data")
  const media = path.join(data, "media")
  fs.mkdirSync(media, { recursive: true })
  for (const image of ls(sharedMedia)) fs.copyFileSync(path.join(sharedMedia, image), path.join(media, image))
  // media the examples reference but prompto's repository does not ship (gemini's audio and video)
  for (const missing of referencedMedia(readJsonl(file)).filter((entry) => !fs.existsSync(path.join(media, entry)))) {
    fs.mkdirSync(path.dirname(path.join(media, missing)), { recursive: true })
    fs.writeFileSync(path.join(media, missing), `placeholder for ${missing}\n`)
  }
  const result = await prompto(
    ["run", "-f", copied, "-d", data, "-e", envFile, "-p", "-mq", "6000", "--skip-invalid"],
    dir,
    { ...baseChildEnv, ...servers.processEnv }
  )
  return { servers, result, data }
}

const tempDirs: Array<string> = []
const allServers: Array<Promise<Loopback.Servers>> = []
/** The run of each example file, all started at once (the CLI takes one file per process). */
const runs = new Map<string, Promise<Run>>()

describe("prompto run: every prompto example against loopback API servers", () => {
  beforeAll(() => {
    for (const file of inputFiles) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-providers-e2e-"))
      tempDirs.push(dir)
      const servers = Loopback.start(dir)
      allServers.push(servers)
      const run = servers.then((started) => runExample(file, dir, started))
      run.catch(() => {}) // awaited by the file's test; no unhandled rejection when that test is filtered out
      runs.set(file, run)
    }
  })

  afterAll(async () => {
    await Promise.allSettled(runs.values())
    const started = await Promise.allSettled(allServers)
    await Promise.all(started.map((outcome) => (outcome.status === "fulfilled" ? outcome.value.close() : undefined)))
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("finds the example inputs", ({ expect }) => {
    expect(inputFiles.length).toBeGreaterThan(0)
  })

  describe.concurrent("examples", () => {
    const cases = inputFiles.map((file) => [path.relative(examples, file), file] as const)
    it.for(cases)("%s", { timeout: testTimeoutMs }, async ([label, file], { expect }) => {
      const name = path.basename(file, ".jsonl")
      const inputs = readJsonl(file)
      const prompto_ = promptoCompleted(file)
      const { servers, result, data } = await runs.get(file)!
      const context = `${label}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`
      expect(result.stderr, context).not.toContain("    at ")
      expect(result.status, context).toBe(0)

      const outputDir = path.join(data, "output", name)
      const completedFiles = ls(outputDir).filter((entry) => new RegExp(`-completed-${name}\\.jsonl$`).test(entry))
      expect(completedFiles, context).toHaveLength(1)
      const completed = readJsonl(path.join(outputDir, completedFiles[0]!))

      // every input id exactly once
      const ids = (records: ReadonlyArray<Json>) => records.map((record) => String(record.id)).sort()
      expect(ids(completed), label).toEqual(ids(inputs))
      const ours = new Map(completed.map((record) => [String(record.id), record]))

      // what each API's server answered, consumed one answer per turn of a line
      const generations = servers.generations()
      const unclaimed = new Map(
        Object.entries(generations).map(([api, list]) => [api, list.flatMap((g) => (g.answer === undefined ? [] : [g.answer]))])
      )
      const expectedModels = new Map<string, Array<string>>()
      const expectSent = (input: Json, times: number) => {
        const list = expectedModels.get(String(input.api)) ?? []
        for (let i = 0; i < times; i++) list.push(String(input.model_name))
        expectedModels.set(String(input.api), list)
      }

      for (const input of inputs) {
        const id = String(input.id)
        const where = `${label} id ${id}`
        const record = ours.get(id)!
        const theirs = prompto_.get(id)
        const theirResponse = typeof theirs?.response === "string" ? theirs.response : ""

        if (serverRefuses(input)) {
          // sent once, refused by the service, not retried; prompto's run got an error there too
          expectSent(input, 1)
          expect(theirResponse, `${where}: prompto's record`).toMatch(/error/i)
          expect(record.error, where).toMatchObject({ attempts: 1 })
          expect(permanentKinds, `${where}: error kind`).toContain((record.error as Json).kind)
          expect(String(record.response), where).toMatch(/not found|does not exist/i)
        } else if (promptoRejection.test(theirResponse)) {
          // prompto refused the line itself: an error record here too, and nothing sent
          expect(record.error, where).toBeDefined()
          const kind = (record.error as Json).kind
          expect(kind === "validation" || permanentKinds.includes(String(kind)), `${where}: error kind ${String(kind)}`)
            .toBe(true)
          expect(record.error, where).toMatchObject({ attempts: 0 })
          expect(record.attempts, where).toBe(0)
          expect(record, where).not.toHaveProperty("timestamp_sent")
        } else {
          // sent: the server's answer, one request per turn
          expectSent(input, turnsOf(input.prompt))
          expect(record, where).not.toHaveProperty("error")
          const turns = questions(input.prompt)
          const responses: ReadonlyArray<unknown> = turns.length > 1 || Array.isArray(record.response)
            ? (Array.isArray(record.response) ? record.response : [record.response])
            : [record.response]
          expect(responses, `${where}: one response per turn`).toHaveLength(turns.length)
          const answers = unclaimed.get(String(input.api)) ?? []
          responses.forEach((response, turn) => {
            expect(typeof response, `${where} turn ${turn}`).toBe("string")
            const text = String(response)
            for (const question of turns[turn] ?? []) expect(text, `${where} turn ${turn}: echoes the prompt`).toContain(question)
            const at = answers.indexOf(text)
            expect(at, `${where} turn ${turn}: ${JSON.stringify(text)} is an answer the ${String(input.api)} server gave`)
              .toBeGreaterThanOrEqual(0)
            answers.splice(at, 1)
          })
        }

        // our record has every key prompto's record for this id has
        if (theirs !== undefined) {
          const exempt = [
            ...(notFromRun[name] ?? []),
            // prompto validated a prompt only when querying it, after stamping the send time; here a line
            // that fails validation is never sent (--skip-invalid records it up front), so it has no send time
            ...(promptoRejection.test(theirResponse) && !serverRefuses(input) ? ["timestamp_sent"] : [])
          ]
          const missing = Object.keys(theirs).filter((key) => !(key in record) && !exempt.includes(key))
          expect(missing, `${where}: keys prompto wrote that we did not (ours: ${Object.keys(record).join(", ")})`)
            .toEqual([])
        }
      }

      // one request per sent prompt/turn, to the right model, and no other generation requests
      for (const [api, list] of Object.entries(generations)) {
        expect(list.map((g) => g.model).sort(), `${label}: ${api} generation requests by model`).toEqual(
          [...(expectedModels.get(api) ?? [])].sort()
        )
      }
      for (const api of expectedModels.keys()) expect(Object.keys(generations), label).toContain(api)
      // every answer the servers gave went into the completed file
      for (const [api, left] of unclaimed) expect(left, `${label}: ${api} answers not in the completed file`).toEqual([])
    })
  })
})
