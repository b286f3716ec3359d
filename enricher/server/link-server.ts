// The enricher's link listener (LINK.md): TCP, or TLS with optional client certificates
// (mTLS), one LinkConnection per agent connection, --max-connections, a keepalive sweep, and
// the SIGTERM drain: stop accepting, tell every agent to drain, keep acknowledging what is in
// flight, and close whatever is left at the deadline.
//
// Admission (issue 10, connection attacks): agents past their Hello count against
// maxConnections; connections still in their TLS or Hello handshake have a budget of their
// own (maxHandshaking) where the oldest is cut to admit a new one. Idle or slowloris sockets
// therefore never hold the slot a real agent needs (they used to: 3,000 idle connections
// filled maxConnections plus the Node-level cap and real agents backed off until they
// timed out), and what they cost is bounded by the budgets.

import net from 'node:net';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { bump } from '../../common/counts';
import { RefusalLog } from '../../common/framestream-admission';
import { HandshakeTable } from '../../common/handshake-table';
import { listen } from '../../common/listen';
import { EnricherHandshake, RejectCode } from '../../proto/link/index';
import { LinkConnection, type LinkConnectionContext } from './link-connection';
import {
  type LinkServerOptions,
  type LinkTlsOptions,
  type ResolvedLinkServerOptions,
  resolveLinkServerOptions,
} from './options';
import { type OverloadCandidate, OverloadController } from './overload';
import { LinkServerStats } from './stats';

/** Connections beyond maxConnections still get a Reject; past this many more they are dropped unread. */
const REJECT_SLACK = 256;
/**
 * listen(2) backlog (the kernel caps it at net.core.somaxconn). Under a connection flood the
 * accept queue is what a real agent's SYN competes for: a full queue drops it and costs the
 * agent a 1 s SYN retransmit. Node's default is 511.
 */
export const LISTEN_BACKLOG = 4096;
/** How often keepalive is checked; keepalive intervals are at least 1 s. */
const SWEEP_MS = 500;
/** After the drain deadline: how long connections get to send their last acks before being cut. */
export const FINAL_ACK_GRACE_MS = 2_000;
/** How often drain on overload samples the event loop. */
export const OVERLOAD_TICK_MS = 1_000;
/** Advertised in an overload Drain: the agent's window here is acknowledged well within it. */
export const OVERLOAD_DRAIN_DEADLINE_MS = 10_000;
/** Drain.reason of an overload drain (LINK.md "Lifecycle" 6). */
export const OVERLOAD_DRAIN_REASON = 'overload';

export interface LinkListenResult {
  host: string;
  port: number;
}

export class LinkServer implements LinkConnectionContext {
  readonly stats = new LinkServerStats();
  readonly o: ResolvedLinkServerOptions;
  readonly handshake: EnricherHandshake;
  /** Drain on overload: its state, counters and options (metrics read them). */
  readonly overload: OverloadController;
  draining = false;
  private readonly server: net.Server;
  private readonly connections = new Set<LinkConnection>();
  /** Sockets in their TLS or Hello handshake, oldest first. */
  private readonly handshaking = new HandshakeTable<LinkConnection>((n) => {
    this.stats.connectionsHandshaking = n;
  });
  /** Agents past their Hello: what maxConnections bounds. */
  private readonly admitted = new Set<LinkConnection>();
  private readonly tlsServer: tls.Server | null = null;
  private readonly refusals: RefusalLog;
  private nextId = 1;
  private sweep: NodeJS.Timeout | null = null;
  private overloadTimer: NodeJS.Timeout | null = null;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private cpuAt = { wall: performance.now(), ...process.cpuUsage() };
  private allClosed: (() => void) | null = null;

  constructor(options: LinkServerOptions) {
    const o = resolveLinkServerOptions(options);
    this.o = o;
    this.overload = new OverloadController(o.overload);
    this.handshake = new EnricherHandshake({
      enricherId: o.enricherId,
      authToken: o.authToken ?? null,
      maxInFlightBatches: o.maxInFlightBatches,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      maxFrameBytes: o.maxFrameBytes,
    });
    this.refusals = new RefusalLog((fields) => o.log.warn(fields, 'link connection rejected'));
    // allowHalfOpen: an agent's EOF must not end our side before its last acks are out.
    // TLS sockets are accepted by the plain server first (the budgets apply before the TLS
    // handshake costs anything), then handed to a tls.Server that never listens itself.
    if (o.tls) {
      const mtls = o.tls.ca !== undefined;
      const tlsServer = tls.createServer(
        {
          cert: o.tls.cert,
          key: o.tls.key,
          ca: o.tls.ca,
          requestCert: mtls,
          rejectUnauthorized: mtls,
          minVersion: 'TLSv1.2',
          handshakeTimeout: o.handshakeTimeoutMs,
          allowHalfOpen: true,
        },
        (socket) => this.onSecure(socket),
      );
      tlsServer.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        this.handshaking.forgetUnder(socket);
        bump(this.stats.rejected, 'tls');
        this.refusals.refused(socket.remoteAddress ?? 'unknown', 'tls', {
          remote: remoteOf(socket),
          err: err.message,
        });
        socket.destroy();
      });
      this.tlsServer = tlsServer;
    }
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.onAccept(socket));
    // Rejected connections linger briefly to read their Reject: bounded too.
    this.server.maxConnections = o.maxConnections + o.maxHandshaking + REJECT_SLACK;
    this.server.on('error', (err) => o.log.error({ err }, 'link listener error'));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<LinkListenResult> {
    await listen(this.server, { port: this.o.port, host: this.o.host, backlog: LISTEN_BACKLOG });
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.tick(now);
    }, SWEEP_MS);
    this.sweep.unref();
    this.elu = performance.eventLoopUtilization();
    this.cpuAt = { wall: performance.now(), ...process.cpuUsage() };
    this.overloadTimer = setInterval(() => this.overloadTick(), OVERLOAD_TICK_MS);
    this.overloadTimer.unref();
    const addr = this.server.address() as net.AddressInfo;
    this.o.log.info(
      {
        host: addr.address,
        port: addr.port,
        tls: this.o.tls ? (this.o.tls.ca ? 'mtls' : 'tls') : 'off',
        auth: this.handshake.requiresToken ? 'token' : 'none',
        maxConnections: this.o.maxConnections,
      },
      'link listening',
    );
    return { host: addr.address, port: addr.port };
  }

  /**
   * README "Output: CSV chunks" drain: stop accepting, send Drain to every agent, keep reading and acknowledging
   * in-flight batches. Resolves once every connection has closed, or at the deadline after
   * giving the remaining ones FINAL_ACK_GRACE_MS to send their last acks and Goodbye.
   */
  async drain(reason: string, deadlineMs: number): Promise<void> {
    this.draining = true;
    this.stopOverload();
    this.server.close();
    // The agent must be done before our deadline, not at it.
    const advertised = Math.max(0, deadlineMs - 1000);
    for (const c of this.connections) c.drain(reason, advertised);
    this.o.log.info({ connections: this.connections.size, deadlineMs }, 'link draining');
    if (await this.closedWithin(deadlineMs)) return;
    this.o.log.warn({ connections: this.connections.size }, 'link drain deadline passed, closing');
    for (const c of this.connections) c.finishAfterAcks();
    if (await this.closedWithin(FINAL_ACK_GRACE_MS)) return;
    for (const c of this.connections) c.destroy('drain-deadline');
  }

  /** Closes everything now: what was not acknowledged the agents re-send elsewhere. */
  async close(): Promise<void> {
    this.draining = true;
    this.stopOverload();
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.handshaking.destroyUnattached();
    for (const c of this.connections) c.destroy('server-closing');
    await Promise.all([closed, this.closedWithin(FINAL_ACK_GRACE_MS)]);
  }

  /** One drain-on-overload observation: utilisation since the last tick, the connections carrying traffic. */
  private overloadTick(): void {
    if (this.draining) return;
    let utilisation: number;
    if (this.o.utilisation !== undefined) utilisation = this.o.utilisation();
    else {
      const now = performance.eventLoopUtilization();
      utilisation = performance.eventLoopUtilization(now, this.elu).utilization;
      this.elu = now;
      const wall = performance.now();
      const cpu = process.cpuUsage();
      const limit = this.overload.options.cpuLimitMillicores / 1000;
      if (limit > 0 && wall > this.cpuAt.wall) {
        const used = (cpu.user + cpu.system - this.cpuAt.user - this.cpuAt.system) / 1000;
        utilisation = Math.max(utilisation, Math.min(1, used / (wall - this.cpuAt.wall) / limit));
      }
      this.cpuAt = { wall, user: cpu.user, system: cpu.system };
    }
    const carrying: (OverloadCandidate & { conn: LinkConnection })[] = [];
    for (const c of this.admitted) {
      const recentBytes = c.takeRecentBytes();
      if (recentBytes > 0 && c.drainable) carrying.push({ agentId: c.agentId, recentBytes, conn: c });
    }
    const was = this.overload.state;
    const chosen = this.overload.tick(Date.now(), utilisation, carrying) as typeof carrying;
    if (this.overload.state !== was) {
      this.o.log.warn(
        { state: this.overload.state, utilisation: +utilisation.toFixed(3), connections: carrying.length },
        this.overload.state === 'overloaded' ? 'enricher overloaded' : 'enricher no longer overloaded',
      );
    }
    for (const { conn } of chosen) conn.drain(OVERLOAD_DRAIN_REASON, OVERLOAD_DRAIN_DEADLINE_MS, 'overload');
    if (chosen.length > 0) {
      this.o.log.info(
        { agents: chosen.map((c) => c.agentId), of: carrying.length, utilisation: +utilisation.toFixed(3) },
        'overloaded: asked agents to move',
      );
    }
  }

  private stopOverload(): void {
    if (this.overloadTimer !== null) clearInterval(this.overloadTimer);
    this.overloadTimer = null;
  }

  onClose(conn: LinkConnection): void {
    if (!this.connections.delete(conn)) return;
    this.admitted.delete(conn);
    this.onHandshakeOver(conn);
    const s = this.stats;
    s.connectionsOpen = this.connections.size;
    const reason = conn.reason ?? 'peer-closed';
    bump(s.closed, reason);
    // Connections that never got past their Hello are many under attack: counted, debug only.
    this.o.log[conn.admitted ? 'info' : 'debug'](
      {
        ...conn.describe(),
        reason,
        batches: conn.batches,
        records: conn.records,
        durationMs: Date.now() - conn.openedAt,
      },
      'link connection closed',
    );
    if (this.connections.size === 0 && this.allClosed !== null) this.allClosed();
  }

  admit(conn: LinkConnection): boolean {
    if (this.admitted.size >= this.o.maxConnections) return false;
    this.admitted.add(conn);
    conn.admitted = true;
    return true;
  }

  onHandshakeOver(conn: LinkConnection): void {
    this.handshaking.release(conn);
  }

  refused(conn: LinkConnection, reason: string, fields: Record<string, unknown>): void {
    const source = conn.remote.replace(/:\d+$/, '');
    this.refusals.refused(source, reason, fields);
  }

  private onAccept(socket: net.Socket): void {
    socket.on('error', () => {}); // until a connection owns it: a reset is of no interest
    this.stats.connectionsAccepted++;
    socket.setNoDelay(true); // acks are small and latency is what the agent's window waits on
    socket.setKeepAlive(true, 30_000);
    // Full or shutting down: answered at once (a Reject the agent understands), no budget taken.
    if (!this.draining && this.admitted.size < this.o.maxConnections) {
      if (this.handshaking.size >= this.o.maxHandshaking) this.evictOldestHandshake();
      this.handshaking.admit(socket, this.tlsServer !== null);
    }
    if (this.tlsServer !== null) {
      if (!this.handshaking.has(socket)) {
        // No budget for a TLS handshake we would follow with a Reject: just close.
        bump(this.stats.rejected, this.draining ? 'draining' : 'too_many_connections');
        this.refusals.refused(socket.remoteAddress ?? 'unknown', 'TOO_MANY_CONNECTIONS', {
          remote: remoteOf(socket),
          maxConnections: this.o.maxConnections,
        });
        socket.destroy();
        return;
      }
      this.tlsServer.emit('connection', socket);
      return;
    }
    this.serve(socket, socket, false);
  }

  /** A rotated token (common/secret-files.ts): checked on the Hellos of new connections. */
  setAuthToken(token: Buffer): void {
    this.handshake.setAuthToken(token);
  }

  /** A rotated certificate/key/CA: used by new TLS handshakes; open connections keep theirs. */
  setTls(material: LinkTlsOptions): void {
    this.tlsServer?.setSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
  }

  private onSecure(socket: tls.TLSSocket): void {
    const raw = this.handshaking.rawUnder(socket);
    if (raw === null) {
      socket.destroy(); // evicted while its TLS handshake finished
      return;
    }
    this.serve(socket, raw, true);
  }

  private serve(socket: net.Socket, raw: net.Socket, secure: boolean): void {
    const remote = remoteOf(socket);
    const conn = new LinkConnection(this.nextId++, remote, socket, this);
    this.connections.add(conn);
    this.stats.connectionsOpen = this.connections.size;
    this.o.log.debug({ conn: conn.id, remote, secure }, 'link connection accepted');
    if (this.draining) conn.reject(RejectCode.DRAINING, 'enricher is shutting down');
    else if (!this.handshaking.has(raw)) {
      conn.reject(
        RejectCode.TOO_MANY_CONNECTIONS,
        `${this.o.maxConnections} connections already open on ${this.o.enricherId}`,
      );
    } else this.handshaking.attach(raw, conn);
  }

  private evictOldestHandshake(): void {
    const oldest = this.handshaking.evictOldest();
    if (oldest === null) return;
    const { raw, conn } = oldest;
    bump(this.stats.rejected, 'handshake_evicted');
    this.refusals.refused(raw.remoteAddress ?? 'unknown', 'handshake-evicted', {
      remote: remoteOf(raw),
      maxHandshaking: this.o.maxHandshaking,
    });
    if (conn !== null) conn.destroy('handshake-evicted');
    raw.destroy();
  }

  /** True when every connection closed within `ms`. */
  private closedWithin(ms: number): Promise<boolean> {
    if (this.connections.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.allClosed = null;
        resolve(false);
      }, ms);
      this.allClosed = () => {
        clearTimeout(timer);
        this.allClosed = null;
        resolve(true);
      };
    });
  }
}

function remoteOf(socket: net.Socket): string {
  return socket.remoteFamily === 'IPv6'
    ? `[${socket.remoteAddress}]:${socket.remotePort}`
    : `${socket.remoteAddress}:${socket.remotePort}`;
}
