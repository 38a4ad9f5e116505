import { assert, describe, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Exit, Fiber, Layer, Redacted, Scope, Stream, String } from "effect"
import { DurableStore } from "../src/DurableStore.js"
import { DurableStoreError } from "../src/errors.js"
import { freshDatabase } from "./pgServer.js"
import { storeContract } from "./storeContract.js"

const url = await freshDatabase()
let tables = 0
const freshTable = () => `tasks_${++tables}`

storeContract({
  name: "PostgreSQL",
  // a table set of its own per test, in this file's own database
  layer: () => DurableStore.layerPg({ url, tableName: freshTable() }),
  transactional: true
})

describe("PostgreSQL store", () => {
  it.live("takes the user's client layer, and its name transforms leave JSON keys alone", () =>
    Effect.gen(function*() {
      const store = yield* DurableStore
      const payload = { snake_case: { camelCase: [1] } }
      yield* store.create({ taskId: "t1", name: "n", payload, createdAtMs: 1 }, () => Effect.void)
      assert.deepStrictEqual((yield* store.get("t1"))?.payload, payload)
    }).pipe(
      Effect.provide(DurableStore.layerPg({
        tableName: freshTable(),
        client: PgClient.layer({
          url: Redacted.make(url),
          transformResultNames: String.snakeToCamel,
          transformQueryNames: String.camelToSnake
        })
      }))
    ))

  it.live("stores starting at once on new tables all start", () =>
    Effect.gen(function*() {
      const tableName = freshTable()
      yield* Effect.all(
        Array.from({ length: 4 }, () => Layer.build(DurableStore.layerPg({ url, tableName }))),
        { concurrency: "unbounded" }
      )
    }))

  it.live("closing the store ends the subscriptions to its endings", () =>
    Effect.gen(function*() {
      const storeScope = yield* Scope.make()
      const store = yield* Layer.buildWithScope(DurableStore.layerPg({ url, tableName: freshTable() }), storeScope)
        .pipe(Effect.map((context) => Context.get(context, DurableStore)))
      const subscriber = yield* Scope.make()
      const endings = yield* Scope.provide(store.endings, subscriber)
      const following = yield* Effect.forkChild(Stream.runDrain(endings))
      yield* Scope.close(storeScope, Exit.void).pipe(Effect.timeout("5 seconds"))
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(following).pipe(Effect.timeout("5 seconds"))))
      yield* Scope.close(subscriber, Exit.void)
    }))

  // start and finish are batched: the starts (and ends) of one tick share one statement
  it.live("batched starts count each task once and are fenced by claim, as are batched ends", () =>
    Effect.gen(function*() {
      const store = yield* DurableStore
      const ids = Array.from({ length: 6 }, (_, i) => `t${i}`)
      yield* Effect.forEach(ids, (taskId) => store.create({ taskId, name: "n", payload: 1, createdAtMs: 1 }, () => Effect.void))
      const started = yield* Effect.forEach(ids, (taskId, i) => store.start(taskId, 0, i + 1), { concurrency: "unbounded" })
      assert.deepStrictEqual(started.map((record) => record && [record.taskId, record.claim, record.attemptCount]),
        ids.map((taskId, i) => [taskId, i + 1, 1])
      )

      // two claims of one task at once: whichever start the record took is the one that gets it
      const both = yield* Effect.all([store.start("t0", 0, 10), store.start("t0", 0, 11)], { concurrency: "unbounded" })
      for (const [i, record] of both.entries()) {
        if (record !== undefined) assert.strictEqual(record.claim, 10 + i)
      }
      assert.isTrue(both.some((record) => record !== undefined))
      const current = yield* store.get("t0")
      assert.include([10, 11], current?.claim)

      const end = (attemptCount: number) => ({ state: "retrying" as const, attempts: [], attemptCount })
      const written = yield* Effect.forEach(
        ids,
        (taskId, i) => store.finish(taskId, 0, taskId === "t0" ? current!.claim : i % 2 === 0 ? i + 1 : i + 100, end(1)),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(written, ids.map((taskId, i) => taskId === "t0" || i % 2 === 0))
      const states = yield* Effect.forEach(ids, (taskId) => Effect.map(store.get(taskId), (record) => record?.state))
      assert.deepStrictEqual(states, ids.map((taskId, i) => taskId === "t0" || i % 2 === 0 ? "retrying" : "running"))
    }).pipe(Effect.provide(DurableStore.layerPg({ url, tableName: freshTable() }))))

  it.live("driver failures are DurableStoreErrors", () =>
    Effect.gen(function*() {
      const unreachable = yield* Layer.build(DurableStore.layerPg({ url: "postgres://nobody:x@127.0.0.1:1/none" }))
        .pipe(Effect.flip)
      assert.instanceOf(unreachable, DurableStoreError)

      const store = yield* DurableStore
      yield* store.create({ taskId: "t1", name: "n", payload: 1, createdAtMs: 1 }, () => Effect.void)
      const duplicate = yield* Effect.flip(store.create({ taskId: "t1", name: "n", payload: 2, createdAtMs: 1 }, () => Effect.void))
      assert.instanceOf(duplicate, DurableStoreError)
      assert.strictEqual(duplicate.operation, "create a task")
    }).pipe(Effect.provide(DurableStore.layerPg({ url, tableName: freshTable() }))))
})
