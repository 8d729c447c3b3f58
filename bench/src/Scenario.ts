/**
 * What every scenario is: a numbered run that gets the shared context (the loopback server,
 * the sizes to use) and returns its figures, each with a target, plus the raw details that go
 * to `bench/results.json`.
 */
import * as Figures from "./Figures.js"
import type { LoopbackServer } from "./LoopbackServer.js"

/** One measured figure and what it is held to. */
export interface Figure {
  readonly name: string
  readonly measured: number
  readonly unit: string
  /** Decimals when printed. */
  readonly digits: number
  readonly target: Figures.Target
}

/** What a scenario returns. */
export interface Outcome {
  readonly figures: ReadonlyArray<Figure>
  /** Raw measurements for `results.json`. */
  readonly details: Readonly<Record<string, unknown>>
}

/** What scenarios share. */
export interface Context {
  /** The loopback OpenAI server (started once for the whole bench). */
  readonly server: LoopbackServer
  /** Smaller sizes, for development. */
  readonly quick: boolean
  /** Scenario 2's time scale: latencies times `scale`, rates divided by it. */
  readonly scale: number
  /** Keep temporary folders (their paths are printed). */
  readonly keep: boolean
  /** Prints a progress line (to stderr, so stdout holds the table). */
  readonly progress: (line: string) => void
}

/** A scenario of the bench. */
export interface Scenario {
  readonly id: number
  /** The title, as printed in the table (may depend on the context, e.g. the scale). */
  readonly title: (context: Context) => string
  readonly run: (context: Context) => Promise<Outcome>
}

/** A figure, with its unit, decimals and target (no target by default). */
export const figure = (
  name: string,
  measured: number,
  options: { readonly unit?: string; readonly digits?: number; readonly target?: Figures.Target } = {}
): Figure => ({
  name,
  measured,
  unit: options.unit ?? "",
  digits: options.digits ?? 2,
  target: options.target ?? Figures.info
})
