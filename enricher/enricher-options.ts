// The Enricher's options (what cli/enricher.ts builds from flags, env and config, and what
// library users and tests pass): one place, so the composition root (enricher.ts) stays small.
import type { DnstapListenerTuning } from '../common/framestream-listen';
import type { Logger } from '../common/log';
import type { AggregatesConfig } from './aggregates/options';
import type { ChunkWriterOptions, PartitionOptions } from './output/index';
import type { RowOptions } from './pipeline/pipeline';
import type { PolicyPollerOptions } from './policy/poller';
import type { LinkServerOptions, LinkTlsOptions } from './server/index';

export interface HostPort {
  host: string;
  port: number;
}

type LinkTuning = Partial<
  Pick<
    LinkServerOptions,
    | 'maxConnections'
    | 'maxHandshaking'
    | 'handshakeTimeoutMs'
    | 'keepaliveIntervalMs'
    | 'maxInFlightBatches'
    | 'maxFrameBytes'
    | 'maxUnackedBytes'
    | 'overload'
    | 'utilisation'
  >
>;

export interface EnricherOptions {
  /** Enricher id: every row's enricher_id, chunk names, the Welcome. */
  id: string;
  output: Omit<ChunkWriterOptions, 'onCommit' | 'enricherId'>;
  /** --partition-by tenant, --max-open-tenants, --tenant-chunk-rate. */
  partition?: PartitionOptions;
  listen: HostPort;
  dnstapListen?: HostPort | null;
  /** TLS, allow-list, budgets and handshake deadline of --dnstap-listen. */
  dnstapInput?: DnstapListenerTuning;
  /** null: no ops endpoint (library use). */
  metricsListen?: HostPort | null;
  link?: LinkTuning;
  authToken?: Buffer | null;
  tls?: LinkTlsOptions | null;
  /** url or file (not both); readiness waits for the first load. */
  policy?: Omit<PolicyPollerOptions, 'log'> | null;
  /** Privacy and column selection (--mask-client-*, --drop-ecs, --pseudonymize-clients, --columns). */
  rows?: RowOptions;
  /**
   * Where authToken, tls and dnstapInput.tls were read from: re-read every secretReloadMs and
   * put in use for new connections when they change (a rotated Secret; common/secret-files.ts).
   */
  secretFiles?: SecretFilePaths;
  /** How often secret files (those above and the pseudonym key) are re-read; default 10 s. */
  secretReloadMs?: number;
  /** Hourly aggregates (--aggregates hourly, --rows off); null/absent = off. */
  aggregates?: AggregatesConfig | null;
  maxDataFrameSize?: number;
  /** How long agents get to finish their in-flight batches on stop(). */
  drainTimeoutMs?: number;
  /** Deadline of the start steps on the output directory. Default 30 s. */
  outputStartTimeoutMs?: number;
  /** --policy-url only: stop with exit 1 when no policy loaded this long after start; 0/absent = wait. */
  policyStartTimeoutMs?: number;
  /** How often the output directory is probed for writability (readiness). */
  writableProbeMs?: number;
  /**
   * After an output failure (disk full, read-only, EIO): how often the output is reopened.
   * 0: exit 1 at the first failure instead (the supervisor restarts the process).
   */
  outputRetryMs?: number;
  log: Logger;
}

export interface TlsFilePaths {
  cert: string;
  key: string;
  ca?: string;
}

export interface SecretFilePaths {
  authToken?: string;
  tls?: TlsFilePaths;
  dnstapTls?: TlsFilePaths;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 20_000;
export const DEFAULT_OUTPUT_RETRY_MS = 5_000;

export interface EnricherAddresses {
  link: number;
  dnstap?: number;
  metrics?: number;
}
