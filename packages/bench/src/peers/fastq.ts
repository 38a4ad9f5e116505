/** fastq's promise queue: its worker runs the pushed thunk; `push` every task, then `drained`. */
import fastqModule from "fastq"
import { promiseQueuedHeap, promiseTasks } from "../peer.js"
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
  queuedHeap: (n) => {
    const queue = fastqModule.promise(runThunk, 1)
    return promiseQueuedHeap(n, (thunk) => queue.push(thunk))
  }
}
