#!/usr/bin/env node
// prompto: the bundle in dist/ when it is up to date, else the TypeScript sources through tsx (see launch.js).
import { launch } from "./launch.js"

await launch()
