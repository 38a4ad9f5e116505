import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { decodeConfig, TaskPool, TaskPoolConfig, TaskPoolConfigError } from "../src/index.js"

describe("TaskPoolConfig", () => {
  it.effect("every field is optional and takes the contract's default", () =>
    Effect.gen(function*() {
      const config = yield* decodeConfig(undefined)
      assert.instanceOf(config, TaskPoolConfig)
      assert.deepStrictEqual({ ...config }, {
        maxIoWorkerNum: 50,
        lingerMs: 2000,
        maxRetryTimes: 10,
        maxReservedAttempts: 11,
        baseRetryBackOffMs: 100,
        maxRetryBackOffMs: 50000,
        maxTaskNum: 1000,
        maxBlockMs: 60000,
        maxFailedTasks: 1000,
        retryJitter: false
      })
      assert.isUndefined(config.shutdownTimeoutMs)
      assert.isUndefined(config.rateLimit)
      assert.deepStrictEqual({ ...(yield* decodeConfig({})) }, { ...config })
    }))

  it.effect("keeps given values, including the optional shutdownTimeoutMs and unbounded sentinels", () =>
    Effect.gen(function*() {
      const config = yield* decodeConfig({ maxIoWorkerNum: 3, lingerMs: 100, maxRetryTimes: -1, maxBlockMs: -1, shutdownTimeoutMs: 0 })
      assert.strictEqual(config.maxIoWorkerNum, 3)
      assert.strictEqual(config.lingerMs, 100)
      assert.strictEqual(config.maxRetryTimes, -1)
      assert.strictEqual(config.maxBlockMs, -1)
      assert.strictEqual(config.shutdownTimeoutMs, 0)
    }))

  it.effect("names every offending field with its rule, not just the first", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeConfig({ lingerMs: 50, maxIoWorkerNum: 0, maxRetryTimes: 1.5, shutdownTimeoutMs: -1 }))
      assert.instanceOf(error, TaskPoolConfigError)
      assert.include(error.message, "lingerMs: expected an integer >= 100, got 50")
      assert.include(error.message, "maxIoWorkerNum: expected an integer >= 1 and <= 10000, got 0")
      assert.include(error.message, "maxRetryTimes: expected an integer, got 1.5")
      assert.include(error.message, "shutdownTimeoutMs: expected an integer >= 0, got -1")
      assert.deepStrictEqual([...error.fields].sort(), ["lingerMs", "maxIoWorkerNum", "maxRetryTimes", "shutdownTimeoutMs"])
    }))

  it.effect("caps maxIoWorkerNum, since each worker is a fiber made at start", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeConfig({ maxIoWorkerNum: 2 ** 32 }))
      assert.include(error.message, "maxIoWorkerNum: expected an integer >= 1 and <= 10000, got 4294967296")
      assert.strictEqual((yield* decodeConfig({ maxIoWorkerNum: 10_000 })).maxIoWorkerNum, 10_000)
    }))

  it.effect("reports a wrong type with the value it got", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeConfig({ lingerMs: "100", maxTaskNum: null }))
      assert.include(error.message, `lingerMs: expected an integer >= 100, got "100"`)
      assert.include(error.message, "maxTaskNum: expected an integer >= 1, got null")
    }))

  it.effect("a misspelt key is an error, never ignored", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeConfig({ maxIoWorkerNums: 3, lingerMs: 10 }))
      assert.include(error.message, "maxIoWorkerNums: not a TaskPoolConfig field")
      assert.include(error.message, "lingerMs: expected an integer >= 100, got 10")
      assert.deepStrictEqual(error.fields, ["lingerMs", "maxIoWorkerNums"])
    }))

  it.effect("input that is not an object is an error", () =>
    Effect.gen(function*() {
      for (const input of [42, null, "fast", [1, 2]]) {
        const error = yield* Effect.flip(decodeConfig(input))
        assert.include(error.message, "expected an object of TaskPoolConfig fields")
      }
    }))

  describe("retryJitter", () => {
    it.effect("defaults to false and keeps a given boolean", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* decodeConfig({})).retryJitter, false)
        assert.strictEqual((yield* decodeConfig({ retryJitter: true })).retryJitter, true)
        assert.strictEqual((yield* decodeConfig({ retryJitter: false })).retryJitter, false)
      }))

    it.effect("anything but a boolean is an error naming retryJitter", () =>
      Effect.gen(function*() {
        for (const [retryJitter, shown] of [["yes", `"yes"`], [1, "1"], [null, "null"]] as const) {
          const error = yield* Effect.flip(decodeConfig({ retryJitter }))
          assert.instanceOf(error, TaskPoolConfigError)
          assert.include(error.message, `retryJitter: expected a boolean, got ${shown}`)
          assert.deepStrictEqual(error.fields, ["retryJitter"])
        }
      }))
  })

  describe("rateLimit", () => {
    it.effect("is absent by default and kept as given", () =>
      Effect.gen(function*() {
        assert.isUndefined((yield* decodeConfig({})).rateLimit)
        assert.deepStrictEqual((yield* decodeConfig({ rateLimit: { limit: 2, intervalMs: 1000 } })).rateLimit, { limit: 2, intervalMs: 1000 })
        assert.deepStrictEqual((yield* decodeConfig({ rateLimit: { limit: 1, intervalMs: 1 } })).rateLimit, { limit: 1, intervalMs: 1 })
      }))

    it.effect("limit and intervalMs must be integers >= 1, both given, and no other key; the error names rateLimit", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<unknown> = [
          { limit: 0, intervalMs: 1000 },
          { limit: 2, intervalMs: 0 },
          { limit: 1.5, intervalMs: 1000 },
          { limit: 2, intervalMs: 1.5 },
          { limit: 2 },
          { intervalMs: 1000 },
          { limit: "2", intervalMs: 1000 },
          { limit: 2, intervalMs: 1000, burst: 3 },
          5,
          null,
          "2/s"
        ]
        for (const rateLimit of bad) {
          const error = yield* Effect.flip(decodeConfig({ rateLimit }))
          assert.instanceOf(error, TaskPoolConfigError)
          assert.include(
            error.message,
            "rateLimit: expected { limit: an integer >= 1, intervalMs: an integer >= 1 } and no other keys, got ",
            JSON.stringify(rateLimit)
          )
          assert.deepStrictEqual(error.fields, ["rateLimit"], JSON.stringify(rateLimit))
        }
      }))

    it.effect("an extra key inside rateLimit is reported with the value that held it", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(decodeConfig({ rateLimit: { limit: 2, intervalMs: 1000, burst: 3 }, lingerMs: 50 }))
        assert.include(error.message, `rateLimit: expected { limit: an integer >= 1, intervalMs: an integer >= 1 } and no other keys, got {"limit":2,"intervalMs":1000,"burst":3}`)
        assert.include(error.message, "lingerMs: expected an integer >= 100, got 50")
        assert.deepStrictEqual([...error.fields].sort(), ["lingerMs", "rateLimit"])
      }))
  })

  it.effect("TaskPool.layer fails with TaskPoolConfigError on bad input", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(TaskPool.layer({ maxTaskNum: 0 })))
      assert.strictEqual(error._tag, "TaskPoolConfigError")
      assert.include(error.message, "maxTaskNum: expected an integer >= 1, got 0")
    }))
})
