/**
 * Machinery that other taskpool packages (`@taskpool/durable`) share with the
 * core, so that config rules, failure naming and input checks have one
 * implementation. Not part of the public API: it may change in any release.
 */
export { configRules, makeConfigDecoder } from "../Config.js"
export { describeFailure } from "./outcome.js"
export type { Failure } from "./outcome.js"
export { readDuration, show } from "./inputs.js"
export { backoffFormula } from "./retryDelays.js"
