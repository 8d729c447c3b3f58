#!/usr/bin/env node
// prompto_run_experiment: prompto's script name, the same as `prompto run` (runs the TypeScript sources through tsx).
import { register } from "tsx/esm/api"

process.argv.splice(2, 0, "run")
register()
await import("../src/bin.ts")
