// FrameStreamServer with an in-process producer over real unix and TCP sockets: both
// handshake directions, exact bytes in order, STOP answered by FINISH, concurrent
// connections, shutdown semantics, the unix socket file's life, option validation.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type FrameSink,
  FrameStreamServer,
  FrameStreamServerErrorCode,
  type FrameStreamServerOptions,
} from '../../common/framestream-server';
import { silentLogger } from '../../common/log';
import {
  closed,
  connect,
  payload,
  RecordingSink,
  sleep,
  type Target,
  TestProducer,
  waitFor,
} from '../support/fstrm-server-helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'fstrm-server-basic-'));
const servers: FrameStreamServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

let sockSeq = 0;
async function start(
  extra: Partial<FrameStreamServerOptions> & { transport?: 'unix' | 'tcp' } = {},
): Promise<{ server: FrameStreamServer; sink: RecordingSink; target: Target }> {
  const { transport = 'unix', ...rest } = extra;
  const sink = new RecordingSink();
  const unixPath = path.join(dir, `s${++sockSeq}.sock`);
  const server = new FrameStreamServer({
    ...(transport === 'unix' ? { unixPath } : { tcp: { host: '127.0.0.1', port: 0 } }),
    sink,
    log: silentLogger(),
    ...rest,
  });
  servers.push(server);
  const where = await server.listen();
  const target = transport === 'unix' ? unixPath : { host: '127.0.0.1', port: where.tcpPort! };
  return { server, sink, target };
}

for (const transport of ['unix', 'tcp'] as const) {
  for (const bidirectional of [true, false]) {
    test(`${transport} ${bidirectional ? 'bidirectional' : 'unidirectional'}: frames in order, exact bytes, clean end`, async () => {
      const { server, sink, target } = await start({ transport });
      const closedReasons: string[] = [];
      server.on('connection-closed', (_c, reason) => closedReasons.push(reason));
      const producer = await TestProducer.open(target, bidirectional);
      const payloads = Array.from({ length: 5000 }, (_, i) => payload(i));
      // Small packer batches so frames straddle socket reads as well as sit whole in them.
      await producer.send(payloads, 1000);
      await producer.stop(); // bidirectional: resolves only after FINISH arrived
      assert.equal(producer.session.state, 'finished');
      assert.ok(producer.serverEnded, 'server half-closed after STOP');
      await waitFor(() => closedReasons.length === 1, 'connection-closed');
      assert.deepEqual(closedReasons, ['finished']);
      assert.deepEqual(
        sink.payloads(),
        payloads.map((p) => p.toString('latin1')),
      );
      assert.ok(sink.frames.every((f) => f.bidirectional === bidirectional));
      assert.equal(server.stats.framesIn, 5000);
      assert.equal(server.stats.connectionsOpen, 0);
      assert.equal(server.stats.connectionsTotal, 1);
      assert.deepEqual(server.stats.closedByReason, { finished: 1 });
      assert.deepEqual(server.stats.protocolErrors, {});
      assert.ok(server.stats.bytesIn > 5000 * 4);
    });
  }
}

test('two concurrent connections from one producer (pdns_recursor opens several) keep their own streams', async () => {
  const { server, sink, target } = await start();
  const a = await TestProducer.open(target, true);
  const b = await TestProducer.open(target, false);
  const ids: number[] = [];
  server.on('connection-closed', (c) => ids.push(c.id));
  const pa = Array.from({ length: 300 }, (_, i) => Buffer.from(`a${i}`));
  const pb = Array.from({ length: 300 }, (_, i) => Buffer.from(`b${i}`));
  for (let i = 0; i < 300; i += 50) {
    await a.send(pa.slice(i, i + 50));
    await b.send(pb.slice(i, i + 50));
  }
  await Promise.all([a.stop(), b.stop()]);
  await waitFor(() => ids.length === 2, 'both connections closed');
  const conns = [...new Set(sink.frames.map((f) => f.conn))];
  assert.equal(conns.length, 2);
  const [ca, cb] = sink.frames[0]!.payload.toString()[0] === 'a' ? conns : [conns[1]!, conns[0]!];
  assert.deepEqual(sink.payloads(ca), pa.map(String));
  assert.deepEqual(sink.payloads(cb), pb.map(String));
});

test('a 1 MiB data frame is valid by default', async () => {
  const { sink, target } = await start();
  const big = Buffer.alloc(1024 * 1024, 7);
  big[0] = 1;
  const p = await TestProducer.open(target);
  await p.send([payload(1), big, payload(2)]);
  await p.stop();
  await waitFor(() => sink.frames.length === 3, '3 frames');
  assert.ok(sink.frames[1]!.payload.equals(big));
});

describe('close()', { timeout: 20_000 }, () => {
  test('a producer that goes on being connected is released within the grace period; in-flight data still arrives', async () => {
    const { server, sink, target } = await start();
    const p = await TestProducer.open(target, true, true);
    await p.send([payload(0)]);
    await waitFor(() => sink.frames.length === 1, 'the stream to start');
    // Still in the socket buffers when close() begins: read during the grace period.
    await p.send(Array.from({ length: 999 }, (_, i) => payload(i + 1)));
    const t0 = Date.now();
    const reasons: string[] = [];
    server.on('connection-closed', (_c, r) => reasons.push(r));
    // This producer ignores our FIN (a real one closes and reconnects), so grace runs out.
    await server.close(300);
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2_000, `close took ${took} ms`);
    assert.equal(sink.frames.length, 1000);
    assert.ok(p.serverEnded, 'producer saw our FIN at once');
    assert.deepEqual(reasons, ['server-closing']);
    p.socket.destroy();
    await assert.doesNotReject(server.close(), 'close() is idempotent');
  });

  test('a producer that closes on our FIN lets close() finish at once', async () => {
    const { server, target } = await start();
    const p = await TestProducer.open(target, true, true);
    p.socket.on('end', () => p.socket.end()); // what unbound and libfstrm do
    const t0 = Date.now();
    await server.close(10_000);
    assert.ok(Date.now() - t0 < 1_000);
  });

  test('connections still in their handshake and new connections are cut at once', async () => {
    const { server, target } = await start({ transport: 'tcp' });
    const silent = await connect(target);
    silent.on('error', () => {});
    const t0 = Date.now();
    await server.close(10_000);
    assert.ok(Date.now() - t0 < 1_000);
    await closed(silent);
    await assert.rejects(connect(target), /ECONNREFUSED/);
  });

  test('close(0) destroys at once and removes the unix socket file', async () => {
    const { server, target } = await start();
    await TestProducer.open(target);
    await server.close(0);
    assert.equal(existsSync(target as string), false);
  });
});

describe('unix socket file', () => {
  test('is created with mode 0666 by default (DNS servers connect as their own user), configurable', async () => {
    const a = await start();
    assert.equal(statSync(a.target as string).mode & 0o777, 0o666);
    const b = await start({ socketMode: 0o660 });
    assert.equal(statSync(b.target as string).mode & 0o777, 0o660);
  });

  test('a stale socket file (nobody listening) is replaced', async () => {
    const p = path.join(dir, 'stale.sock');
    // A process that dies without closing its listener leaves the file behind.
    const r = spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(p)}, () => process.exit(0))`,
    ]);
    assert.equal(r.status, 0);
    assert.ok(statSync(p).isSocket());
    const sink = new RecordingSink();
    const server = new FrameStreamServer({ unixPath: p, sink, log: silentLogger() });
    servers.push(server);
    await server.listen();
    const prod = await TestProducer.open(p);
    await prod.send([payload(1)]);
    await prod.stop();
    await waitFor(() => sink.frames.length === 1, 'frame');
  });

  test('a live socket is never taken over', async () => {
    const p = path.join(dir, 'live.sock');
    const other = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => other.listen(p, r));
    after(() => other.close());
    const server = new FrameStreamServer({ unixPath: p, sink: new RecordingSink(), log: silentLogger() });
    await assert.rejects(server.listen(), { code: FrameStreamServerErrorCode.ADDRESS_IN_USE });
    assert.ok(statSync(p).isSocket());
  });

  test('a path that is not a socket is never removed', async () => {
    const p = path.join(dir, 'regular-file');
    writeFileSync(p, 'keep me');
    const server = new FrameStreamServer({ unixPath: p, sink: new RecordingSink(), log: silentLogger() });
    await assert.rejects(server.listen(), { code: FrameStreamServerErrorCode.NOT_A_SOCKET });
    assert.ok(statSync(p).isFile());
  });

  test('a missing directory is a typed listen error naming the path', async () => {
    const p = path.join(dir, 'no-such-dir', 'x.sock');
    const server = new FrameStreamServer({ unixPath: p, sink: new RecordingSink(), log: silentLogger() });
    await assert.rejects(server.listen(), (err: Error & { code: string }) => {
      assert.equal(err.code, FrameStreamServerErrorCode.LISTEN_FAILED);
      assert.ok(err.message.includes(p));
      return true;
    });
  });
});

test('unix and TCP listeners on one server share the sink and the counters', async () => {
  const sink = new RecordingSink();
  const unixPath = path.join(dir, 'both.sock');
  const server = new FrameStreamServer({
    unixPath,
    tcp: { host: '127.0.0.1', port: 0 },
    sink,
    log: silentLogger(),
  });
  servers.push(server);
  const where = await server.listen();
  assert.equal(where.unixPath, unixPath);
  const remotes: string[] = [];
  server.on('connection', (c) => remotes.push(c.remote));
  const u = await TestProducer.open(unixPath);
  const t = await TestProducer.open({ host: '127.0.0.1', port: where.tcpPort! });
  await u.send([payload(1)]);
  await t.send([payload(2)]);
  await Promise.all([u.stop(), t.stop()]);
  await waitFor(() => server.stats.framesIn === 2, '2 frames');
  assert.equal(remotes[0], 'unix');
  assert.match(remotes[1]!, /^127\.0\.0\.1:\d+$/);
});

test('TCP port in use is ADDRESS_IN_USE', async () => {
  const a = await start({ transport: 'tcp' });
  const port = (a.target as { port: number }).port;
  const server = new FrameStreamServer({
    tcp: { host: '127.0.0.1', port },
    sink: a.sink,
    log: silentLogger(),
  });
  await assert.rejects(server.listen(), { code: FrameStreamServerErrorCode.ADDRESS_IN_USE });
});

test('options are validated at construction, naming the field', () => {
  const sink: FrameSink = { onFrame() {} };
  const log = silentLogger();
  const bad = (o: unknown, re: RegExp) =>
    assert.throws(
      () => new FrameStreamServer(o as FrameStreamServerOptions),
      (err: Error & { code: string }) => {
        assert.equal(err.code, FrameStreamServerErrorCode.INVALID_OPTION);
        assert.match(err.message, re);
        return true;
      },
    );
  bad({ sink, log }, /unixPath, tcp or both/);
  bad({ unixPath: '/x', sink, log, maxFrameSize: 1 }, /unknown option "maxFrameSize"/);
  bad({ unixPath: '/x', sink, log, handshakeTimeoutMs: 0 }, /handshakeTimeoutMs/);
  bad({ unixPath: '/x', sink, log, maxConnections: 1.5 }, /maxConnections/);
  bad({ unixPath: '/x', sink, log, socketMode: 0o1777 }, /socketMode/);
  bad({ tcp: { host: '127.0.0.1', port: 70000 }, sink, log }, /tcp\.port/);
  bad({ unixPath: '/x', sink: {}, log }, /sink/);
});

test('listen() twice is an error', async () => {
  const { server } = await start();
  await assert.rejects(server.listen(), { code: FrameStreamServerErrorCode.INVALID_STATE });
  await sleep(0);
});

test('close() during listen() leaves nothing listening', async () => {
  const unixPath = path.join(dir, 'racing.sock');
  const server = new FrameStreamServer({ unixPath, sink: new RecordingSink(), log: silentLogger() });
  const listening = server.listen();
  await server.close();
  await assert.rejects(listening, { code: FrameStreamServerErrorCode.INVALID_STATE });
  await sleep(20);
  await assert.rejects(connect(unixPath), /ENOENT|ECONNREFUSED/);
});
