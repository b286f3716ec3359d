// haproxy as the kube-proxy stand-in of the rebalance load test behaves like kube-proxy where
// the test depends on it: endpoints are added and made NotReady at run time without touching
// established connections, new connections spread uniformly at random over ready endpoints,
// and a fresh haproxy does not replay the same "random" sequence. Interop rule: skipped when
// haproxy is missing, failed instead when SNOWTAP_REQUIRE_INTEROP=1.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, type TestContext, test } from 'node:test';
import { freePort } from '../../loadtest/cluster';
import { HAPROXY_BINARY, Haproxy, haproxyAvailable } from '../../loadtest/haproxy';
import { interopMissing } from '../support/interop';

function needHaproxy(t: TestContext): boolean {
  if (haproxyAvailable()) return true;
  return interopMissing(t, `${HAPROXY_BINARY} not installed: apt-get install haproxy`);
}

/** Backends that answer every connection with their index, then keep it open. */
const backends: net.Server[] = [];
const sockets: net.Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const b of backends) b.close();
});

async function backend(index: number): Promise<number> {
  const server = net.createServer((c) => {
    c.on('error', () => {});
    c.write(String(index));
    c.on('data', (d) => c.write(d));
  });
  backends.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** Connects through haproxy; resolves with the socket and the backend index it reached. */
function connect(port: number): Promise<{ sock: net.Socket; index: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(port, '127.0.0.1');
    sockets.push(sock);
    sock.once('data', (d) => resolve({ sock, index: Number(String(d)) }));
    sock.once('error', reject);
    sock.once('close', () => reject(new Error('closed before the backend answered')));
  });
}

function echo(sock: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 2000);
    sock.once('data', (d) => {
      clearTimeout(timer);
      resolve(String(d) === 'ping');
    });
    sock.write('ping');
  });
}

async function spread(port: number, n: number): Promise<number[]> {
  const counts = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const c = await connect(port);
    counts[c.index]!++;
    c.sock.destroy();
  }
  return counts;
}

test('endpoints come and go at run time; established connections survive both', {
  timeout: 60_000,
}, async (t) => {
  if (!needHaproxy(t)) return;
  const ports = [await backend(0), await backend(1), await backend(2)];
  const h = new Haproxy({ port: await freePort(), slots: 4 });
  t.after(() => h.stop());
  await h.start();
  assert.deepEqual(
    (await h.servers()).map((s) => s.state),
    ['maint', 'maint', 'maint', 'maint'],
  );
  await h.addEndpoint(1, ports[0]!);
  await h.addEndpoint(2, ports[1]!);
  const early = await Promise.all(Array.from({ length: 20 }, () => connect(h.port)));
  assert.ok(early.every((c) => c.index === 0 || c.index === 1));
  await h.addEndpoint(3, ports[2]!);
  const counts = await spread(h.port, 600);
  // Uniform: each of 3 gets 200 +- 60 (more than 5 standard deviations).
  for (const c of counts) assert.ok(c > 140 && c < 260, `not uniform: ${counts}`);
  await h.removeEndpoint(1);
  const later = await spread(h.port, 60);
  assert.equal(later[0], 0, 'a NotReady endpoint got new connections');
  // Connections made before the add and before the removal still work (no reload, no cut).
  for (const c of early) assert.ok(await echo(c.sock));
  const s1 = (await h.servers())[0]!;
  assert.equal(s1.state, 'maint');
  assert.ok(s1.sessions > 0, 'sessions on the removed endpoint were cut');
});

test('a restarted haproxy does not replay the same endpoint sequence', { timeout: 60_000 }, async (t) => {
  if (!needHaproxy(t)) return;
  const ports = [await backend(0), await backend(1), await backend(2)];
  const sequences: string[] = [];
  for (let run = 0; run < 2; run++) {
    const h = new Haproxy({ port: await freePort(), slots: 3 });
    await h.start();
    try {
      for (let k = 0; k < 3; k++) await h.addEndpoint(k + 1, ports[k]!);
      let seq = '';
      for (let i = 0; i < 40; i++) {
        const c = await connect(h.port);
        seq += c.index;
        c.sock.destroy();
      }
      sequences.push(seq);
    } finally {
      await h.stop();
    }
  }
  // Regression: `balance random` in haproxy 2.6 seeds its per-thread PRNG with a constant.
  assert.notEqual(sequences[0], sequences[1]);
});
