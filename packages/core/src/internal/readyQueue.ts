/**
 * The tasks ready to run, highest priority first and in arrival order within
 * a priority. One FIFO bucket per priority in use; most pools only ever use
 * priority 0, whose bucket always exists, so the common case is one array.
 */

/** A FIFO over an array with a moving head: `shift` is O(1). */
class Bucket<A> {
  items: Array<A | undefined> = []
  head = 0

  constructor(readonly priority: number) {}

  get size(): number {
    return this.items.length - this.head
  }

  push(item: A): void {
    this.items.push(item)
  }

  shift(): A | undefined {
    if (this.head === this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head === this.items.length) {
      this.items.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head)
      this.head = 0
    }
    return item
  }

  remove(item: A): boolean {
    const index = this.items.indexOf(item, this.head)
    if (index < 0) return false
    this.items.splice(index, 1)
    return true
  }

  drain(into: Array<A>): void {
    for (let i = this.head; i < this.items.length; i++) into.push(this.items[i]!)
    this.items.length = 0
    this.head = 0
  }
}

export class ReadyQueue<A> {
  size = 0
  /** Buckets by descending priority; the priority-0 bucket stays even when empty. */
  private readonly buckets: Array<Bucket<A>>
  private readonly zero: Bucket<A>

  constructor() {
    this.zero = new Bucket(0)
    this.buckets = [this.zero]
  }

  /** Adds `item` behind the others of its priority. */
  push(item: A, priority: number): void {
    this.size++
    ;(priority === 0 ? this.zero : this.bucketOf(priority)).push(item)
  }

  /** Takes the first item of the highest priority. */
  shift(): A | undefined {
    if (this.size === 0) return undefined
    for (let i = 0; i < this.buckets.length; i++) {
      const bucket = this.buckets[i]!
      const item = bucket.shift()
      if (item === undefined) continue
      this.size--
      if (bucket.size === 0 && bucket !== this.zero) this.buckets.splice(i, 1)
      return item
    }
    return undefined
  }

  /** Removes `item` (O(n) in its bucket); whether it was there. */
  remove(item: A, priority: number): boolean {
    const index = this.buckets.findIndex((bucket) => bucket.priority === priority)
    const bucket = this.buckets[index]
    if (bucket === undefined || !bucket.remove(item)) return false
    this.size--
    if (bucket.size === 0 && bucket !== this.zero) this.buckets.splice(index, 1)
    return true
  }

  /** Takes every item out, in the order `shift` would. */
  drain(): Array<A> {
    const items: Array<A> = []
    for (const bucket of this.buckets) bucket.drain(items)
    this.buckets.length = 0
    this.buckets.push(this.zero)
    this.size = 0
    return items
  }

  private bucketOf(priority: number): Bucket<A> {
    let low = 0
    let high = this.buckets.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.buckets[mid]!.priority > priority) low = mid + 1
      else high = mid
    }
    const found = this.buckets[low]
    if (found !== undefined && found.priority === priority) return found
    const bucket = new Bucket<A>(priority)
    this.buckets.splice(low, 0, bucket)
    return bucket
  }
}
