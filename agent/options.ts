// Agent configuration: defaults in one place, every field validated at construction with a
// message naming it, unknown keys rejected. The CLI (cli/agent.ts) maps flags onto this.

import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/log';
import { MAX_LINK_FRAME, MAX_RECORD_SIZE, makeHello } from '../proto/link';
import { invalidOption } from './errors';

export type WhenFull = 'drop-newest' | 'drop-oldest';
export type SampleMode = 'every' | 'random';

/** One enricher address (a Service, or later one pod from discovery). */
export interface Endpoint {
  host: string;
  port: number;
}

export interface TlsSettings {
  /** Verify the enricher against this CA (PEM). Without it, the system CAs. */
  ca?: Buffer;
  /** Client certificate and key (PEM) for mTLS. */
  cert?: Buffer;
  key?: Buffer;
  /** Name checked against the enricher's certificate; default: the endpoint host. */
  servername?: string;
}

export interface AgentOptions {
  /** agent_id: part of every record_id. Default: the pod name (hostname), set by the CLI. */
  id: string;
  /** Default: a fresh base36 ms timestamp + random suffix (unique per process start). */
  incarnation?: string;
  dnstapSocket?: string;
  dnstapTcp?: Endpoint;
  /** Replay a capture: backpressure instead of drops; done once all of it is acknowledged. */
  inputFile?: string;
  enrichers: Endpoint[];
  /** 0 disables switching (one connection stays active for good). */
  switchIntervalMs?: number;
  /** Fraction of the interval added or taken at random each time (agents do not switch in lockstep). */
  switchJitter?: number;
  bufferBytes?: number;
  spoolDir?: string;
  spoolMaxBytes?: number;
  whenFull?: WhenFull;
  /** Records per second; 0 = unlimited. */
  rateLimit?: number;
  sample?: number;
  sampleMode?: SampleMode;
  batchRecords?: number;
  batchBytes?: number;
  batchLingerMs?: number;
  /** Our own window per connection; a Welcome can only lower it. */
  maxInFlight?: number;
  /** Largest dnstap data frame taken from producers; larger ones are skipped and counted. */
  maxFrameSize?: number;
  handshakeTimeoutMs?: number;
  /** SIGTERM: how long to wait for outstanding acks before spooling (or losing) the rest. */
  drainTimeoutMs?: number;
  /** A retired connection (old standby, drained without deadline) waits this long for its acks. */
  retireTimeoutMs?: number;
  /** --input-file: give up (exit 1) when not all acknowledged after this long; 0 = never. */
  inputTimeoutMs?: number;
  /** Reconnect backoff (exponential, full jitter). */
  backoffStartMs?: number;
  backoffMaxMs?: number;
  /** Extra wait after a configuration Reject (bad token, version, identity): slow and loud. */
  configRetryMs?: number;
  authToken?: string | Buffer;
  tls?: TlsSettings;
  log: Logger;
}

export type ResolvedAgentOptions = Required<
  Omit<AgentOptions, 'dnstapSocket' | 'dnstapTcp' | 'inputFile' | 'spoolDir' | 'authToken' | 'tls'>
> &
  Pick<AgentOptions, 'dnstapSocket' | 'dnstapTcp' | 'inputFile' | 'spoolDir' | 'authToken' | 'tls'>;

export const AGENT_DEFAULTS = {
  switchIntervalMs: 30_000,
  switchJitter: 0.2,
  bufferBytes: 64 * 1024 * 1024,
  spoolMaxBytes: 1024 * 1024 * 1024,
  whenFull: 'drop-newest' as WhenFull,
  rateLimit: 0,
  sample: 1,
  sampleMode: 'every' as SampleMode,
  batchRecords: 1000,
  batchBytes: 1024 * 1024,
  batchLingerMs: 50,
  maxInFlight: 32,
  maxFrameSize: 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  drainTimeoutMs: 20_000,
  retireTimeoutMs: 20_000,
  inputTimeoutMs: 0,
  backoffStartMs: 100,
  backoffMaxMs: 10_000,
  configRetryMs: 30_000,
} as const;

const KEYS = new Set([
  ...Object.keys(AGENT_DEFAULTS),
  'id',
  'incarnation',
  'dnstapSocket',
  'dnstapTcp',
  'inputFile',
  'enrichers',
  'spoolDir',
  'authToken',
  'tls',
  'log',
]);

/** base36 ms timestamp + '-' + 8 hex digits: sorts by start time, unique across restarts. */
export function newIncarnation(): string {
  return Date.now().toString(36) + '-' + randomBytes(4).toString('hex');
}

function num(field: string, v: unknown, min: number, max: number, integer = true): number {
  if (typeof v !== 'number' || !(integer ? Number.isInteger(v) : Number.isFinite(v)) || v < min || v > max) {
    throw invalidOption(
      `${field} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`,
    );
  }
  return v;
}

function endpoint(field: string, e: Endpoint | undefined): void {
  if (e === undefined) return;
  if (typeof e?.host !== 'string' || e.host === '')
    throw invalidOption(`${field}.host must be a non-empty string`);
  num(`${field}.port`, e.port, 0, 65535);
}

/** Fills defaults and validates every field; throws AGENT_INVALID_OPTION naming the field. */
export function resolveAgentOptions(o: AgentOptions): ResolvedAgentOptions {
  for (const key of Object.keys(o ?? {})) {
    if (!KEYS.has(key)) throw invalidOption(`unknown option "${key}" (known: ${[...KEYS].join(', ')})`);
  }
  const r = {
    ...AGENT_DEFAULTS,
    ...o,
    incarnation: o.incarnation ?? newIncarnation(),
  } as ResolvedAgentOptions;
  try {
    makeHello({ agentId: r.id, incarnation: r.incarnation, authToken: r.authToken });
  } catch (err) {
    throw invalidOption(`id/incarnation/authToken: ${(err as Error).message}`);
  }
  if (!r.log) throw invalidOption('log (a pino Logger) is required');
  if (!r.dnstapSocket && !r.dnstapTcp && !r.inputFile) {
    throw invalidOption('no input: give dnstapSocket, dnstapTcp or inputFile');
  }
  if (r.inputFile && (r.dnstapSocket || r.dnstapTcp)) {
    throw invalidOption(
      'inputFile replays a capture and exits: it cannot be combined with dnstapSocket/dnstapTcp',
    );
  }
  endpoint('dnstapTcp', r.dnstapTcp);
  if (!Array.isArray(r.enrichers) || r.enrichers.length === 0)
    throw invalidOption('enrichers: give at least one');
  r.enrichers.forEach((e, i) => {
    endpoint(`enrichers[${i}]`, e);
    if (e.port === 0) throw invalidOption(`enrichers[${i}].port must not be 0`);
  });
  num('switchIntervalMs', r.switchIntervalMs, 0, 86_400_000);
  num('switchJitter', r.switchJitter, 0, 0.9, false);
  num('batchRecords', r.batchRecords, 1, 1_000_000);
  num('batchBytes', r.batchBytes, 1024, MAX_LINK_FRAME);
  num('batchLingerMs', r.batchLingerMs, 1, 60_000);
  num('maxFrameSize', r.maxFrameSize, 1024, MAX_RECORD_SIZE);
  num('bufferBytes', r.bufferBytes, r.batchBytes, 2 ** 40);
  num('spoolMaxBytes', r.spoolMaxBytes, r.batchBytes, 2 ** 50);
  if (r.whenFull !== 'drop-newest' && r.whenFull !== 'drop-oldest') {
    throw invalidOption(`whenFull must be drop-newest or drop-oldest, got ${String(r.whenFull)}`);
  }
  if (r.sampleMode !== 'every' && r.sampleMode !== 'random') {
    throw invalidOption(`sampleMode must be every or random, got ${String(r.sampleMode)}`);
  }
  num('sample', r.sample, 1, 0xffffffff);
  num('rateLimit', r.rateLimit, 0, 1e9, false);
  num('maxInFlight', r.maxInFlight, 1, 100_000);
  for (const f of ['handshakeTimeoutMs', 'drainTimeoutMs', 'retireTimeoutMs', 'backoffStartMs'] as const) {
    num(f, r[f], 1, 3_600_000);
  }
  num('backoffMaxMs', r.backoffMaxMs, r.backoffStartMs, 3_600_000);
  num('configRetryMs', r.configRetryMs, 0, 3_600_000);
  num('inputTimeoutMs', r.inputTimeoutMs, 0, 2 ** 31 - 1);
  if (r.tls && (r.tls.cert === undefined) !== (r.tls.key === undefined)) {
    throw invalidOption('tls.cert and tls.key go together (mTLS)');
  }
  return r;
}
