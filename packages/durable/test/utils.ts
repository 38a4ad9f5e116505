import { Clock, Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import type { DurableTaskPoolService } from "../src/index.js"
import { DurableStore, DurableTaskPool } from "../src/index.js"
import type { AnyTaskDefinition, DurableWorkerConfigInput } from "../src/index.js"

/** A pool whose scope the test closes itself, to observe the close. */
export interface OpenPool {
  readonly pool: DurableTaskPoolService
  /** Closes the pool's scope: a worker's safe or limited close. */
  readonly close: Effect.Effect<void>
}

const open = <E>(layer: Layer.Layer<DurableTaskPool, E, DurableStore>, store: Context.Context<DurableStore>) =>
  Effect.gen(function*() {
    // A child of the test's scope: it closes before the store, like a layer built on it.
    const scope = yield* Scope.fork(yield* Effect.scope, "sequential")
    const context = yield* Layer.buildWithScope(layer, scope).pipe(Effect.provide(store))
    return { pool: Context.get(context, DurableTaskPool), close: Scope.close(scope, Exit.void) } satisfies OpenPool
  })

/** A worker pool on `store`. */
export const openWorker = (
  store: Context.Context<DurableStore>,
  definitions: ReadonlyArray<AnyTaskDefinition>,
  config: DurableWorkerConfigInput = {}
) => open(DurableTaskPool.layerWorker({ definitions, ...config }), store)

/** A submit-only pool on `store`. */
export const openProducer = (store: Context.Context<DurableStore>, definitions: ReadonlyArray<AnyTaskDefinition>) =>
  open(DurableTaskPool.layerProducer({ definitions }), store)

/** A fresh in-memory store, shared by the pools a test opens on it. */
export const memoryStore = Layer.build(DurableStore.layerMemory)

/** The clock's time, in ms. */
export const now = Clock.currentTimeMillis

/** A failure `retryable` lets through. */
export class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { message: Schema.String }) {}

/** A failure tests mark as final. */
export class Fatal extends Schema.TaggedError<Fatal>()("Fatal", { message: Schema.String }) {}
