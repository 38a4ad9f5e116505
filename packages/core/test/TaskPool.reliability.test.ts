/**
 * Reliability: no task is ever lost, doubly ended or stuck. Random scenarios
 * (see scenario.ts) on the TestClock: task outcomes per attempt, callbacks
 * that succeed, fail, die, throw or are slow, pushes from four fibers,
 * pushes racing with the close or interrupted while waiting for room, reads
 * of the failure queue, tiny `maxTaskNum` / `maxFailedTasks`, random valid
 * configs, and a safe or limited close at a random instant. Each property
 * checks one family of invariants on its own scenarios, so a broken one does
 * not hide the others.
 *
 * CI runs `ciRuns` scenarios per property; `npm run fuzz` sets
 * TASKPOOL_FUZZ_RUNS (10,000) and prints the seed; replay a run with
 * TASKPOOL_FUZZ_SEED=<seed>.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { PoolClosedError, Task } from "../src/index.js"
import type { TaskHandle } from "../src/index.js"
import {
  announce,
  checkClose,
  checkEnds,
  checkFailureQueue,
  checkPushes,
  checkScenario,
  checkStats,
  checkWorkers,
  propOptions,
  reportCoverage,
  Scenario
} from "./scenario.js"
import { now, openPool } from "./utils.js"

const ciRuns = 200
/** The Arbitrary size: up to 16 tasks per scenario. */
const size = 48
announce("TaskPool.reliability", ciRuns)
reportCoverage("TaskPool.reliability")

describe("TaskPool reliability (random scenarios)", () => {
  it.effect.prop(
    "every accepted push ends exactly once, its callback once with the handle's result; a failed or interrupted push leaves no trace",
    { scenario: Scenario },
    ({ scenario }) => checkScenario((report) => {
      checkPushes(report)
      checkEnds(report)
    })(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "never more than maxIoWorkerNum attempts at once, and a waiting task holds no worker",
    { scenario: Scenario },
    ({ scenario }) => checkScenario(checkWorkers)(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "stats conserve at every instant: pushed = succeeded + failed + unfinished",
    { scenario: Scenario },
    ({ scenario }) => checkScenario(checkStats)(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "the failure queue accounts for every failure: read + dropped + unread = failed",
    { scenario: Scenario },
    ({ scenario }) => checkScenario(checkFailureQueue)(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "after a safe close nothing is unfinished; after a limited close all ended by the deadline, the rest Interrupted at it",
    { scenario: Scenario },
    ({ scenario }) => checkScenario(checkClose)(scenario),
    propOptions(ciRuns, size)
  )
})

describe("TaskPool reliability (fault injection)", () => {
  it.effect("fifty pushers racing the close at the same instant: each push is accepted and ends, or is refused", () =>
    Effect.gen(function*() {
      const { close, pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 3, maxTaskNum: 20, maxBlockMs: -1 })
      const ran = new Map<number, number>()
      const pushes = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) =>
        Effect.forkChild(
          Effect.andThen(
            Effect.sleep(100),
            Effect.result(pool.push(Task.make({
              name: `p${i}`,
              execute: Effect.andThen(Effect.sleep(i % 7), Effect.sync(() => ran.set(i, (ran.get(i) ?? 0) + 1)))
            })))
          )
        ))
      const closing = yield* Effect.forkChild(Effect.andThen(Effect.sleep(100), close))
      yield* TestClock.adjust(10_000)
      yield* Fiber.join(closing)
      let accepted = 0
      for (const [i, fiber] of pushes.entries()) {
        const pushed = yield* Fiber.join(fiber)
        if (pushed._tag === "Success") {
          accepted++
          const result = yield* (pushed.success as TaskHandle<void, never>).result
          assert.isTrue(result.successful)
          assert.strictEqual(ran.get(i), 1, `p${i} ran ${ran.get(i)} times`)
        } else {
          assert.instanceOf(pushed.failure, PoolClosedError)
          assert.isUndefined(ran.get(i), `p${i} was refused, yet ran`)
        }
      }
      assert.isAbove(accepted, 0)
      const stats = yield* pool.stats
      assert.strictEqual(stats.pushed, accepted)
      assert.strictEqual(stats.succeeded, accepted)
    }))

  it.effect("a callback that never returns holds a safe close open forever (documented), like a task that never ends", () =>
    Effect.gen(function*() {
      const { close, pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2 })
      const stuck = yield* pool.push(Task.make({ name: "stuck", execute: Effect.succeed(1), onSuccess: () => Effect.never }))
      const other = yield* pool.push(Task.make({ name: "other", execute: Effect.sleep(500) }))
      const closing = yield* Effect.forkDetach(Effect.andThen(close, now))
      const idle = yield* Effect.forkDetach(pool.awaitIdle)
      const stuckResult = yield* Effect.forkDetach(stuck.result)
      yield* TestClock.adjust(1_000_000)
      assert.isUndefined(closing.pollUnsafe(), "the safe close returned though a callback never did")
      assert.isUndefined(idle.pollUnsafe(), "awaitIdle returned though a callback never did")
      assert.isUndefined(stuckResult.pollUnsafe(), "the handle completed before its callback returned")
      assert.isTrue((yield* other.result).successful, "the other task still ended")
      const stats = yield* pool.stats
      assert.strictEqual(stats.pushed, 2)
      assert.strictEqual(stats.succeeded, 1)
    }))
})
