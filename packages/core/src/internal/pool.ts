/**
 * The pool's machinery. Data flows one way:
 *
 *   push → linger buffer → run queue → worker → end (callback, handle, failure queue)
 *                              ↑           │
 *                              └─ backoff ←┘ (a failed attempt that may retry)
 *
 * Each task is one plain `Entry`; the pool's counters are one plain `state`
 * object, touched only in synchronous steps (JavaScript runs one fiber step
 * at a time, so no step sees another half-done). A fixed set of long-lived
 * worker fibers bounds the attempts running at once; one linger fiber times
 * the whole linger batch; backoffs are fibers in a `FiberSet` that hold no worker.
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, FiberSet, Latch, Queue, Semaphore, Stream } from "effect"
import type { Scope } from "effect"
import type { TaskPoolConfig } from "../Config.js"
import { PoolClosedError, PoolFullError, TaskTimeoutError } from "../errors.js"
import type { Task } from "../Task.js"
import type { TaskHandle, TaskPoolService, TaskPoolStats } from "../TaskPool.js"
import { Attempt, TaskResult } from "../TaskResult.js"
import { describeFailure } from "./outcome.js"
import { delayAfter, retryDelays } from "./retryDelays.js"

type AnyTask = Task<unknown, unknown, unknown>
type AnyResult = TaskResult<unknown, unknown>

/** One pushed task, from push to end. */
interface Entry {
  readonly taskId: string
  readonly task: AnyTask
  /** The pusher's services, provided to `execute` and the callbacks. */
  readonly context: Context.Context<unknown>
  readonly createdAtMs: number
  readonly result: Deferred.Deferred<AnyResult>
  /** The newest `maxReservedAttempts` attempts; allocated at the first attempt. */
  attempts: Array<Attempt> | undefined
  attemptCount: number
}

/** Why a task that did not succeed ended. */
interface Failed {
  readonly exit: Exit.Exit<unknown, unknown>
  readonly errorCode: string
  readonly errorMessage: string
}

const interruptedByClose = (): Failed => ({
  exit: Exit.failCause(Cause.interrupt()),
  errorCode: "Interrupted",
  errorMessage: "interrupted by the pool's limited close"
})

/** Builds a pool in the current scope; closing the scope is the pool's close. */
export const make = (config: TaskPoolConfig): Effect.Effect<TaskPoolService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const delays = yield* retryDelays({
      baseMs: config.baseRetryBackOffMs,
      maxMs: config.maxRetryBackOffMs,
      maxRetryTimes: config.maxRetryTimes
    })

    const state = {
      closed: false,
      /** Set by a limited close once its timeout has passed: whatever is left ends "Interrupted". */
      interrupting: false,
      nextId: 0,
      lingering: [] as Array<Entry>,
      lingerStartedAtMs: 0,
      running: 0,
      retrying: new Set<Entry>(),
      unfinished: 0,
      pushed: 0,
      succeeded: 0,
      failed: 0,
      droppedFailures: 0
    }

    const runQueue = yield* Queue.unbounded<Entry>()
    const failureQueue = yield* Queue.unbounded<AnyResult, Cause.Done>()
    /** One permit per unfinished task: `push` takes one, a task's end gives it back. */
    const room = yield* Semaphore.make(config.maxTaskNum)
    /** Open while no task is unfinished. */
    const idle = Latch.makeUnsafe(true)
    /** Open while the linger buffer holds a task. */
    const lingerPending = Latch.makeUnsafe(false)
    /** Opens when the pool closes, to fail pushes still waiting for room. */
    const closing = Latch.makeUnsafe(false)
    const backoffs = yield* FiberSet.make<void>()

    const closedError = () => new PoolClosedError({ message: "the task pool is closed" })

    // ── end ──────────────────────────────────────────────────────────────

    const recordFailure = (result: AnyResult) => {
      if (config.maxFailedTasks === 0) {
        state.droppedFailures++
        return
      }
      if (Queue.sizeUnsafe(failureQueue) >= config.maxFailedTasks) {
        Queue.takeUnsafe(failureQueue)
        state.droppedFailures++
      }
      Queue.offerUnsafe(failureQueue, result)
    }

    const runCallback = (entry: Entry, result: AnyResult) => {
      const callback = result.successful ? entry.task.onSuccess : entry.task.onFail
      if (callback === undefined) return Effect.void
      return Effect.suspend(() => callback(result)).pipe(
        Effect.provideContext(entry.context),
        Effect.catchCause((cause) =>
          Effect.logError(
            `TaskPool: the ${result.successful ? "onSuccess" : "onFail"} callback of task ${entry.taskId} (${entry.task.name}) failed`,
            cause
          )
        )
      )
    }

    /** Ends a task exactly once: its result, its callback, its handle, the failure queue, the counters. */
    const end = (entry: Entry, outcome: { readonly value: unknown } | Failed) =>
      Effect.suspend(() => {
        const attempts = entry.attempts ?? []
        const base = {
          taskId: entry.taskId,
          name: entry.task.name,
          attempts,
          attemptCount: entry.attemptCount,
          createdAtMs: entry.createdAtMs,
          completedAtMs: now()
        }
        const result: AnyResult = "value" in outcome
          ? new TaskResult({ ...base, successful: true, exit: Exit.succeed(outcome.value) })
          : new TaskResult({
            ...base,
            successful: false,
            exit: outcome.exit,
            errorCode: outcome.errorCode,
            errorMessage: outcome.errorMessage
          })
        return Effect.as(runCallback(entry, result), result)
      }).pipe(
        Effect.flatMap((result) => {
          Deferred.doneUnsafe(entry.result, Exit.succeed(result))
          if (result.successful) {
            state.succeeded++
          } else {
            state.failed++
            recordFailure(result)
          }
          if (--state.unfinished === 0) idle.openUnsafe()
          return room.release(1)
        })
      )

    // ── linger ───────────────────────────────────────────────────────────

    const flushLinger = () => {
      const batch = state.lingering
      if (batch.length === 0) return
      state.lingering = []
      lingerPending.closeUnsafe()
      Queue.offerAllUnsafe(runQueue, batch)
    }

    /** Queues the linger batch when its first task has lingered `lingerMs`. */
    const lingerTimer = Effect.gen(function*() {
      while (true) {
        yield* lingerPending.await
        const wait = state.lingerStartedAtMs + config.lingerMs - now()
        if (wait > 0) yield* Effect.sleep(wait)
        else flushLinger()
      }
    })

    // ── workers ──────────────────────────────────────────────────────────

    const attemptOf = (entry: Entry): Effect.Effect<unknown, unknown> => {
      const { execute, timeout, name } = entry.task
      const timed = timeout === undefined ? execute : Effect.timeoutOrElse(execute, {
        duration: timeout,
        orElse: () =>
          Effect.die(
            new TaskTimeoutError({
              message: `task ${entry.taskId} (${name}) timed out after ${Duration.toMillis(timeout)} ms`,
              taskId: entry.taskId,
              name,
              timeoutMs: Duration.toMillis(timeout)
            })
          )
      })
      return Effect.provideContext(timed, entry.context)
    }

    const recordAttempt = (entry: Entry, attempt: Attempt) => {
      const attempts = entry.attempts ?? (entry.attempts = [])
      attempts.push(attempt)
      if (attempts.length > config.maxReservedAttempts) attempts.shift()
    }

    const scheduleRetry = (entry: Entry) => {
      const delay = delayAfter(delays, entry.attemptCount)
      if (delay <= 0) {
        Queue.offerUnsafe(runQueue, entry)
        return Effect.void
      }
      state.retrying.add(entry)
      return FiberSet.run(
        backoffs,
        Effect.andThen(Effect.sleep(delay), Effect.sync(() => {
          state.retrying.delete(entry)
          Queue.offerUnsafe(runQueue, entry)
        }))
      ).pipe(Effect.asVoid)
    }

    /** Runs one attempt of `entry`; only the attempt itself is interruptible. */
    const runAttempt = (entry: Entry, restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const number = ++entry.attemptCount
        state.running++
        const startedAtMs = now()
        const exit = yield* Effect.exit(restore(attemptOf(entry)))
        const endedAtMs = now()
        state.running--
        if (Exit.isSuccess(exit)) {
          recordAttempt(entry, new Attempt({ number, success: true, startedAtMs, endedAtMs }))
          return yield* end(entry, { value: exit.value })
        }
        const failure = describeFailure(exit.cause)
        recordAttempt(
          entry,
          new Attempt({
            number,
            success: false,
            startedAtMs,
            endedAtMs,
            errorCode: failure.errorCode,
            errorMessage: failure.errorMessage
          })
        )
        const failed: Failed = { exit, errorCode: failure.errorCode, errorMessage: failure.errorMessage }
        if (state.interrupting) {
          return yield* end(entry, { ...interruptedByClose(), exit })
        }
        const retriesLeft = number <= config.maxRetryTimes
        if (!retriesLeft || (failure.typed !== undefined && !isRetryable(entry.task, failure.typed.error))) {
          return yield* end(entry, failed)
        }
        return yield* scheduleRetry(entry)
      })

    const worker = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        while (true) {
          const entry = yield* restore(Queue.take(runQueue))
          yield* runAttempt(entry, restore)
        }
      })
    )

    const workers = yield* Effect.forEach(
      Array.from({ length: config.maxIoWorkerNum }),
      () => Effect.forkScoped(worker, { startImmediately: true })
    )
    const lingerFiber = yield* Effect.forkScoped(lingerTimer, { startImmediately: true })

    // ── push ─────────────────────────────────────────────────────────────

    const accept = (task: AnyTask, context: Context.Context<unknown>): TaskHandle<unknown, unknown> => {
      const entry: Entry = {
        taskId: `task-${++state.nextId}`,
        task,
        context,
        createdAtMs: now(),
        result: Deferred.makeUnsafe<AnyResult>(),
        attempts: undefined,
        attemptCount: 0
      }
      state.pushed++
      if (state.unfinished++ === 0) idle.closeUnsafe()
      if (state.lingering.push(entry) === 1) {
        state.lingerStartedAtMs = entry.createdAtMs
        lingerPending.openUnsafe()
      }
      if (state.lingering.length >= config.maxIoWorkerNum) flushLinger()
      return { taskId: entry.taskId, result: Deferred.await(entry.result) }
    }

    const full = (waitedMs: number) =>
      new PoolFullError({
        message: `the task pool holds maxTaskNum = ${config.maxTaskNum} unfinished tasks` +
          (waitedMs > 0 ? ` and no room freed up within maxBlockMs = ${waitedMs} ms` : ""),
        maxTaskNum: config.maxTaskNum,
        waitedMs
      })

    /** Waits for room as `maxBlockMs` says, failing with `PoolClosedError` if the pool closes first. */
    const waitForRoom: Effect.Effect<void, PoolClosedError | PoolFullError> = (() => {
      if (config.maxBlockMs === 0) return Effect.fail(full(0))
      const take = Effect.asVoid(room.take(1))
      const bounded = config.maxBlockMs < 0 ? take : Effect.timeoutOrElse(take, {
        duration: config.maxBlockMs,
        orElse: () => Effect.fail(full(config.maxBlockMs))
      })
      return Effect.raceFirst(bounded, Effect.andThen(closing.await, Effect.fail(closedError())))
    })()

    const push = <A, E, R>(task: Task<A, E, R>): Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R> =>
      Effect.suspend(() => {
        if (state.closed) return Effect.fail(closedError())
        return Effect.flatMap(room.takeIfAvailable(1), (took) =>
          took ? Effect.void : Effect.andThen(waitForRoom, Effect.suspend(() => {
            if (!state.closed) return Effect.void
            return Effect.andThen(room.release(1), Effect.fail(closedError()))
          })))
      }).pipe(
        Effect.andThen(Effect.context<R>()),
        Effect.map((context) => accept(task as AnyTask, context as Context.Context<unknown>) as TaskHandle<A, E>)
      )

    // ── close ────────────────────────────────────────────────────────────

    const interruptRest = Effect.gen(function*() {
      state.interrupting = true
      yield* Fiber.interruptAll(workers)
      yield* FiberSet.clear(backoffs)
      for (const entry of state.retrying) yield* end(entry, interruptedByClose())
      state.retrying.clear()
      for (const entry of yield* Queue.clear(runQueue)) yield* end(entry, interruptedByClose())
    })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        state.closed = true
        closing.openUnsafe()
        yield* Fiber.interrupt(lingerFiber)
        flushLinger()
        if (config.shutdownTimeoutMs === undefined) {
          yield* idle.await
        } else {
          const drained = yield* Effect.interruptible(idle.await).pipe(Effect.timeoutOption(config.shutdownTimeoutMs))
          if (drained._tag === "None") yield* interruptRest
        }
        yield* Fiber.interruptAll(workers)
        Queue.endUnsafe(failureQueue)
      })
    )

    const stats = Effect.sync((): TaskPoolStats => ({
      lingering: state.lingering.length,
      queued: Queue.sizeUnsafe(runQueue),
      running: state.running,
      retrying: state.retrying.size,
      succeeded: state.succeeded,
      failed: state.failed,
      pushed: state.pushed,
      droppedFailures: state.droppedFailures
    }))

    return {
      push,
      failures: Stream.fromQueue(failureQueue),
      stats,
      awaitIdle: idle.await
    }
  })

const isRetryable = (task: AnyTask, error: unknown): boolean => {
  if (task.retryable === undefined) return true
  try {
    return task.retryable(error)
  } catch {
    return false
  }
}
