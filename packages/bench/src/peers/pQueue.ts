/** p-queue: `add` every task, keeping nothing, then `onIdle`. */
import PQueue from "p-queue"
import { blocker, heapUsedAfterGc, promiseTasks } from "../peer.js"
import type { Peer } from "../peer.js"

export const pQueue: Peer = {
  name: "p-queue",
  run: async (shape, n, concurrency) => {
    const next = promiseTasks(shape)
    const queue = new PQueue({ concurrency })
    for (let i = 0; i < n; i++) void queue.add(next())
    await queue.onIdle()
  },
  queuedHeap: async (n) => {
    const gate = blocker()
    const noop = promiseTasks({ _tag: "Noop" })()
    const queue = new PQueue({ concurrency: 1 })
    void queue.add(gate.task)
    await gate.started
    const before = heapUsedAfterGc()
    const kept: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) kept.push(queue.add(noop))
    const after = heapUsedAfterGc()
    gate.release()
    await Promise.all(kept)
    return (after - before) / n
  }
}
