/**
 * The pool's machinery. Data flows one way:
 *
 *   push → (key lane) → linger batch or delay → ready queue → worker → end
 *                                                   ↑                       │
 *                                                   └──── retry backoff ←───┘
 *
 * end = callback, handle, failure queue, then the next task of its key lane.
 *
 * Each task is one `Entry`; a pool is one `Pool` object whose counters are
 * touched only in synchronous steps (one fiber step runs at a time, so no
 * step sees another half-done). `mayStartAnother` is the one rule for what
 * may start (not paused, room under the worker limit, room in the rate
 * window), and the ready queue gives the highest priority first. Long-lived
 * worker fibers take their next task themselves when an attempt ends; idle
 * workers wait for a wake-up, which `dispatch` sends one per ready task that
 * may start. A wake-up carries no task: the worker picks one when it runs,
 * so what starts is always decided at the start. One linger fiber times the
 * whole linger batch; delays, backoffs, the rate limit's wake-up and
 * callbacks are fibers of their own and hold no worker.
 *
 * The machinery is a class rather than closures made per pool: V8 embeds a
 * closure it calls into the optimized code of its caller, so every new pool
 * (and every GC that collected an old one) threw the hot path's optimized
 * code away. Methods on a prototype are the same functions for every pool.
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, FiberSet, Latch, Queue, Random, Schedule, Stream } from "effect"
import type { Context, Scope, Tracer } from "effect"
import { decodeConfig } from "../Config.js"
import type { TaskPoolConfig } from "../Config.js"
import { PoolClosedError, PoolFullError, TaskTimeoutError } from "../errors.js"
import type { TaskPoolConfigError } from "../errors.js"
import { invalidTask } from "../Task.js"
import type { Task } from "../Task.js"
import type { PushOptions, TaskHandle, TaskPoolService, TaskPoolStats } from "../TaskPool.js"
import { Attempt } from "../TaskResult.js"
import { Entry, State } from "./entry.js"
import type { AnyResult, AnyTask, Outcome, RetryStep } from "./entry.js"
import { annotateOutcome, isTracing, registerMetrics, tracedAttempt, withTaskAnnotations } from "./observability.js"
import type { PoolMetrics } from "./observability.js"
import { describeFailure } from "./outcome.js"
import type { Failure } from "./outcome.js"
import { readPushOptions } from "./pushOptions.js"
import type { Scheduling } from "./pushOptions.js"
import { RateWindow } from "./rateWindow.js"
import { ReadyQueue } from "./readyQueue.js"
import { delayAfter, retryDelays } from "./retryDelays.js"

type Failed = Extract<Outcome, { readonly _tag: "Failed" }>

/** A key in use: the task holding it, and the tasks waiting for it in push order. */
interface Lane {
  holder: Entry
  readonly waiting: Array<Entry>
}

const interruptedByClose = (exit: Exit.Exit<unknown, unknown> = Exit.failCause(Cause.interrupt())): Failed => ({
  _tag: "Failed",
  exit,
  errorCode: "Interrupted",
  errorMessage: "interrupted by the pool's limited close"
})

const cancelled = (exit: Exit.Exit<unknown, unknown> = Exit.failCause(Cause.interrupt())): Failed => ({
  _tag: "Failed",
  exit,
  errorCode: "Cancelled",
  errorMessage: "cancelled through its handle"
})

/** A failed attempt's failure as the task's end. */
const finalFailure = (exit: Exit.Exit<unknown, unknown>, failure: Failure): Failed => ({
  _tag: "Failed",
  exit,
  errorCode: failure.errorCode,
  errorMessage: failure.errorMessage
})

const closedError = () => new PoolClosedError({ message: "the task pool is closed" })

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A worker's state, for `cancel` to find the worker running a task. */
interface WorkerSlot {
  readonly fiber: Fiber.Fiber<unknown, unknown>
  /** The task whose attempt it runs (or ran last, until it waits for work) ... */
  current: Entry | undefined
  /** ... and that attempt's number: a worker still finishing a task's earlier attempt is not the one running it. */
  attempt: number
  /** Set by `cancel`: the worker ends `current` "Cancelled" and hands its place on. */
  cancelled: boolean
}

/** Forks into one of the pool's fiber sets, from synchronous code. */
type Fork = (effect: Effect.Effect<void>) => Fiber.Fiber<void>

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
  paused = false
  /** Set once the close has ended every task: no worker starts after it. */
  stopped = false
  /** The worker limit in force: the config's, or the last `resize`. */
  limit: number
  nextId = 0
  lingering: Array<Entry> = []
  lingerStartedAtMs = 0
  readonly ready = new ReadyQueue<Entry>()
  /** Wake-ups sent to idle workers and not yet taken: each reserves a start for its worker. */
  wakes = 0
  /** Workers waiting on the workers' queue. */
  idleWorkers = 0
  /** Attempts running. */
  running = 0
  /** Tasks whose callback is running: ended, not yet settled. */
  ending = 0
  /** Tasks waiting out a retry backoff, and the timer of each. */
  readonly retrying = new Map<Entry, Fiber.Fiber<void>>()
  /** Tasks waiting out a push delay, and the timer of each. */
  readonly delayed = new Map<Entry, Fiber.Fiber<void>>()
  /** Custom retry schedules' step functions, per task, made at its first failure. */
  readonly retrySteps = new Map<Entry, RetryStep>()
  readonly slots = new Set<WorkerSlot>()
  /** Per key in use: the task holding it and the tasks waiting for it, in push order. */
  readonly lanes = new Map<string, Lane>()
  parked = 0
  /** Unfinished tasks by idempotency key. */
  readonly idempotent = new Map<string, Entry>()
  readonly rate: RateWindow | undefined
  rateTimerPending = false
  workerCount = 0
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
  /** Open while the linger batch holds a task. */
  readonly lingerPending = Latch.makeUnsafe(false)
  /** Opens when the pool closes, to fail pushes still waiting for room. */
  readonly closing = Latch.makeUnsafe(false)
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
    readonly random: Random.Random,
    readonly delays: ReadonlyArray<number>,
    /** Wake-ups for idle workers. It carries no tasks: a woken worker takes its task from the ready queue. */
    readonly wakeups: Queue.Queue<true>,
    readonly failureQueue: Queue.Queue<AnyResult, Cause.Done>,
    readonly workers: FiberSet.FiberSet<void>,
    readonly timers: FiberSet.FiberSet<void>,
    readonly callbacks: FiberSet.FiberSet<void>,
    readonly forkWorker: Fork,
    readonly forkTimer: Fork,
    readonly forkCallback: Fork,
    context: Context.Context<never>
  ) {
    this.limit = config.maxIoWorkerNum
    this.rate = config.rateLimit === undefined ? undefined : new RateWindow(config.rateLimit.limit, config.rateLimit.intervalMs)
    this.metrics = registerMetrics(config.name ?? "taskpool", context, {
      pushed: () => this.pushed,
      succeeded: () => this.succeeded,
      failed: () => this.failed,
      retriedAttempts: () => this.retriedAttempts,
      droppedFailures: () => this.droppedFailures,
      rejectedPushes: () => this.rejectedPushes,
      lingering: () => this.lingeringCount(),
      queued: () => this.queuedCount(),
      running: () => this.running + this.ending,
      ending: () => this.ending,
      retrying: () => this.retrying.size
    })
  }

  now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  get maxReservedAttempts(): number {
    return this.config.maxReservedAttempts
  }

  // ── push ───────────────────────────────────────────────────────────────

  push(task: AnyTask, options: PushOptions | undefined): Effect.Effect<Entry, PoolClosedError | PoolFullError> {
    return Effect.withFiber((fiber) => {
      const problem = invalidTask(task)
      if (problem !== undefined) return Effect.die(new TypeError(`TaskPool.push: ${problem}`))
      const scheduling = options === undefined ? undefined : readPushOptions(options)
      if (typeof scheduling === "string") return Effect.die(new TypeError(`TaskPool.push: ${scheduling}`))
      if (this.closed) return this.rejected(closedError())
      const existing = scheduling === undefined ? undefined : this.unfinishedWith(scheduling)
      if (existing !== undefined) return Effect.succeed(existing)
      if (this.unfinished < this.config.maxTaskNum) return this.acceptIn(task, scheduling, fiber)
      return this.pushWhenRoom(task, scheduling)
    })
  }

  /** The unfinished task pushed with the same idempotency key, if any. */
  unfinishedWith(scheduling: Scheduling | undefined): Entry | undefined {
    return scheduling?.idempotencyKey === undefined ? undefined : this.idempotent.get(scheduling.idempotencyKey)
  }

  rejected<E>(error: E): Effect.Effect<never, E> {
    this.rejectedPushes++
    return Effect.fail(error)
  }

  /** Accepts a task in the pusher's fiber: its services, and its task span when it traces. */
  acceptIn(task: AnyTask, scheduling: Scheduling | undefined, fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<Entry> {
    const context = fiber.context as Context.Context<unknown>
    // Pushes tend to come from one context at a time: look the tracer up once per context.
    if (context !== this.tracingKnownFor) {
      this.tracingKnownFor = context
      this.tracing = isTracing(fiber)
    }
    if (!this.tracing) return Effect.succeed(this.accept(task, scheduling, context, undefined))
    return Effect.map(
      Effect.makeSpan("taskpool.task", { attributes: { "taskpool.task.name": task.name, "taskpool.pool": this.config.name ?? "taskpool" } }),
      (span) => this.accept(task, scheduling, context, span)
    )
  }

  accept(task: AnyTask, scheduling: Scheduling | undefined, context: Context.Context<unknown>, span: Tracer.Span | undefined): Entry {
    const entry = new Entry(++this.nextId, task, context, this.now(), span, scheduling, this)
    span?.attribute("taskpool.task.id", entry.taskId)
    this.pushed++
    if (this.unfinished++ === 0) this.idle.closeUnsafe()
    if (this.unfinished === this.config.maxTaskNum) this.room.closeUnsafe()
    if (scheduling === undefined) {
      this.linger(entry)
      return entry
    }
    if (scheduling.idempotencyKey !== undefined) this.idempotent.set(scheduling.idempotencyKey, entry)
    if (scheduling.key !== undefined) {
      const lane = this.lanes.get(scheduling.key)
      if (lane !== undefined) {
        entry.state = State.Parked
        this.parked++
        lane.waiting.push(entry)
        return entry
      }
      this.lanes.set(scheduling.key, { holder: entry, waiting: [] })
    }
    if (scheduling.delayMs === undefined) this.linger(entry)
    else this.delay(entry, scheduling.delayMs)
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
  pushWhenRoom(task: AnyTask, scheduling: Scheduling | undefined): Effect.Effect<Entry, PoolClosedError | PoolFullError> {
    const { maxBlockMs, maxTaskNum } = this.config
    if (maxBlockMs === 0) return this.rejected(this.full(0))
    const acceptWhenRoom: Effect.Effect<Entry> = Effect.flatMap(
      this.room.await,
      () =>
        Effect.withFiber((fiber) => {
          // A push with the same idempotency key may have been accepted while this one waited.
          const existing = this.unfinishedWith(scheduling)
          if (existing !== undefined) return Effect.succeed(existing)
          return this.unfinished < maxTaskNum ? this.acceptIn(task, scheduling, fiber) : acceptWhenRoom
        })
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

  // ── linger and delay ───────────────────────────────────────────────────

  linger(entry: Entry): void {
    if (this.lingering.push(entry) === 1) {
      this.lingerStartedAtMs = entry.createdAtMs
      this.lingerPending.openUnsafe()
    }
    if (this.lingering.length >= this.limit) this.flushLinger()
  }

  flushLinger(): void {
    const batch = this.lingering
    if (batch.length === 0) return
    this.lingering = []
    this.lingerPending.closeUnsafe()
    for (const entry of batch) this.makeReady(entry)
    this.dispatch()
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

  /** Holds `entry` for `delayMs`, then makes it ready; no delay makes it ready at once. */
  delay(entry: Entry, delayMs: number): void {
    if (delayMs <= 0) {
      this.makeReady(entry)
      this.dispatch()
      return
    }
    this.holdFor(entry, State.Delayed, this.delayed, delayMs)
  }

  /**
   * Holds `entry` in `state` (a delay or a backoff) on a timer kept in
   * `timers`, then makes it ready. A cancel or a limited close takes it out
   * of `timers` first and interrupts the timer.
   */
  holdFor(entry: Entry, state: typeof State.Delayed | typeof State.Retrying, timers: Map<Entry, Fiber.Fiber<void>>, ms: number): void {
    entry.state = state
    const over = Effect.sync(() => {
      if (entry.state !== state) return
      timers.delete(entry)
      this.makeReady(entry)
      this.dispatch()
    })
    timers.set(entry, this.forkTimer(Effect.andThen(Effect.sleep(ms), over)))
  }

  /** The next task of a key lane, once the key is free: what is left of its delay, else ready. */
  unpark(entry: Entry): void {
    this.parked--
    const delayMs = entry.scheduling!.delayMs
    if (delayMs === undefined) {
      this.makeReady(entry)
      this.dispatch()
    } else {
      this.delay(entry, entry.createdAtMs + delayMs - this.now())
    }
  }

  // ── dispatch ───────────────────────────────────────────────────────────

  makeReady(entry: Entry): void {
    entry.state = State.Ready
    this.ready.push(entry, entry.priority)
  }

  /**
   * Whether one more attempt may start now, besides those the outstanding
   * wake-ups reserve: not while the pool is paused, the worker limit is
   * reached or the rate limit's window is full (then it schedules a wake-up
   * for when the window has room).
   */
  mayStartAnother(): boolean {
    if (this.paused || this.interrupting || this.running + this.wakes >= this.limit) return false
    if (this.rate === undefined) return true
    const wait = this.rate.waitMs(this.now(), this.wakes)
    if (wait === 0) return true
    this.wakeAfter(wait)
    return false
  }

  /** The next task a worker may start now, highest priority first, if any. */
  takeReady(): Entry | undefined {
    return this.ready.size > 0 && this.mayStartAnother() ? this.ready.shift() : undefined
  }

  /**
   * Wakes idle workers, one per ready task that may start. A woken worker
   * picks its task from the ready queue when it runs, so the choice is made
   * at the start, by priority. Busy workers take their next task themselves
   * when their attempt ends, so a pool that keeps up wakes no one.
   */
  dispatch(): void {
    while (this.wakes < this.idleWorkers && this.ready.size > this.wakes && this.mayStartAnother()) {
      this.wakes++
      Queue.offerUnsafe(this.wakeups, true)
    }
  }

  /** Dispatches again when the rate limit's window has room. */
  wakeAfter(wait: number): void {
    // A pending wake-up is never later than a new one would be: starts only push the next room later.
    if (this.rateTimerPending) return
    this.rateTimerPending = true
    this.forkTimer(Effect.andThen(
      Effect.sleep(wait),
      Effect.sync(() => {
        this.rateTimerPending = false
        this.dispatch()
      })
    ))
  }

  // ── workers ────────────────────────────────────────────────────────────

  spawnWorkers(count: number): void {
    if (this.interrupting || this.stopped) return
    for (let i = 0; i < count; i++) {
      this.workerCount++
      this.forkWorker(this.worker())
    }
  }

  /**
   * A worker: takes ready tasks one at a time and runs one attempt each,
   * and waits for a wake-up when there is none it may start.
   * Only the wait for work and the attempt itself are interruptible, so a
   * limited close or a `cancel` cuts an attempt off but never a task's
   * bookkeeping. An interrupted fiber stays interrupted, so a worker whose
   * attempt was cancelled hands its place to a new worker and ends. Once a
   * limited close interrupts, it takes nothing more: the close ends what is
   * left.
   */
  worker(): Effect.Effect<void> {
    return Effect.withFiber((fiber) =>
      Effect.uninterruptibleMask((restore: Restore) =>
        Effect.gen({ self: this }, function*() {
          const slot: WorkerSlot = { fiber, current: undefined, attempt: 0, cancelled: false }
          this.slots.add(slot)
          while (!this.interrupting) {
            const entry = this.takeReady()
            if (entry === undefined) {
              slot.current = undefined
              this.idleWorkers++
              yield* restore(Queue.take(this.wakeups))
              this.idleWorkers--
              this.wakes--
              continue
            }
            const startedAtMs = this.now()
            entry.state = State.Running
            entry.startedAtMs = startedAtMs
            if (this.rate !== undefined) this.rate.record(startedAtMs)
            if (entry.attemptCount++ === 0) this.metrics.queueWait.record(startedAtMs - entry.createdAtMs)
            slot.current = entry
            slot.attempt = entry.attemptCount
            this.running++
            const exit = yield* Effect.exit(restore(this.attemptOf(entry)))
            const endedAtMs = this.now()
            this.running--
            this.metrics.attemptDuration.record(endedAtMs - entry.startedAtMs)
            if (slot.cancelled) {
              this.afterCancelledAttempt(entry, endedAtMs, exit)
              return this.replaceWorker(slot)
            }
            if (Exit.isSuccess(exit)) {
              this.end(entry, endedAtMs, { _tag: "Succeeded", exit })
            } else {
              const next = this.afterFailure(entry, endedAtMs, exit)
              if (next !== undefined) yield* next
              // A cancel that came while a retry schedule was stepped: the task now waits, so it ends there.
              if (slot.cancelled) {
                this.cancelWaiting(entry)
                return this.replaceWorker(slot)
              }
            }
          }
        })
      )
    )
  }

  /** A worker whose attempt was cancelled is interrupted for good: a new one takes its place. */
  replaceWorker(slot: WorkerSlot): void {
    this.slots.delete(slot)
    this.workerCount--
    this.spawnWorkers(1)
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

  recordFailedAttempt(entry: Entry, endedAtMs: number, failure: Failure): void {
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
  }

  /**
   * An attempt whose task was cancelled while it ran: the task ends
   * "Cancelled", unless the attempt had succeeded before the cancel landed.
   * The attempt is recorded "Cancelled" when it was cut off, and keeps its
   * own failure when it failed without being cut off (work that ignores
   * interruption).
   */
  afterCancelledAttempt(entry: Entry, endedAtMs: number, exit: Exit.Exit<unknown, unknown>): void {
    if (Exit.isSuccess(exit)) return this.end(entry, endedAtMs, { _tag: "Succeeded", exit })
    const outcome = cancelled(exit)
    const failure = describeFailure(exit.cause)
    this.recordFailedAttempt(entry, endedAtMs, Cause.hasInterrupts(exit.cause) ? { ...failure, ...outcome } : failure)
    this.end(entry, endedAtMs, outcome)
  }

  /**
   * What follows a failed attempt: the end, or a retry. A custom retry
   * schedule is stepped as an effect; the formula needs none.
   */
  afterFailure(entry: Entry, endedAtMs: number, exit: Exit.Failure<unknown, unknown>): Effect.Effect<void> | undefined {
    const failure = describeFailure(exit.cause)
    this.recordFailedAttempt(entry, endedAtMs, failure)
    if (this.interrupting) {
      this.end(entry, endedAtMs, interruptedByClose(exit))
      return undefined
    }
    const final = entry.attemptCount > this.config.maxRetryTimes ||
      (failure.typed !== undefined && !isRetryable(entry.task, failure.typed.error))
    const schedule = entry.task.retrySchedule
    if (final) this.end(entry, endedAtMs, finalFailure(exit, failure))
    else if (schedule !== undefined) return this.retryBySchedule(entry, endedAtMs, schedule, exit, failure)
    else this.retry(entry, this.formulaDelay(entry.attemptCount))
    return undefined
  }

  /** The formula's wait after failed attempt `attempt`, drawn from [0, wait] with jitter. */
  formulaDelay(attempt: number): number {
    const delay = delayAfter(this.delays, attempt)
    return this.config.retryJitter ? Math.floor(this.random.nextDoubleUnsafe() * (delay + 1)) : delay
  }

  /**
   * Steps the task's retry schedule with the failure (a defect or timeout
   * steps it with the defect): its delay is the wait; its end, or a defect
   * in it, makes the failure final.
   */
  retryBySchedule(
    entry: Entry,
    endedAtMs: number,
    schedule: Schedule.Schedule<unknown, unknown>,
    exit: Exit.Failure<unknown, unknown>,
    failure: Failure
  ): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      let retryStep = this.retrySteps.get(entry)
      if (retryStep === undefined) this.retrySteps.set(entry, retryStep = yield* Schedule.toStep(schedule))
      const input = failure.typed !== undefined ? failure.typed.error : Cause.squash(exit.cause)
      const step = yield* Effect.exit(retryStep(endedAtMs, input))
      if (Exit.isFailure(step) && !Cause.hasInterruptsOnly(step.cause) && !isDone(step.cause)) {
        yield* Effect.logWarning(`TaskPool: the retry schedule of task ${entry.taskId} (${entry.task.name}) failed; its failure is final`, step.cause)
      }
      const delay = Exit.isSuccess(step) ? Duration.toMillis(step.value[1]) : Number.NaN
      if (Number.isFinite(delay)) this.retry(entry, Math.max(0, Math.round(delay)))
      else this.end(entry, endedAtMs, finalFailure(exit, failure))
    })
  }

  retry(entry: Entry, delay: number): void {
    this.retriedAttempts++
    if (delay <= 0) {
      this.makeReady(entry)
      return
    }
    this.holdFor(entry, State.Retrying, this.retrying, delay)
  }

  // ── end ────────────────────────────────────────────────────────────────

  /**
   * Ends a task exactly once: its outcome, its callback, then `settle`. A
   * callback runs in a fiber of its own, so it holds no worker; the task
   * settles when it returns (or, in a limited close, is cut off).
   */
  end(entry: Entry, completedAtMs: number, outcome: Outcome): void {
    entry.end(outcome, completedAtMs)
    if (entry.task.retrySchedule !== undefined) this.retrySteps.delete(entry)
    this.metrics.taskDuration.record(completedAtMs - entry.createdAtMs)
    if (entry.span !== undefined) this.endSpan(entry, entry.span)
    const callback = this.callbackOf(entry)
    if (callback === undefined) return this.settle(entry)
    entry.state = State.Ending
    this.ending++
    this.forkCallback(Effect.ensuring(
      callback,
      Effect.sync(() => {
        this.ending--
        this.settle(entry)
      })
    ))
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

  /** After the callback: the counters, the failure queue, the room, the handle, then the key's next task. */
  settle(entry: Entry): void {
    if (entry.outcome!._tag === "Succeeded") {
      this.succeeded++
    } else {
      this.failed++
      this.recordFailure(entry.toResult())
    }
    if (this.unfinished-- === this.config.maxTaskNum) this.room.openUnsafe()
    if (this.unfinished === 0) this.idle.openUnsafe()
    // Before the handle, so whoever awaits it sees the counters already updated.
    entry.settle()
    const scheduling = entry.scheduling
    if (scheduling === undefined) return
    if (scheduling.idempotencyKey !== undefined && this.idempotent.get(scheduling.idempotencyKey) === entry) {
      this.idempotent.delete(scheduling.idempotencyKey)
    }
    if (scheduling.key !== undefined) this.passKey(scheduling.key, entry)
  }

  /** When the key's holder settles: its next task takes the key, or the key is free. */
  passKey(key: string, entry: Entry): void {
    const lane = this.lanes.get(key)
    // A task that ends while waiting for the key (cancelled) never held it.
    if (lane === undefined || lane.holder !== entry) return
    const next = lane.waiting.shift()
    if (next === undefined) {
      this.lanes.delete(key)
    } else {
      lane.holder = next
      this.unpark(next)
    }
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

  // ── controls ───────────────────────────────────────────────────────────

  /**
   * Ends a task "Cancelled" wherever it is. A waiting task is taken out at
   * once; a running attempt is interrupted and its worker ends the task.
   */
  cancel(entry: Entry): Effect.Effect<void> {
    return Effect.withFiber((current) => {
      if (entry.state !== State.Running) {
        this.cancelWaiting(entry)
        return Effect.void
      }
      const slot = [...this.slots].find((slot) => slot.current === entry && slot.attempt === entry.attemptCount)!
      slot.cancelled = true
      // The worker ends the task once the attempt has stopped.
      return slot.fiber === current ? Effect.interrupt : Fiber.interrupt(slot.fiber)
    })
  }

  /** Takes a task that is not running out of wherever it waits and ends it "Cancelled"; an ended task stays as it is. */
  cancelWaiting(entry: Entry): void {
    switch (entry.state) {
      case State.Lingering:
        this.lingering.splice(this.lingering.indexOf(entry), 1)
        if (this.lingering.length === 0) this.lingerPending.closeUnsafe()
        break
      case State.Delayed:
        this.stopTimer(this.delayed, entry)
        break
      case State.Parked: {
        const waiting = this.lanes.get(entry.scheduling!.key!)!.waiting
        waiting.splice(waiting.indexOf(entry), 1)
        this.parked--
        break
      }
      case State.Ready:
        this.ready.remove(entry, entry.priority)
        break
      case State.Retrying:
        this.stopTimer(this.retrying, entry)
        break
      default:
        return
    }
    this.end(entry, this.now(), cancelled())
  }

  stopTimer(timers: Map<Entry, Fiber.Fiber<void>>, entry: Entry): void {
    timers.get(entry)!.interruptUnsafe()
    timers.delete(entry)
  }

  pause(): void {
    // A closing pool drains: a pause then would hold its close forever.
    if (!this.closed) this.paused = true
  }

  resume(): void {
    this.paused = false
    this.dispatch()
  }

  resize(maxIoWorkerNum: number): Effect.Effect<void, TaskPoolConfigError> {
    return Effect.map(decodeConfig({ maxIoWorkerNum }), (checked) => {
      this.limit = checked.maxIoWorkerNum
      if (this.workerCount < this.limit) this.spawnWorkers(this.limit - this.workerCount)
      if (this.lingering.length >= this.limit) this.flushLinger()
      this.dispatch()
    })
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
      // The drain runs even in a paused pool.
      this.paused = false
      this.flushLinger()
      this.dispatch()
      if (timeoutMs === undefined) {
        yield* this.idle.await
      } else {
        const drained = yield* Effect.interruptible(this.idle.await).pipe(Effect.timeoutOption(timeoutMs))
        if (drained._tag === "None") yield* this.interruptRest(timeoutMs)
      }
      this.stopped = true
      yield* FiberSet.clear(this.workers)
      yield* FiberSet.clear(this.timers)
      Queue.endUnsafe(this.failureQueue)
      this.metrics.unregister()
    })
  }

  /**
   * The limited close's deadline: running attempts are cut off, every
   * waiting task taken out, each ending "Interrupted". Their `onFail`
   * callbacks, and callbacks already running, get `graceMs` more; whatever
   * still runs then is cut off, and its task settles all the same.
   */
  interruptRest(graceMs: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      this.interrupting = true
      yield* FiberSet.clear(this.workers)
      yield* FiberSet.clear(this.timers)
      const left = [...this.ready.drain(), ...this.retrying.keys(), ...this.delayed.keys()]
      for (const lane of this.lanes.values()) left.push(...lane.waiting)
      this.lanes.clear()
      this.retrying.clear()
      this.delayed.clear()
      this.parked = 0
      for (const entry of left) this.end(entry, this.now(), interruptedByClose())
      const finished = yield* Effect.interruptible(FiberSet.awaitEmpty(this.callbacks)).pipe(Effect.timeoutOption(graceMs))
      if (finished._tag === "None") yield* FiberSet.clear(this.callbacks)
    })
  }

  lingeringCount(): number {
    return this.lingering.length + this.delayed.size
  }

  queuedCount(): number {
    return this.ready.size + this.parked
  }

  stats(): TaskPoolStats {
    return {
      lingering: this.lingeringCount(),
      queued: this.queuedCount(),
      running: this.running + this.ending,
      retrying: this.retrying.size,
      succeeded: this.succeeded,
      failed: this.failed,
      pushed: this.pushed,
      droppedFailures: this.droppedFailures,
      paused: this.paused,
      maxIoWorkerNum: this.limit
    }
  }
}

const isDone = (cause: Cause.Cause<unknown>): boolean => cause.reasons.some((reason) => reason._tag === "Fail" && Cause.isDone(reason.error))

/** Builds a pool in the current scope; closing the scope is the pool's close. */
export const make = (config: TaskPoolConfig): Effect.Effect<TaskPoolService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const workers = yield* FiberSet.make<void>()
    const timers = yield* FiberSet.make<void>()
    const callbacks = yield* FiberSet.make<void>()
    const pool = new Pool(
      config,
      yield* Clock.Clock,
      yield* Random.Random,
      yield* retryDelays({
        baseMs: config.baseRetryBackOffMs,
        maxMs: config.maxRetryBackOffMs,
        maxRetryTimes: config.maxRetryTimes
      }),
      yield* Queue.unbounded<true>(),
      yield* Queue.unbounded<AnyResult, Cause.Done>(),
      workers,
      timers,
      callbacks,
      yield* FiberSet.runtime(workers)<never>(),
      yield* FiberSet.runtime(timers)<never>(),
      yield* FiberSet.runtime(callbacks)<never>(),
      yield* Effect.context<never>()
    )
    pool.spawnWorkers(config.maxIoWorkerNum)
    pool.lingerFiber = yield* Effect.forkScoped(pool.lingerTimer(), { startImmediately: true })
    yield* Effect.addFinalizer(() => pool.close())
    return {
      push: <A, E, R>(task: Task<A, E, R>, options?: PushOptions) =>
        pool.push(task as AnyTask, options) as Effect.Effect<TaskHandle<A, E>, PoolClosedError | PoolFullError, R>,
      // One element per pull: a reader that stops early leaves the rest queued.
      failures: Stream.fromEffectRepeat(Queue.take(pool.failureQueue)),
      stats: Effect.sync(() => pool.stats()),
      awaitIdle: pool.idle.await,
      close: (options) => pool.close(options),
      pause: Effect.sync(() => pool.pause()),
      resume: Effect.sync(() => pool.resume()),
      resize: (maxIoWorkerNum) => pool.resize(maxIoWorkerNum)
    }
  })
