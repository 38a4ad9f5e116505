/**
 * The worker side: takers that claim elements from each definition's
 * PersistedQueue, run one attempt each, and write its end to the task record.
 *
 * Data flow: claim (PersistedQueue) → start (record: running) → execute →
 * finish (record: succeeded / failed / retrying) → acknowledge (PersistedQueue:
 * complete, or retry after the backoff). A final failure is completed in the
 * queue too: the record, not the queue, is where a task's end is kept.
 */
import type { Scope } from "effect"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Schedule, Schema, Semaphore } from "effect"
import { PersistedQueue } from "effect/persistence"
import { TaskTimeoutError } from "@taskpool/core"
import { backoffFormula, describeFailure } from "@taskpool/core/internal"
import type { DurableWorkerConfig } from "../Config.js"
import type { DurableStoreService } from "../DurableStore.js"
import type { DurableStoreError } from "../errors.js"
import type { AnyTaskDefinition } from "../TaskDefinition.js"
import type { AttemptEnd, QueueElement, StoredAttempt, StoredFailure, TaskRecord } from "./records.js"
import { toJson } from "./records.js"

/** The schema of a queue element. */
export const QueueElementSchema = Schema.Struct({ taskId: Schema.String, generation: Schema.Number })

/** Tells PersistedQueue to retry the element after its backoff; the attempt is already recorded. */
class RetryLater {
  readonly _tag = "RetryLater"
}

/**
 * A claim whose process died before the attempt started is not an attempt,
 * but the queue counts it; it gives up on an element after the budget plus
 * this many claims (the pool ends the task long before, at its budget).
 */
const spareClaims = 100

/** Takers per attempt slot (see where takers start). */
const takersPerSlot = 2

/** Store writes inside an attempt are retried briefly: a blip must not cost the task an attempt. */
const storeRetry = Schedule.exponential(Duration.millis(50)).pipe(Schedule.upTo({ duration: Duration.seconds(10) }))

const attemptsBudget = (maxRetryTimes: number): number => Math.max(maxRetryTimes, 0) + 1

const lostAttempt = (number: number, atMs: number): StoredAttempt => ({
  number,
  success: false,
  startedAtMs: atMs,
  endedAtMs: atMs,
  errorCode: "Lost",
  errorMessage: "the process running this attempt stopped before it ended; its claim expired"
})

/** What an attempt's end needs to write it. */
interface Claim {
  readonly record: TaskRecord
  /** The queue's count of claims (PersistedQueue's attempt number): the fence for every write. */
  readonly claim: number
  /** This attempt's number: attempts started so far, this one included. */
  readonly number: number
  readonly earlier: ReadonlyArray<StoredAttempt>
  readonly startedAtMs: number
}

const failedAttempt = (claim: Claim, endedAtMs: number, errorCode: string, errorMessage: string): StoredAttempt => ({
  number: claim.number,
  success: false,
  startedAtMs: claim.startedAtMs,
  endedAtMs,
  errorCode,
  errorMessage
})

interface Taker {
  /** Running an attempt: a safe close waits for it; any other taker is interrupted at once. */
  busy: boolean
  fiber: Fiber.Fiber<void, never> | undefined
}

/**
 * Starts the takers of every definition in `scope`, and returns the close:
 * stop claiming at once, let running attempts finish (safe close) or cut them
 * off after `shutdownTimeoutMs` (limited close; their tasks go back to the
 * store with no attempt counted).
 */
export const startWorkers = Effect.fnUntraced(function*(options: {
  readonly store: DurableStoreService
  readonly definitions: ReadonlyArray<AnyTaskDefinition>
  readonly config: DurableWorkerConfig
  readonly scope: Scope.Scope
}) {
  const { config, definitions, store } = options
  const factory = yield* PersistedQueue.makeFactory.pipe(
    Effect.provideService(PersistedQueue.PersistedQueueStore, store.queue)
  )
  const permits = yield* Semaphore.make(config.maxIoWorkerNum)
  const takers: Array<Taker> = []
  let closing = false

  const keep = (attempts: ReadonlyArray<StoredAttempt>): ReadonlyArray<StoredAttempt> =>
    attempts.length > config.maxReservedAttempts ? attempts.slice(attempts.length - config.maxReservedAttempts) : attempts

  for (const definition of definitions) {
    const maxRetryTimes = definition.maxRetryTimes ?? config.maxRetryTimes
    const budget = attemptsBudget(maxRetryTimes)
    const queue = yield* factory.make({
      name: definition.name,
      schema: QueueElementSchema,
      maxAttempts: budget + spareClaims,
      retrySchedule: backoffFormula(
        definition.baseRetryBackOffMs ?? config.baseRetryBackOffMs,
        definition.maxRetryBackOffMs ?? config.maxRetryBackOffMs
      )
    })

    const finish = (claim: Claim, end: AttemptEnd) =>
      store.finish(claim.record.taskId, claim.record.generation, claim.claim, end).pipe(Effect.retry(storeRetry))

    const endFailed = (
      claim: Claim,
      attempts: ReadonlyArray<StoredAttempt>,
      failure: StoredFailure,
      nowMs: number,
      attemptCount = claim.number
    ) =>
      finish(claim, {
        state: "failed",
        attempts: keep(attempts),
        attemptCount,
        failure,
        completedAtMs: nowMs
      })

    /** A value a schema refuses ends the task failed: another attempt would meet the same schema. */
    const endBySchema = (claim: Claim, atMs: number, what: string, schema: string, cause: Cause.Cause<unknown>) => {
      const message = `${what} ${definition.name}'s ${schema} schema: ${Cause.pretty(cause)}`
      return endFailed(claim, [...claim.earlier, failedAttempt(claim, atMs, "SchemaError", message)], {
        errorCode: "SchemaError",
        errorMessage: message,
        kind: "die",
        error: toJson(Cause.squash(cause))
      }, atMs)
    }

    /** Writes an attempt's end; `RetryLater` asks the queue for a retry. */
    const recordEnd = (claim: Claim, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void, RetryLater | DurableStoreError> =>
      Effect.gen(function*() {
        const { earlier, number, startedAtMs } = claim
        const endedAtMs = yield* Clock.currentTimeMillis
        if (Exit.isSuccess(exit)) {
          const value = definition.successJson === undefined
            ? Exit.succeed(toJson(exit.value))
            : yield* Effect.exit(Schema.encodeUnknownEffect(definition.successJson)(exit.value))
          if (Exit.isSuccess(value)) {
            yield* finish(claim, {
              state: "succeeded",
              attempts: keep([...earlier, { number, success: true, startedAtMs, endedAtMs }]),
              attemptCount: number,
              value: value.value,
              completedAtMs: endedAtMs
            })
            return
          }
          // A value the success schema cannot store fails the task: running it again would not help.
          yield* endBySchema(claim, endedAtMs, "the value does not encode with", "success", value.cause)
          return
        }
        const failure = describeFailure(exit.cause)
        const attempts = [...earlier, failedAttempt(claim, endedAtMs, failure.errorCode, failure.errorMessage)]
        const retryable = failure.typed === undefined || isRetryable(definition, failure.typed.error)
        if (retryable && number < budget) {
          const applied = yield* finish(claim, { state: "retrying", attempts: keep(attempts), attemptCount: number })
          if (applied) return yield* Effect.fail(new RetryLater())
          return
        }
        yield* endFailed(claim, attempts, {
          errorCode: failure.errorCode,
          errorMessage: failure.errorMessage,
          kind: failure.typed === undefined ? "die" : "fail",
          error: toJson(failure.typed === undefined ? Cause.squash(exit.cause) : failure.typed.error)
        }, endedAtMs)
      })

    const timed = (record: TaskRecord, execute: Effect.Effect<unknown, unknown>) => {
      const timeout = definition.timeout
      if (timeout === undefined) return execute
      return Effect.timeoutOrElse(execute, {
        duration: timeout,
        orElse: () =>
          Effect.die(
            new TaskTimeoutError({
              message: `task ${record.taskId} (${definition.name}) timed out after ${Duration.toMillis(timeout)} ms`,
              taskId: record.taskId,
              name: definition.name,
              timeoutMs: Duration.toMillis(timeout)
            })
          )
      })
    }

    /** One claimed element: start it, run one attempt, record its end. */
    const runClaim = (element: QueueElement, claimed: number): Effect.Effect<void, RetryLater | DurableStoreError> =>
      Effect.gen(function*() {
        const record = yield* store.start(element.taskId, element.generation, claimed).pipe(Effect.retry(storeRetry))
        // Ended, requeued since, or unknown: this element is stale and is acknowledged unrun.
        if (record === undefined) return
        const startedAtMs = yield* Clock.currentTimeMillis
        const number = record.attemptCount
        // Attempts that started but never recorded an end: their process died mid-attempt.
        const lastRecorded = record.attempts.at(-1)?.number ?? 0
        const lost: Array<StoredAttempt> = []
        for (let n = lastRecorded + 1; n < Math.min(number, budget + 1); n++) lost.push(lostAttempt(n, startedAtMs))
        const earlier = [...record.attempts, ...lost]
        const claim: Claim = { record, claim: claimed, number, earlier, startedAtMs }

        if (number > budget) {
          // Not an attempt: it only ends the task whose last attempt was lost.
          yield* endFailed(claim, earlier, {
            errorCode: "Lost",
            errorMessage: `the last attempt (${budget}) was lost: its process stopped before it ended`,
            kind: "die",
            error: { message: "attempt lost" }
          }, startedAtMs, number - 1)
          return
        }
        const payload = yield* Effect.exit(Schema.decodeUnknownEffect(definition.payloadJson)(record.payload))
        if (Exit.isFailure(payload)) {
          yield* endBySchema(claim, startedAtMs, "the stored payload does not decode with", "payload", payload.cause)
          return
        }
        const exit = yield* Effect.exit(timed(record, definition.execute(payload.value) as Effect.Effect<unknown, unknown>))
        // The attempt has ended: a close must not cut its write short.
        yield* Effect.uninterruptible(recordEnd(claim, exit))
      }).pipe(
        // Cut off by a limited close: the task goes back to queued, the attempt uncounted.
        Effect.onInterrupt(() =>
          store.release(element.taskId, element.generation, claimed).pipe(Effect.retry(storeRetry), Effect.ignore)
        )
      )

    const take = (taker: Taker) =>
      queue.take((element, meta) =>
        permits.withPermit(Effect.suspend(() => {
          // Claimed ahead, and the close began before its attempt could start: hand it back uncounted.
          if (closing) return Effect.interrupt
          taker.busy = true
          return runClaim(element, meta.attempts)
        })).pipe(
          Effect.ensuring(Effect.sync(() => {
            taker.busy = false
          }))
        )
      )

    const takeOnce = (taker: Taker): Effect.Effect<void> =>
      take(taker).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause as Cause.Cause<never>)
            : Cause.squash(cause) instanceof RetryLater
            ? Effect.void
            : Effect.logWarning(`taskpool durable: a ${definition.name} taker failed; retrying in 1 s`, cause).pipe(
              Effect.andThen(Effect.sleep(Duration.seconds(1)))
            )
        )
      )
    // A tail call through flatMap: the loop runs for the pool's life without growing the stack.
    const takerLoop = (taker: Taker): Effect.Effect<void> =>
      Effect.suspend(() => closing ? Effect.void : Effect.flatMap(takeOnce(taker), () => takerLoop(taker)))

    // PersistedQueue claims rows only for idle takers: spare takers keep the next claims
    // ready while attempts run. Attempts themselves never exceed the slots (`permits`).
    for (let i = 0; i < config.maxIoWorkerNum * takersPerSlot; i++) {
      const taker: Taker = { busy: false, fiber: undefined }
      takers.push(taker)
      taker.fiber = yield* Effect.forkIn(takerLoop(taker), options.scope)
    }
  }

  return Effect.gen(function*() {
    closing = true
    yield* Effect.forEach(takers, (taker) => taker.busy || taker.fiber === undefined ? Effect.void : Fiber.interrupt(taker.fiber), {
      concurrency: "unbounded",
      discard: true
    })
    const fibers = takers.flatMap((taker) => taker.fiber === undefined ? [] : [taker.fiber])
    const all = Effect.forEach(fibers, Fiber.await, { concurrency: "unbounded", discard: true })
    if (config.shutdownTimeoutMs === undefined) return yield* all
    const done = yield* Effect.timeoutOption(all, Duration.millis(config.shutdownTimeoutMs))
    if (done._tag === "None") {
      yield* Effect.forEach(fibers, Fiber.interrupt, { concurrency: "unbounded", discard: true })
    }
  })
})

const isRetryable = (definition: AnyTaskDefinition, error: unknown): boolean => {
  if (definition.retryable === undefined) return true
  try {
    return definition.retryable(error)
  } catch {
    return false
  }
}
