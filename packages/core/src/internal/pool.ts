/**
 * The pool's machinery. Data flows one way:
 *
 *   push → linger buffer → run queue → worker → end (callback, handle, failure queue)
 *                              ↑           │
 *                              └─ backoff ←┘ (a failed attempt that may retry)
 *
 * Each task is one `Entry`; a pool is one `Pool` object whose counters are
 * touched only in synchronous steps (one fiber step runs at a time, so no
 * step sees another half-done). A fixed set of long-lived worker fibers
 * bounds the attempts running at once; one linger fiber times the whole
 * linger batch; backoffs and callbacks are fibers in `FiberSet`s and hold no
 * worker.
 *
 * The machinery is a class rather than closures made per pool: V8 embeds a
 * closure it calls into the optimized code of its caller, so every new pool
 * (and every GC that collected an old one) threw the hot path's optimized
 * code away. Methods on a prototype are the same functions for every pool.
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
import type { PoolMetrics } from "./observability.js"
import { describeFailure } from "./outcome.js"
import { delayAfter, retryDelays } from "./retryDelays.js"

type Failed = Extract<Outcome, { readonly _tag: "Failed" }>

const interruptedByClose = (exit: Exit.Exit<unknown, unknown> = Exit.failCause(Cause.interrupt())): Failed => ({
  _tag: "Failed",
  exit,
  errorCode: "Interrupted",
  errorMessage: "interrupted by the pool's limited close"
})

const closedError = () => new PoolClosedError({ message: "the task pool is closed" })

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

const isRetryable = (task: AnyTask, error: unknown): boolean => {
  if (task.retryable === undefined) return true
  try {
    return task.retryable(error)
  } catch {
    return false
  }
}

class Pool {
  closed = false
  /** Set by a limited close once its timeout has passed: whatever is left ends "Interrupted". */
  interrupting = false
  nextId = 0
  lingering: Array<Entry> = []
  lingerStartedAtMs = 0
  /** Attempts running. */
  running = 0
  /** Tasks whose callback is running: ended, not yet settled. */
  ending = 0
  readonly retrying = new Set<Entry>()
  unfinished = 0
  pushed = 0
  succeeded = 0
  failed = 0
  droppedFailures = 0
  retriedAttempts = 0
  rejectedPushes = 0

  /** Open while fewer than `maxTaskNum` tasks are unfinished: pushes waiting for room wait on it. */
  readonly room = Latch.makeUnsafe(true)
  /** Open while no task is unfinished. */
  readonly idle = Latch.makeUnsafe(true)
  /** Open while the linger buffer holds a task. */
  readonly lingerPending = Latch.makeUnsafe(false)
  /** Opens when the pool closes, to fail pushes still waiting for room. */
  readonly closing = Latch.makeUnsafe(false)
  workers: ReadonlyArray<Fiber.Fiber<unknown>> = []
  lingerFiber: Fiber.Fiber<unknown> | undefined = undefined
  /** Completed when the close has finished; made by the first close. */
  closeDone: Deferred.Deferred<void> | undefined = undefined
  readonly metrics: PoolMetrics
  /** Whether pushes from the context `tracingKnownFor` make spans. */
  tracing = false
  tracingKnownFor: Context.Context<unknown> | undefined = undefined

  constructor(
    readonly config: TaskPoolConfig,
    readonly clock: Clock.Clock,
    readonly delays: ReadonlyArray<number>,
    readonly runQueue: Queue.Queue<Entry>,
    readonly failureQueue: Queue.Queue<AnyResult, Cause.Done>,
    readonly backoffs: FiberSet.FiberSet<void>,
    readonly callbacks: FiberSet.FiberSet<void>,
    context: Context.Context<never>
  ) {
    this.metrics = registerMetrics(config.name ?? "taskpool", context, {
      pushed: () => this.pushed,
      succeeded: () => this.succeeded,
      failed: () => this.failed,
      retriedAttempts: () => this.retriedAttempts,
      droppedFailures: () => this.droppedFailures,
      rejectedPushes: () => this.rejectedPushes,
      lingering: () => this.lingering.length,
      queued: () => Queue.sizeUnsafe(runQueue),
      running: () => this.running + this.ending,
      ending: () => this.ending,
      retrying: () => this.retrying.size
    })
  }

  now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  // ── push ───────────────────────────────────────────────────────────────

  push(task: AnyTask): Effect.Effect<Entry, PoolClosedError | PoolFullError> {
    return Effect.withFiber((fiber) => {
      const problem = invalidTask(task)
      if (problem !== undefined) return Effect.die(new TypeError(`TaskPool.push: ${problem}`))
      if (this.closed) return this.rejected(closedError())
      if (this.unfinished < this.config.maxTaskNum) return this.acceptIn(task, fiber)
      return this.pushWhenRoom(task)
    })
  }

  rejected<E>(error: E): Effect.Effect<never, E> {
    this.rejectedPushes++
    return Effect.fail(error)
  }

  /** Accepts a task in the pusher's fiber: its services, and its task span when it traces. */
  acceptIn(task: AnyTask, fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<Entry> {
    const context = fiber.context as Context.Context<unknown>
    // Pushes tend to come from one context at a time: look the tracer up once per context.
    if (context !== this.tracingKnownFor) {
      this.tracingKnownFor = context
      this.tracing = isTracing(fiber)
    }
    if (!this.tracing) return Effect.succeed(this.accept(task, context, undefined))
    return Effect.map(
      Effect.makeSpan("taskpool.task", { attributes: { "taskpool.task.name": task.name, "taskpool.pool": this.config.name ?? "taskpool" } }),
      (span) => this.accept(task, context, span)
    )
  }

  accept(task: AnyTask, context: Context.Context<unknown>, span: Tracer.Span | undefined): Entry {
    const entry = new Entry(++this.nextId, task, context, this.now(), this.config.maxReservedAttempts, span)
    span?.attribute("taskpool.task.id", entry.taskId)
    this.pushed++
    if (this.unfinished++ === 0) this.idle.closeUnsafe()
    if (this.unfinished === this.config.maxTaskNum) this.room.closeUnsafe()
    if (this.lingering.push(entry) === 1) {
      this.lingerStartedAtMs = entry.createdAtMs
      this.lingerPending.openUnsafe()
    }
    if (this.lingering.length >= this.config.maxIoWorkerNum) this.flushLinger()
    return entry
  }

  full(waitedMs: number): PoolFullError {
    return new PoolFullError({
      message: `the task pool holds maxTaskNum = ${this.config.maxTaskNum} unfinished tasks` +
        (waitedMs > 0 ? ` and no room freed up within maxBlockMs = ${waitedMs} ms` : ""),
      maxTaskNum: this.config.maxTaskNum,
      waitedMs
    })
  }

  /**
   * Waits for room as `maxBlockMs` says, then accepts; fails with
   * `PoolClosedError` if the pool closes first. Woken waiters race for the
   * room freed; a loser waits again.
   */
  pushWhenRoom(task: AnyTask): Effect.Effect<Entry, PoolClosedError | PoolFullError> {
    const { maxBlockMs, maxTaskNum } = this.config
    if (maxBlockMs === 0) return this.rejected(this.full(0))
    const acceptWhenRoom: Effect.Effect<Entry> = Effect.flatMap(
      this.room.await,
      () => Effect.withFiber((fiber) => this.unfinished < maxTaskNum ? this.acceptIn(task, fiber) : acceptWhenRoom)
    )
    const bounded = maxBlockMs < 0 ? acceptWhenRoom : Effect.timeoutOrElse(acceptWhenRoom, {
      duration: maxBlockMs,
      orElse: () => this.rejected(this.full(maxBlockMs))
    })
    return Effect.raceFirst(
      bounded,
      Effect.andThen(this.closing.await, Effect.suspend(() => this.rejected(closedError())))
    )
  }

  // ── linger ─────────────────────────────────────────────────────────────

  flushLinger(): void {
    const batch = this.lingering
    if (batch.length === 0) return
    this.lingering = []
    this.lingerPending.closeUnsafe()
    // One at a time: `offerAllUnsafe` gives every batch a list bucket of its own, which costs
    // ~120 B per task when batches are small (a batch of one per push with one worker).
    for (const entry of batch) Queue.offerUnsafe(this.runQueue, entry)
  }

  /** Queues the linger batch when its first task has lingered `lingerMs`. */
  lingerTimer(): Effect.Effect<never> {
    return Effect.gen({ self: this }, function*() {
      while (true) {
        yield* this.lingerPending.await
        const wait = this.lingerStartedAtMs + this.config.lingerMs - this.now()
        if (wait > 0) yield* Effect.sleep(wait)
        else this.flushLinger()
      }
    })
  }

  // ── workers ────────────────────────────────────────────────────────────

  /**
   * A worker: takes entries from the run queue one at a time and runs one
   * attempt each. Only the wait for work and the attempt itself are
   * interruptible, so a limited close cuts an attempt off but never a task's
   * bookkeeping. Once a limited close interrupts, it takes nothing more: the
   * close ends what is left in the queue.
   */
  worker(): Effect.Effect<void> {
    return Effect.uninterruptibleMask((restore: Restore) =>
      Effect.gen({ self: this }, function*() {
        while (!this.interrupting) {
          const taken = Queue.takeUnsafe(this.runQueue)
          const entry = taken !== undefined && Exit.isSuccess(taken) ? taken.value : yield* restore(Queue.take(this.runQueue))
          entry.startedAtMs = this.now()
          if (entry.attemptCount++ === 0) this.metrics.queueWait.record(entry.startedAtMs - entry.createdAtMs)
          this.running++
          const exit = yield* Effect.exit(restore(this.attemptOf(entry)))
          const endedAtMs = this.now()
          this.running--
          this.metrics.attemptDuration.record(endedAtMs - entry.startedAtMs)
          const next = Exit.isSuccess(exit)
            ? this.end(entry, endedAtMs, { _tag: "Succeeded", exit })
            : this.afterFailure(entry, endedAtMs, exit)
          if (next !== undefined) yield* next
        }
      })
    )
  }

  runContextOf(entry: Entry): Context.Context<unknown> {
    return entry.runContext ??= withTaskAnnotations(entry.context, entry.taskId, entry.task.name)
  }

  /**
   * Runs `effect` with exactly the pusher's services (and the task's log
   * annotations). Swapping the context in is much cheaper than merging it
   * into the worker's, as `Effect.provideContext` would.
   */
  withServicesOf<A, E>(entry: Entry, effect: Effect.Effect<A, E, unknown>): Effect.Effect<A, E> {
    return Effect.updateContext(effect as Effect.Effect<A, E>, () => this.runContextOf(entry) as Context.Context<never>)
  }

  attemptOf(entry: Entry): Effect.Effect<unknown, unknown> {
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
    return Exit.isExit(traced) ? traced : this.withServicesOf(entry, traced)
  }

  /**
   * What follows a failed attempt: the end, or a retry. A retry after no
   * backoff goes straight back to the run queue; otherwise it waits on a timer.
   */
  afterFailure(entry: Entry, endedAtMs: number, exit: Exit.Failure<unknown, unknown>): Effect.Effect<unknown> | undefined {
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
    if (this.interrupting) return this.end(entry, endedAtMs, interruptedByClose(exit))
    const final = entry.attemptCount > this.config.maxRetryTimes ||
      (failure.typed !== undefined && !isRetryable(entry.task, failure.typed.error))
    if (final) {
      return this.end(entry, endedAtMs, { _tag: "Failed", exit, errorCode: failure.errorCode, errorMessage: failure.errorMessage })
    }
    this.retriedAttempts++
    const delay = delayAfter(this.delays, entry.attemptCount)
    if (delay > 0) return this.retryLater(entry, delay)
    Queue.offerUnsafe(this.runQueue, entry)
    return undefined
  }

  retryLater(entry: Entry, delay: number): Effect.Effect<unknown> {
    this.retrying.add(entry)
    return FiberSet.run(
      this.backoffs,
      Effect.andThen(
        Effect.sleep(delay),
        Effect.sync(() => {
          this.retrying.delete(entry)
          Queue.offerUnsafe(this.runQueue, entry)
        })
      )
    )
  }

  // ── end ────────────────────────────────────────────────────────────────

  /**
   * Ends a task exactly once: its outcome, its callback, then `settle`. A
   * callback runs in a fiber of its own, so it holds no worker; the task
   * settles when it returns (or, in a limited close, is cut off). Returns the
   * fork of the callback, if there is one.
   */
  end(entry: Entry, completedAtMs: number, outcome: Outcome): Effect.Effect<unknown> | undefined {
    entry.end(outcome, completedAtMs)
    this.metrics.taskDuration.record(completedAtMs - entry.createdAtMs)
    if (entry.span !== undefined) this.endSpan(entry, entry.span)
    const callback = this.callbackOf(entry)
    if (callback === undefined) {
      this.settle(entry)
      return undefined
    }
    this.ending++
    return FiberSet.run(
      this.callbacks,
      Effect.ensuring(
        callback,
        Effect.sync(() => {
          this.ending--
          this.settle(entry)
        })
      ),
      { startImmediately: true }
    )
  }

  callbackOf(entry: Entry): Effect.Effect<void> | undefined {
    const succeeded = entry.outcome!._tag === "Succeeded"
    const callback = succeeded ? entry.task.onSuccess : entry.task.onFail
    if (callback === undefined) return undefined
    const which = `the ${succeeded ? "onSuccess" : "onFail"} callback of task ${entry.taskId} (${entry.task.name})`
    return Effect.suspend(() => callback(entry.toResult())).pipe(
      Effect.catchCause((cause) => Effect.logError(`TaskPool: ${which} failed`, cause)),
      Effect.onInterrupt(() => Effect.logWarning(`TaskPool: ${which} was cut off by the pool's limited close`)),
      (effect) => this.withServicesOf(entry, effect)
    )
  }

  /** After the callback: the counters, the failure queue, the room, then the handle. */
  settle(entry: Entry): void {
    if (entry.outcome!._tag === "Succeeded") {
      this.succeeded++
    } else {
      this.failed++
      this.recordFailure(entry.toResult())
    }
    if (this.unfinished-- === this.config.maxTaskNum) this.room.openUnsafe()
    if (this.unfinished === 0) this.idle.openUnsafe()
    // Last, so whoever awaits the handle sees the counters already updated.
    entry.settle()
  }

  recordFailure(result: AnyResult): void {
    const { maxFailedTasks } = this.config
    if (maxFailedTasks === 0) {
      this.droppedFailures++
      return
    }
    if (Queue.sizeUnsafe(this.failureQueue) >= maxFailedTasks) {
      Queue.takeUnsafe(this.failureQueue)
      this.droppedFailures++
    }
    Queue.offerUnsafe(this.failureQueue, result)
  }

  endSpan(entry: Entry, span: Tracer.Span): void {
    const outcome = entry.outcome!
    annotateOutcome(span, outcome.exit, outcome._tag === "Failed" ? outcome.errorCode : undefined)
    span.attribute("taskpool.attempts", entry.attemptCount)
    span.end(this.clock.currentTimeNanosUnsafe(), outcome.exit)
  }

  // ── close ──────────────────────────────────────────────────────────────

  close(options?: { readonly timeoutMs?: number | undefined }): Effect.Effect<void> {
    return Effect.suspend(() => {
      const timeoutMs = options?.timeoutMs ?? this.config.shutdownTimeoutMs
      if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 0)) {
        return Effect.die(new RangeError(`TaskPool.close: timeoutMs must be an integer >= 0, got ${timeoutMs}`))
      }
      if (this.closeDone !== undefined) return Deferred.await(this.closeDone)
      const done = this.closeDone = Deferred.makeUnsafe<void>()
      return Effect.uninterruptible(Effect.ensuring(this.shutdown(timeoutMs), Deferred.succeed(done, undefined)))
    })
  }

  /** The close: safe when `timeoutMs` is undefined, limited otherwise. */
  shutdown(timeoutMs: number | undefined): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      this.closed = true
      this.closing.openUnsafe()
      if (this.lingerFiber !== undefined) yield* Fiber.interrupt(this.lingerFiber)
      this.flushLinger()
      if (timeoutMs === undefined) {
        yield* this.idle.await
      } else {
        const drained = yield* Effect.interruptible(this.idle.await).pipe(Effect.timeoutOption(timeoutMs))
        if (drained._tag === "None") yield* this.interruptRest(timeoutMs)
      }
      yield* Fiber.interruptAll(this.workers)
      Queue.endUnsafe(this.failureQueue)
      this.metrics.unregister()
    })
  }

  /**
   * The limited close's deadline: running attempts are cut off, queued and
   * backing-off tasks taken out, each ending "Interrupted". Their `onFail`
   * callbacks, and callbacks already running, get `graceMs` more; whatever
   * still runs then is cut off, and its task settles all the same.
   */
  interruptRest(graceMs: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      this.interrupting = true
      yield* Fiber.interruptAll(this.workers)
      yield* FiberSet.clear(this.backoffs)
      const left = [...this.retrying, ...(yield* Queue.clear(this.runQueue))]
      this.retrying.clear()
      for (const entry of left) {
        const callback = this.end(entry, this.now(), interruptedByClose())
        if (callback !== undefined) yield* callback
      }
      const finished = yield* Effect.interruptible(FiberSet.awaitEmpty(this.callbacks)).pipe(Effect.timeoutOption(graceMs))
      if (finished._tag === "None") yield* FiberSet.clear(this.callbacks)
    })
  }

  stats(): TaskPoolStats {
    return {
      lingering: this.lingering.length,
      queued: Queue.sizeUnsafe(this.runQueue),
      running: this.running + this.ending,
      retrying: this.retrying.size,
      succeeded: this.succeeded,
      failed: this.failed,
      pushed: this.pushed,
      droppedFailures: this.droppedFailures
    }
  }
}

/** Builds a pool in the current scope; closing the scope is the pool's close. */
export const make = (config: TaskPoolConfig): Effect.Effect<TaskPoolService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = new Pool(
      config,
      yield* Clock.Clock,
      yield* retryDelays({
        baseMs: config.baseRetryBackOffMs,
        maxMs: config.maxRetryBackOffMs,
        maxRetryTimes: config.maxRetryTimes
      }),
      yield* Queue.unbounded<Entry>(),
      yield* Queue.unbounded<AnyResult, Cause.Done>(),
      yield* FiberSet.make<void>(),
      yield* FiberSet.make<void>(),
      yield* Effect.context<never>()
    )
    pool.workers = yield* Effect.forEach(
      Array.from({ length: config.maxIoWorkerNum }),
      () => Effect.forkScoped(pool.worker(), { startImmediately: true })
    )
    pool.lingerFiber = yield* Effect.forkScoped(pool.lingerTimer(), { startImmediately: true })
    yield* Effect.addFinalizer(() => pool.close())
    return {
      push: <A, E, R>(task: Task<A, E, R>) =>
        pool.push(task as AnyTask) as Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R>,
      // One element per pull: a reader that stops early leaves the rest queued.
      failures: Stream.fromEffectRepeat(Queue.take(pool.failureQueue)),
      stats: Effect.sync(() => pool.stats()),
      awaitIdle: pool.idle.await,
      close: (options) => pool.close(options)
    }
  })
