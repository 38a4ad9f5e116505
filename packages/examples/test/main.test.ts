import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { main } from "../src/main.js"
import { plainRenderer } from "../src/progress.js"
import { runOnTestClock } from "./utils.js"

describe("main (npm start)", () => {
  it.effect("runs the seed example, then the demo with its progress and summary", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const progress: Array<string> = []
      const summary = yield* runOnTestClock(main({
        tasks: 50,
        renderer: plainRenderer((line) => progress.push(line), 100),
        log: (line) => lines.push(line)
      }))

      const demoStart = lines.indexOf(`demo: 50 tasks with random failures (seed "taskpool"), 64 workers`)
      expect(lines.slice(0, demoStart)).toContain("summary: 10/10 tasks succeeded, 0 failed, 20 attempts")
      expect(lines[demoStart - 1]).toBe("")
      expect(lines[demoStart + 1]).toMatch(/^50 tasks in /)
      expect(summary.tasks).toBe(50)
      expect(progress.at(-1)).toMatch(/^pushed 50\/50 \| queued 0 \| running 0 \| retrying 0 \|/)
    }))
})
