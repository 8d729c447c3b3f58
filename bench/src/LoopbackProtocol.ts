/**
 * The messages between the bench and its loopback server process (`server.ts`), over the IPC
 * channel of `child_process.fork`.
 */

/** How a model answers: after `latencyMs`, and one request at a time when `serial`. */
export interface ModelLatency {
  readonly latencyMs: number
  readonly serial?: boolean
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
  | { readonly type: "configure"; readonly id: number; readonly models: Readonly<Record<string, ModelLatency>> }
  | { readonly type: "reset"; readonly id: number }
  | { readonly type: "records"; readonly id: number }
  | { readonly type: "close"; readonly id: number }

/** A message from the server. */
export type Reply =
  | { readonly type: "listening"; readonly port: number }
  | { readonly type: "ok"; readonly id: number }
  | { readonly type: "records"; readonly id: number; readonly recorded: Recorded }
