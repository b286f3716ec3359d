// Striping (--active-connections, issue 13): batches spread over N active connections, each
// its own stripe (standby, switch timer). Against several in-process fake enrichers: N
// stripes reach N distinct enrichers; a connection landing on an enricher another stripe
// uses is re-dialed and counted; a killed stripe's unacknowledged batches are re-sent on
// another with nothing lost; `auto` grows under slow-acking enrichers and shrinks after.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Agent } from '../../agent';
import {
  agentSuite,
  makeAgent,
  Producer,
  payload,
  sleep,
  uniquePayloads,
  waitFor,
} from '../support/agent-harness';
import { batchKey, FakeEnricher, type FakeEnricherOptions } from '../support/fake-enricher';

const { dir, fakes } = agentSuite('agent-stripes-');

async function enrichers(n: number, opts: FakeEnricherOptions = {}): Promise<FakeEnricher[]> {
  const out: FakeEnricher[] = [];
  for (let i = 0; i < n; i++) {
    const f = await FakeEnricher.start({ ...opts, enricherId: `pod-${fakes.length}` });
    fakes.push(f);
    out.push(f);
  }
  return out;
}

let n = 0;
function stripedAgent(
  targets: FakeEnricher[],
  extra: Parameters<typeof makeAgent>[1],
): { agent: Agent; sock: string } {
  const sock = path.join(dir, `a${++n}.sock`);
  const agent = makeAgent(targets[0]!, {
    dnstapSocket: sock,
    enrichers: targets.map((f) => ({ host: '127.0.0.1', port: f.port })),
    batchRecords: 20,
    ...extra,
  });
  return { agent, sock };
}

/** Enricher ids the stripes' active connections are welcomed by. */
function activeIds(agent: Agent): string[] {
  return agent.client.stripes.map((s) => s.active?.agreed?.enricherId ?? '');
}

async function send(sock: string, from: number, count: number): Promise<Buffer[]> {
  const p = await Producer.open(sock);
  const sent = Array.from({ length: count }, (_, i) => payload(from + i));
  for (let i = 0; i < sent.length; i += 200) await p.send(sent.slice(i, i + 200));
  await p.stop();
  return sent;
}

/** Every sent record arrived at least once somewhere (first arrival of each batch), none unknown. */
function assertAllDelivered(targets: FakeEnricher[], sent: Buffer[]): void {
  const got = new Set(targets.flatMap((f) => uniquePayloads(f)).map((b) => b.toString('latin1')));
  const missing = sent.filter((b) => !got.has(b.toString('latin1')));
  assert.equal(missing.length, 0, `${missing.length} records never arrived`);
}

test('--active-connections 3: three stripes reach three distinct enrichers and all carry batches', async () => {
  const targets = await enrichers(3);
  const { agent, sock } = stripedAgent(targets, { activeConnections: 3 });
  await agent.start();
  await waitFor(() => activeIds(agent).every((id) => id !== ''), 'three active connections');
  assert.equal(new Set(activeIds(agent)).size, 3, `distinct enrichers: ${activeIds(agent)}`);
  const sent = await send(sock, 0, 3000);
  await waitFor(() => agent.client.stats.recordsAcked === sent.length, 'everything acknowledged');
  assertAllDelivered(targets, sent);
  for (const f of targets) assert.ok(f.batches.length > 0, `${f.opts.enricherId} carried batches`);
  assert.equal(agent.client.roles().active, 3);
});

test('collision: a stripe landing on an enricher another stripe uses re-dials and is counted', async () => {
  const [a, b] = await enrichers(2);
  // Stripes start on addresses 0 and 1: both are enricher A, so one of them collides.
  const { agent } = stripedAgent([a!, a!, b!], { activeConnections: 2 });
  await agent.start();
  await waitFor(() => {
    const ids = activeIds(agent);
    return ids.every((id) => id !== '') && new Set(ids).size === 2;
  }, 'two stripes on two distinct enrichers');
  assert.ok(agent.client.stats.collisions >= 1, `collisions: ${agent.client.stats.collisions}`);
  assert.deepEqual(new Set(activeIds(agent)), new Set([a!.opts.enricherId, b!.opts.enricherId]));
});

test("a killed stripe's unacknowledged batches are re-sent on another stripe; nothing lost", async () => {
  const [ok, held] = await enrichers(2);
  held!.configure({ manualAck: true });
  const { agent, sock } = stripedAgent([ok!, held!], { activeConnections: 2 });
  await agent.start();
  await waitFor(() => new Set(activeIds(agent)).size === 2, 'two stripes on two enrichers');
  const sent = await send(sock, 0, 2000);
  await waitFor(() => held!.batches.length > 0, 'batches held unacknowledged by one enricher');
  const heldKeys = new Set(held!.batches.map(batchKey));
  held!.configure({ refuse: true });
  held!.killAll();
  await waitFor(() => agent.client.stats.recordsAcked >= sent.length, 'everything acknowledged');
  assertAllDelivered([ok!], sent);
  const okKeys = new Set(ok!.batches.map(batchKey));
  for (const k of heldKeys) assert.ok(okKeys.has(k), `held batch ${k} re-sent to the other enricher`);
  assert.ok(agent.client.stats.batchesResent >= heldKeys.size);
});

test('auto: grows while slow-acking enrichers keep every window full and the backlog grows; back to 1 after', async () => {
  const targets = await enrichers(3, { ackDelayMs: 40, maxInFlight: 2 });
  const { agent, sock } = stripedAgent(targets, {
    activeConnections: 'auto',
    maxActiveConnections: 3,
    batchRecords: 50,
    autoPeriodMs: 300,
  });
  await agent.start();
  await waitFor(() => agent.client.active !== null, 'an active connection');
  assert.equal(agent.client.activeConnections, 1);
  // One stripe acks 2 batches (100 records) per 40 ms, ~2.5 k records/s: offer ~4x that for 4 s.
  const p = await Producer.open(sock);
  const sent: Buffer[] = [];
  let peak = 1;
  for (let i = 0; i < 40; i++) {
    const burst = Array.from({ length: 1000 }, (_, j) => payload(i * 1000 + j));
    sent.push(...burst);
    await p.send(burst);
    await sleep(100);
    peak = Math.max(peak, agent.client.activeConnections);
  }
  await p.stop();
  await waitFor(() => agent.client.stats.recordsAcked >= sent.length, 'everything acknowledged', 60_000);
  assert.ok(peak >= 2, `auto grew (peak ${peak})`);
  await waitFor(() => agent.client.activeConnections === 1, 'back to one stripe once idle', 40_000);
  assertAllDelivered(targets, sent);
});
