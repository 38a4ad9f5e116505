/**
 * The scheduling controls, with exact TestClock instants: push options
 * (priority, delay, key, idempotencyKey), handle.cancel, pause / resume /
 * resize, the rate limit, per-task retry schedules and retry jitter.
 *
 * Most pools here use lingerMs 100; with maxIoWorkerNum 1 every push is a
 * full linger batch and is ready at once, which is how orders are observed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Random, Schedule, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { PoolClosedError, PoolFullError, Task, TaskPool, TaskPoolConfigError, TaskTimeoutError } from "../src/index.js"
import type { PushOptions, TaskPoolStats, TaskResult } from "../src/index.js"
import { failingFirst, Fatal, Flaky, now, openPool, timeline } from "./utils.js"

class RetryLater extends Schema.TaggedError<RetryLater>()("RetryLater", { message: Schema.String, retryAfterMs: Schema.Number }) {}

const alwaysFailing = Effect.fail(new Flaky({ message: "still down" }))

/** `lingering + queued + running + retrying` is the number of unfinished tasks. */
const assertBalanced = (stats: TaskPoolStats) =>
  assert.strictEqual(stats.lingering + stats.queued + stats.running + stats.retrying, stats.pushed - stats.succeeded - stats.failed)

/** Counts attempts running at once; `seen` holds the count each attempt saw at its start, with the time. */
const concurrency = () => {
  const state = { running: 0, peak: 0, seen: [] as Array<readonly [number, number]> }
  const track = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.flatMap(now, (at) =>
        Effect.sync(() => {
          state.peak = Math.max(state.peak, ++state.running)
          state.seen.push([at, state.running])
        })),
      () => effect,
      () => Effect.sync(() => void state.running--)
    )
  return { state, track }
}

/** The wait before each retry: next attempt's start minus the previous attempt's end. */
const retryWaits = (result: TaskResult<unknown, unknown>) =>
  result.attempts.slice(1).map((attempt, i) => attempt.startedAtMs - result.attempts[i]!.endedAtMs)

const isInterruption = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)

/** Whether `effect` has already completed: run it in a fiber started at once and look without waiting. */
const isReady = <A>(effect: Effect.Effect<A>) =>
  Effect.map(Effect.forkChild(effect, { startImmediately: true }), (fiber) => fiber.pollUnsafe() !== undefined)

describe("TaskPool scheduling controls", () => {
  describe("priority", () => {
    it.effect("higher runs first among queued tasks; equal priorities keep push order", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { events, mark } = timeline()
        const gate = yield* Deferred.make<void>()
        yield* pool.push(Task.make({ name: "blocker", execute: Effect.andThen(mark("blocker"), Deferred.await(gate)) }))
        yield* TestClock.adjust(0)
        const step = (name: string) => Task.make({ name, execute: Effect.andThen(mark(name), Effect.sleep(10)) })
        const pushes: ReadonlyArray<readonly [string, PushOptions | undefined]> = [
          ["a", { priority: 0 }],
          ["b", { priority: 5 }],
          ["c", undefined],
          ["d", { priority: 10 }],
          ["e", { priority: 5 }],
          ["f", { priority: -1 }],
          ["g", { priority: 5.5 }],
          ["h", {}]
        ]
        for (const [name, options] of pushes) yield* pool.push(step(name), options)
        yield* TestClock.adjust(50)
        const stats = yield* pool.stats
        assert.strictEqual(stats.queued, 8)
        assert.strictEqual(stats.running, 1)
        assertBalanced(stats)
        yield* Deferred.succeed(gate, void 0)
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [
          ["blocker", 0],
          ["d", 50],
          ["g", 60],
          ["b", 70],
          ["e", 80],
          ["a", 90],
          ["c", 100],
          ["h", 110],
          ["f", 120]
        ])
      }))

    it.effect("a retry keeps its priority: after its backoff it goes ahead of lower priorities that were ready first", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1, baseRetryBackOffMs: 100 })
        const { events, mark } = timeline()
        const retrying = (name: string) => Task.make({ name, execute: Effect.andThen(mark(name), failingFirst(1)) })
        // One worker: each push is ready at once; "high" and "low" fail at 0 and back off until 100.
        const high = yield* pool.push(retrying("high"), { priority: 5 })
        yield* TestClock.adjust(0)
        const low = yield* pool.push(retrying("low"))
        yield* TestClock.adjust(0)
        yield* pool.push(Task.make({ name: "blocker", execute: Effect.andThen(mark("blocker"), Effect.sleep(500)) }))
        yield* TestClock.adjust(0)
        yield* pool.push(Task.make({ name: "q1", execute: mark("q1") }))
        yield* pool.push(Task.make({ name: "q2", execute: mark("q2") }))
        yield* TestClock.adjust(100)
        assert.strictEqual((yield* pool.stats).queued, 4)
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [
          ["high", 0],
          ["low", 0],
          ["blocker", 0],
          ["high", 500],
          ["q1", 500],
          ["q2", 500],
          ["low", 500]
        ])
        assert.strictEqual((yield* high.result).attemptCount, 2)
        assert.strictEqual((yield* low.result).attemptCount, 2)
      }))
  })

  describe("delay", () => {
    it.effect("the task starts exactly at push + delay: not earlier, and no linger is added", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        yield* TestClock.adjust(50)
        const delayed = yield* pool.push(Task.make({ name: "delayed", execute: mark("delayed") }), { delay: "300 millis" })
        yield* pool.push(Task.make({ name: "lingering", execute: mark("lingering") }))
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(events, [["lingering", 150]])
        yield* TestClock.adjust(199)
        assert.deepStrictEqual(events, [["lingering", 150]])
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(events, [["lingering", 150], ["delayed", 350]])
        const result = yield* delayed.result
        assert.strictEqual(result.createdAtMs, 50)
        assert.deepStrictEqual(result.attempts.map((a) => a.startedAtMs), [350])
      }))

    it.effect("a delay of 0 skips the linger: the task is ready at its push", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        yield* TestClock.adjust(50)
        yield* pool.push(Task.make({ name: "lingering", execute: mark("lingering") }))
        yield* pool.push(Task.make({ name: "no-delay", execute: mark("no-delay") }), { delay: 0 })
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["no-delay", 50]])
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(events, [["no-delay", 50], ["lingering", 150]])
      }))

    it.effect("a delayed task counts in stats.lingering until its delay is over", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        yield* pool.push(Task.make({ name: "delayed", execute: Effect.sleep(100) }), { delay: 500 })
        const waiting = yield* pool.stats
        assert.deepStrictEqual(
          { lingering: waiting.lingering, queued: waiting.queued, running: waiting.running, pushed: waiting.pushed },
          { lingering: 1, queued: 0, running: 0, pushed: 1 }
        )
        yield* TestClock.adjust(499)
        assert.strictEqual((yield* pool.stats).lingering, 1)
        yield* TestClock.adjust(1)
        const running = yield* pool.stats
        assert.strictEqual(running.lingering, 0)
        assert.strictEqual(running.running, 1)
        assertBalanced(running)
      }))

    it.effect("a safe close keeps the delay: it waits for the delayed task, which starts at push + delay", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100 })
        const handle = yield* pool.push(Task.make({ name: "delayed", execute: Effect.sleep(50) }), { delay: 1000 })
        yield* TestClock.adjust(10)
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(999)
        assert.isUndefined(closing.pollUnsafe())
        yield* TestClock.adjust(1000)
        assert.strictEqual(yield* Fiber.join(closing), 1050)
        const result = yield* handle.result
        assert.isTrue(result.successful)
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs]), [[1000, 1050]])
      }))

    it.effect("a limited close ends a task still waiting out its delay \"Interrupted\", without an attempt", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, shutdownTimeoutMs: 100 })
        const failed: Array<string> = []
        let ran = false
        const handle = yield* pool.push(Task.make({
          name: "delayed",
          execute: Effect.sync(() => void (ran = true)),
          onFail: (result) => Effect.sync(() => void failed.push(result.errorCode!))
        }), { delay: 1000 })
        yield* TestClock.adjust(10)
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(100)
        assert.strictEqual(yield* Fiber.join(closing), 110)
        const result = yield* handle.result
        assert.strictEqual(result.errorCode, "Interrupted")
        assert.strictEqual(result.completedAtMs, 110)
        assert.deepStrictEqual(result.attempts, [])
        assert.deepStrictEqual(failed, ["Interrupted"])
        yield* TestClock.adjust(2000)
        assert.isFalse(ran)
        const stats = yield* pool.stats
        assert.strictEqual(stats.failed, 1)
        assertBalanced(stats)
      }))
  })

  describe("key", () => {
    it.effect("tasks of one key run one at a time in push order; other keys run beside them; parked tasks count as queued", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        const step = (name: string) => Task.make({ name, execute: Effect.andThen(mark(name), Effect.sleep(100)) })
        yield* pool.push(step("a1"), { key: "a" })
        yield* pool.push(step("a2"), { key: "a" })
        yield* pool.push(step("b1"), { key: "b" })
        yield* pool.push(step("a3"), { key: "a" })
        yield* pool.push(step("b2"), { key: "b" })
        yield* pool.push(step("free"))
        const stats = yield* pool.stats
        assert.strictEqual(stats.lingering, 3)
        assert.strictEqual(stats.queued, 3)
        assertBalanced(stats)
        yield* TestClock.adjust(1000)
        // A parked task does not linger: it is ready as soon as the key is free.
        assert.deepStrictEqual(events, [["a1", 100], ["b1", 100], ["free", 100], ["a2", 200], ["b2", 200], ["a3", 300]])
      }))

    it.effect("the key stays held across the holder's retries and backoffs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10, baseRetryBackOffMs: 100 })
        const { events, mark } = timeline()
        const holder = yield* pool.push(
          Task.make({ name: "holder", execute: mark("holder").pipe(Effect.andThen(Effect.sleep(50)), Effect.andThen(failingFirst(2))) }),
          { key: "k" }
        )
        yield* pool.push(Task.make({ name: "next", execute: mark("next") }), { key: "k" })
        yield* TestClock.adjust(2000)
        // holder: 100-150 fails, waits 100; 250-300 fails, waits 200; 500-550 succeeds.
        assert.deepStrictEqual(events, [["holder", 100], ["holder", 250], ["holder", 500], ["next", 550]])
        assert.strictEqual((yield* holder.result).attemptCount, 3)
      }))

    it.effect("the key is held until the holder settles: its onSuccess / onFail has returned", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10, maxRetryTimes: 0 })
        const { events, mark } = timeline()
        yield* pool.push(Task.make({
          name: "a",
          execute: Effect.andThen(mark("a"), Effect.sleep(100)),
          onSuccess: () => Effect.andThen(Effect.sleep(500), mark("a:onSuccess returned"))
        }), { key: "k" })
        yield* pool.push(Task.make({
          name: "b",
          execute: Effect.andThen(mark("b"), Effect.fail("no")),
          onFail: () => Effect.andThen(Effect.sleep(300), mark("b:onFail returned"))
        }), { key: "k" })
        yield* pool.push(Task.make({ name: "c", execute: mark("c") }), { key: "k" })
        yield* TestClock.adjust(2000)
        assert.deepStrictEqual(events, [
          ["a", 100],
          ["a:onSuccess returned", 700],
          ["b", 700],
          ["b:onFail returned", 1000],
          ["c", 1000]
        ])
      }))

    it.effect("a parked task with a delay waits what is left of its delay, counted from its push", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        const step = (name: string, ms: number) => Task.make({ name, execute: Effect.andThen(mark(name), Effect.sleep(ms)) })
        yield* pool.push(step("a", 300), { key: "k" }) // lingers, runs 100-400
        yield* pool.push(step("b", 100), { key: "k", delay: 1000 }) // free at 400; its delay ends at 1000
        yield* pool.push(step("c", 0), { key: "k", delay: 200 }) // free at 1100; its delay is long over
        yield* pool.push(step("d", 0), { key: "k", delay: 1500 }) // free at 1100; its delay ends at 1500
        yield* TestClock.adjust(500)
        const stats = yield* pool.stats
        assert.strictEqual(stats.lingering, 1)
        assert.strictEqual(stats.queued, 2)
        assertBalanced(stats)
        yield* TestClock.adjust(2000)
        assert.deepStrictEqual(events, [["a", 100], ["b", 1000], ["c", 1100], ["d", 1500]])
      }))
  })

  describe("idempotencyKey", () => {
    it.effect("while the first task is unfinished, a push with its key returns the same handle and adds nothing", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const ran: Array<string> = []
        const task = (name: string) => Task.make({ name, execute: Effect.sync(() => (ran.push(name), name)) })
        const first = yield* pool.push(task("first"), { idempotencyKey: "order-1" })
        const again = yield* pool.push(task("again"), { idempotencyKey: "order-1", priority: 9 })
        const other = yield* pool.push(task("other"), { idempotencyKey: "order-2" })
        assert.strictEqual(again.taskId, first.taskId)
        assert.notStrictEqual(other.taskId, first.taskId)
        const stats = yield* pool.stats
        assert.strictEqual(stats.pushed, 2)
        assert.strictEqual(stats.lingering, 2)
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(ran.sort(), ["first", "other"])
        assert.deepStrictEqual((yield* again.result).exit, Exit.succeed("first"))
      }))

    it.effect("the same key needs no room: it returns the handle even when the pool is full (maxBlockMs 0)", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxTaskNum: 1, maxBlockMs: 0 })
        const gate = yield* Deferred.make<void>()
        const first = yield* pool.push(Task.make({ name: "held", execute: Deferred.await(gate) }), { idempotencyKey: "k" })
        const again = yield* pool.push(Task.make({ name: "dup", execute: Effect.void }), { idempotencyKey: "k" })
        assert.strictEqual(again.taskId, first.taskId)
        assert.instanceOf(yield* Effect.flip(pool.push(Task.make({ name: "x", execute: Effect.void }))), PoolFullError)
        assert.instanceOf(
          yield* Effect.flip(pool.push(Task.make({ name: "y", execute: Effect.void }), { idempotencyKey: "other" })),
          PoolFullError
        )
        assert.strictEqual((yield* pool.stats).pushed, 1)
      }))

    it.effect("the key is taken until the task settles (callback included); a push after that makes a new task", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const first = yield* pool.push(
          Task.make({ name: "first", execute: Effect.succeed(1), onSuccess: () => Effect.sleep(500) }),
          { idempotencyKey: "k" }
        )
        yield* TestClock.adjust(100)
        // Ended, its onSuccess still running: not settled yet.
        assert.strictEqual((yield* pool.stats).succeeded, 0)
        const during = yield* pool.push(Task.make({ name: "during", execute: Effect.succeed(2) }), { idempotencyKey: "k" })
        assert.strictEqual(during.taskId, first.taskId)
        yield* TestClock.adjust(500)
        assert.isTrue((yield* first.result).successful)
        const after = yield* pool.push(Task.make({ name: "after", execute: Effect.succeed(3) }), { idempotencyKey: "k" })
        assert.notStrictEqual(after.taskId, first.taskId)
        assert.strictEqual((yield* pool.stats).pushed, 2)
        yield* TestClock.adjust(100)
        assert.deepStrictEqual((yield* after.result).exit, Exit.succeed(3))
      }))

    it.effect("a failed first task frees the key as well", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0 })
        const first = yield* pool.push(Task.make({ name: "first", execute: Effect.fail("no") }), { idempotencyKey: "k" })
        yield* TestClock.adjust(100)
        assert.isFalse((yield* first.result).successful)
        const second = yield* pool.push(Task.make({ name: "second", execute: Effect.void }), { idempotencyKey: "k" })
        assert.notStrictEqual(second.taskId, first.taskId)
      }))

    it.effect("a closing pool rejects a push with PoolClosedError even while the key's task is unfinished", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100 })
        yield* pool.push(Task.make({ name: "long", execute: Effect.sleep(1000) }), { idempotencyKey: "k" })
        const closing = yield* Effect.forkChild(close)
        yield* TestClock.adjust(0)
        const error = yield* Effect.flip(pool.push(Task.make({ name: "dup", execute: Effect.void }), { idempotencyKey: "k" }))
        assert.instanceOf(error, PoolClosedError)
        yield* TestClock.adjust(1000)
        yield* Fiber.join(closing)
      }))
  })

  describe("cancel", () => {
    /** A task whose onFail results are collected. */
    const watched = (name: string, execute: Effect.Effect<unknown, unknown>, onFail: Array<TaskResult<unknown, unknown>>) =>
      Task.make({ name, execute, onFail: (result) => Effect.sync(() => void onFail.push(result)) })

    const assertCancelled = (result: TaskResult<unknown, unknown>, completedAtMs: number) => {
      assert.isFalse(result.successful)
      assert.strictEqual(result.errorCode, "Cancelled")
      assert.strictEqual(result.completedAtMs, completedAtMs)
      assert.isTrue(isInterruption(result.exit), "a cancelled task's exit is an interruption")
    }

    it.effect("a lingering task ends at once: no attempt, onFail once, into the failure queue; its batch runs on", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 1000, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        const failed: Array<TaskResult<unknown, unknown>> = []
        const handle = yield* pool.push(watched("cancelled", mark("cancelled"), failed))
        yield* pool.push(Task.make({ name: "sibling", execute: mark("sibling") }))
        yield* TestClock.adjust(10)
        yield* handle.cancel
        assert.isTrue(yield* isReady(handle.result))
        const result = yield* handle.result
        assertCancelled(result, 10)
        assert.deepStrictEqual(result.attempts, [])
        assert.strictEqual(result.attemptCount, 0)
        const stats = yield* pool.stats
        assert.strictEqual(stats.lingering, 1)
        assert.strictEqual(stats.failed, 1)
        assertBalanced(stats)
        yield* TestClock.adjust(2000)
        assert.deepStrictEqual(events, [["sibling", 1000]])
        assert.deepStrictEqual(failed.map((r) => r.taskId), [handle.taskId])
        const queued = yield* Stream.runCollect(Stream.take(pool.failures, 1))
        assert.deepStrictEqual(queued.map((r) => [r.taskId, r.errorCode]), [[handle.taskId, "Cancelled"]])
      }))

    it.effect("a delayed task ends at once and never runs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const { events, mark } = timeline()
        const failed: Array<TaskResult<unknown, unknown>> = []
        const handle = yield* pool.push(watched("delayed", mark("delayed"), failed), { delay: 500 })
        yield* TestClock.adjust(100)
        yield* handle.cancel
        assertCancelled(yield* handle.result, 100)
        assert.strictEqual((yield* pool.stats).lingering, 0)
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [])
        assert.strictEqual(failed.length, 1)
        assertBalanced(yield* pool.stats)
      }))

    it.effect("a parked task ends at once; the next task of its key then takes the key in its turn", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        const failed: Array<TaskResult<unknown, unknown>> = []
        yield* pool.push(Task.make({ name: "holder", execute: Effect.andThen(mark("holder"), Effect.sleep(300)) }), { key: "k" })
        const parked = yield* pool.push(watched("parked", mark("parked"), failed), { key: "k" })
        yield* pool.push(Task.make({ name: "last", execute: mark("last") }), { key: "k" })
        yield* TestClock.adjust(50)
        assert.strictEqual((yield* pool.stats).queued, 2)
        yield* parked.cancel
        assertCancelled(yield* parked.result, 50)
        assert.strictEqual((yield* pool.stats).queued, 1)
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [["holder", 100], ["last", 400]])
        assert.strictEqual(failed.length, 1)
      }))

    it.effect("cancelling a parked task from the middle of its lane keeps the others in order behind the holder", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        const { state, track } = concurrency()
        const step = (name: string, ms: number) => Task.make({ name, execute: track(Effect.andThen(mark(name), Effect.sleep(ms))) })
        yield* pool.push(step("holder", 300), { key: "k" })
        yield* pool.push(step("p1", 100), { key: "k" })
        const p2 = yield* pool.push(step("p2", 100), { key: "k" })
        yield* pool.push(step("p3", 100), { key: "k" })
        yield* TestClock.adjust(50)
        yield* p2.cancel
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [["holder", 100], ["p1", 400], ["p3", 500]])
        assert.strictEqual(state.peak, 1, "tasks of one key ran side by side")
      }))

    it.effect("cancelling the key's running holder passes the key on at once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        const holder = yield* pool.push(Task.make({ name: "holder", execute: Effect.andThen(mark("holder"), Effect.never) }), { key: "k" })
        yield* pool.push(Task.make({ name: "next", execute: mark("next") }), { key: "k" })
        yield* TestClock.adjust(250)
        yield* holder.cancel
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["holder", 100], ["next", 250]])
      }))

    it.effect("a queued task ends at once and the queue moves on without it", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { events, mark } = timeline()
        const failed: Array<TaskResult<unknown, unknown>> = []
        const gate = yield* Deferred.make<void>()
        yield* pool.push(Task.make({ name: "blocker", execute: Deferred.await(gate) }))
        yield* TestClock.adjust(0)
        const queued = yield* pool.push(watched("queued", mark("queued"), failed))
        yield* pool.push(Task.make({ name: "next", execute: mark("next") }))
        yield* TestClock.adjust(50)
        assert.strictEqual((yield* pool.stats).queued, 2)
        yield* queued.cancel
        assertCancelled(yield* queued.result, 50)
        assert.strictEqual((yield* pool.stats).queued, 1)
        yield* TestClock.adjust(50)
        yield* Deferred.succeed(gate, void 0)
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["next", 100]])
        assert.strictEqual(failed.length, 1)
      }))

    it.effect("a task waiting out a retry backoff ends at once; no further attempt is made", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1, baseRetryBackOffMs: 1000 })
        const failed: Array<TaskResult<unknown, unknown>> = []
        let runs = 0
        const handle = yield* pool.push(watched("retrying", Effect.andThen(Effect.sync(() => runs++), alwaysFailing), failed))
        yield* TestClock.adjust(500)
        assert.strictEqual((yield* pool.stats).retrying, 1)
        yield* handle.cancel
        const result = yield* handle.result
        assertCancelled(result, 500)
        assert.strictEqual(result.attemptCount, 1)
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[0, 0, "Flaky"]])
        yield* TestClock.adjust(5000)
        assert.strictEqual(runs, 1)
        assert.strictEqual(failed.length, 1)
        const stats = yield* pool.stats
        assert.strictEqual(stats.retrying, 0)
        assertBalanced(stats)
      }))

    it.effect("a running attempt is interrupted: its finalizer runs, it is recorded \"Cancelled\", onFail runs once, no retry", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2, baseRetryBackOffMs: 0 })
        const { events, mark } = timeline()
        const failed: Array<TaskResult<unknown, unknown>> = []
        const attempt = Effect.acquireUseRelease(mark("start"), () => Effect.sleep(1000), () => mark("finalizer"))
        const handle = yield* pool.push(watched("running", attempt, failed))
        yield* TestClock.adjust(150)
        yield* handle.cancel
        assert.isTrue(yield* isReady(handle.result), "the result is ready once cancel returns")
        const result = yield* handle.result
        assertCancelled(result, 150)
        assert.strictEqual(result.attemptCount, 1)
        assert.deepStrictEqual(result.attempts.map((a) => [a.number, a.success, a.startedAtMs, a.endedAtMs, a.errorCode]), [
          [1, false, 100, 150, "Cancelled"]
        ])
        yield* TestClock.adjust(5000)
        assert.deepStrictEqual(events, [["start", 100], ["finalizer", 150]])
        assert.deepStrictEqual(failed.map((r) => r.errorCode), ["Cancelled"])
        const queued = yield* Stream.runCollect(Stream.take(pool.failures, 1))
        assert.deepStrictEqual(queued.map((r) => r.taskId), [handle.taskId])
        const stats = yield* pool.stats
        assert.strictEqual(stats.failed, 1)
        assert.strictEqual(stats.running, 0)
        assertBalanced(stats)
      }))

    it.effect("cancel returns only once the task has ended: after the interrupted attempt's finalizer", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const attempt = Effect.acquireUseRelease(Effect.void, () => Effect.never, () => Effect.sleep(50))
        // One worker: the push is a full batch and starts at 0.
        const handle = yield* pool.push(Task.make({ name: "slow-finalizer", execute: attempt }))
        yield* TestClock.adjust(100)
        const cancelling = yield* Effect.forkChild(Effect.andThen(handle.cancel, now))
        yield* TestClock.adjust(49)
        assert.isUndefined(cancelling.pollUnsafe())
        assert.isFalse(yield* isReady(handle.result))
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Fiber.join(cancelling), 150)
        assert.isTrue(yield* isReady(handle.result))
        const result = yield* handle.result
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[0, 150, "Cancelled"]])
        assert.strictEqual(result.completedAtMs, 150)
      }))

    it.effect("a task already handed to an idle worker but not yet started ends at once and never runs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2 })
        const { events, mark } = timeline()
        const { state, track } = concurrency()
        yield* TestClock.adjust(10)
        // Ready at its push: handed to an idle worker at once, in this same step.
        const handle = yield* pool.push(Task.make({ name: "handed", execute: mark("handed") }), { delay: 0 })
        yield* handle.cancel
        assertCancelled(yield* handle.result, 10)
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [])
        const stats = yield* pool.stats
        assert.strictEqual(stats.queued, 0)
        assertBalanced(stats)
        // Both workers are still there for the next tasks.
        const next = yield* Effect.forEach(["a", "b", "c"], (name) => pool.push(Task.make({ name, execute: track(Effect.sleep(100)) }), { delay: 0 }))
        yield* TestClock.adjust(1000)
        const starts = yield* Effect.forEach(next, (h) => Effect.map(h.result, (r) => r.attempts[0]!.startedAtMs))
        assert.deepStrictEqual(starts, [10, 10, 110])
        assert.strictEqual(state.peak, 2)
      }))

    it.effect("an attempt that cannot be interrupted runs to its end and cancel waits for it; the task still ends \"Cancelled\"", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { events, mark } = timeline()
        // One worker: the push is a full batch and starts at 0.
        const handle = yield* pool.push(Task.make({
          name: "uninterruptible",
          execute: Effect.uninterruptible(Effect.andThen(Effect.sleep(100), Effect.as(mark("reached its end"), "done")))
        }))
        yield* TestClock.adjust(50)
        const cancelling = yield* Effect.forkChild(Effect.andThen(handle.cancel, now))
        yield* TestClock.adjust(49)
        assert.isUndefined(cancelling.pollUnsafe())
        yield* TestClock.adjust(51)
        assert.strictEqual(yield* Fiber.join(cancelling), 100)
        assert.deepStrictEqual(events, [["reached its end", 100]])
        // It had not succeeded when the cancel landed at 50.
        const result = yield* handle.result
        assertCancelled(result, 100)
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[0, 100, "Cancelled"]])
      }))

    it.effect("an attempt that cannot be interrupted and then fails: the task ends \"Cancelled\", without a retry", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1, baseRetryBackOffMs: 0 })
        let runs = 0
        const failed: Array<string> = []
        const handle = yield* pool.push(Task.make({
          name: "uninterruptible",
          execute: Effect.uninterruptible(Effect.andThen(Effect.sleep(100), Effect.suspend(() => (runs++, alwaysFailing)))),
          onFail: (result) => Effect.sync(() => void failed.push(result.errorCode!))
        }))
        yield* TestClock.adjust(50)
        yield* Effect.forkChild(handle.cancel)
        yield* TestClock.adjust(1000)
        const result = yield* handle.result
        assert.strictEqual(runs, 1)
        assert.strictEqual(result.attemptCount, 1)
        assert.strictEqual(result.errorCode, "Cancelled")
        assert.strictEqual(result.completedAtMs, 100)
        assert.deepStrictEqual(failed, ["Cancelled"])
        assert.isTrue(Exit.isFailure(result.exit) && Cause.hasInterrupts(result.exit.cause))
      }))

    it.effect("an interrupted attempt whose finalizer dies is still recorded \"Cancelled\"", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const attempt = Effect.never.pipe(Effect.onInterrupt(() => Effect.die(new Error("cleanup failed"))))
        const handle = yield* pool.push(Task.make({ name: "bad-cleanup", execute: attempt }))
        yield* TestClock.adjust(50)
        yield* handle.cancel
        const result = yield* handle.result
        assert.isFalse(result.successful)
        assert.strictEqual(result.attemptCount, 1)
        assert.strictEqual(result.errorCode, "Cancelled")
        // The attempt was cut off by the cancel; its cleanup died only afterwards.
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[0, 50, "Cancelled"]])
      }))

    it.effect("cancelling a task while its onSuccess runs does nothing", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const self = yield* Deferred.make<Effect.Effect<void>>()
        const callbacks: Array<string> = []
        const handle = yield* pool.push(Task.make({
          name: "ending",
          execute: Effect.succeed(1),
          onSuccess: () => Deferred.await(self).pipe(Effect.flatMap((cancel) => cancel), Effect.andThen(Effect.sync(() => void callbacks.push("onSuccess returned")))),
          onFail: () => Effect.sync(() => void callbacks.push("onFail"))
        }))
        yield* Deferred.succeed(self, handle.cancel)
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.isTrue(result.successful)
        assert.deepStrictEqual(callbacks, ["onSuccess returned"])
        const stats = yield* pool.stats
        assert.strictEqual(stats.succeeded, 1)
        assert.strictEqual(stats.failed, 0)
      }))

    it.effect("a cancel that lands while the retry schedule is stepped ends the task once the step is done; no further attempt", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        let runs = 0
        // Stepping this schedule takes 100 ms.
        const slowStep = Schedule.spaced(10).pipe(Schedule.tap(() => Effect.sleep(100)))
        const handle = yield* pool.push(Task.make({
          name: "stepping",
          execute: Effect.suspend(() => (runs++, alwaysFailing)),
          retrySchedule: slowStep
        }))
        yield* TestClock.adjust(50)
        const cancelling = yield* Effect.forkChild(Effect.andThen(handle.cancel, now))
        yield* TestClock.adjust(1000)
        assert.strictEqual(yield* Fiber.join(cancelling), 100)
        const result = yield* handle.result
        assertCancelled(result, 100)
        assert.strictEqual(runs, 1)
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[0, 0, "Flaky"]])
        const next = yield* pool.push(Task.make({ name: "next", execute: Effect.void }))
        yield* TestClock.adjust(0)
        // The worker that stepped the schedule was replaced: the next task starts at once.
        assert.deepStrictEqual((yield* next.result).attempts.map((a) => a.startedAtMs), [1050])
      }))

    it.effect("a task may cancel itself from its own attempt", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { events, mark } = timeline()
        const self = yield* Deferred.make<Effect.Effect<void>>()
        const handle = yield* pool.push(Task.make({
          name: "self",
          execute: Deferred.await(self).pipe(Effect.flatMap((cancel) => cancel), Effect.andThen(mark("after cancel")))
        }))
        yield* Deferred.succeed(self, handle.cancel)
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.strictEqual(result.errorCode, "Cancelled")
        assert.deepStrictEqual(result.attempts.map((a) => a.errorCode), ["Cancelled"])
        assert.deepStrictEqual(events, [])
        const next = yield* pool.push(Task.make({ name: "next", execute: mark("next") }))
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["next", 100]])
        assert.isTrue((yield* next.result).successful)
      }))

    it.effect("a worker whose attempt was cancelled is replaced: maxIoWorkerNum attempts still run at once afterwards", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2 })
        const { state, track } = concurrency()
        const long = yield* Effect.forEach(["long-1", "long-2"], (name) => pool.push(Task.make({ name, execute: track(Effect.never) })))
        yield* TestClock.adjust(0)
        assert.strictEqual(state.running, 2)
        yield* TestClock.adjust(100)
        for (const handle of long) yield* handle.cancel
        assert.strictEqual(state.running, 0)
        const short = yield* Effect.forEach(
          ["a", "b", "c", "d", "e"],
          (name) => pool.push(Task.make({ name, execute: track(Effect.sleep(100)) }))
        )
        yield* TestClock.adjust(0)
        assert.strictEqual(state.running, 2)
        yield* TestClock.adjust(1000)
        const starts = yield* Effect.forEach(short, (h) => Effect.map(h.result, (r) => r.attempts[0]!.startedAtMs))
        assert.deepStrictEqual(starts, [100, 100, 200, 200, 300])
        assert.strictEqual(state.peak, 2)
        assert.strictEqual((yield* pool.stats).succeeded, 5)
      }))

    it.effect("cancelling an ended task does nothing: its result, the stats and the failure queue stay as they were", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0 })
        const callbacks: Array<string> = []
        const record = (what: string) => () => Effect.sync(() => void callbacks.push(what))
        const ok = yield* pool.push(Task.make({ name: "ok", execute: Effect.succeed(1), onSuccess: record("ok:onSuccess"), onFail: record("ok:onFail") }))
        const bad = yield* pool.push(Task.make({ name: "bad", execute: Effect.fail("no"), onFail: record("bad:onFail") }))
        yield* TestClock.adjust(100)
        const okBefore = yield* ok.result
        const badBefore = yield* bad.result
        const statsBefore = yield* pool.stats
        yield* TestClock.adjust(100)
        yield* ok.cancel
        yield* bad.cancel
        yield* ok.cancel
        assert.strictEqual(yield* ok.result, okBefore)
        assert.strictEqual(yield* bad.result, badBefore)
        assert.isTrue(okBefore.successful)
        assert.strictEqual(badBefore.errorCode, "Failure")
        assert.deepStrictEqual(yield* pool.stats, statsBefore)
        assert.deepStrictEqual(callbacks.sort(), ["bad:onFail", "ok:onSuccess"])
        yield* close
        assert.deepStrictEqual((yield* Stream.runCollect(pool.failures)).map((r) => r.name), ["bad"])
      }))

    it.effect("cancelling twice ends the task once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const failed: Array<TaskResult<unknown, unknown>> = []
        const handle = yield* pool.push(watched("twice", Effect.never, failed))
        yield* TestClock.adjust(100)
        yield* Effect.all([handle.cancel, handle.cancel], { concurrency: "unbounded" })
        yield* handle.cancel
        yield* TestClock.adjust(0)
        assert.strictEqual(failed.length, 1)
        assert.strictEqual((yield* pool.stats).failed, 1)
        assert.deepStrictEqual((yield* handle.result).attempts.map((a) => a.errorCode), ["Cancelled"])
      }))
  })

  describe("pause / resume", () => {
    it.effect("while paused nothing starts (pushes are accepted, stats.paused); running attempts finish; resume starts waiting work at once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2, baseRetryBackOffMs: 200 })
        const { events, mark } = timeline()
        const { state, track } = concurrency()
        const step = (name: string) => Task.make({ name, execute: track(Effect.andThen(mark(name), Effect.sleep(100))) })
        // A full batch of 2: both start at 0; "retrying" fails and backs off until 200.
        const running = yield* pool.push(Task.make({ name: "running", execute: Effect.andThen(mark("running"), Effect.sleep(300)) }))
        const retrying = yield* pool.push(Task.make({ name: "retrying", execute: Effect.andThen(mark("retrying"), failingFirst(1)) }))
        yield* TestClock.adjust(100)
        yield* pool.pause
        assert.isTrue((yield* pool.stats).paused)
        // Another full batch, ready at 100.
        yield* pool.push(step("a"))
        yield* pool.push(step("b"))
        yield* TestClock.adjust(400)
        // "running" went on to its end at 300; the retry's backoff ended at 200 but it did not start; nothing new started.
        assert.deepStrictEqual(events, [["running", 0], ["retrying", 0]])
        assert.deepStrictEqual((yield* running.result).attempts.map((a) => [a.startedAtMs, a.endedAtMs]), [[0, 300]])
        const paused = yield* pool.stats
        assert.deepStrictEqual(
          { paused: paused.paused, queued: paused.queued, running: paused.running, retrying: paused.retrying, pushed: paused.pushed },
          { paused: true, queued: 3, running: 0, retrying: 0, pushed: 4 }
        )
        assertBalanced(paused)
        yield* pool.resume
        assert.isFalse((yield* pool.stats).paused)
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events.slice(2), [["a", 500], ["b", 500]])
        assert.strictEqual(state.running, 2)
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events.slice(4), [["retrying", 600]])
        assert.strictEqual((yield* retrying.result).attemptCount, 2)
      }))

    it.effect("TaskPool.pause and TaskPool.resume act on the pool in context", () =>
      Effect.gen(function*() {
        const { events, mark } = timeline()
        yield* TaskPool.pause
        yield* TaskPool.push(Task.make({ name: "t", execute: mark("t") }))
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [])
        assert.isTrue((yield* TaskPool.stats).paused)
        yield* TaskPool.resume
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["t", 1000]])
      }).pipe(Effect.provide(TaskPool.layer({ lingerMs: 100 }))))

    it.effect("a safe close of a paused pool resumes dispatch and drains", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100 })
        yield* pool.pause
        const handle = yield* pool.push(Task.make({ name: "t", execute: Effect.sleep(50) }))
        yield* TestClock.adjust(500)
        assert.strictEqual((yield* pool.stats).queued, 1)
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(100)
        assert.strictEqual(yield* Fiber.join(closing), 550)
        assert.deepStrictEqual((yield* handle.result).attempts.map((a) => [a.startedAtMs, a.success]), [[500, true]])
        assert.isFalse((yield* pool.stats).paused)
      }))

    it.effect("a pause once the close has begun does nothing: the drain goes on", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { events, mark } = timeline()
        yield* pool.push(Task.make({ name: "first", execute: Effect.andThen(mark("first"), Effect.sleep(100)) }))
        yield* pool.push(Task.make({ name: "second", execute: mark("second") }))
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(0)
        yield* pool.pause
        assert.isFalse((yield* pool.stats).paused)
        yield* TestClock.adjust(1000)
        assert.strictEqual(yield* Fiber.join(closing), 100)
        assert.deepStrictEqual(events, [["first", 0], ["second", 100]])
      }))

    it.effect("a limited close of a paused pool resumes dispatch too: work that fits in the timeout succeeds", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        yield* pool.pause
        const handle = yield* pool.push(Task.make({ name: "t", execute: Effect.sleep(50) }))
        yield* TestClock.adjust(500)
        const closing = yield* Effect.forkChild(Effect.andThen(pool.close({ timeoutMs: 1000 }), now))
        yield* TestClock.adjust(2000)
        assert.strictEqual(yield* Fiber.join(closing), 550)
        assert.isTrue((yield* handle.result).successful)
      }))
  })

  describe("resize", () => {
    it.effect("growing starts waiting work at once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { state, track } = concurrency()
        const handles = yield* Effect.forEach(
          ["a", "b", "c", "d"],
          (name) => pool.push(Task.make({ name, execute: track(Effect.sleep(1000)) }))
        )
        yield* TestClock.adjust(200)
        assert.strictEqual(state.running, 1)
        yield* pool.resize(3)
        yield* TestClock.adjust(0)
        assert.strictEqual(state.running, 3)
        const stats = yield* pool.stats
        assert.strictEqual(stats.maxIoWorkerNum, 3)
        assert.strictEqual(stats.queued, 1)
        yield* TestClock.adjust(2000)
        const starts = yield* Effect.forEach(handles, (h) => Effect.map(h.result, (r) => r.attempts[0]!.startedAtMs))
        assert.deepStrictEqual(starts, [0, 200, 200, 1000])
        assert.strictEqual(state.peak, 3)
      }))

    it.effect("shrinking lets running attempts finish, then never more than the new limit run", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 3 })
        const { state, track } = concurrency()
        const handles = yield* Effect.forEach(
          ["a", "b", "c", "d", "e", "f"],
          (name) => pool.push(Task.make({ name, execute: track(Effect.sleep(1000)) }))
        )
        yield* TestClock.adjust(100)
        assert.strictEqual(state.running, 3)
        yield* pool.resize(1)
        assert.strictEqual((yield* pool.stats).maxIoWorkerNum, 1)
        yield* TestClock.adjust(10_000)
        const results = yield* Effect.forEach(handles, (h) => h.result)
        assert.isTrue(results.every((r) => r.successful && r.attemptCount === 1))
        assert.deepStrictEqual(results.map((r) => r.attempts[0]!.startedAtMs), [0, 0, 0, 1000, 2000, 3000])
        assert.deepStrictEqual(state.seen.filter(([at]) => at >= 100).map(([, running]) => running), [1, 1, 1])
      }))

    it.effect("resize(0), resize(1.5) and resize(10001) fail with TaskPoolConfigError naming maxIoWorkerNum; the limit stays", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 4 })
        for (const n of [0, 1.5, 10_001, -1, Number.NaN]) {
          const error = yield* Effect.flip(pool.resize(n))
          assert.instanceOf(error, TaskPoolConfigError)
          assert.include(error.message, "maxIoWorkerNum: expected an integer >= 1 and <= 10000")
          assert.deepStrictEqual(error.fields, ["maxIoWorkerNum"])
        }
        assert.strictEqual((yield* pool.stats).maxIoWorkerNum, 4)
        yield* pool.resize(10_000)
        assert.strictEqual((yield* pool.stats).maxIoWorkerNum, 10_000)
      }))

    it.effect("TaskPool.resize acts on the pool in context", () =>
      Effect.gen(function*() {
        yield* TaskPool.resize(7)
        assert.strictEqual((yield* TaskPool.stats).maxIoWorkerNum, 7)
        assert.instanceOf(yield* Effect.flip(TaskPool.resize(0)), TaskPoolConfigError)
      }).pipe(Effect.provide(TaskPool.layer({ lingerMs: 100 }))))

    it.effect("the linger batch follows the new size", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 1000, maxIoWorkerNum: 5 })
        const { events, mark } = timeline()
        const step = (name: string) => Task.make({ name, execute: mark(name) })
        yield* pool.push(step("a"))
        yield* pool.push(step("b"))
        yield* TestClock.adjust(10)
        assert.strictEqual((yield* pool.stats).lingering, 2)
        // Shrinking to the batch's size makes it full: it leaves at once.
        yield* pool.resize(2)
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["a", 10], ["b", 10]])
        // Growing makes the batch bigger: 3 tasks now fill it.
        yield* pool.resize(3)
        yield* pool.push(step("c"))
        yield* pool.push(step("d"))
        yield* TestClock.adjust(10)
        assert.strictEqual((yield* pool.stats).lingering, 2)
        yield* pool.push(step("e"))
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events.slice(2), [["c", 20], ["d", 20], ["e", 20]])
      }))
  })

  describe("rateLimit", () => {
    /** The most starts in any half-open window (t - intervalMs, t]. */
    const busiestWindow = (starts: ReadonlyArray<number>, intervalMs: number) =>
      Math.max(0, ...starts.map((t) => starts.filter((s) => s > t - intervalMs && s <= t).length))

    it.effect("{ limit: 2, intervalMs: 1000 }: five ready tasks start at 0, 0, 1000, 1000, 2000 after they are ready", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10, rateLimit: { limit: 2, intervalMs: 1000 } })
        const handles = yield* Effect.forEach(
          ["a", "b", "c", "d", "e"],
          (name) => pool.push(Task.make({ name, execute: Effect.sleep(10) }))
        )
        yield* TestClock.adjust(1099)
        assert.strictEqual((yield* pool.stats).succeeded, 2)
        yield* TestClock.adjust(2000)
        const starts = yield* Effect.forEach(handles, (h) => Effect.map(h.result, (r) => r.attempts[0]!.startedAtMs))
        assert.deepStrictEqual(starts, [100, 100, 1100, 1100, 2100])
      }))

    it.effect("the window slides: no burst at a window's edge, and a start leaves the window exactly intervalMs later", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10, rateLimit: { limit: 2, intervalMs: 1000 } })
        const { events, mark } = timeline()
        const step = (name: string) => Task.make({ name, execute: mark(name) })
        yield* pool.push(step("a")) // lingers: starts at 100
        yield* TestClock.adjust(850)
        yield* pool.push(step("b"), { delay: 0 }) // 850
        yield* TestClock.adjust(200)
        // At 1050 the window (50, 1050] holds 100 and 850.
        yield* pool.push(step("c"), { delay: 0 })
        yield* pool.push(step("d"), { delay: 0 })
        yield* TestClock.adjust(850)
        yield* pool.push(step("e"), { delay: 0 }) // at 1900 the window (900, 1900] holds 1100 and 1850
        yield* TestClock.adjust(1000)
        assert.deepStrictEqual(events, [["a", 100], ["b", 850], ["c", 1100], ["d", 1850], ["e", 2100]])
        assert.strictEqual(busiestWindow(events.map(([, at]) => at), 1000), 2)
      }))

    it.effect("retries count as starts", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({
          lingerMs: 100,
          maxIoWorkerNum: 10,
          baseRetryBackOffMs: 0,
          rateLimit: { limit: 2, intervalMs: 1000 }
        })
        const { events, mark } = timeline()
        yield* pool.push(Task.make({ name: "flaky", execute: Effect.andThen(mark("flaky"), failingFirst(1)) }))
        yield* pool.push(Task.make({ name: "delayed", execute: mark("delayed") }), { delay: 500 })
        yield* TestClock.adjust(2000)
        assert.deepStrictEqual(events, [["flaky", 100], ["flaky", 100], ["delayed", 1100]])
      }))

    it.effect("across pushes, delays, retries and slow attempts, no window of intervalMs holds more than limit starts", () =>
      Effect.gen(function*() {
        const intervalMs = 500
        const limit = 3
        const { pool } = yield* openPool({
          lingerMs: 100,
          maxIoWorkerNum: 4,
          baseRetryBackOffMs: 30,
          maxRetryBackOffMs: 200,
          maxRetryTimes: 3,
          rateLimit: { limit, intervalMs }
        })
        const starts: Array<number> = []
        const mark = Effect.flatMap(now, (at) => Effect.sync(() => void starts.push(at)))
        // A fixed pseudo-random plan: gaps between pushes, attempt lengths, failures and delays.
        let seed = 7
        const next = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n
        const handles = []
        for (let i = 0; i < 30; i++) {
          yield* TestClock.adjust(next(250))
          const ms = next(400)
          const failures = next(3)
          const options = next(3) === 0 ? { delay: next(700) } : undefined
          handles.push(yield* pool.push(Task.make({ name: `t${i}`, execute: Effect.andThen(mark, Effect.andThen(Effect.sleep(ms), failingFirst(failures))) }), options))
        }
        yield* TestClock.adjust(60_000)
        const attempts = yield* Effect.forEach(handles, (h) => Effect.map(h.result, (r) => r.attemptCount))
        assert.strictEqual(starts.length, attempts.reduce((a, b) => a + b, 0))
        assert.isAbove(starts.length, 40)
        assert.strictEqual(busiestWindow(starts, intervalMs), limit)
        assertBalanced(yield* pool.stats)
      }))
  })

  describe("retrySchedule", () => {
    it.effect("Schedule.spaced(\"300 millis\"): each retry starts 300 ms after the failed attempt's end, in place of the formula", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, baseRetryBackOffMs: 100 })
        const handle = yield* pool.push(Task.make({
          name: "spaced",
          execute: Effect.andThen(Effect.sleep(7), failingFirst(3)),
          retrySchedule: Schedule.spaced("300 millis")
        }))
        yield* TestClock.adjust(10_000)
        const result = yield* handle.result
        assert.isTrue(result.successful)
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs]), [[100, 107], [407, 414], [714, 721], [1021, 1028]])
        assert.deepStrictEqual(retryWaits(result), [300, 300, 300])
      }))

    it.effect("Schedule.recurs(1) ends the task after 2 attempts even with maxRetryTimes 10", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 10, maxRetryBackOffMs: 100 })
        const failed: Array<number> = []
        const handle = yield* pool.push(Task.make({
          name: "once-more",
          execute: alwaysFailing,
          retrySchedule: Schedule.recurs(1),
          onFail: (result) => Effect.sync(() => void failed.push(result.attemptCount))
        }))
        yield* TestClock.adjust(10_000)
        const result = yield* handle.result
        assert.strictEqual(result.attemptCount, 2)
        assert.strictEqual(result.errorCode, "Flaky")
        assert.deepStrictEqual(retryWaits(result), [0])
        assert.deepStrictEqual(failed, [2])
      }))

    it.effect("maxRetryTimes caps a longer schedule", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 2 })
        const handle = yield* pool.push(Task.make({ name: "capped", execute: alwaysFailing, retrySchedule: Schedule.spaced("100 millis") }))
        yield* TestClock.adjust(10_000)
        const result = yield* handle.result
        assert.strictEqual(result.attemptCount, 3)
        assert.deepStrictEqual(result.attempts.map((a) => a.startedAtMs), [100, 200, 300])
      }))

    it.effect("each task steps its own copy of the schedule", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const schedule = Schedule.recurs(2)
        const handles = yield* Effect.forEach(["x", "y"], (name) => pool.push(Task.make({ name, execute: alwaysFailing, retrySchedule: schedule })))
        yield* TestClock.adjust(1000)
        const counts = yield* Effect.forEach(handles, (h) => Effect.map(h.result, (r) => r.attemptCount))
        assert.deepStrictEqual(counts, [3, 3])
      }))

    it.effect("a schedule that inspects its input sees the typed error: it can pick the delay and stop", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const seen: Array<unknown> = []
        const errors = [
          new RetryLater({ message: "busy", retryAfterMs: 250 }),
          new RetryLater({ message: "busy", retryAfterMs: 700 }),
          new Fatal({ message: "gone" }),
          new RetryLater({ message: "never reached", retryAfterMs: 1 })
        ]
        let runs = 0
        const schedule = Schedule.forever.pipe(
          Schedule.setInputType<RetryLater | Fatal>(),
          Schedule.tap(({ input }) => Effect.sync(() => void seen.push(input))),
          Schedule.while(({ input }) => input._tag === "RetryLater"),
          Schedule.modifyDelay(({ input }) => Effect.succeed(input._tag === "RetryLater" ? input.retryAfterMs : 0))
        )
        const handle = yield* pool.push(Task.make({
          name: "retry-after",
          execute: Effect.suspend((): Effect.Effect<never, RetryLater | Fatal> => Effect.fail(errors[runs++]!)),
          retrySchedule: schedule
        }))
        yield* TestClock.adjust(10_000)
        const result = yield* handle.result
        assert.strictEqual(result.attemptCount, 3)
        assert.deepStrictEqual(retryWaits(result), [250, 700])
        assert.strictEqual(result.errorCode, "Fatal")
        assert.deepStrictEqual(seen, errors.slice(0, 3))
        assert.strictEqual(seen[0], errors[0])
      }))

    it.effect("a timeout steps the schedule with the TaskTimeoutError, a defect with the defect", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const seen: Array<unknown> = []
        // `tap` sees the steps that go on: 2 of the 3 failures.
        const recording = Schedule.recurs(2).pipe(Schedule.tap(({ input }) => Effect.sync(() => void seen.push(input))))
        const timedOut = yield* pool.push(Task.make({ name: "slow", execute: Effect.never, timeout: 50, retrySchedule: recording }))
        yield* TestClock.adjust(1000)
        assert.strictEqual((yield* timedOut.result).attemptCount, 3)
        assert.strictEqual(seen.length, 2)
        assert.isTrue(seen.every((input) => input instanceof TaskTimeoutError))
        seen.length = 0
        const boom = new Error("boom")
        const died = yield* pool.push(Task.make({ name: "dies", execute: Effect.die(boom), retrySchedule: recording }))
        yield* TestClock.adjust(1000)
        assert.strictEqual((yield* died.result).errorCode, "Defect")
        assert.deepStrictEqual(seen, [boom, boom])
      }))

    it.effect("retryable: false still makes a typed failure final with a schedule", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        let stepped = 0
        const handle = yield* pool.push(Task.make({
          name: "fatal",
          execute: Effect.fail(new Fatal({ message: "no" })),
          retryable: () => false,
          retrySchedule: Schedule.spaced(10).pipe(Schedule.tap(() => Effect.sync(() => void stepped++)))
        }))
        yield* TestClock.adjust(1000)
        assert.strictEqual((yield* handle.result).attemptCount, 1)
        assert.strictEqual(stepped, 0)
      }))
  })

  describe("retryJitter", () => {
    const base = { lingerMs: 100, maxIoWorkerNum: 50, baseRetryBackOffMs: 100, maxRetryBackOffMs: 1000, maxRetryTimes: 6 }
    /** The formula's delay after failed attempt n: min(100 * 2^(n-1), 1000). */
    const bounds = [100, 200, 400, 800, 1000, 1000]

    /** The retry waits of 20 always-failing tasks, one array per task, in a pool built under `seed`. */
    const waitsWith = (config: typeof base & { readonly retryJitter?: boolean }, seed?: string) =>
      Effect.gen(function*() {
        const build = openPool(config)
        const { pool } = yield* (seed === undefined ? build : build.pipe(Random.withSeed(seed)))
        const handles = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
          pool.push(Task.make({ name: `j${i}`, execute: alwaysFailing })))
        yield* TestClock.adjust(20_000)
        return yield* Effect.forEach(handles, (h) => Effect.map(h.result, retryWaits))
      })

    it.effect("with retryJitter every wait is an integer in [0, min(base * 2^(n-1), maxRetryBackOffMs)], and waits vary", () =>
      Effect.gen(function*() {
        const waits = yield* waitsWith({ ...base, retryJitter: true }, "jitter-1")
        for (const perTask of waits) {
          assert.strictEqual(perTask.length, 6)
          perTask.forEach((wait, i) => {
            assert.isTrue(Number.isInteger(wait) && wait >= 0 && wait <= bounds[i]!, `retry ${i + 1} waited ${wait}`)
          })
        }
        for (let i = 0; i < 6; i++) {
          const column = waits.map((perTask) => perTask[i]!)
          assert.isAbove(new Set(column).size, 10, `retry ${i + 1} waits: ${column}`)
        }
        // Spread over the whole range, not only its low end.
        assert.isAbove(Math.max(...waits.map((perTask) => perTask[5]!)), 500)
      }))

    it.effect("the draws come from the Random service where the layer is built: the same seed gives the same waits", () =>
      Effect.gen(function*() {
        const first = yield* waitsWith({ ...base, retryJitter: true }, "seed-a")
        const again = yield* waitsWith({ ...base, retryJitter: true }, "seed-a")
        const other = yield* waitsWith({ ...base, retryJitter: true }, "seed-b")
        assert.deepStrictEqual(again, first)
        assert.notDeepEqual(other, first)
      }))

    it.effect("retryJitter false (the default) keeps the formula's exact waits", () =>
      Effect.gen(function*() {
        for (const waits of [yield* waitsWith(base, "seed-a"), yield* waitsWith({ ...base, retryJitter: false })]) {
          for (const perTask of waits) assert.deepStrictEqual(perTask, bounds)
        }
      }))
  })

  describe("push options are checked at push", () => {
    it.effect("bad options make push die with a TypeError naming the option; nothing is pushed", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          [{ priority: Number.NaN }, "priority"],
          [{ priority: Number.POSITIVE_INFINITY }, "priority"],
          [{ priority: "high" }, "priority"],
          [{ delay: -1 }, "delay"],
          [{ delay: "soon" }, "delay"],
          [{ delay: Number.POSITIVE_INFINITY }, "delay"],
          [{ delay: Number.NaN }, "delay"],
          [{ key: 5 }, "key"],
          [{ key: null }, "key"],
          [{ idempotencyKey: 5 }, "idempotencyKey"],
          [{ priority: 1, prio: 2 }, "prio"],
          [{ retries: 3 }, "retries"],
          [42, "options"],
          [null, "options"],
          ["urgent", "options"]
        ]
        const task = Task.make({ name: "t", execute: Effect.void })
        for (const [options, name] of cases) {
          const exit = yield* Effect.exit(pool.push(task, options as PushOptions))
          const label = `${name}: ${String(options === null ? null : JSON.stringify(options))}`
          assert.isTrue(Exit.isFailure(exit), label)
          if (Exit.isFailure(exit)) {
            const defect = exit.cause.reasons.find((reason) => reason._tag === "Die")
            assert.isDefined(defect, label)
            const error = defect!._tag === "Die" ? defect.defect : undefined
            assert.instanceOf(error, TypeError, label)
            assert.match((error as TypeError).message, /^TaskPool\.push: /, label)
            assert.include((error as TypeError).message, name, label)
          }
        }
        const stats = yield* pool.stats
        assert.strictEqual(stats.pushed, 0)
        assert.strictEqual(stats.lingering, 0)
        yield* pool.push(task, { priority: undefined, delay: undefined, key: undefined, idempotencyKey: undefined })
        assert.strictEqual((yield* pool.stats).pushed, 1)
      }))
  })
})
