// Where chunk files live and what they are called; directory durability; the owner lock.
//
//   <outputDir>/_partial/<enricherId>/owner.lock                 heartbeat of the live writer
//   <outputDir>/_partial/<enricherId>/<final name>.partial       chunk being written
//   <outputDir>/YYYY/MM/DD/HH/snowtap-<id>-<YYYYMMDDTHHMMSS.mmmZ>-<incarnation>-<seq>.csv[.gz|.zst]
//
// Final names are unique across pods (the enricher id is the pod name) and across restarts of
// one id (a random 32-bit incarnation per writer; the sequence restarts at 1 in each). That is
// cheaper and more robust than persisting a counter, which would cost an fsync per chunk and
// could not survive losing the volume's metadata. Uniqueness matters: Snowpipe skips a file
// whose name it has loaded before. The timestamp leads so names sort by time within an id.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { mkdirp, mkdirpSync } from '../../common/mkdirp';
import type { Compression } from './compression';
import { ioError } from './errors';

export const PARTIAL_DIR = '_partial';
export const PARTIAL_SUFFIX = '.partial';
export const LOCK_FILE = 'owner.lock';
export const MAX_ENRICHER_ID_LENGTH = 128;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PARTIAL_NAME =
  /^snowtap-.+-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-[0-9a-f]+-\d+\.csv(\.gz|\.zst)?\.partial$/;

/** Returns why `id` cannot be used as a file-name component, or null when it can. */
export function enricherIdProblem(id: string): string | null {
  if (id.length === 0 || id.length > MAX_ENRICHER_ID_LENGTH)
    return `must be 1-${MAX_ENRICHER_ID_LENGTH} chars`;
  if (!ID_PATTERN.test(id)) return 'must match [A-Za-z0-9][A-Za-z0-9._-]*';
  return null;
}

export function newIncarnation(): string {
  return randomBytes(4).toString('hex');
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** 2026-11-22T03:18:39.123Z as 20261122T031839.123Z (ISO 8601 basic: no ':' in file names). */
export function compactUtc(ms: number): string {
  const d = new Date(ms);
  return (
    pad(d.getUTCFullYear(), 4) +
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    'T' +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    '.' +
    pad(d.getUTCMilliseconds(), 3) +
    'Z'
  );
}

/** YYYY/MM/DD/HH (UTC) relative to the output directory. */
export function hourDirOf(ms: number): string {
  const d = new Date(ms);
  return path.join(
    pad(d.getUTCFullYear(), 4),
    pad(d.getUTCMonth() + 1, 2),
    pad(d.getUTCDate(), 2),
    pad(d.getUTCHours(), 2),
  );
}

/** `suffix`: what follows `.csv` (COMPRESSION_SUFFIX). */
export function chunkFileName(
  id: string,
  openedAt: number,
  incarnation: string,
  seq: number,
  suffix: string,
) {
  return `snowtap-${id}-${compactUtc(openedAt)}-${incarnation}-${pad(seq, 6)}.csv${suffix}`;
}

export interface ParsedPartialName {
  finalName: string;
  /** Hour directory (relative) of the chunk's open time, taken from the name. */
  hourDir: string;
  compression: Compression;
}

/** Reads back a name made by chunkFileName() + PARTIAL_SUFFIX; null for anything else. */
export function parsePartialName(name: string): ParsedPartialName | null {
  const m = PARTIAL_NAME.exec(name);
  if (m === null) return null;
  return {
    finalName: name.slice(0, -PARTIAL_SUFFIX.length),
    hourDir: path.join(m[1]!, m[2]!, m[3]!, m[4]!),
    compression: m[8] === '.gz' ? 'gzip' : m[8] === '.zst' ? 'zstd' : 'none',
  };
}

export function partialDirOf(outputDir: string, enricherId: string): string {
  return path.join(outputDir, PARTIAL_DIR, enricherId);
}

// Some FUSE file systems (blobfuse) cannot open or fsync a directory; there the service
// makes a rename durable by itself, so these errors are not failures.
const DIR_FSYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EISDIR', 'EBADF']);

/** Makes the directory's entries (created, renamed, removed files) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    if (!DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? ''))
      throw ioError('fsync', dir, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Synchronous mkdir -p whose new entries are made durable (for constructors). */
export function makeDirDurableSync(root: string, abs: string): void {
  const first = mkdirpSync(abs);
  if (first === undefined) return;
  for (let dir = abs; ; dir = path.dirname(dir)) {
    const parent = path.dirname(dir);
    let fd: number | undefined;
    try {
      fd = fs.openSync(parent, 'r');
      fs.fsyncSync(fd);
    } catch (err) {
      if (!DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    if (dir === first || parent.length <= root.length) break;
  }
}

// Hour directories are created once per hour; remember a day's worth.
const MAX_REMEMBERED_DIRS = 48;

/** Creates directories under a root, making every new directory entry durable. */
export class DirMaker {
  private readonly known = new Set<string>();

  constructor(private readonly root: string) {}

  /** Returns the absolute path of `rel`, created if missing. `fresh` skips the cache. */
  async ensure(rel: string, fresh = false): Promise<string> {
    const abs = path.join(this.root, rel);
    if (!fresh && this.known.has(abs)) return abs;
    let first: string | undefined;
    try {
      first = await mkdirp(abs);
    } catch (err) {
      throw ioError('mkdir', abs, err);
    }
    if (first !== undefined) {
      // A new directory is only durable once its entry in the parent is: fsync each parent.
      for (let dir = abs; ; dir = path.dirname(dir)) {
        await fsyncDir(path.dirname(dir));
        if (dir === first || dir.length <= this.root.length) break;
      }
    }
    if (this.known.size >= MAX_REMEMBERED_DIRS) this.known.clear();
    this.known.add(abs);
    return abs;
  }
}

/** Content of owner.lock: who owns a partial directory, and when it last said so. */
export interface LockInfo {
  enricherId: string;
  incarnation: string;
  pid: number;
  host: string;
  heartbeatAt: number;
  /** Set while another enricher recovers a dead owner's directory. */
  recoveredBy?: string;
}

export function lockInfo(
  enricherId: string,
  incarnation: string,
  now: number,
  recoveredBy?: string,
): LockInfo {
  const info: LockInfo = { enricherId, incarnation, pid: process.pid, host: hostname(), heartbeatAt: now };
  if (recoveredBy !== undefined) info.recoveredBy = recoveredBy;
  return info;
}

// The heartbeat rewrites the file rather than touching its mtime: blobfuse ignores utimes,
// and a reader on another pod sees the content's timestamp even where mtimes are coarse.
export function writeLockSync(dir: string, info: LockInfo): void {
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(info));
}

export async function writeLock(dir: string, info: LockInfo): Promise<void> {
  const file = path.join(dir, LOCK_FILE);
  try {
    await fsp.writeFile(file, JSON.stringify(info));
  } catch (err) {
    throw ioError('write', file, err);
  }
}

/**
 * The latest sign that someone writes in `dir`: the lock's heartbeat timestamp or the newest
 * mtime of any entry (a live writer's partial files change too). 0 when there is none.
 */
export async function lastSignOfLife(dir: string): Promise<number> {
  let latest = 0;
  for (const name of await fsp.readdir(dir)) {
    const st = await fsp.stat(path.join(dir, name)).catch(() => null);
    if (st !== null && st.mtimeMs > latest) latest = st.mtimeMs;
  }
  try {
    const info = JSON.parse(await fsp.readFile(path.join(dir, LOCK_FILE), 'utf8')) as Partial<LockInfo>;
    if (typeof info.heartbeatAt === 'number' && info.heartbeatAt > latest) latest = info.heartbeatAt;
  } catch {
    // Missing or half-written lock: the mtimes above decide.
  }
  return latest;
}
