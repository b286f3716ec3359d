// Two connections and switching (LINK.md "Two connections"): with a short switch interval
// the enricher sees new connections regularly, each welcomed before it carries a batch;
// traffic moves to the newest one and nothing is lost, duplicated or reordered. With
// switching off, traffic stays on one connection. setEndpoints()/switchNow() (the hook
// for discovery) move traffic to another address at once.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Agent } from '../../agent';
import {
  agentSuite,
  makeAgent,
  Producer,
  payload,
  receivedPayloads,
  sleep,
  uniquePayloads,
  waitFor,
} from '../support/agent-harness';
import { FakeEnricher } from '../support/fake-enricher';

const { dir, fakes } = agentSuite('agent-switch-');

let n = 0;
async function setup(extra: Parameters<typeof makeAgent>[1]) {
  const f = await FakeEnricher.start();
  fakes.push(f);
  const sock = path.join(dir, `a${++n}.sock`);
  const agent = makeAgent(f, { dnstapSocket: sock, ...extra });
  await agent.start();
  await waitFor(() => agent.client.active !== null, 'an active connection');
  return { f, agent, sock };
}

/** Sends `bursts` x `per` distinct records, one burst every `gapMs`; returns them all. */
async function traffic(sock: string, bursts: number, per: number, gapMs: number): Promise<Buffer[]> {
  const p = await Producer.open(sock);
  const sent: Buffer[] = [];
  for (let i = 0; i < bursts; i++) {
    const burst = Array.from({ length: per }, (_, j) => payload(i * per + j));
    sent.push(...burst);
    await p.send(burst);
    await sleep(gapMs);
  }
  await p.stop();
  return sent;
}

function assertExactlyOnce(f: FakeEnricher, sent: Buffer[]): void {
  const got = receivedPayloads(f);
  assert.equal(got.length, sent.length, 'no record lost or duplicated');
  for (let i = 0; i < sent.length; i++)
    assert.ok(got[i]!.equals(sent[i]!), `record ${i} out of order or changed`);
  assert.deepEqual(f.resentAfterAck, []);
}

async function allAcked(agent: Agent, f: FakeEnricher, records: number): Promise<void> {
  await waitFor(
    () => agent.client.stats.recordsAcked === records,
    () =>
      `${records} records acknowledged (have ${agent.client.stats.recordsAcked}, fake got ${receivedPayloads(f).length})`,
  );
}

test('switching every 0.3 s: new connections, each welcomed before batches; traffic moves; nothing lost', async () => {
  const { f, agent, sock } = await setup({ switchIntervalMs: 300, batchRecords: 50 });
  let maxOpen = 0;
  const poll = setInterval(
    () => (maxOpen = Math.max(maxOpen, f.conns.filter((c) => c.closedAt === 0).length)),
    2,
  );
  const sent = await traffic(sock, 40, 60, 40);
  await allAcked(agent, f, sent.length);
  clearInterval(poll);
  assertExactlyOnce(f, sent);
  assert.ok(agent.client.stats.switches >= 3, `switches: ${agent.client.stats.switches}`);
  assert.ok(f.conns.length >= 5, `connections: ${f.conns.length}`);
  const carriers = new Set(f.batches.map((b) => b.conn));
  assert.ok(carriers.size >= 3, `batches on ${carriers.size} connections`);
  for (const b of f.batches) {
    const c = f.conns[b.conn - 1]!;
    assert.ok(
      c.welcomedAt > 0 && c.welcomedAt <= b.at,
      `batch ${b.seq} on connection ${c.id} before its Welcome`,
    );
  }
  // The old active gets no new batches after a switch: connection ids only grow with seq.
  for (let i = 1; i < f.batches.length; i++) {
    assert.ok(
      f.batches[i]!.conn >= f.batches[i - 1]!.conn,
      `seq ${f.batches[i]!.seq} went back to an old connection`,
    );
    assert.ok(f.batches[i]!.seq > f.batches[i - 1]!.seq);
  }
  // Make-before-break: at most active + standby + the new one + one retiring.
  assert.ok(maxOpen <= 4, `up to ${maxOpen} connections open at once`);
  // Retired standbys said Goodbye.
  assert.ok(f.conns.some((c) => c.goodbye === 'switched away'));
});

test('switching off: one connection carries everything, a standby waits idle', async () => {
  const { f, agent, sock } = await setup({ switchIntervalMs: 0, batchRecords: 50 });
  const sent = await traffic(sock, 20, 60, 40);
  await allAcked(agent, f, sent.length);
  assertExactlyOnce(f, sent);
  assert.equal(agent.client.stats.switches, 0);
  assert.equal(new Set(f.batches.map((b) => b.conn)).size, 1);
  await waitFor(() => f.live().length === 2, 'active + standby');
  assert.equal(f.conns.length, 2);
  assert.deepEqual(agent.client.roles(), { active: 1, standby: 1, connecting: 0, retiring: 0 });
});

test('setEndpoints() to another address moves traffic there at once (the discovery hook)', async () => {
  const { f, agent, sock } = await setup({ switchIntervalMs: 0 });
  const g = await FakeEnricher.start();
  fakes.push(g);
  const p = await Producer.open(sock);
  await p.send([payload(1), payload(2)]);
  await waitFor(() => agent.client.stats.recordsAcked === 2, 'first records acked');
  agent.client.setEndpoints([{ host: '127.0.0.1', port: g.port }]);
  await waitFor(() => agent.client.active?.endpoint.port === g.port, 'the new address active');
  await p.send([payload(3), payload(4)]);
  await waitFor(() => agent.client.stats.recordsAcked === 4, 'later records acked');
  await p.stop();
  assert.equal(uniquePayloads(f).length, 2);
  assert.equal(uniquePayloads(g).length, 2);
  assert.equal(agent.client.stats.switches, 1);
  agent.client.switchNow();
  await waitFor(() => agent.client.stats.switches === 2, 'switchNow() to switch');
  assert.equal(agent.client.active?.endpoint.port, g.port);
});
