import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { TaskDefinition } from "../src/index.js"
import { Fatal, Flaky, memoryStore, now, openProducer, openWorker } from "./utils.js"

const Echo = TaskDefinition.make({
  name: "echo",
  payload: Schema.Struct({ text: Schema.String }),
  success: Schema.Struct({ echoed: Schema.String }),
  execute: ({ text }) => Effect.succeed({ echoed: text.toUpperCase() })
})

describe("DurableTaskPool", () => {
  it.effect("submit stores a task; a worker runs it; the result comes back with its attempts", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { pool } = yield* openWorker(store, [Echo])
      const handle = yield* pool.submit(Echo, { text: "hi" })
      const result = yield* handle.result
      expect(result.successful).toBe(true)
      expect(result.taskId).toBe(handle.taskId)
      expect(result.name).toBe("echo")
      expect(Exit.isSuccess(result.exit) && result.exit.value).toEqual({ echoed: "HI" })
      expect(result.attemptCount).toBe(1)
      expect(result.attempts.map((attempt) => attempt.success)).toEqual([true])
    }))

  it.effect("retries follow min(base * 2^(n-1), max); the last failure is the result", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const starts: Array<number> = []
      const Failing = TaskDefinition.make({
        name: "failing",
        payload: Schema.Number,
        execute: () => Effect.flatMap(now, (at) => Effect.fail(new Flaky({ message: `at ${starts.push(at) && at}` })))
      })
      const { pool } = yield* openWorker(store, [Failing], { maxRetryTimes: 3, baseRetryBackOffMs: 100, maxRetryBackOffMs: 300 })
      const handle = yield* pool.submit(Failing, 1)
      const waiting = yield* Effect.forkChild(handle.result)
      yield* TestClock.adjust(10_000)
      const result = yield* Fiber.join(waiting)
      expect(starts).toEqual([0, 100, 300, 600])
      expect(result.successful).toBe(false)
      expect(result.attemptCount).toBe(4)
      expect(result.errorCode).toBe("Flaky")
      expect(result.exit).toEqual(Exit.fail({ _tag: "Flaky", message: "at 600" }))
    }))

  it.effect("a producer in another pool awaits the result a worker wrote", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      yield* openWorker(store, [Echo])
      const producer = yield* openProducer(store, [Echo])
      const handle = yield* producer.pool.submit(Echo, { text: "x" })
      const result = yield* producer.pool.handle(Echo, handle.taskId).result
      expect(Exit.isSuccess(result.exit) && result.exit.value).toEqual({ echoed: "X" })
    }))
})

describe("DurableTaskPool: retries and ends", () => {
  const failingDefinition = (options: { readonly name: string; readonly failures: number; readonly retryable?: (e: Flaky | Fatal) => boolean }) => {
    let runs = 0
    return TaskDefinition.make({
      name: options.name,
      payload: Schema.Number,
      execute: () => Effect.suspend(() =>
        ++runs <= options.failures ? Effect.fail(new Flaky({ message: `run ${runs}` })) : Effect.succeed(runs)
      ),
      ...(options.retryable === undefined ? {} : { retryable: options.retryable })
    })
  }

  it.effect("a task that fails then succeeds keeps every attempt, the failed ones with their error code", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Twice = failingDefinition({ name: "twice", failures: 2 })
      const { pool } = yield* openWorker(store, [Twice], { baseRetryBackOffMs: 50 })
      const handle = yield* pool.submit(Twice, 0)
      const waiting = yield* Effect.forkChild(handle.result)
      yield* TestClock.adjust(1000)
      const result = yield* Fiber.join(waiting)
      expect(result.successful).toBe(true)
      expect(result.exit).toEqual(Exit.succeed(3))
      expect(result.attempts.map((attempt) => [attempt.number, attempt.success, attempt.errorCode])).toEqual([
        [1, false, "Flaky"],
        [2, false, "Flaky"],
        [3, true, undefined]
      ])
    }))

  it.effect("retryable false ends the task at its first failure", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Never = failingDefinition({ name: "never", failures: 5, retryable: () => false })
      const { pool } = yield* openWorker(store, [Never])
      const result = yield* Effect.flatMap(pool.submit(Never, 0), (handle) => handle.result)
      expect(result.successful).toBe(false)
      expect(result.attemptCount).toBe(1)
    }))

  it.effect("a definition's own retry settings override the pool's", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const starts: Array<number> = []
      const Own = TaskDefinition.make({
        name: "own",
        payload: Schema.Number,
        maxRetryTimes: 2,
        baseRetryBackOffMs: 1000,
        maxRetryBackOffMs: 1500,
        execute: () => Effect.flatMap(now, (at) => Effect.fail(new Flaky({ message: String(starts.push(at)) })))
      })
      const { pool } = yield* openWorker(store, [Own], { maxRetryTimes: 10, baseRetryBackOffMs: 1 })
      const waiting = yield* Effect.forkChild(Effect.flatMap(pool.submit(Own, 0), (handle) => handle.result))
      yield* TestClock.adjust(10_000)
      const result = yield* Fiber.join(waiting)
      expect(starts).toEqual([0, 1000, 2500])
      expect(result.attemptCount).toBe(3)
    }))

  it.effect("an attempt past its timeout fails with errorCode Timeout and is retried", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Slow = TaskDefinition.make({
        name: "slow",
        payload: Schema.Number,
        timeout: "1 second",
        execute: () => Effect.sleep("1 minute")
      })
      const { pool } = yield* openWorker(store, [Slow], { maxRetryTimes: 1, baseRetryBackOffMs: 0 })
      const waiting = yield* Effect.forkChild(Effect.flatMap(pool.submit(Slow, 0), (handle) => handle.result))
      yield* TestClock.adjust(5000)
      const result = yield* Fiber.join(waiting)
      expect(result.attempts.map((attempt) => [attempt.errorCode, attempt.endedAtMs - attempt.startedAtMs])).toEqual([
        ["Timeout", 1000],
        ["Timeout", 1000]
      ])
      expect(result.errorCode).toBe("Timeout")
      expect(Exit.isFailure(result.exit)).toBe(true)
    }))

  it.effect("a result keeps the newest maxReservedAttempts attempts and counts them all", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Many = failingDefinition({ name: "many", failures: 100 })
      const { pool } = yield* openWorker(store, [Many], { maxRetryTimes: 5, maxReservedAttempts: 2, baseRetryBackOffMs: 0 })
      const result = yield* Effect.flatMap(pool.submit(Many, 0), (handle) => handle.result)
      expect(result.attemptCount).toBe(6)
      expect(result.attempts.map((attempt) => attempt.number)).toEqual([5, 6])
    }))

  it.effect("a defect fails the attempt with errorCode Defect; the stored defect comes back as data", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Boom = TaskDefinition.make({ name: "boom", payload: Schema.Number, execute: () => Effect.die(new Error("boom")) })
      const { pool } = yield* openWorker(store, [Boom], { maxRetryTimes: 0 })
      const result = yield* Effect.flatMap(pool.submit(Boom, 0), (handle) => handle.result)
      expect(result.errorCode).toBe("Defect")
      expect(result.errorMessage).toBe("boom")
      expect(result.exit).toEqual(Exit.die({ name: "Error", message: "boom" }))
    }))
})

describe("DurableTaskPool: submit options", () => {
  it.effect("a second submit with the same idempotencyKey stores nothing and returns the first handle", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      let runs = 0
      const Once = TaskDefinition.make({ name: "once", payload: Schema.Number, execute: (n) => Effect.sync(() => (runs++, n)) })
      const { pool } = yield* openWorker(store, [Once])
      const first = yield* pool.submit(Once, 1, { idempotencyKey: "order-7" })
      const second = yield* pool.submit(Once, 2, { idempotencyKey: "order-7" })
      expect(second.taskId).toBe(first.taskId)
      expect((yield* second.result).exit).toEqual(Exit.succeed(1))
      const again = yield* pool.submit(Once, 3, { idempotencyKey: "order-7" })
      expect(again.taskId).toBe(first.taskId)
      expect(runs).toBe(1)
      expect((yield* pool.stats).total).toBe(1)
    }))

  it.effect("delay holds the first attempt back", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const starts: Array<number> = []
      const Later = TaskDefinition.make({ name: "later", payload: Schema.Number, execute: () => Effect.flatMap(now, (at) => Effect.sync(() => starts.push(at))) })
      const { pool } = yield* openWorker(store, [Later])
      const handle = yield* pool.submit(Later, 0, { delay: "3 seconds" })
      yield* TestClock.adjust(2999)
      expect(starts).toEqual([])
      expect((yield* pool.stats).queued).toBe(1)
      yield* TestClock.adjust(1)
      yield* handle.result
      expect(starts).toEqual([3000])
    }))

  it.effect("a payload its schema refuses fails submit with a SchemaError, and nothing is stored", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { pool } = yield* openProducer(store, [Echo])
      const error = yield* Effect.flip(pool.submit(Echo, { text: 42 } as unknown as { text: string }))
      expect(error._tag).toBe("SchemaError")
      expect(error.message).toContain("text")
      expect((yield* pool.stats).total).toBe(0)
    }))

  it.effect("bad submit options fail with a SchemaError naming the option", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { pool } = yield* openProducer(store, [Echo])
      const badKey = yield* Effect.flip(pool.submit(Echo, { text: "a" }, { idempotencyKey: "" }))
      expect(badKey.message).toContain("idempotencyKey")
      const badDelay = yield* Effect.flip(pool.submit(Echo, { text: "a" }, { delay: "soon" as never }))
      expect(badDelay.message).toContain("delay")
      expect(badDelay.message).toContain("expected a duration >= 0")
      expect((yield* pool.stats).total).toBe(0)
    }))
})

describe("DurableTaskPool: failures, requeue and stats", () => {
  it.effect("failures streams failed results oldest first and follows new ones", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Reject = TaskDefinition.make({
        name: "reject",
        payload: Schema.Number,
        execute: (n) => n < 0 ? Effect.fail(new Fatal({ message: `bad ${n}` })) : Effect.succeed(n)
      })
      const { pool } = yield* openWorker(store, [Reject], { maxRetryTimes: 0 })
      for (const n of [-1, 2, -3]) yield* Effect.flatMap(pool.submit(Reject, n), (handle) => handle.result)
      const reading = yield* Effect.forkChild(Stream.runCollect(Stream.take(pool.failures, 3)))
      yield* Effect.yieldNow
      yield* Effect.flatMap(pool.submit(Reject, -4), (handle) => handle.result)
      const failed = yield* Fiber.join(reading)
      expect(failed.map((result) => result.errorMessage)).toEqual(["bad -1", "bad -3", "bad -4"])
      expect(failed.every((result) => !result.successful && result.name === "reject")).toBe(true)
    }))

  it.effect("requeue runs a failed task again with a fresh retry budget; the same id, a new result", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      let fixed = false
      const Fixable = TaskDefinition.make({
        name: "fixable",
        payload: Schema.Number,
        execute: (n) => fixed ? Effect.succeed(n * 2) : Effect.fail(new Flaky({ message: "not yet" }))
      })
      const { pool } = yield* openWorker(store, [Fixable], { maxRetryTimes: 1, baseRetryBackOffMs: 0 })
      const handle = yield* pool.submit(Fixable, 21)
      const failed = yield* handle.result
      expect(failed.attemptCount).toBe(2)
      fixed = true
      const requeued = yield* pool.requeue(handle.taskId)
      expect(requeued.taskId).toBe(handle.taskId)
      const result = yield* requeued.result
      expect(result.exit).toEqual(Exit.succeed(42))
      expect(result.attemptCount).toBe(1)
      expect((yield* pool.stats)).toMatchObject({ succeeded: 1, failed: 0, total: 1 })
    }))

  it.effect("requeue refuses a task that is not failed, naming its state", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { pool } = yield* openWorker(store, [Echo])
      const handle = yield* pool.submit(Echo, { text: "ok" })
      yield* handle.result
      const succeeded = yield* Effect.flip(pool.requeue(handle.taskId))
      expect(succeeded).toMatchObject({ _tag: "TaskNotFailedError", state: "succeeded", taskId: handle.taskId })
      const unknown = yield* Effect.flip(pool.requeue("no-such-task"))
      expect(unknown).toMatchObject({ _tag: "TaskNotFailedError", state: "missing" })
    }))

  it.effect("stats counts tasks by state across pools sharing the store", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Gate = TaskDefinition.make({ name: "gate", payload: Schema.Number, execute: () => Effect.sleep("10 seconds") })
      const producer = yield* openProducer(store, [Gate])
      for (let i = 0; i < 5; i++) yield* producer.pool.submit(Gate, i)
      expect(yield* producer.pool.stats).toEqual({ queued: 5, running: 0, retrying: 0, succeeded: 0, failed: 0, total: 5 })
      yield* openWorker(store, [Gate], { maxIoWorkerNum: 2 })
      yield* TestClock.adjust(1)
      expect(yield* producer.pool.stats).toMatchObject({ queued: 3, running: 2 })
      yield* TestClock.adjust(30_000)
      expect(yield* producer.pool.stats).toMatchObject({ queued: 0, running: 0, succeeded: 5 })
    }))
})

describe("DurableTaskPool: close", () => {
  it.effect("a safe close stops claiming at once and lets running attempts finish", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Work = TaskDefinition.make({ name: "work", payload: Schema.Number, execute: (n) => Effect.as(Effect.sleep("5 seconds"), n) })
      const worker = yield* openWorker(store, [Work], { maxIoWorkerNum: 1 })
      const first = yield* worker.pool.submit(Work, 1)
      const second = yield* worker.pool.submit(Work, 2)
      yield* TestClock.adjust(1000)
      const closing = yield* Effect.forkChild(worker.close)
      yield* TestClock.adjust(4000)
      yield* Fiber.join(closing)
      const producer = yield* openProducer(store, [Work])
      expect((yield* producer.pool.handle(Work, first.taskId).result).exit).toEqual(Exit.succeed(1))
      expect(yield* producer.pool.stats).toMatchObject({ queued: 1, succeeded: 1, running: 0 })
      const next = yield* openWorker(store, [Work])
      const waiting = yield* Effect.forkChild(next.pool.handle(Work, second.taskId).result)
      yield* TestClock.adjust(5000)
      expect((yield* Fiber.join(waiting)).attemptCount).toBe(1)
    }))

  it.effect("a limited close interrupts attempts after shutdownTimeoutMs; they go back to the store uncounted", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const starts: Array<number> = []
      const Long = TaskDefinition.make({
        name: "long",
        payload: Schema.Number,
        execute: (n) => Effect.flatMap(now, (at) => Effect.as(Effect.sleep(starts.push(at) === 1 ? "1 hour" : "1 second"), n))
      })
      const worker = yield* openWorker(store, [Long], { shutdownTimeoutMs: 500 })
      const handle = yield* worker.pool.submit(Long, 7)
      yield* TestClock.adjust(100)
      const closing = yield* Effect.forkChild(worker.close)
      yield* TestClock.adjust(500)
      yield* Fiber.join(closing)
      expect(yield* worker.pool.stats).toMatchObject({ queued: 1, running: 0 })
      const next = yield* openWorker(store, [Long])
      const waiting = yield* Effect.forkChild(next.pool.handle(Long, handle.taskId).result)
      yield* TestClock.adjust(2000)
      const result = yield* Fiber.join(waiting)
      expect(result.exit).toEqual(Exit.succeed(7))
      expect(result.attemptCount).toBe(1)
      expect(starts).toEqual([0, 600])
    }))

  it.effect("submit after the pool closed fails with PoolClosedError", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const producer = yield* openProducer(store, [Echo])
      yield* producer.close
      const error = yield* Effect.flip(producer.pool.submit(Echo, { text: "late" }))
      expect(error._tag).toBe("PoolClosedError")
    }))
})

describe("DurableTaskPool: config", () => {
  it.effect("layerWorker decodes the core's fields with the core's rules, into TaskPoolConfigError", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const error = yield* Effect.flip(openWorker(store, [Echo], { maxIoWorkerNum: 0, maxRetryTimes: 1.5 }))
      expect(error).toMatchObject({ _tag: "TaskPoolConfigError", fields: ["maxIoWorkerNum", "maxRetryTimes"] })
      expect(error.message).toContain("maxIoWorkerNum: expected an integer >= 1 and <= 10000, got 0")
    }))

  it.effect("fields that only make sense in one process are refused with the reason", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const error = yield* Effect.flip(openWorker(store, [Echo], { lingerMs: 200, maxTaskNum: 5 } as never))
      expect(error).toMatchObject({ _tag: "TaskPoolConfigError", fields: ["lingerMs", "maxTaskNum"] })
      expect(error.message).toContain("lingerMs: does not apply in durable mode")
    }))

  it.effect("two definitions under one name are refused: a name is a queue", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const Other = TaskDefinition.make({ name: "echo", payload: Schema.Number, execute: Effect.succeed })
      const error = yield* Effect.flip(openProducer(store, [Echo, Other]))
      expect(error).toMatchObject({ _tag: "TaskPoolConfigError", fields: ["definitions"] })
      expect(error.message).toContain('two definitions are named "echo"')
    }))
})
