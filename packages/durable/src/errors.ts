/**
 * The typed errors of `@taskpool/durable`. Config errors are the core's
 * `TaskPoolConfigError`, pushes to a closed pool the core's `PoolClosedError`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The store (PostgreSQL, Redis) could not be reached or refused an operation.
 * `operation` names what was being done; `cause` is the driver's error.
 *
 * @since 0.1.0
 */
export class DurableStoreError extends Schema.TaggedError<DurableStoreError>()("DurableStoreError", {
  message: Schema.String,
  operation: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * `requeue` was given a task that is not failed: it is unknown, or still
 * queued, running, retrying, or it succeeded. `state` says which.
 *
 * @since 0.1.0
 */
export class TaskNotFailedError extends Schema.TaggedError<TaskNotFailedError>()("TaskNotFailedError", {
  message: Schema.String,
  taskId: Schema.String,
  state: Schema.String
}) {}

/**
 * The most specific message in a chain of causes: drivers wrap the server's
 * words ("duplicate key value violates ...") in generic ones ("Query failed").
 */
const innermostMessage = (cause: unknown): string => {
  let message = String(cause)
  let current: unknown = cause
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const own = (current as { readonly message?: unknown }).message
    if (typeof own === "string" && own.length > 0) message = own
    const record = current as { readonly cause?: unknown; readonly reason?: unknown }
    current = record.cause ?? record.reason
  }
  return message
}

/** Wraps a driver failure as a `DurableStoreError` for `operation`. */
export const storeError = (operation: string) => (cause: unknown): DurableStoreError =>
  new DurableStoreError({
    message: `The durable store failed to ${operation}: ${innermostMessage(cause)}`,
    operation,
    cause
  })
