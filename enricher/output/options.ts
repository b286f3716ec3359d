// Options of the ChunkWriter: defaults in one place, validation that names the field.
import * as path from 'node:path';
import { checkInt } from '../../proto/kit/index';
import type { CommitInfo } from './chunk-sink';
import { COMPRESSIONS, type Compression, zstdAvailable, zstdUnavailableError } from './compression';
import { HEADER_BYTES } from './csv';
import { OutputError } from './errors';
import { enricherIdProblem } from './layout';
import { type OutputUrl, parseOutputUrl } from './object-url';

export interface ChunkWriterOptions {
  /** Local directory: the output (the mount), or with an s3:// outputUrl the durable local log. */
  outputDir: string;
  /** az://CONTAINER/PREFIX or s3://BUCKET/PREFIX: write objects natively (object-url.ts). */
  outputUrl?: string;
  /**
   * A peer's heartbeat this old makes its chunks recoverable by others (az://); a writer that
   * could not refresh its own for half of it stops writing (fence).
   */
  staleAfterMs?: number;
  /**
   * Blocks sealed for acknowledgements (flush()) at least this many ms apart: fewer Put Block
   * transactions, longer acks. Default AZ_ACK_INTERVAL_MS for az://, 0 otherwise.
   */
  ackIntervalMs?: number;
  /** Pod name; part of every file name and of the partial directory. */
  enricherId: string;
  maxRows?: number;
  /** Uncompressed bytes per chunk, header included. A single larger row still gets a chunk. */
  maxBytes?: number;
  maxAgeMs?: number;
  /** none (default, every runtime), gzip (.csv.gz) or zstd (.csv.zst, Node >= 22.15). */
  compression?: Compression;
  /** Alias of compression 'gzip' (true) or 'none' (false); may not contradict `compression`. */
  gzip?: boolean;
  /** zlib level 1-9. */
  gzipLevel?: number;
  /** zstd level 1-19. */
  zstdLevel?: number;
  /** Blocks compressed at once on the libuv threadpool (gzip and zstd). */
  gzipConcurrency?: number;
  /** Write unit; when compressed also the size of one gzip member or zstd frame. */
  blockBytes?: number;
  /** Clock in ms (tests inject one). */
  now?: () => number;
  onCommit?: (info: CommitInfo) => void;
  /** Header row written first in every chunk (default: every column; --columns selects). */
  header?: Buffer;
}

export const CHUNK_DEFAULTS = {
  maxRows: 1_000_000,
  maxBytes: 256 * 1024 * 1024,
  maxAgeMs: 60_000,
  compression: 'none' as Compression,
  // Level 1 keeps up with ~1M rows/s on one spare core; higher levels gain little on CSV logs.
  gzipLevel: 1,
  // zstd's own default level: faster than gzip level 1 and smaller (README, performance).
  zstdLevel: 3,
  gzipConcurrency: 2,
  blockBytes: 512 * 1024,
} as const;

const MIN_BLOCK_BYTES = 1024;
const MAX_BLOCK_BYTES = 64 * 1024 * 1024;

export type ResolvedOptions = Required<
  Omit<ChunkWriterOptions, 'onCommit' | 'gzip' | 'outputUrl' | 'staleAfterMs' | 'ackIntervalMs'>
> &
  Pick<ChunkWriterOptions, 'onCommit'> & {
    url: OutputUrl | null;
    staleAfterMs: number;
    ackIntervalMs: number;
  };

/** az:// default of ackIntervalMs: at most 4 ack-driven Put Blocks a second per enricher. */
export const AZ_ACK_INTERVAL_MS = 250;
export const MAX_ACK_INTERVAL_MS = 10_000;

/** Recovery's threshold for a dead peer's heartbeat (recovery.ts re-exports it). */
export const DEFAULT_STALE_AFTER_MS = 60_000;

const KNOWN_KEYS = new Set<string>([
  ...Object.keys(CHUNK_DEFAULTS),
  'gzip',
  'outputDir',
  'outputUrl',
  'staleAfterMs',
  'ackIntervalMs',
  'enricherId',
  'now',
  'onCommit',
  'header',
]);

function invalid(field: string, why: string): OutputError {
  return invalidOption(`chunk writer option ${field} ${why}`);
}

const invalidOption = (message: string) => new OutputError('OUTPUT_INVALID_OPTION', message);

function intOption(
  o: ChunkWriterOptions,
  key: 'maxRows' | 'maxBytes' | 'maxAgeMs' | 'gzipLevel' | 'zstdLevel' | 'gzipConcurrency' | 'blockBytes',
  min: number,
  max: number,
): number {
  return checkInt(`chunk writer option ${key}`, o[key] ?? CHUNK_DEFAULTS[key], min, max, invalidOption);
}

export function resolveOptions(o: ChunkWriterOptions): ResolvedOptions {
  for (const key of Object.keys(o)) if (!KNOWN_KEYS.has(key)) throw invalid(key, 'is unknown');
  if (typeof o.outputDir !== 'string' || o.outputDir === '') throw invalid('outputDir', 'is required');
  const compression = compressionOf(o);
  const idProblem = enricherIdProblem(String(o.enricherId ?? ''));
  if (idProblem !== null) throw invalid('enricherId', idProblem);
  let url: OutputUrl | null = null;
  if (o.outputUrl !== undefined && o.outputUrl !== '') url = parseOutputUrl(String(o.outputUrl));
  const staleAfterMs = o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  if (!Number.isInteger(staleAfterMs) || staleAfterMs < 1000) {
    throw invalid('staleAfterMs', `must be an integer >= 1000, got ${String(staleAfterMs)}`);
  }
  const ackIntervalMs = o.ackIntervalMs ?? (url?.scheme === 'az' ? AZ_ACK_INTERVAL_MS : 0);
  if (!Number.isInteger(ackIntervalMs) || ackIntervalMs < 0 || ackIntervalMs > MAX_ACK_INTERVAL_MS) {
    throw invalid(
      'ackIntervalMs',
      `must be an integer in [0, ${MAX_ACK_INTERVAL_MS}], got ${String(ackIntervalMs)}`,
    );
  }
  return {
    url,
    staleAfterMs,
    ackIntervalMs,
    outputDir: path.resolve(o.outputDir),
    enricherId: o.enricherId,
    maxRows: intOption(o, 'maxRows', 1, Number.MAX_SAFE_INTEGER),
    maxBytes: intOption(o, 'maxBytes', 1, Number.MAX_SAFE_INTEGER),
    maxAgeMs: intOption(o, 'maxAgeMs', 1, Number.MAX_SAFE_INTEGER),
    compression,
    gzipLevel: intOption(o, 'gzipLevel', 1, 9),
    zstdLevel: intOption(o, 'zstdLevel', 1, 19),
    gzipConcurrency: intOption(o, 'gzipConcurrency', 1, 64),
    blockBytes: intOption(o, 'blockBytes', MIN_BLOCK_BYTES, MAX_BLOCK_BYTES),
    now: o.now ?? Date.now,
    header: o.header ?? HEADER_BYTES,
    onCommit: o.onCommit,
  };
}

/** `compression`, or what the `gzip` alias says; zstd only where the runtime has it. */
function compressionOf(o: ChunkWriterOptions): Compression {
  if (o.gzip !== undefined && typeof o.gzip !== 'boolean') throw invalid('gzip', 'must be a boolean');
  const c = o.compression;
  if (c !== undefined && !COMPRESSIONS.includes(c)) {
    throw invalid('compression', `must be one of ${COMPRESSIONS.join('|')}, got ${String(c)}`);
  }
  const alias: Compression | undefined = o.gzip === undefined ? undefined : o.gzip ? 'gzip' : 'none';
  if (c !== undefined && alias !== undefined && c !== alias) {
    throw invalid('gzip', `(${o.gzip}) contradicts compression ${c}: give one of them`);
  }
  const resolved = c ?? alias ?? CHUNK_DEFAULTS.compression;
  if (resolved === 'zstd' && !zstdAvailable()) throw zstdUnavailableError();
  return resolved;
}
