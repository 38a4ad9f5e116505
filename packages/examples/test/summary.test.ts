import { describe, expect, it } from "@effect/vitest"
import { TaskResult } from "@taskpool/core"
import { Exit } from "effect"
import { formatDuration, formatSummary, summarize } from "../src/summary.js"

const result = (name: string, attemptCount: number, durationMs: number, errorCode?: string) =>
  new TaskResult({
    taskId: name,
    name,
    successful: errorCode === undefined,
    exit: errorCode === undefined ? Exit.void : Exit.fail(errorCode),
    attempts: [],
    attemptCount,
    ...(errorCode === undefined ? {} : { errorCode, errorMessage: errorCode }),
    createdAtMs: 1000,
    completedAtMs: 1000 + durationMs
  })

const results = [
  result("a", 1, 40),
  result("b", 1, 60),
  result("c", 1, 50),
  result("d", 3, 900),
  result("e", 1, 30, "Rejected"),
  result("f", 4, 1500, "Timeout")
]

describe("summary", () => {
  it("counts outcomes, attempts per task and the slowest tasks", () => {
    const summary = summarize(results, 2000, { slowest: 2 })
    expect(summary).toEqual({
      tasks: 6,
      elapsedMs: 2000,
      outcomes: [
        { outcome: "succeeded on first attempt", tasks: 3 },
        { outcome: "succeeded after retries", tasks: 1 },
        { outcome: "failed: Rejected", tasks: 1 },
        { outcome: "failed: Timeout", tasks: 1 }
      ],
      attempts: [
        { attempts: 1, tasks: 4 },
        { attempts: 2, tasks: 0 },
        { attempts: 3, tasks: 1 },
        { attempts: 4, tasks: 1 }
      ],
      slowest: [
        { name: "f", durationMs: 1500, attempts: 4, outcome: "failed: Timeout" },
        { name: "d", durationMs: 900, attempts: 3, outcome: "succeeded after retries" }
      ]
    })
  })

  it("renders the tables and the histogram as plain lines", () => {
    expect(formatSummary(summarize(results, 2000, { slowest: 2 }))).toEqual([
      "6 tasks in 2.00 s (3 tasks/s)",
      "",
      "outcome                     tasks  share",
      "succeeded on first attempt      3  50.0%",
      "succeeded after retries         1  16.7%",
      "failed: Rejected                1  16.7%",
      "failed: Timeout                 1  16.7%",
      "",
      "attempts  tasks",
      "       1      4  ██████████████████████████████",
      "       2      0",
      "       3      1  ████████",
      "       4      1  ████████",
      "",
      "slowest tasks    time  attempts  outcome",
      "f              1.50 s         4  failed: Timeout",
      "d              900 ms         3  succeeded after retries"
    ])
  })

  it("formats durations in ms below a second, in seconds above", () => {
    expect([formatDuration(0), formatDuration(999.4), formatDuration(1000), formatDuration(12340)]).toEqual([
      "0 ms",
      "999 ms",
      "1.00 s",
      "12.34 s"
    ])
  })
})
