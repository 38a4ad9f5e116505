import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { TaskDefinition } from "../src/index.js"
import type { DurableTaskHandle } from "../src/index.js"
import { Fatal, Flaky, memoryStore, openProducer, openWorker } from "./utils.js"

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const Spec = Schema.Struct({
  /** Typed failures before success (fails forever if above the budget). */
  failures: between(0, 4),
  fatal: Schema.Boolean,
  ms: between(0, 3000),
  submitGapMs: between(0, 300)
})

describe("DurableTaskPool invariants", () => {
  it.effect.prop(
    "every submitted task ends exactly once, through any close and reopen; counted attempts are the attempts that ended",
    {
      tasks: Schema.Array(Spec).check(Schema.isMaxLength(20)),
      maxIoWorkerNum: between(1, 4),
      maxRetryTimes: between(-1, 3),
      baseRetryBackOffMs: between(0, 2000),
      closeAtMs: between(0, 6000),
      shutdownTimeoutMs: Schema.NullOr(between(0, 2000)),
      reopenAfterMs: between(0, 3000)
    },
    ({ baseRetryBackOffMs, closeAtMs, maxIoWorkerNum, maxRetryTimes, reopenAfterMs, shutdownTimeoutMs, tasks }) =>
      Effect.gen(function*() {
        const store = yield* memoryStore
        const ended = new Map<number, number>()
        const interrupted = new Map<number, number>()
        const bump = (counts: Map<number, number>, i: number) => Effect.sync(() => void counts.set(i, (counts.get(i) ?? 0) + 1))
        const Job = TaskDefinition.make({
          name: "job",
          payload: Schema.Struct({ i: Schema.Number }),
          retryable: (error: Flaky | Fatal) => error._tag === "Flaky",
          execute: ({ i }): Effect.Effect<number, Flaky | Fatal> => {
            const spec = tasks[i]!
            const runs = (ended.get(i) ?? 0) + 1
            const outcome: Effect.Effect<number, Flaky | Fatal> = runs <= spec.failures
              ? Effect.fail(spec.fatal ? new Fatal({ message: "fatal" }) : new Flaky({ message: "flaky" }))
              : Effect.succeed(runs)
            return Effect.sleep(spec.ms).pipe(
              Effect.onInterrupt(() => bump(interrupted, i)),
              Effect.andThen(bump(ended, i)),
              Effect.andThen(outcome)
            )
          }
        })
        const config = {
          maxIoWorkerNum,
          maxRetryTimes,
          baseRetryBackOffMs,
          maxRetryBackOffMs: 4000,
          maxReservedAttempts: 20,
          ...(shutdownTimeoutMs === null ? {} : { shutdownTimeoutMs })
        }
        const first = yield* openWorker(store, [Job], config)
        const producer = yield* openProducer(store, [Job])
        const handles: Array<DurableTaskHandle<number>> = []
        const submitter = yield* Effect.forkChild(Effect.forEach(tasks, (spec, i) =>
          Effect.sleep(spec.submitGapMs).pipe(
            Effect.andThen(producer.pool.submit(Job, { i })),
            Effect.tap((handle) => Effect.sync(() => void handles.push(handle)))
          ), { discard: true }))
        const closer = yield* Effect.forkChild(
          Effect.sleep(closeAtMs).pipe(
            Effect.andThen(first.close),
            Effect.andThen(Effect.sleep(reopenAfterMs)),
            Effect.andThen(openWorker(store, [Job], config))
          )
        )
        yield* TestClock.adjust(1_000_000)
        yield* Fiber.join(submitter)
        yield* Fiber.join(closer)
        yield* TestClock.adjust(1_000_000)

        const budget = Math.max(maxRetryTimes, 0) + 1
        assert.strictEqual(handles.length, tasks.length)
        for (const [i, handle] of handles.entries()) {
          const spec = tasks[i]!
          const result = yield* handle.result
          const expectedAttempts = spec.fatal ? Math.min(spec.failures + 1, 1) : Math.min(spec.failures + 1, budget)
          assert.strictEqual(result.attemptCount, expectedAttempts, `task ${i}`)
          assert.strictEqual(ended.get(i) ?? 0, result.attemptCount, `task ${i}: attempts that ended`)
          assert.deepStrictEqual(result.attempts.map((attempt) => attempt.number), Array.from({ length: result.attemptCount }, (_, n) => n + 1))
          assert.strictEqual(result.successful, spec.failures < expectedAttempts || spec.failures === 0)
          if (shutdownTimeoutMs === null) assert.strictEqual(interrupted.get(i) ?? 0, 0)
        }
        const stats = yield* producer.pool.stats
        assert.deepStrictEqual(stats, {
          queued: 0,
          running: 0,
          retrying: 0,
          succeeded: handles.filter((_, i) => tasks[i]!.failures === 0 || (!tasks[i]!.fatal && tasks[i]!.failures < budget)).length,
          failed: handles.filter((_, i) => tasks[i]!.failures > 0 && (tasks[i]!.fatal || tasks[i]!.failures >= budget)).length,
          total: tasks.length
        })
      }),
    { arbitrary: { runs: 100 } }
  )
})
