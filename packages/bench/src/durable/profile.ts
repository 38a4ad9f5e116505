/**
 * A summary of V8 `.cpuprofile` files (from `--cpu-prof`): self time by
 * function, summed over every file, with the share of all samples.
 */
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface SelfTime {
  readonly name: string
  readonly ms: number
  readonly share: number
}

/** Where a frame comes from: a package (and file) or node's internals, short. */
const place = (url: string, line: number) => {
  if (url === "") return ""
  const path = url.replace(/^file:\/\//, "")
  const inModules = path.lastIndexOf("node_modules/")
  const short = inModules >= 0 ? path.slice(inModules + "node_modules/".length) : path.replace(/^.*\/packages\//, "")
  return `${short}:${line + 1}`
}

export const selfTimes = async (dir: string, top: number): Promise<{ totalMs: number; rows: Array<SelfTime> }> => {
  const byName = new Map<string, number>()
  let totalMs = 0
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"))) {
    const profile = JSON.parse(await readFile(join(dir, file), "utf8")) as Profile
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
    profile.samples.forEach((id, i) => {
      const ms = (profile.timeDeltas[i] ?? 0) / 1000
      const frame = nodes.get(id)?.callFrame
      if (frame === undefined) return
      const name = `${frame.functionName || "(anonymous)"} ${place(frame.url, frame.lineNumber)}`.trim()
      byName.set(name, (byName.get(name) ?? 0) + ms)
      totalMs += ms
    })
  }
  const rows = [...byName].map(([name, ms]) => ({ name, ms, share: ms / totalMs })).sort((a, b) => b.ms - a.ms)
  return { totalMs, rows: rows.slice(0, top) }
}
