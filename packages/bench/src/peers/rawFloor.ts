/**
 * The floor: a hand-written in-flight counter over promises. No results are
 * tracked and nothing is retried beyond what the task does itself.
 */
import { blocker, heapUsedAfterGc, promiseTasks } from "../peer.js"
import type { Peer } from "../peer.js"

type Thunk = () => Promise<void>

/** Starts pushed thunks while fewer than `concurrency` are in flight; the rest wait in an array. */
const floor = (concurrency: number) => {
  const waiting: Array<Thunk> = []
  let head = 0
  let inFlight = 0
  let onDrained = () => {}
  const start = (task: Thunk) => {
    inFlight++
    task().then(next, next)
  }
  const next = () => {
    inFlight--
    if (head < waiting.length) start(waiting[head++]!)
    else if (inFlight === 0) onDrained()
  }
  return {
    push: (task: Thunk) => {
      if (inFlight < concurrency) start(task)
      else waiting.push(task)
    },
    drained: () => new Promise<void>((resolve) => (onDrained = resolve))
  }
}

export const rawFloor: Peer = {
  name: "raw floor",
  run: async (shape, n, concurrency) => {
    const next = promiseTasks(shape)
    const pool = floor(concurrency)
    for (let i = 0; i < n; i++) pool.push(next())
    await pool.drained()
  },
  queuedHeap: async (n) => {
    const gate = blocker()
    const noop = promiseTasks({ _tag: "Noop" })()
    const pool = floor(1)
    pool.push(gate.task)
    await gate.started
    const before = heapUsedAfterGc()
    for (let i = 0; i < n; i++) pool.push(noop)
    const after = heapUsedAfterGc()
    gate.release()
    await pool.drained()
    return (after - before) / n
  }
}
