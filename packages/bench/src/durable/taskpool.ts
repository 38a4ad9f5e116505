/**
 * taskpool durable: `DurableTaskPool.layerWorker` with one no-op definition
 * over `DurableStore.layerPg` (`taskpool`) or `DurableStore.layerRedis`
 * (`taskpool-redis`); the producer is `layerProducer`.
 */
import { DurableStore, DurableTaskPool, TaskDefinition } from "@taskpool/durable"
import { Duration, Effect, Layer, ManagedRuntime, Schema } from "effect"
import type { DurableStoreError } from "@taskpool/durable"
import type { Target, WorkerConfig } from "./ipc.js"
import type { System } from "./system.js"

const noopTask = (onExecute: (submittedAt: number) => void) =>
  TaskDefinition.make({
    name: "bench-noop",
    payload: Schema.Struct({ submittedAt: Schema.Number }),
    execute: ({ submittedAt }) => Effect.sync(() => onExecute(submittedAt))
  })

/** A store at `target`; `config`'s knobs when given, else the store's defaults. */
type Store = (target: Target, config?: WorkerConfig) => Layer.Layer<DurableStore, DurableStoreError>

const knobs = (config?: WorkerConfig) => ({
  pollInterval: config?.pollIntervalMs === undefined ? undefined : Duration.millis(config.pollIntervalMs),
  lockRefreshInterval: config?.lockRefreshIntervalMs === undefined ? undefined : Duration.millis(config.lockRefreshIntervalMs)
})

const pgStore: Store = ({ url }, config) => DurableStore.layerPg({ url, ...knobs(config) })

const redisStore: Store = ({ url, prefix }, config) => DurableStore.layerRedis({ url, prefix, ...knobs(config) })

const durablePool = (store: Store): System => ({
  producer: async (target) => {
    const task = noopTask(() => {})
    const runtime = ManagedRuntime.make(DurableTaskPool.layerProducer({ definitions: [task] }).pipe(Layer.provide(store(target))))
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
      Layer.provide(store(config, config))
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
})

export const taskpool = durablePool(pgStore)

export const taskpoolRedis = durablePool(redisStore)
