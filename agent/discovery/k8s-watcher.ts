// Watches one Service's EndpointSlices and emits the ready endpoints whenever that set
// changes - the agent's cue to re-open its idle link connection at once (service mode) or
// to dial the new pods directly (direct mode).
//
// The loop is list-then-watch, as client-go's reflector does it:
//   list (no resourceVersion: a consistent read) -> watch from the list's resourceVersion,
//   with bookmarks, so a restarted watch resumes where the last one stopped (no replayed
//   or lost events) -> the server ends the watch after timeoutSeconds -> watch again.
// 410 Gone (an ERROR event, or the HTTP status) means our resourceVersion was compacted
// away: list again. Failures - API down at start, wrong token, RBAC, a hung connection -
// are retried with exponential backoff and full jitter (package exponential-backoff);
// the last known endpoints stay in force meanwhile, and nothing here ever throws into the
// agent. ListWatch/makeInformer of client-node 1.4 do not fit: on any error other than 410
// they stop for good (no retry), they give no deadlines, and a stop() during a list still
// opens a watch afterwards.

import { EventEmitter } from 'node:events';
import { backOff } from 'exponential-backoff';
import { type Logger, silentLogger } from '../../common/log';
import {
  type AddressFamily,
  diffEndpoints,
  type EndpointSliceLike,
  endpointsKey,
  type ReadyEndpoint,
  reduceEndpointSlices,
} from './endpoints';
import { DiscoveryError, DiscoveryErrorCode } from './errors';
import { classifyApiError, KubeApi, type WatchEventType } from './kube-client';
import { type DiscoveryTarget, formatDiscoveryTarget } from './target';
import {
  DISCOVERY_DEFAULTS,
  type DiscoveryStats,
  type EndpointWatcherOptions,
  validateOptions,
} from './watcher-options';

/** A watch that lasted this long, or delivered anything, was healthy: its end is not a failure. */
export const HEALTHY_WATCH_MS = 10_000;

export interface EndpointsChange {
  added: ReadyEndpoint[];
  removed: ReadyEndpoint[];
  /** Endpoint entries left out as not ready / terminating (for logs). */
  notReady: number;
  terminating: number;
}

export interface EndpointWatcherEvents {
  /** The ready set changed (and once after the first list, even when empty). */
  endpoints: [endpoints: readonly ReadyEndpoint[], change: EndpointsChange];
  /** A failure or a problem in a slice; the watcher carries on (retries with backoff). */
  error: [err: DiscoveryError];
}

const STOPPED = new DiscoveryError(DiscoveryErrorCode.INVALID_STATE, 'endpoint watcher stopped');

export class EndpointWatcher extends EventEmitter<EndpointWatcherEvents> {
  readonly stats: DiscoveryStats = {
    lists: 0,
    relists: 0,
    watches: 0,
    watchRestarts: 0,
    expired: 0,
    events: 0,
    errors: {},
    endpoints: 0,
    changes: 0,
    lastChangeMs: 0,
    lastSyncMs: 0,
    watching: false,
  };
  readonly target: DiscoveryTarget;
  private readonly o: Required<Omit<EndpointWatcherOptions, 'family' | 'log' | 'target'>>;
  private readonly family: AddressFamily | undefined;
  private readonly log: Logger;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private api: KubeApi | undefined;
  private slices = new Map<string, EndpointSliceLike>();
  private resourceVersion = '';
  private current: readonly ReadyEndpoint[] | null = null;
  private emittedKey: string | null = null;
  private pending: ReturnType<typeof reduceEndpointSlices> | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private problems = new Set<string>();
  private endWatch: ((err?: DiscoveryError) => void) | undefined;

  constructor(options: EndpointWatcherOptions) {
    super();
    validateOptions(options);
    this.target = options.target;
    this.family = options.family;
    this.log = (options.log ?? silentLogger()).child({ discovery: formatDiscoveryTarget(options.target) });
    this.o = {
      kubeConfig: options.kubeConfig ?? { kind: 'default' },
      settleMs: options.settleMs ?? DISCOVERY_DEFAULTS.settleMs,
      backoffStartMs: options.backoffStartMs ?? DISCOVERY_DEFAULTS.backoffStartMs,
      backoffMaxMs: options.backoffMaxMs ?? DISCOVERY_DEFAULTS.backoffMaxMs,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? DISCOVERY_DEFAULTS.watchTimeoutSeconds,
      requestTimeoutMs: options.requestTimeoutMs ?? DISCOVERY_DEFAULTS.requestTimeoutMs,
    };
  }

  /** The ready endpoints last emitted; null until the first list succeeded. */
  endpoints(): readonly ReadyEndpoint[] | null {
    return this.current;
  }

  /** Begins list/watch in the background; failures are retried, never thrown. */
  start(): void {
    if (this.state !== 'idle')
      throw new DiscoveryError(DiscoveryErrorCode.INVALID_STATE, `start() when ${this.state}`);
    this.state = 'running';
    void this.run();
  }

  /**
   * Ends the watch and any request in flight; no event is emitted afterwards. A backoff
   * wait already begun runs out on its own (exponential-backoff cannot cancel it) and then
   * makes no request: it delays process exit by at most backoffMaxMs unless the agent exits.
   */
  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    this.endWatch?.();
    this.api?.abortLists();
    this.stats.watching = false;
  }

  private async run(): Promise<void> {
    while (this.state === 'running') {
      try {
        // Resolves when a healthy watch ended: go round again at once, with fresh backoff.
        await backOff(() => this.session(), {
          numOfAttempts: Number.POSITIVE_INFINITY,
          startingDelay: this.o.backoffStartMs,
          maxDelay: this.o.backoffMaxMs,
          timeMultiple: 2,
          jitter: 'full',
          retry: (err) => this.retry(err),
        });
      } catch {
        // Only once stopped: retry() said no.
      }
    }
  }

  private retry(err: unknown): boolean {
    if (this.state !== 'running' || err === STOPPED) return false;
    this.report(classifyApiError(err, 'discovery'));
    return true;
  }

  private async session(): Promise<void> {
    if (this.state !== 'running') throw STOPPED;
    this.api ??= await KubeApi.create(this.o.kubeConfig, this.target);
    if (this.state !== 'running') throw STOPPED;
    const listed = this.resourceVersion === '';
    if (listed) await this.list(this.api);
    if (this.state !== 'running') throw STOPPED;
    await this.watch(this.api, listed);
  }

  private async list(api: KubeApi): Promise<void> {
    const res = await api.list(this.o.requestTimeoutMs);
    if (this.state !== 'running') throw STOPPED;
    this.stats.lists++;
    if (this.stats.lists > 1) this.stats.relists++;
    this.stats.lastSyncMs = Date.now();
    this.slices = new Map(res.items.map((s) => [s.metadata?.name ?? '', s]));
    this.resourceVersion = res.resourceVersion;
    this.log.debug(
      { slices: this.slices.size, resourceVersion: res.resourceVersion, server: api.server },
      'listed',
    );
    this.recompute();
  }

  /** One watch until it ends; `listed`: its resourceVersion comes from a list just made. */
  private async watch(api: KubeApi, listed: boolean): Promise<void> {
    const began = Date.now();
    const expiredBefore = this.stats.expired;
    let received = false;
    if (this.stats.watches++ > 0) this.stats.watchRestarts++;
    // Randomised like client-go, so that agents started together do not reconnect together.
    const timeoutSeconds = Math.round(this.o.watchTimeoutSeconds * (1 + Math.random()));
    const timeouts = {
      timeoutSeconds,
      headersMs: this.o.requestTimeoutMs,
      idleMs: timeoutSeconds * 1000 + this.o.requestTimeoutMs,
    };
    const h = api.watch(
      this.resourceVersion,
      timeouts,
      (type, obj) => {
        if (this.onEvent(type, obj, h.end)) received = true;
      },
      // Only an answered watch counts: an attempt still connecting (or black-holed) is not one.
      () => {
        this.stats.watching = true;
      },
    );
    this.endWatch = h.end;
    try {
      await h.ended;
    } catch (err) {
      const e = classifyApiError(err, 'watch');
      if (e.code === DiscoveryErrorCode.EXPIRED) this.expire();
      else if (!received && Date.now() - began < HEALTHY_WATCH_MS) throw e;
      else {
        this.report(e); // a watch that worked for a while: retry at once, then back off
        return;
      }
    } finally {
      this.endWatch = undefined;
      this.stats.watching = false;
    }
    if (this.state !== 'running') throw STOPPED;
    if (received || Date.now() - began >= HEALTHY_WATCH_MS) return;
    // Ended at once, having delivered nothing: back off rather than spin. Except a 410 when
    // resuming after a break: our resourceVersion aged meanwhile, list again now.
    if (this.stats.expired === expiredBefore) {
      throw new DiscoveryError(
        DiscoveryErrorCode.WATCH_CLOSED,
        'watch: closed by the server before any event',
      );
    }
    if (listed)
      throw new DiscoveryError(
        DiscoveryErrorCode.EXPIRED,
        'watch: resourceVersion expired right after listing',
      );
  }

  /** Applies one watch event; false for an ERROR (the watch is ended through `end`). */
  private onEvent(type: WatchEventType, obj: unknown, end: (err?: DiscoveryError) => void): boolean {
    const o = obj as EndpointSliceLike & { code?: number; reason?: string; message?: string };
    if (type === 'ERROR') {
      if (o.code === 410) {
        this.expire();
        end();
      } else {
        const msg = `watch: ERROR event ${o.code ?? ''} ${o.reason ?? ''}: ${o.message ?? ''}`;
        end(new DiscoveryError(DiscoveryErrorCode.API, msg, { status: o.code }));
      }
      return false;
    }
    this.stats.events++;
    this.stats.lastSyncMs = Date.now();
    const rv = o.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    const name = o.metadata?.name ?? '';
    if (type === 'ADDED' || type === 'MODIFIED') this.slices.set(name, o);
    else if (type === 'DELETED') this.slices.delete(name);
    else return true; // BOOKMARK: only the resourceVersion moves
    this.recompute();
    return true;
  }

  private expire(): void {
    this.stats.expired++;
    this.resourceVersion = '';
    this.log.debug('resourceVersion expired (410); listing again');
  }

  private recompute(): void {
    const r = reduceEndpointSlices(this.slices.values(), { port: this.target.port, family: this.family });
    const seen = new Set<string>();
    for (const p of r.problems) {
      const key = `EndpointSlice ${p.slice}: ${p.message}`;
      seen.add(key);
      if (!this.problems.has(key)) this.report(new DiscoveryError(p.code, key));
    }
    this.problems = seen;
    this.pending = r;
    // The first list is emitted at once; later changes are coalesced for settleMs, so a
    // rolling update's burst of slice updates becomes one switch, and a flap none.
    if (this.emittedKey === null || this.o.settleMs === 0) this.flush();
    else this.settleTimer ??= setTimeout(() => this.flush(), this.o.settleMs);
  }

  private flush(): void {
    this.settleTimer = undefined;
    const r = this.pending;
    if (r === undefined || this.state !== 'running') return;
    const key = endpointsKey(r.endpoints);
    if (key === this.emittedKey) return;
    const change: EndpointsChange = {
      ...diffEndpoints(this.current ?? [], r.endpoints),
      notReady: r.notReady,
      terminating: r.terminating,
    };
    this.current = r.endpoints;
    this.emittedKey = key;
    this.stats.endpoints = r.endpoints.length;
    this.stats.changes++;
    this.stats.lastChangeMs = Date.now();
    this.log.info(
      { endpoints: r.endpoints.length, added: change.added.length, removed: change.removed.length },
      'enricher endpoints changed',
    );
    try {
      this.emit('endpoints', r.endpoints, change);
    } catch (err) {
      this.log.error({ err }, 'an endpoints listener threw');
    }
  }

  /** Counts an error by code and hands it to 'error' listeners (or logs it: never throws). */
  private report(e: DiscoveryError): void {
    this.stats.errors[e.code] = (this.stats.errors[e.code] ?? 0) + 1;
    if (this.listenerCount('error') === 0) {
      this.log.warn({ err: e, code: e.code }, 'endpoint discovery problem; carrying on');
      return;
    }
    try {
      this.emit('error', e);
    } catch (err) {
      this.log.error({ err }, 'an error listener threw');
    }
  }
}
