/**
 * What every `bin/*.js` shim runs: the bundle `dist/prompto.mjs` (from `build.mjs`) when it is
 * newer than every source file it was built from, else the TypeScript sources through tsx, so a
 * source edited since the last build is always the one that runs.
 */
import { readdirSync, statSync } from "node:fs"
import { setFlagsFromString } from "node:v8"
import { fileURLToPath } from "node:url"

const bundle = new URL("../dist/prompto.mjs", import.meta.url)
const sources = ["../../core/src", "../../providers/src", "../src", "../build.mjs"].map(
  (relative) => fileURLToPath(new URL(relative, import.meta.url))
)

/** The newest modification time (ms) of a file, or of a folder and everything in it. */
const newestMtime = (path) => {
  const stats = statSync(path, { throwIfNoEntry: false })
  if (stats === undefined) return 0
  let newest = stats.mtimeMs
  if (stats.isDirectory()) {
    // the folder's own time changes when a file in it is added, removed or renamed
    for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(`${path}/${entry}`))
  }
  return newest
}

/** True when the bundle exists and is newer than every source file. */
export const bundleIsFresh = () => {
  const built = statSync(bundle, { throwIfNoEntry: false })
  return built !== undefined && sources.every((path) => newestMtime(path) < built.mtimeMs)
}

/**
 * Runs `prompto`, with `subcommand` (for the script-name aliases such as
 * `prompto_run_experiment`) put in front of the user's arguments.
 */
export const launch = async (subcommand) => {
  if (subcommand !== undefined) process.argv.splice(2, 0, subcommand)
  if (bundleIsFresh()) {
    // loading the bundle allocates fast and keeps most of it, so V8 would double its young
    // generation twice over for objects that are old at once: about 7 MB of every run's memory.
    // It stays at its first size while the bundle loads; the CLI's entry (`HeapGrowth.watch`)
    // gives the run V8's own growth back
    if (!process.execArgv.some((flag) => flag.includes("semi-space"))) setFlagsFromString("--semi-space-growth-factor=1")
    await import(bundle.href)
  } else {
    const { register } = await import("tsx/esm/api")
    register()
    await import("../src/bin.ts")
  }
}
