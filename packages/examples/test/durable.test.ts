import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { durableExample } from "../src/durable.js"

// The workers run the compiled example (dist/durable.js): `npm test` builds it first.
describe("durable example", () => {
  it.live("200 payments across three worker processes, one killed midway: every payment ends, none lost", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const report = yield* durableExample({ tasks: 200, log: (line) => lines.push(line) })
      // Order ids 13, 63, 113, 163 are declined; 29, 79, 129, 179 stay down; the other 192 succeed.
      expect(report.submitted).toBe(200)
      expect(report.succeeded).toBe(192)
      expect(report.failed).toBe(8)
      expect(report.declined).toBe(4)
      // A down gateway's payment ends out of retries, or Lost if the killed worker held its last attempt.
      expect(report.outOfRetries + report.lostLastAttempt).toBe(4)
      // 20 payments fail once and succeed on the retry, unless their first run was the killed worker's.
      expect(report.succeededAfterRetry).toBeLessThanOrEqual(20)
      expect(report.succeededAfterRetry).toBeGreaterThanOrEqual(20 - report.heldByKilled.length)
      // A worker was killed, and only payments it held ran twice.
      expect(report.killedPid).toBeTypeOf("number")
      expect(report.runTwice.every((orderId) => report.heldByKilled.includes(orderId))).toBe(true)
      expect(report.offerToStartP50Ms).toBeLessThanOrEqual(report.offerToStartP99Ms)
      expect(report.tasksPerSecond).toBeGreaterThan(0)
      // The embedded PostgreSQL is stopped and its data directory gone.
      expect(existsSync(report.dataDir)).toBe(false)
      expect(lines).toContain("submitted     200")
      expect(lines.some((line) => line.startsWith("offer→start   p50 "))).toBe(true)
    }), 60_000)
})
