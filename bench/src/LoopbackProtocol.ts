/**
 * The messages between the bench and its loopback server process (`server.ts`), over the IPC
 * channel of `child_process.fork`.
 */

/**
 * A limit on a model's requests as OpenAI enforces one: a token bucket that holds `capacity`
 * requests and refills continuously at `perMinute`; a request that finds it empty is answered
 * 429 at once, in OpenAI's format. With `headers`, every answer (429 or not) carries OpenAI's
 * `x-ratelimit-{limit,remaining,reset}-requests`: the capacity, the requests left, and the time
 * until the bucket is full again as a Go-style duration (`200ms`, `1.2s`); without, the 429
 * says nothing about when to come back (no `retry-after` either).
 */
export interface RateLimit {
  readonly perMinute: number
  readonly capacity: number
  readonly headers: boolean
}

/**
 * How a model answers: after `latencyMs`, one request at a time when `serial`, and refusing
 * requests beyond its `rateLimit` when it has one.
 */
export interface ModelConfig {
  readonly latencyMs: number
  readonly serial?: boolean
  readonly rateLimit?: RateLimit
}

/** What the server recorded since its last reset: one entry per request, in arrival order. */
export interface Recorded {
  /** Model names; `modelOf[i]` indexes this list. */
  readonly models: ReadonlyArray<string>
  /** Arrival time of each request, epoch milliseconds. */
  readonly arrivedAt: ReadonlyArray<number>
  /** When each answer was sent, epoch milliseconds (`null` while unanswered). */
  readonly answeredAt: ReadonlyArray<number | null>
  readonly modelOf: ReadonlyArray<number | null>
  /** The status of each answer (`null` while unanswered). */
  readonly status: ReadonlyArray<number | null>
  /**
   * The sender's own stamp of when it sent each request (its `x-sent-at` header, epoch
   * milliseconds), `null` when it sent none: the reference clients stamp theirs, so the bench
   * can measure how far reading a request lags its sending.
   */
  readonly sentAt: ReadonlyArray<number | null>
  /** TCP connections accepted. */
  readonly connections: number
  /** The server's own CPU time, milliseconds (user + system). */
  readonly cpuMs: number
}

/** A command from the bench. */
export type Command =
  | { readonly type: "configure"; readonly id: number; readonly models: Readonly<Record<string, ModelConfig>> }
  | { readonly type: "reset"; readonly id: number }
  | { readonly type: "records"; readonly id: number }
  | { readonly type: "clock"; readonly id: number }
  | { readonly type: "close"; readonly id: number }

/** A message from the server. */
export type Reply =
  | { readonly type: "listening"; readonly port: number }
  | { readonly type: "ok"; readonly id: number }
  | { readonly type: "records"; readonly id: number; readonly recorded: Recorded }
  /** The server's clock when it read the `clock` command, epoch milliseconds. */
  | { readonly type: "clock"; readonly id: number; readonly now: number }
