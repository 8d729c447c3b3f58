/**
 * What the judge and rephrase tests share: prompto's evaluation fixture folder, a JSONL reader
 * that does not use the code under test, folders written into temp directories, and the Node
 * context.
 */
import { FileSystem, type Path } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { expect } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import * as nodeFs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** prompto's evaluation examples (copied into the repository's test fixtures, with its licence). */
export const evaluation = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../../../test/fixtures/prompto-examples/evaluation"
)


/** The objects of a JSONL file, read without the code under test. */
export const jsonl = (file: string): ReadonlyArray<Record<string, unknown>> =>
  nodeFs.readFileSync(file, "utf-8").split(/\r?\n/).filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>)

/** A folder in a fresh temporary directory: `files` maps names to contents. */
export const folderWith = (prefix: string, files: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix })
    for (const [name, content] of Object.entries(files)) yield* fs.writeFileString(path.join(dir, name), content)
    return dir
  })

/** Runs a body that needs files, scoped, on Node. */
export const withNode = <A, E>(body: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | Scope.Scope>) =>
  body.pipe(Effect.scoped, Effect.provide(NodeContext.layer))

/** The error `effect` fails with, which must carry the given tag. */
export const failsWith = <T>(tag: string) =>
<A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flip(effect).pipe(Effect.map((error) => {
    expect(error._tag).toBe(tag)
    return error as unknown as T
  }))
