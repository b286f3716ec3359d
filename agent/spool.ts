// The spool: batches that do not fit in memory (enricher outage) kept as files, one complete
// link frame per file, so an agent restart finds them and sends them first.
//
// Name: <ordinal, 12 digits>-<seq>-<records>-<incarnation>.batch. The ordinal gives the FIFO
// order across incarnations; seq and incarnation let a later process re-send the batch
// under its original record ids, and let it number its own batches above every spooled
// seq (LINK.md: never two unacknowledged batches with the same seq). A file is written
// under a .tmp name and renamed, so a crash leaves no half batch under a final name.
//
// No fsync by default: the spool rides out enricher outages and agent restarts (the page
// cache survives a process crash or kill -9); a node crash takes the DNS server and usually
// the emptyDir with it. --spool-fsync syncs each file and its directory entry before the
// batch counts as spooled, for spools on a volume that outlives the node (agent/README.md).

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/log';
import { mkdirp } from '../common/mkdirp';
import { BatchView, MessageType } from '../proto/link';
import { AgentError, AgentErrorCode } from './errors';

const NAME = /^(\d{12})-(\d{1,16})-(\d{1,10})-([A-Za-z0-9._:-]{1,64})\.batch$/;
const TMP_SUFFIX = '.tmp';

/** A batch file found in the spool directory at start. */
export interface SpooledFile {
  name: string;
  ordinal: number;
  seq: number;
  incarnation: string;
  records: number;
  bytes: number;
}

function spoolError(message: string, cause?: unknown): AgentError {
  return new AgentError(AgentErrorCode.SPOOL_IO, message, { cause });
}

export class Spool {
  /** Bytes and files on disk (including writes under way). */
  bytes = 0;
  files = 0;
  private nextOrdinal = 1;

  private constructor(
    readonly dir: string,
    /** --spool-max-bytes: the when-full policy applies beyond it. */
    readonly maxBytes: number,
    private readonly log: Logger,
    private readonly fsync: boolean,
  ) {}

  /**
   * Creates the directory if needed, removes .tmp leftovers, and lists the batch files a
   * previous process left, oldest first.
   */
  static async open(
    dir: string,
    maxBytes: number,
    log: Logger,
    opts: { fsync?: boolean } = {},
  ): Promise<{ spool: Spool; leftovers: SpooledFile[] }> {
    const spool = new Spool(dir, maxBytes, log, opts.fsync === true);
    let names: string[];
    try {
      await mkdirp(dir); // not fs.mkdir's recursive mode: it spins forever on /proc paths
      await fs.access(dir, fs.constants.W_OK);
      names = await fs.readdir(dir);
    } catch (err) {
      throw spoolError(`spool directory ${dir} is not usable: ${(err as Error).message}`, err);
    }
    const leftovers: SpooledFile[] = [];
    for (const name of names) {
      if (name.endsWith(TMP_SUFFIX)) {
        await fs.rm(path.join(dir, name), { force: true });
        continue;
      }
      const m = NAME.exec(name);
      if (m === null) continue;
      const st = await fs.stat(path.join(dir, name)).catch(() => null);
      if (st === null || !st.isFile()) continue;
      leftovers.push({
        name,
        ordinal: Number(m[1]),
        seq: Number(m[2]),
        records: Number(m[3]),
        incarnation: m[4]!,
        bytes: st.size,
      });
    }
    leftovers.sort((a, b) => a.ordinal - b.ordinal);
    for (const f of leftovers) {
      spool.bytes += f.bytes;
      spool.files++;
    }
    if (leftovers.length > 0) spool.nextOrdinal = leftovers[leftovers.length - 1]!.ordinal + 1;
    return { spool, leftovers };
  }

  /** A file name for the next batch in FIFO order. */
  nameFor(seq: number, incarnation: string, records: number): string {
    return `${String(this.nextOrdinal++).padStart(12, '0')}-${seq}-${records}-${incarnation}.batch`;
  }

  /** Writes a batch frame (space is reserved at once, released if the write fails). */
  async write(name: string, frame: Buffer): Promise<void> {
    this.bytes += frame.length;
    this.files++;
    const final = path.join(this.dir, name);
    const tmp = final + TMP_SUFFIX;
    try {
      if (this.fsync) {
        const fh = await fs.open(tmp, 'w');
        try {
          await fh.writeFile(frame);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, final);
        // The rename is only durable once the directory is synced too.
        const dh = await fs.open(this.dir, 'r');
        try {
          await dh.sync();
        } finally {
          await dh.close();
        }
      } else {
        await fs.writeFile(tmp, frame);
        await fs.rename(tmp, final);
      }
    } catch (err) {
      this.bytes -= frame.length;
      this.files--;
      await fs.rm(tmp, { force: true }).catch(() => {});
      throw spoolError(`cannot write spool file ${final}: ${(err as Error).message}`, err);
    }
  }

  /**
   * Reads a batch file back and checks it is the whole frame of the batch its name says
   * (a file cut short or edited by hand is refused rather than sent under wrong ids).
   */
  async read(name: string, seq: number, incarnation: string): Promise<Buffer> {
    const file = path.join(this.dir, name);
    let frame: Buffer;
    try {
      frame = await fs.readFile(file);
    } catch (err) {
      throw spoolError(`cannot read spool file ${file}: ${(err as Error).message}`, err);
    }
    const ok =
      frame.length >= 6 &&
      frame.readUInt32BE(0) === frame.length - 4 &&
      frame[4] === MessageType.BATCH &&
      (() => {
        try {
          const v = new BatchView().parse(frame, 5, frame.length);
          return v.seq === seq && v.incarnation === incarnation;
        } catch {
          return false;
        }
      })();
    if (!ok) throw spoolError(`spool file ${file} is not a complete Batch with seq ${seq} of ${incarnation}`);
    return frame;
  }

  /** Deletes a batch file (acknowledged, or discarded by the when-full policy). */
  remove(name: string, bytes: number): void {
    this.bytes -= bytes;
    this.files--;
    fs.rm(path.join(this.dir, name), { force: true }).catch((err) =>
      this.log.error({ err, file: name }, 'cannot delete spool file'),
    );
  }
}
