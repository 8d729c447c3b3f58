/**
 * The report page: Observable Plot (with d3, which it draws with), the page's own script and
 * style, and the figures as JSON, all inline in one HTML file. A Content-Security-Policy that
 * allows no source at all makes the page unable to reach the network even by mistake.
 *
 * The libraries are read from their packages' UMD builds at run time (not bundled into the
 * CLI), so only `prompto report` ever loads them.
 *
 * @internal
 */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as FileSystemError from "./fileSystemError.js"

/** A file of the page that could not be read. */
export interface AssetProblem {
  readonly path: string
  readonly message: string
}

const resolver = createRequire(import.meta.url)

/** The folder of the package that `entry` (a resolved file of it) belongs to. */
const packageRoot = (entry: string, fs: FileSystem.FileSystem) =>
  Effect.gen(function*() {
    let dir = path.dirname(entry)
    while (!(yield* fs.exists(path.join(dir, "package.json")).pipe(Effect.orElseSucceed(() => false)))) {
      const parent = path.dirname(dir)
      if (parent === dir) return path.dirname(entry)
      dir = parent
    }
    return dir
  })

/** The files inlined in the page, in order: d3 before Plot, which reads the global `d3`. */
const assetPaths = (fs: FileSystem.FileSystem) =>
  Effect.gen(function*() {
    const resolve = (name: string) =>
      Effect.try({
        try: () => resolver.resolve(name),
        catch: (error): AssetProblem => ({ path: name, message: `cannot find the package: ${String(error)}` })
      })
    const d3 = yield* packageRoot(yield* resolve("d3"), fs)
    const plot = yield* packageRoot(yield* resolve("@observablehq/plot"), fs)
    // this package itself: the page's script and style sit beside this module's sources
    const core = path.dirname(yield* resolve("@prompto/core"))
    return {
      d3: path.join(d3, "dist", "d3.min.js"),
      plot: path.join(plot, "dist", "plot.umd.min.js"),
      script: path.join(core, "internal", "reportAssets", "page.js"),
      style: path.join(core, "internal", "reportAssets", "page.css")
    }
  })

/** Script text made safe inside `<script>`: no `</script` or `<!--` can end or disturb the element. */
export const inlineScript = (code: string): string => code.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\x21--")

/** JSON made safe inside `<script type="application/json">`: every `<` escaped, which JSON reads back as `<`. */
export const inlineJson = (value: unknown): string =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029")

const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:"

/** The page. */
export const render = (data: unknown, title: string): Effect.Effect<string, AssetProblem, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* assetPaths(fs)
    const read = (file: string) =>
      fs.readFileString(file).pipe(
        Effect.mapError((error): AssetProblem => ({ path: file, message: `cannot read a file of the page: ${FileSystemError.describe(error)}` }))
      )
    const [d3, plot, script, style] = yield* Effect.all([read(paths.d3), read(paths.plot), read(paths.script), read(paths.style)])
    return [
      "<!doctype html>",
      "<html lang=\"en\">",
      "<head>",
      "<meta charset=\"utf-8\">",
      `<meta http-equiv="Content-Security-Policy" content="${policy}">`,
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
      `<title>${escapeHtml(title)}</title>`,
      `<style>${style.replace(/<\/(style)/gi, "<\\/$1")}</style>`,
      "</head>",
      "<body>",
      "<main id=\"app\"><p class=\"loading\">Loading the report…</p></main>",
      `<script type="application/json" id="report-data">${inlineJson(data)}</script>`,
      `<script>${inlineScript(d3)}</script>`,
      `<script>${inlineScript(plot)}</script>`,
      `<script>${inlineScript(script)}</script>`,
      "</body>",
      "</html>",
      ""
    ].join("\n")
  })
