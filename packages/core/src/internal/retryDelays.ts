/**
 * The retry backoff as a table of delays, computed once per pool from a
 * `Schedule` so the hot path only indexes an array.
 */
import { Duration, Effect, Schedule } from "effect"

/** The backoff formula as a `Schedule`: its `n`-th delay is `min(baseMs * 2^(n-1), maxMs)`. */
export const backoffFormula = (baseMs: number, maxMs: number) =>
  Schedule.min([Schedule.exponential(Duration.millis(baseMs)), Schedule.spaced(Duration.millis(maxMs))])

/**
 * `delays[n - 1]` is the wait after failed attempt `n`:
 * `min(base * 2^(n-1), max)`. The table stops where the delay stops changing
 * (the cap, or a base of 0); later attempts reuse its last entry. Empty when
 * `maxRetryTimes <= 0`.
 */
export const retryDelays = (options: {
  readonly baseMs: number
  readonly maxMs: number
  readonly maxRetryTimes: number
}): Effect.Effect<ReadonlyArray<number>> =>
  Effect.gen(function*() {
    const delays: Array<number> = []
    if (options.maxRetryTimes <= 0) return delays
    const schedule = Schedule.max([backoffFormula(options.baseMs, options.maxMs), Schedule.recurs(options.maxRetryTimes)])
    const step = yield* Schedule.toStep(schedule)
    while (delays.length < options.maxRetryTimes) {
      const next = yield* Effect.result(step(0, undefined))
      if (next._tag === "Failure") break
      const delay = Duration.toMillis(next.success[1])
      if (delays.length > 0 && delay === delays[delays.length - 1]) break
      delays.push(delay)
    }
    return delays
  })

/** The wait after failed attempt `attempt` (1-based). */
export const delayAfter = (delays: ReadonlyArray<number>, attempt: number): number =>
  delays[Math.min(attempt, delays.length) - 1] ?? 0
