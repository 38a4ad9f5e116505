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
 */
import { assert } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Schema, Stream } from "effect"
import type { Clock, Scope } from "effect"
import { TestClock } from "effect/testing"
import { PoolClosedError, PoolFullError, Task, TaskTimeoutError } from "../src/index.js"
import type { TaskHandle, TaskPoolConfigInput, TaskPoolStats, TaskResult } from "../src/index.js"
import { openPool } from "./utils.js"

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
export type TaskSpec = Scenario["tasks"][number]
export type ConfigSpec = typeof ConfigSpec.Type

export const configOf = (scenario: Scenario): TaskPoolConfigInput => ({
  ...scenario.config,
  ...(scenario.close === "limited" ? { shutdownTimeoutMs: scenario.shutdownTimeoutMs } : {})
})

// ── the tasks' behaviour ───────────────────────────────────────────────────

export class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { message: Schema.String }) {}
export class Fatal extends Schema.TaggedError<Fatal>()("Fatal", { message: Schema.String }) {}
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
}

export interface CallbackRecord {
  readonly which: "onSuccess" | "onFail"
  readonly result: TaskResult<unknown, unknown>
  readonly start: number
  end: number | undefined
  how: "returned" | "failed" | "died" | "threw" | "interrupted" | undefined
}

export type PushOutcome = "accepted" | "closed" | "full" | "interrupted" | "other"

export interface TaskRecord {
  readonly index: number
  readonly name: string
  readonly spec: TaskSpec
  pushStartedAt: number | undefined
  pushEndedAt: number | undefined
  pushOutcome: PushOutcome | undefined
  pushError: unknown
  handle: TaskHandle<unknown, unknown> | undefined
  readonly attempts: Array<AttemptRecord>
  readonly callbacks: Array<CallbackRecord>
  /** The handle's `result`, once it completed, and when. */
  handleResult: { readonly result: TaskResult<unknown, unknown>; readonly at: number } | undefined
}

export interface StatsSample {
  readonly at: number
  readonly stats: TaskPoolStats
  readonly attemptsRunning: number
  readonly callbacksRunning: number
}

export interface Report {
  readonly scenario: Scenario
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
}

/**
 * Long enough for any scenario: at most 16 tasks × 5 attempts × (~1.4 s
 * attempt + 1.5 s backoff) + callbacks on one worker, after a close at 5 s.
 */
export const horizonMs = 1_000_000

// ── running a scenario ─────────────────────────────────────────────────────

/**
 * Plays the scenario on a fresh pool under the `TestClock` (it must be
 * provided, as `it.effect` does) and returns what happened. Never hangs: a
 * close that does not return within `horizonMs` is reported as not returned.
 */
export const runScenario = (scenario: Scenario): Effect.Effect<Report, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clockWith((clock: Clock.Clock) => Effect.succeed(clock))
    const now = () => clock.currentTimeMillisUnsafe()
    const { close, pool } = yield* openPool(configOf(scenario))
    const tasks: Array<TaskRecord> = scenario.tasks.map((spec, index) => ({
      index,
      name: `t${index}`,
      spec,
      pushStartedAt: undefined,
      pushEndedAt: undefined,
      pushOutcome: undefined,
      pushError: undefined,
      handle: undefined,
      attempts: [],
      callbacks: [],
      handleResult: undefined
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
        const record: AttemptRecord = { number, kind, ms, start: now(), end: undefined, exit: undefined }
        task.attempts.push(record)
        peakAttemptsRunning = Math.max(peakAttemptsRunning, ++attemptsRunning)
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
        ...(task.spec.timeoutMs === null ? {} : { timeout: task.spec.timeoutMs })
      })

    const pushOne = (task: TaskRecord) =>
      Effect.gen(function*() {
        yield* Effect.sleep(task.spec.push.gapMs)
        task.pushStartedAt = now()
        const fiber = yield* Effect.forkChild(pool.push(taskOf(task)), { startImmediately: true })
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
    let unread: Array<TaskResult<unknown, unknown>> | undefined
    if (closedAt !== undefined) {
      for (const reader of readers) yield* Fiber.await(reader)
      unread = [...(yield* Stream.runCollect(pool.failures))]
    } else {
      for (const reader of readers) yield* Fiber.interrupt(reader)
    }
    return {
      scenario,
      tasks,
      closeStartedAt,
      closedAt,
      peakAttemptsRunning,
      samples,
      reads,
      unread,
      finalStats: yield* pool.stats
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
        `${unfinished.map((t) => t.name).join(", ") || "none"}; stats ${JSON.stringify(report.finalStats)}`
    )
  }
  /** After the deadline of a limited close, whatever is left ends "Interrupted". */
  const deadline = scenario.close === "limited" ? startedAt + scenario.shutdownTimeoutMs : Infinity
  return { startedAt, closedAt: report.closedAt!, deadline }
}

const acceptedOf = (report: Report) => report.tasks.filter((t) => t.pushOutcome === "accepted")

const describeTask = (task: TaskRecord) => `${task.name} ${JSON.stringify(task.spec)}`

/** The `errorCode`(s) the pool may record for an attempt, from the attempt's own exit and timing. */
const observedCodes = (scenario: Scenario, task: TaskRecord, attempt: AttemptRecord, deadline: number): ReadonlyArray<string | undefined> => {
  const exit = attempt.exit!
  if (Exit.isSuccess(exit)) return [undefined]
  const reasons = exit.cause.reasons
  const fail = reasons.find(Cause.isFailReason)
  if (fail !== undefined) return [(fail.error as TaskError)._tag]
  if (reasons.some(Cause.isDieReason)) return ["Defect"]
  const timeoutMs = task.spec.timeoutMs
  const timedOut = timeoutMs !== null && attempt.end! - attempt.start === timeoutMs
  const cutByClose = scenario.close === "limited" && attempt.end === deadline
  // An attempt that hit its timeout at the very instant the limited close cut it off may be either.
  return timedOut && cutByClose ? ["Timeout", "Interrupted"] : timedOut ? ["Timeout"] : ["Interrupted"]
}

const isRetryableCode = (codes: ReadonlyArray<string | undefined>) =>
  codes.some((code) => code !== undefined && retryableCodes.has(code))

/**
 * Every push ended: accepted, or refused with `PoolClosedError` (only once the
 * close started) or `PoolFullError` (after exactly `maxBlockMs`), or
 * interrupted (when asked). A push that failed or was interrupted left no
 * trace: its task never ran and no callback ran for it.
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
 * within its timeout; at most `maxRetryTimes + 1`; retried only after a
 * retryable failure and never before `min(base * 2^(n-1), max)` after attempt
 * n ended; the result keeps the newest `maxReservedAttempts`, numbered
 * consecutively, with the observed times and codes; and it ended as its last
 * attempt says (or "Interrupted" by a limited close, with retries left).
 */
export const checkEnds = (report: Report): void => {
  const { scenario } = report
  const { config } = scenario
  const { deadline } = closeOf(report)
  const maxAttempts = maxAttemptsOf(config)
  for (const task of acceptedOf(report)) {
    const where = describeTask(task)
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
    assert.isAtMost(result.attemptCount, maxAttempts, `${where}: more than maxRetryTimes + 1 attempts`)
    const reserved = made.slice(-config.maxReservedAttempts)
    assert.deepStrictEqual(
      result.attempts.map((a) => [a.number, a.startedAtMs, a.endedAtMs, a.success]),
      reserved.map((a) => [a.number, a.start, a.end, Exit.isSuccess(a.exit!)]),
      `${where}: reserved attempts [number, startedAtMs, endedAtMs, success]`
    )
    result.attempts.forEach((attempt, i) => {
      const codes = observedCodes(scenario, task, reserved[i]!, deadline)
      assert.include(codes, attempt.errorCode, `${where}: attempt ${attempt.number} recorded as ${attempt.errorCode}`)
    })

    for (const attempt of made) {
      const timeoutMs = task.spec.timeoutMs
      const duration = durationOf(attempt.kind, attempt.ms, timeoutMs)
      const natural = naturalCode(attempt.kind)
      const codes = observedCodes(scenario, task, attempt, deadline)
      const took = attempt.end! - attempt.start
      // Cut off by the limited close (an attempt that ends at the deadline may have been either).
      const cut = attempt.end === deadline && took <= duration
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
      const codes = observedCodes(scenario, task, previous, deadline)
      assert.isTrue(isRetryableCode(codes), `${where}: retried after attempt ${n} ended ${codes}`)
      const waited = made[n]!.start - previous.end!
      const backoff = backoffAfter(config, n)
      assert.isAtLeast(waited, backoff, `${where}: attempt ${n + 1} started ${waited} ms after attempt ${n}, backoff ${backoff}`)
    }

    const last = made.at(-1)
    const lastCodes = last === undefined ? [] : observedCodes(scenario, task, last, deadline)
    if (result.errorCode === "Interrupted") {
      assert.strictEqual(scenario.close, "limited", `${where}: ended Interrupted in a safe close`)
      assert.isFalse(result.successful)
      assert.isTrue(Exit.isFailure(result.exit) && Cause.hasInterrupts(result.exit.cause), `${where}: exit of an interrupted task`)
      if (last !== undefined && last.end! < deadline) {
        // Waiting for a retry (or in the run queue) when the deadline came: its last failure was not final.
        assert.isTrue(isRetryableCode(lastCodes), `${where}: interrupted after a final attempt`)
        assert.isBelow(made.length, maxAttempts, `${where}: interrupted after its last allowed attempt`)
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
 * The unfinished tasks as the stats count them: lingering, queued, running
 * (an attempt or a callback) and retrying.
 */
export const unfinishedOf = (stats: TaskPoolStats): number =>
  stats.lingering + stats.queued + stats.running + stats.retrying

/**
 * Stats conserve at every sampled instant — pushed = succeeded + failed +
 * unfinished — stay within the config's bounds, and at the end match what
 * was observed.
 */
export const checkStats = (report: Report): void => {
  const { config } = report.scenario
  const { deadline } = closeOf(report)
  for (const { at, attemptsRunning, callbacksRunning, stats } of report.samples) {
    const where = `stats at ${at}: ${JSON.stringify(stats)} (attempts running: ${attemptsRunning}, callbacks running: ${callbacksRunning})`
    assert.strictEqual(stats.pushed, stats.succeeded + stats.failed + unfinishedOf(stats), `${where}: pushed != succeeded + failed + unfinished`)
    assert.isAtMost(unfinishedOf(stats), config.maxTaskNum, `${where}: more than maxTaskNum unfinished`)
    if (at < deadline) {
      assert.isAtMost(stats.running - callbacksRunning, config.maxIoWorkerNum, `${where}: more than maxIoWorkerNum attempts running`)
    }
    assert.isBelow(stats.lingering, config.maxIoWorkerNum, `${where}: a full batch must be queued at once`)
    assert.isAtMost(stats.droppedFailures, stats.failed, where)
  }
  const results = acceptedOf(report).map((t) => t.handleResult?.result)
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
 * Never more than `maxIoWorkerNum` attempts at once, and a waiting task holds
 * no worker: whenever an accepted task is ready to run (its linger is over,
 * or its backoff) and has not started, every worker is busy with an attempt.
 * Checked at the instant it becomes ready and at every instant a worker frees
 * up while it waits, up to a limited close's deadline.
 */
export const checkWorkers = (report: Report): void => {
  const { config } = report.scenario
  const { deadline, startedAt: closeStartedAt } = closeOf(report)
  assert.isAtMost(report.peakAttemptsRunning, config.maxIoWorkerNum, "attempts running at once")
  const busy: Array<readonly [number, number, string]> = []
  for (const task of report.tasks) {
    for (const a of task.attempts) busy.push([a.start, a.end ?? Infinity, `${task.name} attempt ${a.number}`])
    if (callbacksHoldAWorker) {
      for (const c of task.callbacks) busy.push([c.start, c.end ?? Infinity, `${task.name} ${c.which}`])
    }
  }
  const busyAt = (t: number) => busy.filter(([start, end]) => start <= t && t < end)
  for (const task of acceptedOf(report)) {
    if (task.handleResult === undefined) continue
    const result = task.handleResult.result
    const waits: Array<readonly [number, number, string]> = []
    // The batch's first task pushed at or before this one, so its linger ends by createdAtMs + lingerMs.
    const firstReady = Math.min(result.createdAtMs + config.lingerMs, closeStartedAt)
    waits.push([firstReady, task.attempts[0]?.start ?? result.completedAtMs, "attempt 1"])
    task.attempts.slice(0, -1).forEach((a, i) =>
      waits.push([a.end! + backoffAfter(config, a.number), task.attempts[i + 1]!.start, `attempt ${a.number + 1}`])
    )
    const last = task.attempts.at(-1)
    if (last !== undefined && result.errorCode === "Interrupted" && last.end! < deadline) {
      waits.push([last.end! + backoffAfter(config, last.number), result.completedAtMs, `attempt ${last.number + 1}`])
    }
    for (const [ready, started, what] of waits) {
      const instants = [ready, ...busy.map(([, end]) => end).filter((end) => end > ready && end < started)]
      for (const t of instants) {
        if (t >= started || t >= deadline) continue
        const occupied = busyAt(t)
        assert.isAtLeast(
          occupied.length,
          config.maxIoWorkerNum,
          `${task.name} waited for ${what} at ${t} (ready at ${ready}, started at ${started}) while only ` +
            `${occupied.length} of ${config.maxIoWorkerNum} workers were busy: ${occupied.map(([, , w]) => w).join(", ")}`
        )
      }
    }
  }
}

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
}

/** Runs the scenario and applies `check` to what happened: a property's body. */
export const checkScenario = (check: (report: Report) => void) => (scenario: Scenario): Effect.Effect<void, unknown, Scope.Scope> =>
  Effect.flatMap(runScenario(scenario), (report) =>
    Effect.sync(() => {
      if (fuzzing) tally(report)
      check(report)
    }))
