/**
 * The durable pool: `submit` stores a task, workers in any process run it,
 * and its result, with its attempts, can be awaited from any process.
 * `layerProducer` submits only; `layerWorker` also runs workers for its
 * definitions. Both need a `DurableStore` layer.
 *
 * @since 0.1.0
 */
import type { TaskResult } from "@taskpool/core"
import { PoolClosedError, TaskPoolConfigError } from "@taskpool/core"
import { readDuration, show } from "@taskpool/core/internal"
import { Clock, Context, Deferred, Duration, Effect, Exit, Layer, Schedule, Schema, Scope, Stream } from "effect"
import { PersistedQueue } from "effect/persistence"
import type { DurableWorkerConfigInput } from "./Config.js"
import { decodeWorkerConfig } from "./Config.js"
import { DurableStore } from "./DurableStore.js"
import type { DurableStoreError } from "./errors.js"
import { storeError, TaskNotFailedError } from "./errors.js"
import type { StateCounts, TaskRecord } from "./internal/records.js"
import { elementId, isEnded, toTaskResult } from "./internal/records.js"
import { QueueElementSchema, startWorkers } from "./internal/worker.js"
import type { AnyTaskDefinition, TaskDefinition } from "./TaskDefinition.js"

/**
 * A stored task: its id, and its result once it ends, awaitable from any
 * process (`DurableTaskPool.handle` rebuilds a handle from an id). Errors come
 * back in their stored (JSON) form.
 *
 * @since 0.1.0
 */
export interface DurableTaskHandle<A> {
  readonly taskId: string
  readonly result: Effect.Effect<TaskResult<A, unknown>>
}

/**
 * `submit`'s options. A second submit with the same `idempotencyKey` stores
 * nothing and returns the first task's handle. `delay` holds the first
 * attempt back (to the store's resolution).
 *
 * @since 0.1.0
 */
export interface SubmitOptions {
  readonly idempotencyKey?: string | undefined
  readonly delay?: Duration.Input | undefined
}

/**
 * Counts of the store's tasks by state, across every process.
 *
 * @since 0.1.0
 */
export interface DurableTaskPoolStats extends StateCounts {
  readonly total: number
}

/**
 * The pool's operations.
 *
 * @since 0.1.0
 */
export interface DurableTaskPoolService {
  /** Stores the task; returns once it is stored. */
  readonly submit: <P, A, E, R>(
    definition: TaskDefinition<P, A, E, R>,
    payload: P,
    options?: SubmitOptions
  ) => Effect.Effect<DurableTaskHandle<A>, PoolClosedError | DurableStoreError | Schema.SchemaError>
  /** A handle for a task submitted anywhere, by its id. */
  readonly handle: <P, A, E, R>(definition: TaskDefinition<P, A, E, R>, taskId: string) => DurableTaskHandle<A>
  /** Failed results across all processes, oldest first; it follows new failures until interrupted. */
  readonly failures: Stream.Stream<TaskResult<unknown, unknown>, DurableStoreError>
  /** A failed task back to the queue with a fresh retry budget. */
  readonly requeue: (taskId: string) => Effect.Effect<DurableTaskHandle<unknown>, TaskNotFailedError | DurableStoreError>
  readonly stats: Effect.Effect<DurableTaskPoolStats, DurableStoreError>
}

/**
 * What both layers take: the definitions this process submits or runs.
 *
 * @since 0.1.0
 */
export interface ProducerOptions {
  readonly definitions: ReadonlyArray<AnyTaskDefinition>
}

/**
 * `layerWorker`'s options: the definitions, and the worker config fields.
 *
 * @since 0.1.0
 */
export type WorkerOptions<Defs extends ReadonlyArray<AnyTaskDefinition> = ReadonlyArray<AnyTaskDefinition>> =
  & { readonly definitions: Defs }
  & DurableWorkerConfigInput

/** How long a waiter trusts the store's announcements before it reads the record itself. */
const pollFallback = Duration.seconds(1)

const SubmitOptionsSchema = Schema.Struct({
  idempotencyKey: Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))),
  delay: Schema.optional(
    Schema.Unknown.check(Schema.makeFilter((input) =>
      input === undefined || readDuration(input) !== undefined || `expected a duration >= 0, got ${show(input)}`
    ))
  )
})

const decodeSubmitOptions = Schema.decodeUnknownEffect(SubmitOptionsSchema)

/** Readers waiting for tasks to end, woken by the store's announcements. */
class Waiters {
  private readonly byTask = new Map<string, Set<Deferred.Deferred<void>>>()
  private readonly anyEnding = new Set<Deferred.Deferred<void>>()

  wake(taskId: string): void {
    const waiting = this.byTask.get(taskId)
    if (waiting !== undefined) {
      this.byTask.delete(taskId)
      for (const deferred of waiting) Deferred.doneUnsafe(deferred, Effect.void)
    }
    for (const deferred of this.anyEnding) Deferred.doneUnsafe(deferred, Effect.void)
    this.anyEnding.clear()
  }

  /** Waits until `taskId` (or, with `undefined`, any task) is announced, or `pollFallback` passes. */
  wait(taskId: string | undefined, check: Effect.Effect<boolean, DurableStoreError>): Effect.Effect<boolean, DurableStoreError> {
    return Effect.acquireUseRelease(
      Effect.sync(() => {
        const deferred = Deferred.makeUnsafe<void>()
        if (taskId === undefined) this.anyEnding.add(deferred)
        else {
          const waiting = this.byTask.get(taskId) ?? new Set()
          waiting.add(deferred)
          this.byTask.set(taskId, waiting)
        }
        return deferred
      }),
      // Registered before the check, so an ending between the two is not missed.
      (deferred) =>
        Effect.flatMap(check, (done) =>
          done ? Effect.succeed(true) : Effect.as(Effect.timeoutOption(Deferred.await(deferred), pollFallback), false)),
      (deferred) =>
        Effect.sync(() => {
          if (taskId === undefined) return void this.anyEnding.delete(deferred)
          const waiting = this.byTask.get(taskId)
          waiting?.delete(deferred)
          if (waiting?.size === 0) this.byTask.delete(taskId)
        })
    )
  }
}

const makePool = Effect.fnUntraced(function*(definitions: ReadonlyArray<AnyTaskDefinition>) {
  const store = yield* DurableStore
  const scope = yield* Effect.scope
  const byName = new Map<string, AnyTaskDefinition>()
  for (const definition of definitions) {
    const known = byName.get(definition.name)
    if (known !== undefined && known !== definition) {
      return yield* new TaskPoolConfigError({
        message: `Invalid definitions: two definitions are named ${show(definition.name)}; a name is a queue, so it must be unique`,
        fields: ["definitions"]
      })
    }
    byName.set(definition.name, definition)
  }
  const factory = yield* PersistedQueue.makeFactory.pipe(
    Effect.provideService(PersistedQueue.PersistedQueueStore, store.queue)
  )
  const queues = new Map<string, PersistedQueue.PersistedQueue<typeof QueueElementSchema.Type>>()
  const queueOf = Effect.fnUntraced(function*(name: string) {
    const known = queues.get(name)
    if (known !== undefined) return known
    const queue = yield* factory.make({ name, schema: QueueElementSchema })
    queues.set(name, queue)
    return queue
  })
  const enqueue = (delay: Duration.Input | undefined) => (record: TaskRecord) =>
    queueOf(record.name).pipe(
      Effect.flatMap((queue) =>
        queue.offer({ taskId: record.taskId, generation: record.generation }, {
          id: elementId(record.taskId, record.generation),
          delay
        })
      ),
      // The element is our own two-field struct, so only the store can fail here.
      Effect.mapError(storeError("enqueue a task")),
      Effect.asVoid
    )

  const waiters = new Waiters()
  // Subscribed before the layer is up, so no ending after it is missed; on a
  // lost connection it resubscribes, and waiters read the records meanwhile.
  const follow = (endings: Stream.Stream<string, DurableStoreError>) =>
    Stream.runForEach(endings, (taskId) => Effect.sync(() => waiters.wake(taskId)))
  const resubscribe = Effect.scoped(Effect.flatMap(store.endings, follow))
  const first = yield* Effect.result(Scope.provide(store.endings, scope))
  yield* (first._tag === "Success" ? follow(first.success) : resubscribe).pipe(
    Effect.catchCause((cause) => Effect.logWarning("taskpool durable: lost the store's endings; resubscribing", cause)),
    Effect.andThen(resubscribe.pipe(
      Effect.catchCause((cause) => Effect.logWarning("taskpool durable: lost the store's endings; resubscribing", cause)),
      Effect.repeat(Schedule.spaced(Duration.seconds(1)))
    )),
    Effect.forkIn(scope)
  )
  let closed = false
  yield* Effect.addFinalizer(() => Effect.sync(() => {
    closed = true
  }))

  const resultOf = <A>(definition: AnyTaskDefinition | undefined, record: TaskRecord): Effect.Effect<TaskResult<A, unknown>> => {
    if (record.state !== "succeeded" || definition?.successJson === undefined) {
      return Effect.succeed(toTaskResult(record, record.value as A))
    }
    return Schema.decodeUnknownEffect(definition.successJson)(record.value).pipe(
      Effect.map((value) => toTaskResult(record, value as A)),
      Effect.orDie
    )
  }

  const awaitEnded = (taskId: string): Effect.Effect<TaskRecord> => {
    let ended: TaskRecord | undefined
    const check = store.get(taskId).pipe(
      Effect.flatMap((record) => {
        if (record === undefined) return Effect.die(new Error(`DurableTaskPool: no task ${show(taskId)} in the store`))
        if (isEnded(record.state)) ended = record
        return Effect.succeed(ended !== undefined)
      })
    )
    const loop: Effect.Effect<TaskRecord, DurableStoreError> = Effect.flatMap(
      waiters.wait(taskId, check),
      (done) => done && ended !== undefined ? Effect.succeed(ended) : loop
    )
    // The result has no error channel: a store outage is waited out.
    return loop.pipe(
      Effect.tapError((error) => Effect.logWarning(`taskpool durable: waiting for ${taskId}: ${error.message}`)),
      Effect.retry(Schedule.min([Schedule.exponential(Duration.millis(100)), Schedule.spaced(Duration.seconds(5))])),
      Effect.orDie
    )
  }

  const handle = <A>(definition: AnyTaskDefinition | undefined, taskId: string): DurableTaskHandle<A> => ({
    taskId,
    result: Effect.flatMap(awaitEnded(taskId), (record) => resultOf<A>(definition ?? byName.get(record.name), record))
  })

  const submit = <P, A, E, R>(definition: TaskDefinition<P, A, E, R>, payload: P, options?: SubmitOptions) =>
    Effect.gen(function*() {
      if (closed) {
        return yield* new PoolClosedError({ message: `submit(${definition.name}): the durable pool has closed` })
      }
      const checked = options === undefined ? undefined : yield* decodeSubmitOptions(options)
      const encoded = yield* Schema.encodeUnknownEffect(definition.payloadJson)(payload)
      const createdAtMs = yield* Clock.currentTimeMillis
      const record = yield* store.create({
        taskId: crypto.randomUUID(),
        name: definition.name,
        payload: encoded,
        createdAtMs,
        ...(checked?.idempotencyKey === undefined ? {} : { idempotencyKey: checked.idempotencyKey })
      }, enqueue(checked?.delay as Duration.Input | undefined))
      return handle<A>(definition as AnyTaskDefinition, record.taskId)
    })

  const failures: Stream.Stream<TaskResult<unknown, unknown>, DurableStoreError> = Stream.suspend(() => {
    let cursor = 0
    let page: ReadonlyArray<TaskRecord> = []
    const check = Effect.map(Effect.suspend(() => store.failedAfter(cursor, 100)), (records) => {
      page = records
      return records.length > 0
    })
    const nextPage: Effect.Effect<ReadonlyArray<TaskRecord>, DurableStoreError> = Effect.flatMap(
      Effect.suspend(() => waiters.wait(undefined, check)),
      (found) => {
        if (!found) return nextPage
        cursor = page[page.length - 1]!.failedSeq ?? cursor
        return Effect.succeed(page)
      }
    )
    return Stream.fromEffectRepeat(nextPage).pipe(
      Stream.flattenIterable,
      Stream.mapEffect((record) => resultOf<unknown>(byName.get(record.name), record))
    )
  })

  const requeue = (taskId: string) =>
    Effect.gen(function*() {
      const { record, requeued } = yield* store.requeue(taskId, enqueue(undefined))
      if (!requeued || record === undefined) {
        return yield* new TaskNotFailedError({
          message: record === undefined
            ? `requeue: no task ${show(taskId)} in the store`
            : `requeue: task ${show(taskId)} is ${record.state}, not failed`,
          taskId,
          state: record?.state ?? "missing"
        })
      }
      return handle<unknown>(byName.get(record.name), taskId)
    })

  const stats = Effect.map(store.counts, (counts): DurableTaskPoolStats => ({
    ...counts,
    total: counts.queued + counts.running + counts.retrying + counts.succeeded + counts.failed
  }))

  const service: DurableTaskPoolService = {
    submit,
    handle: (definition, taskId) => handle(definition as AnyTaskDefinition, taskId),
    failures,
    requeue,
    stats
  }
  return { service, store, scope }
})

/**
 * The durable pool service, with its accessors and layers.
 *
 * @since 0.1.0
 */
export class DurableTaskPool extends Context.Service<DurableTaskPool, DurableTaskPoolService>()(
  "@taskpool/durable/DurableTaskPool"
) {
  /**
   * Submit only: no workers in this process.
   *
   * @since 0.1.0
   */
  static readonly layerProducer = (options: ProducerOptions): Layer.Layer<DurableTaskPool, TaskPoolConfigError, DurableStore> =>
    Layer.effect(DurableTaskPool, Effect.map(makePool(options.definitions), ({ service }) => service))

  /**
   * Submit, and run workers for `definitions` in this process. Closing the
   * layer's scope stops claiming at once and lets running attempts finish
   * (safe close), or interrupts them after `shutdownTimeoutMs` (limited
   * close); interrupted attempts go back to the store, uncounted.
   *
   * @since 0.1.0
   */
  static readonly layerWorker = <Defs extends ReadonlyArray<AnyTaskDefinition>>(
    options: WorkerOptions<Defs>
  ): Layer.Layer<DurableTaskPool, TaskPoolConfigError, DurableStore | RequirementsOf<Defs[number]>> =>
    Layer.effect(
      DurableTaskPool,
      Effect.gen(function*() {
        const { definitions, ...input } = options
        const config = yield* decodeWorkerConfig(input)
        const { scope, service, store } = yield* makePool(definitions)
        const services = yield* Effect.context<RequirementsOf<Defs[number]>>()
        const workersScope = yield* Scope.fork(scope, "sequential")
        const close = yield* startWorkers({ store, definitions, config, scope: workersScope }).pipe(
          Effect.provideContext(services)
        )
        yield* Effect.addFinalizer(() => close.pipe(Effect.andThen(Scope.close(workersScope, Exit.void))))
        return service
      })
    )

  /**
   * Submits a task to the pool in context.
   *
   * @since 0.1.0
   */
  static readonly submit = <P, A, E, R>(definition: TaskDefinition<P, A, E, R>, payload: P, options?: SubmitOptions) =>
    DurableTaskPool.use((pool) => pool.submit(definition, payload, options))

  /**
   * A handle for a task by id, from the pool in context.
   *
   * @since 0.1.0
   */
  static readonly handle = <P, A, E, R>(definition: TaskDefinition<P, A, E, R>, taskId: string) =>
    DurableTaskPool.use((pool) => Effect.succeed(pool.handle(definition, taskId)))

  /**
   * Failed results across all processes, oldest first, following new ones.
   *
   * @since 0.1.0
   */
  static readonly failures: Stream.Stream<TaskResult<unknown, unknown>, DurableStoreError, DurableTaskPool> = Stream
    .unwrap(DurableTaskPool.use((pool) => Effect.succeed(pool.failures)))

  /**
   * Puts a failed task back with a fresh retry budget.
   *
   * @since 0.1.0
   */
  static readonly requeue = (taskId: string) => DurableTaskPool.use((pool) => pool.requeue(taskId))

  /**
   * Counts by state, read from the store.
   *
   * @since 0.1.0
   */
  static readonly stats = DurableTaskPool.use((pool) => pool.stats)
}

/** The services a definition's `execute` needs. */
export type RequirementsOf<D> = D extends TaskDefinition<any, any, any, infer R> ? R : never
