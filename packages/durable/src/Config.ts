/**
 * The worker's configuration: the core's fields that mean the same thing
 * across processes, decoded with the core's rules into the core's
 * `TaskPoolConfigError`. Fields that only make sense in one process are
 * refused with the reason.
 *
 * @since 0.1.0
 */
import { TaskPoolConfig } from "@taskpool/core"
import type { TaskPoolConfigError } from "@taskpool/core"
import { configRules, makeConfigDecoder } from "@taskpool/core/internal"
import type { Effect } from "effect"
import { Schema } from "effect"

const fields = TaskPoolConfig.fields

/**
 * What `DurableTaskPool.layerWorker` reads besides `definitions`. Same
 * defaults and rules as the core: `maxIoWorkerNum` attempts at once in this
 * process, `maxRetryTimes` retries, `maxReservedAttempts` attempts kept per
 * result, the backoff `min(baseRetryBackOffMs * 2^(n-1), maxRetryBackOffMs)`,
 * and `shutdownTimeoutMs` (absent: a safe close).
 *
 * @since 0.1.0
 */
export class DurableWorkerConfig extends Schema.Class<DurableWorkerConfig>("DurableWorkerConfig")({
  name: fields.name,
  maxIoWorkerNum: fields.maxIoWorkerNum,
  maxRetryTimes: fields.maxRetryTimes,
  maxReservedAttempts: fields.maxReservedAttempts,
  baseRetryBackOffMs: fields.baseRetryBackOffMs,
  maxRetryBackOffMs: fields.maxRetryBackOffMs,
  shutdownTimeoutMs: fields.shutdownTimeoutMs
}) {}

/**
 * The worker config's input form: any subset of the fields.
 *
 * @since 0.1.0
 */
export type DurableWorkerConfigInput = typeof DurableWorkerConfig.Encoded

const inOneProcessOnly = "does not apply in durable mode: the store holds the queue, not this process"

/**
 * Decodes a worker config; bad input fails with a `TaskPoolConfigError`
 * naming every offending field, as the core does.
 *
 * @since 0.1.0
 */
export const decodeWorkerConfig: (input: unknown) => Effect.Effect<DurableWorkerConfig, TaskPoolConfigError> =
  makeConfigDecoder({
    label: "DurableWorkerConfig",
    schema: DurableWorkerConfig,
    rules: {
      name: configRules.name,
      maxIoWorkerNum: configRules.maxIoWorkerNum,
      maxRetryTimes: configRules.maxRetryTimes,
      maxReservedAttempts: configRules.maxReservedAttempts,
      baseRetryBackOffMs: configRules.baseRetryBackOffMs,
      maxRetryBackOffMs: configRules.maxRetryBackOffMs,
      shutdownTimeoutMs: configRules.shutdownTimeoutMs
    },
    rejected: {
      lingerMs: `${inOneProcessOnly} (a submitted task is stored at once)`,
      maxTaskNum: `${inOneProcessOnly} (the store bounds it)`,
      maxBlockMs: `${inOneProcessOnly} (submit returns once the task is stored)`,
      maxFailedTasks: "does not apply in durable mode: failed tasks stay in the store until requeued",
      retryJitter: "is not supported in durable mode yet: backoffs follow the formula",
      rateLimit: "is not supported in durable mode yet"
    }
  })
