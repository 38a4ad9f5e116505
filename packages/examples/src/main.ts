/**
 * The `npm start` entry: the seed example (ten tasks that fail once, then
 * succeed), then the larger demo with live progress and its summary. Run with
 * `NodeRuntime.runMain`, so Ctrl-C interrupts it and the pools close safely.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { pathToFileURL } from "node:url"
import { demo } from "./demo.js"
import type { DemoOptions } from "./demo.js"
import { seedExample } from "./seed.js"

/**
 * Runs the seed example, then the demo with `options`; returns the demo's summary.
 *
 * @since 0.1.0
 */
export const main = Effect.fn("main")(function*(options: DemoOptions = {}) {
  const log = options.log ?? console.log
  yield* seedExample({ log })
  log("")
  return yield* demo(options)
})

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(main())
}
