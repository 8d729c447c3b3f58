/**
 * A model's first check loads what its sends need (the HTTP transport), so the first requests
 * are not held by an import while the pacer goes on granting slots: held, they reach the API
 * together, faster than the rate (the fault-injection test saw 55 in a second at 50/s).
 * Each test starts from fresh modules, with nothing loaded yet.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Provider } from "@prompto/core"
import { ConfigProvider, Effect } from "effect"
import * as diagnostics from "node:diagnostics_channel"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
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

/** A loopback "API" that counts what reaches it. */
const countingServer = async () => {
  let requests = 0
  const server = http.createServer((request, response) => {
    requests++
    request.resume()
    response.writeHead(500).end()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, requests: () => requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

/** undici's requests created while `f` runs (its diagnostics channel), as `origin path`. */
const undiciRequestsDuring = async <A>(f: () => Promise<A>): Promise<{ readonly result: A; readonly created: Array<string> }> => {
  const created: Array<string> = []
  const listener = (message: unknown) => {
    const { request } = message as { readonly request: { readonly origin: string; readonly path: string } }
    created.push(`${request.origin} ${request.path}`)
  }
  diagnostics.subscribe("undici:request:create", listener)
  try {
    return { result: await f(), created }
  } finally {
    diagnostics.unsubscribe("undici:request:create", listener)
  }
}

describe("a model's first check rehearses its first request, and nothing reaches the API", () => {
  const sdkProviders = [
    { api: "openai", make: async () => Effect.runSync((await import("../src/OpenAi.js")).make), key: "OPENAI_API_KEY", base: "OPENAI_BASE_URL", path: "/v1" },
    { api: "anthropic", make: async () => (await import("../src/Anthropic.js")).make(), key: "ANTHROPIC_API_KEY", base: "ANTHROPIC_BASE_URL", path: "" }
  ] as const

  it.each(sdkProviders)("$api", async ({ api, base, key, make, path }) => {
    vi.resetModules()
    const UndiciFetch = await import("../src/internal/undiciFetch.js")
    const server = await countingServer()
    try {
      const provider = await make()
      const entries = { [key]: "sk-test", [base]: `${server.url}${path}` }
      const { created, result } = await undiciRequestsDuring(() => Effect.runPromise(provider.check(record(api)).pipe(env(entries))))
      expect(result).toEqual([])
      // the transport's rehearsal: one request to a listener of its own on loopback, not the API
      expect(created).toHaveLength(1)
      expect(created[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+ \/$/)
      expect(created[0]!.startsWith(`${server.url} `)).toBe(false)
      // the SDK's rehearsal was refused before anything was sent: the API saw nothing
      expect(server.requests()).toBe(0)
      await expect(UndiciFetch.refusingFetch()).rejects.toThrow("a rehearsal sends nothing")
      // once a process: a second model's check rehearses the SDK again, the transport not
      const again = await undiciRequestsDuring(() =>
        Effect.runPromise(provider.check({ ...record(api), model_name: "other" }).pipe(env(entries)))
      )
      expect(again.created).toEqual([])
      expect(server.requests()).toBe(0)
    } finally {
      await server.close()
    }
  })
})
