/**
 * The pool on the real stores, PostgreSQL and Redis, with each pool on a
 * store connection of its own, as separate processes would be. Real time:
 * the stores keep their own clocks. Waits are results and streams, never
 * sleeps; timing assertions have bounds for the store's resolution.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Schedule, Schema, Stream } from "effect"
import type { Context, Scope } from "effect"
import { DurableStore, TaskDefinition } from "../src/index.js"
import { freshDatabase } from "./pgServer.js"
import { Fatal, Flaky, openProducer, openWorker } from "./utils.js"

const redisUrl = process.env["REDIS_URL"]

/** A new connection to the test's store: one per simulated process. */
type Connect = () => Effect.Effect<Context.Context<DurableStore>, unknown, Scope.Scope>

interface StoreCase {
  readonly name: string
  /** A store of the test's own (a table, a key prefix), to connect to. */
  readonly fresh: () => Connect
  /** Backoffs and delays are kept to this resolution, rounded up. */
  readonly resolutionMs: number
}

let stores = 0

const pgCase = (): StoreCase => {
  // At collection time: `freshDatabase` drops the database after the file.
  const database = freshDatabase()
  return {
    name: "PostgreSQL",
    fresh: () => {
      const tableName = `pool_test_${++stores}`
      return () =>
        Effect.gen(function*() {
          const url = yield* Effect.promise(() => database)
          return yield* Layer.build(DurableStore.layerPg({ url, tableName, pollInterval: "20 millis" }))
        })
    },
    resolutionMs: 1000
  }
}

const redisCase = (): StoreCase => ({
  name: "Redis",
  fresh: () => {
    const prefix = `taskpool-pool-test:${process.pid}-${Date.now()}-${++stores}:`
    return () => Layer.build(DurableStore.layerRedis({ url: redisUrl ?? "", prefix, pollInterval: "20 millis" }))
  },
  resolutionMs: 1
})

if (redisUrl === undefined) console.log("Redis pool tests skipped: REDIS_URL is not set (.ci/run starts a Redis server).")

const suite = (name: string, make: () => StoreCase, skip = false) => {
  describe.skipIf(skip)(`DurableTaskPool on ${name}`, () => {
    const store = make()
    it.live("a producer's task runs on a worker of another process; the result comes back with its value", () =>
      Effect.gen(function*() {
        const connect = store.fresh()
        const Square = TaskDefinition.make({
          name: "square",
          payload: Schema.Struct({ n: Schema.Number }),
          success: Schema.Struct({ squared: Schema.Number }),
          execute: ({ n }) => Effect.succeed({ squared: n * n })
        })
        yield* openWorker(yield* connect(), [Square])
        const producer = yield* openProducer(yield* connect(), [Square])
        const handles = yield* Effect.forEach([1, 2, 3], (n) => producer.pool.submit(Square, { n }))
        const results = yield* Effect.forEach(handles, (handle) => handle.result)
        expect(results.map((result) => result.exit)).toEqual([1, 4, 9].map((squared) => Exit.succeed({ squared })))
        expect(results.every((result) => result.attemptCount === 1 && result.attempts[0]!.success)).toBe(true)
      }), 20_000)

    it.live("retries until success, then a final typed failure comes back as its JSON form", () =>
      Effect.gen(function*() {
        const connect = store.fresh()
        let runs = 0
        const Flip = TaskDefinition.make({
          name: "flip",
          payload: Schema.String,
          retryable: (error: Flaky | Fatal) => error._tag === "Flaky",
          execute: (mode) =>
            mode === "fatal"
              ? Effect.fail(new Fatal({ message: "no" }))
              : Effect.suspend(() => ++runs < 3 ? Effect.fail(new Flaky({ message: `run ${runs}` })) : Effect.succeed(runs))
        })
        const { pool } = yield* openWorker(yield* connect(), [Flip], { baseRetryBackOffMs: 0 })
        const flaky = yield* Effect.flatMap(pool.submit(Flip, "flaky"), (handle) => handle.result)
        expect(flaky.exit).toEqual(Exit.succeed(3))
        expect(flaky.attempts.map((attempt) => attempt.errorCode ?? "ok")).toEqual(["Flaky", "Flaky", "ok"])
        const fatal = yield* Effect.flatMap(pool.submit(Flip, "fatal"), (handle) => handle.result)
        expect(fatal.attemptCount).toBe(1)
        expect(fatal.errorCode).toBe("Fatal")
        expect(fatal.exit).toEqual(Exit.fail({ _tag: "Fatal", message: "no" }))
      }), 20_000)

    it.live(`the backoff is the formula, rounded up to the store's resolution (${store.resolutionMs} ms)`, () =>
      Effect.gen(function*() {
        const connect = store.fresh()
        let runs = 0
        const Once = TaskDefinition.make({
          name: "once",
          payload: Schema.Number,
          execute: () => Effect.suspend(() => ++runs === 1 ? Effect.fail(new Flaky({ message: "first" })) : Effect.succeed(runs))
        })
        const { pool } = yield* openWorker(yield* connect(), [Once], { baseRetryBackOffMs: 1200 })
        const result = yield* Effect.flatMap(pool.submit(Once, 0), (handle) => handle.result)
        const [first, second] = result.attempts
        const waited = second!.startedAtMs - first!.endedAtMs
        const expected = Math.ceil(1200 / store.resolutionMs) * store.resolutionMs
        expect(waited).toBeGreaterThanOrEqual(expected - 50)
        expect(waited).toBeLessThan(expected + 1000)
      }), 20_000)

    it.live("one idempotency key across producers stores one task", () =>
      Effect.gen(function*() {
        const connect = store.fresh()
        let runs = 0
        const Pay = TaskDefinition.make({ name: "pay", payload: Schema.Number, execute: (n) => Effect.sync(() => (runs++, n)) })
        const a = yield* openProducer(yield* connect(), [Pay])
        const b = yield* openProducer(yield* connect(), [Pay])
        const handles = yield* Effect.all(
          [a.pool.submit(Pay, 1, { idempotencyKey: "pay-1" }), b.pool.submit(Pay, 2, { idempotencyKey: "pay-1" })],
          { concurrency: "unbounded" }
        )
        expect(handles[0].taskId).toBe(handles[1].taskId)
        yield* openWorker(yield* connect(), [Pay])
        yield* handles[1].result
        expect(runs).toBe(1)
      }), 20_000)

    it.live("failures follows failed tasks from every process; requeue runs one again with a fresh budget", () =>
      Effect.gen(function*() {
        const connect = store.fresh()
        let healthy = false
        const Fragile = TaskDefinition.make({
          name: "fragile",
          payload: Schema.Number,
          execute: (n) => healthy ? Effect.succeed(n) : Effect.fail(new Fatal({ message: `down for ${n}` }))
        })
        const worker = yield* openWorker(yield* connect(), [Fragile], { maxRetryTimes: 0 })
        const watcher = yield* openProducer(yield* connect(), [Fragile])
        const first = yield* worker.pool.submit(Fragile, 1)
        yield* first.result
        const seen = yield* Stream.runCollect(Stream.take(watcher.pool.failures, 1))
        expect(seen.map((result) => [result.taskId, result.errorMessage])).toEqual([[first.taskId, "down for 1"]])
        healthy = true
        const again = yield* watcher.pool.requeue(first.taskId)
        const result = yield* again.result
        expect(result.exit).toEqual(Exit.succeed(1))
        expect(result.attemptCount).toBe(1)
        expect(yield* watcher.pool.stats).toMatchObject({ failed: 0, succeeded: 1 })
      }), 20_000)

    it.live("a safe close lets the running attempt finish; a limited close hands it to another process uncounted", () =>
      Effect.gen(function*() {
        const connect = store.fresh()
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        let stuckRuns = 0
        const Hold = TaskDefinition.make({
          name: "hold",
          payload: Schema.String,
          execute: (mode) =>
            Effect.gen(function*() {
              if (mode === "stuck") return yield* ++stuckRuns === 1 ? Effect.never : Effect.succeed(mode)
              yield* Deferred.succeed(started, undefined)
              yield* Deferred.await(release)
              return mode
            })
        })
        const safe = yield* openWorker(yield* connect(), [Hold])
        const kept = yield* safe.pool.submit(Hold, "kept")
        yield* Deferred.await(started)
        const closing = yield* Effect.forkChild(safe.close)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(closing)
        expect((yield* kept.result).exit).toEqual(Exit.succeed("kept"))

        const limited = yield* openWorker(yield* connect(), [Hold], { shutdownTimeoutMs: 100 })
        const handed = yield* limited.pool.submit(Hold, "stuck")
        yield* Effect.repeat(limited.pool.stats, { until: (stats) => stats.running === 1, schedule: Schedule.spaced("10 millis") })
        yield* limited.close
        expect(yield* limited.pool.stats).toMatchObject({ running: 0, queued: 1 })
        yield* openWorker(yield* connect(), [Hold])
        const result = yield* handed.result
        expect(result.exit).toEqual(Exit.succeed("stuck"))
        expect(result.attemptCount).toBe(1)
        expect(stuckRuns).toBe(2)
      }), 30_000)
  })
}

suite("PostgreSQL", pgCase)
suite("Redis", redisCase, redisUrl === undefined)
