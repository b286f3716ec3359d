// The link client: batches from the buffer go out over N stripes (stripe.ts), each an
// active connection plus a standby with its own switch timer, so that new enricher pods
// get traffic (kube-proxy picks a pod per new connection) and a heavy agent can use more
// than one pod at a time (--active-connections N|auto). N = 1 (the default) is the link
// as it was before striping.
//
// Each send goes to the active connection with the most room (ties round-robin); acks and re-sends are per
// connection, record ids are unchanged (seqs come from the batcher, not from a stripe).
// A connection that ends hands its unacknowledged batches back to the buffer's front; they
// go out again on any stripe (at-least-once). With `auto`, a period timer samples the
// stripes and the buffer and StripeController (auto-stripes.ts) decides N.
//
// Control flows one way: the buffer tells the client that something is sendable; the
// client takes batches, sends them, and itself drops (and logs) a batch no enricher can
// take. It keeps the smallest max_frame_bytes any Welcome agreed, which the batcher reads.

import { type Clock, realClock, type TimerHandle } from '../../common/clock';
import type { Logger } from '../../common/log';
import { type Hello, MAX_LINK_FRAME, makeHello } from '../../proto/link';
import type { BatchBuffer, OutBatch } from '../buffer';
import type { Endpoint, TlsSettings } from '../options';
import { SATURATED_OCCUPANCY, StripeController, type StripeEvidence } from './auto-stripes';
import type { ConnectionFactory, ConnectionSettings, LinkConn } from './connection';
import { type DialStats, newDialStats } from './dialer';
import { newStripeStats, Stripe, type StripeHost, type StripeStats } from './stripe';

/** The client's own counters; only the client writes them. */
export interface TrafficStats {
  switches: number;
  /** Switches made early because the active window stayed full (--saturated-switch). */
  saturatedSwitches: number;
  /** Switches toward pods that joined the Service (discovery, service mode). */
  joinSwitches: number;
  drains: number;
  batchesSent: number;
  batchesResent: number;
  batchesAcked: number;
  recordsAcked: number;
  bytesAcked: number;
  /** New connections that landed on an enricher another stripe uses (re-dialed, bounded). */
  collisions: number;
  /** Stripe count changes made by `auto`. */
  stripeChanges: number;
}

/** Everything the link counts, read by metrics on scrape: the dial loops' and the client's. */
export type LinkStats = Readonly<DialStats & TrafficStats>;

/** `auto` samples the stripes this many times per period. */
const AUTO_SAMPLES_PER_PERIOD = 10;
/**
 * Default `auto` period: several ack round trips and a dial; short, so a heavy agent reaches
 * its stripes in seconds (shrinking takes many periods: auto-stripes.ts).
 */
export const AUTO_PERIOD_MS = 2_000;

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
  /** Stripe.ts "saturated switch": the share of an interval a full window may last; default 1 (off). */
  saturatedSwitch?: number;
  retireTimeoutMs: number;
  backoffStartMs: number;
  backoffMaxMs: number;
  configRetryMs: number;
  /** Stripes: a fixed count, or `auto` within maxActiveConnections. Default 1. */
  activeConnections?: number | 'auto';
  /** Upper bound of `auto`. Default: activeConnections when a number, else 8. */
  maxActiveConnections?: number;
  /** The `auto` decision period. */
  autoPeriodMs?: number;
  /** Where batches come from; the client registers itself as its sender. */
  buffer: BatchBuffer;
  log: Logger;
  /** Time source for switch timers, `auto` and the dial loops; default the real clock. */
  clock?: Clock;
  /** Switch jitter draws; default Math.random. */
  random?: () => number;
  /** Opens connections; default real TCP/TLS (the fleet simulator passes its own). */
  connect?: ConnectionFactory;
}

export type Role = 'active' | 'standby' | 'connecting' | 'retiring';

/** One read-only record summing the dial loops' shared counters and the client's. */
function statsView(
  dial: DialStats,
  traffic: Omit<TrafficStats, 'switches' | 'saturatedSwitches' | 'joinSwitches' | 'collisions'>,
  stripes: () => readonly StripeStats[],
): LinkStats {
  const view = {};
  for (const part of [dial, traffic] as Record<string, unknown>[]) {
    for (const key of Object.keys(part)) {
      Object.defineProperty(view, key, { enumerable: true, get: () => part[key] });
    }
  }
  for (const key of ['switches', 'saturatedSwitches', 'joinSwitches', 'collisions'] as const) {
    Object.defineProperty(view, key, {
      enumerable: true,
      get: () => stripes().reduce((n, s) => n + s[key], 0),
    });
  }
  return view as LinkStats;
}

export class LinkClient implements StripeHost {
  readonly stats: LinkStats;
  /** Told every ack latency in seconds (the metrics histogram). */
  onAckLatency: ((seconds: number) => void) | null = null;
  /** Stripes carrying traffic, index 0..N-1; leaving ones are in `leaving` until their connections close. */
  readonly stripes: Stripe[] = [];
  readonly leaving = new Set<Stripe>();
  /** Per stripe index, for metrics (bounded by maxActiveConnections). */
  readonly stripeStats: StripeStats[] = [];
  closing = false;
  private hello: Hello;
  private readonly settings: ConnectionSettings;
  private readonly dialStats = newDialStats();
  private readonly clock: Clock;
  private readonly auto: StripeController | null;
  private readonly autoPeriodMs: number;
  /** The fixed stripe count (1 with auto). */
  private readonly want: number;
  private autoTimer: TimerHandle | null = null;
  private sample = { n: 0, saturated: 0, occupancy: 0, backlogStart: 0, ackSeconds: 0, acks: 0 };
  private endpoints: readonly Endpoint[];
  private started = false;
  private ids = 0;
  /** Where the next tie-break starts (round-robin over stripes). */
  private cursor = 0;
  private agreedFrame = MAX_LINK_FRAME;
  private readonly traffic: Omit<
    TrafficStats,
    'switches' | 'saturatedSwitches' | 'joinSwitches' | 'collisions'
  > = {
    drains: 0,
    batchesSent: 0,
    batchesResent: 0,
    batchesAcked: 0,
    recordsAcked: 0,
    bytesAcked: 0,
    stripeChanges: 0,
  };

  constructor(private readonly o: LinkClientOptions) {
    this.hello = makeHello({ agentId: o.agentId, incarnation: o.incarnation, authToken: o.authToken });
    this.settings = {
      hello: this.hello,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      maxInFlight: o.maxInFlight,
      tls: o.tls,
      log: o.log,
      clock: o.clock ?? realClock,
    };
    this.clock = o.clock ?? realClock;
    this.endpoints = o.endpoints;
    const want = o.activeConnections ?? 1;
    const max = o.maxActiveConnections ?? (want === 'auto' ? 8 : want);
    this.auto = want === 'auto' ? new StripeController(max, 1) : null;
    this.autoPeriodMs = o.autoPeriodMs ?? AUTO_PERIOD_MS;
    this.want = want === 'auto' ? 1 : want;
    for (let i = 0; i < this.want; i++) this.addStripe();
    this.stats = statsView(this.dialStats, this.traffic, () => this.stripeStats);
    o.buffer.setSender(() => this.pump());
  }

  /** A rotated token (common/secret-files.ts): the Hello of new connections carries it. */
  setAuthToken(token: Buffer): void {
    this.hello = makeHello({ agentId: this.o.agentId, incarnation: this.o.incarnation, authToken: token });
    this.settings.hello = this.hello;
  }

  /** Rotated TLS material: new connections use it, open ones keep theirs. */
  setTls(tls: TlsSettings): void {
    this.settings.tls = { ...this.settings.tls, ...tls };
  }

  /**
   * The smallest max_frame_bytes any enricher welcomed us with so far: new batches are cut
   * to fit it (the batcher reads it before every record).
   */
  get maxFrameBytes(): number {
    return this.agreedFrame;
  }

  /** Stripe 0's active connection (the only one with the default single stripe). */
  get active(): LinkConn | null {
    return this.stripes[0]?.active ?? null;
  }

  get standby(): LinkConn | null {
    return this.stripes[0]?.standby ?? null;
  }

  /** Opens every stripe's first connection (then its standby) and starts the timers. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const s of this.stripes) s.start();
    if (this.auto !== null) this.scheduleAuto();
  }

  /**
   * New address list (discovery): used by the next connections. A standby on a vanished
   * address retires; a vanished active is replaced now (make-before-break).
   */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    if (endpoints.length === 0 || this.closing) return;
    this.endpoints = [...endpoints];
    for (const s of this.stripes) s.setEndpoints(endpoints);
  }

  /** Re-opens a connection per stripe and moves traffic to it now (make-before-break), e.g. new pods. */
  switchNow(): void {
    if (this.closing) return;
    for (const s of this.stripes) s.switchNow();
  }

  /**
   * Pods joined the Service (discovery, service mode; `ids`: their enricher ids, the pod
   * names): each stripe not already on one of them moves to one with probability `share` (the
   * joined pods' share of the ready pods), so about that share of traffic moves.
   */
  switchToward(ids: ReadonlySet<string>, share: number): void {
    if (this.closing) return;
    const random = this.o.random ?? Math.random;
    for (const s of this.stripes) if (random() < share) s.switchToward(ids);
  }

  /** The enricher ids the active connections are on (empty ids left out). */
  carriers(): string[] {
    return this.stripes.map((s) => s.active?.agreed?.enricherId ?? '').filter((id) => id !== '');
  }

  /** Connections by role, for metrics. */
  roles(): Record<Role, number> {
    const r: Record<Role, number> = { active: 0, standby: 0, connecting: 0, retiring: 0 };
    for (const s of [...this.stripes, ...this.leaving]) {
      if (s.active !== null) r.active++;
      if (s.standby !== null) r.standby++;
      if (s.dialer.dialing) r.connecting++;
      r.retiring += s.retiring.size;
    }
    return r;
  }

  /** Stripes carrying traffic now (N). */
  get activeConnections(): number {
    return this.stripes.length;
  }

  /** Batches sent and not yet acknowledged, on every connection. */
  get inFlight(): number {
    let n = 0;
    for (const s of [...this.stripes, ...this.leaving]) for (const c of s.connections) n += c.window.size;
    return n;
  }

  /** Sends queued batches, each on the active connection with the most room. */
  pump(): void {
    if (this.closing) return;
    const buffer = this.o.buffer;
    for (;;) {
      const conn = this.roomiest();
      if (conn === null) break;
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
      this.stripeOf(conn).batchesSent++;
      if (b.sends > 1) this.traffic.batchesResent++;
    }
  }

  /**
   * Shutdown: Goodbye on every connection, wait (bounded by the close linger) until all are
   * closed; their unacknowledged batches are back in the buffer afterwards.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.autoTimer !== null) this.clock.clearTimeout(this.autoTimer);
    this.autoTimer = null;
    const closed = [...this.stripes, ...this.leaving].flatMap((s) => s.close());
    await Promise.all(closed);
  }

  // StripeHost

  usedByOther(stripe: Stripe, enricherId: string): boolean {
    return this.stripes.some((s) => s !== stripe && s.active?.agreed?.enricherId === enricherId);
  }

  agreedFrameBytes(bytes: number): void {
    this.agreedFrame = Math.min(this.agreedFrame, bytes);
  }

  onAck(stripe: Stripe, conn: LinkConn, b: OutBatch): void {
    const seconds = (performance.now() - b.sentAt) / 1000;
    this.traffic.batchesAcked++;
    this.traffic.recordsAcked += b.records;
    this.traffic.bytesAcked += b.size;
    const s = stripe.stats;
    s.batchesAcked++;
    s.recordsAcked += b.records;
    s.ackSeconds += seconds;
    this.sample.ackSeconds += seconds;
    this.sample.acks++;
    this.o.buffer.acked(b);
    this.onAckLatency?.(seconds);
    if (conn === stripe.active) this.pump();
  }

  onDrain(): void {
    this.traffic.drains++;
  }

  requeue(unacked: OutBatch[]): void {
    this.o.buffer.requeue(unacked);
  }

  gone(stripe: Stripe): void {
    this.leaving.delete(stripe);
  }

  private addStripe(): void {
    const index = this.stripes.length;
    this.stripeStats[index] ??= newStripeStats();
    const s = new Stripe({
      ...this.o,
      index,
      stripes: this.auto === null ? this.want : index + 1,
      endpoints: this.endpoints,
      settings: this.settings,
      clock: this.clock,
      random: this.o.random ?? Math.random,
      saturatedSwitch: this.o.saturatedSwitch ?? 1,
      connect: this.o.connect,
      dialStats: this.dialStats,
      stats: this.stripeStats[index]!,
      nextId: () => ++this.ids,
      host: this,
    });
    this.stripes.push(s);
    if (this.started) s.start();
  }

  private removeStripe(): void {
    const s = this.stripes.pop();
    if (s === undefined) return;
    this.leaving.add(s);
    s.leave();
    this.pump();
  }

  /**
   * The active connection with the fewest batches in flight; ties go round-robin. At light
   * load every window is empty between batches, and a fixed tie-break would put all of an
   * agent's batches on stripe 0 (found by sim-validate: real max/mean 1.35 vs 1.15 modelled).
   */
  private roomiest(): LinkConn | null {
    let best: LinkConn | null = null;
    let at = 0;
    const n = this.stripes.length;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const c = this.stripes[i]!.active;
      if (c === null || !c.canSend) continue;
      if (best === null || c.window.size < best.window.size) {
        best = c;
        at = i;
      }
    }
    if (best !== null) this.cursor = (at + 1) % n;
    return best;
  }

  private stripeOf(conn: LinkConn): StripeStats {
    for (const s of this.stripes) if (s.active === conn) return s.stats;
    return this.stripeStats[0]!;
  }

  private scheduleAuto(): void {
    const every = this.autoPeriodMs / AUTO_SAMPLES_PER_PERIOD;
    this.sample = {
      n: 0,
      saturated: 0,
      occupancy: 0,
      backlogStart: this.o.buffer.queued,
      ackSeconds: 0,
      acks: 0,
    };
    const tick = () => {
      if (this.closing) return;
      this.takeSample();
      if (this.sample.n >= AUTO_SAMPLES_PER_PERIOD) this.decide();
      this.autoTimer = this.clock.setTimeout(tick, every, true);
    };
    this.autoTimer = this.clock.setTimeout(tick, every, true);
  }

  private takeSample(): void {
    let all = true;
    let occupancy = 0;
    for (const s of this.stripes) {
      const c = s.active;
      const window = c?.agreed?.maxInFlightBatches ?? this.o.maxInFlight;
      const used = c === null ? 0 : c.window.size / window;
      occupancy += used;
      if (used < SATURATED_OCCUPANCY) all = false;
    }
    this.sample.n++;
    if (all) this.sample.saturated++;
    this.sample.occupancy += occupancy / this.stripes.length;
  }

  private decide(): void {
    const sm = this.sample;
    const e: StripeEvidence = {
      backlogStart: sm.backlogStart,
      backlogEnd: this.o.buffer.queued,
      saturatedShare: sm.saturated / sm.n,
      occupancy: sm.occupancy / sm.n,
      ackLatency: sm.acks === 0 ? Number.NaN : sm.ackSeconds / sm.acks,
    };
    this.sample = { n: 0, saturated: 0, occupancy: 0, backlogStart: e.backlogEnd, ackSeconds: 0, acks: 0 };
    const before = this.stripes.length;
    const want = this.auto!.decide(e, this.clock.now());
    if (want === before) return;
    this.traffic.stripeChanges++;
    this.o.log.info({ from: before, to: want, evidence: e }, 'active connections changed (auto)');
    // A grow may add several stripes at once (auto-stripes.ts GROW_FACTOR); a shrink removes one.
    while (this.stripes.length < want) this.addStripe();
    while (this.stripes.length > want) this.removeStripe();
  }
}
