/** The results as a markdown report and as JSON with every sample. */
import { mkdir, writeFile } from "node:fs/promises"
import { ratio } from "./stats.js"
import type { Summary } from "./stats.js"
import { peers } from "./workloads.js"
import type { RowResult, TargetResult } from "./workloads.js"

export interface Machine {
  readonly cpu: string
  readonly cpus: number
  readonly memoryGB: number
  readonly platform: string
  /** 1, 5 and 15 minute load averages before and after the run. */
  readonly loadBefore: ReadonlyArray<number>
  readonly loadAfter: ReadonlyArray<number>
}

export interface Run {
  readonly startedAt: string
  readonly seconds: number
  readonly quick: boolean
  readonly rounds: number
  readonly versions: Readonly<Record<string, string>>
  readonly machine: Machine
  readonly results: ReadonlyArray<RowResult>
  readonly targets: ReadonlyArray<TargetResult>
}

const [subject, ...others] = peers

const load = (averages: ReadonlyArray<number>) => averages.map((a) => a.toFixed(2)).join("/")

const cell = (summary: Summary | undefined, digits: number) =>
  summary === undefined
    ? "—"
    : `${summary.median.toFixed(digits)} (${summary.min.toFixed(digits)}..${summary.max.toFixed(digits)})`

const table = (head: ReadonlyArray<string>, body: ReadonlyArray<ReadonlyArray<string>>) =>
  [head, head.map(() => "---"), ...body].map((cells) => `| ${cells.join(" | ")} |`).join("\n")

export const markdown = (run: Run): string => {
  const { node, ...libraries } = run.versions
  const m = run.machine
  const measured = table(
    ["workload", "unit", "samples", ...peers.map((p) => p.name)],
    run.results.map(({ row, summaries }) => [
      `${row.id}: ${row.what}`,
      `${row.unit} (${row.higherIsBetter ? "higher" : "lower"} is better)`,
      `${run.rounds * row.repeat}`,
      ...peers.map((p) => cell(summaries.get(p.name), row.digits))
    ])
  )
  const ratios = table(
    ["workload", ...others.map((p) => `taskpool / ${p.name}`)],
    run.results.map(({ row, summaries }) => {
      const own = summaries.get(subject!.name)!
      return [row.id, ...others.map((p) => {
        const peer = summaries.get(p.name)
        return peer === undefined ? "—" : `${ratio(own, peer).toFixed(2)}x`
      })]
    })
  )
  const targets = table(
    ["workload", "taskpool target", "measured", "met"],
    run.targets.map((t) => [t.workload, t.target, t.measured, t.met ? "yes" : "**no**"])
  )
  return [
    `# taskpool benchmark${run.quick ? " (quick)" : ""}`,
    "",
    `${run.startedAt}, ${run.seconds.toFixed(0)} s. Node ${node}; ${Object.entries(libraries).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    `${m.cpus} × ${m.cpu}, ${m.memoryGB} GB, ${m.platform}; load average ${load(m.loadBefore)} before,`,
    `${load(m.loadAfter)} after (1/5/15 min; other work on the machine shows here).`,
    "",
    `Medians (min..max) over ${run.rounds} timed rounds after one warm-up round, implementations`,
    "interleaved within each round, a full GC before every sample.",
    "naive Effect and raw floor track no results; p-queue, fastq and taskpool keep a promise or handle per task.",
    "",
    measured,
    "",
    "Ratios of medians (for B/task, ns/task and ms, below 1x means taskpool is better):",
    "",
    ratios,
    "",
    targets,
    ""
  ].join("\n")
}

export const json = (run: Run): string =>
  JSON.stringify(
    {
      ...run,
      results: run.results.map(({ row, samples, summaries }) => ({
        id: row.id,
        what: row.what,
        unit: row.unit,
        higherIsBetter: row.higherIsBetter,
        samples: Object.fromEntries(samples),
        summaries: Object.fromEntries(summaries)
      }))
    },
    null,
    2
  ) + "\n"

/** Writes `latest.md` and `latest.json` into `dir`. */
export const write = async (run: Run, dir: URL): Promise<void> => {
  await mkdir(dir, { recursive: true })
  await writeFile(new URL("latest.md", dir), markdown(run))
  await writeFile(new URL("latest.json", dir), json(run))
}
