import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import { PoolClosedError, PoolFullError, Task, TaskPool, TaskPoolLive, TaskTimeoutError } from "../src/index.js"
import type { TaskResult } from "../src/index.js"
import { failingFirst, Fatal, Flaky, now, openPool, timeline } from "./utils.js"

describe("TaskPool", () => {
  describe("push", () => {
    it.effect("returns as soon as the pool holds the task, before it runs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 1000 })
        let ran = false
        const handle = yield* pool.push(Task.make({ name: "later", execute: Effect.sync(() => void (ran = true)) }))
        assert.strictEqual(handle.taskId.length > 0, true)
        assert.strictEqual(ran, false)
        assert.deepStrictEqual(yield* pool.stats, {
          lingering: 1, queued: 0, running: 0, retrying: 0, succeeded: 0, failed: 0, pushed: 1, droppedFailures: 0,
          paused: false, maxIoWorkerNum: 50
        })
        yield* TestClock.adjust(1000)
        assert.strictEqual(ran, true)
      }))

    it.effect("TaskPool.push uses the pool in context", () =>
      Effect.gen(function*() {
        const handle = yield* TaskPool.push(Task.make({ name: "ctx", execute: Effect.succeed(7) }))
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.deepStrictEqual(result.exit, Exit.succeed(7))
        assert.strictEqual((yield* TaskPool.stats).succeeded, 1)
      }).pipe(Effect.provide(TaskPool.layer({ lingerMs: 100 }))))

    it.effect("execute and callbacks see the services of the program that pushed", () =>
      Effect.gen(function*() {
        class Greeting extends Context.Service<Greeting, { readonly word: string }>()("test/Greeting") {}
        const { pool } = yield* openPool({ lingerMs: 100 })
        const seen: Array<string> = []
        const handle = yield* pool.push(Task.make({
          name: "greet",
          execute: Greeting.use((g) => Effect.succeed(`${g.word}, world`)),
          onSuccess: () => Greeting.use((g) => Effect.sync(() => void seen.push(g.word)))
        })).pipe(Effect.provideService(Greeting, { word: "hello" }))
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.deepStrictEqual(result.exit, Exit.succeed("hello, world"))
        assert.deepStrictEqual(seen, ["hello"])
      }))
  })

  describe("linger", () => {
    it.effect("a task waits exactly lingerMs after its push, then runs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 500 })
        const { events, mark } = timeline()
        yield* TestClock.adjust(30)
        yield* pool.push(Task.make({ name: "t", execute: mark("run") }))
        yield* TestClock.adjust(499)
        assert.deepStrictEqual(events, [])
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(events, [["run", 530]])
      }))

    it.effect("a full batch of maxIoWorkerNum tasks is dispatched at once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 2000, maxIoWorkerNum: 3 })
        const { events, mark } = timeline()
        yield* pool.push(Task.make({ name: "a", execute: mark("a") }))
        yield* pool.push(Task.make({ name: "b", execute: mark("b") }))
        yield* TestClock.adjust(10)
        assert.deepStrictEqual(events, [])
        assert.strictEqual((yield* pool.stats).lingering, 2)
        yield* pool.push(Task.make({ name: "c", execute: mark("c") }))
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["a", 10], ["b", 10], ["c", 10]])
      }))

    it.effect("the batch leaves when its first task has lingered lingerMs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 10 })
        const { events, mark } = timeline()
        yield* pool.push(Task.make({ name: "first", execute: mark("first") }))
        yield* TestClock.adjust(60)
        yield* pool.push(Task.make({ name: "second", execute: mark("second") }))
        yield* TestClock.adjust(40)
        assert.deepStrictEqual(events, [["first", 100], ["second", 100]])
        yield* pool.push(Task.make({ name: "third", execute: mark("third") }))
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(events.at(-1), ["third", 200])
      }))

    it.effect("retries do not linger", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 1000, baseRetryBackOffMs: 50 })
        const { events, mark } = timeline()
        let runs = 0
        const handle = yield* pool.push(Task.make({
          name: "retry",
          execute: Effect.andThen(mark("attempt"), Effect.suspend(() => ++runs === 1 ? Effect.fail("no") : Effect.void))
        }))
        yield* TestClock.adjust(1050)
        assert.deepStrictEqual(events, [["attempt", 1000], ["attempt", 1050]])
        assert.strictEqual((yield* handle.result).successful, true)
      }))
  })

  describe("workers", () => {
    it.effect("at most maxIoWorkerNum attempts run at once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 3 })
        let running = 0
        let peak = 0
        const slow = Effect.acquireUseRelease(
          Effect.sync(() => peak = Math.max(peak, ++running)),
          () => Effect.sleep(1000),
          () => Effect.sync(() => running--)
        )
        // Pushed in full batches of 3, so nine are queued at once and the tenth lingers 100 ms.
        const handles = yield* Effect.forEach(Array.from({ length: 10 }), (_, i) => pool.push(Task.make({ name: `slow-${i}`, execute: slow })))
        yield* TestClock.adjust(100)
        assert.strictEqual((yield* pool.stats).running, 3)
        assert.strictEqual((yield* pool.stats).queued, 7)
        yield* TestClock.adjust(4000)
        assert.strictEqual(peak, 3)
        const results = yield* Effect.forEach(handles, (h) => h.result)
        assert.deepStrictEqual(results.map((r) => r.attempts[0]!.startedAtMs), [0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000, 3000])
      }))

    it.effect("a task waiting out a retry backoff holds no worker", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1, baseRetryBackOffMs: 10_000 })
        const { events, mark } = timeline()
        // With one worker every push is a full batch and is queued at once.
        const flaky = yield* pool.push(Task.make({ name: "flaky", execute: Effect.andThen(mark("flaky"), failingFirst(1)) }))
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(yield* pool.stats, {
          lingering: 0, queued: 0, running: 0, retrying: 1, succeeded: 0, failed: 0, pushed: 1, droppedFailures: 0,
          paused: false, maxIoWorkerNum: 1
        })
        yield* pool.push(Task.make({ name: "other", execute: mark("other") }))
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["flaky", 0], ["other", 100]])
        yield* TestClock.adjust(10_000)
        assert.deepStrictEqual(events.at(-1), ["flaky", 10_000])
        assert.strictEqual((yield* flaky.result).attemptCount, 2)
      }))
  })

  describe("retry", () => {
    it.effect("after failed attempt N it waits min(base * 2^(N-1), max) from that attempt's end", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, baseRetryBackOffMs: 100, maxRetryBackOffMs: 300, maxRetryTimes: 5 })
        const attempt = Effect.andThen(Effect.sleep(7), Effect.fail(new Flaky({ message: "still down" })))
        const handle = yield* pool.push(Task.make({ name: "backoff", execute: attempt }))
        yield* TestClock.adjust(10_000)
        const result = yield* handle.result
        assert.strictEqual(result.attemptCount, 6)
        const waits = result.attempts.slice(1).map((a, i) => a.startedAtMs - result.attempts[i]!.endedAtMs)
        assert.deepStrictEqual(waits, [100, 200, 300, 300, 300])
        assert.deepStrictEqual(result.attempts.map((a) => a.number), [1, 2, 3, 4, 5, 6])
        assert.strictEqual(result.errorCode, "Flaky")
        assert.strictEqual(result.errorMessage, "still down")
      }))

    it.effect("maxRetryTimes <= 0 makes the first failure final", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0 })
        const handle = yield* pool.push(Task.make({ name: "once", execute: failingFirst(1) }))
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.strictEqual(result.successful, false)
        assert.strictEqual(result.attemptCount, 1)
      }))

    it.effect("retryable: false makes a typed failure final at once", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const asked: Array<string> = []
        let runs = 0
        const handle = yield* pool.push(Task.make({
          name: "fatal",
          execute: Effect.suspend((): Effect.Effect<never, Flaky | Fatal> =>
            ++runs === 1 ? Effect.fail(new Flaky({ message: "flaky" })) : Effect.fail(new Fatal({ message: "bad address" }))
          ),
          retryable: (error) => {
            asked.push(error._tag)
            return error._tag !== "Fatal"
          }
        }))
        yield* TestClock.adjust(10_000)
        const result = yield* handle.result
        assert.deepStrictEqual(asked, ["Flaky", "Fatal"])
        assert.strictEqual(result.attemptCount, 2)
        assert.strictEqual(result.errorCode, "Fatal")
        assert.deepStrictEqual(result.exit, Exit.fail(new Fatal({ message: "bad address" })))
      }))

    it.effect("defects are failed attempts like any other: retried, never asked to retryable, never stopping the pool", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, baseRetryBackOffMs: 0 })
        let runs = 0
        const handle = yield* pool.push(Task.make({
          name: "throws",
          execute: Effect.sync(() => {
            if (++runs === 1) throw new Error("kaboom")
            if (runs === 2) return Effect.runSync(Effect.die("died"))
            return runs
          }),
          retryable: () => false
        }))
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.strictEqual(result.successful, true)
        assert.isUndefined(result.errorCode)
        assert.deepStrictEqual(result.attempts.map((a) => [a.errorCode, a.errorMessage]), [["Defect", "kaboom"], ["Defect", "died"], [undefined, undefined]])
        const after = yield* pool.push(Task.make({ name: "after", execute: Effect.succeed("fine") }))
        yield* TestClock.adjust(100)
        assert.strictEqual((yield* after.result).successful, true)
      }))

    it.effect("an attempt past its timeout is interrupted and fails with errorCode Timeout", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 1, baseRetryBackOffMs: 0 })
        let interrupted = 0
        const handle = yield* pool.push(Task.make({
          name: "slow",
          execute: Effect.sleep(1000).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted++))),
          timeout: "250 millis"
        }))
        yield* TestClock.adjust(1000)
        const result = yield* handle.result
        assert.strictEqual(interrupted, 2)
        assert.deepStrictEqual(result.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[100, 350, "Timeout"], [350, 600, "Timeout"]])
        assert.strictEqual(result.errorCode, "Timeout")
        assert.isTrue(Exit.isFailure(result.exit))
        const defect = Exit.isFailure(result.exit) ? Cause.findDefect(result.exit.cause) : undefined
        assert.isTrue(defect !== undefined && Result.isSuccess(defect) && defect.success instanceof TaskTimeoutError)
      }))
  })

  describe("results", () => {
    it.effect("keep the newest maxReservedAttempts attempts and count them all", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxReservedAttempts: 2, baseRetryBackOffMs: 0 })
        const handle = yield* pool.push(Task.make({ name: "four", execute: failingFirst(3) }))
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.strictEqual(result.attemptCount, 4)
        assert.deepStrictEqual(result.attempts.map((a) => [a.number, a.success]), [[3, false], [4, true]])
        assert.deepStrictEqual(result.exit, Exit.succeed(4))
        assert.strictEqual(result.successful, true)
        assert.isUndefined(result.errorCode)
        assert.isUndefined(result.errorMessage)
        assert.strictEqual(result.name, "four")
        assert.strictEqual(result.taskId, handle.taskId)
        assert.strictEqual(result.createdAtMs, 0)
        assert.strictEqual(result.completedAtMs, 100)
      }))

    it.effect("name a failure without a _tag \"Failure\"", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0 })
        const handle = yield* pool.push(Task.make({ name: "plain", execute: Effect.fail({ reason: "nope" }) }))
        yield* TestClock.adjust(100)
        const result = yield* handle.result
        assert.strictEqual(result.errorCode, "Failure")
        assert.deepStrictEqual(result.exit, Exit.fail({ reason: "nope" }))
      }))
  })

  describe("end", () => {
    it.effect("runs onSuccess or onFail exactly once with the result the handle returns", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 1, baseRetryBackOffMs: 0 })
        const seen: Array<TaskResult<unknown, unknown>> = []
        const record = (result: TaskResult<unknown, unknown>) => Effect.sync(() => void seen.push(result))
        const good = yield* pool.push(Task.make({ name: "good", execute: failingFirst(1), onSuccess: record, onFail: record }))
        const bad = yield* pool.push(Task.make({ name: "bad", execute: failingFirst(5), onSuccess: record, onFail: record }))
        yield* TestClock.adjust(100)
        assert.strictEqual(seen.length, 2)
        assert.strictEqual(seen.find((r) => r.name === "good"), yield* good.result)
        assert.strictEqual(seen.find((r) => r.name === "bad"), yield* bad.result)
        assert.strictEqual((yield* bad.result).successful, false)
        assert.strictEqual((yield* bad.result).attemptCount, 2)
      }))

    it.effect("a callback runs in a fiber of its own: it holds no worker, and its task counts as running until it returns", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
        const { events, mark } = timeline()
        const slow = yield* pool.push(Task.make({ name: "slow-callback", execute: Effect.void, onSuccess: () => Effect.sleep(1000) }))
        yield* pool.push(Task.make({ name: "next", execute: mark("next") }))
        yield* TestClock.adjust(0)
        assert.deepStrictEqual(events, [["next", 0]])
        assert.deepStrictEqual(yield* pool.stats, {
          lingering: 0, queued: 0, running: 1, retrying: 0, succeeded: 1, failed: 0, pushed: 2, droppedFailures: 0,
          paused: false, maxIoWorkerNum: 1
        })
        assert.isUndefined((yield* Effect.forkChild(slow.result)).pollUnsafe())
        yield* TestClock.adjust(1000)
        assert.strictEqual((yield* pool.stats).running, 0)
        assert.strictEqual((yield* slow.result).completedAtMs, 0)
      }))

    it.effect("a callback that fails or dies is logged and never stops the pool", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const a = yield* pool.push(Task.make({ name: "a", execute: Effect.void, onSuccess: () => Effect.die("callback bug") }))
        const b = yield* pool.push(Task.make({
          name: "b",
          execute: Effect.void,
          onSuccess: () => {
            throw new Error("thrown in callback")
          }
        }))
        yield* TestClock.adjust(100)
        assert.strictEqual((yield* a.result).successful, true)
        assert.strictEqual((yield* b.result).successful, true)
        const c = yield* pool.push(Task.make({ name: "c", execute: Effect.succeed(3) }))
        yield* TestClock.adjust(100)
        assert.deepStrictEqual((yield* c.result).exit, Exit.succeed(3))
      }))
  })

  describe("failure queue", () => {
    it.effect("streams failed results oldest first", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0 })
        for (const name of ["one", "two", "three"]) {
          yield* pool.push(Task.make({ name, execute: Effect.fail(name) }))
        }
        yield* pool.push(Task.make({ name: "ok", execute: Effect.void }))
        yield* TestClock.adjust(100)
        const failed = yield* Stream.runCollect(Stream.take(pool.failures, 3))
        assert.deepStrictEqual(failed.map((r) => r.name), ["one", "two", "three"])
        assert.isTrue(failed.every((r) => !r.successful))
      }))

    it.effect("drops the oldest unread results beyond maxFailedTasks and counts them", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0, maxFailedTasks: 2 })
        for (const name of ["one", "two", "three", "four"]) {
          yield* pool.push(Task.make({ name, execute: Effect.fail(name) }))
        }
        yield* TestClock.adjust(100)
        const stats = yield* pool.stats
        assert.strictEqual(stats.failed, 4)
        assert.strictEqual(stats.droppedFailures, 2)
        yield* close
        const unread = yield* Stream.runCollect(pool.failures)
        assert.deepStrictEqual(unread.map((r) => r.name), ["three", "four"])
      }))

    it.effect("with maxFailedTasks 0 every failure is dropped and counted", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0, maxFailedTasks: 0 })
        yield* pool.push(Task.make({ name: "x", execute: Effect.fail("x") }))
        yield* pool.push(Task.make({ name: "y", execute: Effect.fail("y") }))
        yield* TestClock.adjust(100)
        yield* close
        assert.strictEqual((yield* pool.stats).droppedFailures, 2)
        assert.deepStrictEqual(yield* Stream.runCollect(pool.failures), [])
      }))
  })

  describe("backpressure", () => {
    const blocker = (gate: Deferred.Deferred<void>) => Task.make({ name: "blocker", execute: Deferred.await(gate) })

    it.effect("with maxBlockMs 0 a push into a full pool fails at once with PoolFullError", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxTaskNum: 2, maxBlockMs: 0 })
        const gate = yield* Deferred.make<void>()
        yield* pool.push(blocker(gate))
        yield* pool.push(blocker(gate))
        const error = yield* Effect.flip(pool.push(blocker(gate)))
        assert.instanceOf(error, PoolFullError)
        assert.include(error.message, "maxTaskNum = 2")
        assert.strictEqual((yield* pool.stats).pushed, 2)
      }))

    it.effect("waits up to maxBlockMs for room, then fails", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxTaskNum: 1, maxBlockMs: 500 })
        const gate = yield* Deferred.make<void>()
        yield* pool.push(blocker(gate))
        const waiting = yield* Effect.forkChild(Effect.flip(pool.push(blocker(gate))).pipe(Effect.zip(now)))
        yield* TestClock.adjust(499)
        assert.isUndefined(waiting.pollUnsafe())
        yield* TestClock.adjust(1)
        const [error, at] = yield* Fiber.join(waiting)
        assert.instanceOf(error, PoolFullError)
        assert.strictEqual(at, 500)
        assert.strictEqual((yield* pool.stats).pushed, 1)
      }))

    it.effect("a waiting push goes through when a task ends and frees room", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxTaskNum: 1, maxBlockMs: -1 })
        const gate = yield* Deferred.make<void>()
        yield* pool.push(blocker(gate))
        const waiting = yield* Effect.forkChild(pool.push(Task.make({ name: "next", execute: Effect.succeed("in") })))
        yield* TestClock.adjust(100_000)
        assert.isUndefined(waiting.pollUnsafe())
        yield* Deferred.succeed(gate, void 0)
        const handle = yield* Fiber.join(waiting)
        yield* TestClock.adjust(100)
        assert.deepStrictEqual((yield* handle.result).exit, Exit.succeed("in"))
        assert.strictEqual((yield* pool.stats).pushed, 2)
      }))

    it.effect("a push still waiting when the pool closes fails with PoolClosedError", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxTaskNum: 1, maxBlockMs: -1, shutdownTimeoutMs: 1000 })
        const gate = yield* Deferred.make<void>()
        yield* pool.push(blocker(gate))
        const waiting = yield* Effect.forkChild(Effect.flip(pool.push(blocker(gate))))
        yield* TestClock.adjust(10)
        const closing = yield* Effect.forkChild(close)
        yield* TestClock.adjust(0)
        assert.instanceOf(yield* Fiber.join(waiting), PoolClosedError)
        yield* TestClock.adjust(1000)
        yield* Fiber.join(closing)
        assert.strictEqual((yield* pool.stats).pushed, 1)
      }))

    it.effect("a push interrupted while waiting for room leaves no trace", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, maxTaskNum: 1, maxBlockMs: -1 })
        const gate = yield* Deferred.make<void>()
        yield* pool.push(blocker(gate))
        const waiting = yield* Effect.forkChild(pool.push(blocker(gate)))
        yield* TestClock.adjust(10)
        yield* Fiber.interrupt(waiting)
        yield* Deferred.succeed(gate, void 0)
        yield* TestClock.adjust(100)
        assert.strictEqual((yield* pool.stats).pushed, 1)
        const next = yield* pool.push(Task.make({ name: "room", execute: Effect.void }))
        yield* TestClock.adjust(100)
        assert.isTrue((yield* next.result).successful)
      }))
  })

  describe("awaitIdle", () => {
    it.effect("waits until no unfinished task is held", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, baseRetryBackOffMs: 1000 })
        yield* pool.awaitIdle
        yield* pool.push(Task.make({ name: "retry", execute: failingFirst(1) }))
        const idle = yield* Effect.forkChild(Effect.andThen(pool.awaitIdle, now))
        yield* TestClock.adjust(1099)
        assert.isUndefined(idle.pollUnsafe())
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Fiber.join(idle), 1100)
      }))
  })

  describe("close", () => {
    it.effect("new pushes fail with PoolClosedError; handles and stats still answer", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100 })
        const handle = yield* pool.push(Task.make({ name: "before", execute: Effect.succeed(1) }))
        yield* close
        const error = yield* Effect.flip(pool.push(Task.make({ name: "after", execute: Effect.void })))
        assert.instanceOf(error, PoolClosedError)
        assert.deepStrictEqual((yield* handle.result).exit, Exit.succeed(1))
        assert.deepStrictEqual(yield* pool.stats, {
          lingering: 0, queued: 0, running: 0, retrying: 0, succeeded: 1, failed: 0, pushed: 1, droppedFailures: 0,
          paused: false, maxIoWorkerNum: 50
        })
      }))

    it.effect("dispatches lingering tasks at once", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 5000 })
        const { events, mark } = timeline()
        yield* pool.push(Task.make({ name: "lingering", execute: mark("run") }))
        yield* TestClock.adjust(10)
        yield* close
        assert.deepStrictEqual(events, [["run", 10]])
      }))

    it.effect("a safe close waits for every task, retries and backoffs included, and its callback", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, baseRetryBackOffMs: 1000 })
        const ended: Array<string> = []
        const onEnd = (result: TaskResult<unknown, unknown>) =>
          Effect.andThen(Effect.sleep(50), Effect.sync(() => void ended.push(result.name)))
        yield* pool.push(Task.make({ name: "retrying", execute: failingFirst(2), onSuccess: onEnd }))
        yield* pool.push(Task.make({ name: "slow", execute: Effect.sleep(5000), onSuccess: onEnd }))
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(10_000)
        assert.strictEqual(yield* Fiber.join(closing), 5050)
        assert.deepStrictEqual(ended.sort(), ["retrying", "slow"])
        const stats = yield* pool.stats
        assert.strictEqual(stats.succeeded, 2)
        assert.strictEqual(stats.lingering + stats.queued + stats.running + stats.retrying, 0)
      }))

    it.effect("a limited close interrupts what is left after shutdownTimeoutMs; each ends Interrupted and its onFail runs", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1, baseRetryBackOffMs: 60_000, shutdownTimeoutMs: 1000 })
        const failed: Array<TaskResult<unknown, unknown>> = []
        const onFail = (result: TaskResult<unknown, unknown>) => Effect.sync(() => void failed.push(result))
        // One worker: each push is a full batch, queued at once.
        const backingOff = yield* pool.push(Task.make({ name: "backing-off", execute: failingFirst(1), onFail }))
        yield* TestClock.adjust(100)
        const running = yield* pool.push(Task.make({ name: "running", execute: Effect.sleep(60_000), onFail }))
        const queued = yield* pool.push(Task.make({ name: "queued", execute: Effect.void, onFail }))
        const quick = yield* pool.push(Task.make({ name: "quick-finisher", execute: Effect.void, onFail }))
        yield* TestClock.adjust(50)
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(999)
        assert.isUndefined(closing.pollUnsafe())
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Fiber.join(closing), 1150)
        for (const handle of [backingOff, running, queued, quick]) {
          const result = yield* handle.result
          assert.strictEqual(result.successful, false)
          assert.strictEqual(result.errorCode, "Interrupted")
        }
        assert.deepStrictEqual(failed.map((r) => r.name).sort(), ["backing-off", "queued", "quick-finisher", "running"])
        const cutOff = yield* running.result
        assert.deepStrictEqual(cutOff.attempts.map((a) => [a.startedAtMs, a.endedAtMs, a.errorCode]), [[100, 1150, "Interrupted"]])
        assert.isTrue(Exit.isFailure(cutOff.exit) && Cause.hasInterruptsOnly(cutOff.exit.cause))
        assert.deepStrictEqual((yield* queued.result).attempts, [])
        assert.deepStrictEqual((yield* backingOff.result).attempts.map((a) => a.errorCode), ["Flaky"])
        const stats = yield* pool.stats
        assert.strictEqual(stats.failed, 4)
        assert.strictEqual(stats.lingering + stats.queued + stats.running + stats.retrying, 0)
      }))

    it.effect("a limited close returns as soon as the pool is idle when that comes first", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, shutdownTimeoutMs: 10_000 })
        const handle = yield* pool.push(Task.make({ name: "short", execute: Effect.sleep(300) }))
        const closing = yield* Effect.forkChild(Effect.andThen(close, now))
        yield* TestClock.adjust(10_000)
        assert.strictEqual(yield* Fiber.join(closing), 300)
        assert.isTrue((yield* handle.result).successful)
      }))

    it.effect("close({ timeoutMs }) closes now with its own limit; later closes wait for that one", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100 })
        const handle = yield* pool.push(Task.make({ name: "long", execute: Effect.sleep(60_000) }))
        yield* TestClock.adjust(100)
        const first = yield* Effect.forkChild(Effect.andThen(pool.close({ timeoutMs: 10 }), now))
        const second = yield* Effect.forkChild(Effect.andThen(pool.close(), now))
        yield* TestClock.adjust(10)
        assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [110, 110])
        assert.strictEqual((yield* handle.result).errorCode, "Interrupted")
        yield* close
        assert.instanceOf(yield* Effect.flip(pool.push(Task.make({ name: "late", execute: Effect.void }))), PoolClosedError)
      }))

    it.effect("close({ timeoutMs }) overrides the config's shutdownTimeoutMs", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100, shutdownTimeoutMs: 5 })
        const handle = yield* pool.push(Task.make({ name: "thirty", execute: Effect.sleep(30) }))
        const closing = yield* Effect.forkChild(pool.close({ timeoutMs: 5000 }))
        yield* TestClock.adjust(100)
        yield* Fiber.join(closing)
        assert.isTrue((yield* handle.result).successful)
      }))

    it.effect("close rejects a timeoutMs that is not an integer >= 0", () =>
      Effect.gen(function*() {
        const { pool } = yield* openPool({ lingerMs: 100 })
        const exit = yield* Effect.exit(pool.close({ timeoutMs: -1 }))
        assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
        assert.strictEqual((yield* pool.stats).pushed, 0)
        yield* pool.push(Task.make({ name: "still-open", execute: Effect.void }))
      }))

    it.effect("the failure stream ends once the pool has closed and its entries are read", () =>
      Effect.gen(function*() {
        const { pool, close } = yield* openPool({ lingerMs: 100, maxRetryTimes: 0 })
        yield* pool.push(Task.make({ name: "bad", execute: Effect.fail("bad") }))
        const reader = yield* Effect.forkChild(Stream.runCollect(pool.failures))
        yield* TestClock.adjust(100)
        yield* close
        const read = yield* Fiber.join(reader)
        assert.deepStrictEqual(read.map((r) => r.name), ["bad"])
      }))

    it.effect("the layer's scope is the pool: Effect.provide closes it safely when the program ends", () =>
      Effect.gen(function*() {
        const ended: Array<string> = []
        const program = Effect.gen(function*() {
          yield* TaskPool.push(Task.make({
            name: "fire-and-forget",
            execute: Effect.sleep(1000),
            onSuccess: (r) => Effect.sync(() => void ended.push(r.name))
          }))
        }).pipe(Effect.provide(TaskPool.layer({ lingerMs: 100 })))
        const fiber = yield* Effect.forkChild(program)
        yield* TestClock.adjust(1100)
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(ended, ["fire-and-forget"])
      }))
  })

  it.effect("TaskPoolLive is a pool with the defaults: a task lingers the default 2000 ms", () =>
    Effect.gen(function*() {
      const handle = yield* TaskPool.push(Task.make({ name: "default", execute: Effect.void }))
      yield* TestClock.adjust(2000)
      assert.deepStrictEqual((yield* handle.result).attempts.map((a) => a.startedAtMs), [2000])
    }).pipe(Effect.provide(TaskPoolLive)))
})
