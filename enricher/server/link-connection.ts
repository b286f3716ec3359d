// One agent connection on the enricher: handshake under a deadline, then Batches in and Acks
// out, Ping/Pong keepalive, Drain on shutdown (LINK.md "Lifecycle").
//
// A Batch is validated whole, every record goes through the pipeline synchronously, then
// the batch waits for the writer's group-commit flush: its Ack is sent only once its rows
// are durable. Acks that become ready together go out in one frame. Memory is bounded by
// not reading: the socket is paused while the writer is above its high-water mark or while
// this connection holds too many unacknowledged bytes, and TCP pushes back on the agent.

import type { Socket } from 'node:net';
import { bump } from '../../common/counts';
import { spreadDeadline } from '../../common/framestream-admission';
import type { EnricherHandshake } from '../../proto/link/index';
import {
  Accepts,
  BatchView,
  decodeControl,
  encodeControl,
  isLinkProtocolError,
  KEEPALIVE_MISSES,
  LinkFrameDecoder,
  MessageType,
  RejectCode,
  rejectCodeName,
} from '../../proto/link/index';
import { OutputError } from '../output/errors';
import { AckBatcher, ackFrames } from './ack-batcher';
import type { ResolvedLinkServerOptions } from './options';
import { RowSources } from './row-sources';
import type { LinkCloseReason, LinkServerStats } from './stats';

export interface LinkConnectionContext {
  readonly o: ResolvedLinkServerOptions;
  readonly handshake: EnricherHandshake;
  readonly stats: LinkServerStats;
  /** True once the server drains: a Hello then gets Reject{DRAINING}. */
  readonly draining: boolean;
  onClose(conn: LinkConnection): void;
  /** The connection left its handshake (Hello answered, refused, or closed). */
  onHandshakeOver(conn: LinkConnection): void;
  /** A valid Hello: true when an agent slot is free (it is then taken). */
  admit(conn: LinkConnection): boolean;
  /** Rate-limited warning for a refused connection (one line per source and reason per window). */
  refused(conn: LinkConnection, reason: string, fields: Record<string, unknown>): void;
}

/** After our last frame (Reject, Goodbye) the peer gets this long to close before we cut it. */
export const CLOSE_LINGER_MS = 2_000;
/** A peer that does not read its acks while we queue this much is cut (it is broken). */
const MAX_WRITE_BACKLOG = 4 * 1024 * 1024;

const HELLO = 0;
const OPEN = 1;
const CLOSING = 2;

const PAUSE_WRITER = 1;
const PAUSE_UNACKED = 2;
const PAUSE_DEADLINE = 4;

export class LinkConnection {
  readonly openedAt = Date.now();
  agentId = '';
  incarnation = '';
  /** The Hello's marks_resends. */
  marksResends = false;
  batches = 0;
  records = 0;
  reason: LinkCloseReason | null = null;
  private _state = HELLO;
  /** Admitted: held an agent slot (maxConnections). */
  admitted = false;
  private readonly decoder: LinkFrameDecoder;
  private readonly view = new BatchView();
  private sources: RowSources | null = null;
  private pendingFlushes = 0;
  private unackedBytes = 0;
  private recentBytes = 0;
  private readonly acks = new AckBatcher((seqs, times) => this.sendAcks(seqs, times));
  private pauseBits = 0;
  private lastRecv = Date.now();
  private lastSent = Date.now();
  private nonce = 0;
  /** The agent said Goodbye or half-closed: close once the last acks are out. */
  private peerDone = false;
  private peerSaidGoodbye = false;
  private closeWhenAcked = false;
  private drainSent = false;
  private handshakeTimer: NodeJS.Timeout | null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly id: number,
    readonly remote: string,
    private readonly socket: Socket,
    private readonly ctx: LinkConnectionContext,
  ) {
    this.decoder = new LinkFrameDecoder({
      maxFrameBytes: ctx.o.maxFrameBytes,
      accept: Accepts.ENRICHER_AWAIT_HELLO,
      onFrame: (type, buf, start, end) => this.onFrame(type, buf, start, end),
    });
    // At least the deadline, spread so that a flood's sockets do not all expire at once.
    this.handshakeTimer = setTimeout(
      () => this.onHandshakeTimeout(),
      spreadDeadline(ctx.o.handshakeTimeoutMs),
    );
    // No idle timeout after the handshake: keepalive (LINK.md) detects dead peers instead.
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.destroy('socket-error', err));
    socket.on('close', () => this.onSocketClose());
  }

  get open(): boolean {
    return this.state === OPEN;
  }

  private get state(): number {
    return this._state;
  }

  private set state(next: number) {
    const was = this._state;
    this._state = next;
    if (was === HELLO && next !== HELLO) this.ctx.onHandshakeOver(this);
  }

  /** Log fields naming this connection. */
  describe(): Record<string, unknown> {
    return { conn: this.id, remote: this.remote, agentId: this.agentId || undefined };
  }

  /** Refuses the connection at once (before or instead of the handshake). */
  reject(code: number, message: string, reason: LinkCloseReason = 'rejected'): void {
    if (this.state === CLOSING) return;
    const r = this.ctx.handshake.reject(code, message);
    bump(this.ctx.stats.rejected, rejectCodeName(code).toLowerCase());
    this.ctx.refused(this, rejectCodeName(code), {
      ...this.describe(),
      code: rejectCodeName(code),
      reason: message,
    });
    this.send(encodeControl(MessageType.REJECT, r));
    this.endWith(reason);
  }

  /** Sends Drain once; batches already in flight are still written and acknowledged. */
  drain(reason: string, deadlineMs: number, cause: 'shutdown' | 'overload' = 'shutdown'): void {
    if (this.state !== OPEN || this.drainSent) return;
    this.drainSent = true;
    this.ctx.stats.drainsSent++;
    bump(this.ctx.stats.drainsByReason, cause);
    this.send(encodeControl(MessageType.DRAIN, { reason, deadlineMs }));
  }

  /** Open and not yet drained: may still be asked to move. */
  get drainable(): boolean {
    return this.state === OPEN && !this.drainSent;
  }

  /** Batch bytes received since the previous call (drain on overload asks the heaviest first). */
  takeRecentBytes(): number {
    const n = this.recentBytes;
    this.recentBytes = 0;
    return n;
  }

  /** The drain deadline passed: read no more, send the acks still due, then Goodbye. */
  finishAfterAcks(): void {
    if (this.state === HELLO) {
      this.destroy('server-closing');
      return;
    }
    if (this.state !== OPEN) return;
    this.pause(PAUSE_DEADLINE);
    this.closeWhenAcked = true;
    if (this.pendingFlushes === 0 && !this.acks.pending) this.goodbye('drain deadline', 'drain-deadline');
  }

  /** Keepalive, called about once a second: Ping when we were silent, cut a silent peer. */
  tick(now: number): void {
    const k = this.ctx.o.keepaliveIntervalMs;
    if (this.state !== OPEN || k === 0) return;
    // While paused we do not read, so the peer's silence is ours.
    if (this.pauseBits !== 0) this.lastRecv = now;
    else if (now - this.lastRecv >= KEEPALIVE_MISSES * k) {
      this.ctx.stats.keepaliveTimeouts++;
      this.ctx.o.log.warn({ ...this.describe(), silentMs: now - this.lastRecv }, 'link peer silent, closing');
      this.destroy('keepalive-timeout');
      return;
    }
    if (now - this.lastSent >= k) {
      this.ctx.stats.pingsSent++;
      this.send(encodeControl(MessageType.PING, { nonce: ++this.nonce }));
    }
  }

  destroy(reason: LinkCloseReason, err?: Error): void {
    if (this.reason === null) this.reason = reason;
    if (err !== undefined && reason === 'socket-error') {
      this.ctx.o.log.info({ ...this.describe(), err: err.message }, 'link socket error');
    }
    this.state = CLOSING;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.state === CLOSING) return; // after our last frame: read and discard until EOF
    this.ctx.stats.bytesIn += chunk.length;
    this.lastRecv = Date.now();
    try {
      this.decoder.write(chunk);
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.state === OPEN && this.ctx.o.output.full && (this.pauseBits & PAUSE_WRITER) === 0) {
      this.pause(PAUSE_WRITER);
      // Also settles when the writer failed: the next batch then meets the failure.
      const resume = () => this.resume(PAUSE_WRITER);
      this.ctx.o.output.whenDrained().then(resume, resume);
    }
  }

  private onFrame(type: number, buf: Buffer, start: number, end: number): void {
    if (this.state === CLOSING) return;
    switch (type) {
      case MessageType.BATCH:
        this.onBatch(buf, start, end);
        return;
      case MessageType.HELLO:
        this.onHello(buf, start, end);
        return;
      case MessageType.PING: {
        const { nonce } = decodeControl(MessageType.PING, buf, start, end);
        this.send(encodeControl(MessageType.PONG, { nonce }));
        return;
      }
      case MessageType.GOODBYE: {
        const { reason } = decodeControl(MessageType.GOODBYE, buf, start, end);
        this.ctx.o.log.info({ ...this.describe(), reason }, 'link peer said goodbye');
        this.decoder.accept(Accepts.CLOSED);
        this.peerSaidGoodbye = true;
        this.onPeerDone();
        return;
      }
      // Pong: receiving it already reset the silence clock.
    }
  }

  private onHello(buf: Buffer, start: number, end: number): void {
    const hello = decodeControl(MessageType.HELLO, buf, start, end);
    this.clearHandshakeTimer();
    this.agentId = hello.agentId;
    if (this.ctx.draining) {
      this.reject(RejectCode.DRAINING, 'enricher is shutting down');
      return;
    }
    const verdict = this.ctx.handshake.answer(hello);
    if (!verdict.ok) {
      const r = verdict.reject;
      this.reject(r.code, r.message);
      return;
    }
    if (!this.ctx.admit(this)) {
      this.reject(
        RejectCode.TOO_MANY_CONNECTIONS,
        `${this.ctx.o.maxConnections} connections already open on ${this.ctx.o.enricherId}`,
      );
      return;
    }
    this.incarnation = hello.incarnation;
    this.marksResends = hello.marksResends === true;
    this.sources = new RowSources(hello.agentId, hello.incarnation);
    this.state = OPEN;
    this.decoder.accept(Accepts.ENRICHER_OPEN);
    this.ctx.stats.handshakesCompleted++;
    this.send(encodeControl(MessageType.WELCOME, verdict.welcome));
    this.ctx.o.log.info(
      {
        ...this.describe(),
        incarnation: hello.incarnation,
        version: verdict.version,
        software: hello.software,
      },
      'link connection open',
    );
  }

  private onBatch(buf: Buffer, start: number, end: number): void {
    const view = this.view.parse(buf, start, end);
    const receivedAt = performance.now();
    const src = this.sources!.of(view);
    const seq = view.seq;
    const pipeline = this.ctx.o.pipeline;
    const onBatch = this.ctx.o.onBatch;
    if (onBatch !== undefined) {
      onBatch({
        agentId: this.agentId,
        incarnation: this.incarnation,
        marksResends: this.marksResends,
        view,
        buf,
        start,
        end,
      });
    }
    let dropped = 0;
    while (view.nextRecord()) {
      if (!pipeline.process(view.buf, view.recordStart, view.recordEnd, src, seq, view.recordIndex))
        dropped++;
    }
    const stats = this.ctx.stats;
    stats.batchesReceived++;
    stats.recordsIn += view.recordCount;
    stats.recordsDropped += dropped;
    this.batches++;
    this.records += view.recordCount;
    const bytes = end - start;
    this.unackedBytes += bytes;
    this.recentBytes += bytes;
    this.pendingFlushes++;
    this.ctx.o.output.flush().then(
      () => this.onDurable(seq, receivedAt, bytes),
      (err) => this.onError(err),
    );
    if (this.unackedBytes > this.ctx.o.maxUnackedBytes) this.pause(PAUSE_UNACKED);
  }

  private onDurable(seq: number, receivedAt: number, bytes: number): void {
    this.pendingFlushes--;
    this.unackedBytes -= bytes;
    if (this.state === OPEN) this.acks.add(seq, receivedAt);
  }

  private sendAcks(seqs: number[], times: number[]): void {
    if (this.state !== OPEN) return;
    for (const frame of ackFrames(seqs)) this.send(frame);
    this.ctx.stats.batchesAcked += seqs.length;
    const observe = this.ctx.o.onAckLatency;
    if (observe !== undefined) {
      const now = performance.now();
      for (const t of times) observe((now - t) / 1000);
    }
    if ((this.pauseBits & PAUSE_UNACKED) !== 0 && this.unackedBytes <= this.ctx.o.maxUnackedBytes / 2) {
      this.resume(PAUSE_UNACKED);
    }
    if (this.pendingFlushes > 0) return;
    if (this.peerDone) this.endWith(this.peerSaidGoodbye ? 'goodbye' : 'peer-closed');
    else if (this.closeWhenAcked) this.goodbye('drain deadline', 'drain-deadline');
  }

  private onPeerDone(): void {
    this.peerDone = true;
    if (this.pendingFlushes === 0 && !this.acks.pending) {
      this.endWith(this.peerSaidGoodbye ? 'goodbye' : 'peer-closed');
    }
  }

  private onEnd(): void {
    if (this.state === CLOSING) {
      this.destroy(this.reason ?? 'peer-closed');
      return;
    }
    if (this.state === HELLO) {
      this.destroy('peer-closed');
      return;
    }
    try {
      this.decoder.end();
    } catch (err) {
      const code = isLinkProtocolError(err) ? err.code : 'unknown';
      // Counted like any other bad input (the batches it cut are re-sent, never acked).
      bump(this.ctx.stats.protocolErrors, code);
      this.ctx.o.log.warn({ ...this.describe(), code, err: (err as Error).message }, 'link input truncated');
    }
    this.onPeerDone();
  }

  private onError(err: unknown): void {
    if (this.state === CLOSING) return;
    if (isLinkProtocolError(err)) {
      bump(this.ctx.stats.protocolErrors, err.code);
      this.reject(RejectCode.PROTOCOL_ERROR, `${err.code}: ${err.message}`, 'protocol-error');
      return;
    }
    if (err instanceof OutputError) {
      // Nothing more can become durable here: the agent must take its window elsewhere.
      this.reject(RejectCode.OVERLOADED, `enricher output failed (${err.code})`, 'output-failed');
      return;
    }
    this.ctx.o.log.error({ ...this.describe(), err }, 'link connection failed');
    this.reject(RejectCode.UNSPECIFIED, 'internal error', 'server-closing');
  }

  private onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    if (this.state !== HELLO) return;
    this.ctx.stats.handshakeTimeouts++;
    this.reject(
      RejectCode.HANDSHAKE_TIMEOUT,
      `no complete Hello within ${this.ctx.o.handshakeTimeoutMs} ms`,
      'handshake-timeout',
    );
  }

  private goodbye(reason: string, closeReason: LinkCloseReason): void {
    if (this.state !== OPEN) return;
    this.send(encodeControl(MessageType.GOODBYE, { reason }));
    this.endWith(closeReason);
  }

  /** Half-closes after our last frame; reads and discards until the peer closes or the linger ends. */
  private endWith(reason: LinkCloseReason): void {
    if (this.reason === null) this.reason = reason;
    this.state = CLOSING;
    this.clearHandshakeTimer();
    this.decoder.accept(Accepts.CLOSED);
    if (this.pauseBits !== 0) this.socket.resume();
    this.socket.end();
    if (this.lingerTimer === null) {
      this.lingerTimer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
      this.lingerTimer.unref();
    }
  }

  private send(frame: Buffer): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) return;
    if (s.writableLength > MAX_WRITE_BACKLOG) {
      this.ctx.o.log.warn({ ...this.describe(), backlog: s.writableLength }, 'link peer does not read');
      this.destroy('socket-error');
      return;
    }
    s.write(frame);
    this.ctx.stats.bytesOut += frame.length;
    this.lastSent = Date.now();
  }

  private pause(bit: number): void {
    if (this.pauseBits === 0) {
      this.socket.pause();
      this.ctx.stats.connectionsPaused++;
      this.ctx.stats.pauses++;
    }
    this.pauseBits |= bit;
  }

  private resume(bit: number): void {
    if ((this.pauseBits & bit) === 0) return;
    this.pauseBits &= ~bit;
    if (this.pauseBits !== 0) return;
    this.ctx.stats.connectionsPaused--;
    this.lastRecv = Date.now();
    if (this.state !== CLOSING) this.socket.resume();
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  private onSocketClose(): void {
    this.clearHandshakeTimer();
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    if (this.pauseBits !== 0) this.ctx.stats.connectionsPaused--;
    this.pauseBits = 0;
    this.state = CLOSING;
    if (this.reason === null) this.reason = 'peer-closed';
    this.ctx.onClose(this);
  }
}
