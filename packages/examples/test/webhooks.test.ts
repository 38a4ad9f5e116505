import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FileSystem, Fiber, Schema } from "effect"
import { plainRenderer } from "../src/progress.js"
import { behaviourOf } from "../src/receiver.js"
import { DeadLetterJson, isRetryable, WebhookRejected, WebhookUnreachable } from "../src/webhook.js"
import type { DeadLetter } from "../src/webhook.js"
import { webhooksExample } from "../src/webhooks.js"
import type { WebhooksOptions } from "../src/webhooks.js"

/**
 * Small sizes and short timings, so a run against the real local receiver takes well under a second.
 * The timeout leaves room for a cold first request; a slow answer never comes before it.
 */
const quick = { timeoutMs: 300, slowMs: 5000, latencyMs: 2, backoffMs: 10 } satisfies WebhooksOptions

const decodeDeadLetter = Schema.decodeUnknownSync(DeadLetterJson)

/** The dead letters in `file`, one per JSON line. */
const readDeadLetters = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file)
    return text.split("\n").filter((line) => line.length > 0).map((line) => decodeDeadLetter(line))
  })

/** The webhook ids in `deadLetters`, in ascending order (they are written as the failures come). */
const idsOf = (deadLetters: ReadonlyArray<DeadLetter>) =>
  deadLetters.map((letter) => letter.webhook.id).sort((a, b) => a - b)

const idsWhere = (count: number, behaviour: ReturnType<typeof behaviourOf>) =>
  Array.from({ length: count }, (_, id) => id).filter((id) => behaviourOf(id) === behaviour)

describe("webhooks example", () => {
  it("retries 5xx, 429 and unreachable receivers; never other statuses", () => {
    const rejected = (status: number) => new WebhookRejected({ message: `HTTP ${status}`, webhookId: 1, status })
    for (const status of [500, 502, 503, 429]) expect(isRetryable(rejected(status))).toBe(true)
    for (const status of [400, 401, 404, 410, 422]) expect(isRetryable(rejected(status))).toBe(false)
    expect(isRetryable(new WebhookUnreachable({ message: "ECONNREFUSED", webhookId: 1 }))).toBe(true)
  })

  it.live("delivers every webhook but the 400s, which are exactly the dead letters", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const deadLetterFile = `${yield* fs.makeTempDirectoryScoped()}/dead-letters.jsonl`
      const lines: Array<string> = []
      const report = yield* webhooksExample({
        ...quick,
        webhooks: 40,
        deadLetterFile,
        renderer: plainRenderer(() => {}),
        log: (line) => lines.push(line)
      })

      const deadLetters = yield* readDeadLetters(deadLetterFile)
      const rejected = idsWhere(40, "rejected")
      expect(idsOf(deadLetters)).toEqual(rejected)
      for (const letter of deadLetters) {
        expect(letter).toMatchObject({ status: 400, errorCode: "WebhookRejected", errorMessage: "HTTP 400", attempts: 1 })
      }
      expect(deadLetters.find((letter) => letter.webhook.id === 3)?.webhook).toMatchObject({ orderId: "order-10003" })
      expect(report.deadLetters).toBe(rejected.length)

      const unavailable = idsWhere(40, "unavailable").length
      const slow = idsWhere(40, "slow").length
      expect(report.receiver).toEqual({
        byStatus: { 200: 40 - rejected.length, 400: rejected.length, 503: 2 * unavailable },
        aborted: slow
      })
      expect(report.summary.outcomes).toEqual([
        { outcome: "succeeded on first attempt", tasks: 40 - rejected.length - unavailable - slow },
        { outcome: "succeeded after retries", tasks: unavailable + slow },
        { outcome: "failed: WebhookRejected", tasks: rejected.length }
      ])
      expect(report.summary.attempts).toEqual([
        { attempts: 1, tasks: 40 - unavailable - slow },
        { attempts: 2, tasks: slow },
        { attempts: 3, tasks: unavailable }
      ])
      expect(lines.at(-1)).toBe(`dead letters: ${rejected.length} written to ${deadLetterFile}`)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.live("an interrupted run closes the pool safely: every pushed 400 still becomes a dead letter", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const deadLetterFile = `${yield* fs.makeTempDirectoryScoped()}/dead-letters.jsonl`
      const progress: Array<string> = []
      const lines: Array<string> = []
      const fiber = yield* Effect.forkChild(webhooksExample({
        ...quick,
        webhooks: 400,
        latencyMs: 10,
        deadLetterFile,
        renderer: plainRenderer((line) => progress.push(line), 20),
        log: (line) => lines.push(line)
      }))
      yield* Effect.sleep("150 millis")
      yield* Fiber.interrupt(fiber)

      const pushed = Number(/^pushed (\d+)\/400/.exec(progress.at(-1) ?? "")?.[1])
      expect(pushed).toBeGreaterThan(0)
      expect(pushed).toBeLessThan(400)
      const deadLetters = yield* readDeadLetters(deadLetterFile)
      expect(idsOf(deadLetters)).toEqual(idsWhere(pushed, "rejected"))
      expect(lines.at(-1)).toBe(`interrupted: the pool closed safely; dead letters are in ${deadLetterFile}`)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
