import { Cause, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { PoolClosedError, PoolFullError, TaskPoolConfigError } from "../src/index.js"
import type { TaskPoolStats, TaskResult } from "../src/index.js"
import { createTaskPool } from "../src/promise.js"
import type { PromiseTaskPool } from "../src/promise.js"

// Real time, kept short: with `maxIoWorkerNum: 1` every push fills its linger
// batch, so a task is queued at once instead of lingering `lingerMs`.
const fast = { lingerMs: 100, maxIoWorkerNum: 1, baseRetryBackOffMs: 0 } as const

/** A promise with its resolver, to let a test know that `fn` has started. */
const signalled = () => {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/** Work that only ends when its signal aborts; records that it saw the abort. */
const untilAborted = (started: () => void, aborted: Array<unknown>) => (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    signal.addEventListener("abort", () => {
      aborted.push(signal.reason)
      reject(new Error("aborted"))
    })
    started()
  })

/** Yields to the event loop (no timer) until the pool's stats satisfy `ready`. */
const untilStats = async (pool: PromiseTaskPool, ready: (stats: TaskPoolStats) => boolean) => {
  for (let i = 0; i < 10_000; i++) {
    if (ready(await pool.stats())) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error("the pool never reached the expected stats")
}

const failureOf = (result: TaskResult<unknown, unknown>): unknown =>
  Exit.isFailure(result.exit) ? Cause.squash(result.exit.cause) : undefined

describe("createTaskPool", () => {
  it("resolves push with the task's successful result", async () => {
    await using pool = createTaskPool(fast)
    const result = await pool.push(async () => 42, { name: "answer" })
    expect(result.successful).toBe(true)
    expect(result.name).toBe("answer")
    expect(result.exit).toStrictEqual(Exit.succeed(42))
    expect(result.attemptCount).toBe(1)
    expect(result.errorCode).toBeUndefined()
  })

  it("retries a rejecting function and resolves, never rejects, with the failed result", async () => {
    await using pool = createTaskPool({ ...fast, maxRetryTimes: 2 })
    const boom = new Error("boom")
    let calls = 0
    const result = await pool.push(() => {
      calls++
      return Promise.reject(boom)
    })
    expect(result.successful).toBe(false)
    expect(result.attemptCount).toBe(3)
    expect(calls).toBe(3)
    expect(result.errorCode).toBe("Failure")
    expect(result.errorMessage).toBe("boom")
    expect(failureOf(result)).toBe(boom)
  })

  it("succeeds after failed attempts", async () => {
    await using pool = createTaskPool({ ...fast, maxRetryTimes: 3 })
    let calls = 0
    const result = await pool.push(async () => {
      if (++calls < 3) throw new Error(`try ${calls}`)
      return "done"
    })
    expect(result.exit).toStrictEqual(Exit.succeed("done"))
    expect(result.attemptCount).toBe(3)
    expect(result.attempts.map((attempt) => attempt.success)).toStrictEqual([false, false, true])
  })

  it("treats a synchronous throw as a failed attempt and asks retryable about it", async () => {
    await using pool = createTaskPool({ ...fast, maxRetryTimes: 5 })
    const seen: Array<unknown> = []
    const result = await pool.push((): Promise<number> => {
      throw new TypeError("not even a promise")
    }, {
      retryable: (error) => {
        seen.push(error)
        return false
      }
    })
    expect(result.successful).toBe(false)
    expect(result.attemptCount).toBe(1)
    expect(seen).toHaveLength(1)
    expect(seen[0]).toBeInstanceOf(TypeError)
  })

  it("aborts the signal of an attempt past timeoutMs and records a Timeout", async () => {
    await using pool = createTaskPool({ ...fast, maxRetryTimes: 0 })
    const aborted: Array<unknown> = []
    const result = await pool.push(untilAborted(() => undefined, aborted), { timeoutMs: 10 })
    expect(result.successful).toBe(false)
    expect(result.errorCode).toBe("Timeout")
    expect(aborted).toHaveLength(1)
  })

  it("gives each retry a fresh signal", async () => {
    await using pool = createTaskPool({ ...fast, maxRetryTimes: 1 })
    const signals: Array<AbortSignal> = []
    const result = await pool.push((signal) => {
      signals.push(signal)
      return new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
    }, { timeoutMs: 10 })
    expect(result.attemptCount).toBe(2)
    expect(result.attempts.map((attempt) => attempt.errorCode)).toStrictEqual(["Timeout", "Timeout"])
    expect(signals).toHaveLength(2)
    expect(signals[0]).not.toBe(signals[1])
    expect(signals.every((signal) => signal.aborted)).toBe(true)
  })

  it("rejects a bad timeoutMs with a RangeError", async () => {
    await using pool = createTaskPool(fast)
    await expect(pool.push(async () => 1, { timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError)
    expect((await pool.stats()).pushed).toBe(0)
  })

  it("streams failures oldest first and ends the iteration after close", async () => {
    const pool = createTaskPool({ ...fast, maxRetryTimes: 0 })
    const results = await Promise.all([
      pool.push(() => Promise.reject(new Error("first")), { name: "a" }),
      pool.push(async () => "fine", { name: "b" }),
      pool.push(() => Promise.reject(new Error("second")), { name: "c" })
    ])
    expect(results.map((result) => result.successful)).toStrictEqual([false, true, false])
    await pool.close()
    const failed: Array<string> = []
    for await (const result of pool.failures) failed.push(`${result.name}: ${result.errorMessage}`)
    expect(failed).toStrictEqual(["a: first", "c: second"])
  })

  it("reports stats, also after close", async () => {
    const pool = createTaskPool({ ...fast, maxRetryTimes: 0 })
    await pool.push(async () => 1)
    await pool.push(() => Promise.reject(new Error("no")))
    await pool.close()
    expect(await pool.stats()).toStrictEqual({
      lingering: 0, queued: 0, running: 0, retrying: 0, succeeded: 1, failed: 1, pushed: 2, droppedFailures: 0,
      paused: false, maxIoWorkerNum: 1
    })
  })

  it("awaitIdle resolves once no task is unfinished", async () => {
    await using pool = createTaskPool({ lingerMs: 100, maxIoWorkerNum: 4 })
    const ended: Array<number> = []
    for (const n of [1, 2, 3]) void pool.push(async () => void ended.push(n))
    await pool.awaitIdle()
    expect(ended.sort()).toStrictEqual([1, 2, 3])
  })

  describe("refusals", () => {
    it("rejects a push after close with PoolClosedError", async () => {
      const pool = createTaskPool(fast)
      await pool.close()
      await expect(pool.push(async () => 1)).rejects.toBeInstanceOf(PoolClosedError)
    })

    it("rejects a push with PoolFullError when maxTaskNum tasks are unfinished", async () => {
      await using pool = createTaskPool({ ...fast, maxTaskNum: 1, maxBlockMs: 0 })
      const release = signalled()
      const first = pool.push(() => release.promise)
      await expect(pool.push(async () => 2)).rejects.toBeInstanceOf(PoolFullError)
      release.resolve()
      expect((await first).successful).toBe(true)
    })

    it("rejects a push still waiting for room when the pool closes with PoolClosedError", async () => {
      const pool = createTaskPool({ ...fast, maxTaskNum: 1, maxBlockMs: -1 })
      const started = signalled()
      const release = signalled()
      const first = pool.push(async () => {
        started.resolve()
        await release.promise
        return "first"
      })
      await started.promise
      const waiting = pool.push(async () => "second")
      const closed = pool.close()
      await expect(waiting).rejects.toBeInstanceOf(PoolClosedError)
      release.resolve()
      await closed
      expect((await first).exit).toStrictEqual(Exit.succeed("first"))
    })
  })

  describe("close", () => {
    it("waits for running tasks, whose push still resolves with their result", async () => {
      const pool = createTaskPool(fast)
      const started = signalled()
      const release = signalled()
      const pushed = pool.push(async () => {
        started.resolve()
        await release.promise
        return "finished"
      })
      await started.promise
      let closed = false
      const closing = pool.close().then(() => void (closed = true))
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(closed).toBe(false)
      release.resolve()
      await closing
      expect((await pushed).exit).toStrictEqual(Exit.succeed("finished"))
    })

    it("dispatches lingering tasks at once", async () => {
      const pool = createTaskPool({ lingerMs: 100, maxIoWorkerNum: 2 })
      const pushed = pool.push(async () => "ran")
      await pool.close()
      expect((await pushed).exit).toStrictEqual(Exit.succeed("ran"))
    })

    it("with shutdownTimeoutMs, aborts what is still running and ends it Interrupted", async () => {
      const pool = createTaskPool({ ...fast, shutdownTimeoutMs: 10 })
      const started = signalled()
      const aborted: Array<unknown> = []
      const pushed = pool.push(untilAborted(started.resolve, aborted))
      await started.promise
      await pool.close()
      const result = await pushed
      expect(result.successful).toBe(false)
      expect(result.errorCode).toBe("Interrupted")
      expect(aborted).toHaveLength(1)
    })

    it("close({ timeoutMs }) limits a pool configured for a safe close", async () => {
      const pool = createTaskPool(fast)
      const started = signalled()
      const aborted: Array<unknown> = []
      const pushed = pool.push(untilAborted(started.resolve, aborted))
      await started.promise
      await pool.close({ timeoutMs: 10 })
      expect((await pushed).errorCode).toBe("Interrupted")
      expect(aborted).toHaveLength(1)
    })

    it("close({ timeoutMs }) overrides a shorter configured shutdownTimeoutMs", async () => {
      const pool = createTaskPool({ ...fast, shutdownTimeoutMs: 1 })
      const pushed = pool.push(() => new Promise((resolve) => setTimeout(() => resolve("done"), 30)))
      await pool.close({ timeoutMs: 5000 })
      expect((await pushed).exit).toStrictEqual(Exit.succeed("done"))
    })

    it("rejects a close timeoutMs that is not an integer >= 0 and stays open", async () => {
      const pool = createTaskPool(fast)
      await expect(pool.close({ timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError)
      expect((await pool.push(async () => "still open")).successful).toBe(true)
      await pool.close()
    })

    it("can be called more than once", async () => {
      const pool = createTaskPool(fast)
      const pushed = pool.push(async () => 1)
      await Promise.all([pool.close(), pool.close()])
      await pool.close()
      expect((await pushed).successful).toBe(true)
    })

    it("closes at the end of an await using block", async () => {
      let escaped: ReturnType<typeof createTaskPool> | undefined
      {
        await using pool = createTaskPool(fast)
        escaped = pool
        await pool.push(async () => 1)
      }
      await expect(escaped.push(async () => 2)).rejects.toBeInstanceOf(PoolClosedError)
    })
  })

  describe("scheduling", () => {
    it("runs higher priorities first and tasks of one key one at a time", async () => {
      await using pool = createTaskPool(fast)
      const gate = signalled()
      const blocking = signalled()
      const started: Array<string> = []
      const blocker = pool.push(() => {
        blocking.resolve()
        return gate.promise
      })
      await blocking.promise
      const pushes = [
        pool.push(async () => void started.push("low"), { priority: 0 }),
        pool.push(async () => void started.push("high"), { priority: 5 })
      ]
      await untilStats(pool, (stats) => stats.queued === 2)
      gate.resolve()
      await Promise.all([blocker, ...pushes])
      expect(started).toStrictEqual(["high", "low"])
    })

    it("an idempotency key resolves a duplicate push with the first task's result", async () => {
      await using pool = createTaskPool(fast)
      let calls = 0
      const run = async () => ++calls
      const [first, second] = await Promise.all([
        pool.push(run, { idempotencyKey: "invoice-7", delayMs: 10 }),
        pool.push(run, { idempotencyKey: "invoice-7", delayMs: 10 })
      ])
      expect(calls).toBe(1)
      expect(second.taskId).toBe(first.taskId)
      expect((await pool.stats()).pushed).toBe(1)
    })

    it("aborting the push's signal cancels a running attempt: its own signal aborts, the result is Cancelled", async () => {
      await using pool = createTaskPool(fast)
      const started = signalled()
      const aborted: Array<unknown> = []
      const controller = new AbortController()
      const pending = pool.push(untilAborted(started.resolve, aborted), { signal: controller.signal })
      await started.promise
      controller.abort()
      const result = await pending
      expect(result.successful).toBe(false)
      expect(result.errorCode).toBe("Cancelled")
      expect(result.attemptCount).toBe(1)
      expect(aborted).toHaveLength(1)
    })

    it("an already aborted signal ends the task Cancelled without running it", async () => {
      await using pool = createTaskPool(fast)
      let ran = false
      const result = await pool.push(async () => void (ran = true), { signal: AbortSignal.abort(), delayMs: 50 })
      expect(result.errorCode).toBe("Cancelled")
      expect(result.attemptCount).toBe(0)
      expect(ran).toBe(false)
    })

    it("pause holds new starts, resume lets them run, resize changes the limit", async () => {
      await using pool = createTaskPool(fast)
      await pool.pause()
      let ran = false
      const pending = pool.push(async () => void (ran = true))
      await untilStats(pool, (stats) => stats.queued === 1)
      expect(ran).toBe(false)
      expect((await pool.stats()).paused).toBe(true)
      await pool.resume()
      await pending
      expect(ran).toBe(true)
      await pool.resize(4)
      expect((await pool.stats()).maxIoWorkerNum).toBe(4)
      await expect(pool.resize(0)).rejects.toBeInstanceOf(TaskPoolConfigError)
    })

    it("rejects bad push options with a TypeError naming the option", async () => {
      await using pool = createTaskPool(fast)
      await expect(pool.push(async () => 1, { priority: Number.NaN })).rejects.toThrow(/priority must be a finite number/)
    })
  })

  describe("config", () => {
    it("throws TaskPoolConfigError at once, naming every bad field", () => {
      let thrown: unknown
      try {
        createTaskPool({ lingerMs: 50, maxIoWorkerNum: 0 })
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(TaskPoolConfigError)
      expect((thrown as TaskPoolConfigError).fields).toStrictEqual(["maxIoWorkerNum", "lingerMs"])
      expect((thrown as TaskPoolConfigError).message).toContain("lingerMs: expected an integer >= 100, got 50")
    })

    it("refuses a key that is not a field", () => {
      expect(() => createTaskPool({ maxIoWorkerNums: 3 } as never)).toThrow(TaskPoolConfigError)
    })

    it("works with every default", async () => {
      await using pool = createTaskPool()
      const stats = await pool.stats()
      expect(stats.pushed).toBe(0)
    })
  })
})
