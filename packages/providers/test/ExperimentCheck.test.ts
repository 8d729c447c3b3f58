import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { ExperimentCheck } from "@prompto/core"
import { ConfigProvider, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Providers from "../src/index.js"

/** Checks the lines as `prompto check` does, through every real provider, with no variable set. */
const check = (lines: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-check-"))
    const file = path.join(dir, "exp.jsonl")
    fs.writeFileSync(file, lines.map((line) => JSON.stringify(line)).join("\n") + "\n")
    return yield* ExperimentCheck.check(file, { displayName: "exp.jsonl" })
  }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
    Effect.provide(Layer.merge(NodeFileSystem.layer, Providers.layer))
  )

const empty = "the list is empty: give at least one turn or message"

describe("prompto check through the real providers", () => {
  it.effect("lists every problem of a line: a bad prompt shape and a missing key are both reported, for every API", () =>
    Effect.gen(function*() {
      const report = yield* check([
        { id: 1, api: "openai", model_name: "gpt-4o", prompt: 5 },
        { id: 2, api: "anthropic", model_name: "claude", prompt: ["a", { role: "user", content: "b" }], parameters: { max_tokens: 9 } },
        { id: 3, api: "gemini", model_name: "g", prompt: [{ role: "user", content: "c" }] },
        { id: 4, api: "ollama", model_name: "llama3", prompt: { text: "hi" } },
        { id: 5, api: "quart", model_name: "q", prompt: ["a"] }
      ])
      const byLine = (line: number) => report.problems.filter((problem) => problem.line === line).map((problem) => problem.key)
      expect(byLine(1)).toEqual(["prompt", "api"])
      expect(byLine(2)).toEqual(["prompt", "api"])
      expect(byLine(3)).toEqual(["prompt", "api"])
      expect(byLine(4)).toEqual(["prompt", "api"])
      expect(byLine(5)).toEqual(["prompt", "api"])
      expect(report.problems.find((problem) => problem.line === 1 && problem.key === "api")!.message).toBe(
        "at least one of the environment variables \"OPENAI_API_KEY_gpt_4o\", \"OPENAI_API_KEY\" must be set"
      )
    }))

  it.effect("an empty prompt list gets one wording for every API", () =>
    Effect.gen(function*() {
      const apis = ["test", "openai", "azure-openai", "anthropic", "gemini", "vertexai", "ollama", "huggingface-tgi", "quart"]
      const report = yield* check(apis.map((api, index) => ({ id: index, api, model_name: "m", prompt: [] })))
      const prompts = report.problems.filter((problem) => problem.key === "prompt")
      expect(prompts.map((problem) => problem.line)).toEqual(apis.map((_, index) => index + 1))
      expect(new Set(prompts.map((problem) => problem.message))).toEqual(new Set([empty]))
      expect(ExperimentCheck.groupProblems(prompts)).toEqual([`exp.jsonl:lines 1-9: key "prompt": ${empty}`])
    }))
})
