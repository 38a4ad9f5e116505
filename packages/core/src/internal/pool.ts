/**
 * The pool's machinery. Data flows one way:
 *
 *   push → linger buffer → run queue → worker → end (callback, handle, failure queue)
 *                              ↑           │
 *                              └─ backoff ←┘ (a failed attempt that may retry)
 *
 * Each task is one `Entry`; the pool's counters are one plain `state` object,
 * touched only in synchronous steps (one fiber step runs at a time, so no step
 * sees another half-done). A fixed set of long-lived worker fibers bounds the
 * attempts running at once; one linger fiber times the whole linger batch;
 * backoffs are fibers in a `FiberSet` and hold no worker.
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, FiberSet, Latch, Queue, Stream } from "effect"
import type { Context, Scope, Tracer } from "effect"
import type { TaskPoolConfig } from "../Config.js"
import { PoolClosedError, PoolFullError, TaskTimeoutError } from "../errors.js"
import { invalidTask } from "../Task.js"
import type { Task } from "../Task.js"
import type { TaskHandle, TaskPoolService, TaskPoolStats } from "../TaskPool.js"
import { Attempt } from "../TaskResult.js"
import { Entry } from "./entry.js"
import type { AnyResult, AnyTask, Outcome } from "./entry.js"
import { annotateOutcome, isTracing, registerMetrics, tracedAttempt, withTaskAnnotations } from "./observability.js"
import { describeFailure } from "./outcome.js"
import { delayAfter, retryDelays } from "./retryDelays.js"

type Failed = Extract<Outcome, { readonly _tag: "Failed" }>

const interruptedByClose = (exit: Exit.Exit<unknown, unknown> = Exit.failCause(Cause.interrupt())): Failed => ({
  _tag: "Failed",
  exit,
  errorCode: "Interrupted",
  errorMessage: "interrupted by the pool's limited close"
})

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

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
      /** Attempts running. */
      running: 0,
      /** Tasks whose callback is running: ended, not yet settled. */
      ending: 0,
      retrying: new Set<Entry>(),
      unfinished: 0,
      pushed: 0,
      succeeded: 0,
      failed: 0,
      droppedFailures: 0,
      retriedAttempts: 0,
      rejectedPushes: 0
    }

    const runQueue = yield* Queue.unbounded<Entry>()
    const failureQueue = yield* Queue.unbounded<AnyResult, Cause.Done>()
    /** Open while fewer than `maxTaskNum` tasks are unfinished: pushes waiting for room wait on it. */
    const room = Latch.makeUnsafe(true)
    /** Open while no task is unfinished. */
    const idle = Latch.makeUnsafe(true)
    /** Open while the linger buffer holds a task. */
    const lingerPending = Latch.makeUnsafe(false)
    /** Opens when the pool closes, to fail pushes still waiting for room. */
    const closing = Latch.makeUnsafe(false)
    const backoffs = yield* FiberSet.make<void>()
    const callbacks = yield* FiberSet.make<void>()
    const metrics = registerMetrics(config.name, yield* Effect.context<never>(), {
      pushed: () => state.pushed,
      succeeded: () => state.succeeded,
      failed: () => state.failed,
      retriedAttempts: () => state.retriedAttempts,
      droppedFailures: () => state.droppedFailures,
      rejectedPushes: () => state.rejectedPushes,
      lingering: () => state.lingering.length,
      queued: () => Queue.sizeUnsafe(runQueue),
      running: () => state.running,
      ending: () => state.ending,
      retrying: () => state.retrying.size
    })

    const closedError = () => new PoolClosedError({ message: "the task pool is closed" })
    const rejected = <E>(error: E) => {
      state.rejectedPushes++
      return Effect.fail(error)
    }

    const runContextOf = (entry: Entry) =>
      entry.runContext ??= withTaskAnnotations(entry.context, entry.taskId, entry.task.name)

    /**
     * Runs `effect` with exactly the pusher's services (and the task's log
     * annotations). Swapping the context in is much cheaper than merging it
     * into the worker's, as `Effect.provideContext` would.
     */
    const withServicesOf = <A, E>(entry: Entry, effect: Effect.Effect<A, E, unknown>): Effect.Effect<A, E> =>
      Effect.updateContext(effect as Effect.Effect<A, E>, () => runContextOf(entry) as Context.Context<never>)

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

    const callbackOf = (entry: Entry) => {
      const succeeded = entry.outcome!._tag === "Succeeded"
      const callback = succeeded ? entry.task.onSuccess : entry.task.onFail
      if (callback === undefined) return undefined
      const which = `the ${succeeded ? "onSuccess" : "onFail"} callback of task ${entry.taskId} (${entry.task.name})`
      return Effect.suspend(() => callback(entry.toResult())).pipe(
        Effect.catchCause((cause) => Effect.logError(`TaskPool: ${which} failed`, cause)),
        Effect.onInterrupt(() => Effect.logWarning(`TaskPool: ${which} was cut off by the pool's limited close`)),
        (effect) => withServicesOf(entry, effect)
      )
    }

    /** After the callback: the counters, the failure queue, the room, then the handle. */
    const settle = (entry: Entry) => {
      if (entry.outcome!._tag === "Succeeded") {
        state.succeeded++
      } else {
        state.failed++
        recordFailure(entry.toResult())
      }
      if (state.unfinished-- === config.maxTaskNum) room.openUnsafe()
      if (state.unfinished === 0) idle.openUnsafe()
      // Last, so whoever awaits the handle sees the counters already updated.
      entry.settle()
      return undefined
    }

    const endSpan = (entry: Entry, span: Tracer.Span) => {
      const outcome = entry.outcome!
      const exit = outcome._tag === "Succeeded" ? Exit.succeed(outcome.value) : outcome.exit
      annotateOutcome(span, exit, outcome._tag === "Failed" ? outcome.errorCode : undefined)
      span.attribute("taskpool.attempts", entry.attemptCount)
      span.end(clock.currentTimeNanosUnsafe(), exit)
    }

    /**
     * Ends a task exactly once: its outcome, its callback, then `settle`. A
     * callback runs in a fiber of its own, so it holds no worker; the task
     * settles when it returns (or, in a limited close, is cut off). Returns
     * the fork of the callback, if there is one.
     */
    const end = (entry: Entry, completedAtMs: number, outcome: Outcome) => {
      entry.end(outcome, completedAtMs)
      metrics.taskDuration(completedAtMs - entry.createdAtMs)
      if (entry.span !== undefined) endSpan(entry, entry.span)
      const callback = callbackOf(entry)
      if (callback === undefined) return settle(entry)
      state.ending++
      return FiberSet.run(
        callbacks,
        Effect.ensuring(callback, Effect.sync(() => {
          state.ending--
          settle(entry)
        })),
        { startImmediately: true }
      )
    }

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
      const { execute, name, timeout } = entry.task
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
      const traced = entry.span === undefined ? timed : tracedAttempt(timed, entry.span, entry.taskId, entry.attemptCount)
      // An attempt that is already an Exit runs no code, so it needs no services.
      return Exit.isExit(traced) ? traced : withServicesOf(entry, traced)
    }

    const retryLater = (entry: Entry, delay: number) => {
      state.retrying.add(entry)
      return FiberSet.run(
        backoffs,
        Effect.andThen(
          Effect.sleep(delay),
          Effect.sync(() => {
            state.retrying.delete(entry)
            Queue.offerUnsafe(runQueue, entry)
          })
        )
      )
    }

    /**
     * What follows a failed attempt: the end, or a retry. A retry after no
     * backoff goes straight back to the run queue; otherwise it waits on a timer.
     */
    const afterFailure = (entry: Entry, endedAtMs: number, exit: Exit.Failure<unknown, unknown>) => {
      const failure = describeFailure(exit.cause)
      entry.recordFailedAttempt(
        new Attempt({
          number: entry.attemptCount,
          success: false,
          startedAtMs: entry.startedAtMs,
          endedAtMs,
          errorCode: failure.errorCode,
          errorMessage: failure.errorMessage
        })
      )
      if (state.interrupting) return end(entry, endedAtMs, interruptedByClose(exit))
      const final = entry.attemptCount > config.maxRetryTimes ||
        (failure.typed !== undefined && !isRetryable(entry.task, failure.typed.error))
      if (final) {
        return end(entry, endedAtMs, { _tag: "Failed", exit, errorCode: failure.errorCode, errorMessage: failure.errorMessage })
      }
      state.retriedAttempts++
      const delay = delayAfter(delays, entry.attemptCount)
      if (delay > 0) return retryLater(entry, delay)
      Queue.offerUnsafe(runQueue, entry)
      return undefined
    }

    /**
     * A worker: takes entries from the run queue one at a time and runs one
     * attempt each. Only the wait for work and the attempt itself are
     * interruptible, so a limited close cuts an attempt off but never a
     * task's bookkeeping or callback. Once a limited close interrupts, it
     * takes nothing more: the close ends what is left in the queue.
     */
    const worker = Effect.uninterruptibleMask((restore: Restore) =>
      Effect.gen(function*() {
        while (!state.interrupting) {
          const taken = Queue.takeUnsafe(runQueue)
          const entry = taken !== undefined && Exit.isSuccess(taken) ? taken.value : yield* restore(Queue.take(runQueue))
          entry.startedAtMs = now()
          if (entry.attemptCount++ === 0) metrics.queueWait(entry.startedAtMs - entry.createdAtMs)
          state.running++
          const exit = yield* Effect.exit(restore(attemptOf(entry)))
          const endedAtMs = now()
          state.running--
          metrics.attemptDuration(endedAtMs - entry.startedAtMs)
          let next: Effect.Effect<unknown> | undefined
          if (Exit.isSuccess(exit)) {
            next = end(entry, endedAtMs, { _tag: "Succeeded", value: exit.value })
          } else {
            next = afterFailure(entry, endedAtMs, exit)
          }
          if (next !== undefined) yield* next
        }
      })
    )

    const workers = yield* Effect.forEach(
      Array.from({ length: config.maxIoWorkerNum }),
      () => Effect.forkScoped(worker, { startImmediately: true })
    )
    const lingerFiber = yield* Effect.forkScoped(lingerTimer, { startImmediately: true })

    // ── push ─────────────────────────────────────────────────────────────

    const accept = (task: AnyTask, context: Context.Context<unknown>, span?: Tracer.Span): Entry => {
      const entry = new Entry(++state.nextId, task, context, now(), config.maxReservedAttempts, span)
      span?.attribute("taskpool.task.id", entry.taskId)
      state.pushed++
      if (state.unfinished++ === 0) idle.closeUnsafe()
      if (state.unfinished === config.maxTaskNum) room.closeUnsafe()
      if (state.lingering.push(entry) === 1) {
        state.lingerStartedAtMs = entry.createdAtMs
        lingerPending.openUnsafe()
      }
      if (state.lingering.length >= config.maxIoWorkerNum) flushLinger()
      return entry
    }

    const full = (waitedMs: number) =>
      new PoolFullError({
        message: `the task pool holds maxTaskNum = ${config.maxTaskNum} unfinished tasks` +
          (waitedMs > 0 ? ` and no room freed up within maxBlockMs = ${waitedMs} ms` : ""),
        maxTaskNum: config.maxTaskNum,
        waitedMs
      })

    /**
     * Waits for room as `maxBlockMs` says, then accepts; fails with
     * `PoolClosedError` if the pool closes first. Woken waiters race for the
     * room freed; a loser waits again.
     */
    const pushWhenRoom = (task: AnyTask): Effect.Effect<Entry, PoolClosedError | PoolFullError> => {
      if (config.maxBlockMs === 0) return rejected(full(0))
      const acceptWhenRoom: Effect.Effect<Entry> = Effect.flatMap(
        room.await,
        () => Effect.withFiber((fiber) => state.unfinished < config.maxTaskNum ? acceptIn(task, fiber) : acceptWhenRoom)
      )
      const bounded = config.maxBlockMs < 0 ? acceptWhenRoom : Effect.timeoutOrElse(acceptWhenRoom, {
        duration: config.maxBlockMs,
        orElse: () => rejected(full(config.maxBlockMs))
      })
      return Effect.raceFirst(bounded, Effect.andThen(closing.await, Effect.suspend(() => rejected(closedError()))))
    }

    /** Accepts a task in the pusher's fiber: its services, and its task span when it traces. */
    const acceptIn = (task: AnyTask, fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<Entry> => {
      const context = fiber.context as Context.Context<unknown>
      if (!isTracing(fiber)) return Effect.succeed(accept(task, context))
      return Effect.map(
        Effect.makeSpan("taskpool.task", { attributes: { "taskpool.task.name": task.name, "taskpool.pool": config.name } }),
        (span) => accept(task, context, span)
      )
    }

    const push = <A, E, R>(task: Task<A, E, R>): Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R> =>
      Effect.withFiber((fiber) => {
        const problem = invalidTask(task)
        if (problem !== undefined) return Effect.die(new TypeError(`TaskPool.push: ${problem}`))
        if (state.closed) return rejected(closedError())
        if (state.unfinished < config.maxTaskNum) return acceptIn(task as AnyTask, fiber)
        return pushWhenRoom(task as AnyTask)
      }) as Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R>

    // ── close ────────────────────────────────────────────────────────────

    /**
     * The limited close's deadline: running attempts are cut off, queued and
     * backing-off tasks taken out, each ending "Interrupted". Their `onFail`
     * callbacks, and callbacks already running, get `graceMs` more; whatever
     * still runs then is cut off, and its task settles all the same.
     */
    const interruptRest = (graceMs: number) =>
      Effect.gen(function*() {
        state.interrupting = true
        yield* Fiber.interruptAll(workers)
        yield* FiberSet.clear(backoffs)
        const left = [...state.retrying, ...(yield* Queue.clear(runQueue))]
        state.retrying.clear()
        for (const entry of left) {
          const callback = end(entry, now(), interruptedByClose())
          if (callback !== undefined) yield* callback
        }
        const finished = yield* Effect.interruptible(FiberSet.awaitEmpty(callbacks)).pipe(Effect.timeoutOption(graceMs))
        if (finished._tag === "None") yield* FiberSet.clear(callbacks)
      })

    /** The close: safe when `timeoutMs` is undefined, limited otherwise. */
    const shutdown = (timeoutMs: number | undefined) =>
      Effect.gen(function*() {
        state.closed = true
        closing.openUnsafe()
        yield* Fiber.interrupt(lingerFiber)
        flushLinger()
        if (timeoutMs === undefined) {
          yield* idle.await
        } else {
          const drained = yield* Effect.interruptible(idle.await).pipe(Effect.timeoutOption(timeoutMs))
          if (drained._tag === "None") yield* interruptRest(timeoutMs)
        }
        yield* Fiber.interruptAll(workers)
        Queue.endUnsafe(failureQueue)
        metrics.unregister()
      })

    /** Completed when the close has finished; made by the first close. */
    let closed: Deferred.Deferred<void> | undefined
    const close = (options?: { readonly timeoutMs?: number | undefined }): Effect.Effect<void> =>
      Effect.suspend(() => {
        const timeoutMs = options?.timeoutMs ?? config.shutdownTimeoutMs
        if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 0)) {
          return Effect.die(new RangeError(`TaskPool.close: timeoutMs must be an integer >= 0, got ${timeoutMs}`))
        }
        if (closed !== undefined) return Deferred.await(closed)
        const done = closed = Deferred.makeUnsafe<void>()
        return Effect.uninterruptible(Effect.ensuring(shutdown(timeoutMs), Deferred.succeed(done, undefined)))
      })

    yield* Effect.addFinalizer(() => close())

    const stats = Effect.sync((): TaskPoolStats => ({
      lingering: state.lingering.length,
      queued: Queue.sizeUnsafe(runQueue),
      running: state.running,
      ending: state.ending,
      retrying: state.retrying.size,
      succeeded: state.succeeded,
      failed: state.failed,
      pushed: state.pushed,
      droppedFailures: state.droppedFailures
    }))

    return {
      push,
      // One element per pull: a reader that stops early leaves the rest queued.
      failures: Stream.fromEffectRepeat(Queue.take(failureQueue)),
      stats,
      awaitIdle: idle.await,
      close
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
