/**
 * Where things are: the repository, the bench folder and the prompto CLI entry point.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The `bench/` folder. */
export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The repository root. */
export const repoRoot = path.resolve(benchDir, "..")

/** The CLI as users run it: `packages/cli/bin/prompto.js`. */
export const promptoBin = path.join(repoRoot, "packages", "cli", "bin", "prompto.js")

/** The naive baseline client of scenario 3. */
export const baselineScript = path.join(benchDir, "src", "baseline.ts")

/** The preload that writes a child's resource usage when it exits. */
export const rusagePreload = path.join(benchDir, "src", "rusage.mjs")

/** The bare clock-paced client scenario 1 compares prompto's pacing with. */
export const pacedClientScript = path.join(benchDir, "src", "pacedClient.ts")

/** The stamped probe scenario 1 measures the server's read jitter with. */
export const jitterProbeScript = path.join(benchDir, "src", "jitterProbe.ts")
