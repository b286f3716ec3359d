// One stripe of the link: an active connection (carries batches), a standby (handshaken,
// idle, the immediate fail-over target) and the retiring ones, with its own dial loop and
// its own switch timer (--switch-interval ± jitter, drawn independently per stripe).
// Make-before-break: a new connection becomes active only after its Welcome; the old active
// becomes the standby and keeps receiving acks for its window; the old standby retires
// (Goodbye once its own window is acknowledged).
//
// With one stripe (the default) this is exactly the link as it was before striping. With
// more, the client (client.ts) spreads batches over the stripes' active connections and
// tells a stripe when a new connection landed on an enricher another stripe already
// carries traffic to: the stripe closes it and dials again (bounded), so N stripes through
// one ClusterIP reach N pods more often than a random pick would (3 of 3 distinct: 22 %).
// When every re-dial of a round lands on a used pod too (3 stripes over 3 pods: the third
// stripe's four picks all collide 20 % of the time), the stripe carries on where it landed and
// tries another round after 2 s, 4 s, 8 s, 16 s (COLLISION_ROUNDS) instead of waiting for its
// next switch; its switch timer starts the rounds afresh.
//
// Saturated switch (--saturated-switch F, off by default: F = 1): the stripe samples its active
// connection's unacknowledged window SATURATION_SAMPLES times per switch interval; when it was
// nearly full (SATURATED_OCCUPANCY) in SATURATED_SHARE of the samples over the first F of the
// interval, the pod is not keeping up with this agent and the stripe switches then instead of
// at the timer. Agents on a saturated pod therefore move up to 1/F times as often and agents
// on a pod with room keep their interval: after a scale-up, load reaches the new pods sooner
// (issue 7: their share over the first two intervals). The pick is still the Service's. Not
// while a connection of this stripe is still retiring (a window an earlier switch left behind
// is unacknowledged): when every pod is saturated, switching faster would only queue more
// windows on pods that cannot keep up, until acks take longer than the retire deadline and
// windows are re-sent. Off by default: in the autoscale bed (8 agents, 0.1-CPU pods) the new
// pods' share over their first two intervals stayed as noisy as without it (37-93 % of fair)
// and re-sent batches rose from none to up to 700 a run; an agent whose backlog alone
// saturates a new pod leaves it too. The fleet simulator does show newcomers at their share
// sooner with it (unit/agent-link-simclock).
//
// Joining pods (discovery in service mode, agent/discovery/wiring.ts): when pods join the
// Service, a share of the stripes (the joined pods' share of the ready ones) switch toward
// them: the new connection must land on one of the joined pods (by the enricher id in its
// Welcome, which is the pod name) or is dialed again, every SEEK_REDIAL_DELAY_MS, for at most
// SEEK_WITHIN_MS, after which the stripe carries on where it landed. Re-dialing rather than
// waiting a fixed time covers kube-proxy writing its rules after the agent saw the
// EndpointSlice: until it has, every dial lands on an old pod. The other stripes stay where
// they are, so a scale-up moves about the newcomers' share of traffic and no more.
//
// A connection that ends, whichever way, hands its unacknowledged batches back to the
// buffer's front; they go out again on whichever stripe has room.

import type { Clock, TimerHandle } from '../../common/clock';
import type { Logger } from '../../common/log';
import type { OutBatch } from '../buffer';
import type { Endpoint } from '../options';
import { SATURATED_OCCUPANCY, SATURATED_SHARE } from './auto-stripes';
import type { ConnectionEvents, ConnectionFactory, ConnectionSettings, LinkConn } from './connection';
import { Dialer, type DialStats } from './dialer';

/** A new connection that lands on an enricher another stripe uses is re-dialed at most this often in a row. */
export const MAX_COLLISION_REDIALS = 3;
/** Rounds of re-dials after the first one's all collided, per switch (delays doubling from the first). */
export const COLLISION_ROUNDS = 4;
export const COLLISION_ROUND_DELAY_MS = 2_000;
/** Seeking a joined pod: pause between dials that landed elsewhere, and how long to keep trying. */
export const SEEK_REDIAL_DELAY_MS = 250;
export const SEEK_WITHIN_MS = 10_000;
/** Samples of the active window per switch interval (saturated switch). */
export const SATURATION_SAMPLES = 10;

/** Per-stripe counters (metrics label: stripe index). Kept by the client across stripe lifetimes. */
export interface StripeStats {
  switches: number;
  /** Of those, switches made early because the window stayed full. */
  saturatedSwitches: number;
  /** Of those, switches toward pods that joined the Service (discovery). */
  joinSwitches: number;
  /** New connections that landed on an enricher another stripe's active connection uses. */
  collisions: number;
  batchesSent: number;
  batchesAcked: number;
  recordsAcked: number;
  /** Sum of ack latencies (seconds) and their count: the mean for `auto` and dashboards. */
  ackSeconds: number;
}

export function newStripeStats(): StripeStats {
  return {
    switches: 0,
    saturatedSwitches: 0,
    joinSwitches: 0,
    collisions: 0,
    batchesSent: 0,
    batchesAcked: 0,
    recordsAcked: 0,
    ackSeconds: 0,
  };
}

/** What a stripe needs from the client that owns it. */
export interface StripeHost {
  readonly closing: boolean;
  /** True when `enricherId` carries traffic of another stripe (its active connection). */
  usedByOther(stripe: Stripe, enricherId: string): boolean;
  /** A Welcome agreed this frame limit. */
  agreedFrameBytes(bytes: number): void;
  onAck(stripe: Stripe, conn: LinkConn, b: OutBatch): void;
  onDrain(): void;
  requeue(unacked: OutBatch[]): void;
  pump(): void;
  /** A stripe being removed has closed its last connection. */
  gone(stripe: Stripe): void;
}

export interface StripeOptions {
  index: number;
  /** Stripes at this stripe's creation (its dial loop steps through addresses by it). */
  stripes: number;
  endpoints: readonly Endpoint[];
  settings: ConnectionSettings;
  switchIntervalMs: number;
  switchJitter: number;
  /** Share of a switch interval a full window may last before the stripe switches (1: never early). */
  saturatedSwitch: number;
  retireTimeoutMs: number;
  backoffStartMs: number;
  backoffMaxMs: number;
  configRetryMs: number;
  clock: Clock;
  connect?: ConnectionFactory;
  dialStats: DialStats;
  stats: StripeStats;
  nextId: () => number;
  random: () => number;
  log: Logger;
  host: StripeHost;
}

export class Stripe implements ConnectionEvents {
  active: LinkConn | null = null;
  standby: LinkConn | null = null;
  readonly retiring = new Set<LinkConn>();
  readonly dialer: Dialer;
  readonly index: number;
  readonly stats: StripeStats;
  private switchPending = false;
  private switchTimer: TimerHandle | null = null;
  /** Samples of the active window since the last switch (saturated switch). */
  private saturationTimer: TimerHandle | null = null;
  private started = false;
  /** Being removed (auto shrinks N): no new connections, the rest retire. */
  private leaving = false;
  private redials = 0;
  /** Rounds of collision re-dials since the last switch; the timer of the next one. */
  private collisionRounds = 0;
  private collisionTimer: TimerHandle | null = null;
  /** The enricher that drained our active connection: the next carrier should be another. */
  private avoid: string | null = null;
  /** Pods that joined: the next carrier should be one of them, until `until` (clock ms). */
  private seek: { ids: ReadonlySet<string>; until: number } | null = null;
  private seekTimer: TimerHandle | null = null;
  private readonly log: Logger;

  constructor(private readonly o: StripeOptions) {
    this.index = o.index;
    this.stats = o.stats;
    this.log = o.index === 0 ? o.log : o.log.child({ stripe: o.index });
    this.dialer = new Dialer({
      endpoints: o.endpoints,
      settings: o.settings,
      backoffStartMs: o.backoffStartMs,
      backoffMaxMs: o.backoffMaxMs,
      configRetryMs: o.configRetryMs,
      log: this.log,
      clock: o.clock,
      connect: o.connect,
      stats: o.dialStats,
      firstEndpoint: o.index,
      stride: o.stripes,
      nextId: o.nextId,
      events: this,
      onConnected: (conn) => this.place(conn),
    });
  }

  private get closing(): boolean {
    return this.o.host.closing || this.leaving;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.scheduleSwitch();
    this.ensure();
  }

  setEndpoints(endpoints: readonly Endpoint[]): void {
    if (this.closing) return;
    this.dialer.setEndpoints(endpoints);
    if (this.standby !== null && !this.dialer.knows(this.standby.endpoint)) {
      this.retire(this.standby, this.o.retireTimeoutMs, 'address withdrawn');
      this.standby = null;
    }
    if (this.active !== null && !this.dialer.knows(this.active.endpoint)) this.switchNow();
    else this.ensure();
  }

  switchNow(): void {
    if (this.closing) return;
    this.scheduleSwitch();
    if (this.active !== null) this.switchPending = true;
    this.ensure();
  }

  /** Pods joined the Service: move this stripe to one of them (`ids`: their enricher ids). */
  switchToward(ids: ReadonlySet<string>): void {
    if (this.closing || this.active === null) return;
    if (ids.has(this.active.agreed?.enricherId ?? '')) return;
    this.seek = { ids, until: this.o.clock.now() + SEEK_WITHIN_MS };
    this.switchNow();
  }

  get connections(): LinkConn[] {
    return [this.active, this.standby, ...this.retiring].filter((c) => c !== null);
  }

  /** Shutdown: stops dialing and says Goodbye on every connection. */
  close(): Promise<void>[] {
    this.stopAll();
    this.dialer.close();
    const all = this.connections;
    for (const c of all) c.close('agent shutting down');
    return all.map((c) => c.closed);
  }

  /**
   * auto shrinks N: this stripe takes no new batches; its connections retire (their windows
   * are acknowledged or re-sent elsewhere), then the host forgets it.
   */
  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.stopAll();
    this.dialer.close();
    if (this.active !== null) this.retire(this.active, this.o.retireTimeoutMs, 'fewer stripes');
    if (this.standby !== null) this.retire(this.standby, this.o.retireTimeoutMs, 'fewer stripes');
    this.active = null;
    this.standby = null;
    if (this.retiring.size === 0) this.o.host.gone(this);
  }

  onAck(conn: LinkConn, b: OutBatch): void {
    this.o.host.onAck(this, conn, b);
  }

  /**
   * A Drain (SIGTERM or overload) is taken like a switch: the connection carries no new
   * batches and retires once its window is acknowledged; the standby, already handshaken,
   * carries on at once (make-before-break) until the next new connection takes over; one
   * that lands on the enricher that asked us to move is dialed again (bounded, as a stripe
   * collision).
   */
  onDrain(conn: LinkConn, deadlineMs: number, reason: string): void {
    this.o.host.onDrain();
    this.log.info(
      { link: conn.id, deadlineMs, reason, unacked: conn.window.size },
      'enricher asked us to drain this connection',
    );
    const from = conn.agreed?.enricherId ?? '';
    if (conn === this.active) {
      // The standby was placed before the last scale-up, if any: it only bridges until the
      // next new connection (kube-proxy's pick over today's pods) takes the traffic.
      const next = this.standby;
      this.active = next;
      this.standby = null;
      if (next !== null) this.switchPending = true;
      this.avoid = from === '' ? null : from;
      this.redials = 0;
    } else if (conn === this.standby) {
      this.standby = null;
    }
    this.retire(conn, deadlineMs > 0 ? deadlineMs : this.o.retireTimeoutMs, `drained: ${reason}`);
    this.ensure();
    this.o.host.pump();
  }

  onClosed(conn: LinkConn, unacked: OutBatch[], reason: string, err: Error | undefined): void {
    const placed = conn === this.active || conn === this.standby || this.retiring.has(conn);
    if (!placed) return; // a dial that failed (or a collision we closed): the dial loop deals with it
    const role = conn === this.active ? 'active' : conn === this.standby ? 'standby' : 'retiring';
    if (conn === this.active) {
      this.active = this.standby;
      this.standby = null;
    } else if (conn === this.standby) {
      this.standby = null;
    }
    this.retiring.delete(conn);
    this.dialer.connectionEnded(conn, role !== 'retiring' && !this.closing, err);
    const fields = { link: conn.id, role, reason, unacked: unacked.length, err };
    if (role === 'retiring' || this.closing) this.log.info(fields, 'link connection closed');
    else this.log.warn(fields, 'link connection lost');
    this.o.host.requeue(unacked);
    if (this.leaving && this.retiring.size === 0) this.o.host.gone(this);
    if (this.o.host.closing) return;
    this.ensure();
    this.o.host.pump();
  }

  private place(conn: LinkConn): void {
    if (this.closing || conn.state !== 'open') {
      if (conn.state === 'open') conn.close('not needed');
      this.ensure();
      return;
    }
    this.o.host.agreedFrameBytes(conn.maxFrameBytes);
    const enricherId = conn.agreed!.enricherId;
    // The negotiated protocol version is logged with every connection taken into use (upgrades).
    const fields = { link: conn.id, enricherId, endpoint: conn.endpoint, version: conn.agreed!.version };
    const willCarry = this.active === null || this.switchPending;
    const collided = willCarry && enricherId !== '' && this.o.host.usedByOther(this, enricherId);
    if (collided) {
      this.stats.collisions++;
      if (this.redials < MAX_COLLISION_REDIALS) {
        this.redials++;
        this.log.info(
          { ...fields, redial: this.redials },
          'enricher already used by another stripe; re-dialing',
        );
        conn.close('enricher already used by another stripe');
        this.ensure();
        return;
      }
    }
    if (willCarry && this.avoid !== null && enricherId === this.avoid) {
      if (this.redials < MAX_COLLISION_REDIALS) {
        this.redials++;
        this.log.info(
          { ...fields, redial: this.redials },
          'landed on the enricher that drained us; re-dialing',
        );
        conn.close('enricher asked us to move');
        this.ensure();
        return;
      }
    }
    if (willCarry && this.seek !== null) {
      if (this.seek.ids.has(enricherId)) {
        this.stats.joinSwitches++;
        this.seek = null;
      } else if (this.active !== null && this.o.clock.now() < this.seek.until) {
        conn.close('not one of the pods that joined');
        if (this.seekTimer === null) {
          this.seekTimer = this.o.clock.setTimeout(
            () => {
              this.seekTimer = null;
              this.ensure();
            },
            SEEK_REDIAL_DELAY_MS,
            true,
          );
        }
        return;
      } else {
        this.log.info(fields, 'no dial reached a pod that joined; staying where it landed');
        this.seek = null;
      }
    }
    this.redials = 0;
    if (willCarry) this.avoid = null;
    if (collided) this.scheduleCollisionRound();
    if (this.active === null) {
      this.active = conn;
      this.switchPending = false;
      this.log.info(fields, 'link connection active');
    } else if (this.switchPending) {
      this.switchPending = false;
      if (this.standby !== null) this.retire(this.standby, this.o.retireTimeoutMs, 'switched away');
      const previous = this.active;
      this.active = conn;
      this.stats.switches++;
      this.log.info({ ...fields, previous: previous.id }, 'switched to a new link connection');
      // The old active keeps receiving acks for its window, as the standby if its address is still ours.
      if (this.dialer.knows(previous.endpoint)) this.standby = previous;
      else {
        this.standby = null;
        this.retire(previous, this.o.retireTimeoutMs, 'address withdrawn');
      }
    } else if (this.standby === null) {
      this.standby = conn;
      this.log.info(fields, 'link connection standing by');
    } else {
      conn.close('not needed');
    }
    this.ensure();
    this.o.host.pump();
  }

  private retire(conn: LinkConn, deadlineMs: number, why: string): void {
    this.retiring.add(conn);
    conn.retire(deadlineMs, why);
  }

  /** Starts the dial loop when a role is empty or a switch is due (one dial at a time). */
  private ensure(): void {
    if (this.closing || !this.started) return;
    if (this.active === null || this.standby === null || this.switchPending) this.dialer.dial();
  }

  private stopTimer(): void {
    if (this.switchTimer !== null) this.o.clock.clearTimeout(this.switchTimer);
    this.switchTimer = null;
    if (this.saturationTimer !== null) this.o.clock.clearTimeout(this.saturationTimer);
    this.saturationTimer = null;
    this.stopCollisionRound();
  }

  /** Timers that only shutdown stops (a switch restarts the others). */
  private stopAll(): void {
    this.stopTimer();
    this.stopSeek();
  }

  private stopSeek(): void {
    if (this.seekTimer !== null) this.o.clock.clearTimeout(this.seekTimer);
    this.seekTimer = null;
  }

  private stopCollisionRound(): void {
    if (this.collisionTimer !== null) this.o.clock.clearTimeout(this.collisionTimer);
    this.collisionTimer = null;
  }

  /** The active connection shares its enricher with another stripe: try again later, bounded. */
  private scheduleCollisionRound(): void {
    if (this.collisionTimer !== null || this.collisionRounds >= COLLISION_ROUNDS || this.closing) return;
    const delay = COLLISION_ROUND_DELAY_MS * 2 ** this.collisionRounds;
    this.collisionRounds++;
    this.collisionTimer = this.o.clock.setTimeout(
      () => {
        this.collisionTimer = null;
        const id = this.active?.agreed?.enricherId ?? '';
        // Still sharing (the other stripe may have moved meanwhile): a new round of re-dials.
        if (id === '' || !this.o.host.usedByOther(this, id)) return;
        this.switchPending = true;
        this.ensure();
      },
      delay,
      true,
    );
  }

  private scheduleSwitch(): void {
    this.stopTimer();
    const base = this.o.switchIntervalMs;
    if (base === 0 || this.closing) return;
    const delay = base * (1 + this.o.switchJitter * (2 * this.o.random() - 1));
    this.switchTimer = this.o.clock.setTimeout(
      () => {
        this.switchTimer = null;
        if (this.active !== null) this.switchPending = true;
        this.collisionRounds = 0;
        this.scheduleSwitch();
        this.ensure();
      },
      delay,
      true,
    );
    this.watchSaturation(delay);
  }

  /** Whether the active connection's window is nearly full now. */
  private saturated(): boolean {
    const c = this.active;
    if (c === null) return false;
    const window = c.agreed?.maxInFlightBatches ?? this.o.settings.maxInFlight;
    return c.inFlight >= SATURATED_OCCUPANCY * window;
  }

  /** Samples the window over the first saturatedSwitch of this interval; switches early if it stayed full. */
  private watchSaturation(interval: number): void {
    const fraction = this.o.saturatedSwitch;
    if (fraction >= 1) return;
    const every = interval / SATURATION_SAMPLES;
    const samples = Math.max(1, Math.round(fraction * SATURATION_SAMPLES));
    let taken = 0;
    let full = 0;
    const sample = () => {
      this.saturationTimer = null;
      taken++;
      if (this.saturated()) full++;
      if (taken < samples) {
        this.saturationTimer = this.o.clock.setTimeout(sample, every, true);
        return;
      }
      if (full < SATURATED_SHARE * samples || this.switchPending || this.closing) return;
      // A window an earlier switch left on a pod is still unacknowledged: pods are queueing
      // (every one saturated, or this stripe's very slow), and another switch would only add
      // a window in flight. Measured in the autoscale bed without this check: 1,100-4,500
      // batches re-sent per run (windows with no ack for 20 s), against 0-703 with it.
      if (this.retiring.size > 0) return;
      this.stats.saturatedSwitches++;
      this.log.info({ full, samples, conn: this.active?.id }, 'window stayed full: switching early');
      this.switchNow();
    };
    this.saturationTimer = this.o.clock.setTimeout(sample, every, true);
  }
}
