/**
 * The Redis store against a real server at `REDIS_URL` (`.ci/run` starts
 * one): the shared store contract, then what only Redis can get wrong. Each
 * test gets a key prefix of its own, and the file deletes its keys at the end.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createClient } from "redis"
import { afterAll } from "vitest"
import { DurableStore } from "../src/DurableStore.js"
import type { DurableStoreService, TaskRecord } from "../src/DurableStore.js"
import { DurableStoreError, storeError } from "../src/errors.js"
import type { AttemptEnd, NewTask } from "../src/internal/records.js"
import { storeContract } from "./storeContract.js"

const url = process.env["REDIS_URL"]
if (url === undefined) {
  console.log("Redis store tests skipped: REDIS_URL is not set (.ci/run starts a Redis server and sets it).")
}

const filePrefix = `taskpool-test:${process.pid}-${Date.now()}:`
let stores = 0
const layer = () => DurableStore.layerRedis({ url: url ?? "", prefix: `${filePrefix}${++stores}:` })

describe.skipIf(url === undefined)("Redis store", () => {
  afterAll(async () => {
    const client = createClient({ url: url ?? "" })
    await client.connect()
    for await (const keys of client.scanIterator({ MATCH: `${filePrefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys)
    }
    await client.close()
  })

  storeContract({ name: "Redis", layer, transactional: true })

  const test = (name: string, body: (store: DurableStoreService) => Effect.Effect<void, unknown>) =>
    it.live(name, () => DurableStore.use(body).pipe(Effect.provide(layer())))

  const newTask = (taskId: string, payload: unknown = { n: taskId }): NewTask => ({
    taskId,
    name: "redis",
    payload,
    createdAtMs: 1_700_000_000_123
  })
  const ignore = () => Effect.void
  const refuse = () => Effect.fail(storeError("enqueue")(new Error("refused")))
  const ending = (state: AttemptEnd["state"], attemptCount: number, value?: unknown): AttemptEnd => ({
    state,
    attempts: Array.from({ length: attemptCount }, (_, i) => ({
      number: i + 1,
      success: state === "succeeded" && i + 1 === attemptCount,
      startedAtMs: i,
      endedAtMs: i + 1
    })),
    attemptCount,
    ...(value === undefined ? {} : { value }),
    ...(state === "failed"
      ? { failure: { errorCode: "Boom", errorMessage: "boom", kind: "fail", error: { codes: [], at: [[]] } } }
      : {}),
    ...(state === "retrying" ? {} : { completedAtMs: 1_700_000_009_999 })
  })

  // The scripts decode and re-encode records with cjson, which would turn
  // `[]` into `{}` and round numbers to 14 digits.
  test("records keep their JSON exactly through every script", (store) =>
    Effect.gen(function*() {
      const payload = { list: [], nested: [[], [{}], [[]]], big: 2 ** 53 - 1, tiny: 1e-7, third: 1 / 3, text: "a/é\u2028" }
      const created = yield* store.create(newTask("t1", payload), ignore)
      const check = (expected: TaskRecord | undefined) =>
        Effect.map(store.get("t1"), (record) => {
          assert.deepStrictEqual(record, expected)
          assert.strictEqual(JSON.stringify(record?.payload), JSON.stringify(payload))
        })

      yield* check(yield* store.start("t1", 0, 1))
      yield* store.release("t1", 0, 1)
      yield* check({ ...created, state: "queued", claim: 1, attemptCount: 0 })
      yield* store.start("t1", 0, 1)
      yield* store.finish("t1", 0, 1, ending("failed", 1))
      const { state: _, ...failed } = ending("failed", 1)
      const failedSeq = (yield* store.get("t1"))?.failedSeq
      yield* check({ ...created, ...failed, state: "failed", claim: 1, ...(failedSeq === undefined ? {} : { failedSeq }) })
      const { record: requeued } = yield* store.requeue("t1", ignore)
      yield* check({ ...created, generation: 1 })
      assert.deepStrictEqual(requeued, { ...created, generation: 1 })

      yield* store.start("t1", 1, 1)
      const { state: __, ...succeeded } = ending("succeeded", 1, { rows: [], total: 2 ** 53 - 1 })
      assert.isTrue(yield* store.finish("t1", 1, 1, ending("succeeded", 1, { rows: [], total: 2 ** 53 - 1 })))
      yield* check({ ...created, ...succeeded, state: "succeeded", generation: 1, claim: 1 })
    }))

  // The counts and the failed set are kept by the scripts, not computed, so
  // every transition (and every rollback) must move them exactly.
  test("counts and the failed set stay exact through every transition", (store) =>
    Effect.gen(function*() {
      for (const taskId of ["a", "b", "c", "d", "e", "f"]) yield* store.create(newTask(taskId), ignore)
      yield* store.start("a", 0, 1)
      yield* store.start("a", 0, 2) // a lapsed lock taken over: still one running task
      yield* store.start("b", 0, 1)
      yield* store.finish("b", 0, 1, ending("retrying", 1))
      yield* store.start("c", 0, 1)
      yield* store.finish("c", 0, 1, ending("failed", 1))
      yield* store.finish("c", 0, 1, ending("succeeded", 1, "late")) // same attempt, written again
      yield* store.start("d", 0, 1)
      yield* store.finish("d", 0, 1, ending("failed", 1))
      yield* store.start("e", 0, 1)
      yield* store.finish("e", 0, 1, ending("failed", 1))
      yield* store.requeue("e", ignore)
      yield* store.start("f", 0, 1)
      yield* store.release("f", 0, 1)

      yield* Effect.flip(store.create(newTask("g"), refuse))
      yield* Effect.flip(store.requeue("d", refuse))
      assert.deepStrictEqual(yield* store.counts, { queued: 2, running: 1, retrying: 1, succeeded: 1, failed: 1 })
      assert.deepStrictEqual((yield* store.failedAfter(0, 10)).map((record) => record.taskId), ["d"])
    }))

  it.live("an unreachable server is a DurableStoreError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(DurableStore.layerRedis({ url: "redis://127.0.0.1:1" })))
      assert.instanceOf(error, DurableStoreError)
      assert.strictEqual(error.operation, "connect to Redis")
    }))
})
