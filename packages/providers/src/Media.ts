/**
 * Local media for multimodal prompts: files named in a prompt are read from the run's media
 * folder (`<data folder>/media`, the `Provider.mediaFolder` FiberRef) and sent base64-encoded;
 * `http(s)://`, `gs://` and `data:` URLs pass through.
 *
 * @since 0.1.0
 */
import { Provider, ProviderError } from "@prompto/core"
import { Effect, FiberRef } from "effect"
import { readFile, stat } from "node:fs/promises"
import * as path from "node:path"

/**
 * Whether a reference is a URL (sent as is) rather than a file in the media folder.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isUrl = (reference: string): boolean => /^(https?|gs|data):/i.test(reference)

const mimeTypes: Readonly<Record<string, string>> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".heic": "image/heic",
  ".pdf": "application/pdf",
  ".mp3": "audio/mpeg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".mov": "video/quicktime",
  ".txt": "text/plain"
}

/**
 * The MIME type of a file from its extension (`application/octet-stream` if unknown).
 *
 * @since 0.1.0
 * @category utils
 */
export const mimeTypeOf = (file: string): string => mimeTypes[path.extname(file).toLowerCase()] ?? "application/octet-stream"

/**
 * The absolute path of a media reference in the current media folder.
 *
 * @since 0.1.0
 * @category utils
 */
export const resolve = (reference: string): Effect.Effect<string> =>
  Effect.map(FiberRef.get(Provider.mediaFolder), (folder) => path.resolve(folder, reference))

/**
 * A media file read for sending.
 *
 * @since 0.1.0
 * @category models
 */
export interface MediaFile {
  readonly base64: string
  readonly mimeType: string
}

/**
 * Reads a media file as base64. A missing file is a permanent error naming the path.
 *
 * @since 0.1.0
 * @category reading
 */
export const read = (reference: string): Effect.Effect<MediaFile, ProviderError.PermanentError> =>
  Effect.flatMap(resolve(reference), (file) =>
    Effect.tryPromise({
      try: () => readFile(file),
      catch: () => new ProviderError.PermanentError({ reason: "validation", message: `media file not found: ${file}` })
    }).pipe(Effect.map((bytes) => ({ base64: bytes.toString("base64"), mimeType: mimeTypeOf(file) }))))

/**
 * `check` problems for media references that are not in the media folder (URLs are not checked).
 *
 * @since 0.1.0
 * @category checks
 */
export const checkExists = (
  references: ReadonlyArray<string>,
  key = "prompt"
): Effect.Effect<ReadonlyArray<Provider.RecordProblem>> =>
  Effect.map(
    Effect.forEach(references.filter((reference) => !isUrl(reference)), (reference) =>
      Effect.flatMap(resolve(reference), (file) =>
        Effect.promise(() => stat(file).then(() => undefined, () => ({ key, message: `media file not found: ${file}` }))))),
    (problems) => problems.filter((problem): problem is Provider.RecordProblem => problem !== undefined)
  )
