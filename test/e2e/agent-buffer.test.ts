// The buffer and the spool: --when-full drop-newest vs drop-oldest (counted, in-flight
// batches never discarded), the spool riding out an enricher outage (files grow, then all
// delivered in order and deleted), and an agent restart finding leftover spool files:
// sent first under their original incarnation and seq, new seqs numbered above them.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BatchBuffer, type DropReason } from '../../agent/buffer';
import { silentLogger } from '../../common/log';
import {
  agentSuite,
  makeAgent,
  Producer,
  payload,
  sleep,
  uniquePayloads,
  waitFor,
} from '../support/agent-harness';
import { FakeEnricher } from '../support/fake-enricher';

const { dir, fakes } = agentSuite('agent-buffer-');

async function fake(opts: ConstructorParameters<typeof FakeEnricher>[0] = {}): Promise<FakeEnricher> {
  const f = await FakeEnricher.start(opts);
  fakes.push(f);
  return f;
}

function unitBuffer(whenFull: 'drop-newest' | 'drop-oldest') {
  const drops: [DropReason, number][] = [];
  const buffer = new BatchBuffer({
    bufferBytes: 300,
    whenFull,
    log: silentLogger(),
    onDrop: (reason, records) => drops.push([reason, records]),
    onReady: () => {},
  });
  const add = (seq: number) => buffer.add(Buffer.alloc(100, seq), seq, 'inc', 10, true);
  return { buffer, drops, add };
}

test('BatchBuffer drop-newest: full means the new batch is dropped and counted', () => {
  const { buffer, drops, add } = unitBuffer('drop-newest');
  for (let s = 1; s <= 5; s++) add(s);
  assert.deepEqual(drops, [
    ['buffer_full', 10],
    ['buffer_full', 10],
  ]);
  const seqs = [buffer.take(), buffer.take(), buffer.take(), buffer.take()].map((b) => b?.seq ?? null);
  assert.deepEqual(seqs, [1, 2, 3, null]);
});

test('BatchBuffer drop-oldest: the oldest batch not in flight is discarded; in-flight ones never', () => {
  const { buffer, drops, add } = unitBuffer('drop-oldest');
  for (let s = 1; s <= 3; s++) add(s);
  const flying = [buffer.take()!, buffer.take()!]; // seqs 1, 2 in flight
  // The backlog metric counts bytes waiting, not bytes in flight.
  assert.equal(buffer.queuedBytes, 100);
  add(4); // evicts 3, the only queued one
  add(5); // nothing queued but 4... evicts 4
  assert.deepEqual(drops, [
    ['buffer_full', 10],
    ['buffer_full', 10],
  ]);
  assert.equal(buffer.take()!.seq, 5);
  // Nothing is evictable now (all in flight): the new batch is the one dropped.
  add(6);
  assert.equal(drops.length, 3);
  // A closed connection's batches come back in front, in order.
  buffer.requeue(flying.reverse());
  buffer.acked(buffer.take()!); // 1
  assert.equal(buffer.take()!.seq, 2);
  assert.equal(buffer.memBytes, 200);
});

async function outage(whenFull: 'drop-newest' | 'drop-oldest') {
  const f = await fake({ refuse: true });
  const sock = path.join(dir, `${whenFull}.sock`);
  const agent = makeAgent(f, {
    dnstapSocket: sock,
    whenFull,
    bufferBytes: 4096,
    batchBytes: 1024,
    batchRecords: 20,
  });
  await agent.start();
  const p = await Producer.open(sock);
  const sent = Array.from({ length: 400 }, (_, k) => payload(k));
  await p.send(sent);
  await waitFor(() => agent.counters.recordsIn === 400 && agent.counters.dropped.buffer_full > 0, 'drops');
  await sleep(50);
  f.configure({ refuse: false });
  const dropped = agent.counters.dropped.buffer_full;
  await waitFor(() => agent.client.stats.recordsAcked === 400 - dropped, 'the kept records acked');
  await p.stop();
  return { got: uniquePayloads(f), sent, dropped };
}

/** Indexes in `sent` of the records that got through; checks they kept their order. */
function survivors(got: Buffer[], sent: Buffer[]): number[] {
  const index = new Map(sent.map((r, i) => [r.toString('latin1'), i]));
  const idx = got.map((r) => index.get(r.toString('latin1'))!);
  for (let i = 1; i < idx.length; i++) assert.ok(idx[i]! > idx[i - 1]!, 'order kept');
  return idx;
}

test('enricher down, no spool, drop-newest: the oldest records survive; drops counted', async () => {
  const { got, sent, dropped } = await outage('drop-newest');
  assert.ok(dropped > 200, `${dropped} dropped`);
  assert.equal(got.length + dropped, sent.length);
  const idx = survivors(got, sent);
  // Whole batches are dropped at seal time; a late small batch may still fit in the rest.
  const prefix = idx.findIndex((x, i) => x !== i);
  assert.ok(prefix === -1 || prefix >= got.length - 20, `survivors ${idx}`);
  assert.equal(idx[0], 0);
});

test('enricher down, no spool, drop-oldest: the newest records survive; drops counted', async () => {
  const { got, sent, dropped } = await outage('drop-oldest');
  assert.ok(dropped > 200, `${dropped} dropped`);
  assert.equal(got.length + dropped, sent.length);
  const idx = survivors(got, sent);
  for (let i = 0; i < idx.length; i++) assert.equal(idx[i], dropped + i, 'a contiguous tail of the newest');
});

const batchFiles = (d: string) => readdirSync(d).filter((x) => x.endsWith('.batch'));

test('spool: enricher down, spool grows; enricher back, everything delivered in order, files deleted', async () => {
  const f = await fake({ refuse: true });
  const spoolDir = path.join(dir, 'spool-outage');
  const sock = path.join(dir, 'spool-outage.sock');
  const agent = makeAgent(f, {
    dnstapSocket: sock,
    spoolDir,
    bufferBytes: 4096,
    batchBytes: 1024,
    batchRecords: 20,
  });
  await agent.start();
  const p = await Producer.open(sock);
  const sent = Array.from({ length: 2000 }, (_, k) => payload(k));
  for (let k = 0; k < 2000; k += 200) await p.send(sent.slice(k, k + 200));
  await waitFor(() => agent.counters.recordsIn === 2000 && agent.buffer.writeBacklogBytes === 0, 'all in');
  await waitFor(() => batchFiles(spoolDir).length === agent.spool!.files, 'files written');
  const files = agent.spool!.files;
  assert.ok(files >= 50, `${files} spool files`);
  assert.ok(agent.buffer.memBytes <= 4096);
  // Spooled batches are part of the backlog (what grows once memory is full).
  assert.ok(agent.buffer.queuedBytes > agent.buffer.memBytes, `${agent.buffer.queuedBytes} waiting`);
  f.configure({ refuse: false });
  await waitFor(() => agent.client.stats.recordsAcked === 2000, 'everything acked');
  await p.stop();
  const got = uniquePayloads(f);
  assert.equal(got.length, 2000);
  for (let i = 0; i < got.length; i++) assert.ok(got[i]!.equals(sent[i]!), `record ${i} in order`);
  assert.deepEqual(
    Object.values(agent.counters.dropped).filter((x) => x > 0),
    [],
  );
  await waitFor(() => batchFiles(spoolDir).length === 0, 'spool files deleted');
  assert.equal(agent.spool!.bytes, 0);
  assert.equal(agent.buffer.queuedBytes, 0);
  assert.equal(agent.spool!.files, 0);
});

test('restart with leftover spool files: sent first, original incarnation and seq; new seqs above them', async () => {
  const f = await fake({ refuse: true });
  const spoolDir = path.join(dir, 'spool-restart');
  const sockA = path.join(dir, 'restart-a.sock');
  const a = makeAgent(f, { dnstapSocket: sockA, spoolDir, batchRecords: 10, drainTimeoutMs: 100 });
  await a.start();
  const p = await Producer.open(sockA);
  const first = Array.from({ length: 95 }, (_, k) => payload(k));
  await p.send(first);
  await waitFor(() => a.counters.recordsIn === 95, 'A got its records');
  await p.stop();
  const summary = await a.stop();
  assert.deepEqual(summary, { spooled: 95, lost: 0 });
  assert.equal(batchFiles(spoolDir).length, 10);
  // A stray .tmp (a write cut by a crash) is cleaned up, not sent.
  writeFileSync(path.join(spoolDir, '000000000099-1-1-x.batch.tmp'), 'junk');

  f.configure({ refuse: false });
  const sockB = path.join(dir, 'restart-b.sock');
  const b = makeAgent(f, { dnstapSocket: sockB, spoolDir, batchRecords: 10 });
  await b.start();
  assert.notEqual(b.options.incarnation, a.options.incarnation);
  const q = await Producer.open(sockB);
  const second = Array.from({ length: 30 }, (_, k) => payload(1000 + k));
  await q.send(second);
  await waitFor(() => b.client.stats.recordsAcked === 125, 'leftovers and new records acked');
  await q.stop();
  const old = f.batches.filter((x) => x.incarnation === a.options.incarnation);
  const fresh = f.batches.filter((x) => x.incarnation === b.options.incarnation);
  assert.deepEqual(
    old.map((x) => x.seq),
    Array.from({ length: 10 }, (_, k) => k + 1),
  );
  assert.ok(
    f.batches.slice(0, 10).every((x) => x.incarnation === a.options.incarnation),
    'leftovers first',
  );
  assert.deepEqual(
    old.flatMap((x) => x.records),
    first,
  );
  assert.deepEqual(
    fresh.flatMap((x) => x.records),
    second,
  );
  assert.ok(
    fresh.every((x) => x.seq > 10),
    `new seqs ${fresh.map((x) => x.seq)} above the spooled ones`,
  );
  await waitFor(() => readdirSync(spoolDir).length === 0, 'spool empty');
});

test('spool full: drop-newest drops new batches (spool_full); a corrupt leftover file is dropped, not sent', async () => {
  const f = await fake({ refuse: true });
  const spoolDir = path.join(dir, 'spool-full');
  mkdirSync(spoolDir);
  writeFileSync(path.join(spoolDir, '000000000001-7-3-oldinc.batch'), Buffer.from('not a batch'));
  const sock = path.join(dir, 'spool-full.sock');
  const agent = makeAgent(f, {
    dnstapSocket: sock,
    spoolDir,
    spoolMaxBytes: 4096,
    bufferBytes: 2048,
    batchBytes: 1024,
    batchRecords: 10,
  });
  await agent.start();
  const p = await Producer.open(sock);
  await p.send(Array.from({ length: 300 }, (_, k) => payload(k)));
  await waitFor(
    () => agent.counters.recordsIn === 300 && agent.counters.dropped.spool_full > 0,
    'spool full',
  );
  assert.ok(agent.spool!.bytes <= 4096);
  f.configure({ refuse: false });
  const kept = () => 300 - agent.counters.dropped.spool_full;
  await waitFor(() => agent.client.stats.recordsAcked === kept(), 'kept records acked');
  await p.stop();
  assert.equal(agent.counters.dropped.spool_error, 3, 'the corrupt file counted with its 3 records');
  assert.ok(f.batches.every((b) => b.incarnation !== 'oldinc'));
  assert.ok(
    agent.options.incarnation && f.batches.every((b) => b.seq > 7),
    'numbered above the leftover seq',
  );
});
