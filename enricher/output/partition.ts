// --partition-by tenant (README "Per-tenant output"): each tenant's rows go to chunks of their
// own, below a Hive-style directory:
//
//   <outputDir>/tenant=<escaped>/YYYY/MM/DD/HH/snowtap-<id>-...csv[.gz|.zst]
//   <outputDir>/_partial/<enricherId>/tenant=<escaped>/<final name>.partial   (being written)
//
// One lane (a ChunkWriter in lane mode) per open tenant chunk, all sharing one ChunkSink: one
// serial I/O loop, one buffer pool and one group commit, whose sync() fsyncs every file
// written since the last one. An acknowledgement therefore waits for every chunk its batch
// touched. At most maxOpenTenants lanes exist; a row of another tenant takes the least
// recently used lane, whose chunk is sealed and published first (counted in `evictions`).
//
// Files per minute stay bounded: every lane taken by another tenant costs one token of a
// bucket of maxOpenTenants tokens refilled at tenantChunkRate per second. Without a token the
// row is still written (a sink takes every row) but the writer reports `full` until the
// bucket is positive again, so inputs pause (link connections stop reading, convert waits;
// the --dnstap-listen input drops, counted). Chunks opened per minute are therefore at most
// maxOpenTenants + 60 × tenantChunkRate by tenant switches, plus one per lane per
// --rotate-max-age, plus the size rotations (--rotate-max-rows/-bytes) that the volume
// itself causes. Nothing is dropped by the bound: it costs throughput, not rows.
//
// Names are escaped byte by byte (UTF-8; a lone UTF-16 surrogate as its WTF-8 bytes):
// A-Z a-z 0-9 '-' '.' stay, '_' stays except as the first byte, every other byte becomes %XX
// (upper-case hex). So '/', '..' (harmless behind 'tenant='), '=', '%', '~', spaces, control
// bytes and non-ASCII are safe, and the mapping is reversible (parseTenantDir). Reserved
// values (a real name never escapes to them, since a leading '_' is escaped): `__none__` for
// rows without a tenant (no policy, no matching network, no client address) and `__empty__`
// for the empty tenant name "". An escaped value longer than MAX_TENANT_DIR_VALUE bytes (a
// path component is at most 255 bytes on common file systems) is cut to a readable prefix
// plus '~' and 128 bits of SHA-256 of the whole name: still distinct per tenant, but only the
// rows' tenant column holds the full name then.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { type Clock, realClock } from '../../common/clock';
import type { ChunkFile, CommitInfo } from './chunk-sink';
import { ChunkSink } from './chunk-sink';
import { ChunkWriter, type ChunkWriterOptions, type ChunkWriterStats, openPartialDir } from './chunk-writer';
import { blockCompressor } from './compression';
import { OutputError } from './errors';
import { LOCK_FILE, lockInfo, newIncarnation, partialDirOf, writeLock } from './layout';
import { resolveOptions } from './options';
import { s3Client, s3Publisher } from './s3-store';
import { FileStore } from './store';

export const PARTITION_BYS = ['none', 'tenant'] as const;
export type PartitionBy = (typeof PARTITION_BYS)[number];

export const PARTITION_DEFAULTS = {
  partitionBy: 'none' as PartitionBy,
  maxOpenTenants: 64,
  tenantChunkRate: 64,
} as const;

export const PARTITION_RANGES = {
  maxOpenTenants: { min: 1, max: 65_536 },
  tenantChunkRate: { min: 0.01, max: 1_000_000 },
} as const;

export interface PartitionOptions {
  partitionBy?: PartitionBy;
  /** Lanes (open tenant chunks) at most; the least recently used is published first. */
  maxOpenTenants?: number;
  /** Tenant switches (a lane taken by another tenant) per second, on average. */
  tenantChunkRate?: number;
}

export const TENANT_KEY = 'tenant';
/** Directory value of rows without a tenant. */
export const NO_TENANT = '__none__';
/** Directory value of the empty tenant name. */
export const EMPTY_TENANT = '__empty__';
/** Longest escaped value in a directory name: `tenant=` + this stays far below 255 bytes. */
export const MAX_TENANT_DIR_VALUE = 200;
const HASH_HEX = 32;

const HEX = '0123456789ABCDEF';

function isSafe(b: number, first: boolean): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x2d ||
    b === 0x2e ||
    (b === 0x5f && !first)
  );
}

/** UTF-8 bytes of `s`; a lone surrogate is encoded as its WTF-8 three bytes (reversible). */
export function wtf8(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Buffer.from(out);
}

/** Inverse of wtf8() for the byte strings it makes. */
function fromWtf8(b: Buffer): string {
  let s = '';
  for (let i = 0; i < b.length; ) {
    const x = b[i]!;
    let c: number;
    if (x < 0x80) c = b[i++]!;
    else if (x < 0xe0) {
      c = ((x & 31) << 6) | (b[i + 1]! & 63);
      i += 2;
    } else if (x < 0xf0) {
      c = ((x & 15) << 12) | ((b[i + 1]! & 63) << 6) | (b[i + 2]! & 63);
      i += 3;
    } else {
      c = ((x & 7) << 18) | ((b[i + 1]! & 63) << 12) | ((b[i + 2]! & 63) << 6) | (b[i + 3]! & 63);
      i += 4;
    }
    s += String.fromCodePoint(c);
  }
  return s;
}

/** The directory value of a tenant (null: no tenant). See the header for the rules. */
export function escapeTenant(tenant: string | null): string {
  if (tenant === null) return NO_TENANT;
  if (tenant === '') return EMPTY_TENANT;
  const bytes = wtf8(tenant);
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += isSafe(b, i === 0) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  if (out.length <= MAX_TENANT_DIR_VALUE) return out;
  let cut = out.slice(0, MAX_TENANT_DIR_VALUE - 1 - HASH_HEX);
  const pct = cut.lastIndexOf('%');
  if (pct >= 0 && pct > cut.length - 3) cut = cut.slice(0, pct);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX);
  return `${cut}~${hash}`;
}

/** `tenant=<value>`: the directory of a tenant's chunks. */
export function tenantDir(tenant: string | null): string {
  return `${TENANT_KEY}=${escapeTenant(tenant)}`;
}

export interface ParsedTenantDir {
  /** The tenant (null: rows without one); for a hashed value, the prefix it keeps. */
  tenant: string | null;
  /** False for a cut value (name longer than MAX_TENANT_DIR_VALUE escaped): `tenant` is a prefix. */
  complete: boolean;
}

/** Reads back a directory name made by tenantDir(); null for anything else. */
export function parseTenantDir(name: string): ParsedTenantDir | null {
  const prefix = `${TENANT_KEY}=`;
  if (!name.startsWith(prefix)) return null;
  const value = name.slice(prefix.length);
  if (value === NO_TENANT) return { tenant: null, complete: true };
  if (value === EMPTY_TENANT) return { tenant: '', complete: true };
  const tilde = value.indexOf('~');
  const body = tilde >= 0 ? value.slice(0, tilde) : value;
  if (tilde >= 0 && !/^[0-9a-f]{32}$/.test(value.slice(tilde + 1))) return null;
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const ch = body.charCodeAt(i);
    if (ch === 0x25) {
      const h = body.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) return null;
      bytes.push(Number.parseInt(h, 16));
      i += 2;
    } else if (isSafe(ch, bytes.length === 0)) bytes.push(ch);
    else return null;
  }
  if (bytes.length === 0) return null;
  return { tenant: fromWtf8(Buffer.from(bytes)), complete: tilde < 0 };
}

export interface PartitionStats {
  /** Lanes in use (open tenant chunks or idle lanes keeping their tenant). */
  openTenants: number;
  /** Tenant chunks sealed and published early because their lane went to another tenant. */
  evictions: number;
  /** Times the writer reported `full` because tenant switches outran --tenant-chunk-rate. */
  throttled: number;
}

export type PartitionedWriterOptions = ChunkWriterOptions &
  Omit<PartitionOptions, 'partitionBy'> & {
    /** The tenant-switch throttle's time source (default: real time); tests pass a SimClock. */
    throttleClock?: Clock;
  };

function invalid(field: string, why: string): OutputError {
  return new OutputError('OUTPUT_INVALID_OPTION', `partition option ${field} ${why}`);
}

/** Validates the partition options (throws OUTPUT_INVALID_OPTION naming the field). */
export function checkPartitionOptions(o: PartitionOptions): Required<PartitionOptions> {
  const by = o.partitionBy ?? PARTITION_DEFAULTS.partitionBy;
  if (!PARTITION_BYS.includes(by)) throw invalid('partitionBy', `must be one of ${PARTITION_BYS.join('|')}`);
  const n = o.maxOpenTenants ?? PARTITION_DEFAULTS.maxOpenTenants;
  const r = PARTITION_RANGES.maxOpenTenants;
  if (!Number.isInteger(n) || n < r.min || n > r.max)
    throw invalid('maxOpenTenants', `must be an integer in [${r.min}, ${r.max}], got ${String(n)}`);
  const rate = o.tenantChunkRate ?? PARTITION_DEFAULTS.tenantChunkRate;
  const rr = PARTITION_RANGES.tenantChunkRate;
  if (typeof rate !== 'number' || !(rate >= rr.min && rate <= rr.max))
    throw invalid('tenantChunkRate', `must be a number in [${rr.min}, ${rr.max}], got ${String(rate)}`);
  return { partitionBy: by, maxOpenTenants: n, tenantChunkRate: rate };
}

const noop = () => undefined;

interface Lane {
  w: ChunkWriter;
  /** Tick of the last selectTenant() that chose it: the smallest is the least recently used. */
  used: number;
}

/** The DurableRowSink of --partition-by tenant; the pipeline calls selectTenant() before each row. */
export class PartitionedWriter {
  readonly incarnation = newIncarnation();
  readonly partialDir: string;
  readonly partition = { openTenants: 0, evictions: 0, throttled: 0 } satisfies PartitionStats;
  private readonly sink: ChunkSink;
  private readonly laneOptions: ChunkWriterOptions;
  /** Lanes by tenant (null: no tenant), with the tick of their last use. */
  private readonly lanes = new Map<string | null, Lane>();
  private ticks = 0;
  private readonly dirs = new Map<string | null, string>();
  private current: ChunkWriter | null = null;
  private currentKey: string | null | undefined = undefined;
  private seq = 0;
  private readonly maxOpen: number;
  private readonly rate: number;
  private readonly now: () => number;
  private readonly clock: Clock;
  private tokens: number;
  private tokensAt: number;
  private sinkDrain: Promise<void> | null = null;
  private throttle: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly o: ReturnType<typeof resolveOptions>;

  constructor(options: PartitionedWriterOptions) {
    const { maxOpenTenants, tenantChunkRate, throttleClock, ...chunk } = options;
    const p = checkPartitionOptions({ partitionBy: 'tenant', maxOpenTenants, tenantChunkRate });
    const o = resolveOptions(chunk);
    this.o = o;
    this.maxOpen = p.maxOpenTenants;
    this.rate = p.tenantChunkRate;
    this.now = o.now;
    this.clock = throttleClock ?? realClock;
    this.tokens = this.maxOpen;
    this.tokensAt = this.clock.now();
    if (o.url?.scheme === 'az')
      throw new OutputError(
        'OUTPUT_INVALID_OPTION',
        '--partition-by tenant is not supported with --output-url az:// yet: use s3:// or a mounted directory',
      );
    this.partialDir = partialDirOf(o.outputDir, o.enricherId);
    openPartialDir(o, this.partialDir, this.incarnation);
    this.sink = new ChunkSink({
      outputDir: o.outputDir,
      compress: blockCompressor(o.compression, o.compression === 'zstd' ? o.zstdLevel : o.gzipLevel),
      compressConcurrency: o.gzipConcurrency,
      blockBytes: o.blockBytes,
      onCommit: o.onCommit as ((info: CommitInfo) => void) | undefined,
      // The local partial files; s3:// uploads each sealed chunk once (store.ts).
      store: new FileStore(
        o.outputDir,
        o.url === null ? null : { publish: s3Publisher(o.url, s3Client()), location: o.url.href },
      ),
    });
    this.laneOptions = { ...chunk };
    delete this.laneOptions.onCommit;
  }

  /** Chooses the lane of the next row: `tenant` is the matched policy network's tenant, or null. */
  selectTenant(tenant: string | null): void {
    if (tenant === this.currentKey) return;
    this.checkOpen();
    let lane = this.lanes.get(tenant);
    if (lane === undefined) lane = this.takeLane(tenant);
    // A stamp, not a reordered list: a switch costs one lookup; the eviction scans (rare, throttled).
    lane.used = ++this.ticks;
    this.current = lane.w;
    this.currentKey = tenant;
  }

  private takeLane(tenant: string | null): Lane {
    const dir = this.dirOf(tenant);
    const partialDir = path.join(this.partialDir, dir);
    const prefix = `${dir}/`;
    let lane: Lane;
    if (this.lanes.size >= this.maxOpen) {
      let oldKey: string | null = null;
      let old: Lane | null = null;
      for (const [k, l] of this.lanes)
        if (old === null || l.used < old.used) {
          old = l;
          oldKey = k;
        }
      this.lanes.delete(oldKey);
      const w = old!.w;
      if (w.openChunk !== null) {
        this.partition.evictions++;
        w.rotate().catch(noop);
      }
      w.retarget(partialDir, prefix);
      lane = old!;
    } else {
      const w = new ChunkWriter(this.laneOptions, {
        sink: this.sink,
        incarnation: this.incarnation,
        nextSeq: () => ++this.seq,
        partialDir,
        dirPrefix: prefix,
      });
      lane = { w, used: 0 };
    }
    this.lanes.set(tenant, lane);
    this.partition.openTenants = this.lanes.size;
    this.spendToken();
    return lane;
  }

  private dirOf(tenant: string | null): string {
    let d = this.dirs.get(tenant);
    if (d === undefined) {
      // Escaping is per lane switch, not per row; remember a bounded number of names.
      if (this.dirs.size >= 4 * this.maxOpen) this.dirs.clear();
      d = tenantDir(tenant);
      this.dirs.set(tenant, d);
    }
    return d;
  }

  private spendToken(): void {
    // Not the chunk writer's `now` (chunk names and ages): the pause it leads to is a timer.
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.tokensAt); // a wall clock stepped back refills nothing
    this.tokens = Math.min(this.maxOpen, this.tokens + (elapsed * this.rate) / 1000);
    this.tokensAt = now;
    this.tokens -= 1;
    if (this.tokens >= 0 || this.throttle !== null) return;
    this.partition.throttled++;
    const waitMs = Math.ceil((-this.tokens * 1000) / this.rate);
    this.throttle = new Promise<void>((resolve) => this.clock.setTimeout(resolve, waitMs)).then(() => {
      this.throttle = null;
    });
  }

  private lane(): ChunkWriter {
    if (this.current === null) this.selectTenant(null);
    return this.current!;
  }

  beginRow(room: number): number {
    return this.lane().beginRow(room);
  }

  get rowTarget(): Buffer {
    return this.current!.rowTarget;
  }

  endRow(end: number): boolean {
    const lane = this.current!;
    if (!lane.endRow(end) && this.sinkDrain === null) {
      const settle = () => {
        this.sinkDrain = null;
      };
      const d = lane.whenDrained().then(settle, settle);
      this.sinkDrain = d;
    }
    return !this.full;
  }

  /** Appends a complete row of `tenant` (tests, tools). */
  appendRow(tenant: string | null, src: Buffer, start: number, end: number): boolean {
    this.selectTenant(tenant);
    if (!this.current!.appendRow(src, start, end) && this.sinkDrain === null) {
      const settle = () => {
        this.sinkDrain = null;
      };
      this.sinkDrain = this.current!.whenDrained().then(settle, settle);
    }
    return !this.full;
  }

  get full(): boolean {
    return this.sinkDrain !== null || this.throttle !== null;
  }

  whenDrained(): Promise<void> {
    if (this.sink.failure !== null) return Promise.reject(this.sink.failure);
    if (!this.full) return Promise.resolve();
    return Promise.all([this.sinkDrain, this.throttle]).then(() => {
      if (this.sink.failure !== null) throw this.sink.failure;
    });
  }

  /** Resolves when every row ended before the call is durable: every touched tenant chunk fsynced. */
  flush(): Promise<void> {
    const sink = this.sink;
    let unsealed = false;
    for (const { w } of this.lanes.values())
      if (w.unsealedRows > 0) {
        unsealed = true;
        break;
      }
    if (!unsealed) return sink.sync(sink.acceptedRows);
    // Group commit as in ChunkWriter.flush(): seal once the sink is idle, so that flushes
    // arriving meanwhile share the blocks and the fsyncs.
    return sink.whenIdle().then(() => {
      for (const { w } of this.lanes.values()) w.seal();
      return sink.sync(sink.acceptedRows);
    });
  }

  /** Publishes every lane's chunk that is rotate-max-age old. */
  tick(): void {
    if (this.closing !== null) return;
    for (const { w } of this.lanes.values()) w.tick();
  }

  /** Commits every open tenant chunk; resolves once all are published. */
  rotate(): Promise<void> {
    return Promise.all([...this.lanes.values()].map((l) => l.w.rotate())).then(() => this.sink.barrier());
  }

  /** Commits every open chunk, then releases the partial directory (tenant sub-directories included). */
  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = this.rotate().then(async () => {
        await fsp.rm(path.join(this.partialDir, LOCK_FILE), { force: true });
        for (const name of await fsp.readdir(this.partialDir).catch(() => [] as string[])) {
          if (parseTenantDir(name) !== null) await fsp.rmdir(path.join(this.partialDir, name)).catch(noop);
        }
        await fsp.rmdir(this.partialDir).catch(noop);
      });
    }
    return this.closing;
  }

  heartbeat(): Promise<void> {
    if (this.closing !== null) return Promise.resolve();
    return writeLock(this.partialDir, lockInfo(this.o.enricherId, this.incarnation, this.now()));
  }

  stats(): ChunkWriterStats {
    const s = this.sink;
    const now = this.now();
    let partialRows = 0;
    let partialBytes = 0;
    let appendedRows = 0;
    let oldest = s.committing.length > 0 ? s.committing[0]! : Number.POSITIVE_INFINITY;
    let oldestOpen = Number.POSITIVE_INFINITY;
    for (const { w } of this.lanes.values()) {
      const c: ChunkFile | null = w.openChunk;
      appendedRows += w.stats().appendedRows;
      if (c === null) continue;
      partialRows += c.rows;
      partialBytes += c.bytes;
      oldestOpen = Math.min(oldestOpen, c.openedAt);
      if (c.rows > 0) oldest = Math.min(oldest, c.openedAt);
    }
    return {
      chunksCommitted: s.chunksCommitted,
      rowsCommitted: s.rowsCommitted,
      bytesCommitted: s.bytesCommitted,
      bytesWritten: s.bytesWritten,
      partialRows,
      partialBytes,
      openAgeMs: oldestOpen === Number.POSITIVE_INFINITY ? 0 : Math.max(0, now - oldestOpen),
      oldestUncommittedAgeMs: oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, now - oldest),
      queuedBytes: s.queuedBytes,
      durableRows: s.durableRows,
      appendedRows,
      syncs: s.syncs,
      failed: s.failure !== null,
    };
  }

  private checkOpen(): void {
    if (this.sink.failure !== null) throw this.sink.failure;
    if (this.closing !== null) throw new OutputError('OUTPUT_CLOSED', 'chunk writer is closed');
  }
}

/** The writer for `partition`: a plain ChunkWriter, or a PartitionedWriter for --partition-by tenant. */
export function createOutputWriter(
  output: ChunkWriterOptions,
  partition: PartitionOptions | undefined,
): ChunkWriter | PartitionedWriter {
  const p = checkPartitionOptions(partition ?? {});
  if (p.partitionBy === 'none') return new ChunkWriter(output);
  return new PartitionedWriter({
    ...output,
    maxOpenTenants: p.maxOpenTenants,
    tenantChunkRate: p.tenantChunkRate,
  });
}
