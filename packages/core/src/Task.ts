/**
 * A unit of work for the pool: an Effect to run (and re-run on retry) with
 * its callbacks and retry rules.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schedule } from "effect"
import { readDuration, show } from "./internal/inputs.js"
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
  /** Decides each retry's delay and whether to retry; `undefined`: the pool's backoff formula. */
  readonly retrySchedule: Schedule.Schedule<unknown, E> | undefined
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
  /**
   * Decides every retry's delay, and whether to retry at all, in place of the
   * pool's backoff formula; `maxRetryTimes` still caps the count. It is
   * stepped once per failed attempt with the typed failure, or, for a defect
   * or timeout, with the defect (a `TaskTimeoutError` for a timeout).
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, E> | undefined
}

/**
 * What is wrong with a task (or `Task.make`'s options), or `undefined` when
 * nothing is. Checked at the boundary, so a bad task never reaches a worker.
 *
 * @internal
 */
export const invalidTask = (task: unknown): string | undefined => {
  if (typeof task !== "object" || task === null) return `expected a task made by Task.make, got ${show(task)}`
  const options = task as Record<string, unknown>
  if (typeof options.name !== "string" || options.name.length === 0) {
    return `name must be a non-empty string, got ${show(options.name)}`
  }
  if (!Effect.isEffect(options.execute)) return `execute must be an Effect, got ${show(options.execute)}`
  for (const key of ["onSuccess", "onFail", "retryable"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "function") {
      return `${key} must be a function when given, got ${show(options[key])}`
    }
  }
  if (options.timeout !== undefined && readDuration(options.timeout) === undefined) {
    return `timeout must be a duration >= 0, got ${show(options.timeout)}`
  }
  if (options.retrySchedule !== undefined && !Schedule.isSchedule(options.retrySchedule)) {
    return `retrySchedule must be a Schedule when given, got ${show(options.retrySchedule)}`
  }
  return undefined
}

/**
 * Builds a task. Bad options (an empty name, an `execute` that is not an
 * Effect, a callback that is not a function, a timeout that is not a
 * duration >= 0, a retrySchedule that is not a Schedule) throw a `TypeError` naming the option, here at the call.
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
const make = <A, E = never, R = never>(options: TaskOptions<A, E, R>): Task<A, E, R> => {
  const problem = invalidTask(options)
  if (problem !== undefined) throw new TypeError(`Task.make: ${problem}`)
  return {
    name: options.name,
    execute: options.execute,
    onSuccess: options.onSuccess,
    onFail: options.onFail,
    retryable: options.retryable,
    timeout: options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout),
    retrySchedule: options.retrySchedule
  }
}

/**
 * The `Task` constructors.
 *
 * @since 0.1.0
 */
export const Task = { make } as const
