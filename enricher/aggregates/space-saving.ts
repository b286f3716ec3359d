// Top qnames per aggregate group: the Space-Saving summary (Metwally, Agrawal, El Abbadi 2005).
// m counters; a name already counted is incremented, a new name takes over the smallest counter
// (count = min + w, error = min). Guarantees, for every name, with N the weight summed so far:
//   - a listed name's true count lies in [count - error, count];
//   - a name not listed has a true count <= the smallest counter (`bound`, written out as
//     top_qnames_bound), and the smallest counter is <= N / m.
// So every name whose true count exceeds `bound` is listed. A min-heap keeps the smallest
// counter at the root; names are compared by a 32-bit hash and then byte by byte, and copied
// into one slab per summary; a small hash -> slot map finds a name without scanning the slots.

export const TOPK_SLOTS = 64;
/** Longer presentation-form names (rare: escaped binary labels) are not candidates; counted. */
export const TOPK_MAX_NAME_BYTES = 255;

export class SpaceSaving {
  private readonly slab: Buffer;
  private readonly lens = new Uint16Array(TOPK_SLOTS);
  private readonly hashes = new Int32Array(TOPK_SLOTS);
  readonly counts = new Float64Array(TOPK_SLOTS);
  readonly errors = new Float64Array(TOPK_SLOTS);
  /** heap[i] = slot; pos[slot] = i. */
  private readonly heap = new Uint8Array(TOPK_SLOTS);
  private readonly pos = new Uint8Array(TOPK_SLOTS);
  used = 0;
  /** Weight of names too long to be candidates (they are in no bound). */
  skipped = 0;
  /** hash -> slot, for the names in the summary. */
  private readonly index = new Map<number, number>();
  /** A hash was shared by two names: lookups fall back to a scan. */
  private collided = false;
  /** A lower limit of `bound` (after a merge: the sum of the merged summaries' bounds). */
  floor = 0;

  constructor() {
    this.slab = Buffer.alloc(TOPK_SLOTS * TOPK_MAX_NAME_BYTES);
  }

  /** Counts name[0, len) with weight w. */
  add(name: Uint8Array, len: number, w: number): void {
    if (len > TOPK_MAX_NAME_BYTES) {
      this.skipped += w;
      return;
    }
    let h = 0x811c9dc5;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ name[i]!, 0x01000193);
    const hit = this.find(h, name, len);
    if (hit >= 0) {
      this.counts[hit]! += w;
      this.down(this.pos[hit]!);
      return;
    }
    let s: number;
    let base: number;
    if (this.used < TOPK_SLOTS) {
      s = this.used++;
      this.heap[s] = s;
      this.pos[s] = s;
      this.counts[s] = w;
      this.errors[s] = 0;
      this.up(s);
    } else {
      s = this.heap[0]!;
      const min = this.counts[s]!;
      this.counts[s] = min + w;
      this.errors[s] = min;
      this.down(0);
      if (this.index.get(this.hashes[s]!) === s) this.index.delete(this.hashes[s]!);
    }
    if (this.index.has(h)) this.collided = true;
    else this.index.set(h, s);
    const slab = this.slab;
    base = s * TOPK_MAX_NAME_BYTES;
    for (let i = 0; i < len; i++) slab[base + i] = name[i]!;
    this.lens[s] = len;
    this.hashes[s] = h;
  }

  /** The slot holding name[0, len) (hash h), or -1. */
  private find(h: number, name: Uint8Array, len: number): number {
    const s0 = this.index.get(h);
    if (s0 !== undefined && this.same(s0, h, name, len)) return s0;
    if (!this.collided) return -1;
    // Two names with one 32-bit hash were seen (rare): the index may miss one of them.
    for (let s = 0; s < this.used; s++) if (this.same(s, h, name, len)) return s;
    return -1;
  }

  private same(s: number, h: number, name: Uint8Array, len: number): boolean {
    if (this.hashes[s] !== h || this.lens[s] !== len) return false;
    const slab = this.slab;
    const base = s * TOPK_MAX_NAME_BYTES;
    for (let i = 0; i < len; i++) if (slab[base + i] !== name[i]) return false;
    return true;
  }

  /** Upper bound of the true count of any name not listed: the smallest counter once full, else 0. */
  get bound(): number {
    return Math.max(this.floor, this.used < TOPK_SLOTS ? 0 : this.counts[this.heap[0]!]!);
  }

  /** [name, count, error] by count, largest first. */
  entries(): [string, number, number][] {
    const out: [string, number, number][] = [];
    for (let s = 0; s < this.used; s++) {
      const base = s * TOPK_MAX_NAME_BYTES;
      out.push([this.slab.toString('utf8', base, base + this.lens[s]!), this.counts[s]!, this.errors[s]!]);
    }
    return out.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }

  /** Rebuilds a summary from entries() (journal snapshots); the bound follows from the counts. */
  static from(entries: readonly [string, number, number][], skipped = 0, floor = 0): SpaceSaving {
    const ss = new SpaceSaving();
    for (const [name, count, error] of entries.slice(0, TOPK_SLOTS)) {
      const b = Buffer.from(name, 'utf8');
      ss.add(b, b.length, count);
      const s = ss.used - 1;
      ss.errors[s] = error;
    }
    ss.skipped = skipped;
    ss.floor = floor;
    return ss;
  }

  private less(i: number, j: number): boolean {
    return this.counts[this.heap[i]!]! < this.counts[this.heap[j]!]!;
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    this.pos[b] = i;
    this.pos[a] = j;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.used;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      let c = l;
      if (l + 1 < n && this.less(l + 1, l)) c = l + 1;
      if (!this.less(c, i)) return;
      this.swap(i, c);
      i = c;
    }
  }
}
