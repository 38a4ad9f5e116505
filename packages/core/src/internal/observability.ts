/**
 * The pool's metrics and spans. Every metric is a series registered with
 * `Metric.registerUnsafe` and read when metrics are snapshotted: counters and
 * gauges read the pool's own state, histograms read a small recorder the hot
 * path feeds with one array increment (a `Metric.update` per task would look
 * its series up in the registry each time, which cost ~12% of the no-op
 * throughput). Spans are made only when the pusher has a tracer other than
 * Effect's built-in one (an exporter is installed); a pool checks that once
 * per pushing context.
 */
import { Context, Effect, Exit, Metric, References, Tracer } from "effect"
import type { Fiber } from "effect"
import { metricNames } from "../TaskPoolMetrics.js"
import { describeFailure } from "./outcome.js"

/** What the pool's pull-based metrics read. */
export interface MetricSource {
  readonly pushed: () => number
  readonly succeeded: () => number
  readonly failed: () => number
  readonly retriedAttempts: () => number
  readonly droppedFailures: () => number
  readonly rejectedPushes: () => number
  readonly lingering: () => number
  readonly queued: () => number
  readonly running: () => number
  readonly ending: () => number
  readonly retrying: () => number
}

const counters = ["pushed", "succeeded", "failed", "retriedAttempts", "droppedFailures", "rejectedPushes"] as const
const gauges = ["lingering", "queued", "running", "retrying", "ending"] as const

const boundaries = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000]

const ignore = () => {}

/** Observations bucketed as Effect's histograms do: a value counts in the first boundary >= it. */
export class Recorder {
  private readonly counts = new Array<number>(boundaries.length).fill(0)
  private count = 0
  private sum = 0
  private min = Number.MAX_VALUE
  private max = -Number.MAX_VALUE

  record(value: number): void {
    let i = 0
    while (i < boundaries.length && value > boundaries[i]!) i++
    if (i < boundaries.length) this.counts[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  readonly state = (): Metric.HistogramState => {
    let cumulated = 0
    return {
      buckets: boundaries.map((boundary, i): [number, number] => [boundary, cumulated += this.counts[i]!]),
      count: this.count,
      min: this.min,
      max: this.max,
      sum: this.sum
    }
  }
}

export interface PoolMetrics {
  readonly attemptDuration: Recorder
  readonly queueWait: Recorder
  readonly taskDuration: Recorder
  /** Removes the pool's series from the registry. */
  readonly unregister: () => void
}

/** Registers the pool's metrics in the registry of `context`. */
export const registerMetrics = (poolName: string, context: Context.Context<never>, source: MetricSource): PoolMetrics => {
  const attributes = { pool: poolName }
  const recorders = { attemptDuration: new Recorder(), queueWait: new Recorder(), taskDuration: new Recorder() }
  const registrations = [
    ...counters.map((key) =>
      Metric.registerUnsafe(Metric.counter(metricNames[key], { incremental: true, attributes }), context, {
        get: () => ({ count: source[key](), incremental: true }),
        update: ignore,
        modify: ignore
      })
    ),
    ...gauges.map((key) =>
      Metric.registerUnsafe(Metric.gauge(metricNames[key], { attributes }), context, {
        get: () => ({ value: source[key]() }),
        update: ignore,
        modify: ignore
      })
    ),
    ...(["attemptDuration", "queueWait", "taskDuration"] as const).map((key) =>
      Metric.registerUnsafe(Metric.histogram(metricNames[key], { boundaries, attributes }), context, {
        get: recorders[key].state,
        update: ignore,
        modify: ignore
      })
    )
  ]
  return {
    ...recorders,
    unregister: () => {
      for (const registration of registrations) registration.remove()
    }
  }
}

/** Whether a fiber's spans go anywhere: tracing is on and a tracer other than the built-in one is installed. */
export const isTracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer && fiber.getRef(References.TracerEnabled)

/** `context` with `taskId` and `taskName` added to its log annotations. */
export const withTaskAnnotations = (context: Context.Context<unknown>, taskId: string, taskName: string) => {
  const inherited = Context.get(context as Context.Context<never>, References.CurrentLogAnnotations)
  // Most pushers annotate nothing: then a two-field record, without copying an empty one.
  const annotations = isEmpty(inherited) ? { taskId, taskName } : { ...inherited, taskId, taskName }
  return Context.add(context, References.CurrentLogAnnotations, annotations)
}

const isEmpty = (record: object): boolean => {
  for (const _ in record) return false
  return true
}

/** Records how an attempt or a task came out on its span. */
export const annotateOutcome = (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>, errorCode?: string): void => {
  span.attribute("taskpool.outcome", Exit.isSuccess(exit) ? "success" : "failure")
  const code = errorCode ?? (Exit.isFailure(exit) ? describeFailure(exit.cause).errorCode : undefined)
  if (code !== undefined) span.attribute("taskpool.error_code", code)
}

/** Runs one attempt inside a child span of its task's span. */
export const tracedAttempt = <A, E, R>(attempt: Effect.Effect<A, E, R>, taskSpan: Tracer.Span, taskId: string, number: number) =>
  Effect.flatMap(
    Effect.makeSpan("taskpool.attempt", {
      parent: taskSpan,
      attributes: { "taskpool.task.id": taskId, "taskpool.attempt": number }
    }),
    (span) =>
      Effect.onExit(Effect.withParentSpan(attempt, span), (exit) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            annotateOutcome(span, exit)
            span.end(clock.currentTimeNanosUnsafe(), exit)
          })
        ))
  )
