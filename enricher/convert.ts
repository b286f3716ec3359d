// `snowtap convert`: Frame Streams capture files -> the same CSV chunks an enricher writes.
// Used for backfills and replays of history. Each file gets a stable source id (a hash of
// its size and first MiB), so converting the same capture twice yields the same record_ids.
//
// Memory is bounded, whatever the input size: the file is read one block at a time and the
// next block is read only once the writer is below its high-water mark (RowSink contract), so
// queued CSV stays bounded (see CONVERT_READ_BLOCK_BYTES), and peak RSS with it: about
// 70 MiB on Node 20 and 85 MiB on Node 24 with the default options, for 27 MB and 262 MB
// captures alike; test/unit/convert-memory.test.ts holds it under 128 MiB. Compressed, zlib's
// per-block output buffers are garbage that V8 collects late: up to its 64 MiB external
// memory headroom more (measured 90-112 MiB; the test holds 160 MiB).
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from '../common/log';
import { ProgressBar } from '../common/progress';
import { FramestreamError, readFrameStreamFile } from '../proto/framestream/index';
import type { AggregatesConfig } from './aggregates/options';
import type * as AggregatesServiceModule from './aggregates/service';
import type { AggregateService } from './aggregates/service';
import {
  type ChunkWriterOptions,
  type CommitInfo,
  checkChunkWriterOptions,
  createOutputWriter,
  type PartitionOptions,
} from './output/index';
import { RecordPipeline, type RowOptions } from './pipeline/pipeline';
import { RowSource } from './pipeline/row-encoder';
import type { Policy } from './policy/index';

/**
 * Capture bytes read (and decoded) between two looks at the writer's backpressure. CSV queued
 * for disk therefore stays below the writer's high-water mark (8 blocks: 4 MiB by default)
 * plus the rows of one read block (~1.6 MiB for typical 130-byte dnstap frames).
 */
export const CONVERT_READ_BLOCK_BYTES = 1024 * 1024;

export interface ConvertOptions {
  files: string[];
  output: Omit<ChunkWriterOptions, 'onCommit'>;
  /** --partition-by tenant, --max-open-tenants, --tenant-chunk-rate. */
  partition?: PartitionOptions;
  policy: Policy | null;
  /** Privacy and column selection (--mask-client-*, --drop-ecs, --columns). */
  rows?: RowOptions;
  /** Hourly aggregates (--aggregates hourly, --rows off); written when the run ends. */
  aggregates?: AggregatesConfig | null;
  maxDataFrameSize?: number;
  log: Logger;
  /** Told about every committed chunk (sizes: benchmarks). */
  onCommit?: (info: CommitInfo) => void;
  /** Draw a progress bar on this stream when it is a TTY. */
  progress?: NodeJS.WriteStream;
}

export interface ConvertSummary {
  files: number;
  failedFiles: number;
  frames: number;
  rows: number;
  chunks: number;
  dropped: number;
  dnsErrors: number;
  oversize: number;
  bytes: number;
  seconds: number;
  chunkPaths: string[];
  aggregateFiles: number;
  aggregatePaths: string[];
}

/** Stable id for a capture file: converting the same bytes again gives the same record_ids. */
export async function fileSourceId(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(size, 1 << 20));
    await fh.read(head, 0, head.length, 0);
    const h = createHash('sha256').update(String(size)).update(head).digest('hex');
    return `file-${h.slice(0, 16)}`;
  } finally {
    await fh.close();
  }
}

export async function convertFiles(opts: ConvertOptions): Promise<ConvertSummary> {
  const started = process.hrtime.bigint();
  const chunkPaths: string[] = [];
  const writer = createOutputWriter(
    {
      ...opts.output,
      onCommit: (info) => {
        chunkPaths.push(info.path);
        opts.onCommit?.(info);
      },
    },
    opts.partition,
  );
  const agg = opts.aggregates ?? null;
  const pipeline = new RecordPipeline(
    agg?.rows === false ? null : writer,
    opts.output.enricherId,
    () => opts.policy,
    opts.rows,
  );
  let aggregates: AggregateService | null = null;
  if (agg !== null) {
    // No journal: a convert that dies is run again (the rows' ids are stable; aggregates are
    // written only at the end, so a failed run leaves none).
    // Loaded only when asked for: a plain convert skips its modules (and the link codec).
    const { AggregateService, maskedNetworkText } =
      require('./aggregates/service') as typeof AggregatesServiceModule;
    const out = checkChunkWriterOptions(opts.output);
    aggregates = new AggregateService({
      outputDir: out.outputDir,
      enricherId: out.enricherId,
      key: agg.key,
      graceMs: agg.graceMs,
      compression: out.compression,
      gzipLevel: out.gzipLevel,
      zstdLevel: out.zstdLevel,
      journal: false,
      log: opts.log,
      networkText: maskedNetworkText(opts.rows),
    });
    pipeline.observer = aggregates.aggregator;
  }
  let totalBytes = 0;
  for (const f of opts.files) totalBytes += (await stat(f)).size;
  const bar = new ProgressBar(totalBytes, opts.progress ?? process.stderr, 'convert ');
  const summary: ConvertSummary = {
    files: opts.files.length,
    failedFiles: 0,
    frames: 0,
    rows: 0,
    chunks: 0,
    dropped: 0,
    dnsErrors: 0,
    oversize: 0,
    bytes: 0,
    seconds: 0,
    chunkPaths,
    aggregateFiles: 0,
    aggregatePaths: [],
  };
  let doneBytes = 0;
  const ageTimer = setInterval(() => writer.tick(), 1000);
  try {
    for (const file of opts.files) {
      const source = new RowSource(await fileSourceId(file), '');
      let index = 0;
      try {
        const res = await readFrameStreamFile(
          file,
          (buf, start, end) => {
            pipeline.process(buf, start, end, source, 0, index++);
          },
          {
            maxDataFrameSize: opts.maxDataFrameSize,
            blockSize: CONVERT_READ_BLOCK_BYTES,
            onProgress: (bytes) => {
              bar.update(doneBytes + bytes, pipeline.counters.rows);
              // The reader awaits this before its next block: honour the writer's backpressure.
              return writer.full ? writer.whenDrained() : undefined;
            },
          },
        );
        summary.oversize += res.oversize;
        doneBytes += res.bytes;
      } catch (err) {
        summary.failedFiles++;
        const reason = err instanceof FramestreamError ? `${err.code}: ${err.message}` : String(err);
        opts.log.error(
          { file, frames: index, err: reason },
          `${basename(file)}: ${reason}; kept the ${index} frames before the problem`,
        );
        doneBytes += (await stat(file)).size;
      }
    }
    await writer.close();
    if (aggregates !== null) {
      await aggregates.close();
      summary.aggregatePaths = aggregates.published;
      summary.aggregateFiles = aggregates.published.length;
    }
  } finally {
    clearInterval(ageTimer);
    bar.finish();
  }
  const c = pipeline.counters;
  summary.frames = c.frames;
  summary.rows = c.rows;
  summary.chunks = chunkPaths.length;
  summary.dropped = c.frames - c.rows - c.aggregatedOnly;
  for (const n of c.dnsErrors.values()) summary.dnsErrors += n;
  summary.bytes = doneBytes;
  summary.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return summary;
}
