/**
 * The task pool service: push tasks, read the failure queue, watch the stats,
 * wait for idle. The pool lives in the scope of its layer; closing that scope
 * is the pool's close.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Duration, Stream } from "effect"
import { decodeConfig } from "./Config.js"
import type { TaskPoolConfigInput } from "./Config.js"
import type { PoolClosedError, PoolFullError, TaskPoolConfigError } from "./errors.js"
import * as internal from "./internal/pool.js"
import type { Task } from "./Task.js"
import type { TaskResult } from "./TaskResult.js"

/**
 * What `push` returns once the pool holds the task. `result` waits for the
 * task's end and never fails: a failed task is a `TaskResult` too.
 *
 * @since 0.1.0
 */
export interface TaskHandle<A, E> {
  readonly taskId: string
  readonly result: Effect.Effect<TaskResult<A, E>>
  /**
   * Cancels the task: a waiting task is removed, a running attempt is
   * interrupted; either way the task ends failed with `errorCode`
   * `"Cancelled"`, its `onFail` runs and no retry follows. Returns once the
   * task has ended (its `onFail` may still be running). Cancelling an ended
   * task does nothing.
   */
  readonly cancel: Effect.Effect<void>
}

/**
 * How `push` schedules one task. Every field is optional.
 *
 * @since 0.2.0
 */
export interface PushOptions {
  /**
   * Higher runs first among queued tasks (default 0); equal priorities start
   * in the order they became ready (push order for tasks pushed alike). A
   * finite number.
   */
  readonly priority?: number | undefined
  /** The task becomes runnable no earlier than this after its push; it does not also linger. */
  readonly delay?: Duration.Input | undefined
  /** Tasks that share a key run one at a time, in push order, each until its end (callback included). */
  readonly key?: string | undefined
  /** While a task pushed with this key is unfinished, a push with the same key returns its handle and adds nothing. */
  readonly idempotencyKey?: string | undefined
}

/**
 * A snapshot of the pool. `lingering + queued + running + retrying` is the
 * number of unfinished tasks, so `pushed = succeeded + failed + unfinished`
 * at every instant; `pushed` counts accepted pushes only. `lingering`
 * includes tasks waiting out a push `delay`; `queued` includes tasks waiting
 * for their `key`.
 *
 * @since 0.1.0
 */
export interface TaskPoolStats {
  readonly lingering: number
  readonly queued: number
  /**
   * Tasks running an attempt (at most `maxIoWorkerNum` of those) or their
   * `onSuccess` / `onFail`, which runs in a fiber of its own.
   */
  readonly running: number
  readonly retrying: number
  readonly succeeded: number
  readonly failed: number
  readonly pushed: number
  readonly droppedFailures: number
  /** Whether dispatch is paused (`pause`). */
  readonly paused: boolean
  /** The worker limit now in force: the config's, or the last `resize`. */
  readonly maxIoWorkerNum: number
}

/**
 * The members of the `TaskPool` service.
 *
 * @since 0.1.0
 */
export interface TaskPoolService {
  /**
   * Hands a task to the pool and returns as soon as the pool holds it. Waits
   * for room as `maxBlockMs` says when `maxTaskNum` tasks are unfinished. The
   * task's `execute` and callbacks run with the caller's services.
   */
  readonly push: <A, E, R>(
    task: Task<A, E, R>,
    options?: PushOptions
  ) => Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R>
  /** The failure queue: failed results, oldest first. Ends after the pool has closed and the queue is read. */
  readonly failures: Stream.Stream<TaskResult<unknown, unknown>>
  readonly stats: Effect.Effect<TaskPoolStats>
  /** Waits until no unfinished task is held. */
  readonly awaitIdle: Effect.Effect<void>
  /**
   * Closes the pool now, as closing its layer's scope would. `timeoutMs`
   * overrides the config's `shutdownTimeoutMs` for this close (absent: the
   * config decides). The pool closes once: later calls, and the scope's own
   * close, wait for the first one to finish.
   */
  readonly close: (options?: { readonly timeoutMs?: number | undefined }) => Effect.Effect<void>
  /** Stops starting attempts; running ones go on. Pushes are still accepted. A close resumes, and a pause once the close has begun does nothing. */
  readonly pause: Effect.Effect<void>
  /** Starts attempts again after `pause`. */
  readonly resume: Effect.Effect<void>
  /**
   * Sets the worker limit now: growing starts waiting work at once, shrinking
   * lets running attempts finish. Fails with `TaskPoolConfigError` unless the
   * limit is an integer >= 1 and <= 10000.
   */
  readonly resize: (maxIoWorkerNum: number) => Effect.Effect<void, TaskPoolConfigError>
}

/**
 * The task pool service.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function*() {
 *   const handle = yield* TaskPool.push(Task.make({ name: "hello", execute: Effect.succeed(1) }))
 *   const result = yield* handle.result
 * }).pipe(Effect.provide(TaskPool.layer({ maxIoWorkerNum: 20, lingerMs: 100 })))
 * ```
 *
 * @since 0.1.0
 */
export class TaskPool extends Context.Service<TaskPool, TaskPoolService>()("@taskpool/core/TaskPool") {
  /**
   * A pool built from `input` (any subset of `TaskPoolConfig`'s fields).
   * Fails with `TaskPoolConfigError` naming every bad field.
   */
  static readonly layer = (input?: TaskPoolConfigInput): Layer.Layer<TaskPool, TaskPoolConfigError> =>
    Layer.effect(TaskPool, Effect.flatMap(decodeConfig(input), internal.make))

  /** `push` on the pool in context: `yield* TaskPool.push(task)`. */
  static readonly push = <A, E, R>(
    task: Task<A, E, R>,
    options?: PushOptions
  ): Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R | TaskPool> =>
    TaskPool.use((pool) => pool.push(task, options))

  /** The pool's stats. */
  static readonly stats: Effect.Effect<TaskPoolStats, never, TaskPool> = TaskPool.use((pool) => pool.stats)

  /** Waits until the pool holds no unfinished task. */
  static readonly awaitIdle: Effect.Effect<void, never, TaskPool> = TaskPool.use((pool) => pool.awaitIdle)

  /** Pauses the pool in context. */
  static readonly pause: Effect.Effect<void, never, TaskPool> = TaskPool.use((pool) => pool.pause)

  /** Resumes the pool in context. */
  static readonly resume: Effect.Effect<void, never, TaskPool> = TaskPool.use((pool) => pool.resume)

  /** Resizes the pool in context. */
  static readonly resize = (maxIoWorkerNum: number): Effect.Effect<void, TaskPoolConfigError, TaskPool> =>
    TaskPool.use((pool) => pool.resize(maxIoWorkerNum))
}

/**
 * `TaskPool.layer()` with every default.
 *
 * @since 0.1.0
 */
export const TaskPoolLive: Layer.Layer<TaskPool> = Layer.orDie(TaskPool.layer())
