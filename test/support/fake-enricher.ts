// A small enricher stand-in for agent tests, built on proto/link (the real enricher lives in
// enricher/ and is not used here): handshake via EnricherHandshake, Batches parsed with
// BatchView and recorded (records copied), acks sent at once, after a delay, or held until
// the test releases them; the test can Drain, Reject, kill connections, refuse new ones,
// and read back what arrived, on which connection, in which order.

import net from 'node:net';
import tls from 'node:tls';
import { boundPort, listen } from '../../common/listen';
import {
  Accepts,
  BatchView,
  decodeControl,
  EnricherHandshake,
  encodeControl,
  type Hello,
  LinkFrameDecoder,
  MessageType,
} from '../../proto/link';

export interface FakeEnricherOptions {
  enricherId?: string;
  authToken?: string;
  maxInFlight?: number;
  /** Advertised keepalive; 0 (default) = off. */
  keepaliveMs?: number;
  maxFrameBytes?: number;
  /** Ack this long after a batch arrives; 0 = at once. */
  ackDelayMs?: number;
  /** Hold every ack until ackAll(). */
  manualAck?: boolean;
  /** Answer every Hello with this Reject. */
  reject?: { code: number; message?: string; retryAfterMs?: number } | null;
  /** Accept TCP and close at once, without a word (an enricher that is down). */
  refuse?: boolean;
  /** Answer no Pings (a hung peer, for keepalive tests). */
  mute?: boolean;
  tls?: tls.TlsOptions;
}

export interface ReceivedBatch {
  conn: number;
  seq: number;
  /** The Batch's own incarnation, or the Hello's when absent. */
  incarnation: string;
  sampleRate: number;
  records: Buffer[];
  at: number;
}

export interface FakeConn {
  id: number;
  openedAt: number;
  hello: Hello | null;
  welcomedAt: number;
  /** Seqs in arrival order. */
  seqs: number[];
  held: number[];
  closedAt: number;
  goodbye: string | null;
  pings: number;
  socket: net.Socket;
}

export const batchKey = (b: { incarnation: string; seq: number }) => `${b.incarnation}/${b.seq}`;

export class FakeEnricher {
  readonly conns: FakeConn[] = [];
  readonly batches: ReceivedBatch[] = [];
  /** Keys (incarnation/seq) acknowledged, and any re-delivery of an acked key (must stay empty). */
  readonly acked = new Set<string>();
  readonly resentAfterAck: string[] = [];
  /** Every TCP connection accepted, refused ones included (backoff timing). */
  readonly attempts: number[] = [];
  port = 0;
  private readonly server: net.Server;
  private handshake!: EnricherHandshake;

  constructor(public opts: FakeEnricherOptions = {}) {
    this.configure(opts);
    const onSocket = (s: net.Socket) => this.onSocket(s);
    this.server = opts.tls ? tls.createServer(opts.tls, onSocket) : net.createServer(onSocket);
  }

  static async start(opts: FakeEnricherOptions = {}, port = 0): Promise<FakeEnricher> {
    const f = new FakeEnricher(opts);
    await listen(f.server, { port, host: '127.0.0.1' });
    f.port = boundPort(f.server);
    return f;
  }

  /** Changes behaviour from now on (new connections get the new handshake settings). */
  configure(opts: FakeEnricherOptions): void {
    this.opts = { ...this.opts, ...opts };
    this.handshake = new EnricherHandshake({
      enricherId: this.opts.enricherId ?? 'fake-enricher',
      authToken: this.opts.authToken,
      maxInFlightBatches: this.opts.maxInFlight,
      keepaliveIntervalMs: this.opts.keepaliveMs ?? 0,
      maxFrameBytes: this.opts.maxFrameBytes,
    });
  }

  /** Open, welcomed connections. */
  live(): FakeConn[] {
    return this.conns.filter((c) => c.closedAt === 0 && c.welcomedAt > 0);
  }

  /** Every record received, in arrival order, as `incarnation/seq/index` -> payload. */
  records(): Map<string, Buffer> {
    const m = new Map<string, Buffer>();
    for (const b of this.batches) {
      for (let i = 0; i < b.records.length; i++) m.set(`${batchKey(b)}/${i}`, b.records[i]!);
    }
    return m;
  }

  /** Sends every held ack (on connections still open). */
  ackAll(): void {
    for (const c of this.conns) this.ack(c, c.held.splice(0));
  }

  drain(conn: FakeConn, deadlineMs = 1000, reason = 'test drain'): void {
    conn.socket.write(encodeControl(MessageType.DRAIN, { deadlineMs, reason }));
  }

  rejectNow(conn: FakeConn, code: number, message = 'test reject'): void {
    conn.socket.end(encodeControl(MessageType.REJECT, this.handshake.reject(code, message)));
  }

  /** Raw bytes to the agent (protocol error tests). */
  sendRaw(conn: FakeConn, bytes: Buffer): void {
    conn.socket.write(bytes);
  }

  kill(conn: FakeConn): void {
    conn.socket.destroy();
  }

  killAll(): void {
    for (const c of this.conns) c.socket.destroy();
  }

  async close(): Promise<void> {
    this.killAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private ack(c: FakeConn, seqs: number[]): void {
    if (seqs.length === 0 || c.closedAt !== 0 || c.socket.writableEnded) return;
    c.socket.write(encodeControl(MessageType.ACK, { seqs }));
    const inc = c.hello!.incarnation;
    for (const seq of seqs) {
      const b = this.batches.find((x) => x.conn === c.id && x.seq === seq);
      this.acked.add(batchKey(b ?? { incarnation: inc, seq }));
    }
  }

  private onSocket(socket: net.Socket): void {
    this.attempts.push(Date.now());
    socket.on('error', () => {});
    if (this.opts.refuse) {
      socket.destroy();
      return;
    }
    const c: FakeConn = {
      id: this.conns.length + 1,
      openedAt: Date.now(),
      hello: null,
      welcomedAt: 0,
      seqs: [],
      held: [],
      closedAt: 0,
      goodbye: null,
      pings: 0,
      socket,
    };
    this.conns.push(c);
    const view = new BatchView();
    const decoder = new LinkFrameDecoder({
      accept: Accepts.ENRICHER_AWAIT_HELLO,
      onFrame: (type, buf, start, end) => {
        if (type === MessageType.HELLO) {
          c.hello = decodeControl(type, buf, start, end);
          const r = this.opts.reject;
          if (r) {
            socket.end(
              encodeControl(
                MessageType.REJECT,
                this.handshake.reject(r.code, r.message ?? 'no', r.retryAfterMs),
              ),
            );
            return;
          }
          const v = this.handshake.answer(c.hello);
          if (!v.ok) {
            socket.end(encodeControl(MessageType.REJECT, v.reject));
            return;
          }
          decoder.accept(Accepts.ENRICHER_OPEN);
          c.welcomedAt = Date.now();
          socket.write(encodeControl(MessageType.WELCOME, v.welcome));
        } else if (type === MessageType.BATCH) {
          this.onBatch(c, view.parse(buf, start, end));
        } else if (type === MessageType.PING) {
          c.pings++;
          if (!this.opts.mute)
            socket.write(
              encodeControl(MessageType.PONG, { nonce: decodeControl(type, buf, start, end).nonce }),
            );
        } else if (type === MessageType.GOODBYE) {
          c.goodbye = decodeControl(type, buf, start, end).reason;
          decoder.accept(Accepts.CLOSED);
          socket.end();
        }
      },
    });
    socket.on('data', (d: Buffer) => {
      try {
        decoder.write(d);
      } catch {
        socket.destroy();
      }
    });
    socket.on('close', () => (c.closedAt = Date.now()));
  }

  private onBatch(c: FakeConn, v: BatchView): void {
    const b: ReceivedBatch = {
      conn: c.id,
      seq: v.seq,
      incarnation: v.incarnationEnd > v.incarnationStart ? v.incarnation : c.hello!.incarnation,
      sampleRate: v.sampleRate,
      records: [],
      at: Date.now(),
    };
    while (v.nextRecord()) b.records.push(Buffer.from(v.buf.subarray(v.recordStart, v.recordEnd)));
    if (this.acked.has(batchKey(b))) this.resentAfterAck.push(batchKey(b));
    this.batches.push(b);
    c.seqs.push(b.seq);
    if (this.opts.manualAck) c.held.push(b.seq);
    else if (this.opts.ackDelayMs) setTimeout(() => this.ack(c, [b.seq]), this.opts.ackDelayMs);
    else this.ack(c, [b.seq]);
  }
}
