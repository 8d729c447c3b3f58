/**
 * Where things are: the repository, the bench folder and the prompto CLI entry point.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The `bench/` folder. */
export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The repository root. */
export const repoRoot = path.resolve(benchDir, "..")

/**
 * The CLI as users run it: `packages/cli/bin/prompto.js`, or another build's `bin/prompto.js`
 * named by `PROMPTO_BENCH_CLI` (to measure two builds side by side on the same machine).
 */
export const promptoBin = process.env.PROMPTO_BENCH_CLI === undefined || process.env.PROMPTO_BENCH_CLI === ""
  ? path.join(repoRoot, "packages", "cli", "bin", "prompto.js")
  : path.resolve(process.env.PROMPTO_BENCH_CLI)

/** The bare clients of scenario 3 (all requests at once, or in batches). */
export const bareClientScript = path.join(benchDir, "src", "bareClient.ts")

/** The preload that writes a child's resource usage when it exits. */
export const rusagePreload = path.join(benchDir, "src", "rusage.mjs")

/** The bare clock-paced clients scenario 1 compares prompto's pacing with. */
export const pacedClientScript = path.join(benchDir, "src", "pacedClient.ts")

/** The stamped probe scenario 1 measures the server's read jitter with. */
export const jitterProbeScript = path.join(benchDir, "src", "jitterProbe.ts")
