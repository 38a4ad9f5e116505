/**
 * Names a failed attempt: its `errorCode`, `errorMessage`, and whether the
 * typed failure inside it may be retried.
 */
import { Cause } from "effect"
import { TaskTimeoutError } from "../errors.js"

export interface Failure {
  readonly errorCode: string
  readonly errorMessage: string
  /** A typed failure, if the cause holds one; only these are offered to `retryable`. */
  readonly typed: { readonly error: unknown } | undefined
}

const messageOf = (value: unknown): string => {
  if (typeof value === "string") return value
  if (typeof value === "object" && value !== null) {
    const message = (value as { readonly message?: unknown }).message
    if (typeof message === "string" && message.length > 0) return message
    const tag = (value as { readonly _tag?: unknown })._tag
    if (typeof tag === "string") return tag
    try {
      return JSON.stringify(value)
    } catch {
      return String(value)
    }
  }
  return String(value)
}

/** Describes the cause of a failed attempt. */
export const describeFailure = (cause: Cause.Cause<unknown>): Failure => {
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") {
      const error = reason.error
      const tag = typeof error === "object" && error !== null ? (error as { readonly _tag?: unknown })._tag : undefined
      return {
        errorCode: typeof tag === "string" ? tag : "Failure",
        errorMessage: messageOf(error),
        typed: { error }
      }
    }
  }
  for (const reason of cause.reasons) {
    if (reason._tag === "Die") {
      const defect = reason.defect
      if (defect instanceof TaskTimeoutError) {
        return { errorCode: "Timeout", errorMessage: defect.message, typed: undefined }
      }
      return { errorCode: "Defect", errorMessage: messageOf(defect), typed: undefined }
    }
  }
  return { errorCode: "Interrupted", errorMessage: "the attempt was interrupted", typed: undefined }
}
