// The dnstap Frame Streams socket receiver shared by the agent (sidecar beside a DNS server)
// and the enricher (--dnstap-listen): unix and/or TCP listeners, one FrameStreamConnection per
// producer, data frames to a synchronous sink, counters read by metrics on scrape.
//
// Rules from SPEC §2 this file enforces: keep reading always (the sink drops, never us), a
// handshake deadline then no idle timeout, several concurrent connections per producer, and
// a shutdown that never leaves a DNS server blocked (see close()).

import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import {
  type CloseReason,
  type ConnectionContext,
  type ConnectionCounters,
  type ConnectionInfo,
  type FrameSink,
  FrameStreamConnection,
} from './framestream-connection';
import {
  DEFAULT_CLOSE_GRACE_MS,
  FrameStreamServerError,
  FrameStreamServerErrorCode,
  type FrameStreamServerOptions,
  listenFailed,
  listenOn,
  prepareUnixPath,
  type ResolvedServerOptions,
  resolveServerOptions,
  TCP_KEEPALIVE_MS,
} from './framestream-listen';

export {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_SOCKET_MODE,
  FrameStreamServerError,
  FrameStreamServerErrorCode,
} from './framestream-listen';
export type { CloseReason, ConnectionInfo, FrameSink, FrameStreamServerOptions };

/** Plain numbers and maps, read by metrics on scrape. All counters are monotonic except connectionsOpen. */
export interface FrameStreamServerStats extends ConnectionCounters {
  connectionsOpen: number;
  /** Connections accepted and served (rejected ones not included). */
  connectionsTotal: number;
  /** Connections closed at once: over maxConnections, or arriving while we shut down. */
  connectionsRejected: number;
  /** Closed connections by reason. */
  closedByReason: Record<string, number>;
}

export interface FrameStreamServerEvents {
  connection: [conn: ConnectionInfo];
  'connection-closed': [conn: ConnectionInfo, reason: CloseReason, error: Error | undefined];
  'connection-rejected': [remote: string, reason: 'max-connections' | 'server-closing'];
}

export interface ListenResult {
  unixPath?: string;
  tcpPort?: number;
}

export class FrameStreamServer extends EventEmitter<FrameStreamServerEvents> {
  readonly stats: FrameStreamServerStats = {
    connectionsOpen: 0,
    connectionsTotal: 0,
    connectionsRejected: 0,
    framesIn: 0,
    bytesIn: 0,
    oversizeFrames: 0,
    oversizeBytes: 0,
    sinkErrors: 0,
    handshakeTimeouts: 0,
    protocolErrors: {},
    closedByReason: {},
  };
  private readonly opts: ResolvedServerOptions;
  private readonly ctx: ConnectionContext;
  private readonly servers: net.Server[] = [];
  private readonly connections = new Set<FrameStreamConnection>();
  private nextId = 1;
  private state: 'new' | 'listening' | 'closing' | 'closed' = 'new';
  private closed: Promise<void> | null = null;
  private allGone: (() => void) | null = null;

  constructor(options: FrameStreamServerOptions) {
    super();
    this.opts = resolveServerOptions(options);
    this.ctx = {
      sink: this.opts.sink,
      log: this.opts.log,
      counters: this.stats,
      maxDataFrameSize: this.opts.maxDataFrameSize,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      contentType: this.opts.contentType,
      onClose: (conn, reason, error) => this.onConnectionClose(conn, reason, error),
    };
  }

  /** Open connections, for diagnostics and tests. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Binds every configured listener. A unix path holding a stale socket (nobody answers) is
   * replaced; anything else there is an error. If one listener fails, none stays open.
   */
  async listen(): Promise<ListenResult> {
    if (this.state !== 'new') {
      throw new FrameStreamServerError(
        FrameStreamServerErrorCode.INVALID_STATE,
        `listen() while ${this.state}`,
      );
    }
    this.state = 'listening';
    const result: ListenResult = {};
    const { unixPath, tcp, log } = this.opts;
    try {
      if (unixPath !== undefined) {
        await prepareUnixPath(unixPath, log);
        await listenOn(this.createServer(true), unixPath, [unixPath]);
        try {
          await fs.chmod(unixPath, this.opts.socketMode);
        } catch (err) {
          throw listenFailed(`cannot chmod ${unixPath}`, err);
        }
        result.unixPath = unixPath;
      }
      if (tcp !== undefined) {
        const server = this.createServer(false);
        await listenOn(server, `${tcp.host}:${tcp.port}`, [tcp.port, tcp.host]);
        result.tcpPort = (server.address() as net.AddressInfo).port;
      }
      if (this.state !== 'listening') {
        throw new FrameStreamServerError(FrameStreamServerErrorCode.INVALID_STATE, 'close() during listen()');
      }
    } catch (err) {
      // close() may have run while we awaited: it cannot have seen servers bound since.
      for (const s of this.servers) if (s.listening) s.close();
      await this.close(0);
      throw err;
    }
    log.info(
      { ...result, socketMode: unixPath ? this.opts.socketMode.toString(8) : undefined },
      'dnstap listening',
    );
    return result;
  }

  /**
   * Stops accepting, then lets each producer go: we cannot make it send STOP, so we
   * half-close (it sees EOF and reconnects later, as unbound and libfstrm do), keep reading
   * whatever is already in flight for up to graceMs, then destroy what is left. Reading goes
   * on until the very end, so no producer ever blocks on us. Resolves when everything is
   * closed (and the unix socket file is removed).
   */
  close(graceMs: number = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    if (this.closed !== null) return this.closed;
    this.state = 'closing';
    const serversClosed = this.servers.map(
      (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())),
    );
    const connsClosed = new Promise<void>((resolve) => {
      this.allGone = resolve;
      if (this.connections.size === 0) resolve();
    });
    for (const conn of this.connections) conn.drain(graceMs);
    this.closed = Promise.all([...serversClosed, connsClosed]).then(() => {
      this.state = 'closed';
      this.opts.log.info({ stats: this.stats }, 'dnstap listener closed');
    });
    return this.closed;
  }

  private createServer(unix: boolean): net.Server {
    // allowHalfOpen false: a producer's EOF ends our side too (after any FINISH we queued).
    const server = net.createServer({ allowHalfOpen: false }, (socket) => this.onSocket(socket, unix));
    server.on('error', (err) => this.opts.log.error({ err }, 'dnstap listener error'));
    this.servers.push(server);
    return server;
  }

  private onSocket(socket: net.Socket, unix: boolean): void {
    const remote = unix
      ? 'unix'
      : socket.remoteFamily === 'IPv6'
        ? `[${socket.remoteAddress}]:${socket.remotePort}`
        : `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.state !== 'listening' || this.connections.size >= this.opts.maxConnections) {
      const reason = this.state !== 'listening' ? 'server-closing' : 'max-connections';
      this.stats.connectionsRejected++;
      this.opts.log.warn(
        { remote, reason, open: this.connections.size, maxConnections: this.opts.maxConnections },
        'dnstap connection refused',
      );
      socket.on('error', () => {}); // a reset while we drop it is of no interest
      socket.destroy();
      this.emit('connection-rejected', remote, reason);
      return;
    }
    if (!unix) {
      socket.setNoDelay(true); // ACCEPT and FINISH must not wait for more bytes
      socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    }
    const conn = new FrameStreamConnection(this.nextId++, remote, socket, this.ctx);
    this.connections.add(conn);
    this.stats.connectionsOpen = this.connections.size;
    this.stats.connectionsTotal++;
    this.opts.log.info({ conn: conn.id, remote, open: this.connections.size }, 'dnstap connection');
    this.emit('connection', conn);
  }

  private onConnectionClose(
    conn: FrameStreamConnection,
    reason: CloseReason,
    error: Error | undefined,
  ): void {
    if (!this.connections.delete(conn)) return;
    this.stats.connectionsOpen = this.connections.size;
    this.stats.closedByReason[reason] = (this.stats.closedByReason[reason] ?? 0) + 1;
    const fields = {
      ...conn.describe(),
      reason,
      frames: conn.frames,
      bytes: conn.bytesIn,
      durationMs: Date.now() - conn.openedAt,
      err: error,
    };
    const bad = reason === 'protocol-error' || reason === 'handshake-timeout' || reason === 'truncated';
    if (bad) this.opts.log.warn(fields, 'dnstap connection closed');
    else this.opts.log.info(fields, 'dnstap connection closed');
    this.emit('connection-closed', conn, reason, error);
    if (this.connections.size === 0 && this.allGone !== null) this.allGone();
  }
}
