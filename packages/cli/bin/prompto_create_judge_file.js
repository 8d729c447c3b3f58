#!/usr/bin/env node
// prompto_create_judge_file: prompto's script name, the same as `prompto judge`.
import { launch } from "./launch.js"

await launch("judge")
