/**
 * Live progress of the pool in context, drawn from `TaskPool.stats` polled on
 * an interval fiber: one line redrawn in place on a terminal (with
 * `log-update`), plain periodic lines anywhere else (CI logs, pipes, files).
 *
 * @since 0.1.0
 */
import { TaskPool } from "@taskpool/core"
import type { TaskPoolStats } from "@taskpool/core"
import { Clock, Effect, Fiber } from "effect"
import { createLogUpdate } from "log-update"
import { formatDuration, rate } from "./summary.js"

/**
 * Where progress lines go and how often they come.
 *
 * @since 0.1.0
 */
export interface ProgressRenderer {
  /** How often a line is drawn while the work runs. */
  readonly intervalMs: number
  /** Draws a line while the work runs. */
  readonly draw: (line: string) => void
  /** Draws the last line, once the work is over, and leaves it on screen. */
  readonly done: (line: string) => void
}

/**
 * Redraws one line in place on `stream`, a terminal, ten times a second.
 *
 * @since 0.1.0
 */
export const ttyRenderer = (stream: NodeJS.WriteStream = process.stdout): ProgressRenderer => {
  const update = createLogUpdate(stream)
  return {
    intervalMs: 100,
    draw: (line) => update(line),
    done: (line) => {
      update(line)
      update.done()
    }
  }
}

/**
 * Prints a new line through `log` every `intervalMs` (default 1000), for output that is not a terminal.
 *
 * @since 0.1.0
 */
export const plainRenderer = (log: (line: string) => void = console.log, intervalMs = 1000): ProgressRenderer => ({
  intervalMs,
  draw: log,
  done: log
})

/**
 * `ttyRenderer()` when stdout is a terminal with a size, `plainRenderer()`
 * otherwise (a pipe, a file, or a terminal that reports 0 rows, where
 * `log-update` would draw nothing).
 *
 * @since 0.1.0
 */
export const defaultRenderer = (): ProgressRenderer =>
  process.stdout.isTTY && process.stdout.rows > 0 && process.stdout.columns > 0 ? ttyRenderer() : plainRenderer()

/**
 * One progress line: what the pool holds, how it is doing, and for how long.
 * With `total`, `pushed` shows how far the pushes have got.
 *
 * @since 0.1.0
 */
export const formatProgress = (stats: TaskPoolStats, elapsedMs: number, total?: number): string => {
  const ended = stats.succeeded + stats.failed
  return [
    `pushed ${stats.pushed}${total === undefined ? "" : `/${total}`}`,
    `queued ${stats.lingering + stats.queued}`,
    `running ${stats.running}`,
    `retrying ${stats.retrying}`,
    `succeeded ${stats.succeeded}`,
    `failed ${stats.failed}`,
    `${rate(ended, elapsedMs)} tasks/s`,
    formatDuration(elapsedMs)
  ].join(" | ")
}

/**
 * What `withProgress` accepts.
 *
 * @since 0.1.0
 */
export interface ProgressOptions {
  readonly renderer: ProgressRenderer
  /** How many tasks the work will push, if known. */
  readonly total?: number
}

/**
 * Runs `self` while drawing the progress of the pool in context every
 * `renderer.intervalMs`, then draws the final line, however `self` ends.
 *
 * @since 0.1.0
 */
export const withProgress = (options: ProgressOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | TaskPool> =>
  Effect.gen(function*() {
    const { renderer, total } = options
    const startedAtMs = yield* Clock.currentTimeMillis
    const line = Effect.gen(function*() {
      const stats = yield* TaskPool.stats
      const nowMs = yield* Clock.currentTimeMillis
      return formatProgress(stats, nowMs - startedAtMs, total)
    })
    const drawWith = (render: (line: string) => void) =>
      Effect.flatMap(line, (text) => Effect.sync(() => render(text)))
    const ticker = yield* Effect.forkChild(
      Effect.forever(Effect.andThen(Effect.sleep(renderer.intervalMs), drawWith(renderer.draw))),
      { startImmediately: true }
    )
    return yield* self.pipe(
      Effect.ensuring(Effect.andThen(Fiber.interrupt(ticker), drawWith(renderer.done)))
    )
  })
