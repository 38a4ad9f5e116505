/**
 * The seed example, ported from the Go Task Pool's `example/main.go`: ten
 * tasks that each fail their first attempt and succeed on the second, pushed
 * into a pool that closes safely when the program is done with it.
 *
 * Run it with `npm start`.
 *
 * @since 0.1.0
 */
import { Task, TaskPool } from "@taskpool/core"
import type { TaskResult } from "@taskpool/core"
import { Data, Effect, Ref } from "effect"
import { pathToFileURL } from "node:url"

/**
 * What a seed task's first attempt fails with.
 *
 * @since 0.1.0
 */
export class SeedFailure extends Data.TaggedError("SeedFailure")<{}> {}

/**
 * What `seedExample` accepts.
 *
 * @since 0.1.0
 */
export interface SeedOptions {
  /** How many tasks to push. Default: 10, as in the original. */
  readonly tasks?: number
  /** Where each printed line goes. Default: `console.log`. */
  readonly log?: (line: string) => void
}

/**
 * A seed task. Like the original's `myTask`, it counts its own failures in
 * `times`: an attempt that finds `times` at 0 fails and bumps it.
 */
const seedTask = (name: string, print: (line: string) => Effect.Effect<void>) =>
  Effect.map(Ref.make(0), (times) =>
    Task.make({
      name,
      execute: Effect.gen(function*() {
        const failures = yield* Ref.get(times)
        yield* print(`*Execute* [${name}], times = [${failures}]`)
        if (failures === 0) {
          yield* Ref.set(times, 1)
          return yield* new SeedFailure()
        }
      }),
      onSuccess: () => Effect.flatMap(Ref.get(times), (failures) => print(`*success* [${name}]! times = [${failures}]`)),
      onFail: () => Effect.flatMap(Ref.get(times), (failures) => print(`*fail* [${name}]! times = [${failures}]`))
    }))

const summary = (results: ReadonlyArray<TaskResult<void, SeedFailure>>) => {
  const succeeded = results.filter((result) => result.successful).length
  const attempts = results.reduce((sum, result) => sum + result.attemptCount, 0)
  return `summary: ${succeeded}/${results.length} tasks succeeded, ${results.length - succeeded} failed, ${attempts} attempts`
}

/**
 * Pushes the seed tasks, waits for every one to end, closes the pool (a safe
 * close: the layer's scope ends) and prints a summary. Returns the results.
 *
 * @since 0.1.0
 */
export const seedExample = Effect.fn("seed.run")(function*(options: SeedOptions = {}) {
  const count = options.tasks ?? 10
  const log = options.log ?? console.log
  const print = (line: string) => Effect.sync(() => log(line))
  const results = yield* Effect.gen(function*() {
    const handles = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => `task - ${i}`),
      (name) => Effect.flatMap(seedTask(name, print), TaskPool.push)
    )
    return yield* Effect.forEach(handles, (handle) => handle.result)
  }).pipe(Effect.provide(TaskPool.layer({ lingerMs: 100, baseRetryBackOffMs: 50 })))
  yield* print(summary(results))
  return results
})

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await Effect.runPromise(seedExample())
}
