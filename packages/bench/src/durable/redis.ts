/**
 * The one Redis server of a run: `REDIS_URL` when set, else a `redis-server`
 * from PATH on a free port (throwaway directory, no persistence, no logs),
 * stopped and removed at the end. Every scenario gets a fresh key prefix;
 * keys are not deleted, they go with the server (an external one keeps them
 * under `taskpool-bench:`).
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { accessSync, constants, rmSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { connect } from "node:net"
import { delimiter, join } from "node:path"
import { tmpdir } from "node:os"
import { setTimeout as sleep } from "node:timers/promises"
import { freePort } from "./postgres.js"

export interface RedisServer {
  readonly url: string
  readonly embedded: boolean
  readonly stop: () => Promise<void>
}

const externalUrl = () => process.env["REDIS_URL"] || undefined

const onPath = (command: string) =>
  (process.env["PATH"] ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** Why there is no Redis to run on, or `undefined` when there is one. */
export const redisMissing = (): string | undefined =>
  externalUrl() !== undefined || onPath("redis-server") ? undefined : "REDIS_URL is not set and redis-server is not on PATH"

/** Whether something accepts a connection on `port` now. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.end()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** Resolves once the server accepts connections; rejects when it exits first or after 10 s. */
const listening = async (port: number, exited: Promise<string>) => {
  let stopped: string | undefined
  void exited.then((why) => stopped = why)
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (stopped !== undefined) throw new Error(`redis-server ${stopped}`)
    if (await accepts(port)) return
    await sleep(50)
  }
  throw new Error("redis-server did not accept connections within 10 s")
}

/** Starts (or connects to) the server. `stop` is safe to call after a failure half way. */
export const startRedis = async (): Promise<RedisServer> => {
  const external = externalUrl()
  if (external !== undefined) return { url: external, embedded: false, stop: async () => {} }
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), "taskpool-bench-redis-"))
  const child = spawn("redis-server", [
    "--port", `${port}`, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir
  ], { stdio: ["ignore", "ignore", "inherit"] })
  const exited = new Promise<string>((resolve) => {
    child.once("error", (error) => resolve(`failed: ${error.message}`))
    child.once("exit", (code, signal) => resolve(`exited with ${code ?? signal}`))
  })
  // A coordinator that exits past every `finally` (see postgres.ts) still takes the server with it.
  const onExit = () => {
    child.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
  }
  process.once("exit", onExit)
  const stop = async () => {
    process.removeListener("exit", onExit)
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await listening(port, exited)
    return { url: `redis://127.0.0.1:${port}`, embedded: true, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** A fresh key prefix for one scenario. */
export const freshPrefix = (label: string) => `taskpool-bench:${label}:${randomUUID().slice(0, 8)}:`
