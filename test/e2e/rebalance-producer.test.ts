// The load test's synthetic DNS server (loadtest/producer.ts) against a reference receiver
// built from the test-only Frame Streams builder: bidirectional handshake, steady rate,
// STOP answered with FINISH, every counted frame delivered, valid dnstap payloads, and no
// unbounded queue when the receiver stops reading (frames are skipped and counted instead).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DnstapProducer } from '../../loadtest/producer';
import { decodeDnstap } from '../../proto/dnstap/decoder';
import { DnstapView, MessageType } from '../../proto/dnstap/view';
import { accept, CT_DNSTAP, finish, READY, START, STOP, splitFrames, stop } from '../support/fstrm-builder';

const dir = mkdtempSync(path.join(tmpdir(), 'rebalance-producer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Receiver {
  socketPath: string;
  /** Everything received, once the producer closed. */
  done: Promise<Buffer>;
  received: () => number;
  pause: () => void;
  resume: () => void;
  close: () => void;
}

/** Answers READY with ACCEPT and STOP with FINISH; keeps every byte. */
async function receiver(name: string, onStop: 'finish' | 'close' = 'finish'): Promise<Receiver> {
  const socketPath = path.join(dir, name);
  let conn: net.Socket | null = null;
  const chunks: Buffer[] = [];
  let total = 0;
  let resolveDone: (b: Buffer) => void = () => {};
  const done = new Promise<Buffer>((r) => (resolveDone = r));
  const stopBytes = stop();
  const server = net.createServer((c) => {
    conn = c;
    let answered = false;
    c.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      // READY is the whole first frame; ACCEPT must go back before START can arrive.
      if (!answered && total >= 12) {
        answered = true;
        c.write(accept(CT_DNSTAP));
      }
      const tail = Buffer.concat(chunks.slice(-2)).subarray(-stopBytes.length);
      if (tail.equals(stopBytes)) {
        if (onStop === 'finish') c.write(finish());
        else c.destroy();
      }
    });
    c.on('end', () => {
      c.end();
      resolveDone(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    socketPath,
    done,
    received: () => total,
    pause: () => conn?.pause(),
    resume: () => conn?.resume(),
    close: () => server.close(),
  };
}

function dataFrames(all: Buffer) {
  const events = splitFrames(all);
  const controls = events.filter((e) => e.kind === 'control');
  const data = events.filter((e) => e.kind === 'data');
  return { events, controls, data };
}

test('steady rate over the bidirectional handshake; STOP/FINISH; every counted frame arrives', async () => {
  const r = await receiver('steady.sock');
  const p = new DnstapProducer({ socket: r.socketPath, rate: 5000, seed: 7, identity: 'res-1' });
  await p.start();
  await new Promise((res) => setTimeout(res, 2000));
  const stats = await p.stop();
  const all = await r.done;
  r.close();
  assert.equal(stats.error, null);
  assert.equal(stats.finished, true);
  assert.ok(Math.abs(stats.framesSent - 10_000) < 1000, `sent ${stats.framesSent} in 2 s at 5000/s`);
  assert.equal(stats.framesBehind, 0);
  const { events, controls, data } = dataFrames(all);
  assert.equal(data.length, stats.framesSent);
  assert.equal(
    stats.bytesSent,
    data.reduce((s, e) => s + 4 + e.length, 0),
  );
  assert.deepEqual(
    controls.map((c) => (c.kind === 'control' ? [c.type, c.contentTypes] : null)),
    [
      [READY, [CT_DNSTAP]],
      [START, [CT_DNSTAP]],
      [STOP, []],
    ],
  );
  assert.equal(events.at(-1)!.kind, 'control');
  // Valid dnstap, queries and responses alternating, the identity we set.
  const view = new DnstapView();
  for (let i = 0; i < 200; i++) {
    const e = data[i]!;
    decodeDnstap(all, e.offset, e.offset + e.length, view);
    assert.equal(view.type, i % 2 === 0 ? MessageType.CLIENT_QUERY : MessageType.CLIENT_RESPONSE);
  }
  assert.match(all.toString('latin1', data[0]!.offset, data[0]!.offset + data[0]!.length), /res-1/);
});

test('framesPerWrite 1 and a 2 ms tick: one socket write per frame, every frame arrives in order', async () => {
  const r = await receiver('per-frame.sock');
  const p = new DnstapProducer({ socket: r.socketPath, rate: 4000, seed: 3, tickMs: 2, framesPerWrite: 1 });
  assert.throws(() => new DnstapProducer({ socket: 'x', rate: 1, framesPerWrite: -1 }), /framesPerWrite/);
  assert.throws(() => new DnstapProducer({ socket: 'x', rate: 1, tickMs: 0.5 }), /tickMs/);
  await p.start();
  await new Promise((res) => setTimeout(res, 500));
  const stats = await p.stop();
  const all = await r.done;
  r.close();
  assert.equal(stats.error, null);
  assert.equal(stats.finished, true);
  assert.ok(stats.framesSent >= 1500, `sent ${stats.framesSent} in 0.5 s at 4000/s`);
  assert.equal(stats.writes, stats.framesSent, 'one write per frame');
  const { data } = dataFrames(all);
  assert.equal(data.length, stats.framesSent);
  // Whole, valid dnstap, queries and responses alternating: nothing cut, lost or reordered.
  const view = new DnstapView();
  data.forEach((e, i) => {
    decodeDnstap(all, e.offset, e.offset + e.length, view);
    assert.equal(view.type, i % 2 === 0 ? MessageType.CLIENT_QUERY : MessageType.CLIENT_RESPONSE);
  });
});

test('a receiver that stops reading: frames are skipped and counted, the queue stays bounded', {
  timeout: 30_000,
}, async () => {
  const r = await receiver('stalled.sock');
  const p = new DnstapProducer({ socket: r.socketPath, rate: 50_000 });
  await p.start();
  await new Promise((res) => setTimeout(res, 100));
  r.pause();
  await new Promise((res) => setTimeout(res, 2500));
  const queued = p.stats.bytesSent - r.received();
  assert.ok(p.stats.framesBehind > 0, 'nothing was skipped while the receiver did not read');
  // 4 MiB send-queue bound + one tick of frames + socket buffers.
  assert.ok(queued < 8 << 20, `${queued} bytes queued`);
  r.resume();
  const stats = await p.stop();
  const all = await r.done;
  r.close();
  assert.equal(stats.error, null);
  assert.equal(stats.finished, true);
  assert.equal(dataFrames(all).data.length, stats.framesSent);
});

test('start() gives up with a clear error when nothing listens', async () => {
  const p = new DnstapProducer({ socket: path.join(dir, 'absent.sock'), rate: 10, connectTimeoutMs: 300 });
  await assert.rejects(p.start(), /cannot connect to .*absent\.sock/);
  assert.throws(() => new DnstapProducer({ socket: 'x', rate: 0 }), RangeError);
});

test('a receiver that closes instead of answering FINISH: stop() returns at once with the error', async () => {
  const r = await receiver('no-finish.sock', 'close');
  const p = new DnstapProducer({ socket: r.socketPath, rate: 1000 });
  await p.start();
  await new Promise((res) => setTimeout(res, 200));
  const t0 = Date.now();
  const stats = await p.stop();
  r.close();
  assert.ok(Date.now() - t0 < 2000, `stop() took ${Date.now() - t0} ms`);
  assert.equal(stats.finished, false);
  assert.match(stats.error ?? '', /closed the connection/);
});
