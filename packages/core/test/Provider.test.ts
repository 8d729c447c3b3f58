import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Provider from "../src/Provider.js"
import { MockProvider } from "../src/testing/index.js"

/** The api and the provider instance of each registry entry, in key order. */
const entries = Effect.map(Provider.registry, (registry) => [...registry.entries()])

describe("Provider", () => {
  describe("registry", () => {
    it.effect("merging two single-provider layers installs both", () => {
      const openai = MockProvider.make("openai")
      const anthropic = MockProvider.make("anthropic")
      return Effect.gen(function*() {
        expect(yield* entries).toEqual([["openai", openai], ["anthropic", anthropic]])
      }).pipe(Effect.provide(Layer.mergeAll(Provider.layer(openai), Provider.layer(anthropic))))
    })

    it.effect("a later provider for the same api overrides the earlier one", () => {
      const real = MockProvider.make("openai")
      const mock = MockProvider.make("openai")
      const other = MockProvider.make("gemini")
      return Effect.gen(function*() {
        const registry = yield* Provider.registry
        expect(registry.get("openai")).toBe(mock)
        expect(registry.get("gemini")).toBe(other)
        expect(registry.size).toBe(2)
      }).pipe(Effect.provide(Layer.mergeAll(Provider.registryLayer(real, other), MockProvider.layer(mock))))
    })

    it.effect("a provider provided inside an outer layer overrides the outer one", () => {
      const real = MockProvider.make("openai")
      const mock = MockProvider.make("openai")
      return Effect.gen(function*() {
        expect((yield* Provider.registry).get("openai")).toBe(mock)
      }).pipe(Effect.provide(Provider.layer(mock)), Effect.provide(Provider.layer(real)))
    })

    it.effect("registryLayer keeps the last of several providers with one api", () => {
      const first = MockProvider.make("openai")
      const second = MockProvider.make("openai")
      return Effect.gen(function*() {
        expect(yield* entries).toEqual([["openai", second]])
      }).pipe(Effect.provide(Provider.registryLayer(first, second)))
    })

    it.effect("layerEffect installs the provider an effect builds", () => {
      const built = MockProvider.make("ollama")
      return Effect.gen(function*() {
        expect(yield* entries).toEqual([["ollama", built]])
      }).pipe(Effect.provide(Provider.layerEffect(Effect.succeed(built))))
    })

    it.effect("a whole-map ProviderRegistry entry still works and merges with single entries", () => {
      const openai = MockProvider.make("openai")
      const fromMap = MockProvider.make("anthropic")
      return Effect.gen(function*() {
        const registry = yield* Provider.registry
        expect(registry.get("anthropic")).toBe(fromMap)
        expect(registry.get("openai")).toBe(openai)
      }).pipe(
        Effect.provide(Layer.mergeAll(
          Layer.succeed(Provider.ProviderRegistry, new Map([["anthropic", fromMap]])),
          Provider.layer(openai)
        ))
      )
    })

    it.effect("a whole-map entry provided inside overrides outer single entries", () => {
      const real = MockProvider.make("openai")
      const mock = MockProvider.make("openai")
      return Effect.gen(function*() {
        expect((yield* Provider.registry).get("openai")).toBe(mock)
      }).pipe(
        Effect.provideService(Provider.ProviderRegistry, new Map([["openai", mock]])),
        Effect.provide(Provider.layer(real))
      )
    })

    it.effect("returns the same map while the context is unchanged", () =>
      Effect.gen(function*() {
        expect(yield* Provider.registry).toBe(yield* Provider.registry)
      }).pipe(Effect.provide(Provider.layer(MockProvider.make("openai")))))

    it.effect("providerTag is one tag per api", () =>
      Effect.sync(() => {
        expect(Provider.providerTag("openai")).toBe(Provider.providerTag("openai"))
        expect(Provider.providerTag("openai").key).not.toBe(Provider.providerTag("anthropic").key)
        expect(Provider.providerTag("openai").key).not.toBe(Provider.ProviderRegistry.key)
      }))
  })

  describe("missingProviderMessage", () => {
    const installed = new Map([["openai", MockProvider.make("openai")], ["test", MockProvider.make("test")]])

    it.effect("names an installed-but-missing known API and what is installed", () =>
      Effect.sync(() => {
        expect(Provider.missingProviderMessage("gemini", installed)).toBe(
          `API "gemini" is not installed in this build of prompto (installed: openai, test)`
        )
      }))

    it.effect("calls any other name an invalid API and lists the known ones", () =>
      Effect.sync(() => {
        expect(Provider.missingProviderMessage("nope", installed)).toBe(
          `"nope" is not a valid API (known: ${Provider.knownApis.join(", ")})`
        )
      }))
  })
})
