/**
 * The naive Effect pool: an unbounded `Queue` of Effects feeding a fixed set
 * of worker fibers. No results are tracked; a `FailOnce` task is wrapped in
 * `Effect.retry({ times: 1 })`.
 */
import { Deferred, Effect, Fiber, Queue } from "effect"
import type { Cause } from "effect"
import { effectTasks, heapUsedAfterGc } from "../peer.js"
import type { Peer } from "../peer.js"

type Job = Effect.Effect<void, unknown>

/** Forks `concurrency` workers that run jobs until the queue has ended and is empty. */
const startPool = (concurrency: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Job, Cause.Done>()
    const worker = Effect.forever(Effect.flatMap(Queue.take(queue), (job) => job))
    const workers = yield* Effect.forEach(
      Array.from({ length: concurrency }),
      () => Effect.forkChild(worker, { startImmediately: true })
    )
    /** Ends the queue and waits for the workers to finish it. */
    const drain = Effect.andThen(Queue.end(queue), Fiber.awaitAll(workers))
    return { queue, drain }
  })

export const naiveEffect: Peer = {
  name: "naive Effect",
  run: (shape, n, concurrency) =>
    Effect.runPromise(Effect.gen(function*() {
      const next = effectTasks(shape)
      const job = shape._tag === "FailOnce" ? () => Effect.retry(next(), { times: 1 }) : next
      const { queue, drain } = yield* startPool(concurrency)
      for (let i = 0; i < n; i++) yield* Queue.offer(queue, job())
      yield* drain
    })),
  queuedHeap: (n) =>
    Effect.runPromise(Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const { queue, drain } = yield* startPool(1)
      yield* Queue.offer(queue, Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(gate)))
      yield* Deferred.await(started)
      const before = heapUsedAfterGc()
      for (let i = 0; i < n; i++) yield* Queue.offer(queue, Effect.void)
      const after = heapUsedAfterGc()
      yield* Deferred.succeed(gate, undefined)
      yield* drain
      return (after - before) / n
    }))
}
