import { describe, it } from "@effect/vitest"
import { announce, checkScenario, propOptions, Scenario } from "./scenario.js"

const ciRuns = 300
announce("TaskPool.reliability", ciRuns)

describe("TaskPool reliability", () => {
  it.effect.prop(
    "no task is ever lost, doubly ended or stuck: random tasks, callbacks, pushers, interrupts, reads and a random close",
    { scenario: Scenario },
    ({ scenario }) => checkScenario(scenario),
    propOptions(ciRuns)
  )
})
