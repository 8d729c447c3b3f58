/**
 * Bundles the CLI (`src/bin.ts` with core, providers and their dependencies) into
 * `dist/prompto.mjs`, so `bin/*.js` can start it without compiling TypeScript on every run.
 * Run by `pnpm build` and by `pnpm install` (the root `prepare` script).
 *
 * The entry file is written last: `bin/launch.js` trusts the bundle only when the entry is
 * newer than every source file, so a build cut short is never taken for a fresh one.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const cliDir = path.dirname(fileURLToPath(import.meta.url))
const outdir = path.join(cliDir, "dist")
const entry = path.join(outdir, "prompto.mjs")
const started = performance.now()

// without dev dependencies (`pnpm install --prod`) there is no esbuild: the bins use tsx
const esbuild = await import("esbuild").catch((error) => {
  if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error
  console.log("prompto: esbuild is not installed, so the bins will run the sources through tsx")
  process.exit(0)
})

// @effect/cli's option files (`Options.fileParse`: YAML, TOML, INI) are parsed by three CommonJS
// packages that its `files` module imports at its top, so a bundle runs them at every start
// even though prompto declares no such option. They are about 400 KB of the entry and a few MB
// of every run's memory (issue 14's one-line run), so they are replaced here by a module that
// says so if it is ever called
const optionFileParsers = {
  name: "no-option-file-parsers",
  setup(build) {
    build.onResolve({ filter: /^(yaml|toml|ini)$/ }, (args) =>
      /@effect[\\/]cli[\\/]/.test(args.importer) ? { path: args.path, namespace: "no-option-file-parsers" } : undefined
    )
    build.onLoad({ filter: /.*/, namespace: "no-option-file-parsers" }, (args) => ({
      contents: `export const parse = () => { throw new Error("prompto reads no ${args.path} option files") }`,
      loader: "js"
    }))
  }
}

const result = await esbuild.build({
  entryPoints: { prompto: path.join(cliDir, "src/bin.ts") },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir,
  outExtension: { ".js": ".mjs" },
  // provider SDKs go to their own chunks, loaded only when a provider needs them
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  // tsx loads user scorer modules at run time, and lmdb loads its native binary from its own
  // folder: both must stay real packages, not copies. The price table is required when a
  // price is first asked (see core's Cost.ts), so it stays a package too
  external: ["tsx", "tsx/*", "lmdb", "@pydantic/genai-prices"],
  // bundled CommonJS dependencies call `require` for Node built-ins
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [optionFileParsers],
  logLevel: "warning",
  write: false
})

// One character outside ASCII anywhere in a module makes V8 keep the whole source as a two-byte
// string: the entry (about 2.8 MB, loaded by every command) would then take 5.6 MB of every
// run's memory. esbuild escapes strings but leaves regular expressions and kept comments as
// they are, so a stray "µ" or "−" in the sources is refused here, by line
const entryText = result.outputFiles.find((file) => file.path === entry)?.text ?? ""
const nonAscii = entryText.split("\n").flatMap((line, index) =>
  /[^\x00-\x7f]/.test(line) ? [`  line ${index + 1}: ${line.trim().slice(0, 120)}`] : []
)
if (nonAscii.length > 0) {
  console.error(
    `prompto: the bundle's entry has characters outside ASCII (write them as \\u escapes in the sources):\n${nonAscii.join("\n")}`
  )
  process.exit(1)
}

rmSync(outdir, { recursive: true, force: true })
// the chunks first, the entry last (see above)
const files = result.outputFiles.toSorted((a, b) => Number(a.path === entry) - Number(b.path === entry))
for (const file of files) {
  mkdirSync(path.dirname(file.path), { recursive: true })
  writeFileSync(file.path, file.contents)
}
console.log(`prompto: built ${path.relative(process.cwd(), entry)} in ${Math.round(performance.now() - started)} ms`)
