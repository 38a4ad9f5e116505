/**
 * The typed errors of `@taskpool/core`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * `push` was called on a pool whose scope has closed, or a push was still
 * waiting for room when the pool closed.
 *
 * @since 0.1.0
 */
export class PoolClosedError extends Schema.TaggedError<PoolClosedError>()("PoolClosedError", {
  message: Schema.String
}) {}

/**
 * `push` found `maxTaskNum` unfinished tasks and no room freed up within `maxBlockMs`.
 *
 * @since 0.1.0
 */
export class PoolFullError extends Schema.TaggedError<PoolFullError>()("PoolFullError", {
  message: Schema.String,
  maxTaskNum: Schema.Number,
  waitedMs: Schema.Number
}) {}

/**
 * The configuration given to `TaskPool.layer` is not valid. `message` names
 * every offending field with its rule; `fields` lists their names.
 *
 * @since 0.1.0
 */
export class TaskPoolConfigError extends Schema.TaggedError<TaskPoolConfigError>()("TaskPoolConfigError", {
  message: Schema.String,
  fields: Schema.Array(Schema.String)
}) {}

/**
 * An attempt ran past its task's `timeout`. It is found as the defect of a
 * timed-out attempt's cause; the attempt is recorded with `errorCode` `"Timeout"`.
 *
 * @since 0.1.0
 */
export class TaskTimeoutError extends Schema.TaggedError<TaskTimeoutError>()("TaskTimeoutError", {
  message: Schema.String,
  taskId: Schema.String,
  name: Schema.String,
  timeoutMs: Schema.Number
}) {}
