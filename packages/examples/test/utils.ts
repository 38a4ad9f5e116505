import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

/**
 * Runs `effect` on the TestClock, advancing it 100 ms at a time until the
 * effect is done (so no sleep is skipped while the effect is still busy).
 */
export const runOnTestClock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("100 millis")
    return yield* Fiber.join(fiber)
  })
