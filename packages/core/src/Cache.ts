/**
 * The response cache: answers kept in an embedded LMDB database (the `lmdb` package: memory-
 * mapped, crash-safe by design, many writes per transaction), so a run sent again pays only for
 * what it has not asked before. It sits on the request path as a `Middleware`, so every request
 * is cached on its own: lines, each strategy step, judge and rephrase prompts, each sample of a
 * repeated line.
 *
 * The key covers everything that decides an answer: `api`, `model_name`, the exact prompt,
 * every parameter, `mode` and `safety_filter`, the strategy step and the `sample` index, so k
 * samples stay k answers. A hit sends nothing and completes the record with `cached: true` and
 * the original usage. Errors are never cached.
 *
 * @since 0.1.0
 */
import { Clock, Effect, FiberRef, Schema, type Scope } from "effect"
import { createHash } from "node:crypto"
import * as nodeFs from "node:fs"
import * as nodePath from "node:path"
import type { CompletedRecord, IdentifiedRecord } from "./PromptRecord.js"
import * as Provider from "./Provider.js"
import * as RequestPath from "./RequestPath.js"
import * as Timestamp from "./Timestamp.js"

/**
 * The cache cannot be opened or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheError extends Schema.TaggedError<CacheError>()("CacheError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * How a run uses the cache: `read-write` (the default) answers from it and keeps new answers;
 * `read-only` answers from it and keeps nothing; `refresh` sends everything and keeps the new
 * answers.
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "read-write" | "read-only" | "refresh"

/**
 * The modes, for flags.
 *
 * @since 0.1.0
 * @category constants
 */
export const modes: ReadonlyArray<Mode> = ["read-write", "read-only", "refresh"]

/**
 * What is kept of an answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly response: unknown
  readonly usage?: unknown
  /** The provider's further keys (`model`, `finish_reason`, ...). */
  readonly fields?: Readonly<Record<string, unknown>>
  /** When it was kept (clock milliseconds). */
  readonly at: number
}

/**
 * An open cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cache {
  readonly path: string
  readonly get: (key: string) => Entry | undefined
  readonly put: (key: string, entry: Entry) => Effect.Effect<void>
  /** Entries kept, and the size of the database file in bytes. */
  readonly stats: Effect.Effect<{ readonly entries: number; readonly bytes: number }>
  /** Calls `f` on every entry (a check of the whole cache); gives how many there were. */
  readonly forEach: (f: (entry: Entry, key: string) => void) => Effect.Effect<number>
  /** Removes entries kept before `before` (clock milliseconds; all when absent); gives how many. */
  readonly clear: (before?: number) => Effect.Effect<number>
}

/** Keys whose string value may name a file in the media folder (prompto's shapes per API). */
const mediaKeys = new Set(["media", "image_url", "url"])

const isUrl = (reference: string): boolean => /^(https?|gs|data):/i.test(reference)

const canonical = (value: unknown, media: ((reference: string) => string | undefined) | undefined): string => {
  if (Array.isArray(value)) return `[${value.map((item) => canonical(item, media)).join(",")}]`
  if (typeof value !== "object" || value === null) return JSON.stringify(value) ?? "null"
  const object = value as Record<string, unknown>
  return `{${
    Object.keys(object).sort().map((name) => {
      const item = object[name]
      // a local file is keyed by its content, so an edited image is a new request
      const hashed = media !== undefined && mediaKeys.has(name) && typeof item === "string" && !isUrl(item)
        ? media(item)
        : undefined
      return `${JSON.stringify(name)}:${hashed === undefined ? canonical(item, media) : JSON.stringify({ sha256: hashed })}`
    }).join(",")
  }}`
}

/**
 * Hashes media files by content (SHA-256), each read once while its size and modification time
 * stay the same; a file that cannot be read gives `undefined` (keyed by its name).
 *
 * @since 0.1.0
 * @category keys
 */
export const mediaHasher = (): (folder: string) => (reference: string) => string | undefined => {
  const known = new Map<string, { readonly stamp: string; readonly hash: string }>()
  return (folder) => (reference) => {
    const file = nodePath.resolve(folder, reference)
    try {
      const stat = nodeFs.statSync(file)
      const stamp = `${stat.size}:${stat.mtimeMs}`
      const seen = known.get(file)
      if (seen !== undefined && seen.stamp === stamp) return seen.hash
      // the extension too: it decides the MIME type sent with the bytes
      const hash = createHash("sha256").update(nodeFs.readFileSync(file)).digest("hex") + nodePath.extname(reference)
      known.set(file, { stamp, hash })
      return hash
    } catch {
      return undefined
    }
  }
}

/**
 * The key of a request: a SHA-256 of everything that decides its answer, written canonically
 * (object keys sorted), so the same request always finds the same entry. With `media`, local
 * media files the prompt names count by their content, not their name.
 *
 * @since 0.1.0
 * @category keys
 */
export const key = (
  record: IdentifiedRecord,
  step?: string | undefined,
  media?: ((reference: string) => string | undefined) | undefined
): string =>
  createHash("sha256").update(canonical({
    api: record.api,
    model_name: record.model_name,
    prompt: record.prompt,
    parameters: record.parameters ?? {},
    mode: record.mode ?? null,
    safety_filter: record.safety_filter ?? null,
    sample: record.sample ?? null,
    step: step ?? null
  }, media)).digest("base64url")

/**
 * Opens (or creates) the cache in `folder`, closed with the scope. LMDB keeps the database
 * whole through a crash: a write is in the file only once its transaction has committed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const open = (folder: string): Effect.Effect<Cache, CacheError, Scope.Scope> =>
  Effect.gen(function*() {
    const lmdb = yield* Effect.tryPromise({
      try: () => import("lmdb"),
      catch: (error) => new CacheError({ path: folder, message: `cannot load lmdb: ${String(error)}` })
    })
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => lmdb.open<Entry, string>({ path: folder, compression: true }),
        catch: (error) => new CacheError({ path: folder, message: `cannot open the cache: ${String(error)}` })
      }),
      (db) => Effect.promise(() => db.close())
    )
    return {
      path: folder,
      get: (k) => db.get(k),
      // writes are batched by lmdb into one transaction per event-loop turn
      put: (k, entry) => Effect.promise(() => db.put(k, entry)).pipe(Effect.asVoid, Effect.ignore),
      stats: Effect.sync(() => {
        const stat = db.getStats() as { readonly entryCount?: number; readonly mapSize?: number }
        const file = nodePath.join(folder, "data.mdb")
        const bytes = nodeFs.existsSync(file) ? nodeFs.statSync(file).size : 0
        return { entries: stat.entryCount ?? 0, bytes }
      }),
      forEach: (f) =>
        Effect.sync(() => {
          let count = 0
          for (const { key: k, value } of db.getRange()) {
            f(value, k)
            count++
          }
          return count
        }),
      clear: (before) =>
        Effect.promise(async () => {
          let removed = 0
          for (const { key: k, value } of db.getRange()) {
            if (before === undefined || value.at < before) {
              await db.remove(k)
              removed++
            }
          }
          return removed
        })
    }
  })

/** Keys of a completed record that are the run's own, not the provider's answer. */
const runKeys = new Set(["cost", "cached", "timestamp_sent", "timestamp_received", "latency_ms", "attempts", "usage", "response", "error"])

/**
 * The cache as a request-path middleware. A hit completes the record at once (reported to the
 * run's statistics like a sent request), with `cached: true` and the kept usage; a miss goes on
 * down the path, and its answer is kept unless it is an error or the mode is `read-only`.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = (cache: Cache, mode: Mode = "read-write"): RequestPath.Middleware => {
  const hashMedia = mediaHasher()
  return (next, context) => (request) =>
    Effect.gen(function*() {
      const { record } = request
      const k = key(record, request.step, hashMedia(yield* FiberRef.get(Provider.mediaFolder)))
      const hit = mode === "refresh" ? undefined : cache.get(k)
      if (hit !== undefined) {
        const now = yield* Clock.currentTimeMillis
        const at = Timestamp.format(now)
        const completed: CompletedRecord = {
          ...record,
          timestamp_sent: at,
          response: hit.response,
          ...hit.fields,
          timestamp_received: at,
          latency_ms: 0,
          attempts: 0,
          ...(hit.usage === undefined ? {} : { usage: hit.usage as CompletedRecord["usage"] }),
          cached: true,
          // it paid nothing this time
          cost: 0
        }
        return yield* RequestPath.answerHere(context, request, completed)
      }
      const completed = yield* next(request)
      if (mode !== "read-only" && completed.error === undefined) {
        const fields: Record<string, unknown> = {}
        for (const [name, value] of Object.entries(completed)) {
          if (!runKeys.has(name) && !Object.hasOwn(record, name)) fields[name] = value
        }
        yield* cache.put(k, {
          response: completed.response,
          usage: completed.usage,
          fields,
          at: yield* Clock.currentTimeMillis
        })
      }
      return completed
    })
}
