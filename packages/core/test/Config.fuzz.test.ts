/**
 * `TaskPool.layer` given arbitrary unknown values: a valid pool (that runs a
 * task and closes) or a `TaskPoolConfigError` naming each bad field with its
 * rule, and each key that is not a field; never a defect, never a hang.
 *
 * The oracle below restates the README's rules independently of `Config.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Cause, Context, Effect, Exit, Fiber, Layer, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { decodeConfig, Task, TaskPool, TaskPoolConfig, TaskPoolConfigError } from "../src/index.js"
import { announce, propOptions } from "./scenario.js"

const ciRuns = 400
announce("Config.fuzz", ciRuns)

// ── the oracle ─────────────────────────────────────────────────────────────

type Rule =
  | { readonly _tag: "int"; readonly minimum: number; readonly default: number | undefined }
  | { readonly _tag: "name" }

const int = (minimum: number, defaultValue: number | undefined): Rule => ({ _tag: "int", minimum, default: defaultValue })

/** The README's configuration table. */
const rules: Record<string, Rule> = {
  name: { _tag: "name" },
  maxIoWorkerNum: int(1, 50),
  lingerMs: int(100, 2000),
  maxRetryTimes: int(-Infinity, 10),
  maxReservedAttempts: int(1, 11),
  baseRetryBackOffMs: int(0, 100),
  maxRetryBackOffMs: int(0, 50000),
  maxTaskNum: int(1, 1000),
  maxBlockMs: int(-Infinity, 60000),
  maxFailedTasks: int(0, 1000),
  shutdownTimeoutMs: int(0, undefined)
}
const fieldNames = Object.keys(TaskPoolConfig.fields)

/** Values so large that a pool may refuse them (an upper bound, e.g. maxIoWorkerNum <= 10,000) as well as accept them. */
const HUGE = 10_001

type Verdict = "valid" | "invalid" | "either"

const judge = (field: string, value: unknown): Verdict => {
  const rule = rules[field]
  if (rule === undefined) return "either" // a field this oracle does not know yet
  if (value === undefined) {
    // Missing and undefined take the default; the optional name and shutdownTimeoutMs may refuse an explicit undefined.
    return rule._tag === "name" || (rule._tag === "int" && rule.default === undefined) ? "either" : "valid"
  }
  if (rule._tag === "name") return typeof value === "string" && value.length > 0 ? "valid" : "invalid"
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < rule.minimum) return "invalid"
  return Math.abs(value) >= HUGE ? "either" : "valid"
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

// ── the inputs ─────────────────────────────────────────────────────────────

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))
const pick = <A>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  Arbitrary.map(Arbitrary.schema(between(0, values.length - 1)), (i) => values[i]!)

/**
 * Edge numbers. No value in (10^4, 2^32): as a `maxIoWorkerNum` a pool
 * without an upper bound would fork that many workers up front (10^6 takes
 * ~24 s and 3 GB), see regressions.test.ts; 2^32 and above fail fast.
 */
const edgeNumbers = [
  0, -0, 1, -1, 2, 99, 100, 101, 1000, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e21, 0.5, 1.5, -1.5, 99.9,
  Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.EPSILON
]
const oddValues: ReadonlyArray<unknown> = [
  undefined, null, true, false, "", "100", "fast", "50ms", 10n, [], [1], {}, { value: 1 }, () => 1, new Date(0), Symbol("x")
]
const junkKeys = [
  "maxIoWorkerNums", "linger", "MaxIoWorkerNum", "max_task_num", "shutdownTimeout", "constructor", "toString",
  "hasOwnProperty", "__proto__", "", " lingerMs", "lingerMs "
]

const valueArb: Arbitrary.Arbitrary<unknown> = Arbitrary.flatMap(Arbitrary.schema(between(0, 5)), (k): Arbitrary.Arbitrary<unknown> => {
  switch (k) {
    case 0:
      return Arbitrary.schema(between(-3, 300))
    case 1:
    case 5:
      return pick(edgeNumbers)
    case 2:
      return pick(oddValues)
    case 3:
      return Arbitrary.schema(Schema.String)
    case 4:
    default:
      return Arbitrary.schema(between(-1, 6000))
  }
})

const keyArb: Arbitrary.Arbitrary<string> = Arbitrary.flatMap(Arbitrary.schema(between(0, 5)), (k) =>
  k <= 3 ? pick(Object.keys(rules)) : k === 4 ? pick(junkKeys) : Arbitrary.schema(Schema.String))

const entriesArb = Arbitrary.array(Arbitrary.all([keyArb, valueArb]), { maxLength: 6 })

/** Not a plain object at all. */
const nonObjects: ReadonlyArray<unknown> = [
  null, 42, 0, "lingerMs=100", "", true, 10n, Symbol("config"), () => ({}), [], [{ lingerMs: 100 }], new Date(0),
  new Map([["lingerMs", 100]]), new Set(), /lingerMs/, Promise.resolve({}), new (class Config { lingerMs = 100 })(),
  Object.assign(Object.create({ lingerMs: 50 }), { maxTaskNum: 5 }), new Error("config")
]

type Input =
  | { readonly _tag: "record"; readonly entries: ReadonlyArray<readonly [string, unknown]>; readonly nullProto: boolean }
  | { readonly _tag: "other"; readonly value: unknown }
  | { readonly _tag: "undefined" }

const inputArb: Arbitrary.Arbitrary<Input> = Arbitrary.flatMap(Arbitrary.schema(between(0, 9)), (k): Arbitrary.Arbitrary<Input> =>
  k === 0
    ? Arbitrary.map(pick(nonObjects), (value): Input => ({ _tag: "other", value }))
    : k === 1
    ? Arbitrary.Constant<Input>({ _tag: "undefined" })
    : k === 2
    ? Arbitrary.map(
      Arbitrary.all([pick(Object.keys(rules)), pick(edgeNumbers)]),
      ([key, value]): Input => ({ _tag: "record", entries: [[key, value]], nullProto: false })
    )
    : Arbitrary.map(
      Arbitrary.all([entriesArb, Arbitrary.schema(Schema.Boolean)]),
      ([entries, nullProto]): Input => ({ _tag: "record", entries, nullProto: nullProto && k === 9 })
    ))

const materialize = (input: Input): unknown => {
  switch (input._tag) {
    case "undefined":
      return undefined
    case "other":
      return input.value
    case "record": {
      const record: Record<string, unknown> = input.nullProto ? Object.create(null) : {}
      // defineProperty, so "__proto__" is an own key as JSON.parse would make it.
      for (const [key, value] of input.entries) {
        Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true })
      }
      return record
    }
  }
}

// ── the property ───────────────────────────────────────────────────────────

/** Fails the test (never hangs it) if `effect` has not finished within `ms` of real time. */
const withinRealTime = <A, E, R>(ms: number, what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.raceFirst(
    effect,
    Effect.callback<never, Error>((resume) => {
      const timer = setTimeout(() => resume(Effect.fail(new Error(`${what} hung for ${ms} ms of real time`))), ms)
      return Effect.sync(() => clearTimeout(timer))
    })
  )

const show = (value: unknown) => {
  try {
    return typeof value === "bigint" || typeof value === "symbol" || typeof value === "function"
      ? String(value)
      : JSON.stringify(value, (_, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : typeof v === "bigint" ? `${v}n` : v)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

const checkInput = (input: Input) =>
  Effect.gen(function*() {
    const value = materialize(input)
    const scope = yield* Scope.make()
    const built = yield* withinRealTime(5000, "building the layer", Effect.exit(Layer.buildWithScope(TaskPool.layer(value as never), scope)))
    const where = `input ${show(value)}`

    // What the oracle expects.
    let expectation: { readonly verdict: Verdict; readonly bad: ReadonlySet<string>; readonly either: ReadonlySet<string> }
    if (value === undefined) {
      expectation = { verdict: "valid", bad: new Set(), either: new Set() }
    } else if (!isPlainObject(value)) {
      // Arrays, primitives and functions are refused; other objects (a Date, a Map, a class instance) may be
      // read as an object with no or some fields: a pool or a TaskPoolConfigError, never a defect.
      const refused = value === null || typeof value !== "object" || Array.isArray(value)
      expectation = { verdict: refused ? "invalid" : "either", bad: new Set(), either: new Set() }
    } else {
      const bad = new Set<string>()
      const either = new Set<string>()
      for (const key of Object.keys(value)) {
        const verdict = fieldNames.includes(key) ? judge(key, value[key]) : "invalid"
        if (verdict === "invalid") bad.add(key)
        if (verdict === "either") either.add(key)
      }
      expectation = { verdict: bad.size > 0 ? "invalid" : either.size > 0 ? "either" : "valid", bad, either }
    }

    if (Exit.isFailure(built)) {
      yield* Scope.close(scope, Exit.void)
      const error = Cause.findError(built.cause)
      assert.isTrue(
        error._tag === "Success" && error.success instanceof TaskPoolConfigError,
        `${where}: the layer failed with something other than a TaskPoolConfigError: ${Cause.pretty(built.cause)}`
      )
      assert.notStrictEqual(expectation.verdict, "valid", `${where}: a valid config was refused: ${(error as { success: TaskPoolConfigError }).success?.message}`)
      const configError = (error as { success: TaskPoolConfigError }).success
      const named = new Set(configError.fields)
      for (const field of expectation.bad) {
        assert.isTrue(named.has(field), `${where}: fields ${show(configError.fields)} do not name ${show(field)}`)
        // The rule's wording is Config.test.ts's business; here: the field, then what it expected.
        const line = fieldNames.includes(field) ? `${field}: expected ` : `${field}: not a TaskPoolConfig field`
        assert.include(configError.message, line, `${where}: the message does not say "${line}"`)
      }
      for (const field of isPlainObject(value) ? named : []) {
        assert.isTrue(
          expectation.bad.has(field) || expectation.either.has(field),
          `${where}: fields name ${show(field)}, which is fine`
        )
      }
      if (isPlainObject(value) || value === undefined) {
        assert.isAbove(named.size, 0, `${where}: a TaskPoolConfigError that names no field`)
      } else {
        assert.include(configError.message, "TaskPoolConfig", where)
      }
      return
    }

    assert.notStrictEqual(expectation.verdict, "invalid", `${where}: an invalid config was accepted (bad: ${show([...expectation.bad])})`)
    // The decoded values are the given ones, or the defaults.
    if (isPlainObject(value) || value === undefined) {
      const config = yield* decodeConfig(value)
      for (const [field, rule] of Object.entries(rules)) {
        const given = value?.[field]
        const expected = given !== undefined ? given : rule._tag === "name" ? undefined : rule.default
        assert.deepStrictEqual((config as unknown as Record<string, unknown>)[field], expected, `${where}: ${field}`)
      }
    }
    // A valid pool: it runs a task and closes, on time.
    const service = Context.getOption(built.value, TaskPool)
    assert.isTrue(service._tag === "Some", `${where}: the layer built no TaskPool`)
    if (service._tag !== "Some") return
    const handle = yield* service.value.push(Task.make({ name: "probe", execute: Effect.succeed("ok") }))
    const closing = yield* Effect.forkDetach(Scope.close(scope, Exit.void))
    // The close needs no time: a safe close runs the queued probe, a limited one may interrupt it.
    yield* TestClock.adjust(0)
    yield* withinRealTime(5000, `${where}: the pool's close`, Fiber.join(closing))
    const result = yield* handle.result
    assert.isTrue(result.successful || result.errorCode === "Interrupted", `${where}: the probe task ended ${result.errorCode}`)
  })

describe("TaskPool.layer given arbitrary input", () => {
  it.effect.prop(
    "is a valid pool or a TaskPoolConfigError naming each bad field; never a defect, never a hang",
    { input: inputArb },
    ({ input }) => checkInput(input),
    propOptions(ciRuns, 24, 10)
  )

  /** Checks every input, then reports every one that broke the rule (not just the first). */
  const checkAll = (inputs: ReadonlyArray<Input>) =>
    Effect.gen(function*() {
      const broken: Array<string> = []
      for (const input of inputs) {
        const exit = yield* Effect.exit(checkInput(input))
        if (Exit.isFailure(exit)) broken.push(Cause.pretty(exit.cause).split("\n")[0]!)
      }
      assert.deepStrictEqual(broken, [], `${broken.length} of ${inputs.length} inputs broke the rule`)
    })

  it.effect("every field given every edge value and odd value, one at a time", () =>
    checkAll(Object.keys(rules).flatMap((key) =>
      [...edgeNumbers, ...oddValues].map((value): Input => ({ _tag: "record", entries: [[key, value]], nullProto: false }))
    )))

  it.effect("every key that is not a field (__proto__ and constructor included), alone or beside a valid field", () =>
    checkAll(junkKeys.flatMap((key) =>
      [0, "x", { lingerMs: 5000 }].flatMap((value): Array<Input> => [
        { _tag: "record", entries: [[key, value]], nullProto: false },
        { _tag: "record", entries: [["lingerMs", 200], [key, value]], nullProto: false }
      ])
    )))

  it.effect("every input that is not a plain object", () => checkAll(nonObjects.map((value): Input => ({ _tag: "other", value }))))
})
