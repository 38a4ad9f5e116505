/**
 * The Redis store: PersistedQueue's Redis store for the queue, and one JSON
 * string per task for the records. Every read-check-write is one Lua script,
 * so it is atomic and fenced, and the state counts and the failed set change
 * in the same script as the record.
 */
import { NodeRedis } from "@effect/platform-node"
import { Context, Duration, Effect, Layer, Stream } from "effect"
import type { Scope } from "effect"
import { PersistedQueue, Redis } from "effect/persistence"
import type { DurableStoreService, RedisStoreOptions } from "../DurableStore.js"
import type { DurableStoreError } from "../errors.js"
import { storeError } from "../errors.js"
import type { StateCounts, TaskRecord, TaskState } from "./records.js"

/**
 * A record as Redis keeps it. Scripts decode and re-encode records with
 * cjson, which turns `[]` into `{}` and rounds numbers to 14 digits, so the
 * user's JSON (payload, value, failure, attempts) is kept as JSON text that
 * scripts never look into.
 */
type Stored = Omit<TaskRecord, "payload" | "attempts" | "value" | "failure"> & {
  readonly payload?: string
  readonly attempts: string
  readonly value?: string
  readonly failure?: string
}

const states: ReadonlyArray<TaskState> = ["queued", "running", "retrying", "succeeded", "failed"]

const jsonText = (value: unknown): string => JSON.stringify(value) ?? "null"

const encode = ({ attempts, failure, payload, value, ...rest }: TaskRecord): string => {
  const stored: Stored = {
    ...rest,
    ...(payload === undefined ? {} : { payload: jsonText(payload) }),
    attempts: jsonText(attempts),
    ...(value === undefined ? {} : { value: jsonText(value) }),
    ...(failure === undefined ? {} : { failure: jsonText(failure) })
  }
  return JSON.stringify(stored)
}

const decode = (text: string): TaskRecord => {
  const { attempts, failure, payload, value, ...rest } = JSON.parse(text) as Stored
  return {
    ...rest,
    payload: payload === undefined ? undefined : JSON.parse(payload),
    attempts: JSON.parse(attempts),
    ...(value === undefined ? {} : { value: JSON.parse(value) }),
    ...(failure === undefined ? {} : { failure: JSON.parse(failure) })
  }
}

// Every script gets the same keys: KEYS[1] records (hash taskId -> JSON),
// KEYS[2] counts (hash state -> n), KEYS[3] failed (sorted set of taskIds by
// failedSeq), KEYS[4] idempotency keys (hash key -> taskId), KEYS[5] the
// failedSeq counter.
const prelude = `
local function load(taskId)
  local text = redis.call("HGET", KEYS[1], taskId)
  if text then return cjson.decode(text) end
  return nil
end
local function save(record)
  local text = cjson.encode(record)
  redis.call("HSET", KEYS[1], record.taskId, text)
  return text
end
local function move(record, state)
  redis.call("HINCRBY", KEYS[2], record.state, -1)
  redis.call("HINCRBY", KEYS[2], state, 1)
  if record.state == "failed" and state ~= "failed" then redis.call("ZREM", KEYS[3], record.taskId) end
  record.state = state
end
`

/** ARGV: taskId, record JSON, then the idempotency key if any. Returns { created, record JSON }. */
const createLua = `
local key = ARGV[3]
if key then
  local existingId = redis.call("HGET", KEYS[4], key)
  local existing = existingId and redis.call("HGET", KEYS[1], existingId)
  if existing then return { 0, existing } end
end
local existing = redis.call("HGET", KEYS[1], ARGV[1])
if existing then return { 0, existing } end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
if key then redis.call("HSET", KEYS[4], key, ARGV[1]) end
redis.call("HINCRBY", KEYS[2], "queued", 1)
return { 1, ARGV[2] }
`

/** ARGV: taskId, generation, claim. Returns the started record's JSON, or nil. */
const startLua = `
local record = load(ARGV[1])
if not record or record.generation ~= tonumber(ARGV[2]) or record.state == "succeeded" or record.state == "failed" then
  return nil
end
move(record, "running")
record.claim = tonumber(ARGV[3])
record.attemptCount = record.attemptCount + 1
return save(record)
`

/**
 * ARGV: taskId, generation, claim, state, attempts JSON, attemptCount,
 * value JSON, failure JSON, completedAtMs ("" when absent), ended channel.
 * Returns 1 when written, 0 when fenced out.
 */
const finishLua = `
local record = load(ARGV[1])
if not record or record.generation ~= tonumber(ARGV[2]) or record.claim ~= tonumber(ARGV[3]) then
  return 0
end
local state = ARGV[4]
move(record, state)
record.attempts = ARGV[5]
record.attemptCount = tonumber(ARGV[6])
if ARGV[7] ~= "" then record.value = ARGV[7] end
if ARGV[8] ~= "" then record.failure = ARGV[8] end
if ARGV[9] ~= "" then record.completedAtMs = tonumber(ARGV[9]) end
if state == "failed" then
  record.failedSeq = redis.call("INCR", KEYS[5])
  redis.call("ZADD", KEYS[3], record.failedSeq, record.taskId)
end
save(record)
if state == "succeeded" or state == "failed" then redis.call("PUBLISH", ARGV[10], record.taskId) end
return 1
`

/** ARGV: taskId, generation, claim. */
const releaseLua = `
local record = load(ARGV[1])
if not record or record.generation ~= tonumber(ARGV[2]) or record.claim ~= tonumber(ARGV[3])
  or record.state == "succeeded" or record.state == "failed" then
  return
end
move(record, "queued")
record.attemptCount = record.attemptCount - 1
save(record)
`

/**
 * ARGV: taskId. Returns { requeued, record JSON, previous JSON }; the record
 * is absent when the task is unknown.
 */
const requeueLua = `
local previous = redis.call("HGET", KEYS[1], ARGV[1])
if not previous then return { 0 } end
local record = cjson.decode(previous)
if record.state ~= "failed" then return { 0, previous } end
move(record, "queued")
record.generation = record.generation + 1
record.attempts = "[]"
record.attemptCount = 0
record.claim = 0
record.value = nil
record.failure = nil
record.completedAtMs = nil
record.failedSeq = nil
return { 1, save(record), previous }
`

/**
 * Takes back a write whose enqueue failed, unless the record has moved on.
 * ARGV: taskId, the JSON written, the JSON before it ("" when it was new).
 */
const undoLua = `
local current = redis.call("HGET", KEYS[1], ARGV[1])
if current ~= ARGV[2] then return end
local record = cjson.decode(current)
if ARGV[3] == "" then
  redis.call("HINCRBY", KEYS[2], record.state, -1)
  redis.call("HDEL", KEYS[1], ARGV[1])
  if record.idempotencyKey and redis.call("HGET", KEYS[4], record.idempotencyKey) == ARGV[1] then
    redis.call("HDEL", KEYS[4], record.idempotencyKey)
  end
  return
end
local previous = cjson.decode(ARGV[3])
move(record, previous.state)
if previous.state == "failed" then redis.call("ZADD", KEYS[3], previous.failedSeq, ARGV[1]) end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
`

/** ARGV: afterSeq, limit. Returns the records' JSON, oldest failure first. */
const failedAfterLua = `
local ids = redis.call("ZRANGEBYSCORE", KEYS[3], "(" .. ARGV[1], "+inf", "LIMIT", 0, ARGV[2])
local records = {}
for i, id in ipairs(ids) do records[i] = redis.call("HGET", KEYS[1], id) end
return records
`

/**
 * The Redis store behind `DurableStore.layerRedis`: connects to `url` and
 * keeps everything under `prefix` (default `taskpool:`), the queue under
 * `${prefix}queue:`. The connection closes with the scope.
 */
export const makeRedisStore = (
  options: RedisStoreOptions
): Effect.Effect<DurableStoreService, DurableStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? "taskpool:"
    const connection = yield* Layer.build(NodeRedis.layer({ url: options.url })).pipe(
      Effect.mapError(storeError("connect to Redis"))
    )
    const redis = Context.get(connection, Redis.Redis)
    const queue = yield* PersistedQueue.makeStoreRedis({
      prefix: `${prefix}queue:`,
      pollInterval: options.pollInterval ?? Duration.millis(20),
      lockExpiration: options.lockExpiration ?? Duration.seconds(90),
      lockRefreshInterval: options.lockRefreshInterval ?? Duration.seconds(30)
    }).pipe(Effect.provideService(Redis.Redis, redis))

    const tasksKey = `${prefix}tasks`
    const countsKey = `${prefix}counts`
    const keys = [tasksKey, countsKey, `${prefix}failed`, `${prefix}keys`, `${prefix}failed-seq`]
    const endedChannel = `${prefix}ended`
    const script = <Result>(lua: string) =>
      redis.eval(
        Redis.script(
          (...params: ReadonlyArray<string | number>) => [...keys, ...params],
          { lua: prelude + lua, numberOfKeys: keys.length }
        ).withReturnType<Result>()
      )
    const createScript = script<[created: number, record: string]>(createLua)
    const startScript = script<string | null>(startLua)
    const finishScript = script<number>(finishLua)
    const releaseScript = script<null>(releaseLua)
    const requeueScript = script<[requeued: number, record?: string, previous?: string]>(requeueLua)
    const undoScript = script<null>(undoLua)
    const failedAfterScript = script<Array<string>>(failedAfterLua)

    /** Runs a command and reads its reply; a Redis error or an unreadable reply becomes a `DurableStoreError`. */
    const run = <A, B>(operation: string, command: Effect.Effect<A, Redis.RedisError>, read: (reply: A) => B) =>
      command.pipe(
        Effect.flatMap((reply) => Effect.try({ try: () => read(reply), catch: (cause) => cause })),
        Effect.mapError(storeError(operation))
      )

    /** Best effort: the caller already has the error that matters. */
    const undo = (taskId: string, written: string, previous: string) =>
      Effect.ignore(undoScript(taskId, written, previous))

    const service: DurableStoreService = {
      queue,
      // Redis has no transaction spanning PersistedQueue's offer, so a failed
      // enqueue deletes the new record again. A crash between the two steps
      // leaves a queued record without an element; submitting again with the
      // same idempotency key finds the record and re-offers it (the offer is
      // idempotent by element id), which repairs it.
      create: (task, enqueue) =>
        Effect.gen(function*() {
          const written = encode({ ...task, state: "queued", generation: 0, attempts: [], attemptCount: 0, claim: 0 })
          const params = [task.taskId, written, ...(task.idempotencyKey === undefined ? [] : [task.idempotencyKey])]
          const { created, record, text } = yield* run(
            "create a task",
            createScript(...params),
            ([created, text]) => ({ created: created === 1, record: decode(text), text })
          )
          if (record.state !== "queued") return record
          yield* enqueue(record).pipe(Effect.onError(() => created ? undo(record.taskId, text, "") : Effect.void))
          return record
        }),
      get: (taskId) =>
        run(
          "read a task",
          redis.send<string | null>("HGET", tasksKey, taskId),
          (text) => text === null ? undefined : decode(text)
        ),
      start: (taskId, generation, claim) =>
        run(
          "start a task",
          startScript(taskId, generation, claim),
          (text) => text === null ? undefined : decode(text)
        ),
      finish: (taskId, generation, claim, end) =>
        run(
          "finish a task",
          finishScript(
            taskId,
            generation,
            claim,
            end.state,
            jsonText(end.attempts),
            end.attemptCount,
            end.value === undefined ? "" : jsonText(end.value),
            end.failure === undefined ? "" : jsonText(end.failure),
            end.completedAtMs ?? "",
            endedChannel
          ),
          (written) => written === 1
        ),
      release: (taskId, generation, claim) =>
        run("release a task", releaseScript(taskId, generation, claim), () => undefined),
      requeue: (taskId, enqueue) =>
        Effect.gen(function*() {
          const { previous, record, text } = yield* run(
            "requeue a task",
            requeueScript(taskId),
            ([requeued, text, previous]) => ({
              record: text === undefined ? undefined : decode(text),
              text,
              previous: requeued === 1 ? previous : undefined
            })
          )
          if (record === undefined || text === undefined || previous === undefined) return { record, requeued: false }
          yield* enqueue(record).pipe(Effect.onError(() => undo(taskId, text, previous)))
          return { record, requeued: true }
        }),
      failedAfter: (afterSeq, limit) =>
        limit <= 0
          ? Effect.succeed([])
          : run("list failed tasks", failedAfterScript(afterSeq, limit), (texts) => texts.map(decode)),
      counts: run(
        "count tasks",
        redis.send<Array<string | null>>("HMGET", countsKey, ...states),
        (reply) => Object.fromEntries(states.map((state, i) => [state, Number(reply[i] ?? 0)])) as StateCounts
      ),
      endings: Effect.map(redis.subscribe(endedChannel), (messages) =>
        Stream.fromQueue(messages).pipe(
          Stream.map((message) => message.message),
          Stream.mapError(storeError("receive task endings"))
        ))
    }
    return service
  })
