/**
 * The benchmark: every implementation on every workload in one process.
 *
 *   node --expose-gc dist/main.js [--quick] [--only W1,W3]
 *
 * `--quick` runs smaller sizes and 2 rounds (a smoke check); `--only` picks
 * workloads. The report goes to stdout and `results/latest.{md,json}`;
 * progress goes to stderr.
 */
import { readFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { cpus, loadavg, platform, release, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { markdown, write } from "./report.js"
import { checkTargets, measure, rows } from "./workloads.js"
import type { RowResult } from "./workloads.js"

/** The installed version of `name`, read from the nearest package.json above its entry point. */
const versionOf = async (name: string): Promise<string> => {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)))
  while (dir !== dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { name?: string; version?: string }
      if (pkg.name === name && pkg.version !== undefined) return pkg.version
    } catch {
      // no package.json here; look further up
    }
    dir = dirname(dir)
  }
  return "unknown"
}

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, only: { type: "string" } } })
const quick = values.quick
const only = values.only?.split(",").map((w) => w.trim().toUpperCase())
const rounds = quick ? 2 : 5
const all = rows(quick)
const unknown = only?.filter((w) => !all.some((row) => row.workload === w)) ?? []
if (unknown.length > 0) throw new Error(`--only: no workload ${unknown.join(", ")} (W1 … W7)`)
const selected = all.filter((row) => only === undefined || only.includes(row.workload))

const startedAt = new Date()
const loadBefore = loadavg()
const results: Array<RowResult> = []
for (const row of selected) {
  results.push(await measure(row, rounds, (line) => process.stderr.write(`${line}\n`)))
}
const run = {
  startedAt: startedAt.toISOString(),
  seconds: (Date.now() - startedAt.getTime()) / 1000,
  quick,
  rounds,
  versions: {
    node: process.versions.node,
    ...Object.fromEntries(
      await Promise.all(["@taskpool/core", "effect", "p-queue", "fastq"].map(async (name) => [name, await versionOf(name)]))
    )
  },
  machine: {
    cpu: cpus()[0]?.model ?? "unknown",
    cpus: cpus().length,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    platform: `${platform()} ${release()}`,
    loadBefore,
    loadAfter: loadavg()
  },
  results,
  targets: checkTargets(results)
}
process.stdout.write(markdown(run))
await write(run, new URL("../results/", import.meta.url))
