// The autoscaling signal sees a heavy agent's backlog (issue 13): the chart's backlog trigger
// sums snowtap_agent_backlog_bytes over the release's agents (helm/snowtap/values.yaml,
// checked against a real Prometheus in test/interop/deploy-scaling-queries.test.ts). With
// striping, that gauge must count what waits behind every stripe, in memory and spooled, and
// return to zero once the enrichers catch up. Three slow enrichers (acks held), one agent
// with --active-connections 3 offered more than they take.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerAgentMetrics } from '../../agent/metrics';
import { agentSuite, makeAgent, Producer, payload, waitFor } from '../support/agent-harness';
import { FakeEnricher } from '../support/fake-enricher';

const { dir, fakes } = agentSuite('agent-backlog-signal-');

async function gauge(registry: Registry, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values[0]?.value ?? Number.NaN;
}

test('a striped agent whose every window is full reports its whole backlog (memory + spool), then zero', async () => {
  const targets: FakeEnricher[] = [];
  for (let i = 0; i < 3; i++) {
    const f = await FakeEnricher.start({ enricherId: `pod-${i}`, manualAck: true, maxInFlight: 2 });
    fakes.push(f);
    targets.push(f);
  }
  const sock = path.join(dir, 'heavy.sock');
  const agent = makeAgent(targets[0]!, {
    dnstapSocket: sock,
    enrichers: targets.map((f) => ({ host: '127.0.0.1', port: f.port })),
    activeConnections: 3,
    batchRecords: 20,
    batchBytes: 4096,
    bufferBytes: 32 * 1024,
    spoolDir: path.join(dir, 'spool'),
  });
  const registry = new Registry();
  registerAgentMetrics(registry, agent);
  await agent.start();
  await waitFor(() => agent.client.roles().active === 3, 'three active stripes');

  const producer = await Producer.open(sock);
  const sent = Array.from({ length: 4000 }, (_, i) => payload(i));
  for (let i = 0; i < sent.length; i += 200) await producer.send(sent.slice(i, i + 200));
  await producer.stop();

  // Every stripe's window is full (2 batches held at each enricher) and the rest waits.
  await waitFor(() => targets.every((f) => f.batches.length >= 2), 'every window full');
  await waitFor(() => agent.buffer.queued > 50, 'batches queued behind the stripes');
  const backlog = await gauge(registry, 'snowtap_agent_backlog_bytes');
  const spooled = await gauge(registry, 'snowtap_agent_spool_bytes');
  assert.ok(spooled > 0, 'the memory buffer overflowed into the spool');
  assert.ok(backlog > 32 * 1024, `backlog ${backlog} B counts more than the memory buffer holds`);
  assert.equal(backlog, agent.buffer.queuedBytes);
  const held = targets.reduce((n, f) => n + f.batches.length, 0);
  assert.equal(held, 6, 'in flight: 2 per stripe, not part of the backlog');

  // The enrichers catch up: everything is acknowledged and the signal returns to zero.
  const release = setInterval(() => {
    for (const f of targets) f.ackAll();
  }, 10);
  try {
    await waitFor(() => agent.client.stats.recordsAcked === sent.length, 'everything acknowledged', 30_000);
  } finally {
    clearInterval(release);
  }
  assert.equal(await gauge(registry, 'snowtap_agent_backlog_bytes'), 0);
});
