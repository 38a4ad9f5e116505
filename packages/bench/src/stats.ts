/** Summaries of a sample list. */

export interface Summary {
  readonly median: number
  readonly min: number
  readonly max: number
}

export const median = (samples: ReadonlyArray<number>): number => {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const summarize = (samples: ReadonlyArray<number>): Summary => ({
  median: median(samples),
  min: Math.min(...samples),
  max: Math.max(...samples)
})

/** `a / b`, the ratio of two medians. */
export const ratio = (a: Summary, b: Summary): number => a.median / b.median
