// Reused memory for sealed batch frames. Every batch used to get a new Buffer (finish()), freed
// only by garbage collection: at 100 k records/s that is ~100 ArrayBuffers and ~16 MB of
// external memory a second, and V8 answers external memory with full mark-compact collections
// (measured: about a third of the agent's CPU at a steady 100 k frames/s went to marking and
// sweeping). With the pool, a batch acknowledged from memory gives its buffer back and the next
// sealed batch is copied into it, so the steady state allocates nothing per batch.
//
// Only buffers the pool made come back (a WeakSet of their ArrayBuffers), and only from
// BatchBuffer for an acknowledged batch whose frame nothing can read any more: it never
// touched the spool (no file write), and every socket write handed that very Buffer has
// completed, its callback fired (agent/link/batch-write.ts counts them). The ack alone is
// not enough: the enricher may acknowledge, through another connection, a re-sent copy while
// the first connection, stalled or half-open, still holds the original in its write queue;
// and an ack can be read before the write's own callback has run. A frame whose write
// callback never fires is never reused (the GC frees it). Other endings (drops, spool,
// shutdown) leave the buffer to the garbage collector as before.
//
// Sizes: a buffer is allocated rounded up to GRAIN and reused for a frame that leaves less than
// GRAIN of it unused or fills at least MIN_FILL of it, so a buffer full of batches
// (--buffer-bytes) costs at most ~GRAIN more per batch than exact-size frames did. At most
// MAX_FREE buffers / MAX_FREE_BYTES wait for reuse, the most recently given back.

const GRAIN = 16 * 1024;
const MIN_FILL = 0.75;
const MAX_FREE = 8;
const MAX_FREE_BYTES = 4 * 1024 * 1024;

export class FramePool {
  private readonly free: ArrayBuffer[] = [];
  private freeBytes = 0;
  private readonly owned = new WeakSet<ArrayBuffer>();
  /** Frames served from a reused buffer / from a new one (tests, diagnostics). */
  reused = 0;
  allocated = 0;

  /** A Buffer of exactly `size` bytes (contents undefined), reused when a free one fits. */
  take(size: number): Buffer {
    const free = this.free;
    for (let i = free.length - 1; i >= 0; i--) {
      const ab = free[i]!;
      if (ab.byteLength >= size && (ab.byteLength - size < GRAIN || size >= ab.byteLength * MIN_FILL)) {
        free[i] = free[free.length - 1]!;
        free.pop();
        this.freeBytes -= ab.byteLength;
        this.reused++;
        return Buffer.from(ab, 0, size);
      }
    }
    const ab = new ArrayBuffer(Math.ceil(size / GRAIN) * GRAIN);
    this.owned.add(ab);
    this.allocated++;
    return Buffer.from(ab, 0, size);
  }

  /** Gives back a frame from take() that nothing reads any more; anything else is ignored. */
  give(frame: Buffer): void {
    const ab = frame.buffer as ArrayBuffer;
    if (frame.byteOffset !== 0 || !this.owned.has(ab) || ab.byteLength > MAX_FREE_BYTES) return;
    const free = this.free;
    if (free.includes(ab)) return; // given twice: keep one entry
    // Full: the oldest go to the GC. Keeping the newest follows the batch size of the moment;
    // refusing new ones instead let a burst's large buffers, which later small batches never
    // fit, hold every place for good (no reuse at all afterwards).
    while (free.length >= MAX_FREE || this.freeBytes + ab.byteLength > MAX_FREE_BYTES) {
      this.freeBytes -= free.shift()!.byteLength;
    }
    free.push(ab);
    this.freeBytes += ab.byteLength;
  }

  /** Buffers waiting for reuse. */
  get freeCount(): number {
    return this.free.length;
  }
}
