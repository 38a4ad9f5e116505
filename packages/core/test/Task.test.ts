/**
 * The boundary behaviour the reliability issue asks for, written before `src`
 * had it (see the report on the issue):
 *
 * 1. `Task.make` checks its options at the boundary. Bad options throw a
 *    `TypeError` at the call, whose message starts with `Task.make:` and names
 *    the option (`Task.make: name must be a non-empty string, got ""`):
 *    `name` a non-empty string, `execute` an Effect, `onSuccess` / `onFail` /
 *    `retryable` functions when given, `timeout` a valid `Duration.Input` >= 0.
 *    `push` checks the same of whatever it is given (plain JavaScript callers
 *    can hand it anything): a bad task dies at `push` with that `TypeError`
 *    (prefixed `TaskPool.push:`) and leaves no trace; it never reaches a
 *    worker, so it cannot kill one.
 *
 * 2. A callback that never returns (`onSuccess` / `onFail`):
 *    - safe close: waits for it forever, like a task that never ends (tested,
 *      and passing, in TaskPool.reliability.test.ts);
 *    - limited close: still returns on time. At the deadline (close start +
 *      `shutdownTimeoutMs`) the callbacks still running, and the `onFail` of
 *      the tasks the close interrupts (started at once, concurrently), get at
 *      most `shutdownTimeoutMs` more; whatever is still running then is
 *      interrupted (and logged). Every task settles either way: its handle
 *      completes with its result, the counters and the failure queue count it.
 *      So a limited close returns within 2 × `shutdownTimeoutMs` of its start.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Task } from "../src/index.js"
import type { Task as TaskType, TaskResult } from "../src/index.js"
import { now, openPool } from "./utils.js"

/** Calls `Task.make` with options its types would refuse, as plain JavaScript can. */
const makeUnchecked = (options: Record<string, unknown>) =>
  Task.make(options as unknown as Parameters<typeof Task.make>[0])

const assertBoundaryError = (f: () => unknown, option: string) => {
  let thrown: unknown
  try {
    f()
  } catch (error) {
    thrown = error
  }
  assert.instanceOf(thrown, TypeError, `a bad ${option} should throw a TypeError at Task.make`)
  const message = (thrown as TypeError).message
  assert.match(message, /^Task\.make: /, message)
  assert.include(message, option, message)
}

describe("Task.make validates its options at the boundary", () => {
  it("an empty or missing name", () => {
    assertBoundaryError(() => makeUnchecked({ name: "", execute: Effect.void }), "name")
    assertBoundaryError(() => makeUnchecked({ execute: Effect.void }), "name")
    assertBoundaryError(() => makeUnchecked({ name: 42, execute: Effect.void }), "name")
  })

  it("an execute that is not an Effect", () => {
    for (const execute of [undefined, 42, "run", () => Effect.void, Promise.resolve(1), { _tag: "Success" }]) {
      assertBoundaryError(() => makeUnchecked({ name: "t", execute }), "execute")
    }
  })

  it("callbacks and retryable that are not functions", () => {
    for (const option of ["onSuccess", "onFail", "retryable"]) {
      for (const value of [42, "log", Effect.void, null]) {
        assertBoundaryError(() => makeUnchecked({ name: "t", execute: Effect.void, [option]: value }), option)
      }
    }
  })

  it("a timeout that is not a duration", () => {
    for (const timeout of ["soon", -5, Number.NaN, {}]) {
      assertBoundaryError(() => makeUnchecked({ name: "t", execute: Effect.void, timeout }), "timeout")
    }
  })

  it("a retrySchedule that is not a Schedule", () => {
    for (const retrySchedule of [42, "300 millis", () => Effect.void, Effect.void, {}, null]) {
      assertBoundaryError(() => makeUnchecked({ name: "t", execute: Effect.void, retrySchedule }), "retrySchedule")
    }
  })

  it("a Schedule is a valid retrySchedule and is kept as given", () => {
    const schedule = Schedule.spaced("300 millis")
    const task = Task.make({ name: "t", execute: Effect.fail("no"), retrySchedule: schedule })
    assert.strictEqual(task.retrySchedule, schedule)
    assert.isUndefined(Task.make({ name: "t", execute: Effect.void }).retrySchedule)
  })

  it("valid options still make a task", () => {
    const task = Task.make({ name: "t", execute: Effect.succeed(1), onSuccess: () => Effect.void, timeout: "1 second" })
    assert.strictEqual(task.name, "t")
  })
})

describe("push refuses a bad task at the boundary, never in a worker", () => {
  it.effect("a task that is not one dies at push, leaves no trace, and every worker keeps working", () =>
    Effect.gen(function*() {
      const { close, pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 1 })
      const bad = [null, { name: "x", execute: 42 }, { name: "", execute: Effect.void }] as unknown as Array<
        TaskType<unknown, unknown, never>
      >
      for (const task of bad) {
        const exit = yield* Effect.exit(pool.push(task))
        assert.isTrue(exit._tag === "Failure", "push of a bad task should not succeed")
        if (exit._tag === "Failure") {
          const defect = exit.cause.reasons.find((reason) => reason._tag === "Die")
          assert.isDefined(defect, "push of a bad task should die with a TypeError")
          assert.instanceOf(defect!._tag === "Die" ? defect.defect : undefined, TypeError)
        }
      }
      assert.strictEqual((yield* pool.stats).pushed, 0)
      const good = yield* pool.push(Task.make({ name: "good", execute: Effect.succeed("ok") }))
      yield* TestClock.adjust(100)
      assert.isTrue((yield* good.result).successful)
      yield* close
    }))
})

describe("push refuses a task whose retrySchedule is not a Schedule", () => {
  it.effect("it dies at push with a TypeError naming retrySchedule; nothing is pushed", () =>
    Effect.gen(function*() {
      const { close, pool } = yield* openPool({ lingerMs: 100 })
      const bad = { ...Task.make({ name: "t", execute: Effect.void }), retrySchedule: "300 millis" } as unknown as TaskType<void, never, never>
      const exit = yield* Effect.exit(pool.push(bad))
      const defect = exit._tag === "Failure" ? exit.cause.reasons.find((reason) => reason._tag === "Die") : undefined
      const error = defect?._tag === "Die" ? defect.defect : undefined
      assert.instanceOf(error, TypeError)
      assert.match((error as TypeError).message, /^TaskPool\.push: retrySchedule/)
      assert.strictEqual((yield* pool.stats).pushed, 0)
      yield* close
    }))
})

describe("a callback that never returns and the limited close", () => {
  const shutdownTimeoutMs = 1000
  /** The latest a limited close may return: the deadline, then as long again for callbacks. */
  const returnsBy = (closeAt: number) => closeAt + 2 * shutdownTimeoutMs

  it.effect("a never-returning onSuccess, running when the close starts: the limited close still returns on time", () =>
    Effect.gen(function*() {
      const { close, pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2, shutdownTimeoutMs })
      const stuck = yield* pool.push(Task.make({ name: "stuck", execute: Effect.succeed(1), onSuccess: () => Effect.never }))
      const fine = yield* pool.push(Task.make({ name: "fine", execute: Effect.sleep(200) }))
      yield* TestClock.adjust(150)
      const closing = yield* Effect.forkDetach(Effect.andThen(close, now))
      yield* TestClock.adjust(10 * shutdownTimeoutMs)
      const closedAt = closing.pollUnsafe()
      assert.isDefined(closedAt, "the limited close never returned")
      assert.isAtMost(yield* Fiber.join(closing), returnsBy(150))
      const result = yield* stuck.result
      assert.isTrue(result.successful, "the task succeeded; only its callback was cut off")
      assert.isTrue((yield* fine.result).successful)
      const stats = yield* pool.stats
      assert.strictEqual(stats.succeeded, 2)
      assert.strictEqual(stats.lingering + stats.queued + stats.running + stats.retrying, 0)
    }))

  it.effect("a never-returning onFail of a task the limited close interrupts: the close still returns on time", () =>
    Effect.gen(function*() {
      const { close, pool } = yield* openPool({ lingerMs: 100, maxIoWorkerNum: 2, shutdownTimeoutMs })
      const failed: Array<TaskResult<unknown, unknown>> = []
      const stuck = yield* pool.push(Task.make({ name: "stuck", execute: Effect.never, onFail: () => Effect.never }))
      const other = yield* pool.push(Task.make({
        name: "other",
        execute: Effect.never,
        onFail: (result) => Effect.sync(() => void failed.push(result))
      }))
      yield* TestClock.adjust(150)
      const closing = yield* Effect.forkDetach(Effect.andThen(close, now))
      yield* TestClock.adjust(10 * shutdownTimeoutMs)
      assert.isDefined(closing.pollUnsafe(), "the limited close never returned")
      assert.isAtMost(yield* Fiber.join(closing), returnsBy(150))
      for (const handle of [stuck, other]) {
        const result = yield* handle.result
        assert.strictEqual(result.errorCode, "Interrupted")
        assert.strictEqual(result.completedAtMs, 150 + shutdownTimeoutMs)
      }
      assert.deepStrictEqual(failed.map((r) => r.name), ["other"])
      const stats = yield* pool.stats
      assert.strictEqual(stats.failed, 2)
      assert.strictEqual(stats.lingering + stats.queued + stats.running + stats.retrying, 0)
    }))
})
