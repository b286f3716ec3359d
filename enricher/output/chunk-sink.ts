// The ordered I/O half of the chunk writer: sealed blocks of whole CSV rows go in, files come
// out. One serial loop does every write, fsync, close and rename, so the file contents follow
// append order without locks. Compressed, each block becomes one gzip member or one zstd frame
// (compression.ts), compressed on the libuv threadpool, a bounded number at a time, and
// written strictly in queue order.
//
// Where the bytes go is a ChunkStore (store.ts): a local file renamed at commit (the default),
// a local file uploaded at commit (s3://), or staged blocks committed at seal (az://).
//
// Durability invariant relied on by recovery: every fsync covers whole blocks only, so a
// synced prefix of a partial file always ends on a row boundary and, compressed, on a member
// or frame boundary. Rows in a torn tail were never reported durable.
import type * as fsp from 'node:fs/promises';
import type { BlockCompressor } from './compression';
import { ioError, OutputError } from './errors';
import type { ChunkStore } from './store';

/** One chunk from its first row to its commit. */
export interface ChunkFile {
  /** Final file name (no directory). */
  readonly name: string;
  readonly partialPath: string;
  /** Final directory relative to the output dir: YYYY/MM/DD/HH of openedAt. */
  readonly hourDir: string;
  readonly openedAt: number;
  rows: number;
  /** Uncompressed CSV bytes, header included. */
  bytes: number;
  /** Bytes written to the file (compressed, when it is). */
  fileBytes: number;
  fh: fsp.FileHandle | null;
  /** The partial file's directory entry has been fsynced. */
  entrySynced: boolean;
  /** Blocks handed to the sink (object stores bound the blocks of one object). */
  blocks: number;
  /** fileBytes when the last writeback hint or sync started (see WRITEBACK_HINT_BYTES). */
  hintedBytes: number;
  /** The writeback hint in flight, if any; settles (never rejects) once it is done. */
  writeback: Promise<void> | null;
}

export interface CommitInfo {
  path: string;
  rows: number;
  bytes: number;
  compressedBytes: number;
}

export interface SinkOptions {
  outputDir: string;
  /** null: blocks are written as they are. */
  compress: BlockCompressor | null;
  /** Blocks being compressed at once. */
  compressConcurrency: number;
  blockBytes: number;
  onCommit?: (info: CommitInfo) => void;
  store: ChunkStore;
}

// Sealed blocks waiting for compression or disk before appendRow() reports backpressure.
export const QUEUE_HIGH_WATER_BLOCKS = 8;
// Spare block buffers kept for reuse instead of allocating 512 KiB per block. As many as the
// queue holds at its high-water mark (plus the open block and one in hand), so a writer that
// honours backpressure never drops a buffer to the GC: dropped ones are external memory that
// V8 collects late, and RSS would drift up by tens of MiB with the input size.
const BUFFER_POOL_MAX = QUEUE_HIGH_WATER_BLOCKS + 2;
/**
 * A chunk written this far past its last sync gets a writeback hint: an fdatasync started
 * beside the write loop (not awaited by it), so the disk writes the chunk while rows are still
 * being encoded instead of all at once in the commit's fsync. Without it a convert stalls at
 * every commit for as long as the disk takes to write the chunk (1 M rows, 215 MB: ~95 ms of
 * a 1.1 s run). A failed hint fails the sink like a failed sync (fsync errors are reported
 * once only).
 */
export const WRITEBACK_HINT_BYTES = 16 * 1024 * 1024;

const WRITE = 0;
const COMMIT = 1;
const BARRIER = 2;

interface Op {
  kind: number;
  chunk: ChunkFile | null;
  data: Buffer | null;
  len: number;
  rows: number;
  out: Buffer | null;
  resolve: (() => void) | null;
  reject: ((err: Error) => void) | null;
}

interface SyncWaiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ChunkSink {
  // Counters read by ChunkWriter.stats().
  /** Rows handed over in writeBlock() so far; sync() may only wait for these. */
  acceptedRows = 0;
  writtenRows = 0;
  durableRows = 0;
  queuedBytes = 0;
  bytesWritten = 0;
  chunksCommitted = 0;
  rowsCommitted = 0;
  bytesCommitted = 0;
  syncs = 0;
  failure: OutputError | null = null;
  /** openedAt of the chunks queued for commit and not yet published, oldest first (commits run in order). */
  readonly committing: number[] = [];

  private readonly queue: Op[] = [];
  private readonly waiters: SyncWaiter[] = [];
  private drainWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly pool: Buffer[] = [];
  private readonly store: ChunkStore;
  private readonly highWater: number;
  private compressing = 0;
  private running = false;
  /**
   * Chunks written to since their last sync. One at a time for a plain writer; with
   * --partition-by tenant one per open tenant chunk (partition.ts), all synced by one sync().
   */
  private readonly dirty: ChunkFile[] = [];
  /** Chunks with open store state (a file handle, staged blocks): abandoned on failure. */
  private readonly openFiles = new Set<ChunkFile>();

  constructor(private readonly o: SinkOptions) {
    this.store = o.store;
    this.highWater = o.blockBytes * QUEUE_HIGH_WATER_BLOCKS;
  }

  takeBuffer(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafeSlow(this.o.blockBytes);
  }

  get belowHighWater(): boolean {
    return this.queuedBytes < this.highWater;
  }

  /** Queues data[0, len) (whole rows of `chunk`); the sink owns `data` from now on. */
  writeBlock(chunk: ChunkFile, data: Buffer, len: number, rows: number): void {
    this.queuedBytes += len;
    this.acceptedRows += rows;
    chunk.blocks++;
    this.push(WRITE, chunk, data, len, rows);
    if (this.o.compress !== null) this.startCompressions();
  }

  /** Queues the commit of `chunk` after its blocks; resolves once it is published. */
  commit(chunk: ChunkFile): Promise<void> {
    this.committing.push(chunk.openedAt);
    return this.pushAwaited(COMMIT, chunk);
  }

  /** Resolves when everything queued so far is done. */
  barrier(): Promise<void> {
    return this.pushAwaited(BARRIER, null);
  }

  /**
   * Resolves once at least `target` rows are durable. Waiters share fsyncs (group commit).
   * Only rows already handed over in writeBlock() can be waited for: the owner seals first.
   */
  sync(target: number): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (target <= this.durableRows) return Promise.resolve();
    if (target > this.acceptedRows) {
      return Promise.reject(new Error(`sync(${target}) beyond the ${this.acceptedRows} rows handed over`));
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ target, resolve, reject });
      this.kick();
    });
  }

  /**
   * Resolves when nothing is queued (every block written, every commit done), at once when
   * idle already; also when the sink fails. The owner seals its open block then: rows keep
   * filling it while the sink is busy, so flushes that arrive meanwhile share one block.
   */
  whenIdle(): Promise<void> {
    if (this.failure !== null || (!this.running && this.queue.length === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves when the queue is back under half the high-water mark. */
  whenDrained(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.belowHighWater) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private push(
    kind: number,
    chunk: ChunkFile | null,
    data: Buffer | null,
    len: number,
    rows: number,
    resolve: (() => void) | null = null,
    reject: ((err: Error) => void) | null = null,
  ): void {
    this.queue.push({ kind, chunk, data, len, rows, out: null, resolve, reject });
    this.kick();
  }

  private pushAwaited(kind: number, chunk: ChunkFile | null): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.push(kind, chunk, null, 0, 0, resolve, reject));
  }

  private startCompressions(): void {
    const compress = this.o.compress!;
    for (let i = 0; i < this.queue.length && this.compressing < this.o.compressConcurrency; i++) {
      const op = this.queue[i]!;
      if (op.kind !== WRITE || op.out !== null || op.data === null) continue;
      const data = op.data;
      op.data = null;
      this.compressing++;
      compress(data.subarray(0, op.len), (err, out) => {
        this.compressing--;
        this.release(data);
        if (err !== null) return this.fail(ioError('compress', op.chunk!.partialPath, err));
        op.out = out;
        this.startCompressions();
        this.kick();
      });
    }
  }

  private release(buf: Buffer): void {
    if (buf.length === this.o.blockBytes && this.pool.length < BUFFER_POOL_MAX) this.pool.push(buf);
  }

  private kick(): void {
    if (this.running || this.failure !== null) return;
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        if (this.failure !== null) return;
        const w = this.waiters;
        if (w.length > 0 && w[0]!.target <= this.writtenRows) {
          await this.syncOpen();
          continue;
        }
        const op = this.queue[0];
        if (op !== undefined) {
          // A block still being compressed: its callback kicks the loop again.
          if (op.kind === WRITE && this.o.compress !== null && op.out === null) return;
          if (op.kind === WRITE) await this.write(op);
          else if (op.kind === COMMIT) await this.publish(op.chunk!);
          this.queue.shift();
          op.resolve?.();
          continue;
        }
        // Idle: the owner may seal its open block now (see whenIdle); its writeBlock() kicks
        // the loop again once this run has returned.
        this.wakeIdle();
        return;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.running = false;
    }
  }

  private async write(op: Op): Promise<void> {
    const chunk = op.chunk!;
    this.openFiles.add(chunk);
    if (!this.dirty.includes(chunk)) this.dirty.push(chunk);
    const buf = op.out ?? op.data!.subarray(0, op.len);
    await this.store.append(chunk, buf);
    if (op.data !== null) this.release(op.data);
    op.data = op.out = null;
    chunk.fileBytes += buf.length;
    this.bytesWritten += buf.length;
    this.writtenRows += op.rows;
    this.queuedBytes -= op.len;
    if (chunk.fileBytes - chunk.hintedBytes >= WRITEBACK_HINT_BYTES) this.hintWriteback(chunk);
    if (this.drainWaiters.length > 0 && this.queuedBytes <= this.highWater / 2) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of ws) resolve();
    }
  }

  /** Starts a writeback hint for `chunk` unless one is in flight or the store has none. */
  private hintWriteback(chunk: ChunkFile): void {
    const writeback = this.store.writeback;
    if (writeback === undefined || chunk.writeback !== null) return;
    chunk.hintedBytes = chunk.fileBytes;
    const done: Promise<void> = writeback.call(this.store, chunk).then(
      () => {
        if (chunk.writeback === done) chunk.writeback = null;
      },
      (err: unknown) => {
        if (chunk.writeback === done) chunk.writeback = null;
        this.fail(err);
      },
    );
    chunk.writeback = done;
  }

  /** Waits for the chunk's writeback hint; throws the sink's failure (a failed hint's too). */
  private async settleWriteback(chunk: ChunkFile): Promise<void> {
    if (chunk.writeback !== null) await chunk.writeback;
    if (this.failure !== null) throw this.failure;
  }

  private wakeIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of ws) resolve();
  }

  /** Makes the open chunk's written blocks durable (fdatasync, or nothing: staged blocks are); wakes waiters. */
  private async syncOpen(): Promise<void> {
    if (this.durableRows < this.writtenRows) {
      const chunks = this.dirty.splice(0);
      // Several tenant chunks: their syncs run at once (the device queues them together).
      await Promise.all(chunks.map((chunk) => this.syncChunk(chunk)));
    }
    this.durableRows = this.writtenRows;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.target <= this.durableRows)
      this.waiters[n++]!.resolve();
    this.waiters.splice(0, n);
  }

  private async syncChunk(chunk: ChunkFile): Promise<void> {
    await this.settleWriteback(chunk);
    if (this.store.syncCounts) this.syncs++;
    chunk.hintedBytes = chunk.fileBytes;
    await this.store.sync(chunk);
  }

  /** Publishes the chunk under its final name (rename, upload or block-list commit). */
  private async publish(chunk: ChunkFile): Promise<void> {
    await this.settleWriteback(chunk);
    if (this.store.syncCounts) this.syncs++;
    const to = await this.store.publish(chunk);
    this.openFiles.delete(chunk);
    const at = this.dirty.indexOf(chunk);
    if (at >= 0) this.dirty.splice(at, 1);
    // Every written row is durable only when no other chunk waits for its sync.
    if (this.dirty.length === 0) this.durableRows = this.writtenRows;
    this.chunksCommitted++;
    this.committing.shift();
    this.rowsCommitted += chunk.rows;
    this.bytesCommitted += chunk.bytes;
    this.o.onCommit?.({ path: to, rows: chunk.rows, bytes: chunk.bytes, compressedBytes: chunk.fileBytes });
  }

  /** The first failure sticks: every pending and later promise rejects with it. */
  private fail(err: unknown): void {
    if (this.failure !== null) return;
    const failure = err instanceof OutputError ? err : ioError('write', this.o.outputDir, err);
    this.failure = failure;
    // Leave the partial files (staged blocks) in place: the next start recovers their complete rows.
    for (const open of this.openFiles) this.store.abandon(open);
    this.openFiles.clear();
    this.dirty.length = 0;
    for (const op of this.queue.splice(0)) op.reject?.(failure);
    for (const w of this.waiters.splice(0)) w.reject(failure);
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of ws) resolve();
    this.wakeIdle();
  }
}
