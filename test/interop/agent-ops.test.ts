// Operations: the agent's metrics through a real OpsServer (names, values, promtool's lint),
// /healthz and /readyz (ready while running, not while stopping), SIGTERM-style stop with
// unacknowledged data and no spool (lost, counted, logged loudly), and TLS to the enricher
// (server verified with --tls-ca, mTLS client certificate; a wrong CA fails the dial).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { registerAgentMetrics } from '../../agent';
import { createRegistry, OpsServer } from '../../common/ops-server';
import { captureLog, makeAgent, Producer, payload, stopAll, waitFor } from '../support/agent-harness';
import { makeCerts } from '../support/certs';
import { FakeEnricher } from '../support/fake-enricher';
import { requireInterop } from '../support/peers';

const dir = mkdtempSync(path.join(tmpdir(), 'agent-ops-'));
const fakes: FakeEnricher[] = [];
const ops: OpsServer[] = [];
after(async () => {
  await stopAll();
  await Promise.all([...fakes.map((f) => f.close()), ...ops.map((o) => o.close())]);
  rmSync(dir, { recursive: true, force: true });
});

test('metrics, /healthz, /readyz; promtool check metrics is clean', async () => {
  const f = await FakeEnricher.start();
  fakes.push(f);
  const sock = path.join(dir, 'ops.sock');
  const t0 = performance.now();
  const agent = makeAgent(f, { dnstapSocket: sock, rateLimit: 100, id: 'pod-1' });
  const registry = createRegistry('agent');
  registerAgentMetrics(registry, agent);
  const server = new OpsServer({ host: '127.0.0.1', port: 0, registry, readiness: () => agent.readiness() });
  ops.push(server);
  const { port } = await server.listen();
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  assert.equal((await fetch(url('/readyz'))).status, 503, 'not ready before start');
  await agent.start();
  assert.equal((await fetch(url('/readyz'))).status, 200);
  assert.equal((await fetch(url('/healthz'))).status, 200);
  const p = await Producer.open(sock);
  await p.send(Array.from({ length: 150 }, (_, i) => payload(i)));
  const kept = () => 150 - agent.counters.dropped.rate_limit;
  await waitFor(
    () => agent.counters.recordsIn === 150 && agent.client.stats.recordsAcked === kept(),
    'traffic',
  );
  const secs = (performance.now() - t0) / 1000;
  assert.ok(kept() >= 100 && kept() <= 101 + 100 * secs, `${kept()} kept in ${secs} s`);
  await waitFor(() => agent.client.roles().standby === 1, 'standby');
  await p.stop();
  const text = await (await fetch(url('/metrics'))).text();
  const value = (line: string) => {
    const m = text.split('\n').find((l) => l.startsWith(line + ' '));
    assert.ok(m, `missing ${line}`);
    return Number(m.slice(line.length + 1));
  };
  assert.equal(value('snowtap_agent_records_in_total'), 150);
  assert.equal(value('snowtap_agent_records_acked_total'), kept());
  assert.equal(value('snowtap_agent_records_dropped_total{reason="rate_limit"}'), 150 - kept());
  assert.equal(value('snowtap_agent_records_dropped_total{reason="buffer_full"}'), 0);
  assert.equal(value('snowtap_agent_link_connections{role="active"}'), 1);
  assert.equal(value('snowtap_agent_link_connections{role="standby"}'), 1);
  assert.equal(value('snowtap_agent_input_connections_total'), 1);
  // The producer's unix socket was read through the shared buffer (common/shared-reads.ts):
  // a Node whose socket internals changed would fall back to ordinary reads, and fail here.
  assert.ok(value('snowtap_agent_input_read_path_total{path="shared"}') >= 1);
  assert.equal(value('snowtap_agent_input_read_path_total{path="ordinary"}'), 0);
  // Every read brings at least one whole write, and the producer writes at least one frame
  // (150 data frames, READY, START, STOP) per write: 1..153 reads.
  const reads = value('snowtap_agent_input_reads_total');
  assert.ok(reads >= 1 && reads <= 153, `${reads} reads`);
  assert.ok(value('snowtap_agent_ack_latency_seconds_count') >= 1);
  assert.ok(value('snowtap_agent_batches_acked_total') >= 1);
  assert.equal(value('snowtap_agent_buffer_limit_bytes'), 64 * 1024 * 1024);
  const enricher = agent.options.enrichers.map((e) => `${e.host}:${e.port}`).join(',');
  assert.equal(
    value(`snowtap_agent_info{id="pod-1",incarnation="${agent.options.incarnation}",enricher="${enricher}"}`),
    1,
  );
  assert.equal(value('snowtap_agent_backlog_bytes'), 0, 'everything acknowledged: nothing waits');
  assert.match(text, /snowtap_agent_nodejs_eventloop_lag_seconds /);
  if (existsSync('/usr/bin/promtool')) {
    // Only our families: prom-client's default nodejs_active_*_total gauges fail the lint
    // (common/ops-server.ts registers them; reported, not ours to change).
    const ours = text
      .split('\n')
      .filter((l) => !/^(# (HELP|TYPE) )?snowtap_agent_(nodejs|process)_/.test(l))
      .join('\n');
    const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: ours });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  }
  const stopping = agent.stop();
  const ready = await fetch(url('/readyz'));
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { ready: false, reasons: ['stopping'] });
  await stopping;
});

test('stop with unacknowledged records and no spool: counted as lost (reason shutdown), logged loudly', async () => {
  const f = await FakeEnricher.start({ manualAck: true });
  fakes.push(f);
  const { log, lines } = captureLog();
  const sock = path.join(dir, 'lost.sock');
  const agent = makeAgent(f, { dnstapSocket: sock, drainTimeoutMs: 200, log });
  await agent.start();
  const p = await Producer.open(sock);
  await p.send(Array.from({ length: 30 }, (_, i) => payload(i)));
  await waitFor(() => f.batches.length > 0 && agent.counters.recordsIn === 30, 'sent, unacked');
  await p.stop();
  const t0 = Date.now();
  assert.deepEqual(await agent.stop(), { spooled: 0, lost: 30 });
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(agent.counters.dropped.shutdown, 30);
  assert.ok(lines.some((l) => l.level === 'error' && /30 records .* LOST/.test(String(l.msg))));
  assert.ok(f.conns.every((c) => c.goodbye === 'agent shutting down' || c.welcomedAt === 0));
});

test('TLS: enricher verified with the CA, mTLS client certificate required; a wrong CA fails the dial', async (t) => {
  if (!requireInterop(t, ['openssl'])) return;
  const c = makeCerts(dir);
  const read = (f: string) => readFileSync(f);
  const certs = {
    ca: read(c.ca),
    otherCa: read(c.strangerCa),
    serverKey: read(c.serverKey),
    serverCert: read(c.serverCert),
    clientKey: read(c.clientKey),
    clientCert: read(c.clientCert),
  };
  const f = await FakeEnricher.start({
    tls: {
      key: certs.serverKey,
      cert: certs.serverCert,
      ca: certs.ca,
      requestCert: true,
      rejectUnauthorized: true,
    },
  });
  fakes.push(f);
  const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
  const agent = makeAgent(f, { dnstapSocket: path.join(dir, 'tls.sock'), tls });
  await agent.start();
  await waitFor(() => agent.client.active !== null, 'a TLS connection welcomed');
  const wrong = makeAgent(f, {
    dnstapSocket: path.join(dir, 'tls-wrong.sock'),
    tls: { ...tls, ca: certs.otherCa },
  });
  await wrong.start();
  await waitFor(() => wrong.client.stats.connects >= 2, 'a failed dial and a retry');
  assert.equal(wrong.client.active, null);
  assert.ok(Object.keys(wrong.client.stats.connectFailures).length > 0);
});
