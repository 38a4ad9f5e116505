/**
 * p-queue: `add` every task, keeping nothing, then `onIdle`. The scheduled
 * workload passes each task's `priority`; p-queue has no keys.
 */
import PQueue from "p-queue"
import { promiseQueuedHeap, promiseTasks } from "../peer.js"
import type { Peer } from "../peer.js"

export const pQueue: Peer = {
  name: "p-queue",
  run: async (shape, n, concurrency) => {
    const next = promiseTasks(shape)
    const queue = new PQueue({ concurrency })
    for (let i = 0; i < n; i++) void queue.add(next())
    await queue.onIdle()
  },
  runScheduled: async (n, concurrency, { priorities }) => {
    const next = promiseTasks({ _tag: "Noop" })
    const queue = new PQueue({ concurrency })
    for (let i = 0; i < n; i++) void queue.add(next(), { priority: i % priorities })
    await queue.onIdle()
  },
  queuedHeap: (n) => {
    const queue = new PQueue({ concurrency: 1 })
    return promiseQueuedHeap(n, (thunk) => queue.add(thunk))
  }
}
