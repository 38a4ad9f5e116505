/**
 * Random pool scenarios for the reliability properties and `npm run fuzz`.
 *
 * A `Scenario` is plain data (derived from Schemas, so it shrinks and prints
 * well): a valid config, a list of tasks (what each attempt does, the task's
 * timeout, what its callback does, which pushing fiber pushes it and when, and
 * whether that push is interrupted), reads of the failure queue, and a close
 * (safe, or limited with a timeout) at a random instant.
 *
 * `runScenario` plays a scenario against a real pool on the `TestClock` and
 * records everything it can observe from outside: every push and how it
 * ended, every attempt (start, end, exit) and callback, every handle's
 * result, stats sampled over time, what the failure queue gave. `checkScenario`
 * then applies one family of invariants (`checkPushes`, `checkEnds`,
 * `checkStats`, `checkWorkers`, `checkFailureQueue`, `checkClose`) to that record.
 *
 * A `SchedulingScenario` adds the scheduling controls as random dimensions:
 * per-task push options (priority, delay, a key from a small set so lanes
 * collide, an idempotency key from a small set so duplicates happen), a
 * cancel of the push's handle at a random instant, a custom retry schedule;
 * and per scenario pause / resume / resize at random instants, a rate limit
 * and retry jitter. The same `check*` families apply to both (their
 * predictions are relaxed only where a scheduling control makes them
 * uncertain: a cancel's instant, a jittered wait, a paused or rate-limited or
 * resized pool), and `checkIdempotency`, `checkCancels`, `checkLimits`,
 * `checkKeys` and `checkPriority` check the controls themselves.
 */
import { assert } from "@effect/vitest"
import { afterAll } from "vitest"
import { Cause, Effect, Exit, Fiber, Random, Schedule, Schema, Stream } from "effect"
import type { Clock, Scope } from "effect"
import { TestClock } from "effect/testing"
import { PoolClosedError, PoolFullError, Task, TaskTimeoutError } from "../src/index.js"
import type { PushOptions, TaskHandle, TaskPoolConfigInput, TaskPoolStats, TaskResult } from "../src/index.js"
import { Fatal, Flaky, openPool } from "./utils.js"

// ── run counts and seed (`npm run fuzz`) ───────────────────────────────────

const envNumber = (name: string): number | undefined => {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === "") return undefined
  const value = Number(raw)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`)
  return value
}

/** `TASKPOOL_FUZZ_RUNS` replaces every suite's run count (the fuzz script sets 10,000). */
export const fuzzRunsOverride = envNumber("TASKPOOL_FUZZ_RUNS")

/** True under `npm run fuzz`. */
export const fuzzing = fuzzRunsOverride !== undefined

/** The seed of every property in this process: `TASKPOOL_FUZZ_SEED`, else a fresh one (printed, for replay). */
export const fuzzSeed: number = envNumber("TASKPOOL_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31)

/**
 * Options for `it.effect.prop`: `ciRuns` runs (or `TASKPOOL_FUZZ_RUNS`), the
 * shared seed, and a Vitest timeout that grows with the runs.
 */
export const propOptions = (ciRuns: number, size = 10, msPerRun = 40) => {
  const runs = fuzzRunsOverride ?? ciRuns
  return {
    timeout: Math.max(30_000, runs * msPerRun),
    arbitrary: { runs, seed: fuzzSeed, size, maxShrinks: fuzzing ? 2_000 : 400 }
  }
}

/** Prints the seed and run count once per file: replay with `TASKPOOL_FUZZ_SEED=<seed>`. */
export const announce = (suite: string, ciRuns: number): void => {
  console.log(
    `[${suite}] seed ${fuzzSeed}, ${fuzzRunsOverride ?? ciRuns} runs per property ` +
      `(replay: TASKPOOL_FUZZ_SEED=${fuzzSeed}${fuzzing ? ` TASKPOOL_FUZZ_RUNS=${fuzzRunsOverride}` : ""})`
  )
}

// ── the scenario data ──────────────────────────────────────────────────────

const int = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))
/** Half the time 0 (so many things happen at the same instant), else in [1, maximum]. */
const oftenZero = (maximum: number) => Schema.Union([Schema.Literal(0), int(1, maximum)])

/**
 * What one attempt does, after waiting `ms`: succeed; fail with a retryable
 * typed error (`Flaky`), a final one (`Fatal`, `retryable` says no), or one
 * whose `retryable` throws (`Weird`, final); throw; die; outlive its timeout
 * (sleeps timeout + 1 + ms, then succeeds: a plain slow success without a
 * timeout); or never end (limited close only, or cut by the timeout).
 */
const safeAttemptKinds = ["succeed", "flaky", "fatal", "weird", "throw", "die", "overTimeout"] as const
const limitedAttemptKinds = [...safeAttemptKinds, "never"] as const
export type AttemptKind = (typeof limitedAttemptKinds)[number]

/** What a task's callback (`onSuccess` or `onFail`) does: return, fail, die, throw, or take `ms`. */
const callbackKinds = ["ok", "fail", "die", "throw", "slow"] as const
export type CallbackKind = (typeof callbackKinds)[number]

const PushSpec = Schema.Struct({
  /** Which of up to 4 pushing fibers pushes the task; each pushes its tasks in order. */
  pusher: int(0, 3),
  /** The pusher's pause before this push. */
  gapMs: oftenZero(250),
  /** Interrupt the push this long after it starts (a no-op if it has returned). */
  interruptAfterMs: Schema.NullOr(int(0, 600))
})

const taskSpec = <K extends ReadonlyArray<AttemptKind>>(kinds: K) =>
  Schema.Struct({
    /** Attempt n does `attempts[min(n, length) - 1]`. */
    attempts: Schema.Array(Schema.Struct({ kind: Schema.Literals(kinds), ms: oftenZero(800) })).check(
      Schema.isMinLength(1),
      Schema.isMaxLength(4)
    ),
    timeoutMs: Schema.NullOr(int(1, 600)),
    callback: Schema.Struct({ kind: Schema.Literals(callbackKinds), ms: int(1, 400) }),
    push: PushSpec
  })

const ConfigSpec = Schema.Struct({
  maxIoWorkerNum: int(1, 6),
  lingerMs: Schema.Union([Schema.Literal(100), int(101, 1000)]),
  maxRetryTimes: int(-2, 4),
  maxReservedAttempts: int(1, 6),
  baseRetryBackOffMs: oftenZero(400),
  maxRetryBackOffMs: oftenZero(1500),
  maxTaskNum: int(1, 12),
  maxBlockMs: Schema.Union([Schema.Literals([-1, 0]), int(1, 1500)]),
  maxFailedTasks: int(0, 4)
})

/** A read of `count` failures from the failure queue at `atMs` (it waits for them, or for the close). */
const ReadSpec = Schema.Struct({ atMs: int(0, 5000), count: int(1, 3) })

const common = {
  config: ConfigSpec,
  closeAtMs: int(0, 5000),
  reads: Schema.Array(ReadSpec).check(Schema.isMaxLength(3))
}

export const SafeScenario = Schema.Struct({
  close: Schema.Literal("safe"),
  ...common,
  tasks: Schema.Array(taskSpec(safeAttemptKinds)).check(Schema.isMaxLength(16))
})

export const LimitedScenario = Schema.Struct({
  close: Schema.Literal("limited"),
  shutdownTimeoutMs: oftenZero(3000),
  ...common,
  tasks: Schema.Array(taskSpec(limitedAttemptKinds)).check(Schema.isMaxLength(16))
})

export const Scenario = Schema.Union([SafeScenario, LimitedScenario])
export type Scenario = typeof Scenario.Type
export type ConfigSpec = typeof ConfigSpec.Type

// ── the scheduling dimensions (SchedulingScenario) ─────────────────────────

/**
 * A push's options; each field absent half the time. Keys and idempotency
 * keys come from small sets, so lanes collide and duplicates happen.
 */
const PushOptionsSpec = Schema.Struct({
  priority: Schema.NullOr(int(-2, 2)),
  /** `null`: no delay (the task lingers); 0 is a delay too (no linger). */
  delayMs: Schema.NullOr(oftenZero(600)),
  key: Schema.NullOr(Schema.Literals(["a", "b"])),
  idempotencyKey: Schema.NullOr(Schema.Literals(["x", "y"]))
})
export type PushOptionsSpec = typeof PushOptionsSpec.Type

/**
 * A task's `retrySchedule`: `Schedule.spaced(ms)` or `Schedule.exponential(ms)`
 * (ms, 2 ms, 4 ms, ...), with at most `times` retries (`Schedule.recurs`) when given.
 */
const RetryScheduleSpec = Schema.Struct({
  kind: Schema.Literals(["spaced", "exponential"]),
  ms: oftenZero(300),
  times: Schema.NullOr(int(0, 3))
})
export type RetryScheduleSpec = typeof RetryScheduleSpec.Type

const schedulingTaskSpec = <K extends ReadonlyArray<AttemptKind>>(kinds: K) =>
  Schema.Struct({
    ...taskSpec(kinds).fields,
    /** `null`: pushed without options. */
    options: Schema.NullOr(PushOptionsSpec),
    /** Cancel the handle this push returned this long after the push returned (often after the task ended). */
    cancelAfterMs: Schema.NullOr(int(0, 3000)),
    retrySchedule: Schema.NullOr(RetryScheduleSpec)
  })

/** One call on the pool, after a pause of `gapMs` from the previous one: pause, resume, or resize to n. */
const ControlSpec = Schema.Struct({
  gapMs: oftenZero(1500),
  action: Schema.Union([Schema.Literals(["pause", "resume"]), int(1, 6)])
})
export type ControlAction = (typeof ControlSpec.Type)["action"]

const schedulingCommon = {
  rateLimit: Schema.NullOr(Schema.Struct({ limit: int(1, 4), intervalMs: int(1, 800) })),
  /**
   * `null`: no `retryJitter`. Else jitter on, with the pool's `Random`
   * seeded with this number, or always drawing 0 ("low") or just under 1 ("high").
   */
  jitter: Schema.NullOr(Schema.Union([Schema.Literals(["low", "high"]), int(0, 1_000_000)])),
  controls: Schema.Array(ControlSpec).check(Schema.isMaxLength(6))
}

export const SchedulingSafeScenario = Schema.Struct({
  close: Schema.Literal("safe"),
  ...common,
  ...schedulingCommon,
  tasks: Schema.Array(schedulingTaskSpec(safeAttemptKinds)).check(Schema.isMaxLength(16))
})

export const SchedulingLimitedScenario = Schema.Struct({
  close: Schema.Literal("limited"),
  shutdownTimeoutMs: oftenZero(3000),
  ...common,
  ...schedulingCommon,
  tasks: Schema.Array(schedulingTaskSpec(limitedAttemptKinds)).check(Schema.isMaxLength(16))
})

export const SchedulingScenario = Schema.Union([SchedulingSafeScenario, SchedulingLimitedScenario])
export type SchedulingScenario = typeof SchedulingScenario.Type

/** What `runScenario` and the checks take: a plain scenario or one with scheduling controls. */
export type AnyScenario = Scenario | SchedulingScenario
export type TaskSpec = AnyScenario["tasks"][number]

/** A task's scheduling dimensions; all `null` in a plain scenario. */
export interface TaskScheduling {
  readonly options: PushOptionsSpec | null
  readonly cancelAfterMs: number | null
  readonly retrySchedule: RetryScheduleSpec | null
}

/** A scenario's scheduling dimensions; none in a plain scenario. */
export interface ScenarioScheduling {
  readonly rateLimit: { readonly limit: number; readonly intervalMs: number } | null
  readonly jitter: "low" | "high" | number | null
  readonly controls: ReadonlyArray<{ readonly gapMs: number; readonly action: ControlAction }>
}

const noTaskScheduling: TaskScheduling = { options: null, cancelAfterMs: null, retrySchedule: null }
const noScheduling: ScenarioScheduling = { rateLimit: null, jitter: null, controls: [] }

export const taskSchedulingOf = (spec: TaskSpec): TaskScheduling => "options" in spec ? spec : noTaskScheduling
export const schedulingOf = (scenario: AnyScenario): ScenarioScheduling => "controls" in scenario ? scenario : noScheduling

export const configOf = (scenario: AnyScenario): TaskPoolConfigInput => {
  const { jitter, rateLimit } = schedulingOf(scenario)
  return {
    ...scenario.config,
    ...(scenario.close === "limited" ? { shutdownTimeoutMs: scenario.shutdownTimeoutMs } : {}),
    ...(rateLimit === null ? {} : { rateLimit }),
    ...(jitter === null ? {} : { retryJitter: true })
  }
}

/** The options `push` gets for this task: `undefined` for none. */
export const pushOptionsOf = (options: PushOptionsSpec | null): PushOptions | undefined =>
  options === null ? undefined : {
    ...(options.priority === null ? {} : { priority: options.priority }),
    ...(options.delayMs === null ? {} : { delay: options.delayMs }),
    ...(options.key === null ? {} : { key: options.key }),
    ...(options.idempotencyKey === null ? {} : { idempotencyKey: options.idempotencyKey })
  }

/** The task's `retrySchedule`. */
export const retryScheduleOf = (spec: RetryScheduleSpec): Schedule.Schedule<unknown, unknown> => {
  const base: Schedule.Schedule<unknown, unknown> = spec.kind === "spaced" ? Schedule.spaced(spec.ms) : Schedule.exponential(spec.ms)
  return spec.times === null ? base : Schedule.max([base, Schedule.recurs(spec.times)])
}

/** The wait a retry schedule gives after failed attempt n (its n-th step), or `undefined` once it is done. */
export const scheduledWait = (spec: RetryScheduleSpec, n: number): number | undefined =>
  spec.times !== null && n > spec.times ? undefined : spec.kind === "spaced" ? spec.ms : spec.ms * 2 ** (n - 1)

// ── the tasks' behaviour ───────────────────────────────────────────────────

export class Weird extends Schema.TaggedError<Weird>()("Weird", { message: Schema.String }) {}
export type TaskError = Flaky | Fatal | Weird

const retryable = (error: TaskError): boolean => {
  if (error._tag === "Weird") throw new Error("retryable threw")
  return error._tag !== "Fatal"
}

/** The value of a successful attempt. */
export const valueOf = (name: string, attempt: number) => `${name}#${attempt}`

/** How long an attempt of this kind runs when nothing cuts it off. */
const durationOf = (kind: AttemptKind, ms: number, timeoutMs: number | null): number =>
  kind === "never" ? Infinity : kind === "overTimeout" ? (timeoutMs ?? 0) + 1 + ms : ms

/** The `errorCode` of an attempt of this kind that runs to its end (`undefined`: success; `null`: never ends). */
const naturalCode = (kind: AttemptKind): string | undefined | null => {
  switch (kind) {
    case "succeed":
    case "overTimeout":
      return undefined
    case "flaky":
      return "Flaky"
    case "fatal":
      return "Fatal"
    case "weird":
      return "Weird"
    case "throw":
    case "die":
      return "Defect"
    case "never":
      return null
  }
}

const retryableCodes = new Set(["Flaky", "Defect", "Timeout"])

/** `min(base * 2^(n-1), max)`: the wait after failed attempt n, as the contract states it. */
export const backoffAfter = (config: ConfigSpec, n: number): number =>
  Math.min(config.baseRetryBackOffMs * 2 ** (n - 1), config.maxRetryBackOffMs)

export const maxAttemptsOf = (config: ConfigSpec) => Math.max(0, config.maxRetryTimes) + 1

// ── the record ─────────────────────────────────────────────────────────────

export interface AttemptRecord {
  readonly number: number
  readonly kind: AttemptKind
  readonly ms: number
  readonly start: number
  end: number | undefined
  exit: Exit.Exit<unknown, unknown> | undefined
  /** The pool's stats at the very step the attempt started: the worker limit in force, and whether it was paused. */
  readonly limitAtStart: number
  readonly pausedAtStart: boolean
  /** Attempts running as it started, itself included (never more than the pool counts). */
  readonly runningAtStart: number
}

export interface CallbackRecord {
  readonly which: "onSuccess" | "onFail"
  readonly result: TaskResult<unknown, unknown>
  readonly start: number
  end: number | undefined
  how: "returned" | "failed" | "died" | "threw" | "interrupted" | undefined
}

/** "duplicate": the push returned the handle of a task an earlier push (with the same idempotency key) made. */
export type PushOutcome = "accepted" | "duplicate" | "closed" | "full" | "interrupted" | "other"

export interface CancelRecord {
  /** When `cancel` was called, and when it returned. */
  readonly at: number
  returnedAt: number | undefined
}

export interface TaskRecord {
  readonly index: number
  readonly name: string
  readonly spec: TaskSpec
  readonly scheduling: TaskScheduling
  pushStartedAt: number | undefined
  pushEndedAt: number | undefined
  pushOutcome: PushOutcome | undefined
  pushError: unknown
  handle: TaskHandle<unknown, unknown> | undefined
  /** The task the handle belongs to: this one when accepted, the earlier push's when a duplicate. */
  owner: TaskRecord | undefined
  readonly attempts: Array<AttemptRecord>
  readonly callbacks: Array<CallbackRecord>
  /** The handle's `result`, once it completed, and when. */
  handleResult: { readonly result: TaskResult<unknown, unknown>; readonly at: number } | undefined
  /** The cancel of the handle this push returned, when the scenario asks for one. */
  cancel: CancelRecord | undefined
}

export interface StatsSample {
  readonly at: number
  readonly stats: TaskPoolStats
  readonly attemptsRunning: number
  readonly callbacksRunning: number
}

/** A pause, resume or resize, and when it was made (in the order made). */
export interface ControlRecord {
  readonly action: ControlAction
  readonly at: number
}

/** A number the pool drew from its `Random` (retry jitter), and when. */
export interface Draw {
  readonly at: number
  readonly value: number
}

export interface Report {
  readonly scenario: AnyScenario
  readonly scheduling: ScenarioScheduling
  readonly tasks: ReadonlyArray<TaskRecord>
  readonly closeStartedAt: number | undefined
  readonly closedAt: number | undefined
  readonly peakAttemptsRunning: number
  readonly samples: ReadonlyArray<StatsSample>
  /** What each read of the failure queue got. */
  readonly reads: ReadonlyArray<ReadonlyArray<TaskResult<unknown, unknown>>>
  /** What was left in the failure queue after the close (read to its end). */
  readonly unread: ReadonlyArray<TaskResult<unknown, unknown>> | undefined
  readonly finalStats: TaskPoolStats
  readonly controls: ReadonlyArray<ControlRecord>
  readonly draws: ReadonlyArray<Draw>
}

/**
 * Long enough for any scenario: at most 16 tasks × 5 attempts × (~1.4 s
 * attempt + 1.5 s backoff, or 0.8 s of rate limit) + callbacks on one worker,
 * after a close at 5 s.
 */
export const horizonMs = 1_000_000

// ── running a scenario ─────────────────────────────────────────────────────

const constantRandom = (value: number): Random.Random => ({ nextDoubleUnsafe: () => value, nextIntUnsafe: () => 0 })

/** The pool's `Random` for retry jitter: seeded or constant, recording every draw. */
const jitterRandom = (jitter: "low" | "high" | number, draws: Array<Draw>, now: () => number): Effect.Effect<Random.Random> =>
  Effect.map(
    jitter === "low"
      ? Effect.succeed(constantRandom(0))
      : jitter === "high"
      ? Effect.succeed(constantRandom(1 - 2 ** -30))
      : Effect.gen(function*() {
        return yield* Random.Random
      }).pipe(Random.withSeed(jitter)),
    (random): Random.Random => ({
      nextIntUnsafe: () => random.nextIntUnsafe(),
      nextDoubleUnsafe: () => {
        const value = random.nextDoubleUnsafe()
        draws.push({ at: now(), value })
        return value
      }
    })
  )

/**
 * Plays the scenario on a fresh pool under the `TestClock` (it must be
 * provided, as `it.effect` does) and returns what happened. Never hangs: a
 * close that does not return within `horizonMs` is reported as not returned.
 */
export const runScenario = (scenario: AnyScenario): Effect.Effect<Report, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clockWith((clock: Clock.Clock) => Effect.succeed(clock))
    const now = () => clock.currentTimeMillisUnsafe()
    const scheduling = schedulingOf(scenario)
    const draws: Array<Draw> = []
    const controls: Array<ControlRecord> = []
    const opening = openPool(configOf(scenario))
    const { close, pool } = yield* (scheduling.jitter === null
      ? opening
      : Effect.flatMap(jitterRandom(scheduling.jitter, draws, now), (random) => Effect.provideService(opening, Random.Random, random)))
    const tasks: Array<TaskRecord> = scenario.tasks.map((spec: TaskSpec, index) => ({
      index,
      name: `t${index}`,
      spec,
      scheduling: taskSchedulingOf(spec),
      pushStartedAt: undefined,
      pushEndedAt: undefined,
      pushOutcome: undefined,
      pushError: undefined,
      handle: undefined,
      owner: undefined,
      attempts: [],
      callbacks: [],
      handleResult: undefined,
      cancel: undefined
    }))
    let attemptsRunning = 0
    let callbacksRunning = 0
    let peakAttemptsRunning = 0
    let closeStartedAt: number | undefined
    let closedAt: number | undefined
    const samples: Array<StatsSample> = []

    const executeOf = (task: TaskRecord): Effect.Effect<string, TaskError> =>
      Effect.suspend(() => {
        const number = task.attempts.length + 1
        const { kind, ms } = task.spec.attempts[Math.min(number, task.spec.attempts.length) - 1]!
        peakAttemptsRunning = Math.max(peakAttemptsRunning, ++attemptsRunning)
        // Read in the very step the worker started the attempt: nothing else ran in between.
        const stats = Effect.runSync(pool.stats)
        const record: AttemptRecord = {
          number,
          kind,
          ms,
          start: now(),
          end: undefined,
          exit: undefined,
          limitAtStart: stats.maxIoWorkerNum,
          pausedAtStart: stats.paused,
          runningAtStart: attemptsRunning
        }
        task.attempts.push(record)
        const message = `${task.name} attempt ${number}`
        const act: Effect.Effect<string, TaskError> = (() => {
          switch (kind) {
            case "succeed":
            case "overTimeout":
              return Effect.succeed(valueOf(task.name, number))
            case "flaky":
              return Effect.fail(new Flaky({ message }))
            case "fatal":
              return Effect.fail(new Fatal({ message }))
            case "weird":
              return Effect.fail(new Weird({ message }))
            case "throw":
              return Effect.sync((): string => {
                throw new Error(message)
              })
            case "die":
              return Effect.die(new Error(message))
            case "never":
              return Effect.never
          }
        })()
        const wait = durationOf(kind, ms, task.spec.timeoutMs)
        const body = kind === "never" || wait === 0 ? act : Effect.andThen(Effect.sleep(wait), act)
        return body.pipe(Effect.onExit((exit) =>
          Effect.sync(() => {
            attemptsRunning--
            record.end = now()
            record.exit = exit
          })
        ))
      })

    const callbackOf = (task: TaskRecord, which: "onSuccess" | "onFail") =>
    (result: TaskResult<string, TaskError>): Effect.Effect<void> => {
      const record: CallbackRecord = { which, result, start: now(), end: undefined, how: undefined }
      task.callbacks.push(record)
      callbacksRunning++
      const done = (how: NonNullable<CallbackRecord["how"]>) => {
        callbacksRunning--
        record.end = now()
        record.how = how
      }
      const { kind, ms } = task.spec.callback
      if (kind === "throw") {
        done("threw")
        throw new Error(`${task.name} ${which} threw`)
      }
      const body: Effect.Effect<void, string> = kind === "ok"
        ? Effect.void
        : kind === "fail"
        ? Effect.fail(`${task.name} ${which} failed`)
        : kind === "die"
        ? Effect.die(new Error(`${task.name} ${which} died`))
        : Effect.sleep(ms)
      return body.pipe(
        Effect.onExit((exit) =>
          Effect.sync(() =>
            done(
              Exit.isSuccess(exit)
                ? "returned"
                : Cause.hasInterruptsOnly(exit.cause)
                ? "interrupted"
                : Cause.hasFails(exit.cause)
                ? "failed"
                : "died"
            )
          )
        )
      ) as Effect.Effect<void>
    }

    const taskOf = (task: TaskRecord) =>
      Task.make({
        name: task.name,
        execute: executeOf(task),
        onSuccess: callbackOf(task, "onSuccess"),
        onFail: callbackOf(task, "onFail"),
        retryable,
        ...(task.spec.timeoutMs === null ? {} : { timeout: task.spec.timeoutMs }),
        ...(task.scheduling.retrySchedule === null ? {} : { retrySchedule: retryScheduleOf(task.scheduling.retrySchedule) })
      })

    const cancelLater = (task: TaskRecord, handle: TaskHandle<unknown, unknown>, afterMs: number) =>
      // Detached: the pusher may be done long before.
      Effect.forkDetach(Effect.gen(function*() {
        yield* Effect.sleep(afterMs)
        const record: CancelRecord = { at: now(), returnedAt: undefined }
        task.cancel = record
        yield* handle.cancel
        record.returnedAt = now()
      }))

    const pushOne = (task: TaskRecord) =>
      Effect.gen(function*() {
        yield* Effect.sleep(task.spec.push.gapMs)
        task.pushStartedAt = now()
        const fiber = yield* Effect.forkChild(pool.push(taskOf(task), pushOptionsOf(task.scheduling.options)), {
          startImmediately: true
        })
        const interruptAfterMs = task.spec.push.interruptAfterMs
        if (interruptAfterMs !== null) {
          yield* Effect.forkChild(Effect.andThen(Effect.sleep(interruptAfterMs), Fiber.interrupt(fiber)), {
            startImmediately: true
          })
        }
        const exit = yield* Fiber.await(fiber)
        task.pushEndedAt = now()
        if (Exit.isSuccess(exit)) {
          task.pushOutcome = "accepted"
          task.handle = exit.value as TaskHandle<unknown, unknown>
          yield* Effect.forkDetach(Effect.flatMap(exit.value.result, (result) =>
            Effect.sync(() => {
              task.handleResult = { result: result as TaskResult<unknown, unknown>, at: now() }
            })))
          if (task.scheduling.cancelAfterMs !== null) yield* cancelLater(task, task.handle, task.scheduling.cancelAfterMs)
        } else if (Cause.hasInterruptsOnly(exit.cause)) {
          task.pushOutcome = "interrupted"
        } else {
          const error = Cause.squash(exit.cause)
          task.pushError = error
          task.pushOutcome = error instanceof PoolClosedError
            ? "closed"
            : error instanceof PoolFullError
            ? "full"
            : "other"
        }
      })

    const pushers = yield* Effect.forEach([0, 1, 2, 3], (pusher) =>
      Effect.forkChild(
        Effect.forEach(tasks.filter((task) => task.spec.push.pusher === pusher), pushOne, { discard: true }),
        { startImmediately: true }
      ))

    const reads: Array<Array<TaskResult<unknown, unknown>>> = []
    const readers = yield* Effect.forEach(scenario.reads, ({ atMs, count }) =>
      Effect.forkChild(
        Effect.gen(function*() {
          yield* Effect.sleep(atMs)
          const got: Array<TaskResult<unknown, unknown>> = []
          reads.push(got)
          yield* Stream.runForEach(Stream.take(pool.failures, count), (result) => Effect.sync(() => void got.push(result)))
        })
      ))

    // Pause, resume and resize, one after the other.
    yield* Effect.forkChild(
      Effect.forEach(scheduling.controls, ({ action, gapMs }) =>
        Effect.gen(function*() {
          yield* Effect.sleep(gapMs)
          const at = now()
          if (action === "pause") yield* pool.pause
          else if (action === "resume") yield* pool.resume
          else yield* Effect.orDie(pool.resize(action))
          controls.push({ action, at })
        }), { discard: true }),
      { startImmediately: true }
    )

    // Detached: a close that never returns must not hold the test's scope.
    yield* Effect.forkDetach(
      Effect.gen(function*() {
        yield* Effect.sleep(scenario.closeAtMs)
        closeStartedAt = now()
        yield* close
        closedAt = now()
      })
    )

    // Samples the stats every 17 ms until the close returns (or, if it never does, for a while).
    yield* Effect.forkChild(
      Effect.gen(function*() {
        while (closedAt === undefined && now() < horizonMs / 10) {
          samples.push({ at: now(), stats: yield* pool.stats, attemptsRunning, callbacksRunning })
          yield* Effect.sleep(17)
        }
      }),
      { startImmediately: true }
    )

    yield* TestClock.adjust(horizonMs)

    for (const pusher of pushers) yield* Fiber.await(pusher)
    // Who owns each handle: the push whose task the handle's result names; the others with it are duplicates.
    const byTaskId = new Map<string, Array<TaskRecord>>()
    for (const task of tasks) {
      if (task.handle === undefined) continue
      const group = byTaskId.get(task.handle.taskId) ?? []
      group.push(task)
      byTaskId.set(task.handle.taskId, group)
    }
    for (const group of byTaskId.values()) {
      const owner = group.find((t) => t.handleResult?.result.name === t.name) ??
        group.find((t) => t.attempts.length > 0 || t.callbacks.length > 0) ?? group[0]!
      for (const task of group) {
        task.owner = owner
        if (task !== owner) task.pushOutcome = "duplicate"
      }
    }
    let unread: Array<TaskResult<unknown, unknown>> | undefined
    if (closedAt !== undefined) {
      for (const reader of readers) yield* Fiber.await(reader)
      unread = [...(yield* Stream.runCollect(pool.failures))]
    } else {
      for (const reader of readers) yield* Fiber.interrupt(reader)
    }
    return {
      scenario,
      scheduling,
      tasks,
      closeStartedAt,
      closedAt,
      peakAttemptsRunning,
      samples,
      reads,
      unread,
      finalStats: yield* pool.stats,
      controls,
      draws
    }
  })

// ── checking it ────────────────────────────────────────────────────────────

/** The close's start, its return, and (limited close) its deadline; fails if the close never returned. */
const closeOf = (report: Report) => {
  const { scenario } = report
  assert.isDefined(report.closeStartedAt, "the close never started")
  const startedAt = report.closeStartedAt!
  if (report.closedAt === undefined) {
    const unfinished = report.tasks.filter((t) => t.pushOutcome === "accepted" && t.handleResult === undefined)
    assert.fail(
      `the ${scenario.close} close started at ${startedAt} never returned; unfinished: ` +
        `${unfinished.map((t) => t.name).join(", ") || "none"}; stats ${JSON.stringify(report.finalStats)}; ` +
        `controls ${JSON.stringify(report.controls)}`
    )
  }
  /** After the deadline of a limited close, whatever is left ends "Interrupted". */
  const deadline = scenario.close === "limited" ? startedAt + scenario.shutdownTimeoutMs : Infinity
  return { startedAt, closedAt: report.closedAt!, deadline }
}

/** The pushes that made a task: one per task in the pool (a duplicate push made none). */
const acceptedOf = (report: Report) => report.tasks.filter((t) => t.pushOutcome === "accepted")

const describeTask = (task: TaskRecord) => `${task.name} ${JSON.stringify(task.spec)}`

const priorityOf = (task: TaskRecord): number => task.scheduling.options?.priority ?? 0
/** `null`: pushed without a delay (it lingers, unless parked behind its key). */
const delayOf = (task: TaskRecord): number | null => task.scheduling.options?.delayMs ?? null
const keyOf = (task: TaskRecord): string | null => task.scheduling.options?.key ?? null
const idempotencyKeyOf = (task: TaskRecord): string | null => task.scheduling.options?.idempotencyKey ?? null
/** An accepted push returns at the instant the pool accepted it. */
const createdAtOf = (task: TaskRecord): number => task.pushEndedAt!
/** When its handle's result completed (after its callback): the task released its key and idempotency key. */
const settledAtOf = (task: TaskRecord): number => task.handleResult?.at ?? Infinity

/** The cancels of an accepted task's handle, made through any push that returned it. */
const cancelsOf = (report: Report, task: TaskRecord): ReadonlyArray<CancelRecord> =>
  report.tasks.flatMap((t) => t.owner === task && t.cancel !== undefined ? [t.cancel] : [])

/** `maxRetryTimes + 1`, or fewer when the task's retry schedule allows fewer retries. */
const maxAttemptsOfTask = (config: ConfigSpec, task: TaskRecord): number => {
  const times = task.scheduling.retrySchedule?.times ?? null
  return Math.min(maxAttemptsOf(config), times === null ? Infinity : times + 1)
}

/**
 * The wait before attempt n + 1, after attempt n failed at `end`: the retry
 * schedule's step, else the formula; with jitter anywhere in [0, formula],
 * at least the smallest draw made at `end` gives.
 */
const retryWait = (report: Report, task: TaskRecord, n: number, end: number): { readonly min: number; readonly max: number } => {
  const schedule = task.scheduling.retrySchedule
  if (schedule !== null) {
    const wait = scheduledWait(schedule, n) ?? Infinity
    return { min: wait, max: wait }
  }
  const formula = backoffAfter(report.scenario.config, n)
  if (report.scheduling.jitter === null) return { min: formula, max: formula }
  const drawn = report.draws.filter((d) => d.at === end).map((d) => Math.floor(d.value * (formula + 1)))
  return { min: drawn.length === 0 ? 0 : Math.min(...drawn), max: formula }
}

interface Timeline {
  readonly startedAt: number
  readonly deadline: number
  /** Whether the pool is paused once everything at instant t has happened. */
  readonly pausedAfter: (t: number) => boolean
  /** The worker limit once everything at instant t has happened. */
  readonly limitAfter: (t: number) => number
  /** The highest worker limit in force up to t. */
  readonly maxLimitUpTo: (t: number) => number
  /** Attempts running once everything at instant t has happened. */
  readonly runningAt: (t: number) => number
  /** Whether the rate limit's window is full once everything at instant t has happened. */
  readonly rateFullAt: (t: number) => boolean
  readonly attempts: ReadonlyArray<readonly [TaskRecord, AttemptRecord]>
  /** Every attempt start, in order. */
  readonly starts: ReadonlyArray<number>
}

const timelines = new WeakMap<Report, Timeline>()

const timelineOf = (report: Report): Timeline => {
  const cached = timelines.get(report)
  if (cached !== undefined) return cached
  const { config } = report.scenario
  const { deadline, startedAt } = closeOf(report)
  const toggles = report.controls.filter((c) => c.action === "pause" || c.action === "resume")
  const resizes = report.controls.flatMap((c) => typeof c.action === "number" ? [[c.at, c.action] as const] : [])
  const attempts = report.tasks.flatMap((task) => task.attempts.map((a) => [task, a] as const))
  const starts = attempts.map(([, a]) => a.start).sort((a, b) => a - b)
  const rate = report.scheduling.rateLimit
  const timeline: Timeline = {
    startedAt,
    deadline,
    // The close resumes dispatch, and a pause once it has begun does nothing.
    pausedAfter: (t) => t < startedAt && toggles.filter((c) => c.at <= t).at(-1)?.action === "pause",
    limitAfter: (t) => resizes.filter(([at]) => at <= t).at(-1)?.[1] ?? config.maxIoWorkerNum,
    maxLimitUpTo: (t) => Math.max(config.maxIoWorkerNum, ...resizes.filter(([at]) => at <= t).map(([, n]) => n)),
    runningAt: (t) => attempts.filter(([, a]) => a.start <= t && t < (a.end ?? Infinity)).length,
    rateFullAt: (t) => rate !== null && starts.filter((s) => s > t - rate.intervalMs && s <= t).length >= rate.limit,
    attempts,
    starts
  }
  timelines.set(report, timeline)
  return timeline
}

/**
 * When an accepted task's first attempt may become ready to start, at the
 * earliest and at the latest: its delay's end, else its linger batch's flush
 * (by `lingerMs` after its push, or the close's start); behind its key, once
 * the task holding the key settled. The key passes no later than every task
 * of the key pushed before it has settled (or, cancelled while waiting for
 * the key, left the lane), and no earlier than every one of them that ran
 * (so held the key) has settled; pushes of one key at one instant are in an
 * unknown order, so the bounds cover both.
 */
const firstReadyOf = (report: Report, timeline: Timeline, task: TaskRecord): { readonly lo: number; readonly hi: number } => {
  const created = createdAtOf(task)
  const delay = delayOf(task)
  const free = delay === null
    ? { lo: created, hi: Math.min(created + report.scenario.config.lingerMs, timeline.startedAt) }
    : { lo: created + delay, hi: created + delay }
  const key = keyOf(task)
  if (key === null) return free
  const others = acceptedOf(report).filter((o) => o !== task && keyOf(o) === key && createdAtOf(o) <= created)
  const heldBefore = others.filter((o) => createdAtOf(o) < created && o.attempts.length > 0)
  const cases: Array<{ readonly lo: number; readonly hi: number }> = []
  if (heldBefore.every((o) => settledAtOf(o) <= created)) cases.push(free)
  if (others.some((o) => settledAtOf(o) >= created)) {
    const lo = Math.max(created, ...heldBefore.map(settledAtOf))
    const hi = Math.max(created, ...others.map(settledAtOf))
    cases.push(delay === null ? { lo, hi } : { lo: Math.max(lo, created + delay), hi: Math.max(hi, created + delay) })
  }
  return { lo: Math.min(...cases.map((c) => c.lo)), hi: Math.max(...cases.map((c) => c.hi)) }
}

/** A stretch in which an accepted task waits to start an attempt: ready from [lo, hi] on, until `until`. */
interface Wait {
  readonly task: TaskRecord
  readonly what: string
  readonly lo: number
  readonly hi: number
  /** When the attempt started, or the task ended without it. */
  readonly until: number
  readonly attempt: AttemptRecord | undefined
}

const waitsOf = (report: Report, timeline: Timeline, task: TaskRecord): ReadonlyArray<Wait> => {
  const result = task.handleResult?.result
  if (result === undefined) return []
  const made = task.attempts
  const first = firstReadyOf(report, timeline, task)
  const waits: Array<Wait> = [{ task, what: "attempt 1", ...first, until: made[0]?.start ?? result.completedAtMs, attempt: made[0] }]
  const retryAfter = (previous: AttemptRecord, until: number, attempt: AttemptRecord | undefined) => {
    const wait = retryWait(report, task, previous.number, previous.end!)
    waits.push({ task, what: `attempt ${previous.number + 1}`, lo: previous.end! + wait.min, hi: previous.end! + wait.max, until, attempt })
  }
  made.slice(0, -1).forEach((a, i) => retryAfter(a, made[i + 1]!.start, made[i + 1]))
  const last = made.at(-1)
  // Waiting for a retry when the limited close or a cancel ended it.
  if (
    last !== undefined && last.end! < result.completedAtMs &&
    (result.errorCode === "Interrupted" || result.errorCode === "Cancelled")
  ) retryAfter(last, result.completedAtMs, undefined)
  return waits
}

/** The `errorCode`(s) the pool may record for an attempt, from the attempt's own exit and timing. */
const observedCodes = (
  report: Report,
  task: TaskRecord,
  attempt: AttemptRecord,
  deadline: number
): ReadonlyArray<string | undefined> => {
  const exit = attempt.exit!
  if (Exit.isSuccess(exit)) return [undefined]
  const reasons = exit.cause.reasons
  const fail = reasons.find(Cause.isFailReason)
  if (fail !== undefined) return [(fail.error as TaskError)._tag]
  if (reasons.some(Cause.isDieReason)) return ["Defect"]
  const timeoutMs = task.spec.timeoutMs
  // Interrupted: by its timeout, the limited close, or a cancel; at one instant, any of them.
  const codes: Array<string> = []
  if (timeoutMs !== null && attempt.end! - attempt.start === timeoutMs) codes.push("Timeout")
  if (report.scenario.close === "limited" && attempt.end === deadline) codes.push("Interrupted")
  if (cancelsOf(report, task).some((c) => c.at === attempt.end)) codes.push("Cancelled")
  return codes.length === 0 ? ["Interrupted"] : codes
}

const isRetryableCode = (codes: ReadonlyArray<string | undefined>) =>
  codes.some((code) => code !== undefined && retryableCodes.has(code))

/**
 * Every push ended: accepted, or a duplicate (the handle of the unfinished
 * task pushed with the same idempotency key), or refused with
 * `PoolClosedError` (only once the close started) or `PoolFullError` (after
 * exactly `maxBlockMs`), or interrupted (when asked). A push that failed, was
 * interrupted or was a duplicate left no trace: its task never ran and no
 * callback ran for it.
 */
export const checkPushes = (report: Report): void => {
  const { config } = report.scenario
  const close = closeOf(report)
  for (const task of report.tasks) {
    assert.isDefined(task.pushOutcome, `${task.name}: its push never returned`)
    const waited = task.pushEndedAt! - task.pushStartedAt!
    switch (task.pushOutcome) {
      case "other":
        assert.fail(`${task.name}: push failed with something unexpected: ${String(task.pushError)}`)
        break
      case "closed":
        assert.isAtLeast(task.pushEndedAt!, close.startedAt, `${task.name}: PoolClosedError before the close`)
        break
      case "full": {
        assert.notStrictEqual(config.maxBlockMs, -1, `${task.name}: PoolFullError though maxBlockMs is -1`)
        assert.strictEqual(waited, Math.max(0, config.maxBlockMs), `${task.name}: PoolFullError after ${waited} ms`)
        assert.strictEqual((task.pushError as PoolFullError).waitedMs, Math.max(0, config.maxBlockMs))
        break
      }
      case "interrupted":
        assert.strictEqual(waited, task.spec.push.interruptAfterMs, `${task.name}: push interrupted at the wrong time`)
        break
      case "duplicate": {
        const owner = task.owner!
        const key = idempotencyKeyOf(task)
        assert.isNotNull(key, `${task.name}: got the handle of ${owner.name} without an idempotency key`)
        assert.strictEqual(idempotencyKeyOf(owner), key, `${task.name}: got the handle of ${owner.name}, pushed with another idempotency key`)
        assert.strictEqual(owner.pushOutcome, "accepted")
        break
      }
      case "accepted":
        break
    }
    if (task.pushOutcome !== "accepted") {
      assert.strictEqual(task.attempts.length, 0, `${task.name}: push ${task.pushOutcome}, yet the task ran`)
      assert.strictEqual(task.callbacks.length, 0, `${task.name}: push ${task.pushOutcome}, yet a callback ran for it`)
    }
  }
  const accepted = acceptedOf(report)
  assert.strictEqual(report.finalStats.pushed, accepted.length, "stats.pushed is not the number of accepted pushes")
}

/**
 * Every accepted push ended exactly once: its handle's result completed, after
 * its one callback (the right one) had seen that very result. Its attempts
 * are as the spec and the config say: each attempt did what its spec says
 * within its timeout (unless a cancel or the limited close cut it off); at
 * most `maxRetryTimes + 1` (fewer if its retry schedule says so); retried only
 * after a retryable failure and never before its wait (the formula
 * `min(base * 2^(n-1), max)` after attempt n, the retry schedule's step, or
 * with jitter at least what the draw gave); the result keeps the newest
 * `maxReservedAttempts`, numbered consecutively, with the observed times and
 * codes; and it ended as its last attempt says, or "Interrupted" by a
 * limited close with retries left, or "Cancelled" at the instant of a cancel.
 */
export const checkEnds = (report: Report): void => {
  const { scenario } = report
  const { config } = scenario
  const { deadline } = closeOf(report)
  for (const task of acceptedOf(report)) {
    const where = describeTask(task)
    const maxAttempts = maxAttemptsOfTask(config, task)
    const cancelAts = cancelsOf(report, task).map((c) => c.at)
    assert.isDefined(task.handleResult, `${where}: its handle's result never completed`)
    const result = task.handleResult!.result
    assert.strictEqual(task.callbacks.length, 1, `${where}: its callback ran ${task.callbacks.length} times`)
    const callback = task.callbacks[0]!
    assert.strictEqual(callback.result, result, `${where}: the callback saw another result than the handle's`)
    assert.strictEqual(callback.which, result.successful ? "onSuccess" : "onFail", `${where}: the wrong callback ran`)
    assert.isDefined(callback.how, `${where}: its callback never finished`)
    if (callback.how === "interrupted") {
      // Only a limited close may cut a callback off, and only once its deadline has passed.
      assert.isAtLeast(callback.end!, deadline, `${where}: its callback was interrupted`)
    }
    assert.isAtLeast(task.handleResult!.at, callback.end!, `${where}: the handle completed before the callback ended`)
    assert.isAtLeast(callback.start, result.completedAtMs, `${where}: the callback ran before the task ended`)
    assert.strictEqual(result.taskId, task.handle!.taskId)
    assert.strictEqual(result.name, task.name)
    assert.strictEqual(result.createdAtMs, task.pushEndedAt, `${where}: createdAtMs is not the instant push returned`)

    const made = task.attempts
    for (const attempt of made) assert.isDefined(attempt.end, `${where}: attempt ${attempt.number} never ended`)
    assert.strictEqual(result.attemptCount, made.length, `${where}: attemptCount ${result.attemptCount}, ${made.length} made`)
    assert.isAtMost(result.attemptCount, maxAttempts, `${where}: more than ${maxAttempts} attempts (maxRetryTimes + 1, or its retry schedule's)`)
    const reserved = made.slice(-config.maxReservedAttempts)
    assert.deepStrictEqual(
      result.attempts.map((a) => [a.number, a.startedAtMs, a.endedAtMs, a.success]),
      reserved.map((a) => [a.number, a.start, a.end, Exit.isSuccess(a.exit!)]),
      `${where}: reserved attempts [number, startedAtMs, endedAtMs, success]`
    )
    result.attempts.forEach((attempt, i) => {
      const codes = observedCodes(report, task, reserved[i]!, deadline)
      assert.include(codes, attempt.errorCode, `${where}: attempt ${attempt.number} recorded as ${attempt.errorCode}`)
    })

    for (const attempt of made) {
      const timeoutMs = task.spec.timeoutMs
      const duration = durationOf(attempt.kind, attempt.ms, timeoutMs)
      const natural = naturalCode(attempt.kind)
      const codes = observedCodes(report, task, attempt, deadline)
      const took = attempt.end! - attempt.start
      // Cut off by the limited close or a cancel (an attempt that ends at that instant may have been either).
      const cut = (attempt.end === deadline || cancelAts.includes(attempt.end!)) && took <= duration
      if (cut) continue
      if (timeoutMs !== null && duration > timeoutMs) {
        assert.include(codes, "Timeout", `${where}: attempt ${attempt.number} should have timed out`)
        assert.strictEqual(took, timeoutMs, `${where}: attempt ${attempt.number} timed out after ${took} ms`)
      } else if (natural !== null && (timeoutMs === null || duration < timeoutMs)) {
        assert.include(codes, natural, `${where}: attempt ${attempt.number} should have ended ${natural ?? "successfully"}`)
        assert.strictEqual(took, duration, `${where}: attempt ${attempt.number} took ${took} ms`)
      }
    }

    for (let n = 1; n < made.length; n++) {
      const previous = made[n - 1]!
      const codes = observedCodes(report, task, previous, deadline)
      assert.isTrue(isRetryableCode(codes), `${where}: retried after attempt ${n} ended ${codes}`)
      const waited = made[n]!.start - previous.end!
      const wait = retryWait(report, task, n, previous.end!)
      assert.isAtLeast(waited, wait.min, `${where}: attempt ${n + 1} started ${waited} ms after attempt ${n}, wait at least ${wait.min}`)
    }

    const last = made.at(-1)
    const lastCodes = last === undefined ? [] : observedCodes(report, task, last, deadline)
    if (result.errorCode === "Interrupted" || result.errorCode === "Cancelled") {
      const cancelled = result.errorCode === "Cancelled"
      if (cancelled) {
        assert.include(cancelAts, result.completedAtMs, `${where}: ended Cancelled at ${result.completedAtMs}, not at a cancel (${cancelAts})`)
      } else {
        assert.strictEqual(scenario.close, "limited", `${where}: ended Interrupted in a safe close`)
      }
      assert.isFalse(result.successful)
      // A cancelled attempt that failed on its own as the cancel landed gives the task its exit.
      const cutAttempt = cancelled && last !== undefined && last.end === result.completedAtMs
      assert.isTrue(
        Exit.isFailure(result.exit) && (cutAttempt || Cause.hasInterrupts(result.exit.cause)),
        `${where}: exit of a ${result.errorCode} task`
      )
      if (last !== undefined && last.end! < result.completedAtMs) {
        // Waiting for a retry (or in the run queue) when it ended: its last failure was not final.
        assert.isTrue(isRetryableCode(lastCodes), `${where}: ${result.errorCode} after a final attempt`)
        assert.isBelow(made.length, maxAttempts, `${where}: ${result.errorCode} after its last allowed attempt`)
      }
      continue
    }
    assert.isDefined(last, `${where}: ended ${result.errorCode ?? "successfully"} without an attempt`)
    const exit = last!.exit!
    assert.strictEqual(result.completedAtMs, last!.end, `${where}: completedAtMs is not its last attempt's end`)
    if (Exit.isSuccess(exit)) {
      assert.isTrue(result.successful, `${where}: its last attempt succeeded, the task failed`)
      assert.isUndefined(result.errorCode)
      assert.isUndefined(result.errorMessage)
      assert.deepStrictEqual(result.exit, Exit.succeed(valueOf(task.name, last!.number)))
      continue
    }
    assert.isFalse(result.successful)
    assert.include(lastCodes, result.errorCode, `${where}: errorCode ${result.errorCode}`)
    // (A cancel landing as an attempt fails ends the task "Cancelled": a failure at a cancel's instant is final by itself.)
    const final = made.length === maxAttempts || result.errorCode === "Fatal" || result.errorCode === "Weird"
    assert.isTrue(final, `${where}: ended ${result.errorCode} after ${made.length} of ${maxAttempts} attempts`)
    assert.isTrue(Exit.isFailure(result.exit), `${where}: a failed task's exit`)
    if (Exit.isFailure(result.exit)) {
      const cause = result.exit.cause
      if (result.errorCode === "Timeout") {
        const defect = Cause.findDefect(cause)
        assert.isTrue(defect._tag === "Success" && defect.success instanceof TaskTimeoutError, `${where}: a timeout's exit`)
      } else if (result.errorCode === "Defect") {
        assert.isTrue(Cause.hasDies(cause), `${where}: a defect's exit`)
      } else {
        const error = Cause.findError(cause)
        assert.isTrue(error._tag === "Success" && (error.success as TaskError)._tag === result.errorCode, `${where}: a typed exit`)
      }
    }
  }
}

/**
 * Idempotency keys: while the task pushed with a key is unfinished (until it
 * settles), a push with that key returns its handle at once — not a new task,
 * not `PoolFullError` — unless the pool is closed; a duplicate gets the
 * unfinished task's very result; and two tasks with one key are never
 * unfinished at once. (Pushes at the instant the task settles may go either way.)
 */
export const checkIdempotency = (report: Report): void => {
  const accepted = acceptedOf(report)
  for (const push of report.tasks) {
    const key = idempotencyKeyOf(push)
    if (key === null || push.pushStartedAt === undefined) continue
    const at = push.pushStartedAt
    const holder = accepted.find((o) => o !== push && idempotencyKeyOf(o) === key && createdAtOf(o) < at && settledAtOf(o) > at)
    const where = `${describeTask(push)} (pushed at ${at}, ${push.pushOutcome})`
    if (holder !== undefined && push.pushOutcome !== "closed") {
      assert.strictEqual(push.pushOutcome, "duplicate", `${where}: ${holder.name} held idempotency key ${key}`)
      assert.strictEqual(push.owner, holder, `${where}: not the handle of ${holder.name}, which held idempotency key ${key}`)
      assert.strictEqual(push.pushEndedAt, at, `${where}: a duplicate push waited`)
    }
    if (push.pushOutcome === "duplicate") {
      const owner = push.owner!
      assert.isAtMost(createdAtOf(owner), push.pushEndedAt!, `${where}: got the handle of ${owner.name}, pushed later`)
      assert.isAtLeast(settledAtOf(owner), push.pushEndedAt!, `${where}: got the handle of ${owner.name}, settled before`)
      assert.strictEqual(push.handle!.taskId, owner.handle!.taskId)
      if (owner.handleResult !== undefined) {
        assert.strictEqual(push.handleResult?.result, owner.handleResult.result, `${where}: another result than ${owner.name}'s`)
      }
    }
  }
  for (const a of accepted) {
    for (const b of accepted) {
      if (a === b || idempotencyKeyOf(a) === null || idempotencyKeyOf(a) !== idempotencyKeyOf(b)) continue
      const [ca, cb] = [createdAtOf(a), createdAtOf(b)]
      // Accepted at one instant, in an unknown order: the first may have settled before the other's push.
      const overlap = ca < cb ? cb < settledAtOf(a) : ca === cb && ca < settledAtOf(a) && cb < settledAtOf(b)
      if (overlap) {
        assert.fail(
          `${b.name} was accepted at ${createdAtOf(b)} with idempotency key ${idempotencyKeyOf(b)}, held by ${a.name} ` +
            `(accepted at ${createdAtOf(a)}, settled at ${settledAtOf(a)})`
        )
      }
    }
  }
}

/**
 * Cancels: `cancel` returns at once, and by then its task has ended; a task
 * ends "Cancelled" only at the instant of a cancel of its handle, and starts
 * no attempt after it.
 */
export const checkCancels = (report: Report): void => {
  closeOf(report)
  for (const task of acceptedOf(report)) {
    const result = task.handleResult?.result
    const where = describeTask(task)
    for (const cancel of cancelsOf(report, task)) {
      assert.isDefined(cancel.returnedAt, `${where}: its cancel at ${cancel.at} never returned`)
      assert.strictEqual(cancel.returnedAt, cancel.at, `${where}: its cancel at ${cancel.at} returned at ${cancel.returnedAt}`)
      assert.isDefined(result, `${where}: cancelled at ${cancel.at}, never ended`)
      assert.isAtMost(result!.completedAtMs, cancel.returnedAt!, `${where}: cancel at ${cancel.at} returned before the task ended`)
    }
    if (result?.errorCode === "Cancelled") {
      for (const attempt of task.attempts) {
        assert.isAtMost(attempt.start, result.completedAtMs, `${where}: attempt ${attempt.number} started after the task was cancelled`)
      }
    }
  }
}

/**
 * Limits are never exceeded. An attempt starts only while the pool is not
 * paused and fewer attempts run than the worker limit then in force (after a
 * shrink, running attempts may finish above it); never more than the highest
 * limit run at once; at most `rateLimit.limit` attempts start in any window
 * of `intervalMs`; no task starts before its push + delay.
 */
export const checkLimits = (report: Report): void => {
  const timeline = timelineOf(report)
  for (const [task, attempt] of timeline.attempts) {
    const where = `${describeTask(task)}: attempt ${attempt.number} at ${attempt.start}`
    assert.isFalse(attempt.pausedAtStart, `${where} started in a paused pool (controls ${JSON.stringify(report.controls)})`)
    assert.isAtMost(
      attempt.runningAtStart,
      attempt.limitAtStart,
      `${where} started as attempt ${attempt.runningAtStart} running, the limit being ${attempt.limitAtStart}`
    )
  }
  assert.isAtMost(report.peakAttemptsRunning, timeline.maxLimitUpTo(Infinity), "attempts running at once")
  const rate = report.scheduling.rateLimit
  if (rate !== null) {
    const { starts } = timeline
    for (let i = 0; i + rate.limit < starts.length; i++) {
      assert.isAtLeast(
        starts[i + rate.limit]! - starts[i]!,
        rate.intervalMs,
        `${rate.limit + 1} attempts started in ${starts[i + rate.limit]! - starts[i]!} ms (${starts.slice(i, i + rate.limit + 1)}), ` +
          `rate limit ${rate.limit} per ${rate.intervalMs} ms`
      )
    }
  }
  for (const task of acceptedOf(report)) {
    const delay = delayOf(task)
    const first = task.attempts[0]
    if (delay !== null && first !== undefined) {
      assert.isAtLeast(first.start, createdAtOf(task) + delay, `${describeTask(task)}: started before its delay was over`)
    }
  }
}

/**
 * Key lanes: tasks of one key never overlap (from the first attempt's start
 * to settling, callback included), and they start in push order: a task that
 * ran (so held the key) and was pushed before another has settled before the
 * other starts. (A task cancelled while waiting for the key never held it.)
 */
export const checkKeys = (report: Report): void => {
  closeOf(report)
  const accepted = acceptedOf(report)
  for (const a of accepted) {
    for (const b of accepted) {
      const key = keyOf(a)
      if (a === b || key === null || key !== keyOf(b)) continue
      const startA = a.attempts[0]?.start
      const startB = b.attempts[0]?.start
      if (startA !== undefined && startB !== undefined && startA < settledAtOf(b) && startB < settledAtOf(a)) {
        assert.fail(
          `${a.name} (started ${startA}, settled ${settledAtOf(a)}) and ${b.name} (started ${startB}, settled ${settledAtOf(b)}) ` +
            `of key ${key} overlap`
        )
      }
      if (createdAtOf(a) < createdAtOf(b) && startA !== undefined && startB !== undefined) {
        assert.isAtLeast(
          startB,
          settledAtOf(a),
          `${b.name} of key ${key} (pushed ${createdAtOf(b)}) started at ${startB}, before ${a.name} (pushed ${createdAtOf(a)}) settled`
        )
      }
    }
  }
}

/**
 * Never more than the worker limit attempts at once, and a waiting task holds
 * no worker: whenever an accepted task is ready to run (its linger or delay
 * is over, its key is free, its backoff has passed) and has not started,
 * the pool is paused, or every worker under the limit then in force is busy
 * with an attempt, or the rate limit's window is full. Checked once
 * everything at an instant has happened: the instant it became ready at the
 * latest, and every instant a worker frees up, a control is made, the close
 * starts or the rate window moves while it waits, up to a limited close's
 * deadline.
 */
export const checkWorkers = (report: Report): void => {
  const timeline = timelineOf(report)
  const { deadline } = timeline
  assert.isAtMost(report.peakAttemptsRunning, timeline.maxLimitUpTo(Infinity), "attempts running at once")
  const busy: Array<readonly [number, number, string]> = []
  for (const task of report.tasks) {
    for (const a of task.attempts) busy.push([a.start, a.end ?? Infinity, `${task.name} attempt ${a.number}`])
    if (callbacksHoldAWorker) {
      for (const c of task.callbacks) busy.push([c.start, c.end ?? Infinity, `${task.name} ${c.which}`])
    }
  }
  const rate = report.scheduling.rateLimit
  const events = [
    ...busy.map(([, end]) => end),
    ...report.controls.map((c) => c.at),
    timeline.startedAt,
    ...(rate === null ? [] : timeline.starts.map((s) => s + rate.intervalMs))
  ]
  for (const task of acceptedOf(report)) {
    for (const { hi, until, what } of waitsOf(report, timeline, task)) {
      const instants = [hi, ...events.filter((t) => t > hi && t < until)]
      for (const t of instants) {
        if (t >= until || t >= deadline) continue
        if (timeline.pausedAfter(t) || timeline.rateFullAt(t)) continue
        const limit = timeline.limitAfter(t)
        const occupied = busy.filter(([start, end]) => start <= t && t < end)
        assert.isAtLeast(
          occupied.length,
          limit,
          `${task.name} waited for ${what} at ${t} (ready at ${hi}, started at ${until}) while only ` +
            `${occupied.length} of ${limit} workers were busy: ${occupied.map(([, , w]) => w).join(", ")}` +
            (report.controls.length > 0 ? ` (controls ${JSON.stringify(report.controls)})` : "")
        )
      }
    }
  }
}

/**
 * Priority, then readiness: while a task waits ready to start, no task of
 * lower priority starts, nor one of equal priority that became ready after
 * it. Checked only where the order is certain: the waiting task was ready
 * strictly before the other started (and, for equal priorities, strictly
 * before the other became ready).
 */
export const checkPriority = (report: Report): void => {
  const timeline = timelineOf(report)
  const waits = acceptedOf(report).flatMap((task) => waitsOf(report, timeline, task))
  for (const started of waits) {
    const attempt = started.attempt
    if (attempt === undefined || attempt.start >= timeline.deadline) continue
    const s = attempt.start
    for (const waiting of waits) {
      if (waiting.task === started.task || !(waiting.hi < s && s < waiting.until)) continue
      const [pw, ps] = [priorityOf(waiting.task), priorityOf(started.task)]
      const order = `${started.task.name} (priority ${ps}) started ${started.what} at ${s} (ready from [${started.lo}, ${started.hi}]) ` +
        `while ${waiting.task.name} (priority ${pw}) waited ready for ${waiting.what} since ${waiting.hi} until ${waiting.until}`
      assert.isFalse(pw > ps, `${order}: a lower priority went first`)
      assert.isFalse(pw === ps && waiting.hi < started.lo, `${order}: it became ready later, yet went first`)
    }
  }
}

/**
 * The unfinished tasks as the stats count them: lingering, queued, running
 * (an attempt or a callback) and retrying.
 */
export const unfinishedOf = (stats: TaskPoolStats): number =>
  stats.lingering + stats.queued + stats.running + stats.retrying

/**
 * Stats conserve at every sampled instant — pushed = succeeded + failed +
 * unfinished — stay within the config's bounds (attempts running within the
 * highest worker limit so far; the linger batch below the limit in force,
 * tasks waiting out a delay aside), show the pause and the limit the
 * controls set, and at the end match what was observed.
 */
export const checkStats = (report: Report): void => {
  const { config } = report.scenario
  const timeline = timelineOf(report)
  const { deadline, startedAt } = timeline
  const accepted = acceptedOf(report)
  const controlAts = new Set(report.controls.map((c) => c.at))
  for (const { at, attemptsRunning, callbacksRunning, stats } of report.samples) {
    const where = `stats at ${at}: ${JSON.stringify(stats)} (attempts running: ${attemptsRunning}, callbacks running: ${callbacksRunning})`
    assert.strictEqual(stats.pushed, stats.succeeded + stats.failed + unfinishedOf(stats), `${where}: pushed != succeeded + failed + unfinished`)
    assert.isAtMost(unfinishedOf(stats), config.maxTaskNum, `${where}: more than maxTaskNum unfinished`)
    if (at < deadline) {
      const limit = timeline.maxLimitUpTo(at)
      assert.isAtMost(stats.running - callbacksRunning, limit, `${where}: more than the worker limit (${limit}) attempts running`)
    }
    // Tasks that may be waiting out a delay count as lingering too.
    const delayed = accepted.filter((t) => {
      const delay = delayOf(t)
      return delay !== null && createdAtOf(t) <= at && at <= createdAtOf(t) + delay &&
        (t.handleResult?.result.completedAtMs ?? Infinity) >= at
    }).length
    assert.isBelow(stats.lingering - delayed, stats.maxIoWorkerNum, `${where}: a full batch must be queued at once`)
    assert.isAtMost(stats.droppedFailures, stats.failed, where)
    if (!controlAts.has(at) && at !== startedAt) {
      assert.strictEqual(stats.paused, timeline.pausedAfter(at), `${where}: paused (controls ${JSON.stringify(report.controls)})`)
      assert.strictEqual(stats.maxIoWorkerNum, timeline.limitAfter(at), `${where}: maxIoWorkerNum`)
    }
  }
  const results = accepted.map((t) => t.handleResult?.result)
  const stats = report.finalStats
  assert.deepStrictEqual(
    [stats.pushed, stats.succeeded, stats.failed, unfinishedOf(stats)],
    [results.length, results.filter((r) => r?.successful === true).length, results.filter((r) => r?.successful === false).length, 0],
    `final stats ${JSON.stringify(stats)}: [pushed, succeeded, failed, unfinished]`
  )
}

/**
 * Whether a task's callback runs on the worker that ran its last attempt (so
 * the worker is busy until it returns). The pool runs callbacks in fibers of
 * their own, holding no worker; set this to true if that ever changes back.
 */
const callbacksHoldAWorker = false

/**
 * The failure queue accounts for every failure: read + dropped + unread =
 * failed; it gives only failed results of accepted pushes, each at most once;
 * it holds at most `maxFailedTasks` unread (none with 0).
 */
export const checkFailureQueue = (report: Report): void => {
  const { config } = report.scenario
  closeOf(report)
  const stats = report.finalStats
  const read = report.reads.flat()
  const unread = report.unread!
  assert.strictEqual(
    read.length + stats.droppedFailures + unread.length,
    stats.failed,
    `failure queue: ${read.length} read + ${stats.droppedFailures} dropped + ${unread.length} unread != ${stats.failed} failed`
  )
  const failed = new Set(acceptedOf(report).map((t) => t.handleResult?.result).filter((r) => r?.successful === false))
  const seen = new Set<TaskResult<unknown, unknown>>()
  for (const entry of [...read, ...unread]) {
    assert.isTrue(failed.has(entry), `the failure queue gave ${entry.name}, not a failed result of an accepted push`)
    assert.isFalse(seen.has(entry), `the failure queue gave ${entry.name} twice`)
    seen.add(entry)
  }
  assert.isAtMost(unread.length, config.maxFailedTasks, "more than maxFailedTasks unread failures")
}

/**
 * After a safe close nothing is unfinished, and the close returned as the last
 * task settled. After a limited close every task ended by its deadline: those
 * still unfinished then ended "Interrupted" at the deadline itself; the close
 * returned once their callbacks had run.
 */
export const checkClose = (report: Report): void => {
  const { scenario } = report
  const { closedAt, deadline, startedAt } = closeOf(report)
  const accepted = acceptedOf(report)
  for (const task of accepted) assert.isDefined(task.handleResult, `${describeTask(task)}: unfinished after the close`)
  assert.strictEqual(unfinishedOf(report.finalStats), 0, `unfinished after the close: ${JSON.stringify(report.finalStats)}`)
  for (const task of accepted) {
    const result = task.handleResult!.result
    const where = describeTask(task)
    if (scenario.close === "safe") {
      assert.notStrictEqual(result.errorCode, "Interrupted", `${where}: interrupted by a safe close`)
    } else if (result.errorCode === "Interrupted") {
      assert.strictEqual(result.completedAtMs, deadline, `${where}: interrupted at ${result.completedAtMs}, not at the deadline ${deadline}`)
    } else {
      assert.isAtMost(result.completedAtMs, deadline, `${where}: ended at ${result.completedAtMs}, after the deadline ${deadline}`)
    }
  }
  // Either close returns as the last task settles (its callback run): not before, and not later.
  const lastSettled = Math.max(startedAt, ...accepted.map((t) => t.handleResult!.at))
  assert.strictEqual(closedAt, lastSettled, `the ${scenario.close} close did not return as the last task settled`)
}

/** Counts what the scenarios exercised (printed under `npm run fuzz`). */
export const coverage: Record<string, number> = {}

/** Under `npm run fuzz`, prints what the suite's scenarios exercised once the file is done. */
export const reportCoverage = (suite: string): void =>
  afterAll(() => {
    if (fuzzing) console.log(`[${suite}] what the scenarios exercised:\n${JSON.stringify(coverage, null, 2)}`)
  })
const count = (key: string) => void (coverage[key] = (coverage[key] ?? 0) + 1)
const tally = (report: Report) => {
  count(`close: ${report.scenario.close}`)
  for (const task of report.tasks) {
    count(`push: ${task.pushOutcome}`)
    if (task.pushOutcome === "accepted" && task.pushEndedAt! > task.pushStartedAt!) count("push: accepted after waiting for room")
    const result = task.handleResult?.result
    if (result !== undefined) count(`end: ${result.errorCode ?? "succeeded"}`)
    if (result !== undefined && result.attemptCount > 1) count("end: after retries")
  }
  if (report.reads.flat().length > 0) count("failure queue: read")
  if (report.finalStats.droppedFailures > 0) count("failure queue: dropped")
  if (!("controls" in report.scenario)) return
  const { deadline } = closeOf(report)
  for (const task of acceptedOf(report)) {
    const { options, retrySchedule } = task.scheduling
    const result = task.handleResult?.result
    if (options?.key != null && acceptedOf(report).some((o) => o !== task && keyOf(o) === options.key && createdAtOf(o) < createdAtOf(task) && settledAtOf(o) > createdAtOf(task))) {
      count("key: waited behind its key")
    }
    if (options?.delayMs != null) count("delay: given")
    if (options?.priority != null && options.priority !== 0) count("priority: not 0")
    if (retrySchedule !== null && (result?.attemptCount ?? 0) > 1) count("retry schedule: retried")
    if (result?.errorCode === "Cancelled") {
      const last = task.attempts.at(-1)
      count(last !== undefined && last.end === result.completedAtMs ? "cancel: a running attempt" : "cancel: a waiting task")
    }
    if (cancelsOf(report, task).some((c) => c.at > (result?.completedAtMs ?? Infinity))) count("cancel: an ended task")
  }
  for (const control of report.controls) {
    count(`control: ${typeof control.action === "number" ? "resize" : control.action}${control.at >= (report.closeStartedAt ?? Infinity) ? " after the close began" : ""}`)
  }
  if (report.tasks.some((t) => t.attempts.some((a) => a.runningAtStart === a.limitAtStart && a.limitAtStart < report.scenario.config.maxIoWorkerNum))) {
    count("resize: started at a shrunk limit")
  }
  if (report.scheduling.rateLimit !== null) {
    const timeline = timelineOf(report)
    if (timeline.starts.some((s) => s < deadline && timeline.rateFullAt(s))) count("rate limit: window filled")
  }
  if (report.draws.length > 0) count("jitter: drawn")
}

/** Runs the scenario and applies `check` to what happened: a property's body. */
export const checkScenario = (check: (report: Report) => void) => (scenario: AnyScenario): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.flatMap(runScenario(scenario), (report) =>
    Effect.sync(() => {
      if (fuzzing) tally(report)
      check(report)
    }))
