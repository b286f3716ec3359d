// AggregateService: hourly aggregates as a second output of one enricher (or convert run).
// Owns the Aggregator, the journal (link input only: what acks wait for) and the aggregate
// files. Emits an hour once it has closed plus the grace (--aggregates-grace), and every open
// hour on close() (drain, shutdown, end of a convert).
//
// Files: <outputDir>/aggregates/YYYY/MM/DD/HH/snowtap_agg-<enricher_id>-<epoch>-<YYYYMMDDTHH>.csv[.gz|.zst]
// (one per emitted hour; `epoch` names the journal segment, see journal.ts), written to
// _partial/<enricher_id>/ and renamed into place once synced. The name never starts with
// `snowtap-`, so the rows pipe never loads it (sql/schema/06-aggregates.sql has its own pipe).

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Logger } from '../../common/log';
import { BatchView } from '../../proto/link/index';
import {
  COMPRESSION_SUFFIX,
  type Compression,
  zstdAvailable,
  zstdUnavailableError,
} from '../output/compression';
import { enricherIdProblem, hourDirOf, lastSignOfLife, PARTIAL_DIR } from '../output/layout';
import { DEFAULT_STALE_AFTER_MS } from '../output/recovery';
import type { DurableRowSink, RecordPipeline } from '../pipeline/pipeline';
import { maskedCidrText } from '../policy/cidr';
import type { LinkBatch } from '../server/options';
import { RowSources } from '../server/row-sources';
import { type AggregateRow, Aggregator, type GroupState, HOUR_MS, stateOf } from './aggregator';
import { aggregateCsv } from './csv';
import { KeyedClientHash } from './hll';
import {
  batchEntry,
  entry,
  fsyncDirSync,
  JOURNAL_FILE,
  Journal,
  type JournalBatch,
  KIND_EMITTING,
  KIND_SNAPSHOT,
  readJournal,
} from './journal';

export const AGGREGATES_DIR = 'aggregates';
export const AGG_FILE_PREFIX = 'snowtap_agg-';
/** How often open hours are checked for closing. */
export const AGGREGATES_TICK_MS = 5_000;
/** Journals of dead peers moved into our directory (claimOrphans). */
export const ADOPTED_PREFIX = 'adopted-';

interface PendingFile {
  tmp: string;
  final: string;
  rows: number;
}

/**
 * The network column's text under the row options' client masks: a policy network more precise
 * than the mask is written at the mask's length (policy/cidr.ts maskedCidrText); undefined when
 * nothing is masked.
 */
export function maskedNetworkText(
  rows: { maskClientIpv4?: number; maskClientIpv6?: number } | undefined,
): ((cidr: string) => string) | undefined {
  const v4 = rows?.maskClientIpv4 ?? 32;
  const v6 = rows?.maskClientIpv6 ?? 128;
  if (v4 >= 32 && v6 >= 128) return undefined;
  return (cidr) => maskedCidrText(cidr, v4, v6);
}

export interface AggregateServiceOptions {
  outputDir: string;
  enricherId: string;
  key: Buffer;
  graceMs: number;
  compression?: Compression;
  gzipLevel?: number;
  zstdLevel?: number;
  /** Journal acknowledged batches (the link input); false for convert. */
  journal: boolean;
  now?: () => number;
  log?: Logger;
  /** Told about every published file. */
  onPublish?: (file: string, rows: number) => void;
  /** The network column's text for a policy CIDR (default: as in the policy). */
  networkText?: (cidr: string) => string;
}

export interface AggregateStats {
  emissions: number;
  filesPublished: number;
  rowsPublished: number;
  replayedBatches: number;
  adoptedJournals: number;
  tornBytes: number;
  journalSyncs: number;
  overflowRecords: number;
}

/** A 2-hex-digit-per-byte random id. */
function newEpoch(): string {
  return randomBytes(6).toString('hex');
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function hourStamp(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}`;
}

export function aggregateFileName(enricherId: string, epoch: string, hourMs: number, c: Compression): string {
  return `${AGG_FILE_PREFIX}${enricherId}-${epoch}-${hourStamp(hourMs)}.csv${COMPRESSION_SUFFIX[c]}`;
}

export class AggregateService {
  readonly aggregator: Aggregator;
  readonly stats: AggregateStats = {
    emissions: 0,
    filesPublished: 0,
    rowsPublished: 0,
    replayedBatches: 0,
    adoptedJournals: 0,
    tornBytes: 0,
    journalSyncs: 0,
    overflowRecords: 0,
  };
  readonly published: string[] = [];
  private epoch = newEpoch();
  private journal: Journal | null = null;
  private readonly partialDir: string;
  private readonly now: () => number;
  private readonly compression: Compression;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Adopted journals merged into the state: listed in the next snapshot, deleted after it. */
  private readonly adopting: string[] = [];

  constructor(private readonly o: AggregateServiceOptions) {
    this.now = o.now ?? Date.now;
    this.aggregator = new Aggregator(new KeyedClientHash(o.key), this.now, o.networkText);
    this.partialDir = path.join(o.outputDir, PARTIAL_DIR, o.enricherId);
    this.compression = o.compression ?? 'none';
    if (this.compression === 'zstd' && !zstdAvailable()) throw zstdUnavailableError();
  }

  get journalFile(): string {
    return path.join(this.partialDir, JOURNAL_FILE);
  }

  /**
   * Opens the journal: replays a predecessor's (snapshot, then its batches through `replay`),
   * publishes again what it was publishing when it died, merges the journals of dead peers
   * (adopt()), publishes the hours closed since, and starts a fresh segment. `replay` feeds a
   * journaled batch's records to `into`.
   */
  async open(
    replay: (b: JournalBatch, into: Aggregator) => void,
    staleAfterMs = DEFAULT_STALE_AFTER_MS,
  ): Promise<void> {
    if (!this.o.journal) return;
    fs.mkdirSync(this.partialDir, { recursive: true });
    const old = readJournal(this.journalFile);
    let merged: string[] = [];
    if (old !== null) {
      if (old.snapshot !== null) {
        this.epoch = old.snapshot.epoch;
        this.aggregator.restore(old.snapshot.state as Record<string, GroupState[]>);
        merged = (old.snapshot as { adopted?: string[] }).adopted ?? [];
      }
      for (const b of old.batches) {
        this.aggregator.batchResent = b.resent;
        replay(b, this.aggregator);
        this.stats.replayedBatches++;
      }
      this.aggregator.batchResent = false;
      this.stats.tornBytes = old.tornBytes;
      this.o.log?.info(
        { batches: old.batches.length, emitting: old.emitting, tornBytes: old.tornBytes, epoch: this.epoch },
        'aggregates journal replayed',
      );
    }
    // Same epoch as the predecessor: files it may have published come out with the same names and ids.
    const rows = old?.emitting ? this.aggregator.takeHours(old.emitting) : [];
    await this.claimOrphans(staleAfterMs);
    this.adopt(replay, new Set(merged));
    rows.push(...this.aggregator.takeClosed(this.now(), this.o.graceMs));
    this.journal = new Journal(this.journalFile);
    // Compacted even with nothing to publish: the replayed state moves into a fresh segment.
    this.emitSync(rows, true);
    for (const name of this.adopting.splice(0)) fs.rmSync(path.join(this.partialDir, name), { force: true });
    this.timer = setInterval(() => void this.tick(), AGGREGATES_TICK_MS);
    this.timer.unref();
  }

  /**
   * Moves the journal of every peer whose _partial/<id>/ shows no sign of life for
   * staleAfterMs (the rule partial chunks are recovered by) into our directory as
   * adopted-<id>.<random>.journal. A Deployment's replacement pod has a new name, so without
   * this the acknowledged counts of a killed pod would wait for an id that never returns. The
   * rename is atomic: of two pods claiming one journal, one gets it.
   */
  private async claimOrphans(staleAfterMs: number): Promise<void> {
    const root = path.dirname(this.partialDir);
    let names: string[];
    try {
      names = fs.readdirSync(root);
    } catch {
      return;
    }
    for (const peer of names) {
      if (peer === this.o.enricherId || enricherIdProblem(peer) !== null) continue;
      const file = path.join(root, peer, JOURNAL_FILE);
      if (!fs.existsSync(file)) continue;
      if (this.now() - (await lastSignOfLife(path.join(root, peer))) < staleAfterMs) continue;
      const to = path.join(
        this.partialDir,
        `${ADOPTED_PREFIX}${peer}.${randomBytes(4).toString('hex')}.journal`,
      );
      try {
        fs.renameSync(file, to);
        this.o.log?.info({ peer, file: to }, 'aggregates: adopted the journal of a dead peer');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // a peer got it first
      }
    }
    fsyncDirSync(this.partialDir);
  }

  /**
   * Merges every adopted journal in our directory into this.aggregator (its EMITTING hours
   * published again under the dead peer's id and epoch first, so the view keeps one copy).
   * Adopted files already merged into our snapshot (`merged`) are only deleted. The merged
   * ones are listed in the next snapshot and deleted after it.
   */
  private adopt(replay: (b: JournalBatch, into: Aggregator) => void, merged: ReadonlySet<string>): void {
    const names = fs
      .readdirSync(this.partialDir)
      .filter((n) => n.startsWith(ADOPTED_PREFIX))
      .sort();
    for (const name of names) {
      const file = path.join(this.partialDir, name);
      if (merged.has(name)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const j = readJournal(file);
      if (j === null) continue;
      const peer = name.slice(ADOPTED_PREFIX.length).replace(/\.[0-9a-f]+\.journal$/, '');
      const temp = new Aggregator(new KeyedClientHash(this.o.key), this.now, this.o.networkText);
      if (j.snapshot !== null) temp.restore(j.snapshot.state as Record<string, GroupState[]>);
      for (const b of j.batches) {
        temp.batchResent = b.resent;
        replay(b, temp);
        this.stats.replayedBatches++;
      }
      if (j.emitting !== null && j.snapshot !== null) {
        this.publish(this.writeFiles(temp.takeHours(j.emitting), peer, j.snapshot.epoch));
      }
      this.aggregator.restore(temp.snapshot());
      this.adopting.push(name);
      this.stats.adoptedJournals++;
    }
  }

  /** The link's onBatch: the re-send mark, and the batch into the journal. */
  onBatch(b: LinkBatch): void {
    const resent = !b.marksResends || b.view.resent;
    this.aggregator.batchResent = resent;
    const inc = b.view.incarnationEnd !== b.view.incarnationStart ? b.view.incarnation : b.incarnation;
    this.journal?.append(batchEntry(resent, b.agentId, inc, b.buf, b.start, b.end));
  }

  /** Resolves once every batch given to onBatch before the call is durable in the journal. */
  flush(): Promise<void> {
    return this.journal === null ? Promise.resolve() : this.journal.flush();
  }

  /** Publishes the hours closed by now (plus the grace). */
  tick(): Promise<void> {
    this.stats.overflowRecords = this.aggregator.overflowRecords;
    const due = this.now() - HOUR_MS - this.o.graceMs;
    // Pausing the journal costs the acks a little latency: only when an hour is due.
    if (!this.aggregator.openHours.some((h) => h <= due)) return this.chain;
    return this.serial(() => this.aggregator.takeClosed(this.now(), this.o.graceMs));
  }

  /** Publishes every open hour and closes the journal (drain, shutdown, end of convert). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.serial(() => this.aggregator.takeAll());
    if (this.journal !== null) {
      this.journal.close();
      // Everything is published and nothing is open: no journal for a restart or a peer to replay.
      fs.rmSync(this.journalFile, { force: true });
      fsyncDirSync(this.partialDir);
    }
    this.journal = null;
  }

  /** Stops without publishing (output failure): the journal keeps everything for the next open(). */
  abandon(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.journal?.close();
    this.journal = null;
  }

  private serial(take: () => AggregateRow[]): Promise<void> {
    const run = async () => {
      await this.journal?.pause();
      try {
        const rows = take();
        if (rows.length > 0) this.emitSync(rows);
      } finally {
        this.journal?.resume();
      }
    };
    this.chain = this.chain.then(run, run);
    return this.chain;
  }

  /** Writes and syncs one file per hour of `rows` in _partial/<our id>/; publish() renames them into place. */
  private writeFiles(rows: readonly AggregateRow[], enricherId: string, epoch: string): PendingFile[] {
    const byHour = new Map<number, AggregateRow[]>();
    for (const r of rows) {
      const list = byHour.get(r.hourStartMs) ?? [];
      list.push(r);
      byHour.set(r.hourStartMs, list);
    }
    fs.mkdirSync(this.partialDir, { recursive: true });
    const files: PendingFile[] = [];
    const emissionId = `${enricherId}-${epoch}`;
    for (const [h, list] of byHour) {
      const name = aggregateFileName(enricherId, epoch, h, this.compression);
      const csv = Buffer.from(aggregateCsv(list, emissionId, enricherId, this.aggregator.keyId), 'utf8');
      const tmp = path.join(this.partialDir, `${name}.agg-tmp`);
      writeSynced(tmp, this.compress(csv));
      files.push({
        tmp,
        final: path.join(this.o.outputDir, AGGREGATES_DIR, hourDirOf(h), name),
        rows: list.length,
      });
    }
    return files;
  }

  private publish(files: readonly PendingFile[]): void {
    for (const f of files) {
      fs.mkdirSync(path.dirname(f.final), { recursive: true });
      fs.renameSync(f.tmp, f.final);
      fsyncDirSync(path.dirname(f.final));
      this.published.push(f.final);
      this.stats.filesPublished++;
      this.stats.rowsPublished += f.rows;
      this.o.onPublish?.(f.final, f.rows);
    }
  }

  /** Writes, syncs and publishes one file per hour in `rows`, compacting the journal (journal.ts). */
  private emitSync(rows: AggregateRow[], compact = false): void {
    this.stats.overflowRecords = this.aggregator.overflowRecords;
    if (rows.length === 0 && !compact) return;
    const hours = [...new Set(rows.map((r) => r.hourStartMs))];
    const j = this.journal;
    try {
      if (j !== null && hours.length > 0)
        j.appendSync(entry(KIND_EMITTING, Buffer.from(JSON.stringify({ hours }))));
      const files = this.writeFiles(rows, this.o.enricherId, this.epoch);
      const next = newEpoch();
      if (j !== null) {
        const snap = { epoch: next, state: this.aggregator.snapshot(), adopted: this.adopting };
        j.compactSync(entry(KIND_SNAPSHOT, Buffer.from(JSON.stringify(snap))), () => this.publish(files));
        this.stats.journalSyncs = j.syncs;
      } else this.publish(files);
      this.epoch = next;
      if (rows.length === 0) return;
      this.stats.emissions++;
      this.o.log?.info(
        { hours: hours.map((h) => new Date(h).toISOString()), rows: rows.length },
        'aggregates published',
      );
    } catch (err) {
      // Keep the counts: they go out with the next emission (the journal still has them too).
      this.aggregator.restore(stateOf(rows));
      this.o.log?.error(
        { err: (err as Error).message },
        'aggregates: publishing failed; kept for the next try',
      );
      throw err;
    }
  }

  private compress(csv: Buffer): Buffer {
    switch (this.compression) {
      case 'none':
        return csv;
      case 'gzip':
        return zlib.gzipSync(csv, { level: this.o.gzipLevel ?? 1 });
      case 'zstd': {
        const z = zlib as unknown as {
          zstdCompressSync: (b: Buffer, o: object) => Buffer;
          constants: Record<string, number>;
        };
        const k = z.constants;
        return z.zstdCompressSync(csv, {
          params: { [k.ZSTD_c_compressionLevel!]: this.o.zstdLevel ?? 3, [k.ZSTD_c_checksumFlag!]: 1 },
        });
      }
    }
  }
}

function writeSynced(file: string, data: Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What the link waits on before an ack: the rows (the writer, which may take no rows with
 * --rows off) and the aggregates journal. Backpressure is the writer's.
 */
export class AckGate implements DurableRowSink {
  constructor(
    private readonly rows: DurableRowSink,
    private readonly aggregates: AggregateService,
  ) {}

  get rowTarget(): Buffer {
    return this.rows.rowTarget;
  }

  beginRow(room: number): number {
    return this.rows.beginRow(room);
  }

  endRow(end: number): boolean {
    return this.rows.endRow(end);
  }

  get full(): boolean {
    return this.rows.full;
  }

  whenDrained(): Promise<void> {
    return this.rows.whenDrained();
  }

  flush(): Promise<void> {
    return Promise.all([this.rows.flush(), this.aggregates.flush()]).then(() => undefined);
  }
}

const replayView = new BatchView();

/** Feeds a journaled batch's records through `pipeline` (one that writes no rows). */
export function replayInto(pipeline: RecordPipeline, b: JournalBatch): void {
  const view = replayView.parse(b.body, 0, b.body.length);
  const src = new RowSources(b.agentId, b.incarnation).of(view);
  while (view.nextRecord())
    pipeline.process(view.buf, view.recordStart, view.recordEnd, src, view.seq, view.recordIndex);
}
