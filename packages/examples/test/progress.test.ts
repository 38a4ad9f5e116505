import { describe, expect, it } from "@effect/vitest"
import { Task, TaskPool } from "@taskpool/core"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { formatProgress, plainRenderer, withProgress } from "../src/progress.js"

describe("progress", () => {
  it("formats one line from the stats, the elapsed time and the total", () => {
    const stats = {
      lingering: 5, queued: 7, running: 4, retrying: 2, succeeded: 30, failed: 1, pushed: 49, droppedFailures: 0,
      paused: false, maxIoWorkerNum: 4
    }
    expect(formatProgress(stats, 2500, 100)).toBe(
      "pushed 49/100 | queued 12 | running 4 | retrying 2 | succeeded 30 | failed 1 | 12 tasks/s | 2.50 s"
    )
    expect(formatProgress(stats, 0)).toBe(
      "pushed 49 | queued 12 | running 4 | retrying 2 | succeeded 30 | failed 1 | 0 tasks/s | 0 ms"
    )
  })

  it.effect("plain mode prints a line every interval while the work runs, then the final line", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const work = Effect.gen(function*() {
        const handles = yield* Effect.forEach([1, 2, 3], (i) =>
          TaskPool.push(Task.make({ name: `sleeper-${i}`, execute: Effect.sleep("1 second") })))
        yield* TaskPool.awaitIdle
        return yield* Effect.forEach(handles, (handle) => handle.result)
      }).pipe(
        withProgress({ renderer: plainRenderer((line) => lines.push(line), 500), total: 3 }),
        Effect.provide(TaskPool.layer({ maxIoWorkerNum: 2, lingerMs: 100 }))
      )
      const fiber = yield* Effect.forkChild(work)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(fiber)

      expect(lines).toEqual([
        "pushed 3/3 | queued 1 | running 2 | retrying 0 | succeeded 0 | failed 0 | 0 tasks/s | 500 ms",
        "pushed 3/3 | queued 0 | running 1 | retrying 0 | succeeded 2 | failed 0 | 2 tasks/s | 1.00 s",
        "pushed 3/3 | queued 0 | running 1 | retrying 0 | succeeded 2 | failed 0 | 1 tasks/s | 1.50 s",
        "pushed 3/3 | queued 0 | running 0 | retrying 0 | succeeded 3 | failed 0 | 2 tasks/s | 2.00 s"
      ])
    }))

  it.effect("draws the final line however the work ends", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const exit = yield* Effect.fail("boom").pipe(
        withProgress({ renderer: plainRenderer((line) => lines.push(line), 500) }),
        Effect.provide(TaskPool.layer()),
        Effect.exit
      )

      expect(exit._tag).toBe("Failure")
      expect(lines).toEqual([
        "pushed 0 | queued 0 | running 0 | retrying 0 | succeeded 0 | failed 0 | 0 tasks/s | 0 ms"
      ])
    }))
})
