/**
 * What the scenarios need of a system: a producer in the coordinator, and a
 * worker that runs the same no-op task in a worker process. The task's
 * payload carries its submit time (0 for throughput jobs).
 */
import type { Target, WorkerConfig } from "./ipc.js"

export interface Producer {
  /** Stores one job; resolves once it is stored. */
  readonly submit: (submittedAt: number) => Promise<void>
  /** Jobs not yet done, as the store has them. */
  readonly remaining: () => Promise<number>
  readonly close: () => Promise<void>
}

export interface RunningWorker {
  readonly stop: () => Promise<void>
}

export interface System {
  /** Connects and creates the system's tables (PostgreSQL) at `target`. */
  readonly producer: (target: Target) => Promise<Producer>
  /** Starts this process's workers; `onExecute` runs in every job. */
  readonly startWorker: (config: WorkerConfig, onExecute: (submittedAt: number) => void) => Promise<RunningWorker>
}
