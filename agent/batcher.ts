// Records into link Batch frames: appends each kept record into a BatchEncoder and seals
// the batch when it reaches --batch-records or --batch-bytes, or --batch-linger-ms after
// its first record. Sealing takes the next seq (from firstSeq, per incarnation).
//
// Hot path: add() copies the record into the encoder's buffer; no allocation per record.
// One timer per batch (armed at its first record), one Buffer per batch (finish()).
// The frame limit the enrichers agreed to is read from the link (`frameLimit`) before each
// record, so nobody has to push it here.

import { type Clock, realClock, type TimerHandle } from '../common/clock';
import { readU32 as readU32Export } from '../proto/kit';
import { BatchEncoder } from '../proto/link';

// Hot-path import as a module constant (CommonJS reads index.ts re-exports through getters).
const readU32 = readU32Export;

/** Tag + length varint of one record field, at most (a 16 MiB length takes 4 bytes). */
const RECORD_OVERHEAD = 5;

export type SealHandler = (frame: Buffer, seq: number, records: number) => void;

export interface BatcherOptions {
  incarnation: string;
  /** Batch.sample_rate (0 = unsampled). */
  sampleRate: number;
  maxRecords: number;
  maxBytes: number;
  lingerMs: number;
  /** First seq to use: 1, or one past the highest seq found in the spool. */
  firstSeq: number;
  /** Largest frame the enrichers take (their Welcomes' max_frame_bytes); read per record. */
  frameLimit: { readonly maxFrameBytes: number };
  onSeal: SealHandler;
  /** Memory for sealed frames (agent/frame-pool.ts); default a new Buffer per batch. */
  alloc?: (size: number) => Buffer;
  /** Time source of the linger timer; default the real clock (tests pass a simulated one). */
  clock?: Clock;
}

export class Batcher {
  private readonly enc = new BatchEncoder({ initialCapacity: 64 * 1024 });
  private nextSeq: number;
  private readonly clock: Clock;
  private timer: TimerHandle | null = null;
  private readonly onLinger = () => {
    this.timer = null;
    this.seal();
  };
  private closed = false;

  constructor(private readonly o: BatcherOptions) {
    this.clock = o.clock ?? realClock;
    this.nextSeq = o.firstSeq;
    this.enc.begin(this.nextSeq, o.incarnation, o.sampleRate);
  }

  /** The seq the next sealed batch gets. */
  get seq(): number {
    return this.nextSeq;
  }

  /** Records in the open batch. */
  get pending(): number {
    return this.enc.recordCount;
  }

  /** Appends one record. False: it can never fit in a frame (oversize; caller counts it). */
  add(buf: Buffer, start: number, end: number): boolean {
    const enc = this.enc;
    // Batches are also cut at maxBytes, so the agreed limit only matters when it is smaller.
    const limit = this.o.frameLimit.maxFrameBytes;
    if (limit < enc.maxFrameBytes) enc.maxFrameBytes = limit;
    if (enc.recordCount > 0 && enc.frameSize + (end - start) + RECORD_OVERHEAD > this.o.maxBytes) {
      this.seal();
    }
    if (!enc.append(buf, start, end)) {
      if (enc.recordCount === 0) return false;
      this.seal();
      if (!enc.append(buf, start, end)) return false;
    }
    const n = enc.recordCount;
    if (n >= this.o.maxRecords) this.seal();
    else if (n === 1) this.timer = this.clock.setTimeout(this.onLinger, this.o.lingerMs, true);
    return true;
  }

  /**
   * Appends the Frame Streams data frames in `buf[start, end)` (each a 4-byte length and its
   * payload): runs of them are copied into the batch at once (BatchEncoder.appendFramed), a
   * frame that does not fit that way goes through add() (which seals first). Returns how many
   * could never fit in a frame (oversize; the caller counts them).
   */
  addFramed(buf: Buffer, start: number, end: number): number {
    const enc = this.enc;
    const o = this.o;
    let oversize = 0;
    while (start < end) {
      const limit = o.frameLimit.maxFrameBytes;
      if (limit < enc.maxFrameBytes) enc.maxFrameBytes = limit;
      const before = enc.recordCount;
      const next = enc.appendFramed(buf, start, end, o.maxRecords - before, o.maxBytes);
      if (next === start) {
        const len = readU32(buf, start);
        if (!this.add(buf, start + 4, start + 4 + len)) oversize++;
        start += 4 + len;
        continue;
      }
      start = next;
      if (enc.recordCount >= o.maxRecords) this.seal();
      else if (before === 0) this.timer = this.clock.setTimeout(this.onLinger, o.lingerMs, true);
    }
    return oversize;
  }

  /** Seals the open batch now, if it has records (shutdown, end of a replayed file). */
  flush(): void {
    if (this.enc.recordCount > 0) this.seal();
  }

  /** Stops the linger timer; records still open are the caller's to flush() first. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private seal(): void {
    if (this.timer !== null) {
      this.clock.clearTimeout(this.timer);
      this.timer = null;
    }
    const records = this.enc.recordCount;
    if (records === 0 || this.closed) return;
    const frame = this.enc.finish(this.o.alloc);
    const seq = this.nextSeq++;
    this.enc.begin(this.nextSeq, this.o.incarnation, this.o.sampleRate);
    this.o.onSeal(frame, seq, records);
  }
}
