/**
 * One pushed task's state, from push to end. The entry is also the task's
 * `TaskHandle`, so a push allocates one object. Its `TaskResult` is built
 * once, and only when someone reads it (a callback, the handle, the failure
 * queue); the `Deferred` behind `result` is made only if someone waits
 * before the task has ended.
 */
import { Deferred, Effect, Exit } from "effect"
import type { Context, Duration, Tracer } from "effect"
import type { Task } from "../Task.js"
import type { TaskHandle } from "../TaskPool.js"
import { Attempt, TaskResult } from "../TaskResult.js"
import type { Scheduling } from "./pushOptions.js"

export type AnyTask = Task<unknown, unknown, unknown>
export type AnyResult = TaskResult<unknown, unknown>

/** How a task ended. */
export type Outcome =
  | { readonly _tag: "Succeeded"; readonly exit: Exit.Success<unknown, unknown> }
  | {
    readonly _tag: "Failed"
    readonly exit: Exit.Exit<unknown, unknown>
    readonly errorCode: string
    readonly errorMessage: string
  }

/** Where a task is. Each unfinished state is counted in exactly one of the stats' four. */
export const State = {
  /** In the linger batch (stats: lingering). */
  Lingering: 0,
  /** Waiting out its push `delay` (stats: lingering). */
  Delayed: 1,
  /** Waiting for its `key`, held by an earlier task (stats: queued). */
  Parked: 2,
  /** In the ready queue (stats: queued). */
  Ready: 3,
  /** Its attempt is running (stats: running). */
  Running: 4,
  /** Waiting out a retry backoff (stats: retrying). */
  Retrying: 5,
  /** Ended; its callback is running (stats: running). */
  Ending: 6,
  /** Settled: the handle's `result` is ready. */
  Settled: 7
} as const

export type State = typeof State[keyof typeof State]

/** What an entry asks of its pool: the handle's `cancel`, and how many attempts a result keeps. */
export interface EntryOwner {
  readonly cancel: (entry: Entry) => Effect.Effect<void>
  readonly maxReservedAttempts: number
}

/** A custom retry schedule's step function, made at the task's first failure. */
export type RetryStep = (now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>

export class Entry implements TaskHandle<unknown, unknown> {
  state: State = State.Lingering
  attemptCount = 0
  /** When the current attempt started. */
  startedAtMs = 0
  /** The newest failed attempts, at most `maxReservedAttempts`; allocated at the first failure. */
  failedAttempts: Array<Attempt> | undefined = undefined
  /** Set once, when the task ends (before its callback runs). */
  outcome: Outcome | undefined = undefined
  completedAtMs = 0
  /** The pusher's services with the task's log annotations; made at the first attempt. */
  runContext: Context.Context<unknown> | undefined = undefined
  private built: AnyResult | undefined = undefined
  private waiting: Deferred.Deferred<AnyResult> | undefined = undefined

  constructor(
    readonly id: number,
    readonly task: AnyTask,
    /** The pusher's services, provided to `execute` and the callbacks. */
    readonly context: Context.Context<unknown>,
    readonly createdAtMs: number,
    /** The task's span, when the pusher traces. */
    readonly span: Tracer.Span | undefined,
    /** Its push options; `undefined` for a push without any. */
    readonly scheduling: Scheduling | undefined,
    private readonly pool: EntryOwner
  ) {}

  get priority(): number {
    return this.scheduling === undefined ? 0 : this.scheduling.priority
  }

  get cancel(): Effect.Effect<void> {
    return this.pool.cancel(this)
  }

  get taskId(): string {
    return `task-${this.id}`
  }

  get result(): Effect.Effect<AnyResult> {
    return Effect.suspend(() =>
      this.state === State.Settled
        ? Effect.succeed(this.toResult())
        : Deferred.await(this.waiting ??= Deferred.makeUnsafe())
    )
  }

  recordFailedAttempt(attempt: Attempt): void {
    const attempts = this.failedAttempts ??= []
    attempts.push(attempt)
    if (attempts.length > this.pool.maxReservedAttempts) attempts.shift()
  }

  /** Records how the task ended; its result is built later, on demand. */
  end(outcome: Outcome, completedAtMs: number): void {
    this.outcome = outcome
    this.completedAtMs = completedAtMs
  }

  /** After the callback: the handle's `result` completes. */
  settle(): void {
    this.state = State.Settled
    if (this.waiting !== undefined) Deferred.doneUnsafe(this.waiting, Exit.succeed(this.toResult()))
  }

  /** The task's result, built once. Only valid after `end`. */
  toResult(): AnyResult {
    if (this.built !== undefined) return this.built
    const outcome = this.outcome!
    const attempts = this.failedAttempts === undefined ? [] : [...this.failedAttempts]
    if (outcome._tag === "Succeeded") {
      attempts.push(
        new Attempt({
          number: this.attemptCount,
          success: true,
          startedAtMs: this.startedAtMs,
          endedAtMs: this.completedAtMs
        })
      )
      if (attempts.length > this.pool.maxReservedAttempts) attempts.shift()
    }
    const common = {
      taskId: this.taskId,
      name: this.task.name,
      attempts,
      attemptCount: this.attemptCount,
      createdAtMs: this.createdAtMs,
      completedAtMs: this.completedAtMs
    }
    return this.built = outcome._tag === "Succeeded"
      ? new TaskResult({ ...common, successful: true, exit: outcome.exit })
      : new TaskResult({
        ...common,
        successful: false,
        exit: outcome.exit,
        errorCode: outcome.errorCode,
        errorMessage: outcome.errorMessage
      })
  }
}
