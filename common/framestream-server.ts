// The dnstap Frame Streams socket receiver shared by the agent (sidecar beside a DNS server)
// and the enricher (--dnstap-listen): unix and/or TCP listeners, one FrameStreamConnection per
// producer, data frames to a synchronous sink, counters read by metrics on scrape.
//
// Rules from README "How it behaves" this file enforces: keep reading always (the sink drops, never us), a
// handshake deadline then no idle timeout, several concurrent connections per producer, and
// a shutdown that never leaves a DNS server blocked (see close()).
//
// Exposed TCP inputs (issue 10): optional TLS, a source allow-list checked before anything is
// read, and two budgets: maxConnections for streams (past their handshake) and
// maxHandshaking for connections still in their TLS or Frame Streams handshake, where the
// oldest is cut to admit a new one. Idle or slowloris sockets therefore never take a slot a
// producer needs, and what they cost stays bounded.

import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import { bump } from './counts';
import { allowed, RefusalLog, type RefuseReason } from './framestream-admission';
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
import { HandshakeTable } from './handshake-table';
import { adoptSharedReads } from './shared-reads';

export {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HANDSHAKING,
  DEFAULT_SOCKET_MODE,
  FrameStreamServerError,
  FrameStreamServerErrorCode,
} from './framestream-listen';
export type { CloseReason, ConnectionInfo, FrameSink, FrameStreamServerOptions, RefuseReason };

/** Plain numbers and maps, read by metrics on scrape. All counters are monotonic except connectionsOpen. */
export interface FrameStreamServerStats extends ConnectionCounters {
  connectionsOpen: number;
  /** Connections accepted and served (rejected ones not included). */
  connectionsTotal: number;
  /** Connections closed at once: over maxConnections, or arriving while we shut down. */
  connectionsRejected: number;
  /** Refused or cut before their handshake finished, by reason (includes connectionsRejected). */
  refusedByReason: Record<string, number>;
  /** Connections in their TLS or Frame Streams handshake now (bounded by maxHandshaking). */
  connectionsHandshaking: number;
  /** Closed connections by reason. */
  closedByReason: Record<string, number>;
}

export interface FrameStreamServerEvents {
  connection: [conn: ConnectionInfo];
  'connection-closed': [conn: ConnectionInfo, reason: CloseReason, error: Error | undefined];
  'connection-rejected': [remote: string, reason: RefuseReason];
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
    refusedByReason: {},
    connectionsHandshaking: 0,
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
  /** Sockets still in their TLS or Frame Streams handshake, oldest first. */
  private readonly handshaking = new HandshakeTable<FrameStreamConnection>((n) => {
    this.stats.connectionsHandshaking = n;
  });
  /** Connections past their handshake: what maxConnections bounds. */
  private readonly streaming = new Set<FrameStreamConnection>();
  private readonly tlsServer: tls.Server | null;
  private readonly refusals: RefusalLog;
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
      onHandshakeDone: (conn) => this.onHandshakeDone(conn),
    };
    this.refusals = new RefusalLog((fields) => this.opts.log.warn(fields, 'dnstap connection refused'));
    this.tlsServer = this.opts.tls === null ? null : this.createTlsServer(this.opts.tls);
  }

  /** Streams open (past their handshake): what maxConnections bounds. */
  private get streams(): number {
    return this.streaming.size;
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
        // The socket must never be visible with a wider mode than asked for (a DNS server may
        // connect the moment it exists): bind() happens synchronously inside listen(), so the
        // umask is narrowed only around that call, then chmod sets the exact mode.
        const umask = process.umask(0o777 & ~this.opts.socketMode);
        let listening: Promise<void>;
        try {
          listening = listenOn(this.createServer(true), unixPath, [unixPath]);
        } finally {
          process.umask(umask);
        }
        await listening;
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
      {
        ...result,
        socketMode: unixPath ? this.opts.socketMode.toString(8) : undefined,
        tls:
          tcp === undefined ? undefined : this.opts.tls === null ? 'off' : this.opts.tls.ca ? 'mtls' : 'tls',
        allowList: this.opts.allow !== null,
        maxConnections: this.opts.maxConnections,
        maxHandshaking: this.opts.maxHandshaking,
      },
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
    this.handshaking.destroyUnattached();
    for (const conn of this.connections) conn.drain(graceMs);
    this.closed = Promise.all([...serversClosed, connsClosed]).then(() => {
      this.state = 'closed';
      this.opts.log.info({ stats: this.stats }, 'dnstap listener closed');
    });
    return this.closed;
  }

  /** A rotated certificate/key/CA: used by new TLS handshakes; open streams keep theirs. */
  setTls(material: { cert: Buffer; key: Buffer; ca?: Buffer }): void {
    this.tlsServer?.setSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
  }

  private createServer(unix: boolean): net.Server {
    // allowHalfOpen false: a producer's EOF ends our side too (after any FINISH we queued).
    // Plain sockets read into one shared buffer (common/shared-reads.ts): paused until adopted.
    const plain = unix || this.tlsServer === null;
    const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: plain }, (socket) =>
      this.onSocket(plain ? adoptSharedReads(socket) : socket, unix),
    );
    server.on('error', (err) => this.opts.log.error({ err }, 'dnstap listener error'));
    this.servers.push(server);
    return server;
  }

  /** Never listens itself: accepted TCP sockets that passed the checks are handed to it. */
  private createTlsServer(ctx: tls.SecureContextOptions): tls.Server {
    const mtls = ctx.ca !== undefined;
    // node:tls is loaded only when TLS is configured (~3-4 MiB of a plain sidecar's RSS).
    const server = (require('node:tls') as typeof tls).createServer({
      ...ctx,
      requestCert: mtls,
      rejectUnauthorized: mtls,
      handshakeTimeout: this.opts.handshakeTimeoutMs,
      allowHalfOpen: false,
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      this.handshaking.forgetUnder(socket);
      this.countRefusal(socket.remoteAddress ?? 'unknown', 'tls-handshake', { err: err.message });
      socket.destroy();
    });
    return server;
  }

  private onSocket(socket: net.Socket, unix: boolean): void {
    socket.on('error', () => {}); // until a connection owns it: a reset is of no interest
    const remote = unix ? 'unix' : remoteOf(socket);
    const source = unix ? 'unix' : (socket.remoteAddress ?? 'unknown');
    let reason: RefuseReason | null = null;
    if (this.state !== 'listening') reason = 'server-closing';
    else if (!unix && this.opts.allow !== null && !allowed(this.opts.allow, socket.remoteAddress)) {
      reason = 'not-allowed';
    } else if (this.streams >= this.opts.maxConnections) reason = 'max-connections';
    if (reason !== null) {
      this.stats.connectionsRejected++;
      this.countRefusal(source, reason, { remote, open: this.connections.size });
      socket.destroy();
      this.emit('connection-rejected', remote, reason);
      return;
    }
    if (this.handshaking.size >= this.opts.maxHandshaking) this.evictOldestHandshake();
    if (!unix) {
      socket.setNoDelay(true); // ACCEPT and FINISH must not wait for more bytes
      socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    }
    if (!unix && this.tlsServer !== null) {
      this.handshaking.admit(socket, true);
      this.tlsServer.emit('connection', socket);
      return;
    }
    this.serve(socket, socket, remote);
  }

  private onSecure(socket: tls.TLSSocket): void {
    const raw = this.handshaking.rawUnder(socket);
    if (raw === null || this.state !== 'listening') {
      socket.destroy();
      return;
    }
    this.serve(socket, raw, remoteOf(socket));
  }

  private serve(socket: net.Socket, raw: net.Socket, remote: string): void {
    const conn = new FrameStreamConnection(this.nextId++, remote, socket, this.ctx);
    this.handshaking.attach(raw, conn);
    this.connections.add(conn);
    this.stats.connectionsOpen = this.connections.size;
    this.stats.connectionsTotal++;
    this.opts.log.debug({ conn: conn.id, remote, open: this.connections.size }, 'dnstap connection');
    this.emit('connection', conn);
  }

  private onHandshakeDone(conn: FrameStreamConnection): void {
    this.handshaking.release(conn);
    if (this.streams >= this.opts.maxConnections) {
      const source = conn.remote.replace(/:\d+$/, ''); // per host, not per connection
      this.countRefusal(source, 'max-connections', { remote: conn.remote, open: this.connections.size });
      conn.destroy('over-capacity');
      return;
    }
    this.streaming.add(conn);
  }

  private evictOldestHandshake(): void {
    const oldest = this.handshaking.evictOldest();
    if (oldest === null) return;
    const { raw, conn } = oldest;
    this.countRefusal(raw.remoteAddress ?? 'unix', 'handshake-evicted', {
      maxHandshaking: this.opts.maxHandshaking,
    });
    if (conn !== null) conn.destroy('handshake-evicted');
    raw.destroy();
  }

  private countRefusal(source: string, reason: RefuseReason, fields: Record<string, unknown>): void {
    bump(this.stats.refusedByReason, reason);
    this.refusals.refused(source, reason, { ...fields, maxConnections: this.opts.maxConnections });
  }

  private onConnectionClose(
    conn: FrameStreamConnection,
    reason: CloseReason,
    error: Error | undefined,
  ): void {
    if (!this.connections.delete(conn)) return;
    this.streaming.delete(conn);
    this.handshaking.release(conn);
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
    // Connections that never started a stream are many under attack: debug only (counted).
    const quiet =
      reason === 'handshake-evicted' ||
      (conn.bidirectional === null && (reason === 'peer-closed' || reason === 'socket-error'));
    const bad = reason === 'protocol-error' || reason === 'handshake-timeout' || reason === 'truncated';
    if (quiet) this.opts.log.debug(fields, 'dnstap connection closed');
    else if (bad) this.opts.log.warn(fields, 'dnstap connection closed');
    else this.opts.log.info(fields, 'dnstap connection closed');
    this.emit('connection-closed', conn, reason, error);
    if (this.connections.size === 0 && this.allGone !== null) this.allGone();
  }
}

function remoteOf(socket: net.Socket): string {
  return socket.remoteFamily === 'IPv6'
    ? `[${socket.remoteAddress}]:${socket.remotePort}`
    : `${socket.remoteAddress}:${socket.remotePort}`;
}
