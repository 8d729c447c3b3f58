#!/usr/bin/env node
// prompto_run_experiment: prompto's script name, the same as `prompto run`.
import { launch } from "./launch.js"

await launch("run")
