/**
 * Strategies end to end: `prompto run` (a child process) against loopback servers speaking the
 * OpenAI, Anthropic and Gemini wire protocols (`packages/providers/test/servers/`, started in
 * this process), with per-line `strategy` keys, a `--strategy` default, a `--strategy-folder`,
 * bad strategy settings, and runs stopped (Ctrl-C, SIGKILL) and resumed.
 *
 * What a run sent is read from what the servers received: every prompt carries a marker
 * `(ref <id>)` that every request of its line repeats (sub-prompts quote the line's prompt), so
 * each request is attributed to its line. The expected requests of a line are computed from its
 * strategy as written (see `stepsOf`), never hand-typed.
 */
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, type ExpectStatic, it } from "vitest"
import * as GeminiServer from "../packages/providers/test/servers/GeminiServer.js"
import * as OpenAiServer from "../packages/providers/test/servers/OpenAiServer.js"
import { childEnv, readJsonl, runFilesOf, stripAnsi, tempDirs, whenCompleted } from "./e2e/cliHarness.js"
import * as Loopback from "./e2e/loopback.js"
import * as SlowProxy from "./e2e/slowProxy.js"
import { type Result, spawnCli } from "./e2e/spawnCli.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const promptoBin = path.join(here, "..", "packages", "cli", "bin", "prompto.js")
const tempDir = tempDirs()
const spawnTimeoutMs = 40_000
const testTimeoutMs = 60_000

type Json = Record<string, unknown>

const isRecord = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

const models = {
  openai: "gpt-4o-mini",
  openaiBig: "gpt-4o",
  anthropic: "claude-3-5-haiku-latest",
  gemini: "gemini-1.5-flash",
  geminiPro: "gemini-1.5-pro"
} as const

/** The Anthropic API requires `max_tokens`. */
const anthropicParameters = { max_tokens: 256 }

/** The marker of a line: every request of the line repeats it. */
const ref = (id: string): string => `(ref ${id})`

// -------------------------------------------------------------------------------------------------
// the requests a strategy makes, from how the file writes it
// -------------------------------------------------------------------------------------------------

interface Model {
  readonly api: string
  readonly model_name: string
}

interface ExpectedStep extends Model {
  readonly step: string
}

const range = (n: number): ReadonlyArray<number> => Array.from({ length: n }, (_, i) => i)

/** A participant's model: its own `api`/`model_name`, else the one it answers for. */
const modelOf = (given: unknown, fallback: Model): Model => ({
  api: isRecord(given) && typeof given.api === "string" ? given.api : fallback.api,
  model_name: isRecord(given) && typeof given.model_name === "string" ? given.model_name : fallback.model_name
})

const prefixed = (prefix: string, steps: ReadonlyArray<ExpectedStep>): ReadonlyArray<ExpectedStep> =>
  steps.map((step) => ({ ...step, step: `${prefix}${step.step}` }))

/**
 * The steps (one request each) of a strategy as written, on `model`: the documented call counts
 * (basic 1, two_turn 2, self_consistency k or 1 with use_n, critique 1 + 2r, best_of k + 1,
 * mixture_of_agents P*L + 1), nested strategies multiplied, named strategies looked up in `named`.
 */
const stepsOf = (spec: unknown, model: Model, named: Readonly<Record<string, unknown>> = {}): ReadonlyArray<ExpectedStep> => {
  if (typeof spec === "string") return stepsOf(named[spec] ?? { name: spec }, model, named)
  if (!isRecord(spec)) throw new Error(`not a strategy: ${JSON.stringify(spec)}`)
  const nested = (inner: unknown, on: Model) => stepsOf(inner ?? "basic", on, named)
  switch (spec.name) {
    case "basic":
      return [{ step: "answer", ...model }]
    case "two_turn":
      return [{ step: "answer", ...model }, { step: "extract", ...model }]
    case "self_consistency":
      return spec.use_n === true
        ? [{ step: "samples", ...model }]
        : range(Number(spec.samples ?? 5)).flatMap((i) => prefixed(`sample ${i}/`, nested(spec.of, model)))
    case "best_of":
      return [
        ...range(Number(spec.samples ?? 4)).flatMap((i) => prefixed(`sample ${i}/`, nested(spec.of, model))),
        { step: "select", ...modelOf(spec.aggregator, model) }
      ]
    case "critique": {
      const rounds = Number(spec.rounds ?? 1)
      return [
        { step: "answer", ...model },
        ...range(rounds).flatMap((i) => {
          const suffix = rounds === 1 ? "" : ` ${i + 1}`
          return [
            { step: `critique${suffix}`, ...modelOf(spec.critic, model) },
            { step: `rewrite${suffix}`, ...modelOf(spec.rewriter, model) }
          ]
        })
      ]
    }
    case "mixture_of_agents": {
      const layers = Number(spec.layers ?? 1)
      const proposers = spec.proposers as ReadonlyArray<Json>
      return [
        ...range(layers).flatMap((layer) =>
          proposers.flatMap((proposer, i) =>
            prefixed(
              layers === 1 ? `proposer ${i}/` : `layer ${layer + 1}/proposer ${i}/`,
              nested(proposer.strategy, modelOf(proposer, model))
            )
          )
        ),
        ...prefixed("aggregate/", nested(isRecord(spec.aggregator) ? spec.aggregator.strategy : undefined, modelOf(spec.aggregator, model)))
      ]
    }
    default:
      throw new Error(`unknown strategy in the test file: ${JSON.stringify(spec)}`)
  }
}

/** Whether a line is sent as it is (one request, no `steps`). */
const isBasic = (spec: unknown): boolean =>
  spec === undefined || spec === "basic" || (isRecord(spec) && spec.name === "basic" && Object.keys(spec).length === 1)

/** The requests of a line: its strategy's steps, or the line itself when it is sent as it is. */
const requestsOf = (line: Json, defaultSpec: unknown, named: Readonly<Record<string, unknown>> = {}): ReadonlyArray<ExpectedStep> => {
  const spec = line.strategy ?? defaultSpec
  const model = { api: String(line.api), model_name: String(line.model_name) }
  return isBasic(spec) ? [{ step: "answer", ...model }] : stepsOf(spec, model, named)
}

const stepKey = (step: { readonly step?: unknown; readonly api?: unknown; readonly model_name?: unknown }): string =>
  `${String(step.step)} | ${String(step.api)} | ${String(step.model_name)}`

// -------------------------------------------------------------------------------------------------
// what the servers received
// -------------------------------------------------------------------------------------------------

/** One generation request as a server received it. */
interface Received {
  readonly api: string
  readonly model: string
  /** The whole body as JSON text (to find a line's marker anywhere in it). */
  readonly raw: string
  /** The text of the last user turn, as sent. */
  readonly text: string
  /** What the server answered. */
  readonly answer: string | undefined
}

const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((part) => (typeof part === "string" ? part : isRecord(part) && typeof part.text === "string" ? part.text : "")).join(" ")
    : ""

const lastUser = (turns: unknown): Json | undefined =>
  Array.isArray(turns) ? [...turns].reverse().find((turn): turn is Json => isRecord(turn) && turn.role === "user") : undefined

/** Every generation request the OpenAI, Anthropic and Gemini servers received, with what they answered. */
const received = (servers: Loopback.Servers): ReadonlyArray<Received> => [
  ...servers.openai.requests
    .filter((request) => request.method === "POST" && /\/(chat\/)?completions$/.test(request.path))
    .map((request): Received => {
      const text = OpenAiServer.contentText(lastUser(request.body?.messages)?.content)
      return { api: "openai", model: String(request.body?.model), raw: JSON.stringify(request.body), text, answer: OpenAiServer.answerText(text) }
    }),
  ...servers.anthropic.requests
    .filter((request) => request.method === "POST" && request.path === "/v1/messages")
    .map((request): Received => ({
      api: "anthropic",
      model: String(request.body?.model),
      raw: JSON.stringify(request.body),
      text: textOf(lastUser(request.body?.messages)?.content),
      answer: request.answer
    })),
  ...servers.gemini.generations().map((request): Received => ({
    api: "gemini",
    model: String(request.model),
    raw: JSON.stringify(request.body),
    text: textOf(lastUser(request.body?.contents)?.parts),
    answer: GeminiServer.defaultAnswer(String(request.model), request.body).candidates[0]?.content.parts[0]?.text
  }))
]

/** How many generation requests each API's server received (every API of the loopback set). */
const requestCounts = (servers: Loopback.Servers): Readonly<Record<string, number>> =>
  Object.fromEntries(Object.entries(servers.generations()).map(([api, list]) => [api, list.length]))

const countBy = (keys: ReadonlyArray<string>): Readonly<Record<string, number>> => {
  const counts: Record<string, number> = {}
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1
  return counts
}

// -------------------------------------------------------------------------------------------------
// running the CLI
// -------------------------------------------------------------------------------------------------

/** The child's environment: no API settings of this machine (the process environment beats `.env`). */
const baseEnv: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(childEnv)) {
    if (/BASE_URL|PROXY|^GOOGLE_|^GCLOUD|^OPENAI|^ANTHROPIC|^GEMINI/i.test(name)) continue
    env[name] = value
  }
  return env
})()

const writeJsonl = (file: string, records: ReadonlyArray<Json>): void =>
  fs.writeFileSync(file, records.map((record) => JSON.stringify(record)).join("\n") + "\n")

const prompto = (
  dir: string,
  args: ReadonlyArray<string>,
  processEnv: Readonly<Record<string, string>>,
  whileRunning?: (child: ChildProcess) => void
): Promise<Result> =>
  spawnCli(promptoBin, args, {
    cwd: dir,
    env: { ...baseEnv, ...processEnv },
    timeoutMs: spawnTimeoutMs,
    ...(whileRunning === undefined ? {} : { whileRunning })
  })

const describeResult = (result: Result): string =>
  `exit ${String(result.status)}\nstdout:\n${stripAnsi(result.stdout)}\nstderr:\n${stripAnsi(result.stderr)}`

/** The records of the run's one completed file in `data/output/<name>/`. */
const completedRecords = (dir: string, name: string): ReadonlyArray<Json> => {
  const output = path.join(dir, "data", "output", name)
  const files = runFilesOf(output, "completed", name)
  if (files.length !== 1) throw new Error(`expected one completed file in ${output}, found ${JSON.stringify(files)}`)
  return readJsonl(path.join(output, files[0]!))
}


/**
 * Starts the loopback servers for a test (a test that cannot start them fails), gives it a temp
 * folder whose `.env` points every API at them, and closes them after.
 */
const withServers = async <A>(body: (servers: Loopback.Servers, dir: string) => Promise<A>): Promise<A> => {
  const dir = tempDir()
  const servers = await Loopback.start(dir)
  try {
    fs.writeFileSync(path.join(dir, ".env"), Loopback.envFileText(servers.env))
    return await body(servers, dir)
  } finally {
    await servers.close()
  }
}

/** The requests each API's server should see for `lines`: the sum over lines of that API's steps (0 for the other APIs). */
const expectedCounts = (
  servers: Loopback.Servers,
  lines: ReadonlyArray<Json>,
  defaultSpec: unknown,
  named: Readonly<Record<string, unknown>> = {}
): Readonly<Record<string, number>> => {
  const counts: Record<string, number> = Object.fromEntries(Object.keys(servers.generations()).map((api) => [api, 0]))
  for (const line of lines) for (const step of requestsOf(line, defaultSpec, named)) counts[step.api]!++
  return counts
}

// -------------------------------------------------------------------------------------------------
// the tests
// -------------------------------------------------------------------------------------------------

describe("strategies from the CLI", () => {
  it("one file over three APIs: per-line strategies, a --strategy default, -p", async ({ expect }) => {
    await withServers(async (servers, dir) => {
      const moa = {
        name: "mixture_of_agents",
        proposers: [
          { api: "openai", model_name: models.openai },
          { api: "anthropic", model_name: models.anthropic },
          // a participant takes the line's parameters unless it gives its own: Gemini refuses max_tokens
          { api: "gemini", model_name: models.gemini, parameters: { max_output_tokens: 256 } }
        ],
        aggregator: { api: "openai", model_name: models.openaiBig }
      }
      const lines: ReadonlyArray<Json> = [
        { id: "sc", api: "openai", model_name: models.openai, prompt: "Is 17 prime?", strategy: { name: "self_consistency", samples: 3 } },
        { id: "tt", api: "anthropic", model_name: models.anthropic, prompt: "What is the capital of Peru?", parameters: anthropicParameters, strategy: "two_turn" },
        {
          id: "cr",
          api: "gemini",
          model_name: models.gemini,
          prompt: "Explain tides in one sentence.",
          strategy: { name: "critique", rounds: 2, critic: { api: "anthropic", model_name: models.anthropic, parameters: anthropicParameters } }
        },
        {
          id: "bo",
          api: "openai",
          model_name: models.openai,
          prompt: "Name a colour.",
          group: "g1",
          strategy: { name: "best_of", samples: 2, aggregator: { api: "gemini", model_name: models.geminiPro } }
        },
        {
          id: "moa",
          api: "anthropic",
          model_name: models.anthropic,
          prompt: "Why is the sky blue?",
          parameters: anthropicParameters,
          group: "g2",
          strategy: moa
        },
        {
          id: "moa2",
          api: "gemini",
          model_name: models.gemini,
          prompt: "What is entropy?",
          strategy: {
            name: "mixture_of_agents",
            layers: 2,
            proposers: [
              { api: "openai", model_name: models.openai },
              { api: "gemini", model_name: models.geminiPro, strategy: { name: "self_consistency", samples: 3 } }
            ]
          }
        },
        { id: "d-openai", api: "openai", model_name: models.openai, prompt: "Say hello." },
        { id: "d-anthropic", api: "anthropic", model_name: models.anthropic, prompt: "Say goodbye.", parameters: anthropicParameters, group: "g1" },
        { id: "d-gemini", api: "gemini", model_name: models.gemini, prompt: "Say thanks." },
        { id: "plain", api: "openai", model_name: models.openai, prompt: "Count to three.", strategy: "basic" }
      ].map((line) => ({ ...line, prompt: `${String(line.prompt)} ${ref(String(line.id))}` }))
      const defaultSpec = { name: "self_consistency", samples: 2 }
      writeJsonl(path.join(dir, "mixed.jsonl"), lines)
      fs.writeFileSync(path.join(dir, "sc2.json"), JSON.stringify(defaultSpec))

      const result = await prompto(
        dir,
        ["run", "-f", "mixed.jsonl", "-d", "data", "-e", ".env", "--strategy", "sc2.json", "-p", "-mq", "6000"],
        servers.processEnv
      )
      expect(result.status, describeResult(result)).toBe(0)
      const completed = completedRecords(dir, "mixed")

      // every line exactly once
      expect(completed.map((record) => String(record.id)).sort()).toEqual(lines.map((line) => String(line.id)).sort())
      const byId = new Map(completed.map((record) => [String(record.id), record]))
      const all = received(servers)

      for (const line of lines) {
        const id = String(line.id)
        const record = byId.get(id)!
        const expected = requestsOf(line, defaultSpec)
        expect(record.error, `${id}: ${JSON.stringify(record)}`).toBeUndefined()
        expect(record.prompt, id).toEqual(line.prompt)
        if (isBasic(line.strategy ?? defaultSpec)) {
          expect(record.steps, `${id}: a line sent as it is has no steps`).toBeUndefined()
        } else {
          // one step per request, each with the api and model it was meant for
          const steps = record.steps as ReadonlyArray<Json>
          expect(steps, id).toHaveLength(expected.length)
          expect(steps.map(stepKey).sort(), id).toEqual(expected.map(stepKey).sort())
          for (const step of steps) {
            expect(typeof step.response, `${id} ${stepKey(step)}`).toBe("string")
            expect(step.attempts, `${id} ${stepKey(step)}`).toBe(1)
            expect(typeof step.latency_ms, `${id} ${stepKey(step)}`).toBe("number")
          }
        }
        expect(typeof record.response, id).toBe("string")
        // the servers received exactly this line's requests, per api and model
        const mine = all.filter((request) => request.raw.includes(ref(id)))
        expect(countBy(mine.map((request) => `${request.api} | ${request.model}`)), `${id}: requests the servers saw`)
          .toEqual(countBy(expected.map((step) => `${step.api} | ${step.model_name}`)))
      }
      // extracted answers where the strategy has one
      expect(byId.get("sc")!.answer, "self_consistency answer").toBe(`Answer to: ${String(lines[0]!.prompt)}`)
      expect(typeof byId.get("tt")!.answer, "two_turn answer").toBe("string")
      expect(byId.get("bo")!.pick, "best_of pick").toBeTypeOf("number")

      // each server saw the sum over lines of its API's requests, and no other server saw any
      expect(requestCounts(servers)).toEqual(expectedCounts(servers, lines, defaultSpec))

      // the aggregator's prompt, as its server received it, holds every proposer's answer
      const moaRecord = byId.get("moa")!
      const moaSteps = moaRecord.steps as ReadonlyArray<Json>
      const mine = all.filter((request) => request.raw.includes(ref("moa")))
      const aggregations = mine.filter((request) => request.text.includes("Responses from models"))
      expect(aggregations.map((request) => `${request.api} | ${request.model}`)).toEqual([`openai | ${models.openaiBig}`])
      const proposerAnswers = mine.filter((request) => !aggregations.includes(request)).map((request) => request.answer)
      expect(proposerAnswers).toHaveLength(3)
      moa.proposers.forEach((proposer, i) => {
        const step = moaSteps.find((entry) => entry.step === `proposer ${i}/answer`)!
        expect(step.api).toBe(proposer.api)
        // what the proposer's server answered is what the record keeps, and what the aggregator read
        expect(proposerAnswers, `proposer ${i}`).toContain(step.response)
        expect(aggregations[0]!.text, `proposer ${i}'s answer in the aggregator's prompt`).toContain(String(step.response))
      })
      expect(moaRecord.response).toBe(aggregations[0]!.answer)
    })
  }, testTimeoutMs)

  it("a strategy folder: a named strategy from settings.json and a critique.txt override", async ({ expect }) => {
    await withServers(async (servers, dir) => {
      const folder = path.join(dir, "strategies")
      fs.mkdirSync(folder)
      const named = { sc3: { name: "self_consistency", samples: 3, extract: "last_number" } }
      fs.writeFileSync(path.join(folder, "settings.json"), JSON.stringify(named))
      const critiqueTemplate = "HOUSE CRITIC: find the one weakest claim.\nQ: {INPUT_PROMPT}\nA: {OUTPUT_RESPONSE}\n"
      fs.writeFileSync(path.join(folder, "critique.txt"), critiqueTemplate)
      const lines: ReadonlyArray<Json> = [
        { id: "named", api: "openai", model_name: models.openai, prompt: `What is 40 plus 2? ${ref("named")}`, strategy: "sc3" },
        { id: "cr", api: "gemini", model_name: models.gemini, prompt: `Why do cats purr? ${ref("cr")}`, strategy: "critique" }
      ]
      writeJsonl(path.join(dir, "folder.jsonl"), lines)

      const result = await prompto(
        dir,
        ["run", "-f", "folder.jsonl", "-d", "data", "-e", ".env", "--strategy-folder", folder, "-p", "-mq", "6000"],
        servers.processEnv
      )
      expect(result.status, describeResult(result)).toBe(0)
      const completed = completedRecords(dir, "folder")
      expect(completed.map((record) => String(record.id)).sort()).toEqual(["cr", "named"])
      const byId = new Map(completed.map((record) => [String(record.id), record]))
      const all = received(servers)
      for (const line of lines) {
        const id = String(line.id)
        const expected = requestsOf(line, undefined, named)
        const steps = byId.get(id)!.steps as ReadonlyArray<Json>
        expect(steps.map(stepKey).sort(), id).toEqual(expected.map(stepKey).sort())
        expect(all.filter((request) => request.raw.includes(ref(id))), id).toHaveLength(expected.length)
      }
      expect(requestCounts(servers)).toEqual(expectedCounts(servers, lines, undefined, named))
      // sc3's last_number: the last number of each sample ("Answer to: What is 40 plus 2? ...")
      expect(byId.get("named")!.answer).toBe("2")
      // the critic's prompt as the server received it starts with the folder's template
      const templateHead = critiqueTemplate.slice(0, critiqueTemplate.indexOf("{INPUT_PROMPT}"))
      const critiques = all.filter((request) => request.raw.includes(ref("cr")) && request.text.startsWith(templateHead))
      expect(critiques, all.map((request) => request.text).join("\n---\n")).toHaveLength(1)
      expect(critiques[0]!.text).toContain(`Q: ${String(lines[1]!.prompt)}`)
      const critiqueStep = (byId.get("cr")!.steps as ReadonlyArray<Json>).find((step) => step.step === "critique")!
      expect(String(critiqueStep.prompt).startsWith(templateHead)).toBe(true)
      // the rewrite template was not overridden
      expect(all.filter((request) => request.raw.includes(ref("cr")) && request.text.startsWith("Rewrite the answer"))).toHaveLength(1)
    })
  }, testTimeoutMs)

  it("bad strategy settings: check names file, line and key; run refuses and sends nothing", async ({ expect }) => {
    await withServers(async (servers, dir) => {
      writeJsonl(path.join(dir, "bad.jsonl"), [
        { id: "ok", api: "openai", model_name: models.openai, prompt: "fine" },
        { id: "zero", api: "openai", model_name: models.openai, prompt: "zero samples", strategy: { name: "self_consistency", samples: 0 } },
        { id: "nope", api: "anthropic", model_name: models.anthropic, prompt: "unknown strategy", parameters: anthropicParameters, strategy: "nope" }
      ])
      const checked = await prompto(dir, ["check", "-f", "bad.jsonl", "-e", ".env"], servers.processEnv)
      expect(checked.status, describeResult(checked)).not.toBe(0)
      const output = stripAnsi(checked.stdout + checked.stderr).split("\n")
      const samplesLines = output.filter((line) => line.includes("bad.jsonl:2:"))
      const nopeLines = output.filter((line) => line.includes("bad.jsonl:3:"))
      expect(samplesLines, describeResult(checked)).toHaveLength(1)
      expect(samplesLines[0]).toContain(`key "strategy.samples"`)
      expect(nopeLines, describeResult(checked)).toHaveLength(1)
      expect(nopeLines[0]).toContain(`key "strategy"`)
      expect(nopeLines[0]).toContain(`"nope"`)
      expect(output.filter((line) => line.includes("bad.jsonl:1:")), describeResult(checked)).toEqual([])

      const ran = await prompto(dir, ["run", "-f", "bad.jsonl", "-d", "data", "-e", ".env", "-p", "-mq", "6000"], servers.processEnv)
      expect(ran.status, describeResult(ran)).not.toBe(0)
      expect(stripAnsi(ran.stdout + ran.stderr), describeResult(ran)).toContain("strategy.samples")
      expect(Object.values(requestCounts(servers)).reduce((a, b) => a + b, 0), "requests sent by a refused run").toBe(0)
      const output_ = path.join(dir, "data", "output", "bad")
      const completedFiles = runFilesOf(output_, "completed", "bad")
      const written = completedFiles.flatMap((file) => readJsonl(path.join(output_, file)))
      expect(written).toEqual([])
    })
  }, testTimeoutMs)
})

// the two runs mostly wait on the pacing and the slow server: side by side
describe.concurrent("strategies stopped and resumed", () => {
  const n = 24
  const samples = 3
  const slowMs = 400
  const rate = "1200" // queries per minute: the 72 requests take about 4 s
  const stopAfter = 5 // completed lines

  /** Loopback servers with the OpenAI API behind a slow proxy. */
  const withSlowOpenAi = async <A>(body: (proxy: SlowProxy.SlowProxy, servers: Loopback.Servers, dir: string) => Promise<A>) =>
    withServers(async (servers, dir) => {
      const proxy = await SlowProxy.start(servers.openai.url, slowMs)
      try {
        const env = { ...servers.env, OPENAI_BASE_URL: `${proxy.url}/v1` }
        fs.writeFileSync(path.join(dir, ".env"), Loopback.envFileText(env))
        return await body(proxy, { ...servers, env, processEnv: { ...servers.processEnv, ...env } }, dir)
      } finally {
        await proxy.close()
      }
    })

  const linesOf = (withKey: boolean): ReadonlyArray<Json> =>
    range(n).map((i) => ({
      id: `q${i}`,
      api: "openai",
      model_name: models.openai,
      prompt: `question ${i} ${ref(`q${i}`)}`,
      ...(withKey ? { strategy: { name: "self_consistency", samples } } : {})
    }))

  /** Requests (from `from` on) per line id. */
  const sentPerLine = (proxy: SlowProxy.SlowProxy, from: number): ReadonlyMap<string, number> => {
    const counts = new Map<string, number>()
    for (const request of proxy.requests.slice(from)) {
      const id = /\(ref (q\d+)\)/.exec(JSON.stringify(request.body))?.[1] ?? "?"
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    return counts
  }

  /** After the resume: every id once, 3 steps each; only lines unfinished before were sent again, once each. */
  const expectResumedWhole = (
    expect: ExpectStatic,
    dir: string,
    proxy: SlowProxy.SlowProxy,
    doneBefore: ReadonlySet<string>,
    sentBefore: number
  ) => {
    const completed = completedRecords(dir, "long")
    const ids = completed.map((record) => String(record.id))
    expect(ids.sort()).toEqual(range(n).map((i) => `q${i}`).sort())
    for (const record of completed) {
      expect(record.error, String(record.id)).toBeUndefined()
      const steps = record.steps as ReadonlyArray<Json>
      expect(steps.map(stepKey).sort(), String(record.id)).toEqual(
        range(samples).map((i) => stepKey({ step: `sample ${i}/answer`, api: "openai", model_name: models.openai })).sort()
      )
    }
    const resent = sentPerLine(proxy, sentBefore)
    const unfinished = n - doneBefore.size
    const resentTotal = [...resent.values()].reduce((a, b) => a + b, 0)
    expect(resentTotal, `requests of the resume (${unfinished} lines unfinished)`).toBeLessThanOrEqual(samples * unfinished)
    for (const id of doneBefore) expect(resent.get(id) ?? 0, `${id} was answered before the resume`).toBe(0)
    for (let i = 0; i < n; i++) {
      const id = `q${i}`
      if (!doneBefore.has(id)) expect(resent.get(id) ?? 0, `${id} was unfinished before the resume`).toBe(samples)
    }
    expect(resent.get("?")).toBeUndefined()
  }

  it("Ctrl-C mid-run (graceful), then the printed resume command", async ({ expect }) => {
    await withSlowOpenAi(async (proxy, servers, dir) => {
      // the strategy comes from --strategy here, so the resume command must carry it
      writeJsonl(path.join(dir, "long.jsonl"), linesOf(false))
      fs.writeFileSync(path.join(dir, "sc3.json"), JSON.stringify({ name: "self_consistency", samples }))
      const stopped = await prompto(
        dir,
        // --grace bounds the stop: requests already queued wait for their paced slot after Ctrl-C (see the report)
        ["run", "-f", "long.jsonl", "-d", "data", "-e", ".env", "--strategy", "sc3.json", "-p", "-mq", rate, "--grace", "2"],
        servers.processEnv,
        (child) => whenCompleted(dir, "long", stopAfter, () => child.kill("SIGINT"))
      )
      expect(stopped.status, describeResult(stopped)).toBe(130)
      const sentBefore = proxy.requests.length
      const before = completedRecords(dir, "long")
      const doneBefore = new Set(before.map((record) => String(record.id)))
      expect(doneBefore.size, "whole lines, each once").toBe(before.length)
      expect(doneBefore.size).toBeGreaterThanOrEqual(stopAfter)
      expect(doneBefore.size).toBeLessThan(n)
      // the stopped run wrote whole lines only: every one with all its samples
      for (const record of before) expect((record.steps as ReadonlyArray<unknown>).length, String(record.id)).toBe(samples)
      // no line was sent twice before the stop
      for (const [id, count] of sentPerLine(proxy, 0)) expect(count, id).toBeLessThanOrEqual(samples)

      const command = stopped.stdout.split("\n").find((line) => line.trim().startsWith("prompto run --resume"))
      expect(command, describeResult(stopped)).toBeDefined()
      const args = command!.trim().split(/\s+/).slice(1)
      expect(args.slice(args.indexOf("--strategy"), args.indexOf("--strategy") + 2)).toEqual(["--strategy", "sc3.json"])
      const resumed = await prompto(dir, args, servers.processEnv)
      expect(resumed.status, describeResult(resumed)).toBe(0)
      expectResumedWhole(expect, dir, proxy, doneBefore, sentBefore)
    })
  }, testTimeoutMs)

  it("SIGKILL mid-run, then --resume", async ({ expect }) => {
    await withSlowOpenAi(async (proxy, servers, dir) => {
      writeJsonl(path.join(dir, "long.jsonl"), linesOf(true))
      const flags = ["-d", "data", "-e", ".env", "-p", "-mq", rate]
      const killed = await prompto(dir, ["run", "-f", "long.jsonl", ...flags], servers.processEnv, (child) =>
        whenCompleted(dir, "long", stopAfter, () => child.kill("SIGKILL")))
      expect(killed.status, describeResult(killed)).toBe(null)
      const sentBefore = proxy.requests.length
      const output = path.join(dir, "data", "output", "long")
      const [file] = runFilesOf(output, "completed", "long")
      // a record cut mid-write (if any) does not count as done
      const text = fs.readFileSync(path.join(output, file!), "utf8")
      const doneBefore = new Set(
        text.split("\n").flatMap((line) => {
          try {
            return [String((JSON.parse(line) as Json).id)]
          } catch {
            return []
          }
        })
      )
      expect(doneBefore.size).toBeGreaterThanOrEqual(stopAfter)
      expect(doneBefore.size).toBeLessThan(n)

      const resumed = await prompto(dir, ["run", "--resume", output, ...flags], servers.processEnv)
      expect(resumed.status, describeResult(resumed)).toBe(0)
      expect(resumed.stdout).toMatch(/resumed: \d+ prompts answered before were not sent again/)
      expectResumedWhole(expect, dir, proxy, doneBefore, sentBefore)
    })
  }, testTimeoutMs)
})
