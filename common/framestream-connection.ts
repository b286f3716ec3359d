// One accepted dnstap Frame Streams connection: socket bytes -> FrameDecoder -> ReaderSession,
// data frames handed synchronously to the sink, ACCEPT/FINISH written back at once.
//
// The socket is never paused. A DNS server blocks (or drops) when its dnstap socket stops
// draining, so we always read; when the sink cannot keep up it drops and counts (its policy),
// never us. A handshake deadline catches peers that connect and say nothing; after START there
// is no idle timeout at all, because DNS servers keep dnstap sockets quiet for long stretches.

import type { Socket } from 'node:net';
import {
  FrameDecoder,
  FramestreamError,
  FramestreamErrorCode,
  isFramestreamError,
  ReaderSession,
} from '../proto/framestream';
import { spreadDeadline } from './framestream-admission';
import type { Logger } from './log';
import { onChunks } from './shared-reads';

/** Who sent a frame. The sink may keep a reference; the fields stay valid after close. */
export interface ConnectionInfo {
  /** Unique per server instance, starting at 1. */
  readonly id: number;
  /** 'unix' or 'ip:port' ('[v6]:port'). */
  readonly remote: string;
  /** True after READY, false after a START-first stream, null before the handshake. */
  readonly bidirectional: boolean | null;
}

/** Receives every data frame, synchronously; `buf[start, end)` is valid only during the call. */
export interface FrameSink {
  onFrame(buf: Buffer, start: number, end: number, conn: ConnectionInfo): void;
  /**
   * Optional: `frames` data frames that arrived together, `buf[start, end)` in Frame Streams
   * framing (each payload after its 4-byte big-endian length); valid only during the call.
   * A sink that has it gets most frames this way (a read's complete frames), the rest through
   * onFrame. A throw drops the frames of the run the sink had not taken (counted as a sink error).
   */
  onFrames?(buf: Buffer, start: number, end: number, frames: number, conn: ConnectionInfo): void;
}

/**
 * Why a connection ended (a metrics label, keep the set small and stable):
 * finished = STOP received (and FINISH sent on bidirectional streams); peer-closed = EOF
 * without STOP; truncated = EOF inside a frame; protocol-error = a control frame or frame
 * order the protocol forbids; handshake-timeout = no READY/START in time; socket-error =
 * reset or I/O error; server-closing = we shut down; handshake-evicted = cut unfinished to
 * make room for a newer handshake (the handshaking budget was full); over-capacity = the
 * handshake finished while maxConnections streams were already open.
 */
export type CloseReason =
  | 'finished'
  | 'peer-closed'
  | 'truncated'
  | 'protocol-error'
  | 'handshake-timeout'
  | 'socket-error'
  | 'server-closing'
  | 'handshake-evicted'
  | 'over-capacity';

/** Server-wide counters a connection adds to (owned by FrameStreamServer). */
export interface ConnectionCounters {
  framesIn: number;
  bytesIn: number;
  oversizeFrames: number;
  oversizeBytes: number;
  sinkErrors: number;
  handshakeTimeouts: number;
  protocolErrors: Record<string, number>;
}

export interface ConnectionContext {
  sink: FrameSink;
  log: Logger;
  counters: ConnectionCounters;
  maxDataFrameSize: number;
  handshakeTimeoutMs: number;
  contentType: string;
  onClose: (conn: FrameStreamConnection, reason: CloseReason, error: Error | undefined) => void;
  /** The handshake is over (START seen, or STOP on an empty stream): the connection holds a stream slot. */
  onHandshakeDone: (conn: FrameStreamConnection) => void;
}

/** After STOP (and FINISH) the producer closes; one that lingers is cut after this long. */
export const STOP_LINGER_MS = 5_000;

export class FrameStreamConnection implements ConnectionInfo {
  readonly openedAt = Date.now();
  private readonly session: ReaderSession;
  private readonly decoder: FrameDecoder;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private reason: CloseReason | null = null;
  private error: Error | undefined;
  private draining = false;
  private sinkFailed = false;

  constructor(
    readonly id: number,
    readonly remote: string,
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
  ) {
    this.session = new ReaderSession({ mode: 'stream', contentType: ctx.contentType });
    this.decoder = new FrameDecoder({
      maxDataFrameSize: ctx.maxDataFrameSize,
      onData: (buf, start, end) => this.onData(buf, start, end),
      ...(typeof ctx.sink.onFrames === 'function'
        ? {
            onDataRun: (buf: Buffer, start: number, end: number, n: number) =>
              this.onDataRun(buf, start, end, n),
          }
        : {}),
      onControl: (frame) => {
        const reply = this.session.onControl(frame);
        if (reply !== null) this.socket.write(reply);
        this.afterControl();
      },
      onOversize: (length, offset) => this.onOversize(length, offset),
    });
    this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), spreadDeadline(ctx.handshakeTimeoutMs));
    this.handshakeTimer.unref();
    // No idle timeout ever: Node's default is none, made explicit because it matters.
    socket.setTimeout(0);
    onChunks(socket, (chunk) => this.onChunk(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.fail('socket-error', err));
    socket.on('close', () => this.onSocketClose());
  }

  get bidirectional(): boolean | null {
    return this.session.bidirectional;
  }

  /** Data frames accepted on this connection (including those the sink dropped). */
  get frames(): number {
    return this.session.dataFrames;
  }

  get bytesIn(): number {
    return this.decoder.stats.bytesIn;
  }

  /** Log fields for this connection. */
  describe(): Record<string, unknown> {
    return { conn: this.id, remote: this.remote, bidirectional: this.bidirectional };
  }

  /**
   * Our shutdown. We cannot make the producer send STOP, so: half-close (FIN tells the
   * producer we are going; unbound watches its socket and closes at once, then retries),
   * keep reading what is already in flight for up to graceMs, then destroy (a producer that
   * only writes learns it from EPIPE/ECONNRESET and reconnects). The producer is never left
   * blocked: we read until the very end. Before the handshake there is nothing to save.
   */
  drain(graceMs: number): void {
    if (this.reason !== null || this.draining) return;
    this.draining = true;
    if (graceMs <= 0 || !this.session.streaming) {
      this.destroy(this.session.state === 'finished' ? 'finished' : 'server-closing');
      return;
    }
    this.socket.end();
    this.startLinger(graceMs, 'server-closing');
  }

  /** Closes the connection now; the first reason given wins. */
  destroy(reason: CloseReason, error?: Error): void {
    if (this.reason === null) {
      this.reason = reason;
      this.error = error;
    }
    this.socket.destroy();
  }

  private onChunk(chunk: Buffer): void {
    this.ctx.counters.bytesIn += chunk.length;
    try {
      this.decoder.write(chunk);
    } catch (err) {
      this.onDecodeError(err);
    }
  }

  /** Hot path: one call per data frame. */
  private onData(buf: Buffer, start: number, end: number): void {
    this.session.onData(); // throws FSTRM_UNEXPECTED_DATA outside START..STOP
    this.ctx.counters.framesIn++;
    try {
      this.ctx.sink.onFrame(buf, start, end, this);
    } catch (err) {
      this.onSinkError(err);
    }
  }

  /** Hot path: one call per run of data frames (the sink has onFrames). */
  private onDataRun(buf: Buffer, start: number, end: number, frames: number): void {
    this.session.onDataRun(frames); // throws FSTRM_UNEXPECTED_DATA outside START..STOP
    this.ctx.counters.framesIn += frames;
    try {
      this.ctx.sink.onFrames!(buf, start, end, frames, this);
    } catch (err) {
      this.onSinkError(err);
    }
  }

  private afterControl(): void {
    const state = this.session.state;
    if ((state === 'streaming' || state === 'finished') && this.handshakeTimer !== null) {
      this.clearHandshakeTimer();
      this.ctx.onHandshakeDone(this);
      if (this.reason !== null) return; // refused: over capacity
    }
    if (state === 'streaming') {
      this.ctx.log.info({ ...this.describe(), contentType: this.ctx.contentType }, 'dnstap stream started');
    } else if (state === 'finished') {
      // STOP: FINISH (if any) is already queued; half-close and let the producer go.
      this.socket.end();
      this.startLinger(STOP_LINGER_MS, 'finished');
    }
  }

  private onOversize(length: number, offset: number): void {
    if (!this.session.streaming) {
      // Before START a huge "length" is garbage (an HTTP request, a TLS hello), not dnstap.
      throw new FramestreamError(
        FramestreamErrorCode.UNEXPECTED_DATA,
        `data frame of ${length} bytes at offset ${offset} outside START..STOP (state ${this.session.state})`,
        { offset },
      );
    }
    const c = this.ctx.counters;
    c.oversizeFrames++;
    c.oversizeBytes += length;
    if (this.decoder.stats.oversizeFrames === 1) {
      this.ctx.log.warn(
        { ...this.describe(), length, offset, limit: this.ctx.maxDataFrameSize },
        'oversized data frame skipped (further ones on this connection are only counted)',
      );
    }
  }

  private onSinkError(err: unknown): void {
    this.ctx.counters.sinkErrors++;
    if (this.sinkFailed) return;
    this.sinkFailed = true;
    this.ctx.log.error(
      { ...this.describe(), err },
      'frame sink threw; frame dropped (further sink errors on this connection are only counted)',
    );
  }

  private onDecodeError(err: unknown): void {
    if (isFramestreamError(err)) {
      const codes = this.ctx.counters.protocolErrors;
      codes[err.code] = (codes[err.code] ?? 0) + 1;
      this.fail('protocol-error', err);
    } else {
      this.fail('socket-error', err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onEnd(): void {
    if (this.reason !== null) return;
    let clean = false;
    try {
      this.decoder.end();
      clean = this.session.end();
    } catch (err) {
      // Only FSTRM_TRUNCATED can come out of here: the peer closed inside a frame.
      this.reason = 'truncated';
      this.error = err as Error;
      return;
    }
    this.reason = clean ? 'finished' : this.draining ? 'server-closing' : 'peer-closed';
  }

  private fail(reason: CloseReason, err: Error): void {
    if (this.reason !== null) return;
    // unbound sends STOP and closes without waiting for FINISH: our FINISH then meets EPIPE
    // or a reset. The stream itself ended cleanly.
    if (reason === 'socket-error' && this.session.state === 'finished') this.destroy('finished');
    else this.destroy(reason, err);
  }

  private onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    this.ctx.counters.handshakeTimeouts++;
    this.destroy(
      'handshake-timeout',
      new Error(
        `no ${this.session.state === 'awaiting-start' ? 'START after READY' : 'READY or START'} ` +
          `within ${this.ctx.handshakeTimeoutMs} ms`,
      ),
    );
  }

  private startLinger(ms: number, reason: CloseReason): void {
    if (this.lingerTimer !== null) return;
    this.lingerTimer = setTimeout(() => this.destroy(reason), ms);
    this.lingerTimer.unref();
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer === null) return;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  private onSocketClose(): void {
    this.clearHandshakeTimer();
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.ctx.onClose(this, this.reason ?? (this.draining ? 'server-closing' : 'peer-closed'), this.error);
  }
}
