import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { PoolClosedError, Task } from "../src/index.js"
import type { TaskHandle, TaskResult } from "../src/index.js"
import { now, openPool } from "./utils.js"

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const TaskSpec = Schema.Struct({
  outcome: Schema.Literals(["succeed", "fail", "failOnce", "fatal", "die", "throw", "slow"]),
  ms: between(0, 3000),
  pushGapMs: between(0, 300)
})

class Fatal extends Schema.TaggedError<Fatal>()("Fatal", {}) {}

const executeOf = (spec: typeof TaskSpec.Type): Effect.Effect<string, string | Fatal> => {
  let runs = 0
  switch (spec.outcome) {
    case "succeed":
      return Effect.succeed("ok")
    case "fail":
      return Effect.fail("always")
    case "failOnce":
      return Effect.suspend(() => ++runs === 1 ? Effect.fail("once") : Effect.succeed("ok"))
    case "fatal":
      return Effect.fail(new Fatal())
    case "die":
      return Effect.die("defect")
    case "throw":
      return Effect.sync(() => {
        throw new Error("thrown")
      })
    case "slow":
      return Effect.as(Effect.sleep(spec.ms), "slow")
  }
}

describe("TaskPool invariants", () => {
  it.effect.prop(
    "every accepted push ends exactly once, its callback runs exactly once, and stats add up, whenever the pool closes",
    {
      tasks: Schema.Array(TaskSpec).check(Schema.isMaxLength(25)),
      maxIoWorkerNum: between(1, 6),
      maxRetryTimes: between(-1, 3),
      baseRetryBackOffMs: between(0, 2000),
      closeAtMs: between(0, 6000),
      shutdownTimeoutMs: Schema.NullOr(between(0, 2000))
    },
    ({ baseRetryBackOffMs, closeAtMs, maxIoWorkerNum, maxRetryTimes, shutdownTimeoutMs, tasks }) =>
      Effect.gen(function*() {
        const { close, pool } = yield* openPool({
          lingerMs: 100,
          maxIoWorkerNum,
          maxRetryTimes,
          baseRetryBackOffMs,
          maxRetryBackOffMs: 4000,
          ...(shutdownTimeoutMs === null ? {} : { shutdownTimeoutMs })
        })
        const ended = new Map<string, Array<TaskResult<unknown, unknown>>>()
        const onEnd = (result: TaskResult<unknown, unknown>) =>
          Effect.sync(() => void ended.set(result.taskId, [...(ended.get(result.taskId) ?? []), result]))
        const accepted: Array<TaskHandle<string, string | Fatal>> = []
        let rejected = 0

        const pusher = yield* Effect.forkChild(Effect.forEach(tasks, (spec, i) =>
          Effect.andThen(
            Effect.sleep(spec.pushGapMs),
            pool.push(Task.make({
              name: `task-${i}`,
              execute: executeOf(spec),
              onSuccess: onEnd,
              onFail: onEnd,
              retryable: (error) => !(error instanceof Fatal)
            })).pipe(
              Effect.tap((handle) => Effect.sync(() => void accepted.push(handle))),
              Effect.catchTag("PoolClosedError", (error) => {
                assert.instanceOf(error, PoolClosedError)
                return Effect.sync(() => void rejected++)
              })
            )
          )))
        const closer = yield* Effect.forkChild(Effect.sleep(closeAtMs).pipe(Effect.andThen(close), Effect.andThen(now)))
        yield* TestClock.adjust(1_000_000)
        yield* Fiber.join(pusher)
        const closedAt = yield* Fiber.join(closer)

        assert.strictEqual(accepted.length + rejected, tasks.length)
        for (const handle of accepted) {
          const results = ended.get(handle.taskId) ?? []
          assert.strictEqual(results.length, 1, `${handle.taskId} ended ${results.length} times`)
          const result = yield* handle.result
          assert.strictEqual(result, results[0])
          assert.isAtMost(result.attemptCount, Math.max(0, maxRetryTimes) + 1)
          assert.deepStrictEqual(result.attempts.map((a) => a.number), Array.from({ length: result.attemptCount }, (_, i) => i + 1))
          if (shutdownTimeoutMs === null) assert.notStrictEqual(result.errorCode, "Interrupted")
          else assert.isAtMost(result.completedAtMs, closeAtMs + shutdownTimeoutMs)
        }
        assert.strictEqual(ended.size, accepted.length)
        if (shutdownTimeoutMs !== null) assert.isAtMost(closedAt, closeAtMs + shutdownTimeoutMs)

        const stats = yield* pool.stats
        assert.strictEqual(stats.pushed, accepted.length)
        assert.strictEqual(stats.succeeded + stats.failed, stats.pushed)
        assert.strictEqual(stats.lingering + stats.queued + stats.running + stats.retrying, 0)
        assert.strictEqual(stats.failed, [...ended.values()].filter(([r]) => !r!.successful).length)
      }),
    { arbitrary: { runs: 300 } }
  )
})
