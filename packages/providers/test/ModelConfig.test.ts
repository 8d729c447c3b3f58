import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Option } from "effect"
import * as ModelConfig from "../src/ModelConfig.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("ModelConfig.perModel", () => {
  it.effect("derives once per model and configuration; a failure is tried again", () =>
    Effect.gen(function*() {
      const reads: Array<string> = []
      const keyOf = ModelConfig.perModel((modelName) =>
        Effect.flatMap(ModelConfig.lookup("KEY", modelName), (key) => {
          reads.push(modelName)
          return Option.isSome(key) ? Effect.succeed(key.value) : Effect.fail(`no key for ${modelName}`)
        })
      )
      const first = withEnv({ KEY: "k", KEY_b: "kb" })
      expect(yield* keyOf("a").pipe(first)).toBe("k")
      expect(yield* keyOf("a").pipe(first)).toBe("k")
      expect(yield* keyOf("b").pipe(first)).toBe("kb")
      expect(reads).toEqual(["a", "b"])
      // another configuration is read afresh
      expect(yield* keyOf("a").pipe(withEnv({ KEY: "other" }))).toBe("other")
      // failures are not kept
      const empty = withEnv({})
      expect(yield* Effect.either(keyOf("c").pipe(empty))).toEqual(Either.left("no key for c"))
      expect(yield* Effect.either(keyOf("c").pipe(empty))).toEqual(Either.left("no key for c"))
      expect(reads).toEqual(["a", "b", "a", "c", "c"])
    }))
})
