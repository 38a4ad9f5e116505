/**
 * taskpool through its public API: `TaskPool.layer`, `TaskPool.push` for
 * every task in one `Effect.gen`, and the run ends when the layer's scope
 * has closed (a safe close, which waits for every task). The scheduled
 * workload pushes with `{ priority, key }`.
 */
import { Deferred, Effect } from "effect"
import { Task, TaskPool } from "@taskpool/core"
import type { TaskHandle } from "@taskpool/core"
import { effectTasks, heapUsedAfterGc, keyNames } from "../peer.js"
import type { FAILURE, Peer, TaskShape } from "../peer.js"

/**
 * The pool every workload uses: room for all `n` tasks, so `push` never
 * waits, and one immediate retry (only `FailOnce` tasks ever fail).
 */
const layer = (n: number, concurrency: number) =>
  TaskPool.layer({
    lingerMs: 100,
    maxIoWorkerNum: concurrency,
    maxTaskNum: n,
    maxRetryTimes: 1,
    baseRetryBackOffMs: 0
  })

/** The tasks of `shape`; shapes without state push one shared `Task`. */
const tasksOf = (shape: TaskShape): () => Task<void, typeof FAILURE> => {
  const next = effectTasks(shape)
  if (shape._tag === "FailOnce") return () => Task.make({ name: "fail-once", execute: next() })
  const task = Task.make({ name: shape._tag, execute: next() })
  return () => task
}

export const taskpool: Peer = {
  name: "taskpool",
  run: (shape, n, concurrency) => {
    const next = tasksOf(shape)
    return Effect.runPromise(
      Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* TaskPool.push(next())
      }).pipe(Effect.provide(layer(n, concurrency)))
    )
  },
  runScheduled: (n, concurrency, { keys, priorities }) => {
    const next = tasksOf({ _tag: "Noop" })
    const names = keyNames(keys)
    return Effect.runPromise(
      Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* TaskPool.push(next(), { priority: i % priorities, key: names[i % keys] })
      }).pipe(Effect.provide(layer(n, concurrency)))
    )
  },
  queuedHeap: (n) => {
    const noop = tasksOf({ _tag: "Noop" })()
    return Effect.runPromise(
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        yield* TaskPool.push(Task.make({
          name: "blocker",
          execute: Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(gate))
        }))
        yield* Deferred.await(started)
        const before = heapUsedAfterGc()
        const kept: Array<TaskHandle<void, typeof FAILURE>> = []
        for (let i = 0; i < n; i++) kept.push(yield* TaskPool.push(noop))
        const after = heapUsedAfterGc()
        yield* Deferred.succeed(gate, undefined)
        yield* Effect.forEach(kept, (handle) => handle.result, { discard: true })
        return (after - before) / n
      }).pipe(Effect.provide(layer(n + 1, 1)))
    )
  }
}
