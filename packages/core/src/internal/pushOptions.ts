/**
 * `PushOptions` read at the boundary: checked once, kept as one small object
 * on the task's entry (none at all for a push without options).
 */
import { Duration } from "effect"
import type { PushOptions } from "../TaskPool.js"
import { readDuration, show } from "./inputs.js"

/** Checked push options. */
export interface Scheduling {
  readonly priority: number
  /** `undefined`: no delay given, the task lingers. */
  readonly delayMs: number | undefined
  readonly key: string | undefined
  readonly idempotencyKey: string | undefined
}

const fields = new Set(["priority", "delay", "key", "idempotencyKey"])

/**
 * The checked options, `undefined` for none, or what is wrong with them as a
 * string naming the option.
 */
export const readPushOptions = (options: unknown): Scheduling | undefined | string => {
  if (options === undefined) return undefined
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return `options must be an object of PushOptions, got ${show(options)}`
  }
  const unknown = Object.keys(options).filter((key) => !fields.has(key))
  if (unknown.length > 0) {
    return `${unknown.map((key) => JSON.stringify(key)).join(", ")} ${unknown.length === 1 ? "is not a push option" : "are not push options"} (options: ${[...fields].join(", ")})`
  }
  const { delay, idempotencyKey, key, priority } = options as PushOptions
  if (delay === undefined && idempotencyKey === undefined && key === undefined && priority === undefined) return undefined
  if (priority !== undefined && !(typeof priority === "number" && Number.isFinite(priority))) {
    return `priority must be a finite number when given, got ${show(priority)}`
  }
  let delayMs: number | undefined = undefined
  if (delay !== undefined) {
    const duration = readDuration(delay)
    if (duration === undefined || !Duration.isFinite(duration)) return `delay must be a finite duration >= 0 when given, got ${show(delay)}`
    delayMs = Duration.toMillis(duration)
  }
  if (key !== undefined && typeof key !== "string") return `key must be a string when given, got ${show(key)}`
  if (idempotencyKey !== undefined && typeof idempotencyKey !== "string") {
    return `idempotencyKey must be a string when given, got ${show(idempotencyKey)}`
  }
  return { priority: priority ?? 0, delayMs, key, idempotencyKey }
}
