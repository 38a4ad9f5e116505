import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ordersExample } from "../src/orders.js"
import { runOnTestClock } from "./utils.js"

describe("orders example", () => {
  it.effect("every scheduling control holds, seen from outside the pool", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const report = yield* runOnTestClock(ordersExample({ log: (line) => lines.push(line) }))
      expect(report.delivered).toBe(72)
      expect(report.tasks).toBe(60)
      expect(report.cancelled).toStrictEqual([13])
      expect(report.fulfilled).toBe(59)
      expect(report.failed).toBe(0)
      expect(report.customersInOrder).toBe(true)
      expect(report.mostRunningBefore).toBe(2)
      expect(report.mostRunningAfter).toBe(4)
      expect(report.mostStartsPerWindow).toBe(10)
      expect(report.startsWhilePaused).toBe(0)
      expect(report.preOrdersOnTime).toBe(true)
      expect(report.meanWaitVipMs).toBeLessThan(report.meanWaitRegularMs / 2)
      expect(lines[0]).toBe("orders delivered by the feed   72 (12 duplicates collapsed into 60 tasks)")
    }))
})
