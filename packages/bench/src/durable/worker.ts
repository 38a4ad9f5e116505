/**
 * A worker process: `node worker.js '<WorkerConfig JSON>'`, spawned by the
 * coordinator with an IPC channel. It reports executions in batches every
 * 5 ms, and each latency job's start at once.
 */
import { graphile } from "./graphile.js"
import type { FromWorker, ToWorker, WorkerConfig } from "./ipc.js"
import type { RunningWorker } from "./system.js"
import { taskpool, taskpoolRedis } from "./taskpool.js"

const config = JSON.parse(process.argv[2] ?? "{}") as WorkerConfig
const system = { taskpool, graphile, "taskpool-redis": taskpoolRedis }[config.system]
const send = (message: FromWorker) => process.send?.(message)

let unreported = 0
const flush = () => {
  if (unreported > 0) {
    send({ type: "done", count: unreported })
    unreported = 0
  }
}
const onExecute = (submittedAt: number) => {
  if (submittedAt > 0) send({ type: "started", submittedAt, startedAt: Date.now() })
  unreported++
}

let worker: RunningWorker | undefined
const fail = (error: unknown) => {
  console.error(`${config.system} worker ${process.pid}:`, error)
  process.exit(1)
}
process.on("message", (message: ToWorker) => {
  if (message.type === "start") {
    system.startWorker(config, onExecute).then((running) => {
      worker = running
      setInterval(flush, 5).unref()
      send({ type: "ready" })
    }, fail)
  } else {
    const stopping = worker?.stop() ?? Promise.resolve()
    stopping.then(() => {
      flush()
      process.disconnect()
      process.exit(0)
    }, fail)
  }
})
send({ type: "loaded" })
