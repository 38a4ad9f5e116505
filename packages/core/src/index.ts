/**
 * `@taskpool/core`: a task pool for Effect 4.
 *
 * @since 0.1.0
 */
export { decodeConfig, TaskPoolConfig } from "./Config.js"
export type { TaskPoolConfigInput } from "./Config.js"
export { PoolClosedError, PoolFullError, TaskPoolConfigError, TaskTimeoutError } from "./errors.js"
export { createTaskPool } from "./promise.js"
export type { PromiseCloseOptions, PromisePushOptions, PromiseTaskPool } from "./promise.js"
export { Task } from "./Task.js"
export type { TaskOptions } from "./Task.js"
export { TaskPool, TaskPoolLive } from "./TaskPool.js"
export type { PushOptions, TaskHandle, TaskPoolService, TaskPoolStats } from "./TaskPool.js"
export { Attempt, TaskResult } from "./TaskResult.js"
export { metricNames } from "./TaskPoolMetrics.js"
