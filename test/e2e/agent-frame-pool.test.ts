// The agent's frame pool (agent/frame-pool.ts) against a stalled first connection, end to end:
// a real in-process agent relays large batches to a link server whose first connection
// welcomes it, then never reads and never acknowledges (its kernel buffers fill, the agent's
// writes there stay outstanding) and answers no keepalive, so the agent gives it up and
// re-sends the window on a second connection, which acknowledges everything at once (the
// pool reuses frames from then on). Only then does the server read the first connection to
// its end. Every complete frame on both connections must be a valid link frame and every
// record in it exactly one of the records sent: reused memory that a stalled write still
// held would show up as other batches' bytes on the first connection, or torn frames. Run
// over plain TCP and over TLS.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import tls from 'node:tls';
import type { Agent } from '../../agent';
import { boundPort, listen } from '../../common/listen';
import {
  Accepts,
  BatchView,
  decodeControl,
  EnricherHandshake,
  encodeControl,
  LinkFrameDecoder,
  MessageType,
} from '../../proto/link';
import { agentSuite, makeAgent, Producer, waitFor } from '../support/agent-harness';
import { makeCerts } from '../support/certs';

const RECORDS = 8_000;
const RECORD_BYTES = 4_000;
const KEEPALIVE_MS = 1000; // the shortest an agent accepts: given up after ~3 s of silence

const { dir } = agentSuite('snowtap-pool2-e2e-');
const certs = makeCerts(dir);

/** Record i: its number, then filler that depends on it (any stray byte shows). */
function record(i: number): Buffer {
  const b = Buffer.allocUnsafe(RECORD_BYTES);
  const head = `rec ${String(i).padStart(8, '0')} `;
  b.write(head, 'latin1');
  for (let k = head.length; k < RECORD_BYTES; k++) b[k] = 33 + ((i * 31 + k * 7) % 90);
  return b;
}

/** The record number `r` is, or a failure naming what is wrong with it. */
function checkRecord(r: Buffer, where: string): number {
  const m = /^rec (\d{8}) /.exec(r.toString('latin1', 0, 13));
  assert.ok(m !== null && r.length === RECORD_BYTES, `${where}: not a record (${r.length} bytes)`);
  const i = Number(m![1]);
  assert.ok(i < RECORDS && r.equals(record(i)), `${where}: record ${i} corrupted`);
  return i;
}

interface Conn {
  id: number;
  /** Every byte read, in order (the stalled connection is parsed once it has ended). */
  raw: Buffer[];
  ended: Promise<void>;
  socket: net.Socket;
}

/** A link server: connection 1 stalls after its Welcome; later ones acknowledge every Batch. */
class StallFirst {
  readonly conns: Conn[] = [];
  /** Record numbers acknowledged on connections after the first. */
  readonly acked = new Set<number>();
  /** What was wrong with a frame received on a live connection (it is then cut). */
  readonly errors: string[] = [];
  port = 0;
  private readonly server: net.Server;
  private readonly handshake = new EnricherHandshake({
    enricherId: 'pool2-e2e',
    keepaliveIntervalMs: KEEPALIVE_MS,
  });

  constructor(tlsOptions: tls.TlsOptions | null) {
    const on = (s: net.Socket) => this.onSocket(s);
    this.server = tlsOptions ? tls.createServer(tlsOptions, on) : net.createServer(on);
  }

  async start(): Promise<void> {
    await listen(this.server, { port: 0, host: '127.0.0.1' });
    this.port = boundPort(this.server);
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  private onSocket(socket: net.Socket): void {
    socket.on('error', () => {});
    const c: Conn = {
      id: this.conns.length + 1,
      raw: [],
      socket,
      ended: new Promise((r) => socket.once('close', () => r())),
    };
    this.conns.push(c);
    const stall = c.id === 1;
    const view = new BatchView();
    const decoder = new LinkFrameDecoder({
      accept: Accepts.ENRICHER_AWAIT_HELLO,
      onFrame: (type, buf, start, end) => {
        if (type === MessageType.HELLO) {
          const v = this.handshake.answer(decodeControl(type, buf, start, end));
          assert.ok(v.ok);
          decoder.accept(Accepts.ENRICHER_OPEN);
          socket.write(encodeControl(MessageType.WELCOME, v.welcome));
          if (stall) socket.pause(); // reads nothing more: the agent's writes back up
        } else if (!stall && type === MessageType.BATCH) {
          view.parse(buf, start, end);
          while (view.nextRecord()) {
            const r = buf.subarray(view.recordStart, view.recordEnd);
            this.acked.add(checkRecord(r, `connection ${c.id} seq ${view.seq}`));
          }
          socket.write(encodeControl(MessageType.ACK, { seqs: [view.seq] }));
        } else if (!stall && type === MessageType.PING) {
          const nonce = decodeControl(type, buf, start, end).nonce;
          socket.write(encodeControl(MessageType.PONG, { nonce }));
        }
      },
    });
    socket.on('data', (d: Buffer) => {
      if (stall) c.raw.push(Buffer.from(d));
      if (stall && c.raw.length > 1) return; // only the Hello is decoded live
      try {
        decoder.write(d);
      } catch (err) {
        this.errors.push(`connection ${c.id}: ${(err as Error).message}`);
        socket.destroy();
      }
    });
  }
}

/** Parses a connection's bytes: every complete frame valid; a cut frame only at the very end. */
function parseStream(chunks: Buffer[], where: string): { batches: number; records: number[] } {
  const view = new BatchView();
  const records: number[] = [];
  let batches = 0;
  const decoder = new LinkFrameDecoder({
    accept: Accepts.ENRICHER_OPEN | Accepts.ENRICHER_AWAIT_HELLO,
    onFrame: (type, buf, start, end) => {
      if (type !== MessageType.BATCH) return;
      batches++;
      view.parse(buf, start, end);
      while (view.nextRecord()) {
        records.push(checkRecord(buf.subarray(view.recordStart, view.recordEnd), `${where} seq ${view.seq}`));
      }
    },
  });
  for (const chunk of chunks) decoder.write(chunk);
  try {
    decoder.end();
  } catch {
    // The agent destroyed the connection mid-write: the last frame may be cut short.
  }
  return { batches, records };
}

async function run(useTls: boolean): Promise<void> {
  const server = new StallFirst(
    useTls ? { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) } : null,
  );
  await server.start();
  after(() => server.close());
  const sock = path.join(dir, `dnstap-${useTls ? 'tls' : 'tcp'}.sock`);
  const agent: Agent = makeAgent(server, {
    dnstapSocket: sock,
    batchRecords: 250, // ~1 MB frames: a few fill the first connection's buffers
    ...(useTls ? { tls: { ca: fs.readFileSync(certs.ca) } } : {}),
  });
  await agent.start();
  const producer = await Producer.open(sock);
  const all = Array.from({ length: RECORDS }, (_, i) => record(i));
  // The first half goes to the first connection at once (about 16 MB: more than its socket
  // buffers take) and backs up there; the rest comes at a steady pace through the stall and
  // after it, so new frames are sealed while the first connection's writes are outstanding
  // and, once the second connection acknowledges, from reused memory.
  const half = RECORDS / 2;
  for (let i = 0; i < half; i += 500) await producer.send(all.slice(i, i + 500));
  for (let i = half; i < RECORDS; i += 100) {
    await producer.send(all.slice(i, i + 100));
    await new Promise((r) => setTimeout(r, 100));
  }
  await waitFor(
    () => server.acked.size === RECORDS || server.errors.length > 0,
    () => `every record acknowledged after the stall (${server.acked.size}/${RECORDS})`,
    30_000,
  );
  assert.ok(agent.client.stats.batchesResent > 0, "the stalled connection's window was re-sent");
  assert.deepEqual(server.errors, [], 'every frame on the live connections intact');
  assert.ok(agent.framePool.reused > 0, 'the pool reused frames while the stalled connection had its writes');
  // Now the first connection is read to its end (the agent destroyed it; the kernel still
  // delivers what it had queued).
  const first = server.conns[0]!;
  first.socket.resume();
  await first.ended;
  const got = parseStream(first.raw, 'stalled connection');
  assert.ok(got.batches > 0, 'the stalled connection carried batches');
  await producer.stop();
}

test('stalled first connection, plain TCP: every frame it eventually delivers is intact while the pool reuses memory', async () => {
  await run(false);
});

test('stalled first connection, TLS: every frame it eventually delivers is intact while the pool reuses memory', async () => {
  await run(true);
});
