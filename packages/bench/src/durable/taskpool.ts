/**
 * taskpool durable: `DurableTaskPool.layerWorker` over `DurableStore.layerPg`
 * with one no-op definition; the producer is `layerProducer`.
 */
import { DurableStore, DurableTaskPool, TaskDefinition } from "@taskpool/durable"
import { Duration, Effect, Layer, ManagedRuntime, Schema } from "effect"
import type { WorkerConfig } from "./ipc.js"
import type { System } from "./system.js"

const noopTask = (onExecute: (submittedAt: number) => void) =>
  TaskDefinition.make({
    name: "bench-noop",
    payload: Schema.Struct({ submittedAt: Schema.Number }),
    execute: ({ submittedAt }) => Effect.sync(() => onExecute(submittedAt))
  })

const store = (url: string, config?: WorkerConfig) =>
  DurableStore.layerPg({
    url,
    pollInterval: config?.pollIntervalMs === undefined ? undefined : Duration.millis(config.pollIntervalMs),
    lockRefreshInterval: config?.lockRefreshIntervalMs === undefined ? undefined : Duration.millis(config.lockRefreshIntervalMs)
  })

export const taskpool: System = {
  producer: async (url) => {
    const task = noopTask(() => {})
    const runtime = ManagedRuntime.make(DurableTaskPool.layerProducer({ definitions: [task] }).pipe(Layer.provide(store(url))))
    try {
      await runtime.runPromise(DurableTaskPool.use(() => Effect.void))
    } catch (error) {
      await runtime.dispose()
      throw error
    }
    return {
      submit: (submittedAt) => runtime.runPromise(Effect.asVoid(DurableTaskPool.submit(task, { submittedAt }))),
      remaining: () => runtime.runPromise(DurableTaskPool.use((pool) => pool.stats)).then((s) => s.total - s.succeeded),
      close: () => runtime.dispose()
    }
  },
  startWorker: async (config, onExecute) => {
    const layer = DurableTaskPool.layerWorker({ definitions: [noopTask(onExecute)], maxIoWorkerNum: config.concurrency }).pipe(
      Layer.provide(store(config.url, config))
    )
    let stop = () => {}
    const stopped = new Promise<void>((resolve) => stop = resolve)
    let ready = () => {}
    const up = new Promise<void>((resolve) => ready = resolve)
    const running = Effect.runPromise(
      Effect.gen(function*() {
        yield* DurableTaskPool
        ready()
        yield* Effect.promise(() => stopped)
      }).pipe(Effect.provide(layer))
    )
    await Promise.race([up, running])
    return {
      stop: () => {
        stop()
        return running
      }
    }
  }
}
