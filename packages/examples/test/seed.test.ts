import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { seedExample } from "../src/seed.js"

describe("seed example", () => {
  it.effect("every task fails once, succeeds on its second attempt, and is reported once", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const fiber = yield* Effect.forkChild(seedExample({ log: (line) => lines.push(line) }))
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)

      expect(results).toHaveLength(10)
      for (const [i, result] of results.entries()) {
        expect(result.name).toBe(`task - ${i}`)
        expect(result.successful).toBe(true)
        expect(result.attemptCount).toBe(2)
        expect(result.attempts.map((attempt) => attempt.success)).toEqual([false, true])
        expect(result.attempts[0]?.errorCode).toBe("SeedFailure")
        expect(lines.filter((line) => line === `*success* [task - ${i}]! times = [1]`)).toHaveLength(1)
        expect(lines.filter((line) => line.startsWith(`*Execute* [task - ${i}],`))).toEqual([
          `*Execute* [task - ${i}], times = [0]`,
          `*Execute* [task - ${i}], times = [1]`
        ])
      }
      expect(lines.filter((line) => line.startsWith("*fail*"))).toEqual([])
      expect(lines.at(-1)).toBe("summary: 10/10 tasks succeeded, 0 failed, 20 attempts")
    }))

  it.effect("pushes as many tasks as asked", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const fiber = yield* Effect.forkChild(seedExample({ tasks: 3, log: (line) => lines.push(line) }))
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)

      expect(results.map((result) => result.name)).toEqual(["task - 0", "task - 1", "task - 2"])
      expect(lines.at(-1)).toBe("summary: 3/3 tasks succeeded, 0 failed, 6 attempts")
    }))
})
