#!/usr/bin/env node
// prompto_check_experiment: prompto's script name, the same as `prompto check`.
import { launch } from "./launch.js"

await launch("check")
