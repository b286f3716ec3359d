// Agent configuration: defaults and ranges in one place, every field validated at
// construction with a message naming it, unknown keys rejected. The CLI (cli/agent.ts) takes
// its defaults and ranges from here and maps flags onto this.

import type { DnstapListenerTuning } from '../common/framestream-listen';
import type { Logger } from '../common/log';
import { SECRET_RELOAD_INTERVAL_MS, SECRET_RELOAD_RANGE_MS } from '../common/secret-files';
import { DEFAULT_MAX_DATA_FRAME_SIZE } from '../proto/framestream';
import { checkInt } from '../proto/kit/index';
import { MAX_FRAME_SIZE_RANGE, MAX_LINK_FRAME, makeHello } from '../proto/link';
import { MASK_DEFAULTS, MASK_RANGES } from '../proto/net/index';
import { invalidOption } from './errors';
import { AUTO_PERIOD_MS } from './link/client';

export const WHEN_FULL = ['drop-newest', 'drop-oldest'] as const;
export type WhenFull = (typeof WHEN_FULL)[number];
export const SAMPLE_MODES = ['every', 'random'] as const;
export type SampleMode = (typeof SAMPLE_MODES)[number];

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
  /** TLS, allow-list, budgets, handshake deadline and socket mode of the dnstap listeners. */
  dnstapInput?: DnstapListenerTuning;
  /** Replay a capture: backpressure instead of drops; done once all of it is acknowledged. */
  inputFile?: string;
  enrichers: Endpoint[];
  /** 0 disables switching (one connection stays active for good). */
  switchIntervalMs?: number;
  /** Fraction of the interval added or taken at random each time (agents do not switch in lockstep). */
  switchJitter?: number;
  /**
   * A connection whose unacknowledged window stayed full (sampled) through this fraction of
   * its switch interval is switched then instead of at the timer: agents leave a saturated
   * pod sooner, agents on a pod with room stay. 1 (the default) = only the timer; stripe.ts says why.
   */
  saturatedSwitch?: number;
  /**
   * Stripes: batches spread over this many active connections (each with its own standby
   * and switch timer), or `auto` (1..maxActiveConnections from backlog and window evidence).
   */
  activeConnections?: number | 'auto';
  /** Upper bound of activeConnections (auto's ceiling; a number must not exceed it). */
  maxActiveConnections?: number;
  /** activeConnections auto: one decision per this period (library option; tests shorten it). */
  autoPeriodMs?: number;
  bufferBytes?: number;
  spoolDir?: string;
  spoolMaxBytes?: number;
  /**
   * fsync every spool file (and its directory entry) before counting it spooled: survives a
   * node crash (power loss, kernel panic), not only a process crash. Default off: see
   * agent/README.md "Spool durability".
   */
  spoolFsync?: boolean;
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
  /**
   * Minimise at the edge (agent/edge-mask.ts): keep this many leading bits of the client's
   * IPv4 / IPv6 address (and ECS), rewritten in place before the spool and the link.
   */
  maskClientIpv4?: number;
  maskClientIpv6?: number;
  /** Turn the EDNS Client Subnet option into padding in place (the `ecs` column stays empty). */
  dropEcs?: boolean;
  authToken?: string | Buffer;
  tls?: TlsSettings;
  /**
   * Where authToken, tls and dnstapInput.tls were read from: re-read every secretReloadMs and
   * used for new connections when they change (a rotated Secret; common/secret-files.ts).
   */
  secretFiles?: AgentSecretFiles;
  secretReloadMs?: number;
  log: Logger;
}

export interface AgentSecretFiles {
  authToken?: string;
  /** The link's TLS client side: CA to verify the enricher, client certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** The dnstap TCP input's server certificate, key and optional client CA. */
  dnstapTls?: { cert: string; key: string; ca?: string };
}

export type ResolvedAgentOptions = Required<
  Omit<
    AgentOptions,
    | 'dnstapSocket'
    | 'dnstapTcp'
    | 'dnstapInput'
    | 'inputFile'
    | 'spoolDir'
    | 'authToken'
    | 'tls'
    | 'secretFiles'
  >
> &
  Pick<
    AgentOptions,
    | 'dnstapSocket'
    | 'dnstapTcp'
    | 'dnstapInput'
    | 'inputFile'
    | 'spoolDir'
    | 'authToken'
    | 'tls'
    | 'secretFiles'
  >;

/** Most stripes an agent opens (the metrics' stripe label is bounded by it). */
export const MAX_STRIPES = 64;

export const AGENT_DEFAULTS = {
  switchIntervalMs: 30_000,
  switchJitter: 0.2,
  saturatedSwitch: 1,
  activeConnections: 1 as number | 'auto',
  maxActiveConnections: 8,
  autoPeriodMs: AUTO_PERIOD_MS,
  bufferBytes: 64 * 1024 * 1024,
  spoolMaxBytes: 1024 * 1024 * 1024,
  spoolFsync: false,
  whenFull: 'drop-newest' as WhenFull,
  rateLimit: 0,
  sample: 1,
  sampleMode: 'every' as SampleMode,
  batchRecords: 1000,
  batchBytes: 1024 * 1024,
  batchLingerMs: 50,
  maxInFlight: 32,
  maxFrameSize: DEFAULT_MAX_DATA_FRAME_SIZE,
  handshakeTimeoutMs: 10_000,
  drainTimeoutMs: 20_000,
  retireTimeoutMs: 20_000,
  inputTimeoutMs: 0,
  backoffStartMs: 100,
  backoffMaxMs: 10_000,
  configRetryMs: 30_000,
  maskClientIpv4: MASK_DEFAULTS.maskClientIpv4,
  maskClientIpv6: MASK_DEFAULTS.maskClientIpv6,
  dropEcs: false,
  secretReloadMs: SECRET_RELOAD_INTERVAL_MS,
} as const;

type NumericOption = {
  [K in keyof typeof AGENT_DEFAULTS]: (typeof AGENT_DEFAULTS)[K] extends number ? K : never;
}[keyof typeof AGENT_DEFAULTS];

/**
 * Inclusive range of every numeric option. Some have a second, relative bound checked too:
 * bufferBytes and spoolMaxBytes hold at least one batch (batchBytes); backoffMaxMs is at
 * least backoffStartMs.
 */
export const AGENT_LIMITS: Record<NumericOption, { min: number; max: number; integer: boolean }> = {
  switchIntervalMs: { min: 0, max: 86_400_000, integer: true },
  switchJitter: { min: 0, max: 0.9, integer: false },
  saturatedSwitch: { min: 0.1, max: 1, integer: false },
  maxActiveConnections: { min: 1, max: MAX_STRIPES, integer: true },
  autoPeriodMs: { min: 10, max: 3_600_000, integer: true },
  bufferBytes: { min: 1024, max: 2 ** 40, integer: true },
  spoolMaxBytes: { min: 1024, max: 2 ** 50, integer: true },
  rateLimit: { min: 0, max: 1e9, integer: false },
  sample: { min: 1, max: 0xffffffff, integer: true },
  batchRecords: { min: 1, max: 1_000_000, integer: true },
  batchBytes: { min: 1024, max: MAX_LINK_FRAME, integer: true },
  batchLingerMs: { min: 1, max: 60_000, integer: true },
  maxInFlight: { min: 1, max: 100_000, integer: true },
  maxFrameSize: { ...MAX_FRAME_SIZE_RANGE, integer: true },
  handshakeTimeoutMs: { min: 1, max: 3_600_000, integer: true },
  drainTimeoutMs: { min: 1, max: 3_600_000, integer: true },
  retireTimeoutMs: { min: 1, max: 3_600_000, integer: true },
  inputTimeoutMs: { min: 0, max: 2 ** 31 - 1, integer: true },
  backoffStartMs: { min: 1, max: 3_600_000, integer: true },
  backoffMaxMs: { min: 1, max: 3_600_000, integer: true },
  configRetryMs: { min: 0, max: 3_600_000, integer: true },
  maskClientIpv4: { ...MASK_RANGES.maskClientIpv4, integer: true },
  maskClientIpv6: { ...MASK_RANGES.maskClientIpv6, integer: true },
  secretReloadMs: { ...SECRET_RELOAD_RANGE_MS, integer: true },
};

const KEYS = new Set([
  ...Object.keys(AGENT_DEFAULTS),
  'id',
  'incarnation',
  'dnstapSocket',
  'dnstapTcp',
  'dnstapInput',
  'inputFile',
  'enrichers',
  'spoolDir',
  'authToken',
  'tls',
  'secretFiles',
  'log',
]);

/**
 * base36 ms timestamp + '-' + 8 hex digits: sorts by start time, unique across restarts. The
 * digits only have to differ between two starts of one agent id in the same millisecond, so
 * Math.random (seeded by V8 from the OS's entropy) does: node:crypto would add ~1 MiB to the
 * sidecar's start-up.
 */
export function newIncarnation(): string {
  const suffix = Math.floor(Math.random() * 2 ** 32);
  return Date.now().toString(36) + '-' + suffix.toString(16).padStart(8, '0');
}

function num(field: string, v: unknown, min: number, max: number, integer = true): number {
  if (integer) return checkInt(field, v, min, max, invalidOption);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalidOption(`${field} must be a number in [${min}, ${max}], got ${String(v)}`);
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
  if (!r.log) throw invalidOption('log (a Logger, common/log.ts) is required');
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
  for (const [field, { min, max, integer }] of Object.entries(AGENT_LIMITS)) {
    num(field, r[field as NumericOption], min, max, integer);
  }
  const n = r.activeConnections;
  if (n !== 'auto' && !(Number.isInteger(n) && n >= 1 && n <= r.maxActiveConnections)) {
    throw invalidOption(
      `activeConnections must be "auto" or an integer in [1, maxActiveConnections=${r.maxActiveConnections}], got ${String(n)}`,
    );
  }
  if (!WHEN_FULL.includes(r.whenFull)) {
    throw invalidOption(`whenFull must be ${WHEN_FULL.join(' or ')}, got ${String(r.whenFull)}`);
  }
  if (typeof r.dropEcs !== 'boolean') {
    throw invalidOption(`dropEcs must be true or false, got ${String(r.dropEcs)}`);
  }
  if (typeof r.spoolFsync !== 'boolean') {
    throw invalidOption(`spoolFsync must be true or false, got ${String(r.spoolFsync)}`);
  }
  if (!SAMPLE_MODES.includes(r.sampleMode)) {
    throw invalidOption(`sampleMode must be ${SAMPLE_MODES.join(' or ')}, got ${String(r.sampleMode)}`);
  }
  if (r.bufferBytes < r.batchBytes) {
    throw invalidOption(`bufferBytes (${r.bufferBytes}) must be at least batchBytes (${r.batchBytes})`);
  }
  if (r.spoolMaxBytes < r.batchBytes) {
    throw invalidOption(`spoolMaxBytes (${r.spoolMaxBytes}) must be at least batchBytes (${r.batchBytes})`);
  }
  if (r.backoffMaxMs < r.backoffStartMs) {
    throw invalidOption(
      `backoffMaxMs (${r.backoffMaxMs}) must be at least backoffStartMs (${r.backoffStartMs})`,
    );
  }
  if (r.tls && (r.tls.cert === undefined) !== (r.tls.key === undefined)) {
    throw invalidOption('tls.cert and tls.key go together (mTLS)');
  }
  return r;
}
