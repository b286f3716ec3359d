// Start-up recovery (README "Output: CSV chunks" "finishes what a crashed predecessor left behind"): partial chunks
// in our own partial directory (same enricher id = our predecessor) and in directories of
// enrichers that are dead (no sign of life for staleAfterMs) are cut to their valid prefix and
// published under the final name their writer had chosen, so names stay unique.
//
// Call it before constructing the ChunkWriter of the same id. Two enrichers must never run
// with the same id. A live enricher's directory is never touched; staleAfterMs must exceed
// the heartbeat interval plus clock skew and any attribute-cache TTL of the mount.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { zstdAvailable } from './compression';
import { ioError } from './errors';
import {
  DirMaker,
  enricherIdProblem,
  fsyncDir,
  LOCK_FILE,
  lastSignOfLife,
  lockInfo,
  PARTIAL_DIR,
  type ParsedPartialName,
  parsePartialName,
  writeLock,
} from './layout';
import { DEFAULT_STALE_AFTER_MS } from './options';
import { parseTenantDir } from './partition';
import { CsvRowScanner, type Salvage, salvageGzip, salvageZstd } from './salvage';
import type { FilePublisher } from './store';

export { DEFAULT_STALE_AFTER_MS };

// Plain files are scanned in pieces: a chunk may be hundreds of MiB.
const SCAN_BYTES = 1024 * 1024;

export interface RecoveryOptions {
  /** Another enricher's directory is recovered after this long without a sign of life. */
  staleAfterMs?: number;
  /** Also recover dead peers' directories (default true). */
  includeOthers?: boolean;
  now?: () => number;
  /** Upload recovered chunks (s3://) instead of renaming them into outputDir. */
  publish?: FilePublisher;
}

export interface RecoveryResult {
  /** Files published. */
  recovered: number;
  /** Data rows in the published files. */
  rows: number;
  /** Bytes cut off (torn tails) or dropped (files without a complete row). */
  discardedBytes: number;
  /** Partial files deleted because they held no complete row. */
  dropped: number;
  published: string[];
  /** Peers' partial directories left alone because their owner is alive. */
  liveDirs: string[];
  /** zstd partial files left as they are: this runtime has no zstd to verify them with. */
  unsupported: string[];
}

/** Recovers partial chunks of `enricherId`'s predecessor and of dead peers. */
export async function recoverPartials(
  outputDir: string,
  enricherId: string,
  opts: RecoveryOptions = {},
): Promise<RecoveryResult> {
  const now = opts.now ?? Date.now;
  const staleAfter = opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const root = path.resolve(outputDir);
  const result: RecoveryResult = {
    recovered: 0,
    rows: 0,
    discardedBytes: 0,
    dropped: 0,
    published: [],
    liveDirs: [],
    unsupported: [],
  };
  const partialRoot = path.join(root, PARTIAL_DIR);
  let entries: string[];
  try {
    entries = await fsp.readdir(partialRoot);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw ioError('readdir', partialRoot, err);
  }
  const dirs = new DirMaker(root);
  if (entries.includes(enricherId)) {
    const own = path.join(partialRoot, enricherId);
    // Claim it first: the predecessor may have been dead long enough to look stale to peers.
    await writeLock(own, lockInfo(enricherId, 'recovery', now()));
    await recoverDir(own, dirs, result, opts.publish);
  }
  if (opts.includeOthers === false) return result;
  for (const name of entries) {
    if (name === enricherId || enricherIdProblem(name) !== null) continue;
    const dir = path.join(partialRoot, name);
    const st = await fsp.stat(dir).catch(() => null);
    if (st === null || !st.isDirectory()) continue;
    if (now() - (await lastSignOfLife(dir)) < staleAfter) {
      result.liveDirs.push(dir);
      continue;
    }
    // Mark the directory as being recovered so other starting peers leave it alone meanwhile.
    try {
      await writeLock(dir, lockInfo(name, 'recovery', now(), enricherId));
    } catch (err) {
      if (gone(err)) continue; // a racing peer finished it and removed the directory
      throw err;
    }
    await recoverDir(dir, dirs, result, opts.publish);
    await fsp.rm(path.join(dir, LOCK_FILE), { force: true });
    await fsp.rmdir(dir).catch(() => undefined);
  }
  return result;
}

/**
 * Recovers the partial chunks of one enricher's partial directory, and those of its tenant
 * sub-directories (`tenant=<name>/`, --partition-by tenant), which are published below the same
 * `tenant=<name>/` of the output directory.
 */
async function recoverDir(
  dir: string,
  dirs: DirMaker,
  result: RecoveryResult,
  publish: FilePublisher | undefined,
  prefix = '',
): Promise<void> {
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).sort();
  } catch (err) {
    if (gone(err)) return;
    throw ioError('readdir', dir, err);
  }
  for (const name of names) {
    const parsed = parsePartialName(name);
    if (parsed !== null) {
      const hourDir = prefix === '' ? parsed.hourDir : path.join(prefix, parsed.hourDir);
      await recoverFile(path.join(dir, name), { ...parsed, hourDir }, dirs, result, publish);
      continue;
    }
    if (prefix !== '' || parseTenantDir(name) === null) continue;
    const sub = path.join(dir, name);
    const st = await fsp.stat(sub).catch(() => null);
    if (st === null || !st.isDirectory()) continue;
    await recoverDir(sub, dirs, result, publish, name);
    await fsp.rmdir(sub).catch(() => undefined); // empty now, unless something foreign is left
  }
  await fsyncDir(dir).catch((err) => {
    if (!gone(err)) throw err;
  });
}

async function recoverFile(
  file: string,
  parsed: ParsedPartialName,
  dirs: DirMaker,
  result: RecoveryResult,
  publish: FilePublisher | undefined,
) {
  if (parsed.compression === 'zstd' && !zstdAvailable()) {
    // Never guess: a newer runtime (or the next start of one) recovers it exactly.
    result.unsupported.push(file);
    return;
  }
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a peer got it first
    throw ioError('open', file, err);
  }
  let size: number;
  let salvage: Salvage;
  try {
    size = (await fh.stat()).size;
    if (parsed.compression === 'gzip') salvage = salvageGzip(await fh.readFile());
    else if (parsed.compression === 'zstd') salvage = salvageZstd(await fh.readFile());
    else salvage = await scanPlain(fh, size);
    if (salvage.rows > 0) {
      if (salvage.keepBytes < size) await fh.truncate(salvage.keepBytes);
      await fh.sync();
    }
  } catch (err) {
    throw ioError('recover', file, err);
  } finally {
    await fh.close().catch(() => undefined);
  }
  if (salvage.rows === 0) {
    await fsp.rm(file, { force: true });
    result.dropped++;
    result.discardedBytes += size;
    return;
  }
  if (publish !== undefined) {
    // Conditional create: a chunk uploaded before the kill (not yet deleted) is not created twice.
    let to: string;
    try {
      to = await publish(file, parsed.hourDir, parsed.finalName);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a peer got it first
      throw err;
    }
    await fsp.rm(file, { force: true });
    await fsyncDir(path.dirname(file)).catch((err) => {
      if (!gone(err)) throw err;
    });
    result.recovered++;
    result.rows += salvage.rows;
    result.discardedBytes += size - salvage.keepBytes;
    result.published.push(to);
    return;
  }
  const dir = await dirs.ensure(parsed.hourDir);
  const to = path.join(dir, parsed.finalName);
  // A copy+delete rename (blobfuse) can die between the two: the published copy is complete.
  if (await fsp.stat(to).catch(() => null)) {
    await fsp.rm(file, { force: true });
    result.dropped++;
    return;
  }
  try {
    await fsp.rename(file, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('rename', to, err);
  }
  await fsyncDir(dir);
  result.recovered++;
  result.rows += salvage.rows;
  result.discardedBytes += size - salvage.keepBytes;
  result.published.push(to);
}

/** ENOENT, raw or as an OutputError's cause: a racing peer removed it. */
function gone(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code === 'ENOENT' || e.cause?.code === 'ENOENT';
}

async function scanPlain(fh: fsp.FileHandle, size: number): Promise<Salvage> {
  const scanner = new CsvRowScanner();
  const buf = Buffer.allocUnsafe(Math.min(SCAN_BYTES, Math.max(size, 1)));
  for (let pos = 0; pos < size && !scanner.broken; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    scanner.feed(buf, 0, bytesRead);
    pos += bytesRead;
  }
  return scanner.rows === 0 ? { keepBytes: 0, rows: 0 } : { keepBytes: scanner.validEnd, rows: scanner.rows };
}
