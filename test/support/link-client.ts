// A minimal test agent on proto/link: connects (TCP or TLS), says Hello, sends Batches of
// dnstap payloads, collects Acks, answers Pings, records Drain/Reject/Goodbye. No windows,
// no re-sends: tests drive it step by step and look at what came back.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { BatchEncoder, markResent } from '../../proto/link/batch-encoder';
import { Accepts, MessageType } from '../../proto/link/constants';
import { decodeControl, encodeControl, type Reject, type Welcome } from '../../proto/link/control';
import { LinkFrameDecoder } from '../../proto/link/decoder';
import { makeHello } from '../../proto/link/handshake';
import { FIXTURES_DIR, walkFrames } from './dnstap-frames';

export interface TestAgentOptions {
  port: number;
  host?: string;
  /** TLS client options (ca, cert, key, servername ...); absent = plain TCP. */
  tls?: tls.ConnectionOptions;
  agentId?: string;
  incarnation?: string;
  token?: string | Buffer | null;
  contentType?: string;
  /** Offered version range (Hello); default 1..1. */
  minVersion?: number;
  maxVersion?: number;
  /** false: connect only (the test sends what it wants). */
  hello?: boolean;
}

export interface DrainInfo {
  reason: string;
  deadlineMs: number;
}

export class TestAgent {
  welcome: Welcome | null = null;
  reject: Reject | null = null;
  readonly drains: DrainInfo[] = [];
  readonly goodbyes: string[] = [];
  readonly acked = new Set<number>();
  /** Ack frames received (acks are grouped: fewer frames than batches). */
  ackFrames = 0;
  pings = 0;
  /** Called for every acknowledged seq, as its Ack arrives. */
  onAck: ((seq: number) => void) | null = null;
  error: Error | null = null;
  closedFlag = false;
  readonly closed: Promise<void>;
  private readonly decoder: LinkFrameDecoder;
  private readonly encoder = new BatchEncoder();
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    this.decoder = new LinkFrameDecoder({
      accept: Accepts.AGENT_AWAIT_WELCOME,
      onFrame: (type, buf, start, end) => this.onFrame(type, buf, start, end),
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.write(chunk);
      } catch (err) {
        this.error = err as Error;
        socket.destroy();
      }
      this.wake();
    });
    socket.on('error', (err) => {
      this.error ??= err;
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.closedFlag = true;
        this.wake();
        resolve();
      }),
    );
  }

  static async connect(o: TestAgentOptions): Promise<TestAgent> {
    const host = o.host ?? '127.0.0.1';
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = o.tls
        ? tls.connect({ host, port: o.port, ...o.tls }, () => resolve(s))
        : net.connect({ host, port: o.port }, () => resolve(s));
      s.once('error', reject);
    });
    const agent = new TestAgent(socket);
    if (o.hello !== false) {
      const hello = makeHello({
        agentId: o.agentId ?? 'agent-1',
        incarnation: o.incarnation ?? 'inc-1',
        authToken: o.token ?? null,
        contentType: o.contentType,
      });
      if (o.minVersion !== undefined) hello.minProtocolVersion = o.minVersion;
      if (o.maxVersion !== undefined) hello.protocolVersion = o.maxVersion;
      agent.send(encodeControl(MessageType.HELLO, hello));
    }
    return agent;
  }

  /** Resolves with the handshake's answer (or 'closed'). */
  async answer(timeoutMs = 5000): Promise<'welcome' | 'reject' | 'closed'> {
    await this.until(() => this.welcome !== null || this.reject !== null || this.closedFlag, timeoutMs);
    return this.welcome !== null ? 'welcome' : this.reject !== null ? 'reject' : 'closed';
  }

  send(frame: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(frame);
  }

  sendBatch(
    seq: number,
    records: Buffer[],
    opts: { incarnation?: string; sampleRate?: number; resent?: boolean } = {},
  ): number {
    this.encoder.begin(seq, opts.incarnation ?? '', opts.sampleRate ?? 0);
    for (const r of records) if (!this.encoder.append(r)) throw new Error('record does not fit a batch');
    const frame = opts.resent === true ? markResent(this.encoder.finish()) : this.encoder.finish();
    this.send(frame);
    return frame.length;
  }

  goodbye(reason = 'done'): void {
    this.send(encodeControl(MessageType.GOODBYE, { reason }));
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves once every seq in `seqs` was acknowledged; rejects on timeout or close. */
  waitAcks(seqs: Iterable<number>, timeoutMs = 10_000): Promise<void> {
    const want = [...seqs];
    return this.until(() => want.every((s) => this.acked.has(s)), timeoutMs, true);
  }

  /** Resolves when pred() holds (checked on every frame and on close). */
  until(pred: () => boolean, timeoutMs = 5000, failOnClose = false): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
          return true;
        }
        if (failOnClose && this.closedFlag) {
          clearTimeout(timer);
          reject(new Error(`connection closed first (reject: ${JSON.stringify(this.reject)})`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms; acked ${this.acked.size}`));
      }, timeoutMs);
      const waiter = () => {
        if (!check()) this.waiters.push(waiter);
      };
      waiter();
    });
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  private onFrame(type: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case MessageType.WELCOME:
        this.welcome = decodeControl(MessageType.WELCOME, buf, start, end);
        this.decoder.accept(Accepts.AGENT_OPEN);
        break;
      case MessageType.REJECT:
        this.reject = decodeControl(MessageType.REJECT, buf, start, end);
        this.decoder.accept(Accepts.CLOSED);
        break;
      case MessageType.ACK:
        this.ackFrames++;
        for (const s of decodeControl(MessageType.ACK, buf, start, end).seqs) {
          this.acked.add(s);
          this.onAck?.(s);
        }
        break;
      case MessageType.DRAIN:
        this.drains.push(decodeControl(MessageType.DRAIN, buf, start, end));
        break;
      case MessageType.PING:
        this.pings++;
        this.send(
          encodeControl(MessageType.PONG, { nonce: decodeControl(MessageType.PING, buf, start, end).nonce }),
        );
        break;
      case MessageType.GOODBYE:
        this.goodbyes.push(decodeControl(MessageType.GOODBYE, buf, start, end).reason);
        this.decoder.accept(Accepts.CLOSED);
        break;
    }
  }
}

/** dnstap payloads of one fixture capture (default: the bulk unbound capture). */
export function fixtureRecords(name = 'unbound-local-unix-bulk.fstrm'): Buffer[] {
  return walkFrames(fs.readFileSync(path.join(FIXTURES_DIR, name)));
}
