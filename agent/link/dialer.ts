// The dial loop: opens link connections one at a time with exponential backoff and full
// jitter (package exponential-backoff), and classifies failures (LINK.md "Reject codes"):
// transient rejects retry with backoff (retry_after_ms is a minimum wait), configuration
// rejects (bad token, version, content type, identity) retry slowly and loudly.
//
// Backoff resets with every dial loop, so a connection that dies young counts as a failed
// attempt: the next loop starts delayed, and the delay doubles with every young death
// (an enricher that welcomes and then drops us must not get a reconnect storm).

import { backOff } from 'exponential-backoff';
import { type Clock, realClock, type TimerHandle } from '../../common/clock';
import { bump } from '../../common/counts';
import type { Logger } from '../../common/log';
import { isLinkProtocolError, isTransientReject } from '../../proto/link';
import { AgentError, AgentErrorCode, RejectedError } from '../errors';
import type { Endpoint } from '../options';
import {
  type ConnectionEvents,
  type ConnectionFactory,
  type ConnectionSettings,
  type LinkConn,
  openLinkConnection,
} from './connection';

/** A connection that lived less than this after its Welcome died young. */
export const HEALTHY_AFTER_MS = 5_000;
/** Young deaths older than this are forgotten. */
const YOUNG_DEATHS_FORGOTTEN_MS = 60_000;

/** The dial loop's counters (plain numbers, read by metrics on scrape); only the Dialer writes them. */
export interface DialStats {
  /** Dial attempts, and those that got a Welcome. */
  connects: number;
  welcomes: number;
  /** Dial attempts after a failure or a lost connection. */
  reconnects: number;
  /** Failed dial attempts by error code (ECONNREFUSED, AGENT_HANDSHAKE_TIMEOUT, AGENT_REJECTED...). */
  connectFailures: Record<string, number>;
  /** Rejects by code name (BAD_AUTH, OVERLOADED...). */
  rejects: Record<string, number>;
  /** Connections closed for a LinkProtocolError, by its code. */
  protocolErrors: Record<string, number>;
  /** Welcomed connections that ended without our asking. */
  lost: number;
}

export interface DialerOptions {
  endpoints: readonly Endpoint[];
  settings: ConnectionSettings;
  events: ConnectionEvents;
  onConnected: (conn: LinkConn) => void;
  backoffStartMs: number;
  backoffMaxMs: number;
  configRetryMs: number;
  log: Logger;
  /** Default: the real clock. */
  clock?: Clock;
  /** Default: a real LinkConnection (TCP/TLS). */
  connect?: ConnectionFactory;
  /** Counters shared with other dial loops (one per stripe); default: its own. */
  stats?: DialStats;
  /** Index into the address list of the first dial (stripes start on different addresses). */
  firstEndpoint?: number;
  /**
   * Step through the address list per dial (default 1). Stripes step by their count, so with a
   * list of pod addresses (discovery direct) stripe i keeps to addresses i, i+N, ... and the
   * stripes do not walk into each other's pods at every switch.
   */
  stride?: number;
  /** Connection ids come from here (unique across dial loops); default: its own counter. */
  nextId?: () => number;
}

export function newDialStats(): DialStats {
  return {
    connects: 0,
    welcomes: 0,
    reconnects: 0,
    connectFailures: {},
    rejects: {},
    protocolErrors: {},
    lost: 0,
  };
}

export class Dialer {
  readonly stats: DialStats;
  dialing = false;
  private endpoints: readonly Endpoint[];
  private next = 0;
  private ids = 0;
  private recovering = false;
  private youngDeaths = 0;
  private lastYoungDeath = 0;
  private current: LinkConn | null = null;
  private closed = false;
  private readonly sleeps = new Set<{ timer: TimerHandle; resolve: () => void }>();
  private readonly clock: Clock;
  private readonly connect: ConnectionFactory;
  private readonly first: number;
  private readonly stride: number;

  constructor(private readonly o: DialerOptions) {
    this.endpoints = o.endpoints;
    this.stats = o.stats ?? newDialStats();
    this.clock = o.clock ?? realClock;
    this.connect = o.connect ?? openLinkConnection;
    this.first = o.firstEndpoint ?? 0;
    this.stride = o.stride ?? 1;
    this.next = this.first;
  }

  setEndpoints(endpoints: readonly Endpoint[]): void {
    this.endpoints = [...endpoints];
    this.next = this.first;
  }

  /** True when `e` is in the current address list. */
  knows(e: Endpoint): boolean {
    return this.endpoints.some((x) => x.host === e.host && x.port === e.port);
  }

  /** Starts the loop unless one is running; it ends with a Welcome (onConnected) or close(). */
  dial(): void {
    if (this.dialing || this.closed) return;
    this.dialing = true;
    if (this.clock.now() - this.lastYoungDeath > YOUNG_DEATHS_FORGOTTEN_MS) this.youngDeaths = 0;
    const k = this.youngDeaths;
    backOff(() => this.attempt(), {
      numOfAttempts: Number.POSITIVE_INFINITY,
      jitter: 'full',
      timeMultiple: 2,
      startingDelay: Math.min(this.o.backoffMaxMs, this.o.backoffStartMs * 2 ** Math.max(0, k - 1)),
      maxDelay: this.o.backoffMaxMs,
      delayFirstAttempt: k > 0,
      retry: (err) => this.retry(err),
    }).then(
      (conn) => {
        this.dialing = false;
        this.recovering = false;
        this.o.onConnected(conn);
      },
      () => {
        this.dialing = false; // closed
      },
    );
  }

  /** A placed connection ended; `unexpected` unless we retired or closed it. */
  connectionEnded(conn: LinkConn, unexpected: boolean, err: Error | undefined): void {
    if (isLinkProtocolError(err)) bump(this.stats.protocolErrors, err.code);
    if (!unexpected) return;
    this.stats.lost++;
    this.recovering = true;
    if (this.clock.now() - conn.welcomedAt < HEALTHY_AFTER_MS) {
      this.youngDeaths++;
      this.lastYoungDeath = this.clock.now();
    } else {
      this.youngDeaths = 0;
    }
  }

  /** Stops dialing: cancels waits and the connection being opened. */
  close(): void {
    this.closed = true;
    for (const s of this.sleeps) {
      this.clock.clearTimeout(s.timer);
      s.resolve();
    }
    this.sleeps.clear();
    this.current?.close('agent shutting down');
  }

  private async attempt(): Promise<LinkConn> {
    if (this.closed) throw new AgentError(AgentErrorCode.INVALID_STATE, 'link client closed');
    const endpoint = this.endpoints[this.next % this.endpoints.length]!;
    this.next += this.stride;
    this.stats.connects++;
    if (this.recovering) this.stats.reconnects++;
    const id = this.o.nextId?.() ?? ++this.ids;
    const conn = this.connect(id, endpoint, this.o.settings, this.o.events);
    this.current = conn;
    try {
      await conn.opened;
      this.stats.welcomes++;
      return conn;
    } finally {
      this.current = null;
    }
  }

  /** After a failed attempt: count, log, wait what the failure asks for; false ends the loop. */
  private async retry(err: unknown): Promise<boolean> {
    if (this.closed) return false;
    this.recovering = true;
    const code = (err as { code?: unknown })?.code;
    bump(this.stats.connectFailures, typeof code === 'string' ? code : 'unknown');
    if (err instanceof RejectedError) {
      bump(this.stats.rejects, err.rejectName);
      if (isTransientReject(err.rejectCode)) {
        this.o.log.warn({ err, retryAfterMs: err.retryAfterMs }, 'link connection refused; retrying');
        if (err.retryAfterMs > 0) await this.sleep(err.retryAfterMs);
      } else {
        // A configuration problem: no reconnect will fix it before an operator does.
        this.o.log.error(
          { err, supportedVersions: err.supportedVersions, retryInMs: this.o.configRetryMs },
          `enricher rejects this agent (${err.rejectName}): fix the configuration; retrying slowly`,
        );
        await this.sleep(this.o.configRetryMs);
      }
    } else {
      if (isLinkProtocolError(err)) bump(this.stats.protocolErrors, err.code);
      this.o.log.warn({ err }, 'link connection failed; retrying with backoff');
    }
    return !this.closed;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry: { timer: TimerHandle; resolve: () => void } = { timer: null, resolve };
      entry.timer = this.clock.setTimeout(() => {
        this.sleeps.delete(entry);
        resolve();
      }, ms);
      this.sleeps.add(entry);
    });
  }
}
