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
