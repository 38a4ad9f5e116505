/**
 * What every implementation under test offers, and the tasks the workloads
 * run, built once here so every implementation runs the same work.
 */
import { Effect } from "effect"

/** The work one task does. */
export type TaskShape =
  | { readonly _tag: "Noop" }
  /** Sleeps `ms`, then records its end in `lastTaskEnd`. */
  | { readonly _tag: "Sleep"; readonly ms: number }
  /** Fails its first attempt, succeeds its second. */
  | { readonly _tag: "FailOnce" }

/**
 * How the scheduled workload pushes its tasks: task `i` gets priority
 * `i % priorities` (higher runs first) and key `keyNames(keys)[i % keys]`
 * (tasks of one key run one at a time, in push order).
 */
export interface Scheduling {
  readonly priorities: number
  readonly keys: number
}

/** One implementation under test. */
export interface Peer {
  readonly name: string
  /** Pushes `n` tasks of `shape`, at most `concurrency` running at once, and resolves once every one has ended. */
  readonly run: (shape: TaskShape, n: number, concurrency: number) => Promise<void>
  /**
   * As `run` with `n` no-op tasks, each pushed with the priority and key
   * `scheduling` gives it, as far as the implementation has them (the
   * workload's label says which). Absent: it has no priorities.
   */
  readonly runScheduled?: ((n: number, concurrency: number, scheduling: Scheduling) => Promise<void>) | undefined
  /**
   * Heap bytes held per task while `n` no-op tasks wait behind one blocked
   * worker (concurrency 1), with whatever the push returns kept alive.
   */
  readonly queuedHeap: (n: number) => Promise<number>
}

/** The `count` key names of the scheduled workload, made once per run so no push pays for a string. */
export const keyNames = (count: number): ReadonlyArray<string> => Array.from({ length: count }, (_, k) => `key-${k}`)

/** `performance.now()` at the end of the latest `Sleep` task. */
export const lastTaskEnd = { at: 0 }
const markEnd = () => {
  lastTaskEnd.at = performance.now()
}

/** What a failing attempt fails with: one shared value, so no task pays for a stack trace. */
export const FAILURE = { _tag: "Failure" } as const

/**
 * The tasks of `shape` as promise thunks, for the promise-based peers. They
 * have no retry of their own, so a `FailOnce` thunk retries itself once, as
 * their users would. Shapes without state share one thunk.
 */
export const promiseTasks = (shape: TaskShape): () => () => Promise<void> => {
  switch (shape._tag) {
    case "Noop": {
      const noop = () => Promise.resolve()
      return () => noop
    }
    case "Sleep": {
      const sleep = () =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            markEnd()
            resolve()
          }, shape.ms)
        )
      return () => sleep
    }
    case "FailOnce":
      return () => {
        let failed = false
        const attempt = () => failed ? Promise.resolve() : (failed = true, Promise.reject(FAILURE))
        return () => attempt().catch(attempt)
      }
  }
}

/**
 * The tasks of `shape` as Effects, for the Effect-based peers; a `FailOnce`
 * task is a single attempt (the peer retries it). Shapes without state share one Effect.
 */
export const effectTasks = (shape: TaskShape): () => Effect.Effect<void, typeof FAILURE> => {
  switch (shape._tag) {
    case "Noop":
      return () => Effect.void
    case "Sleep": {
      const sleep = Effect.andThen(Effect.sleep(shape.ms), Effect.sync(markEnd))
      return () => sleep
    }
    case "FailOnce":
      return () => {
        let failed = false
        return Effect.suspend(() => failed ? Effect.void : (failed = true, Effect.fail(FAILURE)))
      }
  }
}

/** A full garbage collection (needs `node --expose-gc`). */
export const collectGarbage = (): void => {
  const gc = globalThis.gc
  if (gc === undefined) throw new Error("run node with --expose-gc")
  gc()
  gc()
}

/** `heapUsed` right after a full garbage collection. */
export const heapUsedAfterGc = (): number => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

/** A promise thunk that blocks its worker until `release` is called; `started` resolves once it runs. */
export const blocker = () => {
  let markStarted = () => {}
  let release = () => {}
  const started = new Promise<void>((resolve) => (markStarted = resolve))
  const released = new Promise<void>((resolve) => (release = resolve))
  return {
    started,
    release,
    task: () => {
      markStarted()
      return released
    }
  }
}

/**
 * `queuedHeap` for a promise queue with one worker: blocks it, pushes `n`
 * no-op thunks keeping every returned promise, and measures the heap they hold.
 */
export const promiseQueuedHeap = async (n: number, push: (thunk: () => Promise<void>) => Promise<void>): Promise<number> => {
  const gate = blocker()
  const noop = promiseTasks({ _tag: "Noop" })()
  void push(gate.task)
  await gate.started
  const before = heapUsedAfterGc()
  const kept: Array<Promise<void>> = []
  for (let i = 0; i < n; i++) kept.push(push(noop))
  const after = heapUsedAfterGc()
  gate.release()
  await Promise.all(kept)
  return (after - before) / n
}
