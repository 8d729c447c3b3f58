#!/usr/bin/env node
// prompto_obtain_missing_jsonl: prompto's script name, the same as `prompto missing`.
import { launch } from "./launch.js"

await launch("missing")
