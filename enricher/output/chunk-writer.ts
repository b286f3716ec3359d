// Turns complete CSV rows into committed chunk files (README "Output: CSV chunks"): rows are copied (appendRow)
// or encoded in place (beginRow/endRow) into a large block buffer (no per-row allocation or
// I/O), blocks go to the ChunkSink for ordered
// writing, and a chunk is committed when it reaches maxRows, maxBytes (uncompressed, header
// included) or maxAgeMs, whichever comes first. No timers inside: the owner calls tick()
// (age) and heartbeat() (owner lock) from its own timers.
//
// It is the pipeline's RowSink, backpressure included: the writer keeps accepting rows above
// its high-water mark (a block is never refused half-encoded), but from the row that crosses
// it, endRow()/appendRow() return false and `full` stays true until the queue has drained to
// half the mark (whenDrained() resolves then). Inputs look at that: convert waits, link
// connections stop reading their sockets, the dnstap listener drops, visibly.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { DurableRowSink } from '../pipeline/pipeline';
import { AzureBlockStore, azureContainer } from './azure-store';
import { type ChunkFile, ChunkSink } from './chunk-sink';
import { blockCompressor, COMPRESSION_SUFFIX } from './compression';
import { OutputError } from './errors';
import {
  chunkFileName,
  hourDirOf,
  LOCK_FILE,
  lockInfo,
  makeDirDurableSync,
  newIncarnation,
  PARTIAL_SUFFIX,
  partialDirOf,
  writeLock,
  writeLockSync,
} from './layout';
import { type ChunkWriterOptions, type ResolvedOptions, resolveOptions } from './options';
import { s3Client, s3Publisher } from './s3-store';
import { type ChunkStore, FileStore } from './store';

export type { ChunkWriterOptions } from './options';

// Appends read the clock once per this many rows (a clock read costs ~35 ns, as much as
// copying the row); tick() covers idle chunks, so age precision is unchanged in practice.
export const ROWS_PER_CLOCK_READ = 64;

export interface ChunkWriterStats {
  chunksCommitted: number;
  rowsCommitted: number;
  /** Uncompressed CSV bytes of committed chunks. */
  bytesCommitted: number;
  /** Bytes written to files (compressed, when they are), committed or not. */
  bytesWritten: number;
  partialRows: number;
  partialBytes: number;
  /** Age of the open chunk in ms; 0 when none is open. */
  openAgeMs: number;
  /**
   * Age in ms of the oldest row appended but not yet in a committed (published) chunk: the open
   * chunk's or one waiting for its commit, whichever opened first; 0 when there is none. Rows
   * are acknowledged once durable in the partial file, so this bounds how long an acknowledged
   * row can wait before Snowpipe can see it.
   */
  oldestUncommittedAgeMs: number;
  /** Sealed bytes not yet on disk. */
  queuedBytes: number;
  durableRows: number;
  appendedRows: number;
  /** fsync/fdatasync calls on chunk files (group commit shares them). */
  syncs: number;
  failed: boolean;
}

const noop = () => undefined;

/**
 * A writer that is one lane of a partitioned writer (partition.ts): it shares the owner's
 * sink (one I/O loop, one group commit), incarnation and chunk sequence, and writes below a
 * sub-directory (`tenant=<name>/`) of both the partial and the output directory.
 */
export interface LaneContext {
  sink: ChunkSink;
  incarnation: string;
  nextSeq: () => number;
  /** Absolute partial directory of this lane. */
  partialDir: string;
  /** Prefix of the hour directory, relative to the output directory, ending in '/'. */
  dirPrefix: string;
}

/**
 * Makes this writer's partial directory (durably: every new directory entry above it too) and
 * takes its owner.lock; OUTPUT_NOT_WRITABLE naming the output directory otherwise. Shared with
 * the partitioned writer (partition.ts).
 */
export function openPartialDir(
  o: { outputDir: string; enricherId: string; now: () => number },
  partialDir: string,
  incarnation: string,
): void {
  try {
    makeDirDurableSync(path.dirname(o.outputDir), partialDir);
    fs.accessSync(o.outputDir, fs.constants.W_OK);
    writeLockSync(partialDir, lockInfo(o.enricherId, incarnation, o.now()));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new OutputError('OUTPUT_NOT_WRITABLE', `output directory ${o.outputDir} is not writable: ${why}`, {
      cause: err,
      path: o.outputDir,
    });
  }
}

export class ChunkWriter implements DurableRowSink {
  /** Random per writer: keeps final names unique across restarts of the same enricher id. */
  readonly incarnation: string;
  partialDir: string;
  private dirPrefix = '';
  private readonly lane: LaneContext | null;
  private readonly o: ResolvedOptions;
  private readonly sink: ChunkSink;
  /** az:// only: staged blocks, no local directory. */
  private readonly azure: AzureBlockStore | null = null;
  /** A chunk is committed at this many blocks (object stores bound the blocks of one object). */
  private readonly maxBlocks: number;
  private chunk: ChunkFile | null = null;
  private buf: Buffer;
  private bufLen = 0;
  private bufRows = 0;
  private seq = 0;
  private appendedRows = 0;
  private untilClockRead = 0;
  /** Where beginRow() placed the row being encoded: the block buffer, or `scratch`. */
  private target: Buffer;
  private scratch: Buffer | null = null;
  private closing: Promise<void> | null = null;
  private lastAckSeal = 0;
  private ackGate: Promise<void> | null = null;
  /** Pending while `full`: settles when the sink drained to its low-water mark or failed. */
  private drain: Promise<void> | null = null;

  /** Throws OUTPUT_INVALID_OPTION, or OUTPUT_NOT_WRITABLE naming the directory. */
  constructor(options: ChunkWriterOptions, lane: LaneContext | null = null) {
    const o = resolveOptions(options);
    this.o = o;
    this.lane = lane;
    if (lane !== null) {
      this.incarnation = lane.incarnation;
      this.partialDir = lane.partialDir;
      this.dirPrefix = lane.dirPrefix;
      this.sink = lane.sink;
      // Lanes write through the owner's file store (partition.ts refuses az://).
      this.maxBlocks = Number.MAX_SAFE_INTEGER;
      this.buf = this.sink.takeBuffer();
      this.target = this.buf;
      return;
    }
    this.incarnation = newIncarnation();
    this.partialDir = partialDirOf(o.outputDir, o.enricherId);
    let store: ChunkStore;
    if (o.url?.scheme === 'az') {
      store = this.azure = new AzureBlockStore({
        url: o.url,
        container: azureContainer(o.url),
        enricherId: o.enricherId,
        incarnation: this.incarnation,
        now: o.now,
        staleAfterMs: o.staleAfterMs,
      });
    } else {
      const put = o.url === null ? null : { publish: s3Publisher(o.url, s3Client()), location: o.url.href };
      store = new FileStore(o.outputDir, put);
      this.openLocal();
    }
    this.maxBlocks = store.maxBlocks - 1;
    this.sink = new ChunkSink({
      outputDir: o.outputDir,
      compress: blockCompressor(o.compression, o.compression === 'zstd' ? o.zstdLevel : o.gzipLevel),
      compressConcurrency: o.gzipConcurrency,
      blockBytes: o.blockBytes,
      onCommit: o.onCommit,
      store,
    });
    this.buf = this.sink.takeBuffer();
    this.target = this.buf;
  }

  /** The partial directory and its owner.lock (local and s3:// outputs). */
  private openLocal(): void {
    openPartialDir(this.o, this.partialDir, this.incarnation);
  }

  /**
   * Appends one complete CSV row (src[start, end), CRLF included). Returns false when more
   * than the high-water mark is queued for disk: wait for whenDrained() before the next batch.
   * Throws the writer's failure, or OUTPUT_CLOSED after close().
   */
  appendRow(src: Buffer, start: number, end: number): boolean {
    this.checkOpen();
    const len = end - start;
    let chunk = this.chunk;
    if (chunk !== null && (chunk.bytes + len > this.o.maxBytes || this.aged(chunk))) {
      this.commitChunk().catch(noop);
      chunk = null;
    }
    if (chunk === null) chunk = this.startChunk();
    if (this.bufLen + len > this.buf.length) {
      this.sealBlock();
      if (len > this.buf.length) {
        // A row larger than a block travels as a block of its own.
        const big = Buffer.allocUnsafeSlow(len);
        src.copy(big, 0, start, end);
        this.sink.writeBlock(chunk, big, len, 1);
        return this.counted(chunk, len);
      }
    }
    src.copy(this.buf, this.bufLen, start, end);
    this.bufLen += len;
    this.bufRows++;
    return this.counted(chunk, len);
  }

  /**
   * The in-place form of appendRow(), for the per-record path: returns the offset in
   * rowTarget where the caller writes one complete row (CRLF included) of at most `room`
   * bytes, then calls endRow() with the row's end. Saves appendRow()'s copy (Buffer#copy of a
   * partial range allocates a view: ~90 ns a row). Throws like appendRow().
   */
  beginRow(room: number): number {
    this.checkOpen();
    const chunk = this.chunk;
    if (chunk !== null && this.aged(chunk)) this.commitChunk().catch(noop);
    if (this.chunk === null) this.startChunk();
    if (this.bufLen + room > this.buf.length) {
      this.sealBlock();
      if (this.bufLen + room > this.buf.length) {
        // Blocks smaller than the row bound (tests, tiny configurations): encode aside.
        if (this.scratch === null || this.scratch.length < room) this.scratch = Buffer.allocUnsafe(room);
        this.target = this.scratch;
        return 0;
      }
    }
    this.target = this.buf;
    return this.bufLen;
  }

  /** The buffer that the offset from beginRow() refers to; read it after each beginRow(). */
  get rowTarget(): Buffer {
    return this.target;
  }

  /** Ends the row begun by beginRow(); returns what appendRow() returns. */
  endRow(end: number): boolean {
    if (this.target !== this.buf) return this.appendRow(this.target, 0, end);
    const start = this.bufLen;
    const len = end - start;
    const chunk = this.chunk!;
    if (chunk.bytes + len > this.o.maxBytes && chunk.rows > 0) {
      // The row opens the next chunk (once per chunk): move it aside, commit, append it.
      const row = Buffer.from(this.buf.subarray(start, end));
      this.commitChunk().catch(noop);
      return this.appendRow(row, 0, len);
    }
    this.bufLen = end;
    this.bufRows++;
    return this.counted(chunk, len);
  }

  /** Commits the open chunk once it is maxAgeMs old, so an idle chunk still gets published. */
  tick(): void {
    const chunk = this.chunk;
    if (chunk !== null && this.closing === null && this.o.now() - chunk.openedAt >= this.o.maxAgeMs) {
      this.commitChunk().catch(noop);
    }
  }

  /** Resolves when every row appended before the call is on disk and fsynced; rejects on failure. */
  flush(): Promise<void> {
    const target = this.appendedRows;
    if (this.sealedRows() >= target) return this.sink.sync(target);
    // Group commit: while the sink is busy, rows keep filling the open block; it is sealed
    // once the sink has nothing else to do, so the flushes that came meanwhile share one
    // block (one gzip member) and one fsync.
    const idle = this.sink.whenIdle();
    return (this.o.ackIntervalMs > 0 ? idle.then(() => this.ackWindow()) : idle).then(() => {
      if (this.sealedRows() < target) {
        this.sealBlock();
        this.lastAckSeal = Date.now();
      }
      return this.sink.sync(target);
    });
  }

  /**
   * ackIntervalMs (az://): blocks sealed for acknowledgements are at least this far apart, so
   * the flushes of that window share one Put Block (transactions are billed per request).
   */
  private ackWindow(): Promise<void> {
    const wait = this.lastAckSeal + this.o.ackIntervalMs - Date.now();
    if (wait <= 0) return Promise.resolve();
    this.ackGate ??= new Promise((resolve) =>
      setTimeout(() => {
        this.ackGate = null;
        resolve();
      }, wait),
    );
    return this.ackGate;
  }

  /** Commits the open chunk now (if any) and resolves once it and all before it are published. */
  rotate(): Promise<void> {
    return this.chunk !== null ? this.commitChunk() : this.sink.barrier();
  }

  /**
   * True from the row for which endRow()/appendRow() returned false until the queue drained
   * to half the high-water mark.
   */
  get full(): boolean {
    return this.drain !== null;
  }

  /**
   * Resolves at once when not `full`, else once the queue drained to half the high-water mark.
   * Rejects with the writer's failure (then every later row throws it too).
   */
  whenDrained(): Promise<void> {
    if (this.sink.failure !== null) return Promise.reject(this.sink.failure);
    return this.drain ?? Promise.resolve();
  }

  /** Lane use (partition.ts): rows ended but not yet handed to the sink. */
  get unsealedRows(): number {
    return this.bufRows;
  }

  /** Lane use: hands the open block to the sink, so that a sync() covers its rows. */
  seal(): void {
    if (this.bufLen === 0 || this.chunk === null) return;
    if (this.bufLen * 4 > this.buf.length) {
      this.sealBlock();
      return;
    }
    // A flush seals every touched lane, mostly with a few rows each: hand over a copy of the
    // rows and keep the block buffer, instead of taking a fresh block per lane per flush.
    const copy = Buffer.allocUnsafe(this.bufLen);
    this.buf.copy(copy, 0, 0, this.bufLen);
    this.sink.writeBlock(this.chunk, copy, this.bufLen, this.bufRows);
    this.bufLen = 0;
    this.bufRows = 0;
  }

  /** Lane use: the open chunk, if any. */
  get openChunk(): ChunkFile | null {
    return this.chunk;
  }

  /**
   * Lane use: moves an idle lane (no open chunk) to another partition directory, so that an
   * evicted tenant's lane and its block buffer serve the next tenant.
   */
  retarget(partialDir: string, dirPrefix: string): void {
    if (this.chunk !== null) throw new Error('retarget of a lane with an open chunk');
    this.partialDir = partialDir;
    this.dirPrefix = dirPrefix;
  }

  /** Commits the open chunk, then releases the partial directory. Idempotent. */
  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = this.rotate().then(async () => {
        if (this.azure !== null) return this.azure.release();
        await fsp.rm(path.join(this.partialDir, LOCK_FILE), { force: true });
        // Pod names are random: do not leave one empty directory per pod behind.
        await fsp.rmdir(this.partialDir).catch(noop);
      });
    }
    return this.closing;
  }

  /** Refreshes owner.lock; call every few seconds so that peers never recover a live directory. */
  heartbeat(): Promise<void> {
    if (this.closing !== null) return Promise.resolve();
    if (this.azure !== null) return this.azure.heartbeat();
    return writeLock(this.partialDir, lockInfo(this.o.enricherId, this.incarnation, this.o.now()));
  }

  stats(): ChunkWriterStats {
    const s = this.sink;
    const chunk = this.chunk;
    return {
      chunksCommitted: s.chunksCommitted,
      rowsCommitted: s.rowsCommitted,
      bytesCommitted: s.bytesCommitted,
      bytesWritten: s.bytesWritten,
      partialRows: chunk?.rows ?? 0,
      partialBytes: chunk?.bytes ?? 0,
      openAgeMs: chunk === null ? 0 : Math.max(0, this.o.now() - chunk.openedAt),
      oldestUncommittedAgeMs: this.oldestUncommittedAgeMs(),
      queuedBytes: s.queuedBytes,
      durableRows: s.durableRows,
      appendedRows: this.appendedRows,
      syncs: s.syncs,
      failed: s.failure !== null,
    };
  }

  private oldestUncommittedAgeMs(): number {
    const pending = this.sink.committing;
    let oldest = pending.length > 0 ? pending[0]! : Number.POSITIVE_INFINITY;
    if (this.chunk !== null && this.chunk.rows > 0) oldest = Math.min(oldest, this.chunk.openedAt);
    return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, this.o.now() - oldest);
  }

  private checkOpen(): void {
    if (this.sink.failure !== null) throw this.sink.failure;
    if (this.closing !== null) throw new OutputError('OUTPUT_CLOSED', 'chunk writer is closed');
  }

  /** True when the chunk is due by age; reads the clock every ROWS_PER_CLOCK_READ calls. */
  private aged(chunk: ChunkFile): boolean {
    if (--this.untilClockRead > 0) return false;
    this.untilClockRead = ROWS_PER_CLOCK_READ;
    return this.o.now() - chunk.openedAt >= this.o.maxAgeMs;
  }

  private counted(chunk: ChunkFile, len: number): boolean {
    chunk.rows++;
    chunk.bytes += len;
    this.appendedRows++;
    if (chunk.rows >= this.o.maxRows || chunk.bytes >= this.o.maxBytes || chunk.blocks >= this.maxBlocks)
      this.commitChunk().catch(noop);
    if (this.drain === null && !this.sink.belowHighWater) this.latchFull();
    return this.drain === null;
  }

  private latchFull(): void {
    const settle = () => {
      this.drain = null;
      if (this.sink.failure !== null) throw this.sink.failure;
    };
    const drain = this.sink.whenDrained().then(settle, settle);
    // Nobody may be waiting: a failure then surfaces on the next row or flush() instead.
    drain.catch(noop);
    this.drain = drain;
  }

  /** Rows handed to the sink (everything appended except the open block's rows). */
  private sealedRows(): number {
    return this.appendedRows - this.bufRows;
  }

  private startChunk(): ChunkFile {
    const openedAt = this.o.now();
    const name = chunkFileName(
      this.o.enricherId,
      openedAt,
      this.incarnation,
      this.lane === null ? ++this.seq : this.lane.nextSeq(),
      COMPRESSION_SUFFIX[this.o.compression],
    );
    const chunk: ChunkFile = {
      name,
      partialPath: path.join(this.partialDir, name + PARTIAL_SUFFIX),
      hourDir: this.dirPrefix + hourDirOf(openedAt),
      openedAt,
      rows: 0,
      bytes: this.o.header.length,
      fileBytes: 0,
      fh: null,
      entrySynced: false,
      blocks: 0,
      hintedBytes: 0,
      writeback: null,
    };
    // The block buffer is empty here: the previous chunk sealed it when it was committed.
    this.o.header.copy(this.buf, 0);
    this.bufLen = this.o.header.length;
    this.chunk = chunk;
    return chunk;
  }

  private sealBlock(): void {
    if (this.bufLen === 0 || this.chunk === null) return;
    this.sink.writeBlock(this.chunk, this.buf, this.bufLen, this.bufRows);
    this.buf = this.sink.takeBuffer();
    this.bufLen = 0;
    this.bufRows = 0;
  }

  private commitChunk(): Promise<void> {
    this.sealBlock();
    const chunk = this.chunk!;
    this.chunk = null;
    return this.sink.commit(chunk);
  }
}
