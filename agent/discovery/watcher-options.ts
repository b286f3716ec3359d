// EndpointWatcher options: defaults in one place, validated at construction with messages
// that name the field, unknown keys rejected; and the stats it exposes for metrics.

import type { Logger } from '../../common/log';
import type { AddressFamily } from './endpoints';
import { DiscoveryError, DiscoveryErrorCode } from './errors';
import type { KubeConfigSource } from './kube-client';
import type { DiscoveryTarget } from './target';

export interface EndpointWatcherOptions {
  /** From parseDiscoveryTarget(--discovery). */
  target: DiscoveryTarget;
  /** Default { kind: 'default' }: $KUBECONFIG, ~/.kube/config, then the pod's service account. */
  kubeConfig?: KubeConfigSource;
  /** Only endpoints of this family; default both (a dual-stack pod counts once, as IPv4). */
  family?: AddressFamily;
  /** Changes after the first list are coalesced for this long (0: emit each at once). */
  settleMs?: number;
  /** Retry backoff (full jitter): first delay up to this, doubling... */
  backoffStartMs?: number;
  /** ...up to at most this. */
  backoffMaxMs?: number;
  /** Each watch asks the server to end it after this many seconds, times 1..2 at random. */
  watchTimeoutSeconds?: number;
  /** A list must answer, and a watch must send its headers, within this. */
  requestTimeoutMs?: number;
  /** Lifecycle lines (info: changes; debug: lists, expiries); errors only without 'error' listeners. */
  log?: Logger;
}

export const DISCOVERY_DEFAULTS = {
  settleMs: 250,
  backoffStartMs: 500,
  backoffMaxMs: 30_000,
  // client-go's reflector uses 5 min x (1..2) too: long enough to be cheap, short enough
  // that a silently dead connection is noticed.
  watchTimeoutSeconds: 300,
  requestTimeoutMs: 15_000,
} as const;

/** Live counters for metrics (read them at scrape time; do not modify). */
export interface DiscoveryStats {
  /** Successful lists (the first one, and every relist). */
  lists: number;
  /** Lists after the first: after a 410, or after a failure lost the resourceVersion. */
  relists: number;
  /** Watches opened; watchRestarts = the ones after the first. */
  watches: number;
  watchRestarts: number;
  /** 410 Gone: resourceVersion compacted away. */
  expired: number;
  /** Watch events applied (ADDED, MODIFIED, DELETED, BOOKMARK). */
  events: number;
  /** Failures and slice problems by DiscoveryErrorCode. */
  errors: Record<string, number>;
  /** Ready endpoints in the last emitted set. */
  endpoints: number;
  /** Emitted changes (the first list included). */
  changes: number;
  /** Epoch ms of the last emitted change; 0 before the first. */
  lastChangeMs: number;
  /** Epoch ms of the last list or watch event: how fresh our view is. */
  lastSyncMs: number;
  /** A watch is open. */
  watching: boolean;
}

const KNOWN = new Set([
  'target',
  'kubeConfig',
  'family',
  'settleMs',
  'backoffStartMs',
  'backoffMaxMs',
  'watchTimeoutSeconds',
  'requestTimeoutMs',
  'log',
]);

function bad(message: string): never {
  throw new DiscoveryError(DiscoveryErrorCode.INVALID_OPTION, message);
}

export function validateOptions(o: EndpointWatcherOptions): void {
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) bad(`unknown endpoint watcher option ${key}`);
  }
  if (typeof o.target?.namespace !== 'string' || typeof o.target.service !== 'string') {
    bad('target is required (parseDiscoveryTarget)');
  }
  if (o.family !== undefined && o.family !== 'IPv4' && o.family !== 'IPv6') {
    bad(`family must be IPv4 or IPv6, not ${String(o.family)}`);
  }
  const k = o.kubeConfig;
  if (k !== undefined && !['default', 'file', 'in-cluster'].includes(k.kind)) {
    bad(`kubeConfig.kind must be default, file or in-cluster, not ${String(k.kind)}`);
  }
  if (k?.kind === 'file' && (typeof k.path !== 'string' || k.path === '')) bad('kubeConfig.path is required');
  const ints: Array<[keyof EndpointWatcherOptions, number]> = [
    ['settleMs', 0],
    ['backoffStartMs', 1],
    ['backoffMaxMs', 1],
    ['watchTimeoutSeconds', 1],
    ['requestTimeoutMs', 1],
  ];
  for (const [name, min] of ints) {
    const v = o[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) {
      bad(`${name} must be an integer >= ${min}, not ${String(v)}`);
    }
  }
  const start = o.backoffStartMs ?? DISCOVERY_DEFAULTS.backoffStartMs;
  const max = o.backoffMaxMs ?? DISCOVERY_DEFAULTS.backoffMaxMs;
  if (start > max) bad(`backoffStartMs (${start}) must not exceed backoffMaxMs (${max})`);
}
