import { describe, expect, it } from "@effect/vitest"
import { Provider } from "@prompto/core"
import { MockProvider } from "@prompto/core/testing"
import { Effect, Layer } from "effect"
import * as Providers from "../src/index.js"
import { Anthropic, OpenAi } from "../src/index.js"

describe("provider layers", () => {
  it.effect("Layer.mergeAll(OpenAi.layer, Anthropic.layer) installs both and nothing else", () =>
    Effect.gen(function*() {
      const registry = yield* Provider.registry
      expect([...registry.keys()].sort()).toEqual(["anthropic", "openai"])
      expect(registry.has("gemini")).toBe(false)
      expect(registry.get("openai")!.api).toBe("openai")
      expect(registry.get("anthropic")!.api).toBe("anthropic")
    }).pipe(Effect.provide(Layer.mergeAll(OpenAi.layer, Anthropic.layer))))

  it.effect("a mock merged after the package layer overrides that api only", () => {
    const mock = MockProvider.make("openai")
    return Effect.gen(function*() {
      const registry = yield* Provider.registry
      expect(registry.get("openai")).toBe(mock)
      expect(registry.size).toBe(Provider.knownApis.length)
      expect(registry.get("anthropic")!.api).toBe("anthropic")
    }).pipe(Effect.provide(Layer.merge(Providers.layer, MockProvider.layer(mock))))
  })
})
