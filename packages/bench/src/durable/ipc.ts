/**
 * Worker processes and what they say over IPC. The coordinator spawns them
 * with `process.execPath` on the compiled `worker.js`; each one loads its
 * system, says `loaded`, starts on `start`, says `ready`, reports executions
 * (`done` counts in batches; `started` with the job's submit time for
 * latency jobs) and stops cleanly on `stop`.
 */
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

export type SystemName = "taskpool" | "graphile" | "taskpool-redis"

/** Where a system keeps its jobs: a PostgreSQL database, or a Redis server and a key prefix. */
export interface Target {
  readonly url: string
  /** Redis only. */
  readonly prefix?: string | undefined
}

/** What a worker process needs, passed as its one JSON argument. */
export interface WorkerConfig extends Target {
  readonly system: SystemName
  /** Jobs at once per process (taskpool `maxIoWorkerNum`, graphile `concurrency`). */
  readonly concurrency: number
  /** taskpool only; absent: the store's defaults. */
  readonly pollIntervalMs?: number | undefined
  readonly lockRefreshIntervalMs?: number | undefined
}

export type ToWorker = { readonly type: "start" } | { readonly type: "stop" }

export type FromWorker =
  | { readonly type: "loaded" }
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly count: number }
  | { readonly type: "started"; readonly submittedAt: number; readonly startedAt: number }

const workerEntry = fileURLToPath(new URL("./worker.js", import.meta.url))

/** A set of worker processes of one system, and the counts they report. */
export class WorkerGroup {
  readonly children: Array<ChildProcess> = []
  /** Executions reported so far, across processes. */
  done = 0
  readonly latencies: Array<number> = []
  private loaded = 0
  private ready = 0
  private readonly listeners = new Set<() => void>()
  private failure: Error | undefined

  constructor(count: number, config: WorkerConfig, execArgv: ReadonlyArray<string> = []) {
    for (let i = 0; i < count; i++) {
      const child = fork(workerEntry, [JSON.stringify(config)], { execPath: process.execPath, execArgv: [...execArgv], stdio: ["ignore", "inherit", "inherit", "ipc"] })
      child.on("message", (message: FromWorker) => {
        switch (message.type) {
          case "loaded":
            this.loaded++
            break
          case "ready":
            this.ready++
            break
          case "done":
            this.done += message.count
            break
          case "started":
            this.latencies.push(message.startedAt - message.submittedAt)
            break
        }
        this.tick()
      })
      child.on("exit", (code, signal) => {
        if (code !== 0) this.failure ??= new Error(`a ${config.system} worker exited with ${code ?? signal}`)
        this.tick()
      })
      this.children.push(child)
    }
  }

  private tick() {
    for (const listener of [...this.listeners]) listener()
  }

  /** Resolves once `until` holds (checked on every message), rejects on a crashed worker or after `ms`. */
  until(what: string, ms: number, until: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer)
        this.listeners.delete(check)
      }
      const check = () => {
        if (this.failure !== undefined) {
          finish()
          reject(this.failure)
        } else if (until()) {
          finish()
          resolve()
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`))
      }, ms)
      this.listeners.add(check)
      check()
    })
  }

  loadedAll = () => this.until("workers to load", 30_000, () => this.loaded === this.children.length)

  start(): void {
    for (const child of this.children) child.send({ type: "start" } satisfies ToWorker)
  }

  readyAll = () => this.until("workers to start", 30_000, () => this.ready === this.children.length)

  /** Asks every worker to stop and waits for it; kills one that takes over 15 s. */
  async stop(): Promise<void> {
    await Promise.all(this.children.map((child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
        child.once("exit", () => {
          clearTimeout(timer)
          resolve()
        })
        if (child.connected) child.send({ type: "stop" } satisfies ToWorker)
        else child.kill("SIGTERM")
      })
    ))
  }
}
