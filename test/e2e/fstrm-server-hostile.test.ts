// FrameStreamServer against misbehaving peers and a slow sink: handshake deadline, no idle
// timeout after START, bad control frames and garbage close only their own connection,
// oversized data frames are skipped and counted, maxConnections holds, and the socket is
// never paused however the sink behaves. Raw bytes come from the independent test builder.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  type ConnectionInfo,
  type FrameSink,
  FrameStreamServer,
  type FrameStreamServerOptions,
} from '../../common/framestream-server';
import * as b from '../support/fstrm-builder';
import {
  captureLog,
  closed,
  connect,
  payload,
  RecordingSink,
  RunRecordingSink,
  sleep,
  TestProducer,
  waitFor,
} from '../support/fstrm-server-helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'fstrm-server-hostile-'));
const servers: FrameStreamServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
async function start(extra: Partial<FrameStreamServerOptions> = {}, sink = new RecordingSink()) {
  const { log, lines } = captureLog();
  const target = path.join(dir, `h${++seq}.sock`);
  const server = new FrameStreamServer({ unixPath: target, sink, log, ...extra });
  servers.push(server);
  await server.listen();
  const reasons: string[] = [];
  server.on('connection-closed', (_c, reason) => reasons.push(reason));
  const closedLog = () => lines.filter((l) => l['msg'] === 'dnstap connection closed');
  return { server, sink, target, lines, reasons, closedLog };
}

/** A raw connection that already completed a unidirectional handshake (START). */
async function rawStreaming(target: string): Promise<net.Socket> {
  const s = await connect(target);
  s.on('error', () => {});
  s.write(b.start());
  return s;
}

test('a client that connects and sends nothing is cut at the handshake deadline', {
  timeout: 10_000,
}, async () => {
  const { server, target, reasons, closedLog } = await start({ handshakeTimeoutMs: 150 });
  const s = await connect(target);
  const t0 = Date.now();
  await closed(s);
  const took = Date.now() - t0;
  assert.ok(took >= 120 && took < 2_000, `cut after ${took} ms`);
  await waitFor(() => reasons.length === 1, 'close event');
  assert.deepEqual(reasons, ['handshake-timeout']);
  assert.equal(server.stats.handshakeTimeouts, 1);
  const line = closedLog()[0]!;
  assert.equal(line['level'], 'warn', 'logged as a warning');
  assert.match(String((line['err'] as { message: string }).message), /no READY or START within 150 ms/);
});

test('READY without the START that must follow ACCEPT is cut at the deadline too', {
  timeout: 10_000,
}, async () => {
  const { target, reasons, closedLog } = await start({ handshakeTimeoutMs: 150 });
  const s = await connect(target);
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  s.write(b.ready(b.CT_DNSTAP));
  await closed(s);
  assert.deepEqual(Buffer.concat(got), b.accept(b.CT_DNSTAP), 'ACCEPT was sent');
  await waitFor(() => reasons.length === 1, 'close event');
  assert.deepEqual(reasons, ['handshake-timeout']);
  assert.match(String((closedLog()[0]!['err'] as { message: string }).message), /no START after READY/);
});

test('after START there is no idle timeout: a quiet producer is kept', { timeout: 10_000 }, async () => {
  const { sink, target, reasons } = await start({ handshakeTimeoutMs: 100 });
  const p = await TestProducer.open(target);
  await sleep(500); // five handshake deadlines of silence
  await p.send([payload(1)]);
  await p.stop();
  await waitFor(() => reasons.length === 1, 'close');
  assert.deepEqual(reasons, ['finished']);
  assert.equal(sink.frames.length, 1);
});

const bad: { name: string; bytes: () => Buffer; code: string }[] = [
  {
    name: 'a control frame over 512 bytes',
    bytes: () => b.bytes(b.u32(0), b.u32(513), b.u32(b.START), Buffer.alloc(509)),
    code: 'FSTRM_CONTROL_TOO_LARGE',
  },
  {
    name: 'garbage (an HTTP request)',
    bytes: () => Buffer.from('GET / HTTP/1.1\r\nHost: dnstap\r\n\r\n'),
    code: 'FSTRM_UNEXPECTED_DATA',
  },
  { name: 'an unknown control type', bytes: () => b.control(0x63), code: 'FSTRM_UNKNOWN_CONTROL' },
  {
    name: 'a control frame with an unknown field type',
    bytes: () => b.control(b.START, [b.field(9, 'x')]),
    code: 'FSTRM_CONTROL_MALFORMED',
  },
  {
    name: 'another content type',
    bytes: () => b.start('protobuf:other'),
    code: 'FSTRM_CONTENT_TYPE_MISMATCH',
  },
  { name: 'a data frame before START', bytes: () => b.data('early'), code: 'FSTRM_UNEXPECTED_DATA' },
  {
    name: 'data after STOP',
    bytes: () => b.bytes(b.start(), b.data('ok'), b.stop(), b.data('late')),
    code: 'FSTRM_UNEXPECTED_DATA',
  },
];

for (const [c, runs] of bad.flatMap((c) => [[c, false] as const, [c, true] as const])) {
  const how = runs ? ' (a sink taking runs, as the agent)' : '';
  test(`${c.name} closes that connection only, logged with ${c.code}${how}`, {
    timeout: 10_000,
  }, async () => {
    const { server, sink, target, reasons, closedLog } = await start(
      {},
      runs ? new RunRecordingSink() : new RecordingSink(),
    );
    const good = await TestProducer.open(target);
    await good.send([payload(1)]);
    const s = await connect(target);
    s.on('error', () => {});
    s.write(c.bytes());
    await closed(s);
    await waitFor(() => reasons.length === 1, 'close event');
    assert.equal(server.stats.protocolErrors[c.code], 1, JSON.stringify(server.stats.protocolErrors));
    const line = closedLog()[0]!;
    assert.equal(line['reason'], 'protocol-error');
    assert.equal((line['err'] as { code: string }).code, c.code);
    // The other connection goes on.
    await good.send([payload(2)]);
    await good.stop();
    await waitFor(() => reasons.length === 2, 'good connection closed');
    assert.deepEqual(sink.payloads(1), [payload(1).toString('latin1'), payload(2).toString('latin1')]);
  });
}

test('oversized data frames are skipped and counted; later frames arrive', { timeout: 10_000 }, async () => {
  const { server, sink, target, reasons, lines } = await start({ maxDataFrameSize: 1024 });
  const s = await rawStreaming(target);
  const stream = b.bytes(
    b.data('a'),
    b.data(Buffer.alloc(1025, 1)),
    b.data('b'),
    b.data(Buffer.alloc(300_000, 2)),
    b.data(Buffer.alloc(1024, 3)),
    b.stop(),
  );
  // Dribbled in small writes so the skipped frames straddle many reads.
  for (let at = 0; at < stream.length; at += 7919) {
    s.write(stream.subarray(at, at + 7919));
    if (at % 10 === 0) await sleep(0);
  }
  await closed(s);
  await waitFor(() => reasons.length === 1, 'close');
  assert.deepEqual(reasons, ['finished']);
  assert.deepEqual(sink.payloads().slice(0, 2), ['a', 'b']);
  assert.equal(sink.frames.length, 3);
  assert.ok(sink.frames[2]!.payload.equals(Buffer.alloc(1024, 3)), 'a frame at the limit is valid');
  assert.equal(server.stats.oversizeFrames, 2);
  assert.equal(server.stats.oversizeBytes, 301_025);
  assert.equal(
    lines.filter((l) => String(l['msg']).startsWith('oversized data frame')).length,
    1,
    'logged once',
  );
});

test('maxConnections holds: extra connections are closed with a logged reason', {
  timeout: 10_000,
}, async () => {
  const { server, target, lines } = await start({ maxConnections: 2 });
  const rejected: string[] = [];
  server.on('connection-rejected', (_remote, reason) => rejected.push(reason));
  const a = await TestProducer.open(target);
  const bb = await TestProducer.open(target);
  const extra = await connect(target);
  extra.on('error', () => {});
  await closed(extra);
  assert.deepEqual(rejected, ['max-connections']);
  assert.equal(server.stats.connectionsRejected, 1);
  assert.equal(server.stats.connectionsOpen, 2);
  const line = lines.find((l) => l['msg'] === 'dnstap connection refused')!;
  assert.equal(line['reason'], 'max-connections');
  assert.equal(line['level'], 'warn');
  await a.stop();
  await waitFor(() => server.stats.connectionsOpen === 1, 'a slot to free up');
  const c = await TestProducer.open(target);
  await c.send([payload(3)]);
  await Promise.all([bb.stop(), c.stop()]);
  await waitFor(() => server.stats.framesIn === 1, 'frame on the new connection');
});

test('a slow, dropping sink never makes the server pause its socket: every write completes', {
  timeout: 30_000,
}, async (t) => {
  const pauses: net.Socket[] = [];
  const realPause = net.Socket.prototype.pause;
  net.Socket.prototype.pause = function (this: net.Socket) {
    pauses.push(this);
    return realPause.call(this);
  };
  after(() => {
    net.Socket.prototype.pause = realPause;
  });
  // A sink whose buffer is "full": it drops every frame (counted) and stalls the event
  // loop now and then as a busy enricher would.
  let offered = 0;
  let dropped = 0;
  const sink: FrameSink = {
    onFrame(_buf: Buffer, _s: number, _e: number, _c: ConnectionInfo) {
      offered++;
      dropped++;
      if (offered % 20_000 === 0) {
        const until = Date.now() + 20;
        while (Date.now() < until) {}
      }
    },
  };
  const { server, target } = await start({ sink });
  let serverSocket: net.Socket | null = null;
  // The socket the connection reads (plain sockets are adopted into common/shared-reads.ts).
  server.once('connection', (c: unknown) => (serverSocket = (c as { socket: net.Socket }).socket));
  const p = await TestProducer.open(target);
  const N = 300_000;
  const frames = Array.from({ length: N }, (_, i) => payload(i));
  const bytes = frames.reduce((n, f) => n + 4 + f.length, 0);
  assert.ok(bytes > 10 * 1024 * 1024, 'far more than the kernel socket buffers hold');
  const t0 = Date.now();
  await p.send(frames); // resolves only when the kernel took every byte: the server read them
  await p.stop();
  const secs = (Date.now() - t0) / 1000;
  assert.equal(offered, N);
  assert.equal(dropped, N);
  assert.equal(server.stats.framesIn, N);
  assert.ok(serverSocket !== null);
  assert.equal(pauses.filter((s) => s === serverSocket).length, 0, 'socket.pause() was never called');
  assert.equal((serverSocket as net.Socket).isPaused(), false);
  t.diagnostic(
    `${N} frames (${(bytes / 1e6).toFixed(1)} MB) through a dropping sink in ${secs.toFixed(2)} s`,
  );
});

test('a throwing sink loses that frame only; counted, logged once, the connection lives on', {
  timeout: 10_000,
}, async () => {
  let n = 0;
  const kept: string[] = [];
  const sink: FrameSink = {
    onFrame(buf, s, e) {
      if (++n % 2 === 0) throw new Error('sink bug');
      kept.push(buf.toString('latin1', s, e));
    },
  };
  const { server, target, reasons, lines } = await start({ sink });
  const p = await TestProducer.open(target);
  await p.send([0, 1, 2, 3, 4].map(payload));
  await p.stop();
  await waitFor(() => reasons.length === 1, 'close');
  assert.deepEqual(reasons, ['finished']);
  assert.deepEqual(
    kept,
    [0, 2, 4].map((i) => payload(i).toString('latin1')),
  );
  assert.equal(server.stats.sinkErrors, 2);
  assert.equal(lines.filter((l) => String(l['msg']).startsWith('frame sink threw')).length, 1);
});

test('a producer that vanishes inside a frame is "truncated", one without STOP is "peer-closed"', {
  timeout: 10_000,
}, async () => {
  const { sink, target, reasons } = await start();
  const cut = await rawStreaming(target);
  cut.end(b.bytes(b.data('whole'), b.data('partial').subarray(0, 6)));
  await closed(cut);
  const quit = await rawStreaming(target);
  quit.end(b.data('last'));
  await closed(quit);
  await waitFor(() => reasons.length === 2, 'both closed');
  assert.deepEqual(reasons, ['truncated', 'peer-closed']);
  assert.deepEqual(sink.payloads(), ['whole', 'last']);
});
