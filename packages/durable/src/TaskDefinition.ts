/**
 * A durable task is a named definition, not an Effect value: its payload
 * crosses processes, so it has a Schema, and every process that submits or
 * runs it registers the same definition.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schema } from "effect"
import { readDuration, show } from "@taskpool/core/internal"

/**
 * A registered kind of durable task. Build one with `TaskDefinition.make`.
 *
 * @since 0.1.0
 */
export interface TaskDefinition<P, A, E = never, R = never> {
  readonly _tag: "TaskDefinition"
  /** Unique per pool; the queue's name derives from it. */
  readonly name: string
  readonly payload: Schema.Codec<P, unknown>
  /** How the success value is stored; absent: as its JSON form. */
  readonly success: Schema.Codec<A, unknown> | undefined
  /** One attempt. */
  readonly execute: (payload: P) => Effect.Effect<A, E, R>
  /** Whether a typed failure may be retried (absent: all may). Defects and timeouts always may. */
  readonly retryable: Retryable<E> | undefined
  readonly timeout: Duration.Duration | undefined
  /** Override the pool's config for this definition. */
  readonly maxRetryTimes: number | undefined
  readonly baseRetryBackOffMs: number | undefined
  readonly maxRetryBackOffMs: number | undefined
  /** @internal The payload's JSON codec, made once. */
  readonly payloadJson: Schema.Codec<P, unknown>
  /** @internal The success value's JSON codec, made once. */
  readonly successJson: Schema.Codec<A, unknown> | undefined
}

/**
 * A `retryable` predicate. Declared as a method so that a definition of any
 * error type is still an `AnyTaskDefinition`.
 *
 * @since 0.1.0
 */
export type Retryable<E> = { check(error: E): boolean }["check"]

/**
 * Any definition, whatever its types.
 *
 * @since 0.1.0
 */
export type AnyTaskDefinition = TaskDefinition<any, any, any, any>

/**
 * The options of `TaskDefinition.make`.
 *
 * @since 0.1.0
 */
export interface TaskDefinitionOptions<P, A, E, R> {
  readonly name: string
  readonly payload: Schema.Codec<P, unknown>
  readonly success?: Schema.Codec<A, unknown> | undefined
  readonly execute: (payload: P) => Effect.Effect<A, E, R>
  readonly retryable?: ((error: E) => boolean) | undefined
  readonly timeout?: Duration.Input | undefined
  readonly maxRetryTimes?: number | undefined
  readonly baseRetryBackOffMs?: number | undefined
  readonly maxRetryBackOffMs?: number | undefined
}

const problemOf = (options: TaskDefinitionOptions<unknown, unknown, unknown, unknown>): string | undefined => {
  if (typeof options !== "object" || options === null) return `expected an options object, got ${show(options)}`
  if (typeof options.name !== "string" || options.name.length === 0 || options.name.length > 200) {
    return `name must be a non-empty string of at most 200 characters, got ${show(options.name)}`
  }
  if (!Schema.isSchema(options.payload)) return `payload must be a Schema, got ${show(options.payload)}`
  if (options.success !== undefined && !Schema.isSchema(options.success)) {
    return `success must be a Schema, got ${show(options.success)}`
  }
  if (typeof options.execute !== "function") return `execute must be a function, got ${show(options.execute)}`
  if (options.retryable !== undefined && typeof options.retryable !== "function") {
    return `retryable must be a function, got ${show(options.retryable)}`
  }
  if (options.timeout !== undefined && readDuration(options.timeout) === undefined) {
    return `timeout must be a duration >= 0, got ${show(options.timeout)}`
  }
  if (options.maxRetryTimes !== undefined && !Number.isSafeInteger(options.maxRetryTimes)) {
    return `maxRetryTimes must be an integer, got ${show(options.maxRetryTimes)}`
  }
  for (const key of ["baseRetryBackOffMs", "maxRetryBackOffMs"] as const) {
    const value = options[key]
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      return `${key} must be an integer >= 0, got ${show(value)}`
    }
  }
  return undefined
}

/**
 * Defines a durable task. Bad options throw a `TypeError` naming the option,
 * here at the call, so a misdefined task never reaches a store.
 *
 * @example
 * ```ts
 * const SendInvoice = TaskDefinition.make({
 *   name: "send-invoice",
 *   payload: Schema.Struct({ invoiceId: Schema.String }),
 *   success: Schema.Struct({ messageId: Schema.String }),
 *   execute: ({ invoiceId }) => mailer.send(invoiceId)
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = <P, A, E = never, R = never>(
  options: TaskDefinitionOptions<P, A, E, R>
): TaskDefinition<P, A, E, R> => {
  const problem = problemOf(options as TaskDefinitionOptions<unknown, unknown, unknown, unknown>)
  if (problem !== undefined) throw new TypeError(`TaskDefinition.make: ${problem}`)
  return {
    _tag: "TaskDefinition",
    name: options.name,
    payload: options.payload,
    success: options.success,
    execute: options.execute,
    retryable: options.retryable,
    timeout: options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout),
    maxRetryTimes: options.maxRetryTimes,
    baseRetryBackOffMs: options.baseRetryBackOffMs,
    maxRetryBackOffMs: options.maxRetryBackOffMs,
    payloadJson: Schema.toCodecJson(options.payload) as unknown as Schema.Codec<P, unknown>,
    successJson: options.success === undefined
      ? undefined
      : Schema.toCodecJson(options.success) as unknown as Schema.Codec<A, unknown>
  }
}

/**
 * Namespace-style access, as in `TaskDefinition.make(...)`.
 *
 * @since 0.1.0
 */
export const TaskDefinition = { make } as const
