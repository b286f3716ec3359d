// The aggregates journal: what makes acknowledged counts survive kill -9 (issue 9 step 3).
// Aggregates live in memory until their hour closes; a batch is acknowledged only once the
// journal holds it durably (fdatasync, group commit: one sync for every batch waiting), so a
// restarted enricher with the same id replays the journal and rebuilds the open hours.
//
//   <outputDir>/_partial/<enricherId>/aggregates.journal
//
// Entries: be32 length N | u8 kind | N-1 bytes. Kinds:
//   1 SNAPSHOT  JSON {epoch, state}: the open hours at the last compaction (first entry).
//   2 BATCH     u8 flags (1 = resent) | u8 len, agent_id | u8 len, Hello incarnation | Batch body
//   3 EMITTING  JSON {hours}: these hours are being published under this segment's epoch.
// A torn last entry (a crash mid-append) is ignored: it was never acknowledged.
//
// Compaction, at every emission (hour close, drain): with no write in flight, synchronously:
// EMITTING appended and synced, the aggregate file written, a new segment holding only a
// SNAPSHOT of what stays open written and synced beside the journal, the aggregate file
// published, the new segment renamed over the old. A crash anywhere in between leaves either
// nothing published (the old segment replays as before) or an EMITTING entry: the restart then
// publishes exactly those hours again under the same epoch, the same file name and the same
// emission_id, and the view (SNOWTAP_AGGREGATES) keeps one copy of rows with equal ids.

import * as fs from 'node:fs';
import * as path from 'node:path';

export const JOURNAL_FILE = 'aggregates.journal';
export const KIND_SNAPSHOT = 1;
export const KIND_BATCH = 2;
export const KIND_EMITTING = 3;

export interface JournalBatch {
  resent: boolean;
  agentId: string;
  incarnation: string;
  body: Buffer;
}

export interface JournalContents {
  snapshot: { epoch: string; state: unknown } | null;
  batches: JournalBatch[];
  emitting: number[] | null;
  /** Bytes of a torn tail that were ignored. */
  tornBytes: number;
}

export function entry(kind: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(body.length + 1, 0);
  out[4] = kind;
  body.copy(out, 5);
  return out;
}

export function batchEntry(
  resent: boolean,
  agentId: string,
  incarnation: string,
  body: Buffer,
  start: number,
  end: number,
): Buffer {
  const a = Buffer.from(agentId, 'latin1');
  const inc = Buffer.from(incarnation, 'latin1');
  const n = 3 + a.length + inc.length + (end - start);
  const out = Buffer.allocUnsafe(5 + n);
  out.writeUInt32BE(n + 1, 0);
  out[4] = KIND_BATCH;
  let p = 5;
  out[p++] = resent ? 1 : 0;
  out[p++] = a.length;
  p += a.copy(out, p);
  out[p++] = inc.length;
  p += inc.copy(out, p);
  body.copy(out, p, start, end);
  return out;
}

export function readJournal(file: string): JournalContents | null {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const out: JournalContents = { snapshot: null, batches: [], emitting: null, tornBytes: 0 };
  let p = 0;
  while (p < data.length) {
    if (data.length - p < 5) break;
    const n = data.readUInt32BE(p);
    if (n < 1 || p + 4 + n > data.length) break;
    const kind = data[p + 4]!;
    const body = data.subarray(p + 5, p + 4 + n);
    p += 4 + n;
    if (kind === KIND_SNAPSHOT) out.snapshot = JSON.parse(body.toString('utf8'));
    else if (kind === KIND_EMITTING)
      out.emitting = (JSON.parse(body.toString('utf8')) as { hours: number[] }).hours;
    else if (kind === KIND_BATCH) {
      let q = 0;
      const resent = body[q++] === 1;
      const al = body[q++]!;
      const agentId = body.toString('latin1', q, q + al);
      q += al;
      const il = body[q++]!;
      const incarnation = body.toString('latin1', q, q + il);
      q += il;
      out.batches.push({ resent, agentId, incarnation, body: body.subarray(q) });
    }
  }
  out.tornBytes = data.length - p;
  return out;
}

/** Append-only, group-committed journal file. */
export class Journal {
  private fd: number;
  private pending: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private failures: ((err: Error) => void)[] = [];
  private writing: Promise<void> | null = null;
  private paused = false;
  private failure: Error | null = null;
  /** Bytes appended since the last compaction. */
  bytes = 0;
  syncs = 0;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
  }

  append(buf: Buffer): void {
    this.pending.push(buf);
    this.bytes += buf.length;
  }

  /** Resolves once everything appended before the call is durable. */
  flush(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.pending.length === 0 && this.writing === null) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push(resolve);
      this.failures.push(reject);
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing !== null || this.paused || this.waiters.length === 0) return;
    const bufs = this.pending;
    const waiters = this.waiters;
    const failures = this.failures;
    this.pending = [];
    this.waiters = [];
    this.failures = [];
    const fd = this.fd;
    this.writing = new Promise<void>((done) => {
      const finish = (err: Error | null) => {
        this.writing = null;
        if (err !== null) {
          this.failure = err;
          for (const f of failures) f(err);
        } else {
          this.syncs++;
          for (const w of waiters) w();
        }
        done();
        this.kick();
      };
      fs.writev(fd, bufs, (err) => {
        if (err) return finish(err);
        fs.fdatasync(fd, (err2) => finish(err2 ?? null));
      });
    });
  }

  /** Waits for the write in flight and holds new ones until resume(). */
  async pause(): Promise<void> {
    this.paused = true;
    while (this.writing !== null) await this.writing;
  }

  /** Appends and syncs synchronously (EMITTING); only while paused. */
  appendSync(buf: Buffer): void {
    fs.writeSync(this.fd, buf);
    fs.fdatasyncSync(this.fd);
  }

  /**
   * Replaces the journal by `snapshot` (written to a temporary file and synced first), while
   * paused. Everything appended so far is covered by the snapshot: waiters resolve.
   * `beforeSwap` runs between the sync and the rename (publishing the aggregate file).
   */
  compactSync(snapshot: Buffer, beforeSwap: () => void): void {
    const tmp = `${this.file}.next`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, snapshot);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    beforeSwap();
    fs.renameSync(tmp, this.file);
    fsyncDirSync(path.dirname(this.file));
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
    this.pending = [];
    this.bytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    this.failures = [];
    for (const w of waiters) w();
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

// FUSE file systems (blobfuse) may refuse to open or fsync a directory: not a failure there
// (output/layout.ts fsyncDir does the same).
const DIR_FSYNC_UNSUPPORTED = new Set([
  'EINVAL',
  'ENOTSUP',
  'EOPNOTSUPP',
  'ENOSYS',
  'EISDIR',
  'EBADF',
  'EPERM',
]);

export function fsyncDirSync(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (err) {
    if (DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if (!DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    fs.closeSync(fd);
  }
}
