// Shared by the fstrm-server-*.test.ts files (not a test itself): an in-process dnstap
// producer built on proto/framestream's sender side, a recording sink, a log catcher,
// and the gate for tests that need Debian binaries.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';
import type { ConnectionInfo, FrameSink } from '../../common/framestream-server';
import { FrameDecoder, FramePacker, WriterSession } from '../../proto/framestream';
import { interopMissing } from './interop';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `cond()` holds; fails with `what` after `ms`. */
export async function waitFor(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Path of a Debian binary, or null after t.skip (a failure when interop is required). */
export function binary(t: TestContext, file: string, pkg: string): string | null {
  if (existsSync(file)) return file;
  interopMissing(t, `${file.split('/').pop()} not installed: apt-get install ${pkg}`);
  return null;
}

export { captureLog } from './capture-log';

/** Keeps a copy of every frame with the id of its connection. */
export class RecordingSink implements FrameSink {
  readonly frames: { conn: number; bidirectional: boolean | null; payload: Buffer }[] = [];
  onFrame(buf: Buffer, start: number, end: number, conn: ConnectionInfo): void {
    this.frames.push({
      conn: conn.id,
      bidirectional: conn.bidirectional,
      payload: Buffer.from(buf.subarray(start, end)),
    });
  }
  payloads(conn?: number): string[] {
    return this.frames
      .filter((f) => conn === undefined || f.conn === conn)
      .map((f) => f.payload.toString('latin1'));
  }
}

/** A RecordingSink that takes runs of frames too (FrameSink.onFrames), as the agent does. */
export class RunRecordingSink extends RecordingSink {
  runs = 0;
  onFrames(buf: Buffer, start: number, end: number, frames: number, conn: ConnectionInfo): void {
    this.runs++;
    let n = 0;
    for (let p = start; p < end; n++) {
      const len = buf.readUInt32BE(p);
      this.onFrame(buf, p + 4, p + 4 + len, conn);
      p += 4 + len;
    }
    if (n !== frames) throw new Error(`run of ${frames} frames held ${n}`);
  }
}

export type Target = string | { host: string; port: number };

/**
 * A raw client socket, connected. allowHalfOpen: stay open after the server's FIN, as a
 * producer that does not watch its socket for reading would.
 */
export function connect(target: Target, allowHalfOpen = false): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s =
      typeof target === 'string'
        ? net.connect({ path: target, allowHalfOpen })
        : net.connect({ port: target.port, host: target.host, allowHalfOpen });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the socket has closed (for any reason). */
export function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed && s.closed ? resolve() : s.once('close', () => resolve())));
}

/** A dnstap sender as a DNS server would be: WriterSession handshake, packed data, STOP. */
export class TestProducer {
  readonly session: WriterSession;
  /** Set when the server ended its side (FIN). */
  serverEnded = false;
  private readyWaiters: (() => void)[] = [];
  private finishWaiters: (() => void)[] = [];

  private constructor(
    readonly socket: net.Socket,
    bidirectional: boolean,
  ) {
    this.session = new WriterSession({ bidirectional });
    const decoder = new FrameDecoder({
      onData: () => assert.fail('the receiver sent a data frame'),
      onControl: (f) => {
        const reply = this.session.onControl(f);
        if (reply !== null) socket.write(reply);
        if (this.session.streaming) for (const w of this.readyWaiters.splice(0)) w();
        if (this.session.state === 'finished') for (const w of this.finishWaiters.splice(0)) w();
      },
    });
    socket.on('data', (d) => decoder.write(d));
    socket.on('end', () => (this.serverEnded = true));
    socket.on('error', () => {}); // tests look at 'close' and counters
  }

  static async open(target: Target, bidirectional = true, allowHalfOpen = false): Promise<TestProducer> {
    const p = new TestProducer(await connect(target, allowHalfOpen), bidirectional);
    p.socket.write(p.session.open());
    if (!p.session.streaming) await new Promise<void>((r) => p.readyWaiters.push(r));
    return p;
  }

  /** Sends the payloads packed into large writes; resolves when the kernel took them all. */
  send(payloads: Iterable<Uint8Array>, capacity = 64 * 1024): Promise<void> {
    const packer = new FramePacker({ capacity });
    let last: Promise<void> = Promise.resolve();
    const flush = () => {
      const bytes = packer.take();
      last = new Promise((resolve, reject) =>
        this.socket.write(bytes, (err) => (err ? reject(err) : resolve())),
      );
    };
    for (const p of payloads) {
      if (!packer.append(p)) {
        flush();
        packer.append(p);
      }
    }
    if (packer.length > 0) flush();
    return last;
  }

  /** STOP; on a bidirectional stream waits for FINISH; then closes. */
  async stop(): Promise<void> {
    const done = closed(this.socket);
    const fin = new Promise<void>((r) => this.finishWaiters.push(r));
    this.socket.write(this.session.stop());
    if (this.session.bidirectional) await fin;
    this.socket.end();
    await done;
  }
}

export function payload(i: number): Buffer {
  return Buffer.from(`frame ${i} ${'x'.repeat(i % 97)}`, 'latin1');
}
