/**
 * Feeding a CSV file to a `csv-parse` parser: the file streamed in 64 KiB chunks, a UTF-8 byte
 * order mark dropped, the parser's back-pressure honoured, and a read error handed to the
 * parser (its reader sees it when it next pulls rows).
 *
 * @internal
 */
import type { FileSystem } from "@effect/platform"
import type { Parser } from "csv-parse"
import { Effect, Stream } from "effect"
import * as FileSystemError from "./fileSystemError.js"

/** Streams `file` into `parser`, then ends it (or destroys it with the read error). */
export const feed = (fs: FileSystem.FileSystem, file: string, parser: Parser): Effect.Effect<void> => {
  let first = true
  return fs.stream(file, { chunkSize: 64 * 1024 }).pipe(
    Stream.map((chunk) => {
      const bom = first && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf
      first = false
      return bom ? chunk.subarray(3) : chunk
    }),
    Stream.runForEach((chunk) =>
      Effect.async<void>((resume) => {
        if (parser.write(chunk)) resume(Effect.void)
        else parser.once("drain", () => resume(Effect.void))
      })
    ),
    Effect.matchEffect({
      onFailure: (error) => Effect.sync(() => parser.destroy(new Error(FileSystemError.describe(error)))),
      onSuccess: () => Effect.sync(() => parser.end())
    })
  )
}
