/**
 * At-least-once across processes, with a real crash: a producer and three
 * worker processes (spawned with `node`, running the compiled package from
 * `test/fixtures`) share one PostgreSQL database; one worker is killed with
 * SIGKILL while it holds tasks. Every submitted task must end, none may be
 * lost, and the only tasks run twice are those the killed worker held.
 *
 * Each run of the task records itself in a runs table (a row at its start,
 * `finished_at` at its end), so runs are counted from outside the pool.
 */
import { afterAll, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Clock, Effect, Layer, Redacted, Schema } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import { DurableStore, DurableTaskPool, TaskDefinition } from "../src/index.js"
import { freshDatabase } from "./pgServer.js"

const tasks = 300
const workers = 3
const settings = {
  tableName: `kill_${randomUUID().slice(0, 8)}`,
  runsTable: "kill_runs",
  tasks,
  taskMs: 40,
  maxIoWorkerNum: 4,
  pollInterval: "20 millis",
  // PersistedQueue's SQL store keeps lock expiry in whole seconds (rounded up).
  lockExpiration: "2 seconds",
  lockRefreshInterval: "500 millis"
} as const

/** The same definition the children register (`fixtures/killTask.mjs`); this process only reads results. */
const KillTask = TaskDefinition.make({
  name: "kill-test",
  payload: Schema.Struct({ key: Schema.String }),
  success: Schema.Struct({ key: Schema.String, pid: Schema.Number }),
  execute: () => Effect.die(new Error("the test process runs no tasks"))
})

interface Child {
  readonly process: ChildProcess
  readonly name: string
  readonly stdout: () => string
  readonly stderr: () => string
}

const alive = (child: Child) => child.process.exitCode === null && child.process.signalCode === null

/** Every child spawned: `afterAll` kills any still running, should a timeout cut the test's own cleanup short. */
const spawned = new Set<ChildProcess>()
afterAll(() => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
})

/** A fixture run by `node` (this test's own Node), killed when the test's scope closes, pass or fail. */
const spawnFixture = (file: "worker.mjs" | "producer.mjs", config: object, name: string) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const path = fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url))
      const child = spawn(process.execPath, [path, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] })
      spawned.add(child)
      let out = ""
      let err = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => void (out += chunk))
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => void (err += chunk))
      return { process: child, name, stdout: () => out, stderr: () => err }
    }),
    (child) => Effect.sync(() => void (alive(child) && child.process.kill("SIGKILL")))
  )

/** Polls `check` every 25 ms until it returns a value, or fails the test at the deadline with `what`. */
const waitFor = <A, E, R>(what: string, timeoutMs: number, check: Effect.Effect<A | undefined, E, R>) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
    while (true) {
      const value = yield* check
      if (value !== undefined) return value
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* Effect.die(new Error(`timed out after ${timeoutMs} ms: ${what}`))
      yield* Effect.sleep("25 millis")
    }
  })

/** Fails at once, with its output, when a child that should be running has exited. */
const stillRunning = (children: ReadonlyArray<Child>) =>
  Effect.forEach(children, (child) =>
    alive(child) ? Effect.void : Effect.die(
      new Error(`${child.name} exited (${child.process.exitCode ?? child.process.signalCode}):\n${child.stdout()}\n${child.stderr()}`)
    ), { discard: true })

/** The runs table's client, and this process's own pool (no workers) on the shared store. */
const services = (url: string) =>
  Layer.mergeAll(
    PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }),
    DurableTaskPool.layerProducer({ definitions: [KillTask] }).pipe(Layer.provide(DurableStore.layerPg({
      url,
      tableName: settings.tableName,
      pollInterval: settings.pollInterval,
      lockExpiration: settings.lockExpiration,
      lockRefreshInterval: settings.lockRefreshInterval
    })))
  )

const killRun = (url: string) =>
  Effect.gen(function*() {
    const config = { ...settings, url }
    const sql = yield* PgClient.PgClient
    yield* sql`CREATE TABLE ${sql(settings.runsTable)} (
      id bigserial PRIMARY KEY,
      task_key text NOT NULL,
      worker_pid integer NOT NULL,
      started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      finished_at timestamptz NULL
    )`
    // This process's own pool reads stats and results; building it creates the store's tables before any child starts.
    const pool = yield* DurableTaskPool

    const children = yield* Effect.forEach(
      Array.from({ length: workers }, (_, i) => i),
      (i) => spawnFixture("worker.mjs", config, `worker ${i}`)
    )
    yield* waitFor(
      "every worker ready",
      10_000,
      Effect.map(stillRunning(children), () => children.every((child) => child.stdout().includes("ready")) ? true : undefined)
    )
    const producer = yield* spawnFixture("producer.mjs", config, "producer")

    // The victim holds tasks: it has run several and some of its runs have not finished.
    const victim = children[0]!
    const victimPid = victim.process.pid!
    yield* waitFor(
      "the victim running tasks",
      10_000,
      Effect.gen(function*() {
        yield* stillRunning(children)
        const [row] = yield* sql<{ readonly runs: string; readonly open: string }>`
          SELECT count(*) AS runs, count(*) FILTER (WHERE finished_at IS NULL) AS open
          FROM ${sql(settings.runsTable)} WHERE worker_pid = ${victimPid}`
        return Number(row!.runs) >= 8 && Number(row!.open) >= 2 ? true : undefined
      })
    )
    victim.process.kill("SIGKILL")
    yield* waitFor("the victim gone", 5_000, Effect.sync(() => victim.process.signalCode === "SIGKILL" ? true : undefined))
    const runningAtKill = (yield* pool.stats).running

    const taskIds = yield* waitFor("the producer's task ids", 10_000, Effect.sync(() => {
      const line = producer.stdout().split("\n").find((text) => text.startsWith("{"))
      if (line === undefined && !alive(producer)) throw new Error(`producer exited:\n${producer.stderr()}`)
      return line === undefined ? undefined : (JSON.parse(line) as { readonly taskIds: ReadonlyArray<string> }).taskIds
    }))

    // Every task ends: polled on the store's counts, with a deadline.
    const stats = yield* waitFor("every task ended", 15_000, Effect.gen(function*() {
      yield* stillRunning(children.slice(1))
      const stats = yield* pool.stats
      return stats.succeeded + stats.failed === tasks ? stats : undefined
    }))
    const results = yield* Effect.forEach(taskIds, (taskId) => pool.handle(KillTask, taskId).result, { concurrency: 16 })

    const runs = yield* sql<{ readonly task_key: string; readonly worker_pid: number; readonly finished: boolean }>`
      SELECT task_key, worker_pid, finished_at IS NOT NULL AS finished FROM ${sql(settings.runsTable)} ORDER BY id`
    const runsOf = new Map<string, Array<{ readonly pid: number; readonly finished: boolean }>>()
    for (const run of runs) {
      const list = runsOf.get(run.task_key) ?? []
      list.push({ pid: run.worker_pid, finished: run.finished })
      runsOf.set(run.task_key, list)
    }
    const keyOf = new Map(results.map((result) => [result.taskId, result.exit._tag === "Success" ? result.exit.value.key : ""]))
    const resultOf = new Map(results.map((result) => [keyOf.get(result.taskId)!, result]))
    const runTwice = [...runsOf].filter(([, list]) => list.length > 1).map(([key]) => key).sort()
    // Held by the killed worker: it started a run and never stored its end, so the pool recorded the attempt as Lost.
    // (Mostly runs cut off mid-way; a run that ended just before the kill, its end not yet stored, is held too.)
    const held = [...runsOf].filter(([key, list]) =>
      list.some((run) => run.pid === victimPid) &&
      resultOf.get(key)?.attempts.some((attempt) => attempt.errorCode === "Lost") === true
    ).map(([key]) => key).sort()
    const midRun = [...runsOf].filter(([, list]) => list.some((run) => run.pid === victimPid && !run.finished)).map(([key]) => key)
    const claimedUnrun = results.filter((result) => result.attempts.some((attempt) => attempt.errorCode === "Lost")).length - held.length

    console.log(
      `kill test: submitted ${taskIds.length}, succeeded ${stats.succeeded}, failed ${stats.failed}, ` +
        `run twice ${runTwice.length}, held by the killed worker ${held.length} (${midRun.length} cut off mid-run), ` +
        `claimed by it with no run recorded ${claimedUnrun}, running in the store at the kill ${runningAtKill}, runs ${runs.length}`
    )

    // None lost: every submitted task is stored once, ran, and succeeded.
    expect(new Set(taskIds).size).toBe(tasks)
    expect(stats).toMatchObject({ total: tasks, succeeded: tasks, failed: 0, queued: 0, running: 0, retrying: 0 })
    expect(results.every((result) => result.successful)).toBe(true)
    expect([...resultOf.keys()].sort()).toEqual(Array.from({ length: tasks }, (_, i) => `task-${i}`).sort())
    expect(runsOf.size).toBe(tasks)
    // The killed worker held tasks; exactly those ran twice: first by the killed worker, then by a live one.
    expect(held.length).toBeGreaterThan(0)
    expect(midRun.every((key) => held.includes(key))).toBe(true)
    expect(runTwice).toEqual(held)
    for (const key of runTwice) {
      const list = runsOf.get(key)!
      expect(list.map((run) => run.pid === victimPid)).toEqual([true, false])
      // Two attempts counted: the killed worker's, recorded as Lost, then the one that succeeded.
      const result = resultOf.get(key)!
      expect(result.attemptCount).toBe(2)
      expect(result.attempts.map((attempt) => [attempt.number, attempt.success, attempt.errorCode])).toEqual([
        [1, false, "Lost"],
        [2, true, undefined]
      ])
    }
    // Every other task ran once: one attempt, or a Lost one first when the killed worker claimed it without starting it.
    for (const result of results) {
      expect(result.attemptCount).toBeLessThanOrEqual(2)
      expect(result.attempts.filter((attempt) => !attempt.success).every((attempt) => attempt.errorCode === "Lost")).toBe(true)
    }
  }).pipe(Effect.provide(services(url)))

it.live(
  "a worker killed with SIGKILL loses no task; only the tasks it held run twice",
  () => Effect.flatMap(Effect.promise(() => freshDatabase()), killRun),
  // A backstop: every wait has its own deadline, and the run takes about 5 s.
  60_000
)
