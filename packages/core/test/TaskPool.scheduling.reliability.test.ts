/**
 * Reliability with the scheduling controls: the random scenarios of
 * TaskPool.reliability.test.ts (see scenario.ts), plus per-task priority,
 * delay, key lanes (from a small set, so they collide), idempotency keys
 * (from a small set, so duplicates happen), cancels of random handles at
 * random instants and custom retry schedules; per scenario pause / resume /
 * resize at random instants (before or during the close), a rate limit and
 * retry jitter (seeded, or drawing 0 or just under 1). The same invariants
 * hold — every accepted push ends exactly once, nothing is lost, limits are
 * never exceeded — and the controls do what they say. Each property checks
 * a few families of invariants on its own scenarios.
 *
 * CI runs `ciRuns` scenarios per property; `npm run fuzz` sets
 * TASKPOOL_FUZZ_RUNS (10,000) and prints the seed; replay a run with
 * TASKPOOL_FUZZ_SEED=<seed>.
 */
import { describe, it } from "@effect/vitest"
import {
  announce,
  checkCancels,
  checkClose,
  checkEnds,
  checkFailureQueue,
  checkIdempotency,
  checkKeys,
  checkLimits,
  checkPriority,
  checkPushes,
  checkScenario,
  checkStats,
  checkWorkers,
  propOptions,
  reportCoverage,
  SchedulingScenario
} from "./scenario.js"

const ciRuns = 200
/** The Arbitrary size: up to 16 tasks per scenario. */
const size = 48
announce("TaskPool.scheduling.reliability", ciRuns)
reportCoverage("TaskPool.scheduling.reliability")

describe("TaskPool reliability with scheduling controls (random scenarios)", () => {
  it.effect.prop(
    "every accepted push ends exactly once, cancels included; a duplicate push gets the unfinished task's handle",
    { scenario: SchedulingScenario },
    ({ scenario }) =>
      checkScenario((report) => {
        checkPushes(report)
        checkEnds(report)
        checkIdempotency(report)
        checkCancels(report)
      })(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "limits hold: the worker limit in force, pause, the rate window, delays, one task per key in push order",
    { scenario: SchedulingScenario },
    ({ scenario }) =>
      checkScenario((report) => {
        checkLimits(report)
        checkKeys(report)
      })(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "a ready task waits only for a reason (paused, workers busy, rate window full), and higher priority, then readiness, goes first",
    { scenario: SchedulingScenario },
    ({ scenario }) =>
      checkScenario((report) => {
        checkWorkers(report)
        checkPriority(report)
      })(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "stats conserve at every instant and show the pause and the limit in force",
    { scenario: SchedulingScenario },
    ({ scenario }) => checkScenario(checkStats)(scenario),
    propOptions(ciRuns, size)
  )

  it.effect.prop(
    "the failure queue accounts for every failure; the safe or limited close leaves nothing unfinished",
    { scenario: SchedulingScenario },
    ({ scenario }) =>
      checkScenario((report) => {
        checkFailureQueue(report)
        checkClose(report)
      })(scenario),
    propOptions(ciRuns, size)
  )
})
