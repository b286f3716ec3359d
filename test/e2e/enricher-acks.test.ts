// Batches in, Acks out, rows on disk (LINK.md "Sequence numbers, acks"): an Ack is sent only
// once the batch's rows are durable; committed rows equal the records sent, with record_id
// `<agent>/<incarnation>/<seq>/<index>`; batch incarnation and sample rate are honoured;
// backpressure pauses and resumes without losing anything; TLS and mTLS.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { encodeControl } from '../../proto/link/control';
import { makeHello } from '../../proto/link/handshake';
import { committedRows, makeCerts, startEnricher, tmpDir, waitFor } from '../support/enricher-helpers';
import { fixtureRecords, TestAgent } from '../support/link-client';

const RECORDS = fixtureRecords();

function batchesOf(records: Buffer[], size: number): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i < records.length; i += size) out.push(records.slice(i, i + size));
  return out;
}

test('every batch is acknowledged only after its rows are durable; rows equal the records sent', async (t) => {
  const { port, enricher, dir } = await startEnricher(t);
  const agent = await TestAgent.connect({ port, agentId: 'agent-7', incarnation: '20260101T000000-ab' });
  assert.equal(await agent.answer(), 'welcome');
  const batches = batchesOf(RECORDS, 250);
  const cumRows: number[] = [0];
  const violations: string[] = [];
  // Checked the moment each Ack frame arrives: rows of every acked batch must be durable.
  agent.socket.prependListener('data', () =>
    queueMicrotask(() => {
      const durable = enricher.writer!.stats().durableRows;
      for (const seq of agent.acked) if (cumRows[seq]! > durable) violations.push(`seq ${seq}`);
    }),
  );
  batches.forEach((b, i) => {
    agent.sendBatch(i + 1, b);
    cumRows.push(cumRows[i]! + b.length);
  });
  await agent.waitAcks(batches.map((_, i) => i + 1));
  assert.deepEqual(violations, []);
  assert.ok(agent.ackFrames <= batches.length);
  const stats = enricher.link!.stats;
  assert.equal(stats.batchesReceived, batches.length);
  assert.equal(stats.batchesAcked, batches.length);
  assert.equal(stats.recordsIn, RECORDS.length);
  agent.goodbye();
  await agent.closed;
  assert.equal(await enricher.stop(), 0);
  const rows = await committedRows(dir);
  assert.equal(rows.length, RECORDS.length - stats.recordsDropped);
  assert.equal(stats.recordsDropped, 0);
  const expected = new Set<string>();
  batches.forEach((b, i) => {
    for (let j = 0; j < b.length; j++) expected.add(`agent-7/20260101T000000-ab/${i + 1}/${j}`);
  });
  assert.deepEqual(new Set(rows.map((r) => r.record_id)), expected);
  assert.ok(
    rows.every((r) => r.agent_id === 'agent-7' && r.enricher_id === 'enr-test' && r.sample_rate === '1'),
  );
});

test("a batch's own incarnation and sample rate go into its rows", async (t) => {
  const { port, enricher, dir } = await startEnricher(t);
  const agent = await TestAgent.connect({ port, agentId: 'ag', incarnation: 'now' });
  assert.equal(await agent.answer(), 'welcome');
  agent.sendBatch(5, RECORDS.slice(0, 3), { incarnation: 'spooled-1', sampleRate: 10 });
  agent.sendBatch(6, RECORDS.slice(3, 5));
  await agent.waitAcks([5, 6]);
  agent.goodbye();
  await agent.closed;
  await enricher.stop();
  const rows = await committedRows(dir);
  assert.deepEqual(rows.map((r) => `${r.record_id} ${r.sample_rate}`).sort(), [
    'ag/now/6/0 1',
    'ag/now/6/1 1',
    'ag/spooled-1/5/0 10',
    'ag/spooled-1/5/1 10',
    'ag/spooled-1/5/2 10',
  ]);
});

test('Goodbye right after the last batch: the acks still come, then the enricher closes', async (t) => {
  const { port, enricher } = await startEnricher(t);
  const agent = await TestAgent.connect({ port });
  assert.equal(await agent.answer(), 'welcome');
  for (let seq = 1; seq <= 10; seq++) agent.sendBatch(seq, RECORDS.slice(seq * 10, seq * 10 + 10));
  agent.goodbye('done');
  await agent.closed;
  assert.equal(agent.acked.size, 10);
  await waitFor(() => enricher.link!.stats.closed.get('goodbye') === 1, 'close reason goodbye');
});

test('backpressure: a tiny writer high-water mark and unacked bound pause and resume, nothing lost', async (t) => {
  const out = tmpDir(t);
  const { port, enricher, dir } = await startEnricher(
    t,
    { output: { outputDir: out, blockBytes: 1024, maxAgeMs: 60_000 }, link: { maxUnackedBytes: 4096 } },
    out,
  );
  const agent = await TestAgent.connect({ port, agentId: 'bp' });
  assert.equal(await agent.answer(), 'welcome');
  const batches = batchesOf(RECORDS, 100);
  batches.forEach((b, i) => {
    agent.sendBatch(i + 1, b);
  });
  await agent.waitAcks(
    batches.map((_, i) => i + 1),
    30_000,
  );
  assert.equal(enricher.link!.stats.connectionsPaused, 0);
  assert.ok(enricher.link!.stats.pauses > 0, 'the connection was paused');
  agent.goodbye();
  await agent.closed;
  await enricher.stop();
  assert.equal((await committedRows(dir)).length, RECORDS.length);
});

test('keepalive: the enricher pings a quiet agent and cuts one that went silent', async (t) => {
  const { port, enricher } = await startEnricher(t, { link: { keepaliveIntervalMs: 1000 } });
  const agent = await TestAgent.connect({ port });
  t.after(() => agent.destroy());
  assert.equal(await agent.answer(), 'welcome');
  await agent.until(() => agent.pings > 0, 5000);
  // A peer that completes the handshake and then never sends a byte again.
  const silent = net.connect({ host: '127.0.0.1', port }, () =>
    silent.write(encodeControl(1, makeHello({ agentId: 'quiet', incarnation: 'i' }))),
  );
  silent.on('data', () => undefined);
  silent.on('error', () => undefined);
  const t0 = Date.now();
  await new Promise((resolve) => silent.on('close', resolve));
  assert.ok(Date.now() - t0 >= 2500, 'cut after about 3 intervals');
  assert.equal(enricher.link!.stats.keepaliveTimeouts, 1);
  assert.equal(agent.closedFlag, false, 'the agent answering pings stays');
});

test('TLS and mTLS: a trusted client cert works, none or a stranger one is refused', async (t) => {
  const dir = tmpDir(t);
  const c = makeCerts(dir);
  const read = (f: string) => fs.readFileSync(f);
  const serverTls = { cert: read(c.serverCert), key: read(c.serverKey) };
  const plainTls = await startEnricher(t, { tls: serverTls });
  const a = await TestAgent.connect({ port: plainTls.port, tls: { ca: read(c.ca) } });
  assert.equal(await a.answer(), 'welcome');
  a.sendBatch(1, RECORDS.slice(0, 5));
  await a.waitAcks([1]);
  a.goodbye();

  const m = await startEnricher(t, { tls: { ...serverTls, ca: read(c.ca) } });
  const good = await TestAgent.connect({
    port: m.port,
    tls: { ca: read(c.ca), cert: read(c.clientCert), key: read(c.clientKey) },
  });
  assert.equal(await good.answer(), 'welcome');
  good.sendBatch(1, RECORDS.slice(0, 5));
  await good.waitAcks([1]);
  good.goodbye();
  for (const opts of [{}, { cert: read(c.strangerCert), key: read(c.strangerKey) }]) {
    const outcome = await TestAgent.connect({ port: m.port, tls: { ca: read(c.ca), ...opts } }).then(
      async (agent) => {
        await agent.closed;
        return agent.welcome === null ? 'refused' : 'welcomed';
      },
      () => 'refused',
    );
    assert.equal(outcome, 'refused');
  }
  await waitFor(() => (m.enricher.link!.stats.rejected.get('tls') ?? 0) === 2, 'two TLS refusals counted');
  assert.equal(m.enricher.link!.stats.handshakesCompleted, 1);
});
