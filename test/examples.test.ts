import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as MockPipeline from "../examples/mock-pipeline.js"
import * as RunFromCode from "../examples/run-from-code.js"

describe("examples", () => {
  it.live("mock-pipeline.ts scores the mocked responses", () =>
    Effect.gen(function*() {
      const scored = yield* MockPipeline.program
      expect(scored.map((record) => [record.id, record.match]).sort()).toEqual([["q1", true], ["q2", true], ["q3", false]])
      expect(MockPipeline.mockOpenAi.calls.map((call) => call.id).sort()).toEqual(["q1", "q2", "q3"])
    }))

  it.live("run-from-code.ts writes prompto's files with one completed record per prompt", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prompto-example-"))
      const result = yield* RunFromCode.program(dir)
      const completed = fs.readFileSync(result.files.completed, "utf8").trim().split("\n").map((line) => JSON.parse(line))
      expect(completed.map((record) => record.id).sort()).toEqual([0, 1, 2, 3])
      expect(completed.every((record) => String(record.response).startsWith("This is a test response to:"))).toBe(true)
      expect([...result.stats.queues.keys()].sort()).toEqual(["large-model", "small-model"])
      expect(fs.readdirSync(path.join(dir, "input"))).toEqual([])
    }).pipe(Effect.provide(NodeContext.layer)))
})
