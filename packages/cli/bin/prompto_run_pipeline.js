#!/usr/bin/env node
// prompto_run_pipeline: prompto's script name, the same as `prompto pipeline`.
import { launch } from "./launch.js"

await launch("pipeline")
