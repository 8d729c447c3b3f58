/**
 * The parts of undici prompto uses (its `Agent`, `request` and the redirect interceptor),
 * loaded from undici's own files rather than from its index, which also loads its `fetch`,
 * WebSocket, mocks and caches: about 40 ms to import instead of about 100 ms, spent before a
 * run's first HTTP request (`UndiciFetch.transport` imports this module on first use).
 *
 * @since 0.1.0
 */
import Agent from "undici/lib/dispatcher/agent.js"
import request from "undici/lib/api/api-request.js"
import redirect from "undici/lib/interceptor/redirect.js"
import type { UndiciParts } from "./undiciFetch.js"

/**
 * The parts.
 *
 * @since 0.1.0
 * @category transport
 */
export const parts: UndiciParts = {
  Agent,
  // undici's `request(url, options)` without the index's wrapper: the same call on the dispatcher
  request: (url, options) => {
    const { origin, pathname, search } = new URL(url)
    const { dispatcher, ...rest } = options
    return request.call(dispatcher, { ...rest, origin, path: `${pathname}${search}` })
  },
  redirect
}
