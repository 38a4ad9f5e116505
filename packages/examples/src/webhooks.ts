/**
 * A real-world example: webhook delivery. A local receiver on 127.0.0.1 (a
 * random port) answers some webhooks 503 (try again later), some 400 (never
 * retry) and some too slowly; the pool delivers a few hundred webhooks with
 * retries, a per-attempt timeout that aborts the request, and a `retryable`
 * predicate on the HTTP status. A consumer of the pool's failure queue writes
 * each dead letter as one JSON line to a file. Ctrl-C closes the pool safely:
 * every webhook already pushed still ends, and its dead letter is written.
 *
 * Run it with `npm run example:webhooks`.
 *
 * @since 0.1.0
 */
import { NodeFileSystem, NodeRuntime } from "@effect/platform-node"
import { Task, TaskPool } from "@taskpool/core"
import type { TaskResult } from "@taskpool/core"
import { Cause, Clock, Context, Effect, Exit, FileSystem, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
import { fileURLToPath, pathToFileURL } from "node:url"
import { defaultRenderer, withProgress } from "./progress.js"
import type { ProgressRenderer } from "./progress.js"
import { startReceiver } from "./receiver.js"
import { formatSummary, summarize } from "./summary.js"
import type { Summary } from "./summary.js"
import {
  DeadLetter,
  DeadLetterJson,
  isRetryable,
  Webhook,
  webhookJson,
  WebhookRejected,
  WebhookUnreachable
} from "./webhook.js"

// ── delivery ─────────────────────────────────────────────────────────────

/** One attempt to deliver `webhook`: a POST whose request is aborted if the attempt is interrupted (its timeout). */
const post = (endpoint: string, webhook: Webhook) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(endpoint, {
        method: "POST",
        signal,
        headers: { "content-type": "application/json", "webhook-id": String(webhook.id) },
        body: webhookJson(webhook)
      })
      await response.arrayBuffer()
      return response.status
    },
    catch: (cause) => new WebhookUnreachable({ message: String(cause), webhookId: webhook.id })
  }).pipe(
    Effect.flatMap((status) =>
      status >= 200 && status < 300
        ? Effect.void
        : Effect.fail(new WebhookRejected({ message: `HTTP ${status}`, webhookId: webhook.id, status }))
    )
  )

const taskName = (webhook: Webhook) => `webhook-${webhook.id}`

/** Turns a failed delivery into its dead letter. */
const deadLetterOf = (webhook: Webhook, result: TaskResult<unknown, unknown>): DeadLetter => {
  const error = Exit.isFailure(result.exit) ? Cause.findErrorOption(result.exit.cause) : Option.none()
  return new DeadLetter({
    webhook,
    status: Option.isSome(error) && error.value instanceof WebhookRejected ? error.value.status : null,
    errorCode: result.errorCode ?? "Failure",
    errorMessage: result.errorMessage ?? "",
    attempts: result.attemptCount
  })
}

/**
 * Reads the failure queue until it ends (after the pool has closed) and
 * appends one JSON line per dead letter to `file`. Returns how many it wrote.
 */
const writeDeadLetters = (
  failures: Stream.Stream<TaskResult<unknown, unknown>>,
  webhooks: ReadonlyMap<string, Webhook>,
  file: string
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const encode = Schema.encodeEffect(DeadLetterJson)
    return yield* failures.pipe(
      Stream.mapEffect((result) =>
        Effect.fromNullishOr(webhooks.get(result.name)).pipe(
          Effect.orDie,
          Effect.flatMap((webhook) => encode(deadLetterOf(webhook, result))),
          Effect.flatMap((line) => fs.writeFileString(file, `${line}\n`, { flag: "a" }))
        )
      ),
      Stream.runCount
    )
  })

/**
 * What `deliverWebhooks` accepts.
 *
 * @since 0.1.0
 */
export interface DeliveryOptions {
  readonly endpoint: string
  readonly webhooks: ReadonlyArray<Webhook>
  /** Where dead letters go, one JSON line each; the file is emptied first. */
  readonly deadLetterFile: string
  /** Per attempt; a request still unanswered then is aborted and retried. */
  readonly timeoutMs: number
  /** Wait before the first retry; it doubles for each one after. */
  readonly backoffMs: number
  readonly renderer: ProgressRenderer
}

/**
 * How a delivery run went.
 *
 * @since 0.1.0
 */
export interface DeliveryReport {
  readonly summary: Summary
  readonly deadLetters: number
}

/**
 * Delivers `webhooks` to `endpoint` through a pool of its own, with live
 * progress, while a forked consumer of the failure queue writes the dead
 * letters. The pool closes safely however the delivery ends (also when it is
 * interrupted): every pushed webhook ends and its dead letter is written
 * before this returns.
 *
 * @since 0.1.0
 */
export const deliverWebhooks = Effect.fn("webhooks.deliver")(function*(options: DeliveryOptions) {
  const fs = yield* FileSystem.FileSystem
  yield* fs.writeFileString(options.deadLetterFile, "")
  const byName = new Map(options.webhooks.map((webhook) => [taskName(webhook), webhook]))
  const startedAtMs = yield* Clock.currentTimeMillis
  const deliverAll = Effect.gen(function*() {
    const handles = yield* Effect.forEach(options.webhooks, (webhook) =>
      TaskPool.push(Task.make({
        name: taskName(webhook),
        execute: post(options.endpoint, webhook),
        retryable: isRetryable,
        timeout: options.timeoutMs
      })))
    yield* TaskPool.awaitIdle
    return yield* Effect.forEach(handles, (handle) => handle.result)
  }).pipe(withProgress({ renderer: options.renderer, total: options.webhooks.length }))

  const { results, deadLetters } = yield* Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const poolScope = yield* Scope.make()
      const pool = Context.get(
        yield* Layer.buildWithScope(
          TaskPool.layer({
            maxIoWorkerNum: 16,
            lingerMs: 100,
            maxRetryTimes: 4,
            baseRetryBackOffMs: options.backoffMs,
            maxRetryBackOffMs: 2000,
            maxTaskNum: 100
          }),
          poolScope
        ),
        TaskPool
      )
      const writer = yield* Effect.forkDetach(writeDeadLetters(pool.failures, byName, options.deadLetterFile))
      const delivered = yield* Effect.exit(restore(Effect.provideService(deliverAll, TaskPool, pool)))
      yield* Scope.close(poolScope, delivered)
      const deadLetters = yield* Fiber.join(writer)
      return { results: yield* delivered, deadLetters }
    })
  )
  const report: DeliveryReport = {
    summary: summarize(results, (yield* Clock.currentTimeMillis) - startedAtMs),
    deadLetters
  }
  return report
})

// ── the example ──────────────────────────────────────────────────────────

const events = ["order.created", "order.paid", "order.shipped"] as const

/**
 * What `webhooksExample` accepts. The defaults make a run of a second or two.
 *
 * @since 0.1.0
 */
export interface WebhooksOptions {
  /** How many webhooks to deliver. Default: 300. */
  readonly webhooks?: number
  /** Per-attempt timeout. Default: 250 ms. */
  readonly timeoutMs?: number
  /** The receiver's normal answer time. Default: 20 ms. */
  readonly latencyMs?: number
  /** The receiver's first answer time for slow webhooks. Default: 4 × `timeoutMs`. */
  readonly slowMs?: number
  /** The first retry's wait. Default: 50 ms. */
  readonly backoffMs?: number
  /** Default: `dead-letters.jsonl` in the examples package. */
  readonly deadLetterFile?: string
  /** Where live progress goes. Default: `defaultRenderer()`. */
  readonly renderer?: ProgressRenderer
  /** Where the headline and report lines go. Default: `console.log`. */
  readonly log?: (line: string) => void
}

/**
 * The whole example: starts the receiver, delivers the webhooks, prints the
 * summary, the receiver's answers and where the dead letters are. Returns the
 * delivery report and the receiver's tally.
 *
 * @since 0.1.0
 */
export const webhooksExample = Effect.fn("webhooks.run")(function*(options: WebhooksOptions) {
  const count = options.webhooks ?? 300
  const timeoutMs = options.timeoutMs ?? 250
  const deadLetterFile = options.deadLetterFile ?? fileURLToPath(new URL("../dead-letters.jsonl", import.meta.url))
  const log = options.log ?? console.log
  yield* Effect.addFinalizer((exit) =>
    Exit.hasInterrupts(exit)
      ? Effect.sync(() => log(`interrupted: the pool closed safely; dead letters are in ${deadLetterFile}`))
      : Effect.void
  )
  const receiver = yield* startReceiver({ latencyMs: options.latencyMs ?? 20, slowMs: options.slowMs ?? timeoutMs * 4 })
  const webhooks = Array.from({ length: count }, (_, id) =>
    new Webhook({ id, event: events[id % events.length] ?? "order.created", orderId: `order-${10_000 + id}` }))
  log(`webhooks: delivering ${count} to ${receiver.url}, ${timeoutMs} ms timeout per attempt`)
  const report = yield* deliverWebhooks({
    endpoint: receiver.url,
    webhooks,
    deadLetterFile,
    timeoutMs,
    backoffMs: options.backoffMs ?? 50,
    renderer: options.renderer ?? defaultRenderer()
  })
  const tally = yield* receiver.tally
  for (const line of formatSummary(report.summary)) log(line)
  log("")
  const answers = Object.entries(tally.byStatus).map(([status, n]) => `HTTP ${status} × ${n}`).join(", ")
  log(`receiver answered ${answers}; ${tally.aborted} requests were aborted by the per-attempt timeout`)
  log(`dead letters: ${report.deadLetters} written to ${deadLetterFile}`)
  return { ...report, receiver: tally }
}, Effect.scoped)

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(webhooksExample({}).pipe(Effect.provide(NodeFileSystem.layer)))
}
