/**
 * Why taskpool durable is where it is: SQL statements per task for both
 * systems (`pg_stat_statements`, embedded server), a CPU profile of one
 * taskpool worker process, and the knobs (pollInterval, maxIoWorkerNum,
 * lockRefreshInterval) one at a time.
 *
 *   node dist/durable/explore.js [--jobs 3000] [--only statements,profile,knobs]
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import type { SystemName } from "./ipc.js"
import { startServer } from "./postgres.js"
import { selfTimes } from "./profile.js"
import { latency, throughput } from "./scenarios.js"
import type { Setup } from "./scenarios.js"

const { values } = parseArgs({
  options: { jobs: { type: "string", default: "3000" }, only: { type: "string", default: "statements,profile,knobs" } }
})
const jobs = Number(values.jobs)
const only = values.only.split(",")
const out = (line = "") => process.stdout.write(`${line}\n`)
const oneLine = (sql: string) => sql.replace(/\s+/g, " ").trim().slice(0, 150)

const server = await startServer()
try {
  if (only.includes("statements")) {
    if (!server.statementStats) out("pg_stat_statements is not available on this server; no statement counts.")
    else {
      for (const system of ["taskpool", "graphile"] as ReadonlyArray<SystemName>) {
        const result = await throughput({ pg: server }, { system, processes: 1, concurrency: 10 }, jobs, { countStatements: true })
        const statements = result.statements ?? []
        const total = statements.reduce((sum, s) => sum + s.calls, 0)
        out(`## SQL statements while ${jobs} queued jobs ran, ${system}, 1 process: ${(total / jobs).toFixed(2)} per task`)
        out()
        const serverMs = statements.reduce((sum, s) => sum + s.totalMs, 0)
        out(`Server execution time: ${(serverMs * 1000 / jobs).toFixed(0)} µs per task.`)
        out()
        out("| per task | calls | server µs per call | statement |")
        out("| --- | --- | --- | --- |")
        for (const s of statements.filter((s) => s.calls >= jobs / 100)) {
          out(`| ${(s.calls / jobs).toFixed(2)} | ${s.calls} | ${(s.totalMs * 1000 / s.calls).toFixed(0)} | \`${oneLine(s.query)}\` |`)
        }
        out()
      }
    }
  }

  if (only.includes("profile")) {
    const dir = await mkdtemp(join(tmpdir(), "taskpool-bench-prof-"))
    try {
      const setup: Setup = { system: "taskpool", processes: 1, concurrency: 10, execArgv: ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--cpu-prof-interval=200"] }
      const result = await throughput({ pg: server }, setup, jobs)
      const { rows, totalMs } = await selfTimes(dir, 25)
      out(`## CPU profile of a taskpool worker process (${jobs} queued jobs, ${result.tasksPerSecond.toFixed(0)} tasks/s under the profiler)`)
      out()
      out(`${totalMs.toFixed(0)} ms sampled over the process's life (start-up included); top self time:`)
      out()
      out("| self ms | share | function |")
      out("| --- | --- | --- |")
      for (const row of rows) out(`| ${row.ms.toFixed(0)} | ${(row.share * 100).toFixed(1)}% | \`${row.name}\` |`)
      out()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  if (only.includes("knobs")) {
    const variants: ReadonlyArray<{ label: string; setup: Omit<Setup, "system"> }> = [
      { label: "defaults (1 process, maxIoWorkerNum 10, pollInterval 50 ms, lockRefresh 30 s)", setup: { processes: 1, concurrency: 10 } },
      { label: "pollInterval 10 ms", setup: { processes: 1, concurrency: 10, pollIntervalMs: 10 } },
      { label: "pollInterval 5 ms", setup: { processes: 1, concurrency: 10, pollIntervalMs: 5 } },
      { label: "pollInterval 200 ms", setup: { processes: 1, concurrency: 10, pollIntervalMs: 200 } },
      { label: "maxIoWorkerNum 30", setup: { processes: 1, concurrency: 30 } },
      { label: "maxIoWorkerNum 50", setup: { processes: 1, concurrency: 50 } },
      { label: "maxIoWorkerNum 50, pollInterval 10 ms", setup: { processes: 1, concurrency: 50, pollIntervalMs: 10 } },
      { label: "lockRefreshInterval 1 s", setup: { processes: 1, concurrency: 10, lockRefreshIntervalMs: 1000 } },
      { label: "3 processes, defaults", setup: { processes: 3, concurrency: 10 } },
      { label: "3 processes, pollInterval 10 ms", setup: { processes: 3, concurrency: 10, pollIntervalMs: 10 } }
    ]
    out("## taskpool knobs, one at a time")
    out()
    out(`| variant | throughput (tasks/s, ${jobs} jobs) | p50 (ms) | p99 (ms) |`)
    out("| --- | --- | --- | --- |")
    for (const { label, setup } of variants) {
      process.stderr.write(`knob: ${label} …\n`)
      const t = await throughput({ pg: server }, { system: "taskpool", ...setup }, jobs)
      const l = await latency({ pg: server }, { system: "taskpool", ...setup }, 100, 20)
      out(`| ${label} | ${t.tasksPerSecond.toFixed(0)} | ${l.p50} | ${l.p99} |`)
    }
    out()
  }
} finally {
  await server.stop()
}
