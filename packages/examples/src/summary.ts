/**
 * The end-of-run summary of a batch of task results: how the tasks ended,
 * how many attempts they took (a small histogram), and the slowest of them,
 * rendered as plain text lines.
 *
 * @since 0.1.0
 */
import type { TaskResult } from "@taskpool/core"

/**
 * One of the slowest tasks: `durationMs` runs from its push to its end.
 *
 * @since 0.1.0
 */
export interface SlowTask {
  readonly name: string
  readonly durationMs: number
  readonly attempts: number
  readonly outcome: string
}

/**
 * What `summarize` finds in a batch of results.
 *
 * @since 0.1.0
 */
export interface Summary {
  readonly tasks: number
  readonly elapsedMs: number
  /**
   * How the tasks ended, most common first: `succeeded on first attempt`,
   * `succeeded after retries` or `failed: <errorCode>`.
   */
  readonly outcomes: ReadonlyArray<{ readonly outcome: string; readonly tasks: number }>
  /** How many tasks made each number of attempts, from 1 to the most any task made. */
  readonly attempts: ReadonlyArray<{ readonly attempts: number; readonly tasks: number }>
  /** The slowest tasks, slowest first. */
  readonly slowest: ReadonlyArray<SlowTask>
}

const outcomeOf = (result: TaskResult<unknown, unknown>): string =>
  result.successful
    ? result.attemptCount === 1 ? "succeeded on first attempt" : "succeeded after retries"
    : `failed: ${result.errorCode ?? "Failure"}`

/**
 * Sums up `results`, which took `elapsedMs` in all; keeps the `slowest` (default 5) slowest tasks.
 *
 * @since 0.1.0
 */
export const summarize = <A, E>(
  results: ReadonlyArray<TaskResult<A, E>>,
  elapsedMs: number,
  options: { readonly slowest?: number } = {}
): Summary => {
  const outcomes = new Map<string, number>()
  const attempts: Array<number> = []
  for (const result of results) {
    const outcome = outcomeOf(result)
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    attempts[result.attemptCount - 1] = (attempts[result.attemptCount - 1] ?? 0) + 1
  }
  return {
    tasks: results.length,
    elapsedMs,
    outcomes: [...outcomes].map(([outcome, tasks]) => ({ outcome, tasks })).sort((a, b) => b.tasks - a.tasks),
    attempts: Array.from(attempts, (tasks, i) => ({ attempts: i + 1, tasks: tasks ?? 0 })),
    slowest: results
      .map((result) => ({
        name: result.name,
        durationMs: result.completedAtMs - result.createdAtMs,
        attempts: result.attemptCount,
        outcome: outcomeOf(result)
      }))
      .sort((a, b) => b.durationMs - a.durationMs)
      .slice(0, options.slowest ?? 5)
  }
}

/**
 * Lays out `rows` under `header` in aligned columns; `numeric` columns are right-aligned.
 */
const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  numeric: ReadonlyArray<boolean>
): Array<string> => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)))
  return [header, ...rows].map((row) =>
    row
      .map((cell, column) => numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd()
  )
}

const barWidth = 30

/** A histogram bar of `count` out of `max`: at least one block for any count above 0. */
const bar = (count: number, max: number): string =>
  count === 0 ? "" : "█".repeat(Math.max(1, Math.round((count / max) * barWidth)))

const percent = (part: number, whole: number): string => `${(whole === 0 ? 0 : (part / whole) * 100).toFixed(1)}%`

/**
 * Formats a duration in milliseconds for people: `850 ms`, `3.42 s`.
 *
 * @since 0.1.0
 */
export const formatDuration = (ms: number): string => ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`

/**
 * Tasks ended per second over `elapsedMs` (0 when no time has passed).
 *
 * @since 0.1.0
 */
export const rate = (tasks: number, elapsedMs: number): number =>
  elapsedMs <= 0 ? 0 : Math.round((tasks * 1000) / elapsedMs)

/**
 * Renders a summary as plain lines: a headline, the outcomes table, the
 * attempts histogram and the slowest tasks.
 *
 * @since 0.1.0
 */
export const formatSummary = (summary: Summary): ReadonlyArray<string> => {
  const most = Math.max(0, ...summary.attempts.map((row) => row.tasks))
  return [
    `${summary.tasks} tasks in ${formatDuration(summary.elapsedMs)} (${
      rate(summary.tasks, summary.elapsedMs)
    } tasks/s)`,
    "",
    ...table(
      ["outcome", "tasks", "share"],
      summary.outcomes.map((row) => [row.outcome, String(row.tasks), percent(row.tasks, summary.tasks)]),
      [false, true, true]
    ),
    "",
    ...table(
      ["attempts", "tasks", ""],
      summary.attempts.map((row) => [String(row.attempts), String(row.tasks), bar(row.tasks, most)]),
      [true, true, false]
    ),
    "",
    ...table(
      ["slowest tasks", "time", "attempts", "outcome"],
      summary.slowest.map((task) => [task.name, formatDuration(task.durationMs), String(task.attempts), task.outcome]),
      [false, true, true, false]
    )
  ]
}
