/**
 * What every `DurableStore` must do, as one suite each store's test file runs
 * on a fresh store per test. The memory store is the reference.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import type { Layer, Scope } from "effect"
import { PersistedQueue } from "effect/persistence"
import type { DurableStoreService } from "../src/DurableStore.js"
import { DurableStore } from "../src/DurableStore.js"
import type { DurableStoreError } from "../src/errors.js"
import { storeError } from "../src/errors.js"
import type { AttemptEnd, NewTask, StoredAttempt, StoredFailure, TaskRecord } from "../src/internal/records.js"
import { elementId } from "../src/internal/records.js"

export interface StoreUnderTest {
  readonly name: string
  /** A fresh, empty store: each call is a store no other test sees. */
  readonly layer: () => Layer.Layer<DurableStore, DurableStoreError>
  /** `create` and `requeue` roll back when `enqueue` fails. */
  readonly transactional: boolean
}

const createdAtMs = 1_700_000_000_123

const newTask = (taskId: string, extra: Partial<NewTask> = {}): NewTask => ({
  taskId,
  name: "contract",
  payload: { n: taskId },
  createdAtMs,
  ...extra
})

const attempt = (number: number, success: boolean): StoredAttempt =>
  success
    ? { number, success, startedAtMs: 10 * number, endedAtMs: 10 * number + 5 }
    : { number, success, startedAtMs: 10 * number, endedAtMs: 10 * number + 5, errorCode: "Boom", errorMessage: "boom" }

const failure: StoredFailure = {
  errorCode: "Boom",
  errorMessage: "boom",
  kind: "fail",
  error: { _tag: "Boom", message: "boom", detail: { z: 1, a: [null, "\u0000"] } }
}

const retrying = (n: number): AttemptEnd => ({
  state: "retrying",
  attempts: Array.from({ length: n }, (_, i) => attempt(i + 1, false)),
  attemptCount: n
})

const succeeded = (n: number, value: unknown): AttemptEnd => ({
  state: "succeeded",
  attempts: [...retrying(n - 1).attempts, attempt(n, true)],
  attemptCount: n,
  value,
  completedAtMs: createdAtMs + 1000
})

const failed = (n: number): AttemptEnd => ({
  state: "failed",
  attempts: retrying(n).attempts,
  attemptCount: n,
  failure,
  completedAtMs: createdAtMs + 2000
})

/** An `enqueue` that records what it was given. */
const recorder = () => {
  const calls: Array<TaskRecord> = []
  const enqueue = (record: TaskRecord) =>
    Effect.sync(() => {
      calls.push(record)
    })
  return { calls, enqueue }
}

const ignore = () => Effect.void

/** Runs a task through `start` and `finish` under claim `end.attemptCount` of generation 0. */
const end = (store: DurableStoreService, taskId: string, ending: AttemptEnd) =>
  Effect.flatMap(store.start(taskId, 0, ending.attemptCount), () => store.finish(taskId, 0, ending.attemptCount, ending))

export const storeContract = (subject: StoreUnderTest): void => {
  describe(`${subject.name} store contract`, () => {
    const test = (name: string, body: (store: DurableStoreService) => Effect.Effect<void, unknown, Scope.Scope>) =>
      // scoped inside the store's layer: a subscription must end before its store closes
      it.live(name, () => DurableStore.use(body).pipe(Effect.scoped, Effect.provide(subject.layer())))

    test("create stores the task queued and get returns it exactly", (store) =>
      Effect.gen(function*() {
        // key order, NUL and lone surrogates survive only when the JSON text is kept as written
        const payload = { z: 1, a: [1.5, null, "x\u0000y", "\ud800", { b: true, a: "é" }], empty: {}, big: 2 ** 53 - 1 }
        const { calls, enqueue } = recorder()
        const record = yield* store.create(newTask("t1", { payload }), enqueue)
        const expected: TaskRecord = {
          taskId: "t1",
          name: "contract",
          payload,
          state: "queued",
          generation: 0,
          attempts: [],
          attemptCount: 0,
          claim: 0,
          createdAtMs
        }
        assert.deepStrictEqual(record, expected)
        assert.deepStrictEqual(calls, [expected])
        const got = yield* store.get("t1")
        assert.deepStrictEqual(got, expected)
        assert.strictEqual(JSON.stringify(got?.payload), JSON.stringify(payload))
        assert.strictEqual(yield* store.get("missing"), undefined)

        for (const [taskId, odd] of [["null", null], ["undefined", undefined], ["string", "s"], ["zero", 0]] as const) {
          yield* store.create(newTask(taskId, { payload: odd }), ignore)
          const stored = yield* store.get(taskId)
          assert.ok(stored !== undefined && "payload" in stored)
          assert.strictEqual(stored.payload, odd)
        }
      }))

    test("an idempotency key returns the first task, enqueued again only while it is queued", (store) =>
      Effect.gen(function*() {
        const { calls, enqueue } = recorder()
        const first = yield* store.create(newTask("first", { idempotencyKey: "k" }), enqueue)
        const again = yield* store.create(newTask("second", { idempotencyKey: "k", payload: "other" }), enqueue)
        assert.deepStrictEqual(again, first)
        assert.strictEqual(first.idempotencyKey, "k")
        assert.deepStrictEqual(calls.map((record) => record.taskId), ["first", "first"])
        assert.strictEqual(yield* store.get("second"), undefined)

        const running = yield* store.start("first", 0, 1)
        const third = yield* store.create(newTask("third", { idempotencyKey: "k" }), enqueue)
        assert.deepStrictEqual(third, running)
        assert.strictEqual(calls.length, 2)

        const other = yield* store.create(newTask("other", { idempotencyKey: "k2" }), enqueue)
        assert.strictEqual(other.taskId, "other")
      }))

    test("concurrent creates with one idempotency key store one task", (store) =>
      Effect.gen(function*() {
        const records = yield* Effect.forEach(
          Array.from({ length: 8 }, (_, i) => newTask(`c${i}`, { idempotencyKey: "same" })),
          (task) => store.create(task, ignore),
          { concurrency: "unbounded" }
        )
        const ids = new Set(records.map((record) => record.taskId))
        assert.strictEqual(ids.size, 1)
        assert.strictEqual((yield* store.counts).queued, 1)
      }))

    if (subject.transactional) {
      test("a failed enqueue rolls the create back", (store) =>
        Effect.gen(function*() {
          const refused = storeError("enqueue")(new Error("refused"))
          const error = yield* Effect.flip(store.create(newTask("t1", { idempotencyKey: "k" }), () => Effect.fail(refused)))
          assert.strictEqual(error, refused)
          assert.strictEqual(yield* store.get("t1"), undefined)
          const retried = yield* store.create(newTask("t2", { idempotencyKey: "k" }), ignore)
          assert.strictEqual(retried.taskId, "t2")
        }))

      test("a failed enqueue rolls the requeue back", (store) =>
        Effect.gen(function*() {
          yield* store.create(newTask("t1"), ignore)
          yield* end(store, "t1", failed(1))
          const before = yield* store.get("t1")
          const refused = storeError("enqueue")(new Error("refused"))
          const error = yield* Effect.flip(store.requeue("t1", () => Effect.fail(refused)))
          assert.strictEqual(error, refused)
          assert.deepStrictEqual(yield* store.get("t1"), before)
        }))
    }

    test("start marks the attempt running, unless the task ended or is of another generation", (store) =>
      Effect.gen(function*() {
        const created = yield* store.create(newTask("t1"), ignore)
        assert.strictEqual(yield* store.start("t1", 1, 1), undefined)
        assert.strictEqual(yield* store.start("missing", 0, 1), undefined)
        const started = yield* store.start("t1", 0, 1)
        assert.deepStrictEqual(started, { ...created, state: "running", claim: 1, attemptCount: 1 })
        assert.deepStrictEqual(yield* store.get("t1"), started)
        // a second claim of the same generation (a lapsed lock) takes over
        const taken = yield* store.start("t1", 0, 2)
        assert.deepStrictEqual(taken, { ...created, state: "running", claim: 2, attemptCount: 2 })
        assert.isTrue(yield* store.finish("t1", 0, 2, succeeded(2, "done")))
        const ended = yield* store.get("t1")
        assert.strictEqual(ended?.state, "succeeded")
        // an ended task is not started again, nor counted, nor claimed
        assert.strictEqual(yield* store.start("t1", 0, 3), undefined)
        assert.deepStrictEqual(yield* store.get("t1"), ended)
      }))

    test("start counts the attempts that reached it and records the claim that started them", (store) =>
      Effect.gen(function*() {
        const created = yield* store.create(newTask("t1"), ignore)
        const first = yield* store.start("t1", 0, 1)
        assert.deepStrictEqual(first, { ...created, state: "running", claim: 1, attemptCount: 1 })
        assert.isTrue(yield* store.finish("t1", 0, 1, retrying(1)))

        // claims 2 and 3 died before they reached start: the queue counted them, the record does not
        const second = yield* store.start("t1", 0, 4)
        assert.deepStrictEqual(second, {
          ...created,
          state: "running",
          attempts: retrying(1).attempts,
          claim: 4,
          attemptCount: 2
        })
        assert.deepStrictEqual(yield* store.get("t1"), second)

        // the count follows the record, not the claim number: a first start under a high claim is attempt 1
        yield* store.create(newTask("t2"), ignore)
        const late = yield* store.start("t2", 0, 7)
        assert.strictEqual(late?.claim, 7)
        assert.strictEqual(late?.attemptCount, 1)
      }))

    test("a later start fences out the finish and release of the earlier claim", (store) =>
      Effect.gen(function*() {
        yield* store.create(newTask("t1"), ignore)
        yield* store.start("t1", 0, 1)
        // the lock of claim 1 lapsed and claim 2 took the task over
        const taken = yield* store.start("t1", 0, 2)
        assert.deepStrictEqual(taken && { claim: taken.claim, attemptCount: taken.attemptCount }, {
          claim: 2,
          attemptCount: 2
        })
        assert.isFalse(yield* store.finish("t1", 0, 1, succeeded(1, "stale")))
        assert.isFalse(yield* store.finish("t1", 0, 1, failed(1)))
        yield* store.release("t1", 0, 1)
        assert.deepStrictEqual(yield* store.get("t1"), taken)

        // the fence is the claim, not the attempt count: attempt 2's count does not open it
        yield* store.create(newTask("t2"), ignore)
        const claimed = yield* store.start("t2", 0, 5)
        assert.strictEqual(claimed?.attemptCount, 1)
        assert.isFalse(yield* store.finish("t2", 0, 1, retrying(1)))
        yield* store.release("t2", 0, 1)
        assert.deepStrictEqual(yield* store.get("t2"), claimed)

        // the current claim's end applies
        assert.isTrue(yield* store.finish("t1", 0, 2, failed(2)))
        const ended = yield* store.get("t1")
        assert.deepStrictEqual(ended, {
          ...taken!,
          state: "failed",
          attempts: failed(2).attempts,
          failure,
          completedAtMs: createdAtMs + 2000,
          failedSeq: ended?.failedSeq ?? -1
        })
        assert.isTrue(yield* store.finish("t2", 0, 5, retrying(1)))
        assert.deepStrictEqual(yield* store.get("t2"), { ...claimed!, state: "retrying", attempts: retrying(1).attempts })
      }))

    test("finish writes the attempt's end, and nothing when fenced out", (store) =>
      Effect.gen(function*() {
        yield* store.create(newTask("t1"), ignore)
        yield* store.start("t1", 0, 1)
        const taken = yield* store.start("t1", 0, 2)
        assert.isFalse(yield* store.finish("t1", 0, 1, failed(1)))
        assert.isFalse(yield* store.finish("t1", 1, 2, failed(2)))
        assert.deepStrictEqual(yield* store.get("t1"), taken)

        assert.isTrue(yield* store.finish("t1", 0, 2, retrying(2)))
        const retried = yield* store.get("t1")
        assert.deepStrictEqual(retried, { ...taken!, state: "retrying", attempts: retrying(2).attempts })

        // a JSON null value is kept as null, not dropped
        assert.isTrue(yield* end(store, "t1", succeeded(3, null)))
        assert.deepStrictEqual(yield* store.get("t1"), {
          ...taken!,
          state: "succeeded",
          attempts: succeeded(3, null).attempts,
          attemptCount: 3,
          claim: 3,
          value: null,
          completedAtMs: createdAtMs + 1000
        })
      }))

    test("failed ends take increasing failure numbers; failedAfter pages them oldest first", (store) =>
      Effect.gen(function*() {
        for (const taskId of ["a", "b", "c", "d", "e"]) yield* store.create(newTask(taskId), ignore)
        yield* end(store, "c", failed(1))
        yield* end(store, "e", retrying(1))
        yield* end(store, "a", failed(2))
        yield* end(store, "b", succeeded(1, { ok: true }))
        yield* end(store, "d", failed(1))

        const all = yield* store.failedAfter(0, 10)
        assert.deepStrictEqual(all.map((record) => record.taskId), ["c", "a", "d"])
        const seqs = all.map((record) => record.failedSeq ?? 0)
        assert.isTrue(seqs[0]! > 0 && seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!)
        assert.deepStrictEqual(all[1], {
          ...newTask("a"),
          state: "failed",
          generation: 0,
          attempts: failed(2).attempts,
          attemptCount: 2,
          claim: 2,
          failure,
          completedAtMs: createdAtMs + 2000,
          failedSeq: seqs[1]!
        })
        assert.strictEqual((yield* store.get("e"))?.failedSeq, undefined)
        assert.strictEqual((yield* store.get("b"))?.failedSeq, undefined)

        assert.deepStrictEqual((yield* store.failedAfter(seqs[0]!, 1)).map((record) => record.taskId), ["a"])
        assert.deepStrictEqual((yield* store.failedAfter(seqs[0]!, 5)).map((record) => record.taskId), ["a", "d"])
        assert.deepStrictEqual(yield* store.failedAfter(seqs[2]!, 5), [])
      }))

    test("release queues the task again without counting the attempt", (store) =>
      Effect.gen(function*() {
        yield* store.create(newTask("t1"), ignore)
        yield* end(store, "t1", retrying(1))
        const running = yield* store.start("t1", 0, 2)
        assert.strictEqual(running?.attemptCount, 2)
        yield* store.release("t1", 0, 2)
        // the attempt is not counted; the claim stays
        const released = yield* store.get("t1")
        assert.deepStrictEqual(released, { ...running!, state: "queued", claim: 2, attemptCount: 1 })

        // the next start is attempt 2 again
        const again = yield* store.start("t1", 0, 3)
        assert.deepStrictEqual(again, { ...running!, claim: 3, attemptCount: 2 })

        // stale: another generation, or a claim that is no longer the latest
        yield* store.release("t1", 1, 3)
        yield* store.release("t1", 0, 2)
        yield* store.release("t1", 0, 1)
        assert.deepStrictEqual(yield* store.get("t1"), again)

        // an attempt that already ended is not undone
        assert.isTrue(yield* store.finish("t1", 0, 3, succeeded(2, "v")))
        const ended = yield* store.get("t1")
        yield* store.release("t1", 0, 3)
        assert.deepStrictEqual(yield* store.get("t1"), ended)
        assert.strictEqual(ended?.attemptCount, 2)

        // nor a failed one
        yield* store.create(newTask("t2"), ignore)
        yield* end(store, "t2", failed(1))
        const failedRecord = yield* store.get("t2")
        yield* store.release("t2", 0, 1)
        assert.deepStrictEqual(yield* store.get("t2"), failedRecord)
      }))

    test("requeue puts only a failed task back, with a fresh budget, and enqueues it", (store) =>
      Effect.gen(function*() {
        const { calls, enqueue } = recorder()
        assert.deepStrictEqual(yield* store.requeue("missing", enqueue), { record: undefined, requeued: false })
        const queued = yield* store.create(newTask("q"), ignore)
        assert.deepStrictEqual(yield* store.requeue("q", enqueue), { record: queued, requeued: false })

        const created = yield* store.create(newTask("t1", { idempotencyKey: "k" }), ignore)
        yield* end(store, "t1", failed(3))
        const failedRecord = yield* store.get("t1")
        assert.deepStrictEqual(failedRecord && [failedRecord.claim, failedRecord.attemptCount], [3, 3])
        const result = yield* store.requeue("t1", enqueue)
        const fresh: TaskRecord = { ...created, generation: 1 }
        assert.deepStrictEqual(result, { record: fresh, requeued: true })
        assert.deepStrictEqual(calls, [fresh])
        assert.deepStrictEqual(yield* store.get("t1"), fresh)
        assert.deepStrictEqual(yield* store.failedAfter(0, 10), [])
        assert.deepStrictEqual(yield* store.requeue("t1", enqueue), { record: fresh, requeued: false })

        // the old generation's claims are fenced out; the new generation counts from 1 again
        assert.strictEqual(yield* store.start("t1", 0, 4), undefined)
        assert.isFalse(yield* store.finish("t1", 0, 3, succeeded(3, "stale")))
        yield* store.release("t1", 0, 3)
        assert.deepStrictEqual(yield* store.get("t1"), fresh)
        assert.deepStrictEqual(yield* store.start("t1", 1, 1), { ...fresh, state: "running", claim: 1, attemptCount: 1 })
        yield* store.finish("t1", 1, 1, failed(1))
        assert.deepStrictEqual((yield* store.failedAfter(0, 10)).map((record) => record.generation), [1])
      }))

    test("counts has every state", (store) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* store.counts, { queued: 0, running: 0, retrying: 0, succeeded: 0, failed: 0 })
        for (const taskId of ["q1", "q2", "r", "y", "s", "f"]) yield* store.create(newTask(taskId), ignore)
        yield* store.start("r", 0, 1)
        yield* end(store, "y", retrying(1))
        yield* end(store, "s", succeeded(1, 1))
        yield* end(store, "f", failed(1))
        assert.deepStrictEqual(yield* store.counts, { queued: 2, running: 1, retrying: 1, succeeded: 1, failed: 1 })
      }))

    test("endings announces the tasks that end after subscribing", (store) =>
      Effect.gen(function*() {
        for (const taskId of ["before", "retry", "ok", "ko", "stale"]) yield* store.create(newTask(taskId), ignore)
        yield* end(store, "before", succeeded(1, 1))
        const endings = yield* store.endings
        const collected = yield* Effect.forkChild(Stream.runCollect(Stream.take(endings, 2)))
        yield* end(store, "retry", retrying(1))
        yield* store.start("stale", 0, 2)
        assert.isFalse(yield* store.finish("stale", 0, 1, succeeded(1, 1)))
        yield* end(store, "ok", succeeded(1, "v"))
        yield* end(store, "ko", failed(1))
        const ids = yield* Fiber.join(collected).pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(ids, ["ok", "ko"])
      }))

    test("an element offered by enqueue is taken from the queue", (store) =>
      Effect.gen(function*() {
        const factory = yield* PersistedQueue.makeFactory.pipe(
          Effect.provideService(PersistedQueue.PersistedQueueStore, store.queue)
        )
        const queue = yield* factory.make({
          name: "contract",
          schema: Schema.Struct({ taskId: Schema.String, generation: Schema.Number })
        })
        const enqueue = (record: TaskRecord) =>
          queue.offer({ taskId: record.taskId, generation: record.generation }, {
            id: elementId(record.taskId, record.generation)
          }).pipe(Effect.asVoid, Effect.mapError(storeError("enqueue")))
        yield* store.create(newTask("t1", { idempotencyKey: "k" }), enqueue)
        const taken = yield* queue.take((value, meta) => Effect.succeed({ value, id: meta.id, attempts: meta.attempts }))
          .pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(taken, { value: { taskId: "t1", generation: 0 }, id: elementId("t1", 0), attempts: 1 })
      }))
  })
}
