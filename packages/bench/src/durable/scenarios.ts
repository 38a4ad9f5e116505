/**
 * The two scenarios, each in a fresh database (a fresh key prefix on Redis)
 * with fresh worker processes. Throughput: enqueue `jobs` first, then start
 * the workers and time until the store has them all done. Latency: workers
 * up and idle, one job submitted every `1000 / rate` ms; offer→start is the
 * job's start time (worker's `Date.now()`) minus its submit time
 * (coordinator's, same machine).
 */
import { setTimeout as sleep } from "node:timers/promises"
import { WorkerGroup } from "./ipc.js"
import type { SystemName, Target, WorkerConfig } from "./ipc.js"
import { freshDatabase, resetStatements, statementsOn } from "./postgres.js"
import type { Server, StatementCount } from "./postgres.js"
import { freshPrefix } from "./redis.js"
import type { RedisServer } from "./redis.js"
import type { Producer, System } from "./system.js"
import { graphile } from "./graphile.js"
import { taskpool, taskpoolRedis } from "./taskpool.js"

export const systems: Record<SystemName, System> = { taskpool, graphile, "taskpool-redis": taskpoolRedis }

/** Where scenarios run: the PostgreSQL server, and the Redis server when there is one. */
export interface Servers {
  readonly pg: Server
  readonly redis?: RedisServer | undefined
}

/** What a scenario runs: the system, its processes and their settings. */
export interface Setup {
  readonly system: SystemName
  readonly processes: number
  readonly concurrency: number
  readonly pollIntervalMs?: number | undefined
  readonly lockRefreshIntervalMs?: number | undefined
  /** Extra node flags for the worker processes (e.g. `--cpu-prof`). */
  readonly execArgv?: ReadonlyArray<string> | undefined
}

export interface ThroughputResult {
  readonly enqueuePerSecond: number
  readonly tasksPerSecond: number
  /** Top-level SQL statements on the database while the workers ran, when counted. */
  readonly statements?: ReadonlyArray<StatementCount> | undefined
}

export interface LatencyResult {
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/** A fresh database for `setup`'s system, or a fresh key prefix on Redis (nothing to drop). */
const freshTarget = async (servers: Servers, setup: Setup): Promise<Target & { name: string; drop: () => Promise<unknown> }> => {
  const label = `${setup.system}_${setup.processes}`
  if (setup.system !== "taskpool-redis") return freshDatabase(servers.pg, label)
  if (servers.redis === undefined) throw new Error("taskpool-redis needs a Redis server")
  const prefix = freshPrefix(label)
  return { name: prefix, url: servers.redis.url, prefix, drop: async () => {} }
}

/** Runs `body` with a fresh target, a producer and `setup`'s (not yet started) workers; cleans all up. */
const withWorkers = async <A>(
  servers: Servers,
  setup: Setup,
  body: (producer: Producer, workers: WorkerGroup, database: string) => Promise<A>
): Promise<A> => {
  const target = await freshTarget(servers, setup)
  try {
    const producer = await systems[setup.system].producer(target)
    try {
      const config: WorkerConfig = {
        system: setup.system,
        url: target.url,
        prefix: target.prefix,
        concurrency: setup.concurrency,
        pollIntervalMs: setup.pollIntervalMs,
        lockRefreshIntervalMs: setup.lockRefreshIntervalMs
      }
      const workers = new WorkerGroup(setup.processes, config, setup.execArgv)
      try {
        await workers.loadedAll()
        return await body(producer, workers, target.name)
      } finally {
        await workers.stop()
      }
    } finally {
      await producer.close()
    }
  } finally {
    await target.drop()
  }
}

/** `f` for `0 … n-1`, at most `concurrency` at once. */
const inParallel = async (n: number, concurrency: number, f: (i: number) => Promise<void>) => {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) await f(next++)
  }))
}

export const throughput = (
  servers: Servers,
  setup: Setup,
  jobs: number,
  options: { readonly countStatements?: boolean } = {}
): Promise<ThroughputResult> =>
  withWorkers(servers, setup, async (producer, workers, database) => {
    const enqueueStart = performance.now()
    await inParallel(jobs, 10, () => producer.submit(0))
    const enqueuePerSecond = jobs / (performance.now() - enqueueStart) * 1000
    if (options.countStatements) await resetStatements(servers.pg)
    const start = performance.now()
    workers.start()
    // Executions as the workers report them, then the store's own word, polled briefly.
    await workers.until(`${jobs} executions`, 600_000, () => workers.done >= jobs)
    while (await producer.remaining() > 0) await sleep(5)
    const tasksPerSecond = jobs / (performance.now() - start) * 1000
    const statements = options.countStatements ? await statementsOn(servers.pg, database) : undefined
    return { enqueuePerSecond, tasksPerSecond, statements }
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

export const latency = (servers: Servers, setup: Setup, jobs: number, perSecond: number): Promise<LatencyResult> =>
  withWorkers(servers, setup, async (producer, workers) => {
    workers.start()
    await workers.readyAll()
    await sleep(1_000) // idle, as a quiet queue is
    const start = performance.now()
    const submits: Array<Promise<void>> = []
    for (let i = 0; i < jobs; i++) {
      const due = start + i * 1000 / perSecond
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      submits.push(producer.submit(Date.now()))
    }
    await Promise.all(submits)
    await workers.until(`${jobs} latency jobs`, 30_000, () => workers.latencies.length >= jobs)
    const sorted = [...workers.latencies].sort((a, b) => a - b)
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1]! }
  })
