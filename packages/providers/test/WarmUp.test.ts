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

/** Each provider: how to make it from fresh modules, and the variables its check needs. */
const providers: ReadonlyArray<{
  readonly api: string
  readonly make: () => Promise<Provider.Provider>
  readonly entries: Record<string, string>
}> = [
  {
    api: "quart",
    make: async () => Effect.runSync((await import("../src/Quart.js")).make),
    entries: { QUART_API_ENDPOINT: "http://127.0.0.1:1" }
  },
  {
    api: "ollama",
    make: async () => Effect.runSync((await import("../src/Ollama.js")).make),
    entries: { OLLAMA_API_ENDPOINT: "http://127.0.0.1:1" }
  },
  { api: "openai", make: async () => Effect.runSync((await import("../src/OpenAi.js")).make), entries: { OPENAI_API_KEY: "sk-test" } },
  { api: "anthropic", make: async () => (await import("../src/Anthropic.js")).make(), entries: { ANTHROPIC_API_KEY: "sk-test" } }
]

describe("a model's first check loads the transport before any send", () => {
  it.each(providers)("$api", async ({ api, entries, make }) => {
    vi.resetModules()
    const UndiciFetch = await import("../src/internal/undiciFetch.js")
    const provider = await make()
    const problems = await Effect.runPromise(provider.check(record(api)).pipe(env(entries)))
    expect(problems).toEqual([])
    // loaded: `transport()` answers at once, not with a promise
    expect(UndiciFetch.transport() instanceof Promise).toBe(false)
  })

  it("without a check nothing loads it (so the tests above can fail)", async () => {
    vi.resetModules()
    const UndiciFetch = await import("../src/internal/undiciFetch.js")
    await import("../src/Quart.js")
    expect(UndiciFetch.transport() instanceof Promise).toBe(true)
  })
})
