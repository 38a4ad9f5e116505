/**
 * A unit of work for the pool: an Effect to run (and re-run on retry) with
 * its callbacks and retry rules.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import type { TaskResult } from "./TaskResult.js"

/**
 * A task. `execute` is one attempt; it is re-run for each retry.
 *
 * @since 0.1.0
 */
export interface Task<A, E = never, R = never> {
  readonly name: string
  readonly execute: Effect.Effect<A, E, R>
  readonly onSuccess: ((result: TaskResult<A, E>) => Effect.Effect<void, never, R>) | undefined
  readonly onFail: ((result: TaskResult<A, E>) => Effect.Effect<void, never, R>) | undefined
  /** Asked about typed failures only; `false` makes the failure final. */
  readonly retryable: ((error: E) => boolean) | undefined
  /** Per attempt; `undefined` means no limit. */
  readonly timeout: Duration.Duration | undefined
}

/**
 * What `Task.make` accepts.
 *
 * @since 0.1.0
 */
export interface TaskOptions<A, E, R> {
  /** Shown in results, logs and spans. */
  readonly name: string
  /** One attempt; re-run for each retry. */
  readonly execute: Effect.Effect<A, E, R>
  /** Runs once when the task ends successfully. */
  readonly onSuccess?: ((result: TaskResult<A, E>) => Effect.Effect<void, never, R>) | undefined
  /** Runs once when the task ends failed. */
  readonly onFail?: ((result: TaskResult<A, E>) => Effect.Effect<void, never, R>) | undefined
  /** Typed failures only; `false`: the failure is final at once. Default: every failure retries. */
  readonly retryable?: ((error: E) => boolean) | undefined
  /** Per attempt; an attempt past it is interrupted and fails with `errorCode` `"Timeout"`. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * Builds a task.
 *
 * @example
 * ```ts
 * const task = Task.make({
 *   name: "send-invoice",
 *   execute: sendInvoice(id),
 *   onFail: (result) => Effect.logError(result.errorMessage),
 *   retryable: (error) => error._tag !== "InvalidAddress",
 *   timeout: "5 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 */
const make = <A, E = never, R = never>(options: TaskOptions<A, E, R>): Task<A, E, R> => ({
  name: options.name,
  execute: options.execute,
  onSuccess: options.onSuccess,
  onFail: options.onFail,
  retryable: options.retryable,
  timeout: options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout)
})

/**
 * The `Task` constructors.
 *
 * @since 0.1.0
 */
export const Task = { make } as const
