/**
 * The pool's configuration: `TaskPoolConfig`, its defaults and rules, and the
 * decoder that turns bad input into a `TaskPoolConfigError` naming every
 * offending field.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type { SchemaIssue } from "effect"
import { TaskPoolConfigError } from "./errors.js"

/** Each worker is a fiber made when the pool starts, so their number has a ceiling. */
const maxWorkers = 10_000

const integer = Schema.Int
const integerAtLeast = (minimum: number) => Schema.Int.check(Schema.isGreaterThanOrEqualTo(minimum))
const withDefault = (schema: typeof Schema.Int, value: number) =>
  schema.pipe(Schema.withDecodingDefault(Effect.succeed(value)), Schema.withConstructorDefault(Effect.succeed(value)))

/**
 * The pool's configuration. Every field is optional on input and takes its
 * default; times are integer milliseconds. See the README's configuration table.
 *
 * @since 0.1.0
 */
export class TaskPoolConfig extends Schema.Class<TaskPoolConfig>("TaskPoolConfig")({
  /** The pool's name: the `pool` attribute of its metrics and spans (absent: "taskpool"). */
  name: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1))),
  /** Most attempts executing at once. */
  maxIoWorkerNum: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxWorkers })), 50),
  /** The longest a new task lingers before it is queued for a worker. */
  lingerMs: withDefault(integerAtLeast(100), 2000),
  /** Retries after the first failed attempt; `<= 0`: the first failure is final. */
  maxRetryTimes: withDefault(integer, 10),
  /** How many of the newest attempts a result keeps. */
  maxReservedAttempts: withDefault(integerAtLeast(1), 11),
  /** Wait before the first retry. */
  baseRetryBackOffMs: withDefault(integerAtLeast(0), 100),
  /** Cap on any retry wait. */
  maxRetryBackOffMs: withDefault(integerAtLeast(0), 50000),
  /** Most unfinished tasks held: lingering, queued, running or waiting to retry. */
  maxTaskNum: withDefault(integerAtLeast(1), 1000),
  /** How long `push` waits for room: `0` fails at once, negative waits forever. */
  maxBlockMs: withDefault(integer, 60000),
  /** Unread entries the failure queue keeps; older ones are dropped and counted. */
  maxFailedTasks: withDefault(integerAtLeast(0), 1000),
  /** Absent: closing waits for every task (safe close). Set: closing waits at most this long, then interrupts the rest. */
  shutdownTimeoutMs: Schema.optionalKey(integerAtLeast(0)),
  /** Draw each formula backoff uniformly from [0, delay] ("full jitter"); the cap applies before the draw. */
  retryJitter: Schema.Boolean.pipe(
    Schema.withDecodingDefault(Effect.succeed(false)),
    Schema.withConstructorDefault(Effect.succeed(false))
  ),
  /** At most `limit` attempts start in any window of `intervalMs`; absent: no limit. */
  rateLimit: Schema.optionalKey(Schema.Struct({ limit: integerAtLeast(1), intervalMs: integerAtLeast(1) }))
}) {}

/**
 * What `TaskPool.layer` accepts: any subset of the fields, in their encoded form.
 *
 * @since 0.1.0
 */
export type TaskPoolConfigInput = typeof TaskPoolConfig.Encoded

type Field = keyof typeof TaskPoolConfig.fields

/** The rule of each field, as the error message states it. */
export const configRules: Record<Field, string> = {
  name: "a non-empty string",
  maxIoWorkerNum: `an integer >= 1 and <= ${maxWorkers}`,
  lingerMs: "an integer >= 100",
  maxRetryTimes: "an integer",
  maxReservedAttempts: "an integer >= 1",
  baseRetryBackOffMs: "an integer >= 0",
  maxRetryBackOffMs: "an integer >= 0",
  maxTaskNum: "an integer >= 1",
  maxBlockMs: "an integer",
  maxFailedTasks: "an integer >= 0",
  shutdownTimeoutMs: "an integer >= 0",
  retryJitter: "a boolean",
  rateLimit: "{ limit: an integer >= 1, intervalMs: an integer >= 1 } and no other keys"
}

const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "bigint") return `${value}n`
  if (value === null || typeof value !== "object") return String(value)
  try {
    return JSON.stringify(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/** The config fields an issue points at (the first key of each issue's path). */
const offendingFields = (
  issue: SchemaIssue.Issue,
  path: ReadonlyArray<PropertyKey>,
  isField: (key: string) => boolean,
  into: Set<string>
): void => {
  switch (issue._tag) {
    case "Pointer":
      return offendingFields(issue.issue, [...path, ...issue.path], isField, into)
    case "Encoding":
      return offendingFields(issue.issue, path, isField, into)
    case "Composite":
      for (const inner of issue.issues) offendingFields(inner, path, isField, into)
      return
    default: {
      const key = path[0]
      if (typeof key === "string" && isField(key)) into.add(key)
    }
  }
}

/**
 * Makes a strict decoder for a config schema: every field is named with its
 * rule on bad input, and keys that are not fields are errors. `rejected` keys
 * get their own reason (a field that exists elsewhere but not here). Shared
 * with `@taskpool/durable`, whose worker config is a subset of this one.
 *
 * @since 0.2.0
 */
export const makeConfigDecoder = <S extends Schema.Top & { readonly fields: Schema.Struct.Fields }>(options: {
  readonly label: string
  readonly schema: S
  readonly rules: Readonly<Record<string, string>>
  readonly rejected?: Readonly<Record<string, string>>
}) => {
  const { label, rules, schema } = options
  const rejected = options.rejected ?? {}
  const fieldNames = Object.keys(rules)
  const isField = (key: string) => Object.hasOwn(rules, key)
  const configError = (problems: ReadonlyArray<string>, fields: ReadonlyArray<string>) =>
    new TaskPoolConfigError({
      message: `Invalid ${label}:\n${problems.map((problem) => `  ${problem}`).join("\n")}`,
      fields
    })
  const decode = Schema.decodeUnknownEffect(schema as unknown as Schema.Decoder<S["Type"]>)
  return (input: unknown): Effect.Effect<S["Type"], TaskPoolConfigError> =>
    Effect.suspend(() => {
      const value = input === undefined ? {} : input
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        return Effect.fail(configError([`expected an object of ${label} fields, got ${show(value)}`], []))
      }
      // Read every key once into a plain object: a getter that throws is bad input, not a crash.
      // No prototype: a key such as "__proto__" is a plain (unknown) key here, never a setter.
      const record: Record<string, unknown> = Object.create(null)
      const unreadable: Array<string> = []
      for (const key of Object.keys(value)) {
        try {
          record[key] = (value as Record<string, unknown>)[key]
        } catch {
          unreadable.push(key)
        }
      }
      if (unreadable.length > 0) {
        return Effect.fail(configError(unreadable.map((key) => `${key}: could not be read (its getter threw)`), unreadable))
      }
      const unknownKeys = Object.keys(record).filter((key) => !isField(key))
      const known: Record<string, unknown> = Object.create(null)
      for (const key of Object.keys(record)) if (isField(key)) known[key] = record[key]
      return decode(known, { errors: "all", onExcessProperty: "error" }).pipe(
        Effect.map((config) => ({ config, invalid: new Set<string>(), schemaMessage: undefined })),
        Effect.catchTag("SchemaError", (error) => {
          const invalid = new Set<string>()
          offendingFields(error.issue, [], isField, invalid)
          return Effect.succeed({ config: undefined, invalid, schemaMessage: error.message })
        }),
        Effect.flatMap(({ config, invalid, schemaMessage }) => {
          if (config !== undefined && unknownKeys.length === 0) return Effect.succeed(config)
          const bad = fieldNames.filter((field) => invalid.has(field))
          const problems = [
            ...bad.map((field) => `${field}: expected ${rules[field]}, got ${show(record[field])}`),
            ...unknownKeys.map((key) =>
              Object.hasOwn(rejected, key)
                ? `${key}: ${rejected[key]}`
                : `${key}: not a ${label} field (fields: ${fieldNames.join(", ")})`
            )
          ]
          // An issue that points at no field is still reported, in Schema's words.
          if (problems.length === 0 && schemaMessage !== undefined) problems.push(schemaMessage)
          return Effect.fail(configError(problems, [...bad, ...unknownKeys]))
        })
      )
    })
}

/**
 * Decodes unknown input into a `TaskPoolConfig`. `undefined` means "all
 * defaults". On bad input the error's message names every offending field and
 * its rule, one per line, e.g. `lingerMs: expected an integer >= 100, got 50`;
 * a key that is not a field is an error, never ignored.
 *
 * @since 0.1.0
 */
export const decodeConfig: (input: unknown) => Effect.Effect<TaskPoolConfig, TaskPoolConfigError> = makeConfigDecoder({
  label: "TaskPoolConfig",
  schema: TaskPoolConfig,
  rules: configRules
})
