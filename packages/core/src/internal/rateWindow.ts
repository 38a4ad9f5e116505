/**
 * A strict sliding window over attempt starts: at most `limit` starts in any
 * window of `intervalMs`, at every instant rather than per fixed window, so
 * there is no burst of twice the limit around a window's edge. It keeps the
 * last `limit` start times in a ring.
 */
export class RateWindow {
  private readonly starts: Array<number>
  /** Where the next start is written; the oldest start kept when the ring is full. */
  private next = 0
  private count = 0

  constructor(readonly limit: number, readonly intervalMs: number) {
    this.starts = new Array<number>(limit).fill(0)
  }

  /**
   * How long from `now` until one more start is allowed, with `reserved`
   * starts already promised: 0 when it is allowed now.
   */
  waitMs(now: number, reserved: number): number {
    // Allowed when the (limit - reserved)-th newest start has left the window.
    const nth = this.limit - reserved
    if (nth <= 0) return this.intervalMs
    if (this.count < nth) return 0
    const at = this.starts[(this.next - nth + this.limit) % this.limit]!
    return Math.max(0, at + this.intervalMs - now)
  }

  record(now: number): void {
    this.starts[this.next] = now
    this.next = (this.next + 1) % this.limit
    if (this.count < this.limit) this.count++
  }
}
