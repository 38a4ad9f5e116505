/**
 * The larger demo: a few thousand tasks that take a few tens of milliseconds
 * each and fail at random (some transiently, some for good, some by running
 * past their timeout), with live progress and a summary at the end.
 *
 * The failures are drawn up front from a seeded PRNG, one plan per task, so a
 * seed always gives the same outcomes whatever order the workers run in.
 *
 * @since 0.1.0
 */
import { Task, TaskPool } from "@taskpool/core"
import { Clock, Effect, Random, Ref, Schema } from "effect"
import { defaultRenderer, withProgress } from "./progress.js"
import type { ProgressRenderer } from "./progress.js"
import { formatSummary, summarize } from "./summary.js"

/**
 * An attempt that failed but may succeed if tried again.
 *
 * @since 0.1.0
 */
export class TransientError extends Schema.TaggedError<TransientError>()("TransientError", {
  message: Schema.String
}) {}

/**
 * An attempt that failed for good: retrying cannot help.
 *
 * @since 0.1.0
 */
export class PermanentError extends Schema.TaggedError<PermanentError>()("PermanentError", {
  message: Schema.String
}) {}

/** How one attempt of a demo task goes. */
interface AttemptPlan {
  readonly kind: "ok" | "transient" | "permanent" | "slow"
  readonly durationMs: number
}

/** The pool the demo runs in: at most four attempts per task, each cut off after `timeoutMs`. */
const poolConfig = {
  maxIoWorkerNum: 64,
  lingerMs: 100,
  maxRetryTimes: 3,
  baseRetryBackOffMs: 50,
  maxRetryBackOffMs: 400,
  maxTaskNum: 500
} as const

const timeoutMs = 250

/** Draws one attempt's plan: mostly fine, 20% transient failures, 2% too slow, 1.5% permanent failures. */
const drawAttempt = Effect.gen(function*() {
  const roll = yield* Random.next
  const durationMs = yield* Random.nextIntBetween(10, 80)
  if (roll < 0.015) return { kind: "permanent", durationMs } as const
  if (roll < 0.035) return { kind: "slow", durationMs: timeoutMs * 4 } as const
  if (roll < 0.235) return { kind: "transient", durationMs } as const
  return { kind: "ok", durationMs } as const
})

/** A demo task: its `n`th attempt goes as the `n`th entry of `plan` says. */
const demoTask = (name: string, plan: ReadonlyArray<AttemptPlan>) =>
  Effect.map(Ref.make(0), (attempt) =>
    Task.make({
      name,
      execute: Effect.gen(function*() {
        const n = yield* Ref.getAndUpdate(attempt, (n) => n + 1)
        const step = plan[n] ?? { kind: "ok", durationMs: 0 }
        yield* Effect.sleep(step.durationMs)
        if (step.kind === "transient") return yield* new TransientError({ message: `${name}: try again` })
        if (step.kind === "permanent") return yield* new PermanentError({ message: `${name}: rejected` })
      }),
      retryable: (error) => error._tag === "TransientError",
      timeout: timeoutMs
    }))

/**
 * What `demo` accepts.
 *
 * @since 0.1.0
 */
export interface DemoOptions {
  /** How many tasks to push. Default: 3000. */
  readonly tasks?: number
  /** Seeds the PRNG that decides every attempt. Default: `"taskpool"`. */
  readonly seed?: string
  /** Where live progress goes. Default: `defaultRenderer()`. */
  readonly renderer?: ProgressRenderer
  /** Where the headline and summary lines go. Default: `console.log`. */
  readonly log?: (line: string) => void
}

/**
 * Pushes the demo tasks into a pool, shows live progress until every one has
 * ended, closes the pool and prints the summary, which it returns.
 *
 * @since 0.1.0
 */
export const demo = Effect.fn("demo.run")(function*(options: DemoOptions = {}) {
  const count = options.tasks ?? 3000
  const seed = options.seed ?? "taskpool"
  const log = options.log ?? console.log
  const plans = yield* Effect.forEach(
    Array.from({ length: count }),
    () => Effect.forEach(Array.from({ length: poolConfig.maxRetryTimes + 1 }), () => drawAttempt)
  ).pipe(Random.withSeed(seed))
  log(`demo: ${count} tasks with random failures (seed "${seed}"), ${poolConfig.maxIoWorkerNum} workers`)
  const startedAtMs = yield* Clock.currentTimeMillis
  const results = yield* Effect.gen(function*() {
    const handles = yield* Effect.forEach(
      plans,
      (plan, i) => Effect.flatMap(demoTask(`task-${String(i).padStart(4, "0")}`, plan), TaskPool.push)
    )
    yield* TaskPool.awaitIdle
    return yield* Effect.forEach(handles, (handle) => handle.result)
  }).pipe(
    withProgress({ renderer: options.renderer ?? defaultRenderer(), total: count }),
    Effect.provide(TaskPool.layer(poolConfig))
  )
  const summary = summarize(results, (yield* Clock.currentTimeMillis) - startedAtMs)
  for (const line of formatSummary(summary)) log(line)
  return summary
})
