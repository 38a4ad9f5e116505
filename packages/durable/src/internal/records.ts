/**
 * What the store keeps of a task, as plain JSON-safe data, and how a kept
 * record becomes the core's `TaskResult`.
 */
import { Attempt, TaskResult } from "@taskpool/core"
import { Exit } from "effect"

/** Where a task is. `queued` includes delayed tasks; `retrying` waits for its backoff. */
export type TaskState = "queued" | "running" | "retrying" | "succeeded" | "failed"

/** The states a task ends in. */
export const isEnded = (state: TaskState): state is "succeeded" | "failed" => state === "succeeded" || state === "failed"

/** One attempt as stored: the core `Attempt`'s fields. */
export type StoredAttempt = ConstructorParameters<typeof Attempt>[0]

/** Why a task failed, as stored: the error or defect in its JSON form. */
export interface StoredFailure {
  readonly errorCode: string
  readonly errorMessage: string
  /** `fail`: a typed error of `execute`; `die`: a defect, a timeout or a lost attempt. */
  readonly kind: "fail" | "die"
  readonly error: unknown
}

/** A task as the store keeps it. `payload` and `value` are JSON (their schemas' encoded form). */
export interface TaskRecord {
  readonly taskId: string
  readonly name: string
  readonly payload: unknown
  readonly state: TaskState
  /** Bumped by `requeue`; each generation is a fresh element in the queue. */
  readonly generation: number
  readonly attempts: ReadonlyArray<StoredAttempt>
  /** Attempts started (that reached `start`) in this generation. */
  readonly attemptCount: number
  /**
   * The queue claim (PersistedQueue's attempt number) that last started this
   * task: every write of an attempt's end is fenced by it.
   */
  readonly claim: number
  readonly value?: unknown
  readonly failure?: StoredFailure
  readonly idempotencyKey?: string
  readonly createdAtMs: number
  readonly completedAtMs?: number
  /** Order of failures across the store, set when the task ends failed. */
  readonly failedSeq?: number
}

/** A task as `submit` hands it to the store. */
export interface NewTask {
  readonly taskId: string
  readonly name: string
  readonly payload: unknown
  readonly idempotencyKey?: string
  readonly createdAtMs: number
}

/** What the end of an attempt writes. */
export interface AttemptEnd {
  readonly state: "retrying" | "succeeded" | "failed"
  /** The kept attempts, whole (the newest `maxReservedAttempts`). */
  readonly attempts: ReadonlyArray<StoredAttempt>
  readonly attemptCount: number
  readonly value?: unknown
  readonly failure?: StoredFailure
  readonly completedAtMs?: number
}

/** Counts of tasks by state, read from the store. */
export type StateCounts = { readonly [K in TaskState]: number }

/** The element each queue carries: which task, which generation. The payload stays in the record. */
export interface QueueElement {
  readonly taskId: string
  readonly generation: number
}

/** The queue element id of a task's generation: unique, so a repeated offer is a no-op. */
export const elementId = (taskId: string, generation: number): string => `${taskId}:${generation}`

/**
 * A value as JSON-safe data: its own JSON form when it has one (Schema errors
 * and `Error`s keep `_tag` and `message`), else its string.
 */
export const toJson = (value: unknown): unknown => {
  if (value === undefined) return null
  if (value instanceof Error) {
    // A tagged error is known by its `_tag`; a plain `Error` by its name.
    const plain: Record<string, unknown> = "_tag" in value ? { message: value.message } : { name: value.name, message: value.message }
    for (const key of Object.keys(value)) plain[key] = (value as unknown as Record<string, unknown>)[key]
    return toJson(plain)
  }
  try {
    const text = JSON.stringify(value)
    return text === undefined ? String(value) : JSON.parse(text)
  } catch {
    return String(value)
  }
}

/** The core's `TaskResult` for an ended record; `value` is the decoded success value. */
export const toTaskResult = <A>(record: TaskRecord, value: A): TaskResult<A, unknown> => {
  const failure = record.failure
  const exit: Exit.Exit<A, unknown> = record.state === "succeeded"
    ? Exit.succeed(value)
    : failure?.kind === "fail"
    ? Exit.fail(failure.error)
    : Exit.die(failure?.error)
  return new TaskResult({
    taskId: record.taskId,
    name: record.name,
    successful: record.state === "succeeded",
    exit,
    attempts: record.attempts.map((attempt) => new Attempt(attempt)),
    attemptCount: record.attemptCount,
    ...(failure === undefined ? {} : { errorCode: failure.errorCode, errorMessage: failure.errorMessage }),
    createdAtMs: record.createdAtMs,
    completedAtMs: record.completedAtMs ?? record.createdAtMs
  })
}
