/** fastq's promise queue: its worker runs the pushed thunk; `push` every task, then `drained`. */
import fastqModule from "fastq"
import { blocker, heapUsedAfterGc, promiseTasks } from "../peer.js"
import type { Peer } from "../peer.js"

type Thunk = () => Promise<void>
const runThunk = (task: Thunk) => task()

export const fastq: Peer = {
  name: "fastq",
  run: async (shape, n, concurrency) => {
    const next = promiseTasks(shape)
    const queue = fastqModule.promise(runThunk, concurrency)
    for (let i = 0; i < n; i++) void queue.push(next())
    await queue.drained()
  },
  queuedHeap: async (n) => {
    const gate = blocker()
    const noop = promiseTasks({ _tag: "Noop" })()
    const queue = fastqModule.promise(runThunk, 1)
    void queue.push(gate.task)
    await gate.started
    const before = heapUsedAfterGc()
    const kept: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) kept.push(queue.push(noop))
    const after = heapUsedAfterGc()
    gate.release()
    await Promise.all(kept)
    return (after - before) / n
  }
}
