/**
 * Ollama lines grouped by model, as prompto sorts them (`sort_prompts_by_model_for_api`): a
 * local server holds one model in memory, and a request for another swaps it out, which takes
 * seconds. prompto sorts the whole file; a stream cannot, so lines are grouped within windows
 * of `window` lines (default 1,000). In each window the Ollama lines of a model go together, at
 * the place of the model's first line, and the window starts with the model the previous one
 * ended on; other APIs' lines keep their order. So a file whose Ollama lines alternate between
 * k models swaps at most k times per window instead of at every line.
 *
 * @internal
 */
import { Chunk, Stream } from "effect"
import type { IdentifiedRecord } from "../PromptRecord.js"

/** The APIs whose lines are grouped. */
const grouped = new Set(["ollama"])

/** The default window, in lines: a window is read before its first line is sent. */
export const defaultWindow = 1_000

/**
 * One window's lines, with the grouped APIs' lines of a model together; `last` is the model the
 * previous window ended on (it goes first).
 */
export const groupWindow = (
  lines: ReadonlyArray<IdentifiedRecord>,
  last: string | undefined
): { readonly lines: ReadonlyArray<IdentifiedRecord>; readonly last: string | undefined } => {
  if (!lines.some((line) => grouped.has(line.api))) return { lines, last }
  const slots: Array<IdentifiedRecord | Array<IdentifiedRecord>> = []
  const groups = new Map<string, Array<IdentifiedRecord>>()
  const carried = last === undefined ? undefined : lines.some((line) => grouped.has(line.api) && `${line.api}\u0000${line.model_name}` === last)
    ? last
    : undefined
  if (carried !== undefined) {
    const group: Array<IdentifiedRecord> = []
    groups.set(carried, group)
    slots.push(group)
  }
  for (const line of lines) {
    if (!grouped.has(line.api)) {
      slots.push(line)
      continue
    }
    const model = `${line.api}\u0000${line.model_name}`
    let group = groups.get(model)
    if (group === undefined) {
      group = []
      groups.set(model, group)
      slots.push(group)
    }
    group.push(line)
  }
  const out: Array<IdentifiedRecord> = []
  let ended = last
  for (const slot of slots) {
    if (Array.isArray(slot)) {
      out.push(...slot)
      const first = slot[0]
      if (first !== undefined) ended = `${first.api}\u0000${first.model_name}`
    } else {
      out.push(slot)
    }
  }
  return { lines: out, last: ended }
}

/**
 * A queue's lines with Ollama lines grouped by model within windows of `window` lines.
 */
export const groupByModel = (window: number = defaultWindow) =>
<E, R>(lines: Stream.Stream<IdentifiedRecord, E, R>): Stream.Stream<IdentifiedRecord, E, R> =>
  Stream.grouped(lines, window).pipe(
    Stream.mapAccum(undefined as string | undefined, (last, chunk) => {
      const windowed = groupWindow(Chunk.toReadonlyArray(chunk), last)
      return [windowed.last, Chunk.unsafeFromArray([...windowed.lines])] as const
    }),
    Stream.flattenChunks
  )

/**
 * How many times consecutive grouped-API lines change model (a local server's model swaps).
 */
export const swaps = (lines: ReadonlyArray<IdentifiedRecord>): number => {
  let count = 0
  let previous: string | undefined
  for (const line of lines) {
    if (!grouped.has(line.api)) continue
    const model = `${line.api}\u0000${line.model_name}`
    if (previous !== undefined && model !== previous) count++
    previous = model
  }
  return count
}
