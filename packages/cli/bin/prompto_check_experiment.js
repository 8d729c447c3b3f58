#!/usr/bin/env node
// prompto_check_experiment: prompto's script name, the same as `prompto check` (runs the TypeScript sources through tsx).
import { register } from "tsx/esm/api"

process.argv.splice(2, 0, "check")
register()
await import("../src/bin.ts")
