// The network of the fleet simulator: enricher pods behind a modelled ClusterIP, and a
// socket-less link connection (LinkConn) that the agent's REAL LinkClient dials through its
// injected connection factory. kube-proxy is modelled as it behaves in iptables/nftables
// mode: every new connection to the Service address goes to a uniformly random ready pod;
// a connection to a pod address (EndpointSlice-aware, --discovery-mode direct) goes to
// that pod. The Welcome names the pod (enricher id), so the client's collision re-dial
// runs as in production. A terminating pod sends Drain on its connections (the enricher's
// SIGTERM path) instead of dropping them.
//
// Traffic is the simulator's business (simulate.ts): a fluid split per stripe, or, with
// batch traffic, real batches through each agent's buffer and pump: a pod then receives a
// batch when it is sent, takes up its batches one after another at its capacity (counting
// each as it takes it up) and acknowledges each when done, so the client's windows fill on
// a slow pod as they do on a real one.

import type { OutBatch } from '../agent/buffer';
import type { Clock, ConnectionFactory, LinkConn } from '../agent/link';
import type { ConnectionEvents, ConnectionSettings, ConnectionState } from '../agent/link/connection';
import type { Endpoint } from '../agent/options';
import type { AgreedLink } from '../proto/link';

/** The Service address agents dial in the simulation (ClusterIP). */
export const SIM_SERVICE: Endpoint = { host: 'service', port: 7400 };
/** TCP + Hello/Welcome round trip inside a cluster. */
export const SIM_HANDSHAKE_MS = 2;
/** Socket close after Goodbye. */
const SIM_CLOSE_MS = 1;
const SIM_WINDOW = 32;
/** One way inside a cluster (a batch's arrival after its send; an ack's after processing). */
export const SIM_ONE_WAY_MS = 0.25;

export interface SimPod {
  id: string;
  /** Records/s the pod can process. */
  capacity: number;
  conns: Set<SimConnection>;
  ready: boolean;
  /** Batch traffic: records received so far (the enricher's records_received counter). */
  received: number;
  /** Batch traffic: when the pod has processed what it has received (simulated ms). */
  busyUntil: number;
}

export class SimNet {
  readonly pods = new Map<string, SimPod>();
  /** Connections opened into the Service or to pods, by whole simulated second. */
  readonly newConnections: number[] = [];
  private n = 0;

  constructor(
    readonly clock: Clock,
    private readonly random: () => number,
    /** Batches sent are received, processed and acknowledged (batch traffic); else they stay in the window. */
    readonly delivers = false,
  ) {}

  /**
   * Batch traffic: `b` arrives at the connection's pod and waits its turn; the pod counts it
   * when it takes it up (a real enricher reads a batch off the socket when it gets to it), and
   * acknowledges it once processed, at its capacity.
   */
  deliver(conn: SimConnection, b: OutBatch): void {
    const pod = conn.pod;
    if (pod === null) return;
    const start = Math.max(this.clock.now() + SIM_ONE_WAY_MS, pod.busyUntil);
    const done = start + (b.records / pod.capacity) * 1000;
    pod.busyUntil = done;
    this.clock.setTimeout(() => {
      pod.received += b.records;
    }, start - this.clock.now());
    this.clock.setTimeout(() => conn.ack(b), done + SIM_ONE_WAY_MS - this.clock.now());
  }

  addPod(capacity: number): SimPod {
    const pod: SimPod = {
      id: `pod-${this.n++}`,
      capacity,
      conns: new Set(),
      ready: true,
      received: 0,
      busyUntil: 0,
    };
    this.pods.set(pod.id, pod);
    return pod;
  }

  /** SIGTERM: not ready (no new connections), Drain on its connections, gone once they closed. */
  removePod(id: string, drainDeadlineMs: number): void {
    const pod = this.pods.get(id);
    if (pod === undefined) return;
    pod.ready = false;
    for (const c of pod.conns) c.drain(drainDeadlineMs, 'pod terminating');
    this.pods.delete(id);
  }

  ready(): SimPod[] {
    return [...this.pods.values()].filter((p) => p.ready);
  }

  /** kube-proxy: a uniformly random ready endpoint per new connection. */
  pick(endpoint: Endpoint): SimPod | null {
    const direct = this.pods.get(endpoint.host);
    if (direct?.ready) return direct;
    const ready = this.ready();
    if (ready.length === 0) return null;
    return ready[Math.floor(this.random() * ready.length)]!;
  }

  /** The factory the agents' LinkClients are given. */
  connector(): ConnectionFactory {
    return (id, endpoint, settings, events) => new SimConnection(id, endpoint, settings, events, this);
  }

  countNewConnection(): void {
    const s = Math.floor(this.clock.now() / 1000);
    while (this.newConnections.length <= s) this.newConnections.push(0);
    this.newConnections[s]!++;
  }
}

export class SimConnection implements LinkConn {
  state: ConnectionState = 'handshaking';
  agreed: AgreedLink | null = null;
  welcomedAt = 0;
  readonly window = new Map<number, OutBatch>();
  /** The traffic model's verdict for this second: the pod does not keep up, so the window stays full. */
  windowFull = false;
  readonly opened: Promise<AgreedLink>;
  readonly closed: Promise<void>;
  pod: SimPod | null = null;
  private resolveClosed: () => void = () => {};
  private settle: { resolve: (a: AgreedLink) => void; reject: (e: Error) => void } | null = null;
  private reason = '';

  constructor(
    readonly id: number,
    readonly endpoint: Endpoint,
    settings: ConnectionSettings,
    private readonly events: ConnectionEvents,
    private readonly net: SimNet,
  ) {
    this.opened = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    net.countNewConnection();
    net.clock.setTimeout(() => this.welcome(settings), SIM_HANDSHAKE_MS);
  }

  get inFlight(): number {
    return this.windowFull ? (this.agreed?.maxInFlightBatches ?? 0) : this.window.size;
  }

  get canSend(): boolean {
    return this.state === 'open' && this.window.size < this.agreed!.maxInFlightBatches;
  }

  get maxFrameBytes(): number {
    return this.agreed?.maxFrameBytes ?? 0;
  }

  send(b: OutBatch): void {
    this.window.set(b.seq, b);
    b.sends++;
    if (this.net.delivers) this.net.deliver(this, b);
  }

  /** Batch traffic: the pod acknowledged `b` (ignored once the connection is gone or the batch was re-sent). */
  ack(b: OutBatch): void {
    if (this.state === 'closing' || this.state === 'closed' || this.window.get(b.seq) !== b) return;
    this.window.delete(b.seq);
    this.events.onAck(this, b);
    if (this.state === 'retiring' && this.window.size === 0) this.close('retired');
  }

  retire(_deadlineMs: number, why: string): void {
    if (this.state !== 'open' && this.state !== 'retiring') return;
    this.state = 'retiring';
    if (this.window.size === 0) this.close(why);
  }

  close(why: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    if (this.reason === '') this.reason = why;
    this.net.clock.setTimeout(() => this.finish(), SIM_CLOSE_MS);
  }

  /** The pod asks us to drain (terminating). */
  drain(deadlineMs: number, reason: string): void {
    if (this.state === 'open') this.events.onDrain(this, deadlineMs, reason);
  }

  private welcome(settings: ConnectionSettings): void {
    if (this.state !== 'handshaking') return;
    const pod = this.net.pick(this.endpoint);
    if (pod === null) {
      this.reason = 'no ready pod';
      this.state = 'closing';
      this.finish();
      return;
    }
    this.pod = pod;
    pod.conns.add(this);
    this.state = 'open';
    this.welcomedAt = this.net.clock.now();
    this.agreed = {
      version: settings.hello.protocolVersion,
      enricherId: pod.id,
      maxInFlightBatches: Math.min(SIM_WINDOW, settings.maxInFlight),
      keepaliveIntervalMs: 0,
      maxFrameBytes: 16 * 1024 * 1024,
    };
    this.settle?.resolve(this.agreed);
    this.settle = null;
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.pod?.conns.delete(this);
    if (this.settle !== null) {
      this.settle.reject(new Error(`closed before Welcome (${this.reason})`));
      this.settle = null;
    }
    const unacked = [...this.window.values()];
    this.window.clear();
    this.events.onClosed(this, unacked, this.reason || 'closed', undefined);
    this.resolveClosed();
  }
}
