/**
 * The Promise front door: the same pool, for code that speaks `async` /
 * `await` instead of Effect. `createTaskPool(config)` builds the pool from
 * `TaskPool.layer(config)` in a `ManagedRuntime`; pushing a function that
 * returns a promise gives back a promise of its `TaskResult`.
 *
 * @since 0.1.0
 */
import { Context, Effect, ManagedRuntime, Stream } from "effect"
import { decodeConfig } from "./Config.js"
import type { TaskPoolConfigInput } from "./Config.js"
import { Task } from "./Task.js"
import { TaskPool } from "./TaskPool.js"
import type { TaskPoolService, TaskPoolStats } from "./TaskPool.js"
import type { TaskResult } from "./TaskResult.js"

/**
 * What `push` accepts besides the function.
 *
 * @since 0.1.0
 */
export interface PromisePushOptions {
  /** Shown in results and logs. Default: the function's name, else `"task"`. */
  readonly name?: string | undefined
  /** Per attempt, in ms (>= 0). An attempt past it has its signal aborted and fails with `errorCode` `"Timeout"`. */
  readonly timeoutMs?: number | undefined
  /** Asked about each rejection (or synchronous throw); `false` makes it final. Default: every failure retries. */
  readonly retryable?: ((error: unknown) => boolean) | undefined
  /** Higher runs first among queued tasks (default 0). */
  readonly priority?: number | undefined
  /** In ms: the task becomes runnable no earlier than this after its push, without lingering. */
  readonly delayMs?: number | undefined
  /** Tasks that share a key run one at a time, in push order. */
  readonly key?: string | undefined
  /** While a task pushed with this key is unfinished, a push with it resolves with that task's result and adds nothing. */
  readonly idempotencyKey?: string | undefined
  /**
   * Aborting it cancels the task: a waiting task ends at once, a running
   * attempt is interrupted (its own signal is aborted); the result has
   * `errorCode` `"Cancelled"`.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * What `close` accepts.
 *
 * @since 0.1.0
 */
export interface PromiseCloseOptions {
  /**
   * How long the close waits (an integer >= 0, in ms) before interrupting
   * unfinished tasks; overrides the config's `shutdownTimeoutMs` for this
   * close. Absent: the config decides (safe close without `shutdownTimeoutMs`).
   */
  readonly timeoutMs?: number | undefined
}

/**
 * A task pool driven with promises. It is the Effect pool itself, built from
 * `TaskPool.layer(config)`: the same workers, linger, retries, failure queue,
 * backpressure and close.
 *
 * @since 0.1.0
 */
export interface PromiseTaskPool {
  /**
   * Runs `fn` in the pool (re-run on each retry) and resolves with the task's
   * `TaskResult` once it has ended. A rejection or throw of `fn` is a failed
   * attempt, never a rejection of `push`: `push` rejects only when the pool
   * refuses the task, with `PoolClosedError` or `PoolFullError` (or a
   * `RangeError` for a bad `timeoutMs`). `signal` is aborted when the attempt
   * is interrupted: it timed out, or a limited close cut it off.
   */
  readonly push: <A>(
    fn: (signal: AbortSignal) => PromiseLike<A>,
    options?: PromisePushOptions
  ) => Promise<TaskResult<A, unknown>>
  /**
   * The failure queue: failed results, oldest first. It is a queue, not a
   * broadcast: each result goes to one reader. Iteration ends once the pool
   * has closed and the queue has been read.
   */
  readonly failures: AsyncIterable<TaskResult<unknown, unknown>>
  /** A snapshot of the pool's counters; still answers after close. */
  readonly stats: () => Promise<TaskPoolStats>
  /** Resolves when the pool holds no unfinished task. */
  readonly awaitIdle: () => Promise<void>
  /**
   * Closes the pool: new pushes reject with `PoolClosedError`, and the promise
   * resolves once every task has ended and its callback has run (a limited
   * close when `timeoutMs` or the config's `shutdownTimeoutMs` is set).
   * Calling it again waits for the same close.
   */
  readonly close: (options?: PromiseCloseOptions) => Promise<void>
  /** Stops starting attempts; running ones go on. A close resumes. */
  readonly pause: () => Promise<void>
  /** Starts attempts again after `pause`. */
  readonly resume: () => Promise<void>
  /** Sets the worker limit now; rejects with `TaskPoolConfigError` unless it is an integer >= 1 and <= 10000. */
  readonly resize: (maxIoWorkerNum: number) => Promise<void>
  /** `close()`, for `await using pool = createTaskPool(...)`. */
  readonly [Symbol.asyncDispose]: () => Promise<void>
}

/**
 * Creates and starts a task pool driven with promises. `config` is what
 * `TaskPool.layer` takes; bad config throws a `TaskPoolConfigError` at once,
 * naming every offending field.
 *
 * @example
 * ```ts
 * import { createTaskPool } from "@taskpool/core/promise"
 *
 * await using pool = createTaskPool({ maxIoWorkerNum: 20, lingerMs: 100 })
 * const result = await pool.push(
 *   (signal) => fetch(`https://example.com/invoices/${id}`, { method: "POST", signal }),
 *   { name: "send-invoice", timeoutMs: 5000 }
 * )
 * if (!result.successful) console.error(result.errorCode, result.errorMessage)
 * ```
 *
 * @since 0.1.0
 */
export const createTaskPool = (config?: TaskPoolConfigInput): PromiseTaskPool => {
  Effect.runSync(decodeConfig(config))
  const runtime = ManagedRuntime.make(TaskPool.layer(config))
  // The runtime owns the pool's layer: building it starts the pool, disposing
  // it closes the pool. The service's effects need no context, so they run on
  // their own fibers rather than the runtime's: disposing a runtime interrupts
  // the fibers it runs before its layer closes, which would cut off a push
  // awaiting its result (or waiting for room) ahead of the pool's own close.
  const ready: Promise<TaskPoolService> = runtime.context().then((context) => Context.get(context, TaskPool))
  ready.catch(() => undefined) // each use reports a failed build; this only keeps it from being "unhandled"

  const push = async <A>(
    fn: (signal: AbortSignal) => PromiseLike<A>,
    options: PromisePushOptions = {}
  ): Promise<TaskResult<A, unknown>> => {
    const { timeoutMs } = options
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
      throw new RangeError(`push: timeoutMs must be a number >= 0, got ${timeoutMs}`)
    }
    const task = Task.make<A, unknown>({
      name: options.name ?? (fn.name === "" ? "task" : fn.name),
      // `(signal) => ...` declares the parameter, so Effect allocates a signal
      // and aborts it when the attempt is interrupted.
      execute: Effect.tryPromise({ try: (signal) => fn(signal), catch: (error) => error }),
      retryable: options.retryable,
      timeout: timeoutMs
    })
    const pool = await ready
    const { delayMs, idempotencyKey, key, priority, signal } = options
    const handle = await Effect.runPromise(pool.push(task, { priority, delay: delayMs, key, idempotencyKey }))
    if (signal === undefined) return Effect.runPromise(handle.result)
    const cancel = () => void Effect.runFork(handle.cancel)
    if (signal.aborted) cancel()
    else signal.addEventListener("abort", cancel, { once: true })
    try {
      return await Effect.runPromise(handle.result)
    } finally {
      signal.removeEventListener("abort", cancel)
    }
  }

  const close = async (options: PromiseCloseOptions = {}): Promise<void> => {
    // Let the build finish first, so the close is the pool's close, not an interrupted build.
    const pool = await ready.catch(() => undefined)
    // The pool's close checks timeoutMs: a bad one rejects with its RangeError, and the pool stays open.
    if (pool !== undefined) await Effect.runPromise(pool.close({ timeoutMs: options.timeoutMs }))
    await runtime.dispose()
  }

  return {
    push,
    failures: {
      async *[Symbol.asyncIterator]() {
        const pool = await ready
        yield* Stream.toAsyncIterable(pool.failures)
      }
    },
    stats: async () => Effect.runPromise((await ready).stats),
    awaitIdle: async () => Effect.runPromise((await ready).awaitIdle),
    pause: async () => Effect.runPromise((await ready).pause),
    resume: async () => Effect.runPromise((await ready).resume),
    resize: async (maxIoWorkerNum) => Effect.runPromise((await ready).resize(maxIoWorkerNum)),
    close,
    [Symbol.asyncDispose]: () => close()
  }
}
