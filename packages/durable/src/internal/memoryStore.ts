/**
 * The in-memory store: PersistedQueue's memory store for the queue, and maps
 * for the records. One process only; it follows Effect's `Clock`.
 */
import { Context, Effect, Layer, PubSub, Stream } from "effect"
import { PersistedQueue } from "effect/persistence"
import type { DurableStoreService } from "../DurableStore.js"
import type { DurableStoreError } from "../errors.js"
import type { StateCounts, TaskRecord, TaskState } from "./records.js"
import { isEnded } from "./records.js"

export const makeMemoryStore = Effect.gen(function*() {
  const queueContext = yield* Layer.build(PersistedQueue.layerStoreMemory)
  const queue = Context.get(queueContext, PersistedQueue.PersistedQueueStore)
  const records = new Map<string, TaskRecord>()
  const byKey = new Map<string, string>()
  const endings = yield* PubSub.unbounded<string>()
  let failedSeq = 0

  const set = (record: TaskRecord) => {
    records.set(record.taskId, record)
  }

  const service: DurableStoreService = {
    queue,
    create: (task, enqueue) =>
      Effect.suspend(() => {
        const existingId = task.idempotencyKey === undefined ? undefined : byKey.get(task.idempotencyKey)
        const existing = existingId === undefined ? undefined : records.get(existingId)
        const record: TaskRecord = existing ?? {
          ...task,
          state: "queued",
          generation: 0,
          attempts: [],
          attemptCount: 0,
          claim: 0
        }
        if (existing === undefined) {
          set(record)
          if (task.idempotencyKey !== undefined) byKey.set(task.idempotencyKey, task.taskId)
        }
        return record.state === "queued" ? Effect.as(enqueue(record), record) : Effect.succeed(record)
      }),
    get: (taskId) => Effect.sync(() => records.get(taskId)),
    start: (taskId, generation, claim) =>
      Effect.sync(() => {
        const record = records.get(taskId)
        if (record === undefined || record.generation !== generation || isEnded(record.state)) return undefined
        const started: TaskRecord = { ...record, state: "running", claim, attemptCount: record.attemptCount + 1 }
        set(started)
        return started
      }),
    finish: (taskId, generation, claim, end) =>
      Effect.suspend(() => {
        const record = records.get(taskId)
        if (record === undefined || record.generation !== generation || record.claim !== claim) {
          return Effect.succeed(false)
        }
        const { failure, value, completedAtMs, ...rest } = end
        set({
          ...record,
          ...rest,
          ...(value === undefined ? {} : { value }),
          ...(failure === undefined ? {} : { failure }),
          ...(completedAtMs === undefined ? {} : { completedAtMs }),
          ...(end.state === "failed" ? { failedSeq: ++failedSeq } : {})
        })
        return isEnded(end.state) ? Effect.as(PubSub.publish(endings, taskId), true) : Effect.succeed(true)
      }),
    release: (taskId, generation, claim) =>
      Effect.sync(() => {
        const record = records.get(taskId)
        if (
          record === undefined || record.generation !== generation || record.claim !== claim ||
          isEnded(record.state)
        ) return
        set({ ...record, state: "queued", attemptCount: record.attemptCount - 1 })
      }),
    requeue: (taskId, enqueue) =>
      Effect.suspend((): Effect.Effect<{ readonly record: TaskRecord | undefined; readonly requeued: boolean }, DurableStoreError> => {
        const record = records.get(taskId)
        if (record === undefined || record.state !== "failed") {
          return Effect.succeed({ record, requeued: false })
        }
        const { completedAtMs: _completed, failedSeq: _seq, failure: _failure, value: _value, ...kept } = record
        const next: TaskRecord = {
          ...kept,
          state: "queued",
          generation: record.generation + 1,
          attempts: [],
          attemptCount: 0,
          claim: 0
        }
        set(next)
        return Effect.as(enqueue(next), { record: next, requeued: true })
      }),
    failedAfter: (afterSeq, limit) =>
      Effect.sync(() =>
        [...records.values()]
          .filter((record) => record.state === "failed" && (record.failedSeq ?? 0) > afterSeq)
          .sort((a, b) => (a.failedSeq ?? 0) - (b.failedSeq ?? 0))
          .slice(0, limit)
      ),
    counts: Effect.sync(() => {
      const counts: Record<TaskState, number> = { queued: 0, running: 0, retrying: 0, succeeded: 0, failed: 0 }
      for (const record of records.values()) counts[record.state]++
      return counts as StateCounts
    }),
    endings: Effect.map(PubSub.subscribe(endings), Stream.fromSubscription)
  }
  return service
})
