// The link client: per enricher address an active connection (carries new batches) and a
// standby (handshaken, idle, the immediate fail-over target), re-opened every
// --switch-interval ± jitter so that new enricher pods get traffic (kube-proxy picks a pod
// per new connection). Make-before-break: the new connection becomes active only after its
// Welcome; the old active becomes the standby and keeps receiving acks for its window; the
// old standby retires (Goodbye once its own window is acknowledged).
//
// Connections are opened one at a time by the dial loop (dialer.ts: exponential backoff,
// full jitter). A connection that ends, whichever way, hands its unacknowledged batches
// back to the buffer's front, and they go out again on the active connection.
//
// Control flows one way: the buffer tells the client that something is sendable; the
// client takes batches, sends them, and itself drops (and logs) a batch no enricher can
// take. It keeps the smallest max_frame_bytes any Welcome agreed, which the batcher reads.

import type { Logger } from '../../common/log';
import { type Hello, MAX_LINK_FRAME, makeHello } from '../../proto/link';
import type { BatchBuffer, OutBatch } from '../buffer';
import type { Endpoint, TlsSettings } from '../options';
import type { ConnectionEvents, LinkConnection } from './connection';
import { Dialer, type DialStats } from './dialer';

/** The client's own counters; only the client writes them. */
export interface TrafficStats {
  switches: number;
  drains: number;
  batchesSent: number;
  batchesResent: number;
  batchesAcked: number;
  recordsAcked: number;
  bytesAcked: number;
}

/** Everything the link counts, read by metrics on scrape: the dial loop's and the client's. */
export type LinkStats = Readonly<DialStats & TrafficStats>;

/** One read-only record over counters that stay written by their owners. */
function statsView(...parts: readonly object[]): LinkStats {
  const view = {};
  for (const part of parts) {
    for (const key of Object.keys(part)) {
      Object.defineProperty(view, key, {
        enumerable: true,
        get: () => (part as Record<string, unknown>)[key],
      });
    }
  }
  return view as LinkStats;
}

export interface LinkClientOptions {
  endpoints: Endpoint[];
  agentId: string;
  incarnation: string;
  authToken?: string | Buffer;
  tls?: TlsSettings;
  maxInFlight: number;
  handshakeTimeoutMs: number;
  switchIntervalMs: number;
  switchJitter: number;
  retireTimeoutMs: number;
  backoffStartMs: number;
  backoffMaxMs: number;
  configRetryMs: number;
  /** Where batches come from; the client registers itself as its sender. */
  buffer: BatchBuffer;
  log: Logger;
}

export type Role = 'active' | 'standby' | 'connecting' | 'retiring';

export class LinkClient implements ConnectionEvents {
  readonly stats: LinkStats;
  /** Told every ack latency in seconds (the metrics histogram). */
  onAckLatency: ((seconds: number) => void) | null = null;
  active: LinkConnection | null = null;
  standby: LinkConnection | null = null;
  readonly retiring = new Set<LinkConnection>();
  private readonly dialer: Dialer;
  private readonly hello: Hello;
  private switchPending = false;
  private switchTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private started = false;
  private agreedFrameBytes = MAX_LINK_FRAME;
  private readonly traffic: TrafficStats = {
    switches: 0,
    drains: 0,
    batchesSent: 0,
    batchesResent: 0,
    batchesAcked: 0,
    recordsAcked: 0,
    bytesAcked: 0,
  };

  constructor(private readonly o: LinkClientOptions) {
    this.hello = makeHello({ agentId: o.agentId, incarnation: o.incarnation, authToken: o.authToken });
    this.dialer = new Dialer({
      ...o,
      settings: {
        hello: this.hello,
        handshakeTimeoutMs: o.handshakeTimeoutMs,
        maxInFlight: o.maxInFlight,
        tls: o.tls,
        log: o.log,
      },
      events: this,
      onConnected: (conn) => this.place(conn),
    });
    this.stats = statsView(this.dialer.stats, this.traffic);
    o.buffer.setSender(() => this.pump());
  }

  /**
   * The smallest max_frame_bytes any enricher welcomed us with so far: new batches are cut
   * to fit it (the batcher reads it before every record).
   */
  get maxFrameBytes(): number {
    return this.agreedFrameBytes;
  }

  /** Opens the first connection (then the standby) and starts the switch timer. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.scheduleSwitch();
    this.ensure();
  }

  /**
   * New address list (discovery): used by the next connections. A standby on a vanished
   * address retires; a vanished active is replaced now (make-before-break).
   */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    if (endpoints.length === 0 || this.closing) return;
    this.dialer.setEndpoints(endpoints);
    if (this.standby !== null && !this.dialer.knows(this.standby.endpoint)) {
      this.retire(this.standby, this.o.retireTimeoutMs, 'address withdrawn');
      this.standby = null;
    }
    if (this.active !== null && !this.dialer.knows(this.active.endpoint)) this.switchNow();
    else this.ensure();
  }

  /** Re-opens a connection and moves traffic to it now (make-before-break), e.g. new pods. */
  switchNow(): void {
    if (this.closing) return;
    this.scheduleSwitch();
    if (this.active !== null) this.switchPending = true;
    this.ensure();
  }

  /** Connections by role, for metrics. */
  roles(): Record<Role, number> {
    return {
      active: this.active === null ? 0 : 1,
      standby: this.standby === null ? 0 : 1,
      connecting: this.dialer.dialing ? 1 : 0,
      retiring: this.retiring.size,
    };
  }

  /** Batches sent and not yet acknowledged, on every connection. */
  get inFlight(): number {
    let n = (this.active?.window.size ?? 0) + (this.standby?.window.size ?? 0);
    for (const c of this.retiring) n += c.window.size;
    return n;
  }

  /** Sends queued batches on the active connection while its window has room. */
  pump(): void {
    const conn = this.active;
    if (conn === null || this.closing) return;
    const buffer = this.o.buffer;
    while (conn.canSend) {
      const b = buffer.take();
      if (b === null) break;
      if (b.size - 4 > conn.maxFrameBytes) {
        // Larger than this enricher takes: it cannot go anywhere.
        this.o.log.error(
          { seq: b.seq, bytes: b.size, maxFrameBytes: conn.maxFrameBytes },
          'batch larger than the enricher takes; dropped',
        );
        buffer.dropTaken(b, 'oversize');
        continue;
      }
      conn.send(b);
      this.traffic.batchesSent++;
      if (b.sends > 1) this.traffic.batchesResent++;
    }
  }

  /**
   * Shutdown: Goodbye on every connection, wait (bounded by the close linger) until all are
   * closed; their unacknowledged batches are back in the buffer afterwards.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.switchTimer !== null) clearTimeout(this.switchTimer);
    this.switchTimer = null;
    this.dialer.close();
    const all = [this.active, this.standby, ...this.retiring].filter((c) => c !== null);
    for (const c of all) c.close('agent shutting down');
    await Promise.all(all.map((c) => c.closed));
  }

  onAck(conn: LinkConnection, b: OutBatch): void {
    const seconds = (performance.now() - b.sentAt) / 1000;
    this.traffic.batchesAcked++;
    this.traffic.recordsAcked += b.records;
    this.traffic.bytesAcked += b.size;
    this.o.buffer.acked(b);
    this.onAckLatency?.(seconds);
    if (conn === this.active) this.pump();
  }

  onDrain(conn: LinkConnection, deadlineMs: number, reason: string): void {
    this.traffic.drains++;
    this.o.log.info(
      { link: conn.id, deadlineMs, reason, unacked: conn.window.size },
      'enricher asked us to drain this connection',
    );
    if (conn === this.active) {
      this.active = this.standby;
      this.standby = null;
    } else if (conn === this.standby) {
      this.standby = null;
    }
    this.retire(conn, deadlineMs > 0 ? deadlineMs : this.o.retireTimeoutMs, `drained: ${reason}`);
    this.ensure();
    this.pump();
  }

  onClosed(conn: LinkConnection, unacked: OutBatch[], reason: string, err: Error | undefined): void {
    const placed = conn === this.active || conn === this.standby || this.retiring.has(conn);
    if (!placed) return; // a dial that failed: the dial loop deals with it
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
    if (role === 'retiring' || this.closing) this.o.log.info(fields, 'link connection closed');
    else this.o.log.warn(fields, 'link connection lost');
    this.o.buffer.requeue(unacked);
    if (this.closing) return;
    this.ensure();
    this.pump();
  }

  private place(conn: LinkConnection): void {
    if (this.closing || conn.state !== 'open') {
      if (conn.state === 'open') conn.close('not needed');
      this.ensure();
      return;
    }
    this.agreedFrameBytes = Math.min(this.agreedFrameBytes, conn.maxFrameBytes);
    const fields = { link: conn.id, enricherId: conn.agreed!.enricherId, endpoint: conn.endpoint };
    if (this.active === null) {
      this.active = conn;
      this.switchPending = false;
      this.o.log.info(fields, 'link connection active');
    } else if (this.switchPending) {
      this.switchPending = false;
      if (this.standby !== null) this.retire(this.standby, this.o.retireTimeoutMs, 'switched away');
      const previous = this.active;
      this.active = conn;
      this.traffic.switches++;
      this.o.log.info({ ...fields, previous: previous.id }, 'switched to a new link connection');
      // The old active keeps receiving acks for its window, as the standby if its address is still ours.
      if (this.dialer.knows(previous.endpoint)) this.standby = previous;
      else {
        this.standby = null;
        this.retire(previous, this.o.retireTimeoutMs, 'address withdrawn');
      }
    } else if (this.standby === null) {
      this.standby = conn;
      this.o.log.info(fields, 'link connection standing by');
    } else {
      conn.close('not needed');
    }
    this.ensure();
    this.pump();
  }

  private retire(conn: LinkConnection, deadlineMs: number, why: string): void {
    this.retiring.add(conn);
    conn.retire(deadlineMs, why);
  }

  /** Starts the dial loop when a role is empty or a switch is due (one dial at a time). */
  private ensure(): void {
    if (this.closing || !this.started) return;
    if (this.active === null || this.standby === null || this.switchPending) this.dialer.dial();
  }

  private scheduleSwitch(): void {
    if (this.switchTimer !== null) clearTimeout(this.switchTimer);
    this.switchTimer = null;
    const base = this.o.switchIntervalMs;
    if (base === 0 || this.closing) return;
    const delay = base * (1 + this.o.switchJitter * (2 * Math.random() - 1));
    this.switchTimer = setTimeout(() => {
      this.switchTimer = null;
      if (this.active !== null) this.switchPending = true;
      this.scheduleSwitch();
      this.ensure();
    }, delay);
    this.switchTimer.unref();
  }
}
