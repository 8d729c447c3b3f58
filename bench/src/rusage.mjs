// Preloaded into a measured child (`node --import <this file> ...`): when the process exits,
// writes `process.resourceUsage()` as JSON to the file named by BENCH_RUSAGE_FILE, so the bench
// learns the child's own CPU time (microseconds) and peak RSS (kilobytes) without /usr/bin/time.
import { writeFileSync } from "node:fs"

const file = process.env.BENCH_RUSAGE_FILE
if (file !== undefined && file !== "") {
  process.on("exit", () => {
    try {
      writeFileSync(file, JSON.stringify(process.resourceUsage()))
    } catch {
      // the bench reports the figure as missing
    }
  })
}
