// Where the ChunkSink's ordered blocks go. The sink keeps order, group commit, compression and
// backpressure; a store only moves bytes:
//
//   FileStore        local partial file; sync = fdatasync; publish = fsync + rename (the mount)
//   FileStore + put  the same local log, publish = one conditional upload, then delete (s3://)
//   AzureBlockStore  block = stageBlock (durable when it returns); publish = commitBlockList
//                    with If-None-Match: * (az://; azure-store.ts)
//
// Every store keeps the recovery invariant: what sync() made durable ends on a row boundary
// (and on a gzip member / zstd frame boundary), because the sink only hands it whole blocks.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ChunkFile } from './chunk-sink';
import { io, ioError } from './errors';
import { DirMaker, fsyncDir } from './layout';

export interface ChunkStore {
  /** Where committed chunks go, for messages: a directory or an object URL. */
  readonly location: string;
  /** False when sync() costs nothing (staged blocks are durable already): not counted as an fsync. */
  readonly syncCounts: boolean;
  /** Most blocks one chunk may have (Azure: 50,000 committed blocks per blob). */
  readonly maxBlocks: number;
  /** Appends one block of whole rows (the first holds the header) to the chunk. */
  append(chunk: ChunkFile, block: Buffer): Promise<void>;
  /** Makes every block appended to `chunk` durable. */
  sync(chunk: ChunkFile): Promise<void>;
  /**
   * Optional: starts writing the chunk's appended blocks to stable storage ahead of its sync
   * (a local file's fdatasync). The sink runs it beside its write loop, one at a time per chunk,
   * and waits for it before the chunk's next sync or publish.
   */
  writeback?(chunk: ChunkFile): Promise<void>;
  /** Makes the chunk visible under its final name, exactly once; returns that name. */
  publish(chunk: ChunkFile): Promise<string>;
  /** After a failure: release what is open, leave the data for recovery. */
  abandon(chunk: ChunkFile): void;
}

/**
 * Uploads a sealed local chunk file under its final name, once: resolves when the object
 * exists (created now, or found created by an earlier attempt: a conditional create failed).
 */
export type FilePublisher = (file: string, hourDir: string, finalName: string) => Promise<string>;

export class FileStore implements ChunkStore {
  readonly syncCounts = true;
  readonly maxBlocks = Number.MAX_SAFE_INTEGER;
  readonly location: string;
  private readonly dirs: DirMaker;

  /** `put`: upload sealed chunks instead of renaming them into outputDir (s3://). */
  constructor(
    private readonly outputDir: string,
    private readonly put: { publish: FilePublisher; location: string } | null = null,
  ) {
    this.dirs = new DirMaker(outputDir);
    this.location = put?.location ?? outputDir;
  }

  async append(chunk: ChunkFile, buf: Buffer): Promise<void> {
    const file = chunk.partialPath;
    let fh = chunk.fh;
    if (fh === null) fh = chunk.fh = await this.create(file);
    for (let off = 0; off < buf.length; ) {
      off += (await io('write', file, fh.write(buf, off, buf.length - off))).bytesWritten;
    }
  }

  /**
   * Creates a partial file. Its directory (a tenant's, --partition-by tenant) is made on first
   * use, durably, so that the writer never does directory I/O on the per-record path.
   */
  private async create(file: string): Promise<fsp.FileHandle> {
    try {
      return await fsp.open(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('create', file, err);
    }
    await this.dirs.ensure(path.relative(this.outputDir, path.dirname(file)), true);
    return io('create', file, fsp.open(file, 'wx'));
  }

  /** fdatasync of the partial file and, once, of its directory entry. */
  async sync(chunk: ChunkFile): Promise<void> {
    await io('fsync', chunk.partialPath, chunk.fh!.datasync());
    if (!chunk.entrySynced) {
      // fsync(2) on a new file does not persist its name; the directory must be synced too.
      await fsyncDir(path.dirname(chunk.partialPath));
      chunk.entrySynced = true;
    }
  }

  /** fdatasync beside the sink's writes (ChunkSink WRITEBACK_HINT_BYTES). */
  writeback(chunk: ChunkFile): Promise<void> {
    const fh = chunk.fh;
    if (fh === null) return Promise.resolve();
    return io('fsync', chunk.partialPath, fh.datasync());
  }

  /** fsync, close, then rename to the final name (or upload and delete). */
  async publish(chunk: ChunkFile): Promise<string> {
    const from = chunk.partialPath;
    const fh = chunk.fh;
    if (fh === null) throw new Error(`commit of ${chunk.name} before any block was written`);
    await io('fsync', from, fh.sync());
    chunk.fh = null;
    await io('close', from, fh.close());
    if (this.put !== null) {
      const to = await this.put.publish(from, chunk.hourDir, chunk.name);
      await io('unlink', from, fsp.rm(from, { force: true }));
      await fsyncDir(path.dirname(from));
      return to;
    }
    return publishByRename(this.dirs, from, chunk.hourDir, chunk.name);
  }

  abandon(chunk: ChunkFile): void {
    const fh = chunk.fh;
    chunk.fh = null;
    if (fh !== null) void fh.close().catch(() => undefined);
  }
}

/** Renames `from` into outputDir/hourDir/name and makes both directory entries durable. */
export async function publishByRename(
  dirs: DirMaker,
  from: string,
  hourDir: string,
  name: string,
): Promise<string> {
  let dir = await dirs.ensure(hourDir);
  let to = path.join(dir, name);
  try {
    await fsp.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('rename', to, err);
    // The cached hour directory vanished (a blob mount drops empty directories): retry once.
    dir = await dirs.ensure(hourDir, true);
    to = path.join(dir, name);
    await io('rename', to, fsp.rename(from, to));
  }
  await fsyncDir(dir);
  await fsyncDir(path.dirname(from));
  return to;
}
