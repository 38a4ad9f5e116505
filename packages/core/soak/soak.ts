/**
 * Soak: one million tasks with random failures through one pool, on the real
 * clock, in plain Node (`npm run soak`: builds @taskpool/core, then
 * `node --expose-gc packages/core/soak/soak.ts`; Node 24 strips the types).
 *
 * Every 100,000 tasks it waits for the pool to be idle, collects garbage and
 * samples the heap. It passes (exit code 0) when:
 * - after the warm-up (the first 200,000 tasks) every heap sample stays within
 *   10% of the first sample after it;
 * - no fiber is left behind: the fibers alive after the close are those alive
 *   before the pool was built (counted through Effect's fiber runtime-metrics
 *   hook, which sees every fiber forked under it), and the process holds no
 *   timer once the program has ended;
 * - all ends are accounted: every push ended once (one callback each), stats
 *   pushed = succeeded + failed with nothing unfinished, and failed = read
 *   from the failure queue + dropped + unread.
 *
 * Env: SOAK_TASKS (default 1,000,000), SOAK_SAMPLE_EVERY (100,000), SOAK_SEED.
 */
import { Context, Effect, Exit, Fiber, Layer, Metric, Schema, Scope, Stream } from "effect"
import { Task, TaskPool } from "@taskpool/core"
import type { TaskPoolStats, TaskResult } from "@taskpool/core"

const total = Number(process.env.SOAK_TASKS ?? 1_000_000)
const sampleEvery = Number(process.env.SOAK_SAMPLE_EVERY ?? 100_000)
const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))
const warmupSamples = 2
const tolerance = 0.1
const pushers = 4

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error("soak: run with node --expose-gc")
  process.exit(2)
}

/** mulberry32: a small seeded PRNG, so a run can be replayed with SOAK_SEED. */
const random = (() => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
})()

// ── fibers: count every fiber started and ended under the program ──────────

const fibers = { started: 0, ended: 0 }
const fiberCounter: Metric.FiberRuntimeMetricsService = {
  recordFiberStart: () => void fibers.started++,
  recordFiberEnd: () => void fibers.ended++
}
const alive = () => fibers.started - fibers.ended

// ── the tasks ──────────────────────────────────────────────────────────────

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { message: Schema.String }) {}
class Fatal extends Schema.TaggedError<Fatal>()("Fatal", { message: Schema.String }) {}

const ends = { onSuccess: 0, onFail: 0 }
const outcomes = { succeed: 0, flakyOnce: 0, fatal: 0, alwaysFlaky: 0, die: 0, throw: 0, slow: 0 }

const makeTask = (i: number) => {
  const roll = random()
  let runs = 0
  let execute: Effect.Effect<number, Flaky | Fatal>
  if (roll < 0.62) {
    outcomes.succeed++
    execute = Effect.succeed(i)
  } else if (roll < 0.75) {
    outcomes.flakyOnce++
    execute = Effect.suspend(() => ++runs === 1 ? Effect.fail(new Flaky({ message: "once" })) : Effect.succeed(i))
  } else if (roll < 0.82) {
    outcomes.fatal++
    execute = Effect.fail(new Fatal({ message: "fatal" }))
  } else if (roll < 0.87) {
    outcomes.alwaysFlaky++
    execute = Effect.fail(new Flaky({ message: "always" }))
  } else if (roll < 0.91) {
    outcomes.die++
    execute = Effect.die(new Error("defect"))
  } else if (roll < 0.95) {
    outcomes.throw++
    execute = Effect.sync(() => {
      if (++runs < 3) throw new Error("thrown")
      return i
    })
  } else {
    outcomes.slow++
    execute = Effect.as(Effect.sleep(1), i)
  }
  return Task.make({
    name: "soak",
    execute,
    onSuccess: () => Effect.sync(() => void ends.onSuccess++),
    onFail: () => Effect.sync(() => void ends.onFail++),
    retryable: (error) => error._tag === "Flaky",
    timeout: "5 seconds"
  })
}

// ── the run ────────────────────────────────────────────────────────────────

interface Sample {
  readonly tasks: number
  readonly heapMB: number
  readonly rssMB: number
  readonly fibersAlive: number
  readonly seconds: number
}

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

const heapNow = () => {
  gc()
  gc()
  const memory = process.memoryUsage()
  return { heapMB: mb(memory.heapUsed), rssMB: mb(memory.rss) }
}

const program = Effect.gen(function*() {
  const startedAt = Date.now()
  const fibersBefore = alive()
  const scope = yield* Scope.make()
  const context = yield* Layer.buildWithScope(
    TaskPool.layer({
      name: "soak",
      maxIoWorkerNum: 64,
      lingerMs: 100,
      maxRetryTimes: 2,
      maxReservedAttempts: 3,
      baseRetryBackOffMs: 1,
      maxRetryBackOffMs: 4,
      maxTaskNum: 5_000,
      maxBlockMs: -1,
      maxFailedTasks: 1_000
    }),
    scope
  )
  const pool = Context.get(context, TaskPool)
  let read = 0
  const reader = yield* Effect.forkChild(
    Stream.runForEach(pool.failures, (_: TaskResult<unknown, unknown>) => Effect.sync(() => void read++))
  )

  const samples: Array<Sample> = []
  let pushed = 0
  while (pushed < total) {
    const chunk = Math.min(sampleEvery, total - pushed)
    const base = pushed
    yield* Effect.forEach(
      Array.from({ length: pushers }, (_, p) => p),
      (p) =>
        Effect.gen(function*() {
          for (let i = p; i < chunk; i += pushers) yield* pool.push(makeTask(base + i))
        }),
      { concurrency: "unbounded", discard: true }
    )
    pushed += chunk
    yield* pool.awaitIdle
    const sample = { tasks: pushed, ...heapNow(), fibersAlive: alive(), seconds: (Date.now() - startedAt) / 1000 }
    samples.push(sample)
    console.log(
      `${String(sample.tasks).padStart(9)} tasks  heap ${String(sample.heapMB).padStart(6)} MB  ` +
        `rss ${String(sample.rssMB).padStart(6)} MB  fibers alive ${sample.fibersAlive}  ${sample.seconds.toFixed(1)} s`
    )
  }

  const statsBeforeClose: TaskPoolStats = yield* pool.stats
  yield* Scope.close(scope, Exit.void)
  yield* Fiber.join(reader) // the failure stream ends once the pool has closed and it has been read
  const unread = (yield* Stream.runCollect(pool.failures)).length // 0: the reader read the stream to its end
  const stats = yield* pool.stats
  const fibersAfter = alive()
  return { samples, stats, statsBeforeClose, read, unread, fibersBefore, fibersAfter, seconds: (Date.now() - startedAt) / 1000 }
}).pipe(Effect.provideService(Metric.FiberRuntimeMetrics, fiberCounter))

console.log(`soak: ${total} tasks, heap sampled every ${sampleEvery}, seed ${seed} (replay: SOAK_SEED=${seed})`)
const before = heapNow()
console.log(`before the pool: heap ${before.heapMB} MB, rss ${before.rssMB} MB`)

const result = await Effect.runPromise(program)
const { samples, stats } = result
const failures: Array<string> = []
const check = (ok: boolean, what: string) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`)
  if (!ok) failures.push(what)
}

// Heap: flat within 10% after the warm-up.
const steady = samples.slice(warmupSamples)
if (steady.length >= 2) {
  const baseline = steady[0]!.heapMB
  const highest = Math.max(...steady.map((s) => s.heapMB))
  const lowest = Math.min(...steady.map((s) => s.heapMB))
  check(
    highest <= baseline * (1 + tolerance) && lowest >= baseline * (1 - tolerance),
    `heap after warm-up stays within ${tolerance * 100}% of ${baseline} MB (from ${lowest} to ${highest} MB)`
  )
} else {
  check(false, `too few samples after warm-up (${steady.length}): raise SOAK_TASKS`)
}

// Fibers: the same number alive after the close as before the pool.
check(
  result.fibersAfter === result.fibersBefore,
  `no fiber left behind: ${result.fibersBefore} alive before the pool, ${result.fibersAfter} after its close ` +
    `(${fibers.started} started in all)`
)
check(
  samples.every((s) => s.fibersAlive === samples[0]!.fibersAlive),
  `fibers alive at every idle sample: ${[...new Set(samples.map((s) => s.fibersAlive))].join(", ")}`
)

// Ends: every push ended once, and the stats and the failure queue account for all.
const callbacks = ends.onSuccess + ends.onFail
check(stats.pushed === total, `pushed ${stats.pushed} = ${total}`)
check(callbacks === total, `one callback per task: ${ends.onSuccess} onSuccess + ${ends.onFail} onFail = ${callbacks}`)
check(
  stats.succeeded === ends.onSuccess && stats.failed === ends.onFail,
  `stats succeeded ${stats.succeeded}, failed ${stats.failed} match the callbacks`
)
const unfinished = stats.lingering + stats.queued + stats.running + stats.retrying
check(unfinished === 0 && stats.pushed === stats.succeeded + stats.failed, `nothing unfinished: ${JSON.stringify(stats)}`)
check(
  stats.failed === result.read + stats.droppedFailures + result.unread,
  `failed ${stats.failed} = read ${result.read} + dropped ${stats.droppedFailures} + unread ${result.unread}`
)
console.log(`outcomes drawn: ${JSON.stringify(outcomes)}; ${result.seconds.toFixed(1)} s, ${Math.round(total / result.seconds)} tasks/s`)

// Timers: nothing may keep the process alive once the program has ended.
await new Promise((resolve) => setImmediate(resolve))
const resources = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap" && r !== "PipeWrap" && r !== "FSReqCallback")
check(!resources.includes("Timeout") && !resources.includes("Immediate"), `no timer left: [${resources.join(", ")}]`)

if (failures.length > 0) {
  console.log(`soak FAILED: ${failures.length} check(s)`)
  process.exit(1)
}
console.log("soak passed")
