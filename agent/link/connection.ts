// One link connection to an enricher (LINK.md "Lifecycle"): TCP or TLS, Hello, Welcome or
// Reject within the handshake deadline, then Batches out within the in-flight window and
// Acks, Drain, Ping/Pong, Goodbye in. The window (seq -> batch) is what gets re-sent
// elsewhere when the connection ends, whichever way it ends.
//
// The connection does not pick roles or retry: LinkClient does. It reports acks, drains
// and its end (with the unacknowledged batches) through the callbacks.

import net from 'node:net';
import type tls from 'node:tls';
import { type Clock, realClock } from '../../common/clock';
import type { Logger } from '../../common/log';
import { sharedReadOption } from '../../common/shared-reads';
import {
  Accepts,
  type AgreedLink,
  checkWelcome,
  decodeControl,
  encodeControl,
  type Hello,
  LinkFrameDecoder,
  MAX_CONTROL_BODY,
  MessageType,
  type MessageTypeCode,
  rejectCodeName,
} from '../../proto/link';
import type { OutBatch } from '../buffer';
import { AgentError, AgentErrorCode, RejectedError } from '../errors';
import type { Endpoint, TlsSettings } from '../options';
import { writeBatch } from './batch-write';
import { Keepalive } from './keepalive';

/** After our Goodbye (or theirs), the peer gets this long to close before we cut it. */
export const CLOSE_LINGER_MS = 5_000;
/** TCP keepalive under the link keepalive, for keepalive_interval_ms = 0. */
const TCP_KEEPALIVE_MS = 30_000;

export type ConnectionState = 'handshaking' | 'open' | 'retiring' | 'closing' | 'closed';

export interface ConnectionSettings {
  hello: Hello;
  handshakeTimeoutMs: number;
  maxInFlight: number;
  tls?: TlsSettings;
  log: Logger;
  /** Time source of the keepalive; default the real clock. */
  clock?: Clock;
}

export interface ConnectionEvents {
  onAck(conn: LinkConn, batch: OutBatch): void;
  onDrain(conn: LinkConn, deadlineMs: number, reason: string): void;
  /** The socket is gone; `unacked` must be re-sent elsewhere. */
  onClosed(conn: LinkConn, unacked: OutBatch[], reason: string, err: Error | undefined): void;
}

/**
 * What the client and the dial loop use of a connection. LinkConnection is the real one;
 * the fleet simulator supplies a socket-less one with the same lifecycle.
 */
export interface LinkConn {
  readonly id: number;
  readonly endpoint: Endpoint;
  readonly state: ConnectionState;
  readonly agreed: AgreedLink | null;
  readonly welcomedAt: number;
  readonly window: Map<number, OutBatch>;
  /** Batches sent and not yet acknowledged (the window's size; the fleet simulator models it). */
  readonly inFlight: number;
  readonly opened: Promise<AgreedLink>;
  readonly closed: Promise<void>;
  readonly canSend: boolean;
  readonly maxFrameBytes: number;
  send(b: OutBatch): void;
  retire(deadlineMs: number, why: string): void;
  close(why: string): void;
}

/** Opens a connection (the dial loop's one way to make one). */
export type ConnectionFactory = (
  id: number,
  endpoint: Endpoint,
  settings: ConnectionSettings,
  events: ConnectionEvents,
) => LinkConn;

export const openLinkConnection: ConnectionFactory = (id, endpoint, settings, events) =>
  new LinkConnection(id, endpoint, settings, events);

export class LinkConnection implements LinkConn {
  state: ConnectionState = 'handshaking';
  agreed: AgreedLink | null = null;
  welcomedAt = 0;
  /** Unacknowledged batches sent here, by seq. */
  readonly window = new Map<number, OutBatch>();

  get inFlight(): number {
    return this.window.size;
  }
  /** Resolves on Welcome; rejects on Reject, deadline, or loss before it. */
  readonly opened: Promise<AgreedLink>;
  /** Resolves once the socket is closed and onClosed has run. */
  readonly closed: Promise<void>;
  private resolveClosed: () => void = () => {};
  unknownAcks = 0;
  private readonly socket: net.Socket;
  private readonly decoder: LinkFrameDecoder;
  private readonly log: Logger;
  private settle: { resolve: (a: AgreedLink) => void; reject: (e: Error) => void } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly keepalive: Keepalive;
  private nonce = 1;
  private reason = '';
  private retireWhy = '';
  private retireDeadlineMs = 0;
  private error: Error | undefined;

  constructor(
    readonly id: number,
    readonly endpoint: Endpoint,
    private readonly s: ConnectionSettings,
    private readonly events: ConnectionEvents,
  ) {
    this.log = s.log.child({ link: id, enricher: `${endpoint.host}:${endpoint.port}` });
    this.keepalive = new Keepalive(s.clock ?? realClock, {
      ping: () => this.write(encodeControl(MessageType.PING, { nonce: this.nonce++ })),
      dead: (silentMs) =>
        this.fail(
          'keepalive timeout',
          new AgentError(AgentErrorCode.KEEPALIVE_TIMEOUT, `nothing received for ${silentMs} ms`),
        ),
    });
    this.opened = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.opened.catch(() => {}); // the dial loop awaits it; a late rejection is not unhandled
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.decoder = new LinkFrameDecoder({
      onFrame: (type, buf, start, end) => this.onFrame(type, buf, start, end),
      maxFrameBytes: 1 + MAX_CONTROL_BODY, // an agent receives only control messages
      accept: Accepts.AGENT_AWAIT_WELCOME,
    });
    const { host, port } = endpoint;
    const t = s.tls;
    this.socket = t
      ? (require('node:tls') as typeof tls).connect({
          // loaded only when TLS is configured
          host,
          port,
          ca: t.ca,
          cert: t.cert,
          key: t.key,
          servername: t.servername ?? (net.isIP(host) ? undefined : host),
        })
      : // Plain TCP reads into the shared read buffer: acks arrive a few at a time, and a
        // Buffer and a trip through the stream machinery per read were ~12 % of a sidecar's
        // CPU at 100 k frames/s (perf, Node 24).
        net.connect({ host, port, onread: sharedReadOption((chunk) => this.onData(chunk)) });
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    if (t) this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    else this.socket.resume(); // flowing, so 'end' is emitted at EOF
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err) => this.fail('socket error', err));
    this.socket.on('close', () => this.onSocketClose());
    // Written before connect completes: net and tls queue it until the socket is ready.
    this.write(encodeControl(MessageType.HELLO, s.hello));
    this.timer = setTimeout(() => {
      this.fail(
        'handshake timeout',
        new AgentError(AgentErrorCode.HANDSHAKE_TIMEOUT, `no Welcome within ${s.handshakeTimeoutMs} ms`),
      );
    }, s.handshakeTimeoutMs);
  }

  /** Room in the window, and allowed to carry new batches. */
  get canSend(): boolean {
    return this.state === 'open' && this.window.size < this.agreed!.maxInFlightBatches;
  }

  get maxFrameBytes(): number {
    return this.agreed?.maxFrameBytes ?? 0;
  }

  /** Writes a batch; it stays in the window until acknowledged. */
  send(b: OutBatch): void {
    this.window.set(b.seq, b);
    b.sends++;
    b.sentAt = performance.now();
    if (this.socket.writableEnded || this.socket.destroyed) return;
    this.keepalive.sent();
    // Counts the write of the stored frame until its callback (the frame pool's rule).
    writeBatch(this.socket, b);
  }

  /**
   * No new batches here any more (drained, or an old standby): Goodbye once the window is
   * acknowledged, or when no ack has come for `deadlineMs`; what is still unacknowledged then
   * is re-sent. The deadline counts from the latest ack: a pod that is slow but working (a
   * long queue after a scale-up) finishes the window instead of getting it a second time,
   * and a hung one is left after the deadline (keepalive notices a dead one sooner).
   */
  retire(deadlineMs: number, why: string): void {
    if (this.state !== 'open' && this.state !== 'retiring') return;
    this.state = 'retiring';
    this.retireWhy = why;
    this.retireDeadlineMs = deadlineMs;
    this.clearTimer();
    if (this.window.size === 0) {
      this.close(why);
      return;
    }
    this.timer = setTimeout(
      () =>
        this.close(
          `${this.retireWhy}: ${this.window.size} batches unacknowledged, no ack for ${this.retireDeadlineMs} ms`,
        ),
      this.retireDeadlineMs,
    );
  }

  /** Orderly close: Goodbye, then wait (bounded) for the peer to close; acks still count. */
  close(why: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const wasOpen = this.state === 'open' || this.state === 'retiring';
    this.state = 'closing';
    if (this.reason === '') this.reason = why;
    this.clearTimer();
    this.stopKeepalive();
    if (wasOpen && !this.socket.destroyed) {
      this.write(encodeControl(MessageType.GOODBYE, { reason: why.slice(0, 1000) }));
      this.socket.end();
      this.timer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
      this.timer.unref();
    } else {
      this.socket.destroy();
    }
  }

  /** Closes at once (failure); the first reason given wins. */
  fail(why: string, err?: Error): void {
    if (this.reason === '') {
      this.reason = why;
      this.error = err;
    }
    if (this.state !== 'closed') this.state = 'closing';
    this.socket.destroy();
  }

  private write(frame: Buffer): void {
    if (this.socket.writableEnded || this.socket.destroyed) return;
    this.keepalive.sent();
    this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    this.keepalive.received();
    try {
      this.decoder.write(chunk);
    } catch (err) {
      this.protocolError(err as Error);
    }
  }

  private onEnd(): void {
    try {
      this.decoder.end();
    } catch (err) {
      this.fail('truncated frame at end of stream', err as Error);
      return;
    }
    // The enricher closed its side: whatever it did not acknowledge, it never will.
    this.fail('closed by the enricher');
  }

  /** LINK.md: on any LinkProtocolError (LINK_BAD_WELCOME included) the agent says Goodbye and closes. */
  private protocolError(err: Error): void {
    if (this.state !== 'closing' && this.state !== 'closed') {
      this.write(
        encodeControl(MessageType.GOODBYE, { reason: `protocol error: ${err.message}`.slice(0, 1000) }),
      );
    }
    this.fail('protocol error', err);
  }

  private onFrame(type: MessageTypeCode, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case MessageType.WELCOME:
        this.onWelcome(decodeControl(type, buf, start, end));
        return;
      case MessageType.REJECT:
        this.onReject(decodeControl(type, buf, start, end));
        return;
      case MessageType.ACK: {
        for (const seq of decodeControl(type, buf, start, end).seqs) {
          const b = this.window.get(seq);
          if (b === undefined) {
            if (this.unknownAcks++ === 0)
              this.log.warn({ seq }, 'ack for a batch not in flight here (ignored)');
            continue;
          }
          this.window.delete(seq);
          this.events.onAck(this, b);
        }
        if (this.state === 'retiring') {
          if (this.window.size === 0) this.close(this.retireWhy);
          else this.timer?.refresh();
        }
        return;
      }
      case MessageType.DRAIN: {
        const d = decodeControl(type, buf, start, end);
        this.events.onDrain(this, d.deadlineMs, d.reason);
        return;
      }
      case MessageType.PING:
        this.write(encodeControl(MessageType.PONG, { nonce: decodeControl(type, buf, start, end).nonce }));
        return;
      case MessageType.PONG:
        return;
      case MessageType.GOODBYE: {
        // The peer sends nothing more; we have nothing to wait for either.
        this.decoder.accept(Accepts.CLOSED);
        const why = decodeControl(type, buf, start, end).reason;
        if (this.reason === '') this.reason = `Goodbye from the enricher: ${why || 'no reason'}`;
        this.stopKeepalive();
        this.clearTimer();
        this.state = 'closing';
        this.socket.end();
        this.timer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
        this.timer.unref();
        return;
      }
      default:
        return; // the accept masks let nothing else through
    }
  }

  private onWelcome(welcome: Parameters<typeof checkWelcome>[0]): void {
    this.clearTimer();
    // Throws LINK_BAD_WELCOME: caught by onData as a protocol error.
    this.agreed = checkWelcome(welcome, this.s.hello, this.s.maxInFlight);
    this.state = 'open';
    this.welcomedAt = Date.now();
    this.decoder.accept(Accepts.AGENT_OPEN);
    this.keepalive.start(this.agreed.keepaliveIntervalMs);
    this.settle?.resolve(this.agreed);
    this.settle = null;
  }

  private onReject(r: {
    code: number;
    message: string;
    retryAfterMs: number;
    supportedMinVersion: number;
    supportedMaxVersion: number;
  }): void {
    this.decoder.accept(Accepts.CLOSED);
    const name = rejectCodeName(r.code);
    const err = new RejectedError(
      r.code,
      name,
      r.retryAfterMs,
      `${r.supportedMinVersion}..${r.supportedMaxVersion}`,
      `enricher rejected us: ${name}: ${r.message}`,
    );
    this.fail(`rejected: ${name}`, err);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private stopKeepalive(): void {
    this.keepalive.stop();
  }

  private onSocketClose(): void {
    this.clearTimer();
    this.stopKeepalive();
    this.state = 'closed';
    if (this.settle !== null) {
      this.settle.reject(
        this.error ??
          new AgentError(
            AgentErrorCode.CONNECTION_LOST,
            `connection closed before Welcome (${this.reason || 'EOF'})`,
          ),
      );
      this.settle = null;
    }
    const unacked = [...this.window.values()];
    this.window.clear();
    this.events.onClosed(this, unacked, this.reason || 'closed', this.error);
    this.resolveClosed();
  }
}
