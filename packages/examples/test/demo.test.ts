import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { DemoOptions } from "../src/demo.js"
import { demo } from "../src/demo.js"
import { plainRenderer } from "../src/progress.js"
import { runOnTestClock } from "./utils.js"

/** Runs the demo on the TestClock; returns its summary, progress lines and printed lines. */
const runDemo = (options: DemoOptions) =>
  Effect.gen(function*() {
    const progress: Array<string> = []
    const lines: Array<string> = []
    const summary = yield* runOnTestClock(demo({
      ...options,
      renderer: plainRenderer((line) => progress.push(line), 100),
      log: (line) => lines.push(line)
    }))
    return { summary, progress, lines }
  })

const knownOutcomes = [
  "succeeded on first attempt",
  "succeeded after retries",
  "failed: PermanentError",
  "failed: TransientError",
  "failed: Timeout"
]

describe("demo", () => {
  it.effect("every task ends once: most succeed, some after retries, some fail for good", () =>
    Effect.gen(function*() {
      const { summary, progress, lines } = yield* runDemo({ tasks: 300, seed: "test" })
      const outcomes = Object.fromEntries(summary.outcomes.map((row) => [row.outcome, row.tasks]))

      expect(summary.tasks).toBe(300)
      expect(summary.outcomes.reduce((sum, row) => sum + row.tasks, 0)).toBe(300)
      expect(summary.attempts.reduce((sum, row) => sum + row.tasks, 0)).toBe(300)
      expect(summary.attempts.length).toBeLessThanOrEqual(4)
      expect(outcomes["succeeded on first attempt"]).toBeGreaterThan(150)
      expect(outcomes["succeeded after retries"]).toBeGreaterThan(30)
      expect(outcomes["failed: PermanentError"]).toBeGreaterThan(0)
      expect(knownOutcomes).toEqual(expect.arrayContaining(Object.keys(outcomes)))
      expect(summary.slowest).toHaveLength(5)

      const succeeded = (outcomes["succeeded on first attempt"] ?? 0) + (outcomes["succeeded after retries"] ?? 0)
      expect(progress.at(-1)).toMatch(new RegExp(
        `^pushed 300/300 \\| queued 0 \\| running 0 \\| retrying 0 \\| succeeded ${succeeded} \\| failed ${300 - succeeded} \\|`
      ))
      expect(progress.length).toBeGreaterThan(2)
      expect(lines[0]).toBe(`demo: 300 tasks with random failures (seed "test"), 64 workers`)
      expect(lines[1]).toMatch(/^300 tasks in \d/)
      expect(lines).toContain("attempts  tasks")
    }))

  it.effect("a seed always gives the same run, another seed another run", () =>
    Effect.gen(function*() {
      const first = yield* runDemo({ tasks: 200, seed: "same" })
      const again = yield* runDemo({ tasks: 200, seed: "same" })
      const other = yield* runDemo({ tasks: 200, seed: "other" })

      expect(again.summary.outcomes).toEqual(first.summary.outcomes)
      expect(again.summary.attempts).toEqual(first.summary.attempts)
      expect(other.summary.attempts).not.toEqual(first.summary.attempts)
    }))
})
