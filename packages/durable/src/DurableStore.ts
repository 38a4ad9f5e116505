/**
 * Where durable tasks live. A `DurableStore` pairs Effect's own durable queue
 * (`effect/persistence` `PersistedQueue`'s store: claims, locks, retries) with
 * a table of task records (payload, state, attempts, result) that the queue
 * does not keep. PostgreSQL is the default (`layerPg`), Redis the faster
 * option (`layerRedis`), and `layerMemory` serves tests of one process.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { Duration, Effect, Scope, Stream } from "effect"
import type { PersistedQueue } from "effect/persistence"
import type { DurableStoreError } from "./errors.js"
import { makeMemoryStore } from "./internal/memoryStore.js"
import { makePgStore, type PgStoreOptions } from "./internal/pgStore.js"
import { makeRedisStore } from "./internal/redisStore.js"
import type { AttemptEnd, NewTask, StateCounts, TaskRecord } from "./internal/records.js"

export type { StateCounts, StoredAttempt, StoredFailure, TaskRecord, TaskState } from "./internal/records.js"

/**
 * The store's operations. Pools use them; users pick a store by its layer.
 * Every write of an attempt's end is fenced by the task's `generation` and
 * the queue `claim` that started it, so a worker whose lock expired cannot
 * overwrite a newer attempt.
 *
 * @since 0.1.0
 */
export interface DurableStoreService {
  /** The `PersistedQueue` store that holds the queue elements. */
  readonly queue: PersistedQueue.PersistedQueueStore["Service"]
  /**
   * Stores a new task, or finds the task already stored under its
   * `idempotencyKey`; then runs `enqueue` for it while it is still queued
   * (enqueueing is idempotent by element id), in one transaction where the
   * store has them.
   */
  readonly create: (
    task: NewTask,
    enqueue: (record: TaskRecord) => Effect.Effect<void, DurableStoreError>
  ) => Effect.Effect<TaskRecord, DurableStoreError>
  readonly get: (taskId: string) => Effect.Effect<TaskRecord | undefined, DurableStoreError>
  /**
   * Marks the task running under queue claim `claim` (PersistedQueue's
   * attempt number) of `generation`: state `running`, `claim` = `claim`,
   * `attemptCount` one more than before. Returns the record as it now is,
   * whose `attemptCount` is this attempt's number; `undefined` when the task
   * is missing, ended, or of another generation.
   */
  readonly start: (
    taskId: string,
    generation: number,
    claim: number
  ) => Effect.Effect<TaskRecord | undefined, DurableStoreError>
  /**
   * Writes the end of the attempt started by `claim`; `false` when the record
   * has moved on (another generation, or a later start under another claim).
   * A failed end takes the next failure sequence number; an ended task is
   * announced to `endings`.
   */
  readonly finish: (
    taskId: string,
    generation: number,
    claim: number,
    end: AttemptEnd
  ) => Effect.Effect<boolean, DurableStoreError>
  /**
   * An attempt cut off by a close: the task is queued again and the attempt
   * not counted (`attemptCount` one less; `claim` unchanged). Applies only to
   * the attempt started by `claim` of a task that has not ended (a close that
   * lands after the task's end, or after a later start, changes nothing).
   */
  readonly release: (taskId: string, generation: number, claim: number) => Effect.Effect<void, DurableStoreError>
  /**
   * A failed task back to queued with a fresh budget (next generation, no
   * attempts, `attemptCount` and `claim` 0), then `enqueue`, in one
   * transaction where the store has them. Returns the record as it now is;
   * `requeued` is false when it was not failed.
   */
  readonly requeue: (
    taskId: string,
    enqueue: (record: TaskRecord) => Effect.Effect<void, DurableStoreError>
  ) => Effect.Effect<{ readonly record: TaskRecord | undefined; readonly requeued: boolean }, DurableStoreError>
  /** Failed tasks whose `failedSeq` is greater than `afterSeq`, oldest first. */
  readonly failedAfter: (afterSeq: number, limit: number) => Effect.Effect<ReadonlyArray<TaskRecord>, DurableStoreError>
  readonly counts: Effect.Effect<StateCounts, DurableStoreError>
  /**
   * Subscribes to the ids of tasks that end, in any process, as the store
   * announces them: the subscription is live once this effect succeeds, and
   * lasts for its scope. Best effort: readers also look at the record itself.
   */
  readonly endings: Effect.Effect<Stream.Stream<string, DurableStoreError>, DurableStoreError, Scope.Scope>
}

/**
 * Queue-level options every store takes. PersistedQueue's defaults (1 s
 * polling, 2 min lock expiry) suit long jobs; ours favour a fast wake-up.
 *
 * @since 0.1.0
 */
export interface QueueOptions {
  /** How often an idle process looks for new tasks (default 20 ms). */
  readonly pollInterval?: Duration.Input | undefined
  /** How long a claim outlives a process that stopped refreshing it (default 2 minutes on PostgreSQL, 90 s on Redis). */
  readonly lockExpiration?: Duration.Input | undefined
  /** How often a live process refreshes its claims (default 30 s; keep it well under `lockExpiration`). */
  readonly lockRefreshInterval?: Duration.Input | undefined
}

/**
 * Options of `DurableStore.layerRedis`.
 *
 * @since 0.1.0
 */
export interface RedisStoreOptions extends QueueOptions {
  /** Where the server is, e.g. `redis://127.0.0.1:6379`. */
  readonly url: string
  /** The start of every key and channel the store uses (default `taskpool:`). */
  readonly prefix?: string | undefined
  /** How long a claim outlives a process that stopped refreshing it (default 90 s, PersistedQueue's Redis default). */
  readonly lockExpiration?: Duration.Input | undefined
}

/**
 * The store service.
 *
 * @since 0.1.0
 */
export class DurableStore extends Context.Service<DurableStore, DurableStoreService>()("@taskpool/durable/DurableStore") {
  /**
   * A store in this process's memory: for tests and single-process use. It
   * follows Effect's `Clock`, so `TestClock` drives its delays and backoffs.
   *
   * @since 0.1.0
   */
  static readonly layerMemory: Layer.Layer<DurableStore> = Layer.effect(DurableStore, makeMemoryStore)

  /**
   * The PostgreSQL store: `url`, or a `PgClient` layer of your own. Tables
   * (`${tableName}` for records, `${tableName}_queue` for PersistedQueue) are
   * created on first use. Delays and backoffs are kept in whole seconds,
   * rounded up (PersistedQueue's SQL store).
   *
   * @since 0.1.0
   */
  static readonly layerPg = (options: PgStoreOptions): Layer.Layer<DurableStore, DurableStoreError> =>
    Layer.effect(DurableStore, makePgStore(options))

  /**
   * The Redis store (`@effect/platform-node`'s `NodeRedis`). Keys start with
   * `prefix` (default `taskpool:`). Delays and backoffs keep milliseconds.
   *
   * @since 0.1.0
   */
  static readonly layerRedis = (
    options: RedisStoreOptions
  ): Layer.Layer<DurableStore, DurableStoreError> => Layer.effect(DurableStore, makeRedisStore(options))
}
