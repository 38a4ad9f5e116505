/**
 * The PostgreSQL store: PersistedQueue's SQL store for the queue, a table of
 * records beside it, and LISTEN/NOTIFY for endings.
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Exit, Layer, Redacted, Request, RequestResolver, Scope, Stream } from "effect"
import { PersistedQueue } from "effect/persistence"
import { Migrator, SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { DurableStoreService, QueueOptions } from "../DurableStore.js"
import type { DurableStoreError } from "../errors.js"
import { storeError } from "../errors.js"
import type { AttemptEnd, StateCounts, StoredFailure, TaskRecord, TaskState } from "./records.js"

/** The options of `DurableStore.layerPg`. */
export type PgStoreOptions =
  & QueueOptions
  & {
    /** Records table name (default `taskpool_tasks`). */
    readonly tableName?: string | undefined
  }
  & (
    | { readonly url: string | Redacted.Redacted; readonly client?: undefined }
    | { readonly client: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown>; readonly url?: undefined }
  )

/** A records row as selected by `columns`: JSON columns come back as text. */
interface Row {
  readonly task_id: string
  readonly name: string
  readonly payload: string | null
  readonly state: TaskState
  readonly generation: number
  readonly attempts: string
  readonly attempt_count: number
  readonly claim: number
  readonly value: string | null
  readonly failure: string | null
  readonly idempotency_key: string | null
  readonly created_at_ms: bigint | number | string
  readonly completed_at_ms: bigint | number | string | null
  readonly failed_seq: bigint | number | string | null
}

const toRecord = (row: Row): TaskRecord => ({
  taskId: row.task_id,
  name: row.name,
  payload: row.payload === null ? undefined : JSON.parse(row.payload),
  state: row.state,
  generation: Number(row.generation),
  attempts: JSON.parse(row.attempts),
  attemptCount: Number(row.attempt_count),
  claim: Number(row.claim),
  ...(row.value === null ? {} : { value: JSON.parse(row.value) }),
  ...(row.failure === null ? {} : { failure: JSON.parse(row.failure) as StoredFailure }),
  ...(row.idempotency_key === null ? {} : { idempotencyKey: row.idempotency_key }),
  createdAtMs: Number(row.created_at_ms),
  ...(row.completed_at_ms === null ? {} : { completedAtMs: Number(row.completed_at_ms) }),
  ...(row.failed_seq === null ? {} : { failedSeq: Number(row.failed_seq) })
})

/** JSON text for a `json` parameter; `undefined` becomes SQL NULL, so it differs from JSON `null`. */
const jsonText = (value: unknown): string | null => value === undefined ? null : JSON.stringify(value)

/** `start` as a request: the starts of many workers' attempts become one statement. */
interface StartRequest extends Request.Request<TaskRecord | undefined, SqlError> {
  readonly taskId: string
  readonly generation: number
  readonly claim: number
}
const StartRequest = Request.of<StartRequest>()

/** `finish` as a request, batched like `start`. */
interface FinishRequest extends Request.Request<boolean, SqlError> {
  readonly taskId: string
  readonly generation: number
  readonly claim: number
  readonly end: AttemptEnd
}
const FinishRequest = Request.of<FinishRequest>()

/**
 * The PostgreSQL store. Builds (or takes) the client in the caller's scope,
 * creates the records table and PersistedQueue's `${tableName}_queue` on first
 * use, and announces endings on a channel named after the table.
 */
export const makePgStore = (
  options: PgStoreOptions
): Effect.Effect<DurableStoreService, DurableStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const storeScope = yield* Effect.scope
    const tableName = options.tableName ?? "taskpool_tasks"
    const channel = `${tableName}_endings`
    if (new TextEncoder().encode(channel).byteLength > 63) {
      return yield* Effect.fail(storeError("open")(new Error(`tableName ${tableName} is too long for a channel name`)))
    }
    const clientLayer = options.client ?? PgClient.layer({
      url: typeof options.url === "string" ? Redacted.make(options.url) : options.url
    })
    const clientContext = yield* Layer.build(clientLayer).pipe(Effect.mapError(storeError("connect to PostgreSQL")))
    const pg = Context.get(clientContext, PgClient.PgClient)
    // Transforms would rename keys inside JSON values; the queue and the records share this one client
    const sql = pg.withoutTransforms()
    const table = sql(tableName)
    const failedSeq = sql(`${tableName}_failed_seq`)
    // nextval takes the sequence's name as text, quoted as an identifier
    const failedSeqName = sql`${failedSeq}`.compile()[0]

    yield* Migrator.make({})({
      table: `${tableName}_migrations`,
      loader: Migrator.fromRecord({
        "0001_create_tasks": Effect.gen(function*() {
          yield* sql`CREATE SEQUENCE IF NOT EXISTS ${failedSeq}`
          // json, not jsonb: values come back as written (key order, "\u0000")
          yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
            task_id text PRIMARY KEY,
            name text NOT NULL,
            payload json NULL,
            state text NOT NULL,
            generation integer NOT NULL,
            attempts json NOT NULL,
            attempt_count integer NOT NULL,
            claim integer NOT NULL DEFAULT 0,
            value json NULL,
            failure json NULL,
            idempotency_key text NULL UNIQUE,
            created_at_ms bigint NOT NULL,
            completed_at_ms bigint NULL,
            failed_seq bigint NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
          )`
          // No index reads `state` or `attempts`, so a start or an end can be a HOT update (no index writes);
          // only failed tasks have a failed_seq (requeue clears it).
          yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${tableName}_failed_idx`)}
            ON ${table} (failed_seq) WHERE failed_seq IS NOT NULL`
        })
      })
    }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(storeError("create the tasks table"))
    )

    const queue = yield* PersistedQueue.makeStoreSql({
      tableName: `${tableName}_queue`,
      pollInterval: options.pollInterval ?? "20 millis",
      lockExpiration: options.lockExpiration ?? "2 minutes",
      lockRefreshInterval: options.lockRefreshInterval ?? "30 seconds"
    }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(storeError("create the queue table")),
      // makeStoreSql turns a failed migration into a defect; it is a store failure like any other
      Effect.catchDefect((defect) => Effect.fail(storeError("create the queue table")(defect)))
    )

    const columns = sql.literal(
      "task_id, name, payload::text AS payload, state, generation, attempts::text AS attempts, attempt_count, " +
        "claim, value::text AS value, failure::text AS failure, idempotency_key, created_at_ms, completed_at_ms, failed_seq"
    )
    const qualifiedColumns = sql.literal(
      "t.task_id, t.name, t.payload::text AS payload, t.state, t.generation, t.attempts::text AS attempts, " +
        "t.attempt_count, t.claim, t.value::text AS value, t.failure::text AS failure, t.idempotency_key, t.created_at_ms, " +
        "t.completed_at_ms, t.failed_seq"
    )
    const selectTask = (taskId: string) => sql<Row>`SELECT ${columns} FROM ${table} WHERE task_id = ${taskId}`
    const firstRecord = (rows: ReadonlyArray<Row>): TaskRecord | undefined =>
      rows[0] === undefined ? undefined : toRecord(rows[0])

    // Workers' starts and ends that fall in the same tick share one statement each: every
    // autocommitted statement costs a WAL flush, so the statements per task bound throughput.
    const startResolver = RequestResolver.make<StartRequest>((entries) =>
      sql<Row>`
        UPDATE ${table} AS t
        SET state = 'running', claim = v.claim, attempt_count = t.attempt_count + 1, updated_at = now()
        FROM json_to_recordset(${
        JSON.stringify(entries.map(({ request }) => ({
          task_id: request.taskId,
          generation: request.generation,
          claim: request.claim
        })))
      }::json) AS v(task_id text, generation integer, claim integer)
        WHERE t.task_id = v.task_id AND t.generation = v.generation AND t.state NOT IN ('succeeded', 'failed')
        RETURNING ${qualifiedColumns}`.pipe(
        Effect.map((rows) => {
          const started = new Map(rows.map((row) => [row.task_id, row]))
          for (const entry of entries) {
            const row = started.get(entry.request.taskId)
            // A row is updated once per statement: of two starts of one task in a batch, one took it
            const took = row !== undefined && Number(row.generation) === entry.request.generation &&
              Number(row.claim) === entry.request.claim
            entry.completeUnsafe(Exit.succeed(took ? toRecord(row) : undefined))
          }
        })
      )
    )
    const finishResolver = RequestResolver.make<FinishRequest>((entries) =>
      sql<{ readonly task_id: string }>`
        WITH v AS (
          SELECT * FROM json_to_recordset(${
        JSON.stringify(entries.map(({ request: { claim, end, generation, taskId } }) => ({
          task_id: taskId,
          generation,
          fence: claim,
          state: end.state,
          attempts: JSON.stringify(end.attempts),
          attempt_count: end.attemptCount,
          value: jsonText(end.value),
          failure: jsonText(end.failure),
          completed_at_ms: end.completedAtMs ?? null
        })))
      }::json) AS v(task_id text, generation integer, fence integer, state text, attempts text,
            attempt_count integer, value text, failure text, completed_at_ms bigint)
        ), written AS (
          UPDATE ${table} AS t SET
            state = v.state,
            attempts = v.attempts::json,
            attempt_count = v.attempt_count,
            value = COALESCE(v.value::json, t.value),
            failure = COALESCE(v.failure::json, t.failure),
            completed_at_ms = COALESCE(v.completed_at_ms, t.completed_at_ms),
            failed_seq = CASE WHEN v.state = 'failed' THEN nextval(${failedSeqName}) ELSE t.failed_seq END,
            updated_at = now()
          FROM v
          WHERE t.task_id = v.task_id AND t.generation = v.generation AND t.claim = v.fence
          RETURNING t.task_id, t.state
        ), announced AS (
          SELECT pg_notify(${channel}, task_id) FROM written WHERE state IN ('succeeded', 'failed')
        )
        SELECT task_id FROM written WHERE (SELECT count(*) FROM announced) >= 0`.pipe(
        Effect.map((rows) => {
          const written = new Set(rows.map((row) => row.task_id))
          for (const entry of entries) entry.completeUnsafe(Exit.succeed(written.has(entry.request.taskId)))
        })
      )
    )

    const service: DurableStoreService = {
      queue,
      create: (task, enqueue) =>
        Effect.gen(function*() {
          const inserted = yield* sql<Row>`
            INSERT INTO ${table}
              (task_id, name, payload, state, generation, attempts, attempt_count, claim, idempotency_key, created_at_ms)
            VALUES (${task.taskId}, ${task.name}, ${jsonText(task.payload)}::json, 'queued', 0, '[]', 0, 0,
              ${task.idempotencyKey ?? null}, ${task.createdAtMs})
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING ${columns}`
          // A conflict means the key's row exists (committed: the insert waited for it), and rows are never deleted
          const rows = inserted.length > 0
            ? inserted
            : yield* sql<Row>`SELECT ${columns} FROM ${table} WHERE idempotency_key = ${task.idempotencyKey ?? null}`
          const record = toRecord(rows[0]!)
          if (record.state === "queued") yield* enqueue(record)
          return record
        }).pipe(
          sql.withTransaction,
          Effect.catchTag("SqlError", (error) => Effect.fail(storeError("create a task")(error)))
        ),
      get: (taskId) => selectTask(taskId).pipe(Effect.map(firstRecord), Effect.mapError(storeError("read a task"))),
      start: (taskId, generation, claim) =>
        Effect.request(StartRequest({ taskId, generation, claim }), startResolver).pipe(
          Effect.mapError(storeError("start a task"))
        ),
      finish: (taskId, generation, claim, end) =>
        Effect.request(FinishRequest({ taskId, generation, claim, end }), finishResolver).pipe(
          Effect.mapError(storeError("finish a task"))
        ),
      release: (taskId, generation, claim) =>
        sql`
          UPDATE ${table} SET state = 'queued', attempt_count = attempt_count - 1, updated_at = now()
          WHERE task_id = ${taskId} AND generation = ${generation} AND claim = ${claim}
          AND state NOT IN ('succeeded', 'failed')`.pipe(Effect.asVoid, Effect.mapError(storeError("release a task"))),
      requeue: (taskId, enqueue) =>
        Effect.gen(function*() {
          const requeued = firstRecord(
            yield* sql<Row>`
              UPDATE ${table} SET state = 'queued', generation = generation + 1, attempts = '[]', attempt_count = 0,
                claim = 0, value = NULL, failure = NULL, completed_at_ms = NULL, failed_seq = NULL, updated_at = now()
              WHERE task_id = ${taskId} AND state = 'failed'
              RETURNING ${columns}`
          )
          if (requeued === undefined) return { record: firstRecord(yield* selectTask(taskId)), requeued: false }
          yield* enqueue(requeued)
          return { record: requeued, requeued: true }
        }).pipe(
          sql.withTransaction,
          Effect.catchTag("SqlError", (error) => Effect.fail(storeError("requeue a task")(error)))
        ),
      failedAfter: (afterSeq, limit) =>
        sql<Row>`
          SELECT ${columns} FROM ${table}
          WHERE failed_seq IS NOT NULL AND failed_seq > ${afterSeq} AND state = 'failed'
          ORDER BY failed_seq LIMIT ${limit}`.pipe(
          Effect.map((rows) => rows.map(toRecord)),
          Effect.mapError(storeError("read failed tasks"))
        ),
      counts: sql<{ readonly state: TaskState; readonly n: bigint | number | string }>`
        SELECT state, count(*) AS n FROM ${table} GROUP BY state`.pipe(
        Effect.map((rows) => {
          const counts: Record<TaskState, number> = { queued: 0, running: 0, retrying: 0, succeeded: 0, failed: 0 }
          for (const row of rows) counts[row.state] = Number(row.n)
          return counts as StateCounts
        }),
        Effect.mapError(storeError("count tasks"))
      ),
      endings: Effect.gen(function*() {
        // A LISTEN holds a pooled connection, and closing the pool waits for it:
        // the subscription ends with the caller's scope or the store's, whichever closes first
        const scope = yield* Scope.fork(storeScope)
        yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))
        const notifications = yield* pg.listen(channel).pipe(
          Scope.provide(scope),
          Effect.mapError(storeError("listen for endings"))
        )
        return Stream.fromQueue(notifications).pipe(
          Stream.map((notification) => notification.payload),
          Stream.mapError(storeError("listen for endings"))
        )
      })
    }
    return service
  })
