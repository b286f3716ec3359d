// FrameStreamServer with real producers from Debian: fstrm_replay (libfstrm's bidirectional
// writer, unix and TCP) and unbound (dnstap bidirectional and unidirectional), including
// unbound's shutdown time with us attached and its reconnect after we restart.
// Missing binaries skip with the package to install, or fail when SNOWTAP_REQUIRE_INTEROP=1.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { type CloseReason, type ConnectionInfo, FrameStreamServer } from '../../common/framestream-server';
import { silentLogger } from '../../common/log';
import { binary, sleep, waitFor } from '../support/fstrm-server-helpers';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
const CT = 'protobuf:dnstap.Dnstap';
const dir = mkdtempSync(path.join(tmpdir(), 'fstrm-server-interop-'));
const children: ChildProcess[] = [];
const servers: FrameStreamServer[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

/** A server with a counting sink and a record of how each connection ended. */
async function countingServer(where: { unixPath: string } | { tcp: { host: string; port: number } }) {
  const counter = { frames: 0, conns: [] as ConnectionInfo[], closes: [] as CloseReason[] };
  const server = new FrameStreamServer({
    ...where,
    sink: { onFrame: () => void counter.frames++ },
    log: silentLogger(),
  });
  servers.push(server);
  server.on('connection', (c) => counter.conns.push(c));
  server.on('connection-closed', (_c, reason) => counter.closes.push(reason));
  const bound = await server.listen();
  return { server, counter, bound };
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, ms: Date.now() - t0 }));
  });
}

describe('fstrm_replay into the server', { timeout: 60_000 }, () => {
  const cases = [
    { fixture: 'unbound-local-unix.fstrm', frames: 628 },
    { fixture: 'unbound-local-unix-bulk.fstrm', frames: 13002 },
  ];
  for (const transport of ['unix', 'tcp'] as const) {
    for (const { fixture, frames } of cases) {
      test(`${transport}: ${fixture} delivers exactly ${frames} frames, fstrm_replay exits 0 promptly`, async (t) => {
        const replay = binary(t, '/usr/bin/fstrm_replay', 'fstrm-bin');
        if (!replay) return;
        const sock = path.join(dir, `replay-${transport}-${frames}.sock`);
        const { counter, bound } = await countingServer(
          transport === 'unix' ? { unixPath: sock } : { tcp: { host: '127.0.0.1', port: 0 } },
        );
        const target = transport === 'unix' ? ['-u', sock] : ['-a', '127.0.0.1', '-p', String(bound.tcpPort)];
        const { code, stderr, ms } = await run(replay, [
          '-t',
          CT,
          ...target,
          '-r',
          path.join(FIXTURES, fixture),
        ]);
        assert.equal(code, 0, stderr);
        assert.ok(ms < 5_000, `fstrm_replay took ${ms} ms`);
        await waitFor(() => counter.closes.length === 1, 'the connection to close');
        assert.equal(counter.frames, frames);
        assert.deepEqual(counter.closes, ['finished']);
        assert.equal(counter.conns[0]!.bidirectional, true);
      });
    }
  }
});

// ---------------------------------------------------------------------------- unbound

interface Unbound {
  child: ChildProcess;
  port: number;
  log: () => string;
  exited: Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** unbound answering tap.test from local data, dnstap client query+response to `sock`. */
async function startUnbound(name: string, sock: string, bidirectional: boolean): Promise<Unbound> {
  const work = path.join(dir, name);
  mkdirSync(work, { recursive: true });
  const port = await freeUdpPort();
  const conf = path.join(work, 'unbound.conf');
  writeFileSync(
    conf,
    `server:
  username: ""
  chroot: ""
  directory: "${work}"
  pidfile: "${work}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  interface: 127.0.0.1@${port}
  do-ip6: no
  do-tcp: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "tap.test." static
  local-data: "www.tap.test. 60 IN A 198.51.100.1"
remote-control:
  control-enable: no
dnstap:
  dnstap-enable: yes
  dnstap-bidirectional: ${bidirectional ? 'yes' : 'no'}
  dnstap-socket-path: "${sock}"
  dnstap-send-identity: yes
  dnstap-send-version: yes
  dnstap-log-client-query-messages: yes
  dnstap-log-client-response-messages: yes
`,
  );
  const child = spawn('/usr/sbin/unbound', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await waitFor(
    () => log.includes('start of service') || child.exitCode !== null,
    'unbound to start',
    10_000,
  );
  assert.equal(child.exitCode, null, `unbound exited at start:\n${log}`);
  return { child, port, log: () => log, exited };
}

/** Sends queries with ids [from, from+count) and resolves when all are answered. */
async function query(port: number, from: number, count: number): Promise<void> {
  const udp = dgram.createSocket('udp4');
  const pending = new Set<number>();
  for (let id = from; id < from + count; id++) pending.add(id);
  const done = new Promise<void>((resolve) =>
    udp.on('message', (m) => {
      pending.delete(m.readUInt16BE(0));
      if (pending.size === 0) resolve();
    }),
  );
  for (let id = from; id < from + count; id++) {
    const q = dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name: 'www.tap.test' }] });
    udp.send(q, port, '127.0.0.1');
  }
  await Promise.race([done, sleep(5_000)]);
  udp.close();
  assert.equal(pending.size, 0, `${pending.size} of ${count} queries unanswered`);
}

/** SIGTERM to exit, in ms. */
async function stopUnbound(u: Unbound): Promise<number> {
  const t0 = Date.now();
  u.child.kill('SIGTERM');
  await Promise.race([u.exited, sleep(15_000)]);
  assert.notEqual(u.child.exitCode, null, `unbound did not exit on SIGTERM:\n${u.log()}`);
  assert.equal(u.child.exitCode, 0, u.log());
  return Date.now() - t0;
}

const N = 200;

describe('unbound with dnstap to our unix socket', { timeout: 90_000 }, () => {
  for (const bidirectional of [true, false]) {
    test(`dnstap-bidirectional: ${bidirectional ? 'yes' : 'no'}: exactly 2N frames, shutdown not slowed`, async (t) => {
      if (!binary(t, '/usr/sbin/unbound', 'unbound')) return;
      const tag = bidirectional ? 'bi' : 'uni';
      // Baseline: the same unbound with nobody listening on its dnstap socket.
      const lonely = await startUnbound(
        `${tag}-baseline`,
        path.join(dir, `${tag}-nobody.sock`),
        bidirectional,
      );
      await query(lonely.port, 0, N);
      const baselineMs = await stopUnbound(lonely);

      const sock = path.join(dir, `${tag}.sock`);
      const { counter } = await countingServer({ unixPath: sock });
      const u = await startUnbound(tag, sock, bidirectional);
      await waitFor(
        () => counter.conns[0]?.bidirectional != null,
        'unbound to complete the dnstap handshake',
      );
      assert.equal(counter.conns[0]!.bidirectional, bidirectional);
      await query(u.port, 0, N);
      // unbound batches frames (its I/O thread wakes per batch or on a timer).
      await waitFor(() => counter.frames >= 2 * N, `${2 * N} frames`, 10_000);
      const shutdownMs = await stopUnbound(u);
      await waitFor(() => counter.closes.length === 1, 'the dnstap connection to close');
      assert.equal(counter.frames, 2 * N, 'CLIENT_QUERY + CLIENT_RESPONSE per query, nothing more');
      assert.deepEqual(counter.closes, ['finished'], 'unbound sent STOP');
      t.diagnostic(`unbound shutdown: ${shutdownMs} ms with our server, ${baselineMs} ms with no receiver`);
      assert.ok(shutdownMs <= baselineMs + 1_000, `shutdown ${shutdownMs} ms vs baseline ${baselineMs} ms`);
    });
  }

  test('stopping and restarting our server: unbound keeps answering, reconnects, later frames arrive', async (t) => {
    if (!binary(t, '/usr/sbin/unbound', 'unbound')) return;
    const sock = path.join(dir, 'restart.sock');
    const first = await countingServer({ unixPath: sock });
    const u = await startUnbound('restart', sock, true);
    await query(u.port, 0, 50);
    await waitFor(() => first.counter.frames >= 100, 'frames on the first server', 10_000);
    const t0 = Date.now();
    await first.server.close(1_000);
    assert.ok(Date.now() - t0 < 1_500, 'unbound closed on our FIN, or grace ran out');
    // While nobody listens unbound must go on answering (dnstap frames are its to drop).
    await query(u.port, 1000, 50);
    assert.equal(u.child.exitCode, null);

    const second = await countingServer({ unixPath: sock });
    const t1 = Date.now();
    let id = 2000;
    while (second.counter.frames === 0) {
      assert.ok(Date.now() - t1 < 20_000, 'unbound did not reconnect within 20 s');
      await query(u.port, id, 10);
      id += 10;
      await sleep(100);
    }
    t.diagnostic(`unbound reconnected and delivered after ${Date.now() - t1} ms`);
    const shutdownMs = await stopUnbound(u);
    assert.ok(shutdownMs < 2_000, `shutdown took ${shutdownMs} ms`);
    await waitFor(() => second.counter.closes.length === 1, 'second connection closed');
  });
});
