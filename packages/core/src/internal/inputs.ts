/**
 * Reading user input at the boundary: values shown in error messages, and
 * durations read strictly.
 */
import { Duration, Option } from "effect"

/** A value as an error message shows it. */
export const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "function") return "a function"
  if (value === null || typeof value !== "object") return String(value)
  return Object.prototype.toString.call(value)
}

/**
 * A duration input >= 0 as a `Duration`, or `undefined` when it is not one.
 * Effect reads NaN and an object without units as a zero duration; here they
 * are mistakes.
 */
export const readDuration = (input: unknown): Duration.Duration | undefined => {
  const unreadable = Number.isNaN(input) ||
    (typeof input === "object" && input !== null && !Duration.isDuration(input) && Object.keys(input).length === 0)
  const duration = unreadable ? Option.none() : Duration.fromInput(input as Duration.Input)
  return Option.isSome(duration) && Duration.toMillis(duration.value) >= 0 ? duration.value : undefined
}
