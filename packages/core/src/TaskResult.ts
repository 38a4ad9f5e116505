/**
 * What a task's end hands back: its `TaskResult` with the newest `Attempt`s.
 * Plain immutable data, built once per task when it ends.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { Exit } from "effect"

/**
 * One run of a task's `execute`. `errorCode` is the failure's `_tag` when it
 * has one, otherwise `"Failure"`; `"Defect"` for a defect, `"Timeout"` for a
 * timed-out attempt, `"Interrupted"` for one cut off by a limited close.
 * Times come from Effect's `Clock`.
 *
 * @since 0.1.0
 */
export class Attempt extends Data.Class<{
  /** 1-based. */
  readonly number: number
  readonly success: boolean
  readonly startedAtMs: number
  readonly endedAtMs: number
  readonly errorCode?: string
  readonly errorMessage?: string
}> {}

/**
 * How a task ended. `exit` holds the value, or the last attempt's cause;
 * `attempts` keeps the newest `maxReservedAttempts` attempts, oldest first,
 * while `attemptCount` counts every attempt made. `errorCode` and
 * `errorMessage` say why a task failed and are absent when it succeeded.
 *
 * @since 0.1.0
 */
export class TaskResult<A, E> extends Data.Class<{
  readonly taskId: string
  readonly name: string
  readonly successful: boolean
  readonly exit: Exit.Exit<A, E>
  readonly attempts: ReadonlyArray<Attempt>
  readonly attemptCount: number
  readonly errorCode?: string
  readonly errorMessage?: string
  readonly createdAtMs: number
  readonly completedAtMs: number
}> {}
