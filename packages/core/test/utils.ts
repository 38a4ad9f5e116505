import { Clock, Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { TaskPool } from "../src/index.js"
import type { TaskPoolConfigInput, TaskPoolService } from "../src/index.js"

/** A pool whose scope the test closes itself, to observe the close. */
export interface OpenPool {
  readonly pool: TaskPoolService
  /** Closes the pool's scope: the pool's safe or limited close. */
  readonly close: Effect.Effect<void>
}

export const openPool = (config: TaskPoolConfigInput = {}): Effect.Effect<OpenPool, unknown> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(TaskPool.layer(config), scope)
    return { pool: Context.get(context, TaskPool), close: Scope.close(scope, Exit.void) }
  })

/** The TestClock's time, in ms. */
export const now = Clock.currentTimeMillis

/** Records `[label, time]` pairs in order. */
export const timeline = () => {
  const events: Array<readonly [string, number]> = []
  const mark = (label: string) => Effect.flatMap(now, (at) => Effect.sync(() => void events.push([label, at])))
  return { events, mark }
}

/** A failure `retryable` lets through. */
export class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { message: Schema.String }) {}

/** A failure tests mark as final. */
export class Fatal extends Schema.TaggedError<Fatal>()("Fatal", { message: Schema.String }) {}

/** An `execute` that fails with `Flaky` for its first `failures` runs, then succeeds with the run number. */
export const failingFirst = (failures: number) => {
  let runs = 0
  return Effect.suspend(() => ++runs <= failures ? Effect.fail(new Flaky({ message: `run ${runs} failed` })) : Effect.succeed(runs))
}
