// The enricher's link listener (LINK.md): TCP, or TLS with optional client certificates
// (mTLS), one LinkConnection per agent connection, --max-connections, a keepalive sweep, and
// the SIGTERM drain: stop accepting, tell every agent to drain, keep acknowledging what is in
// flight, and close whatever is left at the deadline.

import net from 'node:net';
import tls from 'node:tls';
import { RejectCode } from '../../proto/link/constants';
import { EnricherHandshake } from '../../proto/link/handshake';
import { LinkConnection, type LinkConnectionContext } from './link-connection';
import { type LinkServerOptions, type ResolvedLinkServerOptions, resolveLinkServerOptions } from './options';
import { bump, LinkServerStats } from './stats';

/** Connections beyond maxConnections still get a Reject; past this many more they are dropped unread. */
const REJECT_SLACK = 256;
/** How often keepalive is checked; keepalive intervals are at least 1 s. */
const SWEEP_MS = 500;
/** After the drain deadline: how long connections get to send their last acks before being cut. */
export const FINAL_ACK_GRACE_MS = 2_000;

export interface LinkListenResult {
  host: string;
  port: number;
}

export class LinkServer implements LinkConnectionContext {
  readonly stats = new LinkServerStats();
  readonly o: ResolvedLinkServerOptions;
  readonly handshake: EnricherHandshake;
  draining = false;
  private readonly server: net.Server;
  private readonly connections = new Set<LinkConnection>();
  private nextId = 1;
  private sweep: NodeJS.Timeout | null = null;
  private allClosed: (() => void) | null = null;

  constructor(options: LinkServerOptions) {
    const o = resolveLinkServerOptions(options);
    this.o = o;
    this.handshake = new EnricherHandshake({
      enricherId: o.enricherId,
      authToken: o.authToken ?? null,
      maxInFlightBatches: o.maxInFlightBatches,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      maxFrameBytes: o.maxFrameBytes,
    });
    // allowHalfOpen: an agent's EOF must not end our side before its last acks are out.
    if (o.tls) {
      const mtls = o.tls.ca !== undefined;
      this.server = tls.createServer(
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
        (socket) => this.onSocket(socket, true),
      );
      this.server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        bump(this.stats.rejected, 'tls');
        o.log.warn({ remote: remoteOf(socket), err: err.message }, 'link TLS handshake failed');
      });
    } else {
      this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.onSocket(socket, false));
    }
    this.server.maxConnections = o.maxConnections + REJECT_SLACK;
    this.server.on('error', (err) => o.log.error({ err }, 'link listener error'));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<LinkListenResult> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.tick(now);
    }, SWEEP_MS);
    this.sweep.unref();
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
   * SPEC §5 drain: stop accepting, send Drain to every agent, keep reading and acknowledging
   * in-flight batches. Resolves once every connection has closed, or at the deadline after
   * giving the remaining ones FINAL_ACK_GRACE_MS to send their last acks and Goodbye.
   */
  async drain(reason: string, deadlineMs: number): Promise<void> {
    this.draining = true;
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
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.destroy('server-closing');
    await Promise.all([closed, this.closedWithin(FINAL_ACK_GRACE_MS)]);
  }

  onClose(conn: LinkConnection): void {
    if (!this.connections.delete(conn)) return;
    const s = this.stats;
    s.connectionsOpen = this.connections.size;
    const reason = conn.reason ?? 'peer-closed';
    bump(s.closed, reason);
    this.o.log.info(
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

  private onSocket(socket: net.Socket, secure: boolean): void {
    const remote = remoteOf(socket);
    this.stats.connectionsAccepted++;
    socket.setNoDelay(true); // acks are small and latency is what the agent's window waits on
    socket.setKeepAlive(true, 30_000);
    const conn = new LinkConnection(this.nextId++, remote, socket, this);
    this.connections.add(conn);
    this.stats.connectionsOpen = this.connections.size;
    this.o.log.debug({ conn: conn.id, remote, secure }, 'link connection accepted');
    if (this.draining) conn.reject(RejectCode.DRAINING, 'enricher is shutting down');
    else if (this.connections.size > this.o.maxConnections) {
      conn.reject(
        RejectCode.TOO_MANY_CONNECTIONS,
        `${this.o.maxConnections} connections already open on ${this.o.enricherId}`,
      );
    }
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
