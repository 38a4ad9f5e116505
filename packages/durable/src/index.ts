/**
 * `@taskpool/durable`: the taskpool across processes and machines, with
 * tasks kept in PostgreSQL or Redis through Effect's `PersistedQueue`.
 *
 * @since 0.1.0
 */
export { DurableWorkerConfig, decodeWorkerConfig } from "./Config.js"
export type { DurableWorkerConfigInput } from "./Config.js"
export { DurableStore } from "./DurableStore.js"
export type { DurableStoreService, QueueOptions, StateCounts, StoredAttempt, StoredFailure, TaskRecord, TaskState } from "./DurableStore.js"
export { DurableTaskPool } from "./DurableTaskPool.js"
export type {
  DurableTaskHandle,
  DurableTaskPoolService,
  DurableTaskPoolStats,
  ProducerOptions,
  RequirementsOf,
  SubmitOptions,
  WorkerOptions
} from "./DurableTaskPool.js"
export { DurableStoreError, TaskNotFailedError } from "./errors.js"
export { TaskDefinition } from "./TaskDefinition.js"
export type { AnyTaskDefinition, TaskDefinitionOptions } from "./TaskDefinition.js"
