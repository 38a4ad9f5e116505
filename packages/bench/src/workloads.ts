/**
 * The workloads (one row of the results table each; W5 has one row per size)
 * and the taskpool targets, checked against the medians (W7 has none).
 */
import { collectGarbage, lastTaskEnd } from "./peer.js"
import type { Peer } from "./peer.js"
import { fastq } from "./peers/fastq.js"
import { naiveEffect } from "./peers/naiveEffect.js"
import { pQueue } from "./peers/pQueue.js"
import { rawFloor } from "./peers/rawFloor.js"
import { taskpool } from "./peers/taskpool.js"
import { summarize } from "./stats.js"
import type { Summary } from "./stats.js"

/** Every implementation, taskpool first; the table's columns. */
export const peers: ReadonlyArray<Peer> = [taskpool, pQueue, fastq, naiveEffect, rawFloor]

const CONCURRENCY = 50
const SLEEP_MS = 1
/** W7: task i gets priority i % 10 and key i % 1,000. */
const SCHEDULING = { priorities: 10, keys: 1_000 }

export interface Row {
  /** "W1" … "W7"; `--only` selects by it. */
  readonly workload: string
  readonly id: string
  readonly what: string
  readonly unit: string
  readonly higherIsBetter: boolean
  /** Decimals shown. */
  readonly digits: number
  readonly peers: ReadonlyArray<Peer>
  /** Samples per implementation per round (still interleaved). */
  readonly repeat: number
  /** One sample of `peer`, in `unit`. */
  readonly sample: (peer: Peer) => Promise<number>
}

export interface RowResult {
  readonly row: Row
  /** Samples and their summary by implementation name. */
  readonly samples: ReadonlyMap<string, ReadonlyArray<number>>
  readonly summaries: ReadonlyMap<string, Summary>
}

/** Milliseconds `f` takes. */
const timed = async (f: () => Promise<void>): Promise<number> => {
  const start = performance.now()
  await f()
  return performance.now() - start
}

const count = (n: number) => n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : `${n}`

/** The rows for full or `quick` sizes. */
export const rows = (quick: boolean): ReadonlyArray<Row> => {
  const n = quick
    ? { noop: 20_000, sleep: 2_000, heap: 100_000, retry: 5_000, scale: [1_000, 10_000, 100_000], close: 200, scheduled: 20_000 }
    : { noop: 200_000, sleep: 20_000, heap: 200_000, retry: 20_000, scale: [10_000, 100_000, 1_000_000], close: 1_000, scheduled: 100_000 }
  const tasksPerSecond = (tasks: number, ms: number) => tasks / ms / 1e3
  const limit = CONCURRENCY * 1000 / SLEEP_MS
  const base = { higherIsBetter: true, peers, repeat: 1 }
  return [
    {
      ...base,
      workload: "W1",
      id: "W1",
      what: `${n.noop.toLocaleString("en")} no-op tasks, concurrency ${CONCURRENCY}`,
      unit: "M tasks/s",
      digits: 3,
      sample: async (peer) => tasksPerSecond(n.noop, await timed(() => peer.run({ _tag: "Noop" }, n.noop, CONCURRENCY)))
    },
    {
      ...base,
      workload: "W2",
      id: "W2",
      what: `${n.sleep.toLocaleString("en")} tasks sleeping ${SLEEP_MS} ms, concurrency ${CONCURRENCY}`,
      unit: `fraction of ${limit.toLocaleString("en")}/s`,
      digits: 3,
      sample: async (peer) => {
        const ms = await timed(() => peer.run({ _tag: "Sleep", ms: SLEEP_MS }, n.sleep, CONCURRENCY))
        return n.sleep / ms * 1000 / limit
      }
    },
    {
      ...base,
      workload: "W3",
      id: "W3",
      what: `heap per queued task, ${n.heap.toLocaleString("en")} queued behind one blocked worker`,
      unit: "B/task",
      higherIsBetter: false,
      digits: 0,
      sample: (peer) => peer.queuedHeap(n.heap)
    },
    {
      ...base,
      workload: "W4",
      id: "W4",
      what: `${n.retry.toLocaleString("en")} tasks failing once then succeeding, zero backoff, concurrency ${CONCURRENCY}`,
      unit: "M tasks/s",
      digits: 3,
      sample: async (peer) => tasksPerSecond(n.retry, await timed(() => peer.run({ _tag: "FailOnce" }, n.retry, CONCURRENCY)))
    },
    ...n.scale.map((size): Row => ({
      ...base,
      workload: "W5",
      id: `W5 ${count(size)}`,
      what: `cost per task, ${size.toLocaleString("en")} no-op tasks, concurrency ${CONCURRENCY}`,
      unit: "ns/task",
      higherIsBetter: false,
      digits: 0,
      peers: [taskpool, fastq],
      sample: async (peer) => await timed(() => peer.run({ _tag: "Noop" }, size, CONCURRENCY)) * 1e6 / size
    })),
    {
      ...base,
      workload: "W6",
      id: "W6",
      what: `close latency: last task's end (seen in the task) to the close (peers: their drain) returning, ${n.close.toLocaleString("en")} tasks sleeping ${SLEEP_MS} ms`,
      unit: "ms",
      higherIsBetter: false,
      digits: 3,
      repeat: 5,
      sample: async (peer) => {
        await peer.run({ _tag: "Sleep", ms: SLEEP_MS }, n.close, CONCURRENCY)
        return performance.now() - lastTaskEnd.at
      }
    },
    {
      ...base,
      workload: "W7",
      id: "W7",
      what: `${n.scheduled.toLocaleString("en")} no-op tasks, task i with priority i % ${SCHEDULING.priorities} ` +
        `(higher first) and key i % ${SCHEDULING.keys.toLocaleString("en")} (one task of a key at a time), concurrency ${CONCURRENCY}; ` +
        "taskpool: push(task, { priority, key }); p-queue: add(task, { priority }), no keys; " +
        "fastq, naive Effect, raw floor: no priorities, not run",
      unit: "M tasks/s",
      digits: 3,
      peers: peers.filter((peer) => peer.runScheduled !== undefined),
      sample: async (peer) => {
        const runScheduled = peer.runScheduled
        if (runScheduled === undefined) throw new Error(`${peer.name} has no scheduled run`)
        return tasksPerSecond(n.scheduled, await timed(() => runScheduled(n.scheduled, CONCURRENCY, SCHEDULING)))
      }
    }
  ]
}

/**
 * Runs `row`: one warm-up round, then `rounds` timed rounds, each running
 * every implementation in turn (`repeat` times), with a full GC before each sample.
 */
export const measure = async (row: Row, rounds: number, progress: (line: string) => void): Promise<RowResult> => {
  for (const peer of row.peers) await row.sample(peer)
  const samples = new Map(row.peers.map((peer) => [peer.name, [] as Array<number>]))
  for (let round = 0; round < rounds * row.repeat; round++) {
    for (const peer of row.peers) {
      collectGarbage()
      samples.get(peer.name)!.push(await row.sample(peer))
    }
    progress(`${row.id}: round ${round + 1}/${rounds * row.repeat}`)
  }
  return { row, samples, summaries: new Map([...samples].map(([name, list]) => [name, summarize(list)])) }
}

export interface TargetResult {
  readonly workload: string
  readonly target: string
  readonly measured: string
  readonly met: boolean
}

/** The targets for taskpool, for the workloads that ran. */
export const checkTargets = (results: ReadonlyArray<RowResult>): ReadonlyArray<TargetResult> => {
  const med = (id: string, peer: Peer) => results.find((r) => r.row.id === id)?.summaries.get(peer.name)?.median
  const checks: Array<TargetResult> = []
  const add = (workload: string, target: string, value: number | undefined, show: (v: number) => string, ok: (v: number) => boolean) => {
    if (value !== undefined) checks.push({ workload, target, measured: show(value), met: ok(value) })
  }
  const times = (v: number) => `${v.toFixed(2)}x fastq`
  add("W1", ">= 1.5x fastq", ratioOf(med("W1", taskpool), med("W1", fastq)), times, (v) => v >= 1.5)
  add("W2", ">= 0.88 of the limit", med("W2", taskpool), (v) => v.toFixed(3), (v) => v >= 0.88)
  add("W3", "<= 300 B/task, result tracking included", med("W3", taskpool), (v) => `${v.toFixed(0)} B`, (v) => v <= 300)
  add("W4", ">= 1.0x fastq", ratioOf(med("W4", taskpool), med("W4", fastq)), times, (v) => v >= 1)
  const scale = results.filter((r) => r.row.workload === "W5").map((r) => r.summaries.get(taskpool.name)!.median)
  const flatness = scale.length > 1 ? Math.max(...scale) / Math.min(...scale) : undefined
  add("W5", "flat within 1.3x (max/min ns per task)", flatness, (v) => `${v.toFixed(2)}x`, (v) => v <= 1.3)
  add("W6", "< 1 ms median", med("W6", taskpool), (v) => `${v.toFixed(3)} ms`, (v) => v < 1)
  return checks
}

const ratioOf = (a: number | undefined, b: number | undefined) => a === undefined || b === undefined ? undefined : a / b
