import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, Metric, Option, References, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { Task } from "../src/index.js"
import { openPool } from "./utils.js"

let pools = 0
/** A pool name of its own, so each test reads only its own series. */
const uniqueName = () => `observed-${++pools}`

const counter = (name: string, pool: string) =>
  Effect.map(Metric.value(Metric.counter(name, { incremental: true, attributes: { pool } })), (state) => state.count)
const gauge = (name: string, pool: string) =>
  Effect.map(Metric.value(Metric.gauge(name, { attributes: { pool } })), (state) => state.value)
const histogram = (name: string, pool: string) =>
  Metric.value(Metric.histogram(name, { boundaries: [1], attributes: { pool } }))

/** A tracer that keeps every span it makes. */
const recordingTracer = () => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = Tracer.nativeTracer.span(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

describe("TaskPool observability", () => {
  it.effect("counters count pushes, ends, retried attempts, dropped failures and rejected pushes", () =>
    Effect.gen(function*() {
      const pool = uniqueName()
      const { pool: taskPool } = yield* openPool({
        name: pool,
        lingerMs: 100,
        maxRetryTimes: 1,
        baseRetryBackOffMs: 0,
        maxFailedTasks: 0,
        maxTaskNum: 3,
        maxBlockMs: 0
      })
      let runs = 0
      yield* taskPool.push(Task.make({ name: "ok", execute: Effect.void }))
      yield* taskPool.push(Task.make({ name: "once", execute: Effect.suspend(() => ++runs === 1 ? Effect.fail("x") : Effect.void) }))
      yield* taskPool.push(Task.make({ name: "never", execute: Effect.fail("y") }))
      yield* Effect.flip(taskPool.push(Task.make({ name: "refused", execute: Effect.void })))
      yield* TestClock.adjust(100)
      assert.strictEqual(yield* counter("taskpool_tasks_pushed", pool), 3)
      assert.strictEqual(yield* counter("taskpool_tasks_succeeded", pool), 2)
      assert.strictEqual(yield* counter("taskpool_tasks_failed", pool), 1)
      assert.strictEqual(yield* counter("taskpool_attempts_retried", pool), 2)
      assert.strictEqual(yield* counter("taskpool_failures_dropped", pool), 1)
      assert.strictEqual(yield* counter("taskpool_pushes_rejected", pool), 1)
    }))

  it.effect("gauges show lingering, queued, running and retrying tasks", () =>
    Effect.gen(function*() {
      const pool = uniqueName()
      const { pool: taskPool } = yield* openPool({ name: pool, lingerMs: 100, maxIoWorkerNum: 2, baseRetryBackOffMs: 1000 })
      yield* taskPool.push(Task.make({ name: "retrying", execute: Effect.fail("later") }))
      yield* taskPool.push(Task.make({ name: "slow-1", execute: Effect.sleep(5000) }))
      yield* TestClock.adjust(0)
      yield* taskPool.push(Task.make({ name: "slow-2", execute: Effect.sleep(5000) }))
      yield* taskPool.push(Task.make({ name: "queued", execute: Effect.void }))
      yield* taskPool.push(Task.make({ name: "lingering", execute: Effect.void }))
      yield* TestClock.adjust(0)
      assert.deepStrictEqual(
        [
          yield* gauge("taskpool_tasks_lingering", pool),
          yield* gauge("taskpool_tasks_queued", pool),
          yield* gauge("taskpool_tasks_running", pool),
          yield* gauge("taskpool_tasks_retrying", pool)
        ],
        [1, 1, 2, 1]
      )
    }))

  it.effect("histograms record attempt durations, queue waits and end-to-end times", () =>
    Effect.gen(function*() {
      const pool = uniqueName()
      const { pool: taskPool } = yield* openPool({ name: pool, lingerMs: 100, maxRetryTimes: 1, baseRetryBackOffMs: 50 })
      let runs = 0
      yield* taskPool.push(Task.make({
        name: "twice",
        execute: Effect.andThen(Effect.sleep(30), Effect.suspend(() => ++runs === 1 ? Effect.fail("x") : Effect.void))
      }))
      yield* TestClock.adjust(1000)
      const attempts = yield* histogram("taskpool_attempt_duration_ms", pool)
      assert.deepStrictEqual([attempts.count, attempts.sum, attempts.min, attempts.max], [2, 60, 30, 30])
      const wait = yield* histogram("taskpool_queue_wait_ms", pool)
      assert.deepStrictEqual([wait.count, wait.sum], [1, 100])
      const total = yield* histogram("taskpool_task_duration_ms", pool)
      // linger 100 + attempt 30 + backoff 50 + attempt 30
      assert.deepStrictEqual([total.count, total.sum], [1, 210])
      assert.deepStrictEqual(total.buckets.find(([boundary]) => boundary === 250), [250, 1])
    }))

  it.effect("a traced push gets a task span with a child span per attempt", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const { pool } = yield* openPool({ name: uniqueName(), lingerMs: 100, maxRetryTimes: 1, baseRetryBackOffMs: 0 })
      let runs = 0
      const handle = yield* pool.push(Task.make({
        name: "traced",
        execute: Effect.suspend(() => ++runs === 1 ? Effect.fail({ _tag: "Busy" }) : Effect.void)
      })).pipe(Effect.withSpan("request"), Effect.provideService(Tracer.Tracer, tracer))
      yield* TestClock.adjust(100)
      yield* handle.result
      const [request, task, ...attempts] = spans
      assert.strictEqual(request?.name, "request")
      assert.strictEqual(task?.name, "taskpool.task")
      assert.strictEqual(Option.getOrUndefined(task!.parent)?.spanId, request!.spanId)
      assert.strictEqual(task!.attributes.get("taskpool.task.id"), handle.taskId)
      assert.strictEqual(task!.attributes.get("taskpool.task.name"), "traced")
      assert.strictEqual(task!.attributes.get("taskpool.outcome"), "success")
      assert.strictEqual(task!.attributes.get("taskpool.attempts"), 2)
      assert.strictEqual(task!.status._tag, "Ended")
      assert.deepStrictEqual(
        attempts.map((span) => [
          span.name,
          Option.getOrUndefined(span.parent)?.spanId === task!.spanId,
          span.attributes.get("taskpool.attempt"),
          span.attributes.get("taskpool.outcome"),
          span.attributes.get("taskpool.error_code")
        ]),
        [["taskpool.attempt", true, 1, "failure", "Busy"], ["taskpool.attempt", true, 2, "success", undefined]]
      )
    }))

  it.effect("without a tracer installed no span is made", () =>
    Effect.gen(function*() {
      const { pool } = yield* openPool({ name: uniqueName(), lingerMs: 100 })
      const parents: Array<boolean> = []
      const handle = yield* pool.push(Task.make({
        name: "untraced",
        execute: Effect.flatMap(Effect.option(Effect.currentParentSpan), (span) => Effect.sync(() => void parents.push(Option.isSome(span))))
      }))
      yield* TestClock.adjust(100)
      yield* handle.result
      assert.deepStrictEqual(parents, [false])
    }))

  it.effect("log lines inside execute and callbacks carry taskId and taskName", () =>
    Effect.gen(function*() {
      const annotations: Array<unknown> = []
      const logger = Logger.make((options) =>
        void annotations.push(options.fiber.getRef(References.CurrentLogAnnotations))
      )
      const { pool } = yield* openPool({ name: uniqueName(), lingerMs: 100 })
      const handle = yield* pool.push(Task.make({
        name: "chatty",
        execute: Effect.log("working"),
        onSuccess: () => Effect.log("done")
      })).pipe(Effect.provideService(References.CurrentLoggers, new Set([logger])), Effect.annotateLogs({ request: "r1" }))
      yield* TestClock.adjust(100)
      yield* handle.result
      assert.deepStrictEqual(annotations, [
        { request: "r1", taskId: handle.taskId, taskName: "chatty" },
        { request: "r1", taskId: handle.taskId, taskName: "chatty" }
      ])
    }))
})
