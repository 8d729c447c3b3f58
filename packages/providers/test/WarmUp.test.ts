/**
 * A model's first check loads what its sends need (the HTTP transport), so the first requests
 * are not held by an import while the pacer goes on granting slots: held, they reach the API
 * together, faster than the rate (the fault-injection test saw 55 in a second at 50/s).
 * Each test starts from fresh modules, with nothing loaded yet.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Provider } from "@prompto/core"
import { ConfigProvider, Effect } from "effect"
import { vi } from "vitest"

const env = (entries: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const record = (api: string) => ({ id: "1", api, model_name: "m", prompt: "hello", parameters: { max_tokens: 16 } })

/** Whether the transport is loaded: `transport()` then answers at once, not with a promise. */
const loadedAfterCheck = async (
  api: string,
  makeProvider: () => Promise<Provider.Provider>,
  entries: Record<string, string>
) => {
  vi.resetModules()
  const UndiciFetch = await import("../src/internal/undiciFetch.js")
  const provider = await makeProvider()
  const problems = await Effect.runPromise(provider.check(record(api)).pipe(env(entries)))
  return { problems, loaded: !(UndiciFetch.transport() instanceof Promise) }
}

describe("a model's first check loads the transport before any send", () => {
  it("quart", async () => {
    const { loaded, problems } = await loadedAfterCheck("quart", async () => {
      const Quart = await import("../src/Quart.js")
      return Effect.runSync(Quart.make)
    }, { QUART_API_ENDPOINT: "http://127.0.0.1:1" })
    expect(problems).toEqual([])
    expect(loaded).toBe(true)
  })

  it("ollama", async () => {
    const { loaded, problems } = await loadedAfterCheck("ollama", async () => {
      const Ollama = await import("../src/Ollama.js")
      return Effect.runSync(Ollama.make)
    }, { OLLAMA_API_ENDPOINT: "http://127.0.0.1:1" })
    expect(problems).toEqual([])
    expect(loaded).toBe(true)
  })

  it("openai", async () => {
    const { loaded, problems } = await loadedAfterCheck("openai", async () => {
      const OpenAi = await import("../src/OpenAi.js")
      return Effect.runSync(OpenAi.make)
    }, { OPENAI_API_KEY: "sk-test" })
    expect(problems).toEqual([])
    expect(loaded).toBe(true)
  })

  it("anthropic", async () => {
    const { loaded, problems } = await loadedAfterCheck("anthropic", async () => {
      const Anthropic = await import("../src/Anthropic.js")
      return Anthropic.make()
    }, { ANTHROPIC_API_KEY: "sk-test" })
    expect(problems).toEqual([])
    expect(loaded).toBe(true)
  })

  it("without a check nothing loads it (so the tests above can fail)", async () => {
    vi.resetModules()
    const UndiciFetch = await import("../src/internal/undiciFetch.js")
    await import("../src/Quart.js")
    expect(UndiciFetch.transport() instanceof Promise).toBe(true)
  })
})
