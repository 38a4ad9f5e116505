/**
 * The scheduling controls at work: order fulfilment for a handful of
 * customers. Every control the pool has is in use, and the example checks
 * from the outside that each one held:
 *
 * - `key`: one customer's orders are fulfilled one at a time, in order;
 * - `priority`: orders of VIP customers go first among waiting orders, so
 *   they wait less;
 * - `idempotencyKey`: the order feed delivers some orders twice, and the
 *   duplicate adds nothing;
 * - `delay`: pre-orders start no earlier than their release;
 * - `handle.cancel`: a customer cancels an order stuck with the warehouse,
 *   and its running attempt really stops;
 * - `pause` / `resume`: a maintenance window starts nothing new;
 * - `resize`: more workers join halfway;
 * - `rateLimit`: the payment provider takes at most 10 calls per 200 ms;
 * - `retrySchedule`: a failed payment is retried every 50 ms, twice at most.
 *
 * Run it with `npm run example:orders`.
 *
 * @since 0.2.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Task, TaskPool } from "@taskpool/core"
import type { TaskHandle } from "@taskpool/core"
import { Clock, Data, Effect, Schedule } from "effect"
import { pathToFileURL } from "node:url"

/**
 * A payment the provider declined this time; the next try may go through.
 *
 * @since 0.2.0
 */
export class PaymentDeclined extends Data.TaggedError("PaymentDeclined")<{ readonly orderId: number }> {}

/**
 * What `ordersExample` accepts.
 *
 * @since 0.2.0
 */
export interface OrdersOptions {
  /** Orders in the feed. Default: 60. */
  readonly orders?: number
  /** Where each printed line goes. Default: `console.log`. */
  readonly log?: (line: string) => void
}

/**
 * What the run observed, and whether each control held.
 *
 * @since 0.2.0
 */
export interface OrdersReport {
  readonly delivered: number
  readonly tasks: number
  readonly fulfilled: number
  readonly cancelled: ReadonlyArray<number>
  readonly failed: number
  /** Every customer's orders started one at a time, in order. */
  readonly customersInOrder: boolean
  /** The most attempts running at once before and after the resize. */
  readonly mostRunningBefore: number
  readonly mostRunningAfter: number
  /** The most attempt starts in any 200 ms window. */
  readonly mostStartsPerWindow: number
  readonly startsWhilePaused: number
  /** Every pre-order started no earlier than its release. */
  readonly preOrdersOnTime: boolean
  /** The mean wait from push to first start, VIP and regular orders. */
  readonly meanWaitVipMs: number
  readonly meanWaitRegularMs: number
}

const customers = ["ada", "bo", "cy", "di", "ed", "flo"] as const
const vips = new Set(["ada", "bo"])
const rate = { limit: 10, intervalMs: 200 }
const pauseAtMs = 300
const pauseForMs = 300
const resizeAtMs = 900
const preOrderReleaseMs = 500
const stuckOrder = 13

interface Order {
  readonly id: number
  readonly customer: string
  readonly preOrder: boolean
}

const orderOf = (id: number): Order => ({ id, customer: customers[id % customers.length]!, preOrder: id % 10 === 9 })

/** How long the warehouse takes: the stuck order would take a minute. */
const workMsOf = (order: Order) => order.id === stuckOrder ? 60_000 : 40 + (order.id % 4) * 20

interface Start {
  readonly id: number
  readonly customer: string
  readonly atMs: number
  /** When the attempt ended; Infinity while it runs. */
  endMs: number
}

/** The largest number of `times` within any half-open window of `windowMs`. */
const mostInWindow = (times: ReadonlyArray<number>, windowMs: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let most = 0
  let first = 0
  for (let last = 0; last < sorted.length; last++) {
    while (sorted[last]! - sorted[first]! >= windowMs) first++
    most = Math.max(most, last - first + 1)
  }
  return most
}

/** The most intervals [atMs, endMs) overlapping at one instant, among those starting in [fromMs, toMs). */
const mostOverlapping = (starts: ReadonlyArray<Start>, fromMs: number, toMs: number): number => {
  let most = 0
  for (const start of starts) {
    if (start.atMs < fromMs || start.atMs >= toMs) continue
    most = Math.max(most, starts.filter((other) => other.atMs <= start.atMs && other.endMs > start.atMs).length)
  }
  return most
}

/**
 * Runs the order feed through a pool using every scheduling control, prints
 * what happened and returns the report.
 *
 * @since 0.2.0
 */
export const ordersExample = Effect.fn("ordersExample")(function*(options: OrdersOptions = {}) {
  const log = options.log ?? console.log
  const count = options.orders ?? 60
  const startedAtMs = yield* Clock.currentTimeMillis
  const sinceStart = Effect.map(Clock.currentTimeMillis, (now) => now - startedAtMs)
  const starts: Array<Start> = []
  let pausedFrom = -1
  let pausedTo = -1

  const report = yield* Effect.gen(function*() {
    const pool = yield* TaskPool
    const handles = new Map<number, TaskHandle<void, PaymentDeclined>>()
    const taskOf = (order: Order) => {
      let tries = 0
      return Task.make({
        name: `order-${order.id}`,
        execute: Effect.gen(function*() {
          const start: Start = { id: order.id, customer: order.customer, atMs: yield* sinceStart, endMs: Infinity }
          starts.push(start)
          yield* Effect.sleep(workMsOf(order)).pipe(
            Effect.ensuring(Effect.map(sinceStart, (endMs) => void (start.endMs = endMs)))
          )
          // Every seventh order's first payment is declined.
          if (order.id % 7 === 3 && tries++ === 0) return yield* new PaymentDeclined({ orderId: order.id })
        }),
        // Every 50 ms, twice at most.
        retrySchedule: Schedule.max([Schedule.spaced("50 millis"), Schedule.recurs(2)])
      })
    }

    // The feed: every fifth order arrives twice; the duplicate is collapsed by its idempotency key.
    let delivered = 0
    for (let id = 0; id < count; id++) {
      const order = orderOf(id)
      const copies = id % 5 === 4 ? 2 : 1
      for (let copy = 0; copy < copies; copy++) {
        delivered++
        const handle = yield* pool.push(taskOf(order), {
          key: order.customer,
          priority: vips.has(order.customer) ? 10 : 0,
          idempotencyKey: `order-${id}`,
          ...(order.preOrder ? { delay: preOrderReleaseMs } : {})
        })
        if (copy > 0 && handle.taskId !== handles.get(id)?.taskId) return yield* Effect.die(new Error("a duplicate made a new task"))
        handles.set(id, handle)
      }
    }

    // The operator's side: a maintenance window, a customer's cancel, more workers.
    yield* Effect.sleep(pauseAtMs)
    yield* pool.pause
    pausedFrom = yield* sinceStart
    yield* Effect.sleep(pauseForMs)
    pausedTo = yield* sinceStart
    yield* pool.resume
    yield* handles.get(stuckOrder)!.cancel
    yield* Effect.sleep(resizeAtMs - pauseAtMs - pauseForMs)
    yield* pool.resize(4)

    const results = yield* Effect.forEach([...handles.values()], (handle) => handle.result)
    // The rate limit is checked on the pool's own record of when each attempt started.
    const attemptStarts = results.flatMap((result) => result.attempts.map((attempt) => attempt.startedAtMs))
    return {
      mostStartsPerWindow: mostInWindow(attemptStarts, rate.intervalMs),
      delivered,
      tasks: (yield* pool.stats).pushed,
      fulfilled: results.filter((result) => result.successful).length,
      cancelled: results.filter((result) => result.errorCode === "Cancelled").map((result) => Number(result.name.slice(6))),
      failed: results.filter((result) => !result.successful && result.errorCode !== "Cancelled").length
    }
  }).pipe(Effect.provide(TaskPool.layer({ maxIoWorkerNum: 2, lingerMs: 100, rateLimit: rate })))

  const customersInOrder = customers.every((customer) => {
    const mine = starts.filter((start) => start.customer === customer)
    // One at a time: each attempt starts after the previous one ended (a retry of the same order may follow it).
    return mine.every((start, i) => i === 0 || (start.atMs >= mine[i - 1]!.endMs && start.id >= mine[i - 1]!.id))
  })
  const firstStarts = starts.filter((start, i) => starts.findIndex((other) => other.id === start.id) === i)
  const meanWait = (vip: boolean) => {
    // Pre-orders wait for their release, whoever they are for.
    const waits = firstStarts.filter((start) => vips.has(start.customer) === vip && !orderOf(start.id).preOrder).map((start) => start.atMs)
    return Math.round(waits.reduce((sum, wait) => sum + wait, 0) / Math.max(1, waits.length))
  }
  const full: OrdersReport = {
    ...report,
    customersInOrder,
    mostRunningBefore: mostOverlapping(starts, 0, resizeAtMs),
    mostRunningAfter: mostOverlapping(starts, resizeAtMs, Number.MAX_SAFE_INTEGER),
    startsWhilePaused: starts.filter((start) => start.atMs > pausedFrom && start.atMs < pausedTo).length,
    preOrdersOnTime: firstStarts.every((start) => !orderOf(start.id).preOrder || start.atMs >= preOrderReleaseMs),
    meanWaitVipMs: meanWait(true),
    meanWaitRegularMs: meanWait(false)
  }
  const check = (ok: boolean) => ok ? "yes" : "NO"
  log(`orders delivered by the feed   ${full.delivered} (${full.delivered - full.tasks} duplicates collapsed into ${full.tasks} tasks)`)
  log(`fulfilled / cancelled / failed ${full.fulfilled} / ${full.cancelled.length} (order ${full.cancelled.join(", ")}) / ${full.failed}`)
  log(`each customer one at a time, in order        ${check(full.customersInOrder)}`)
  log(`most attempts at once: before / after resize  ${full.mostRunningBefore} / ${full.mostRunningAfter} (limits 2 / 4)`)
  log(`most payment calls in any ${rate.intervalMs} ms             ${full.mostStartsPerWindow} (limit ${rate.limit})`)
  log(`started during the maintenance pause         ${full.startsWhilePaused}`)
  log(`pre-orders started after their release       ${check(full.preOrdersOnTime)}`)
  log(`mean wait to first start: VIP / regular      ${full.meanWaitVipMs} ms / ${full.meanWaitRegularMs} ms`)
  return full
})

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(ordersExample())
}
