// The batch buffer: every sealed batch from the moment it is sealed until it is
// acknowledged, in memory (bounded by --buffer-bytes, in-flight batches included) and,
// with --spool-dir, on disk (bounded by --spool-max-bytes).
//
// Order is strict FIFO: `mem` holds the oldest batches (re-queued ones go back to its
// front by `order`), `disk` the newer ones; once spooling has started, new batches go to
// disk until it has drained, so nothing overtakes what waits on disk. When a bound is hit
// the --when-full policy applies: drop-newest drops the new batch, drop-oldest discards the
// oldest batch that is not in flight. Every drop is counted by reason.

import type { Logger } from '../common/log';
import { Deque } from './deque';
import type { FramePool } from './frame-pool';
import type { WhenFull } from './options';
import type { Spool, SpooledFile } from './spool';

export type DropReason =
  | 'buffer_full'
  | 'spool_full'
  | 'spool_slow'
  | 'spool_error'
  | 'rate_limit'
  | 'oversize'
  | 'undecodable'
  | 'shutdown';

export const DROP_REASONS: readonly DropReason[] = [
  'buffer_full',
  'spool_full',
  'spool_slow',
  'spool_error',
  'rate_limit',
  'oversize',
  /** --mask-client-*: not a dnstap frame, so its addresses cannot be found (agent/edge-mask.ts). */
  'undecodable',
  'shutdown',
];

/** Frames held while their spool write is under way, at most: beyond, the disk is too slow. */
export const SPOOL_WRITE_BACKLOG_BYTES = 32 * 1024 * 1024;
/** Spool files read ahead of the sender. */
const SPOOL_READ_AHEAD = 4;

enum Where {
  MEM,
  DISK,
  FLIGHT,
  DONE,
}

export interface OutBatch {
  /** Position in the FIFO: re-queued batches go back in this order. */
  readonly order: number;
  readonly seq: number;
  readonly incarnation: string;
  readonly records: number;
  /** Frame bytes. */
  readonly size: number;
  /** The whole link frame; null while the batch exists only on disk. */
  frame: Buffer | null;
  /** Spool file name while one exists (deleted on ack). */
  file: string | null;
  where: Where;
  writing: boolean;
  loading: boolean;
  /** Times written to a connection; > 1 means re-sent. */
  sends: number;
  /**
   * Socket writes handed `frame` itself (not a copy) whose callbacks have not fired yet
   * (agent/link/batch-write.ts). Until it is 0, a socket may still send from that memory.
   */
  socketWrites: number;
  /** The write callback for those writes, made once per batch: counts them down. */
  readonly written: (err?: Error | null) => void;
  /** An acknowledged frame waiting for its socket writes before it goes back to the pool. */
  held: Buffer | null;
  /** Read back from a spool an earlier agent process wrote: it may have been sent before. */
  replayed: boolean;
  /** performance.now() of the last send, for the ack latency. */
  sentAt: number;
}

export interface BatchBufferOptions {
  bufferBytes: number;
  whenFull: WhenFull;
  /** Set by attachSpool() once the directory is read. */
  spool?: Spool | null;
  log: Logger;
  onDrop: (reason: DropReason, records: number) => void;
  /** Something became sendable (new batch, spool file loaded); see also setSender(). */
  onReady?: () => void;
  /** Takes back the frames of acknowledged batches (agent/frame-pool.ts); none: GC frees them. */
  pool?: FramePool;
}

export class BatchBuffer {
  /** Frames in memory: queued in `mem` plus in flight. */
  memBytes = 0;
  inFlight = 0;
  writeBacklogBytes = 0;
  /** Acknowledged frames kept from the pool until a socket write of theirs completes. */
  framesHeld = 0;
  private readonly mem = new Deque<OutBatch>();
  private readonly disk = new Deque<OutBatch>();
  private nextOrder = 1;
  private loads = 0;
  private waiters: { cond: () => boolean; resolve: () => void }[] = [];

  private readonly o: BatchBufferOptions & { spool: Spool | null; onReady: () => void };

  constructor(options: BatchBufferOptions) {
    this.o = { ...options, spool: options.spool ?? null, onReady: options.onReady ?? (() => {}) };
  }

  /** The one consumer (the link client) is told whenever something became sendable. */
  setSender(onReady: () => void): void {
    this.o.onReady = onReady;
  }

  /** Batches waiting to be sent (not in flight), in memory and on disk. */
  get queued(): number {
    return this.mem.length + this.disk.length;
  }

  /** Frame bytes waiting to be sent (not in flight), in memory and on disk; O(queued), for scrapes. */
  get queuedBytes(): number {
    let n = 0;
    for (const q of [this.mem, this.disk]) {
      for (let i = 0; i < q.length; i++) {
        const b = q.at(i)!;
        if (b.where === Where.MEM || b.where === Where.DISK) n += b.size;
      }
    }
    return n;
  }

  get full(): boolean {
    return this.memBytes >= this.o.bufferBytes;
  }

  /**
   * Enables spooling; `files` are the leftovers of an earlier process: they go first, with
   * their own ids.
   */
  attachSpool(spool: Spool, files: readonly SpooledFile[]): void {
    this.o.spool = spool;
    for (const f of files) {
      const b = this.make(null, f.seq, f.incarnation, f.records, f.bytes);
      b.file = f.name;
      b.replayed = true;
      b.where = Where.DISK;
      this.disk.push(b);
    }
  }

  /**
   * A sealed batch. `mayDrop` false (file replay): it always goes to memory, and the
   * reader waits for room instead (waitFor).
   */
  add(frame: Buffer, seq: number, incarnation: string, records: number, mayDrop: boolean): void {
    const b = this.make(frame, seq, incarnation, records, frame.length);
    const spool = this.o.spool;
    if (!mayDrop || (this.disk.length === 0 && this.memBytes + b.size <= this.o.bufferBytes)) {
      this.pushMem(b);
    } else if (spool !== null) {
      this.toSpool(b, spool);
    } else {
      if (this.o.whenFull === 'drop-oldest') {
        while (this.memBytes + b.size > this.o.bufferBytes && this.mem.length > 0) {
          this.discard(this.mem.shift()!, 'buffer_full');
        }
      }
      if (this.memBytes + b.size <= this.o.bufferBytes) this.pushMem(b);
      else this.discard(b, 'buffer_full');
    }
  }

  /** The next batch to send, now in flight; null when none is ready (a spool read may start). */
  take(): OutBatch | null {
    let b = this.mem.shift();
    if (b === undefined) {
      let skipped = false;
      while (this.disk.length > 0 && this.disk.at(0)!.where === Where.DONE) {
        this.disk.shift(); // discarded while queued (policy, unreadable file)
        skipped = true;
      }
      const head = this.disk.at(0);
      if (head === undefined) {
        if (skipped) this.wake();
        return null;
      }
      if (head.frame === null) {
        this.readAhead();
        return null;
      }
      b = this.disk.shift()!;
      this.memBytes += b.size;
    }
    b.where = Where.FLIGHT;
    this.inFlight++;
    return b;
  }

  /**
   * Acknowledged: memory and the spool file are released. The frame goes back to the pool
   * (if it came from there: FramePool.give ignores others) only when nothing can read it any
   * more: it never went to the spool (no file write reads it; a spooled batch's frame is left
   * to the GC), and every socket write handed this very Buffer has completed (its callback
   * fired: sent, failed or cancelled). The ack alone proves neither: another connection, or
   * this one's write queue, may still hold the memory; then it waits in `held` for
   * socketWritten(), and a callback that never fires leaves it to the GC.
   */
  acked(b: OutBatch): void {
    if (b.where !== Where.FLIGHT) return;
    this.inFlight--;
    this.memBytes -= b.size;
    b.where = Where.DONE;
    const frame = b.frame;
    b.frame = null;
    const pool = this.o.pool;
    if (pool !== undefined && frame !== null && b.file === null && !b.writing) {
      if (b.socketWrites === 0) pool.give(frame);
      else {
        b.held = frame;
        this.framesHeld++;
      }
    }
    if (b.file !== null && !b.writing) this.removeFile(b);
    this.wake();
  }

  /** A batch taken for sending that can never be sent (larger than the enricher takes). */
  dropTaken(b: OutBatch, reason: DropReason): void {
    if (b.where !== Where.FLIGHT) return;
    this.inFlight--;
    this.memBytes -= b.size;
    b.where = Where.DONE;
    b.frame = null;
    if (b.file !== null && !b.writing) this.removeFile(b);
    this.o.onDrop(reason, b.records);
    this.wake();
  }

  /** Batches of a closed connection: back to the front, in FIFO order, to be re-sent. */
  requeue(batches: readonly OutBatch[]): void {
    if (batches.length === 0) return;
    const back = batches.filter((b) => b.where === Where.FLIGHT).sort((a, b) => a.order - b.order);
    for (const b of back) {
      b.where = Where.MEM;
      this.inFlight--;
    }
    const rest = this.mem.drain();
    let i = 0;
    let j = 0;
    while (i < back.length || j < rest.length) {
      if (j >= rest.length || (i < back.length && back[i]!.order < rest[j]!.order)) this.mem.push(back[i++]!);
      else this.mem.push(rest[j++]!);
    }
    this.wake();
  }

  /** Resolves once `cond()` holds; re-checked on every ack, drop, write and re-queue. */
  waitFor(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ cond, resolve }));
  }

  /** Nothing in memory is unacknowledged and no spool write is under way. */
  memoryIdle(): boolean {
    return this.mem.length === 0 && this.inFlight === 0 && this.writeBacklogBytes === 0;
  }

  /** Everything acknowledged, spool included. */
  allAcked(): boolean {
    return this.memoryIdle() && this.disk.length === 0;
  }

  /**
   * Shutdown: writes what is still queued in memory to the spool (in FIFO order) and waits
   * for every write; without a spool it is lost and counted (reason shutdown). Call after
   * the connections are closed (their batches re-queued). Returns [spooled, lost] records.
   */
  async spoolRest(): Promise<[number, number]> {
    const rest = this.mem.drain();
    let spooled = 0;
    let lost = 0;
    for (const b of rest) {
      if (b.file === null && this.o.spool !== null) {
        this.toSpool(b, this.o.spool);
        if (b.where === Where.DISK) spooled += b.records;
        else lost += b.records; // counted by toSpool (spool_full, spool_slow)
        continue;
      }
      this.memBytes -= b.size;
      b.where = Where.DONE;
      b.frame = null;
      if (b.file !== null) {
        spooled += b.records; // read back from the spool earlier: its file is still there
      } else {
        lost += b.records;
        this.o.onDrop('shutdown', b.records);
      }
    }
    await this.waitFor(() => this.writeBacklogBytes === 0);
    return [spooled, lost];
  }

  private make(frame: Buffer | null, seq: number, inc: string, records: number, size: number): OutBatch {
    const b: OutBatch = {
      order: this.nextOrder++,
      seq,
      incarnation: inc,
      records,
      size,
      frame,
      file: null,
      where: Where.DONE, // not placed yet: pushMem / toSpool / discard decide
      writing: false,
      loading: false,
      sends: 0,
      socketWrites: 0,
      written: () => this.socketWritten(b),
      held: null,
      replayed: false,
      sentAt: 0,
    };
    return b;
  }

  /** A socket write of `b.frame` completed (its callback fired, whatever the outcome). */
  private socketWritten(b: OutBatch): void {
    if (b.socketWrites === 0) return; // more callbacks than writes: keep the memory out of reach
    if (--b.socketWrites > 0 || b.held === null) return;
    const frame = b.held;
    b.held = null;
    this.framesHeld--;
    this.o.pool?.give(frame);
  }

  private pushMem(b: OutBatch): void {
    b.where = Where.MEM;
    this.memBytes += b.size;
    this.mem.push(b);
    this.o.onReady();
  }

  /**
   * Drops a batch that is not in flight, counting its records. Its frame goes back to the
   * pool on the same rule as an acknowledged one (nothing can read it: no file write, no
   * socket write outstanding), so a full buffer dropping batch after batch reuses their memory
   * instead of leaving it to the garbage collector.
   */
  private discard(b: OutBatch, reason: DropReason): void {
    if (b.where === Where.MEM) this.memBytes -= b.size;
    b.where = Where.DONE;
    const frame = b.frame;
    b.frame = null;
    const pool = this.o.pool;
    if (pool !== undefined && frame !== null && b.file === null && !b.writing && b.socketWrites === 0) {
      pool.give(frame);
    }
    if (b.file !== null && !b.writing && !b.loading) this.removeFile(b);
    this.o.onDrop(reason, b.records);
    this.wake();
  }

  private toSpool(b: OutBatch, spool: Spool): void {
    if (b.where === Where.MEM) this.memBytes -= b.size;
    b.where = Where.DONE;
    if (this.writeBacklogBytes + b.size > SPOOL_WRITE_BACKLOG_BYTES) {
      this.discard(b, 'spool_slow');
      return;
    }
    while (spool.bytes + b.size > spool.maxBytes) {
      const head = this.disk.at(0);
      const evictable = head !== undefined && head.where === Where.DISK && !head.writing && !head.loading;
      if (this.o.whenFull !== 'drop-oldest' || !evictable) {
        this.discard(b, 'spool_full');
        return;
      }
      this.discard(this.disk.shift()!, 'spool_full');
    }
    b.file = spool.nameFor(b.seq, b.incarnation, b.records);
    b.where = Where.DISK;
    b.writing = true;
    this.writeBacklogBytes += b.size;
    this.disk.push(b);
    spool.write(b.file, b.frame!).then(
      () => this.written(b, null),
      (err) => this.written(b, err),
    );
    this.o.onReady(); // sendable at once: its frame stays in memory until written
  }

  private written(b: OutBatch, err: unknown): void {
    b.writing = false;
    this.writeBacklogBytes -= b.size;
    if (err !== null) {
      this.o.log.error({ err, seq: b.seq }, 'spool write failed');
      b.file = null;
      if (b.where === Where.DISK) this.discard(b, 'spool_error');
    } else if (b.where === Where.DONE) {
      this.removeFile(b); // acknowledged (or discarded) while being written
    } else if (b.where === Where.DISK) {
      b.frame = null; // on disk now; read back when its turn comes
    }
    this.wake();
  }

  private readAhead(): void {
    const spool = this.o.spool;
    if (spool === null) return;
    for (let i = 0; i < this.disk.length && this.loads < SPOOL_READ_AHEAD && i < SPOOL_READ_AHEAD; i++) {
      const b = this.disk.at(i)!;
      if (b.where !== Where.DISK || b.frame !== null || b.loading || b.writing) continue;
      b.loading = true;
      this.loads++;
      spool.read(b.file!, b.seq, b.incarnation).then(
        (frame) => this.loaded(b, frame, null),
        (err) => this.loaded(b, null, err),
      );
    }
  }

  private loaded(b: OutBatch, frame: Buffer | null, err: unknown): void {
    b.loading = false;
    this.loads--;
    if (err !== null) {
      this.o.log.error({ err, file: b.file }, 'spool file unreadable; batch dropped');
      if (b.where === Where.DISK) this.discard(b, 'spool_error');
    } else if (b.where === Where.DISK) b.frame = frame;
    else if (b.where === Where.DONE && b.file !== null) this.removeFile(b);
    this.o.onReady();
  }

  private removeFile(b: OutBatch): void {
    this.o.spool!.remove(b.file!, b.size);
    b.file = null;
  }

  /** Re-checks the waitFor() conditions (after a change the buffer cannot see: a deadline). */
  wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.cond()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}
