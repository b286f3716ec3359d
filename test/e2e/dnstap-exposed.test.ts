// Exposed dnstap TCP inputs (issue 10): TLS with optional client certificates, a source
// allow-list checked before anything is read, refusals counted by reason and logged once per
// source, and the handshaking budget that keeps idle sockets from taking a producer's slot.
// The TLS producer is a Node TLS socket speaking Frame Streams from the independent test
// builders (the Go dnstap CLI has no TLS flags; CoreDNS's client cannot run here).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { FrameStreamServer, type FrameStreamServerOptions } from '../../common/framestream-server';
import { type Certs, makeCerts } from '../support/certs';
import * as b from '../support/fstrm-builder';
import {
  captureLog,
  closed,
  connect,
  payload,
  RecordingSink,
  TestProducer,
  waitFor,
} from '../support/fstrm-server-helpers';
import * as procs from '../support/pipeline-procs';

const dir = mkdtempSync(path.join(tmpdir(), 'dnstap-exposed-'));
let certs: Certs;
const servers: FrameStreamServer[] = [];
before(() => {
  certs = makeCerts(dir);
});
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

const pem = (f: string) => readFileSync(f);

async function start(extra: Partial<FrameStreamServerOptions> = {}) {
  const sink = new RecordingSink();
  const { log, lines } = captureLog();
  const server = new FrameStreamServer({ tcp: { host: '127.0.0.1', port: 0 }, sink, log, ...extra });
  servers.push(server);
  const { tcpPort } = await server.listen();
  return { server, sink, lines, port: tcpPort! };
}

/** Bidirectional Frame Streams over TLS from the test builders: READY, ACCEPT, START, data, STOP, FINISH. */
async function tlsProduce(port: number, opts: tls.ConnectionOptions, payloads: Buffer[]): Promise<Buffer> {
  const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts });
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  await new Promise<void>((resolve, reject) => {
    s.once('secureConnect', () => resolve());
    s.once('error', reject);
  });
  const until = async (want: Buffer) => {
    const t0 = Date.now();
    while (!Buffer.concat(got).equals(want)) {
      if (s.destroyed || Date.now() - t0 > 5_000)
        throw new Error(`no ${want.toString('hex')} from the server`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  s.write(b.ready(b.CT_DNSTAP));
  await until(b.accept(b.CT_DNSTAP));
  s.write(Buffer.concat([b.start(), ...payloads.map((p) => b.data(p)), b.stop()]));
  await until(Buffer.concat([b.accept(b.CT_DNSTAP), b.finish()]));
  s.end();
  await closed(s);
  return Buffer.concat(got);
}

/** Resolves with how a TLS client fared: 'ok' after a full exchange, else the error. */
async function tlsOutcome(port: number, opts: tls.ConnectionOptions): Promise<string> {
  try {
    await tlsProduce(port, opts, [payload(1)]);
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

test('TLS input: a TLS producer without a client certificate streams (CoreDNS has none)', async () => {
  const { sink, server, port } = await start({
    tls: { cert: pem(certs.serverCert), key: pem(certs.serverKey) },
  });
  const payloads = [payload(1), payload(2), payload(3)];
  await tlsProduce(port, { ca: pem(certs.ca) }, payloads);
  await waitFor(() => sink.frames.length === 3, 'three frames');
  assert.deepEqual(
    sink.frames.map((f) => f.payload),
    payloads,
  );
  assert.equal(server.stats.connectionsTotal, 1);
});

test('TLS input: a plaintext producer on the TLS port is refused before any frame, counted as tls-handshake', async () => {
  const { sink, server, port } = await start({
    tls: { cert: pem(certs.serverCert), key: pem(certs.serverKey) },
  });
  const s = await connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  s.write(b.ready(b.CT_DNSTAP));
  await closed(s);
  await waitFor(() => server.stats.refusedByReason['tls-handshake'] === 1, 'the refusal to be counted');
  assert.equal(sink.frames.length, 0);
  assert.equal(server.stats.connectionsTotal, 0);
});

test('mTLS input (a CA given): a producer without a client certificate is refused', async () => {
  const { server, port } = await start({
    tls: { cert: pem(certs.serverCert), key: pem(certs.serverKey), ca: pem(certs.ca) },
  });
  assert.notEqual(await tlsOutcome(port, { ca: pem(certs.ca) }), 'ok');
  await waitFor(() => server.stats.refusedByReason['tls-handshake'] === 1, 'the refusal to be counted');
  assert.equal(server.stats.connectionsTotal, 0);
});

test('mTLS input: a certificate from a CA the server does not trust is refused', async () => {
  const { server, port } = await start({
    tls: { cert: pem(certs.serverCert), key: pem(certs.serverKey), ca: pem(certs.ca) },
  });
  const outcome = await tlsOutcome(port, {
    ca: pem(certs.ca),
    cert: pem(certs.strangerCert),
    key: pem(certs.strangerKey),
  });
  assert.notEqual(outcome, 'ok');
  await waitFor(() => server.stats.refusedByReason['tls-handshake'] === 1, 'the refusal to be counted');
  assert.equal(server.stats.connectionsTotal, 0);
});

test('mTLS input: a certificate signed by the CA streams', async () => {
  const { sink, port } = await start({
    tls: { cert: pem(certs.serverCert), key: pem(certs.serverKey), ca: pem(certs.ca) },
  });
  const outcome = await tlsOutcome(port, {
    ca: pem(certs.ca),
    cert: pem(certs.clientCert),
    key: pem(certs.clientKey),
  });
  assert.equal(outcome, 'ok');
  await waitFor(() => sink.frames.length === 1, 'the frame');
});

test('allow-list: a source outside it is closed unread, counted as not-allowed, logged once for a flood', async () => {
  const { server, sink, lines, port } = await start({ allow: ['10.0.0.0/8', '::1'] });
  for (let i = 0; i < 20; i++) {
    const s = await connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.write(b.start());
    await closed(s);
  }
  assert.equal(server.stats.refusedByReason['not-allowed'], 20);
  assert.equal(sink.frames.length, 0);
  const logged = lines.filter((l) => l.msg === 'dnstap connection refused');
  assert.equal(logged.length, 1, 'one line per source and reason per window');
  assert.equal(logged[0]!.reason, 'not-allowed');
  assert.equal(logged[0]!.source, '127.0.0.1');
});

test('allow-list: a source inside it streams', async () => {
  const { sink, port } = await start({ allow: ['127.0.0.0/8'] });
  const p = await TestProducer.open({ host: '127.0.0.1', port });
  await p.send([payload(7)]);
  await p.stop();
  await waitFor(() => sink.frames.length === 1, 'the frame');
});

test('handshaking budget: idle sockets are cut oldest first and never take a producer slot', async () => {
  const { server, sink, port } = await start({ maxConnections: 2, maxHandshaking: 4 });
  const idle: net.Socket[] = [];
  for (let i = 0; i < 12; i++) {
    const s = await connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    idle.push(s);
  }
  await waitFor(() => (server.stats.refusedByReason['handshake-evicted'] ?? 0) >= 8, 'evictions');
  assert.ok(server.stats.connectionsHandshaking <= 4, `${server.stats.connectionsHandshaking} handshaking`);
  // The first eight (the oldest) were cut; the newest four are still open.
  await Promise.all(idle.slice(0, 8).map(closed));
  assert.ok(idle.slice(8).every((s) => !s.destroyed));
  const a = await TestProducer.open({ host: '127.0.0.1', port });
  const c = await TestProducer.open({ host: '127.0.0.1', port });
  await a.send([payload(1)]);
  await c.send([payload(2)]);
  await Promise.all([a.stop(), c.stop()]);
  await waitFor(() => sink.frames.length === 2, 'both producers');
  for (const s of idle) s.destroy();
});

test('maxConnections counts streams only: a producer past its handshake over the cap is refused', async () => {
  const { server, port } = await start({ maxConnections: 1 });
  const a = await TestProducer.open({ host: '127.0.0.1', port });
  const extra = await connect({ host: '127.0.0.1', port });
  extra.on('error', () => {});
  await closed(extra);
  assert.equal(server.stats.refusedByReason['max-connections'], 1);
  await a.stop();
});

test('agent CLI: --dnstap-tcp with --dnstap-tls-cert/--dnstap-tls-key takes a TLS producer', {
  timeout: 60_000,
}, async (t) => {
  const enricher = await procs.startEnricher(t, path.join(procs.tmpDir(t, 'exposed-cli-'), 'out'));
  const port = await procs.freeTcpPort();
  const agent = await procs.startAgent(t, [
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--dnstap-tcp',
    `127.0.0.1:${port}`,
    '--dnstap-tls-cert',
    certs.serverCert,
    '--dnstap-tls-key',
    certs.serverKey,
  ]);
  await procs.waitUntil(() => agent.log().includes('"agent started"'), 'the agent listening');
  await tlsProduce(port, { ca: pem(certs.ca) }, [payload(1), payload(2), payload(3)]);
  await procs.waitUntil(
    async () => (await procs.metric(agent.metricsPort, 'snowtap_agent_records_in_total')) === 3,
    'three records at the agent',
  );
});
