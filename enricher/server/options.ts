// Options of the link server: defaults in one place, validation that names the field.
// Timing defaults follow LINK.md (handshake 10 s, keepalive 15 s, window 32 batches).

import type { Logger } from '../../common/log';
import { CodedError, checkInt } from '../../proto/kit/index';
import type { BatchView } from '../../proto/link/index';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_IN_FLIGHT_BATCHES,
  MAX_CONTROL_BODY,
  MAX_LINK_FRAME,
} from '../../proto/link/index';
import type { DurableRowSink } from '../pipeline/pipeline';
import type { RowSource } from '../pipeline/row-encoder';
import type { OverloadOptions } from './overload';

/** What a connection feeds each record to: RecordPipeline.process. */
export interface RecordProcessor {
  process(buf: Buffer, start: number, end: number, src: RowSource, seq: number, index: number): boolean;
}

export interface LinkTlsOptions {
  cert: Buffer;
  key: Buffer;
  /** When set, clients must present a certificate signed by it (mTLS). */
  ca?: Buffer;
}

export interface LinkServerOptions {
  host: string;
  /** 0 picks a free port (see listen()'s result). */
  port: number;
  enricherId: string;
  pipeline: RecordProcessor;
  /** The pipeline's sink (the ChunkWriter): backpressure (`full`, whenDrained) and flush() for acks. */
  output: DurableRowSink;
  log: Logger;
  /** Shared secret every Hello must carry; null/empty = none required. */
  authToken?: Buffer | string | null;
  tls?: LinkTlsOptions | null;
  /** Agents past their handshake; more are Rejected TOO_MANY_CONNECTIONS. */
  maxConnections?: number;
  /**
   * Connections still in their TLS or Hello handshake. A budget of their own, so idle or
   * slowloris sockets never take an agent's slot: beyond it the oldest handshake is cut.
   */
  maxHandshaking?: number;
  handshakeTimeoutMs?: number;
  /** Advertised in Welcome; 0 disables keepalive. */
  keepaliveIntervalMs?: number;
  maxInFlightBatches?: number;
  /** Largest frame length N accepted (advertised in Welcome). */
  maxFrameBytes?: number;
  /** Received but unacknowledged batch bytes above which a connection stops being read. */
  maxUnackedBytes?: number;
  /** Called once per acknowledged batch with the time from its arrival to its Ack. */
  onAckLatency?: (seconds: number) => void;
  /**
   * Called with every valid Batch before its records go through the pipeline (hourly
   * aggregates: the re-send mark, the journal). `view` is parsed; buf[start, end) is its body.
   */
  onBatch?: (batch: LinkBatch) => void;
  /** Drain on overload (overload.ts); defaults OVERLOAD_DEFAULTS. */
  overload?: Partial<OverloadOptions>;
  /**
   * The event loop's utilisation since the previous call (0..1); default node:perf_hooks ELU.
   * Tests replace it to make one enricher of several in one process look saturated.
   */
  utilisation?: () => number;
}

/** A received Batch as onBatch sees it; valid only during the call. */
export interface LinkBatch {
  agentId: string;
  /** The Hello's incarnation (the Batch's own, when set, is in `view`). */
  incarnation: string;
  /** The agent's Hello said it marks re-sends (Batch.resent); false = an older agent: unknown. */
  marksResends: boolean;
  view: BatchView;
  buf: Buffer;
  start: number;
  end: number;
}

export const LINK_SERVER_DEFAULTS = {
  maxConnections: 1000,
  // An agent's Hello arrives within milliseconds of connect, so this budget only ever fills
  // under a flood. It is large on purpose: while a flood holds more sockets than this plus the
  // listen backlog, the accept queue stays full and a real agent's connect waits (attack.ts:
  // 10,000 idle connections cost a replay 6x at 256, nothing at 16,384). An idle handshaking
  // connection costs about 9 KiB and a descriptor (RLIMIT_NOFILE must exceed
  // maxConnections + maxHandshaking + 256; Node raises the soft limit to the hard one).
  maxHandshaking: 16_384,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  keepaliveIntervalMs: DEFAULT_KEEPALIVE_INTERVAL_MS,
  maxInFlightBatches: DEFAULT_MAX_IN_FLIGHT_BATCHES,
  maxFrameBytes: MAX_LINK_FRAME,
  // Two full-size batches: one being flushed, one arriving. Bounds what a single agent can
  // park in this process beyond the writer's own high-water mark.
  maxUnackedBytes: 2 * MAX_LINK_FRAME,
} as const;

/** Inclusive ranges of the integer options (keepaliveIntervalMs: 0, or at least 1000). */
export const LINK_SERVER_LIMITS = {
  maxConnections: { min: 1, max: 1_000_000 },
  maxHandshaking: { min: 1, max: 1_000_000 },
  handshakeTimeoutMs: { min: 1, max: 0x7fffffff },
  keepaliveIntervalMs: { min: 0, max: 0xffffffff },
  maxInFlightBatches: { min: 1, max: 1_000_000 },
  maxFrameBytes: { min: 1 + MAX_CONTROL_BODY, max: MAX_LINK_FRAME },
  maxUnackedBytes: { min: 1, max: Number.MAX_SAFE_INTEGER },
} as const;

type Optional = 'authToken' | 'tls' | 'onAckLatency' | 'onBatch' | 'overload' | 'utilisation';
export type ResolvedLinkServerOptions = Required<Omit<LinkServerOptions, Optional>> &
  Pick<LinkServerOptions, Optional>;

const KEYS = new Set([
  'host',
  'port',
  'enricherId',
  'pipeline',
  'output',
  'log',
  'authToken',
  'tls',
  ...Object.keys(LINK_SERVER_DEFAULTS),
  'onAckLatency',
  'onBatch',
  'overload',
  'utilisation',
]);

export class LinkServerOptionError extends CodedError<'LINK_SERVER_INVALID_OPTION'> {
  override readonly name = 'LinkServerOptionError';
  constructor(message: string) {
    super('LINK_SERVER_INVALID_OPTION', message);
  }
}

const optionError = (message: string) => new LinkServerOptionError(message);

function int(o: LinkServerOptions, key: keyof typeof LINK_SERVER_DEFAULTS) {
  const { min, max } = LINK_SERVER_LIMITS[key];
  return checkInt(`link server: ${key}`, o[key] ?? LINK_SERVER_DEFAULTS[key], min, max, optionError);
}

export function resolveLinkServerOptions(o: LinkServerOptions): ResolvedLinkServerOptions {
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key)) throw new LinkServerOptionError(`link server: unknown option "${key}"`);
  }
  if (typeof o.host !== 'string') throw new LinkServerOptionError('link server: host must be a string');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new LinkServerOptionError(`link server: port must be in [0, 65535], got ${o.port}`);
  }
  if (typeof o.pipeline?.process !== 'function') throw new LinkServerOptionError('link server: pipeline');
  if (o.output === undefined || o.log === undefined) {
    throw new LinkServerOptionError('link server: output and log are required');
  }
  const keepalive = int(o, 'keepaliveIntervalMs');
  if (keepalive !== 0 && keepalive < 1000) {
    throw new LinkServerOptionError('link server: keepaliveIntervalMs must be 0 (off) or at least 1000');
  }
  return {
    ...o,
    maxConnections: int(o, 'maxConnections'),
    maxHandshaking: int(o, 'maxHandshaking'),
    handshakeTimeoutMs: int(o, 'handshakeTimeoutMs'),
    keepaliveIntervalMs: keepalive,
    maxInFlightBatches: int(o, 'maxInFlightBatches'),
    maxFrameBytes: int(o, 'maxFrameBytes'),
    maxUnackedBytes: int(o, 'maxUnackedBytes'),
  };
}
