// README "Output: CSV chunks" durability through the real executable: an enricher child process is SIGKILLed
// under load and restarted on the same volume: every acknowledged record is in the published
// CSV, with no torn row. SIGTERM under load: the agent is told to drain, every batch it sent
// is acknowledged, the process exits 0 with all chunks committed, no loss, no duplicate.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  committedRows,
  type EnricherChild,
  pumpBatches,
  spawnEnricherChild,
  tmpDir,
} from '../support/enricher-helpers';
import { fixtureRecords, TestAgent } from '../support/link-client';
import { listFiles } from '../support/output-rows';

const RECORDS = fixtureRecords();
const PER_BATCH = 100;

function recordsFor(seq: number): Buffer[] {
  const out: Buffer[] = [];
  for (let j = 0; j < PER_BATCH; j++) out.push(RECORDS[(seq * PER_BATCH + j) % RECORDS.length]!);
  return out;
}

function spawnEnricher(dir: string): EnricherChild {
  return spawnEnricherChild(
    ['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--output-dir', dir],
    {
      SNOWTAP_ID: 'enr-dur',
      SNOWTAP_ROTATE_MAX_AGE: '3600',
    },
  );
}

const pump = (agent: TestAgent, window: number, stop: () => boolean) =>
  pumpBatches(agent, window, stop, recordsFor);

function expectedIds(seqs: Iterable<number>, agent: string, inc: string): string[] {
  const ids: string[] = [];
  for (const seq of seqs) for (let j = 0; j < PER_BATCH; j++) ids.push(`${agent}/${inc}/${seq}/${j}`);
  return ids;
}

test('SIGKILL under load, restart on the same volume: every acknowledged record is published', async (t) => {
  const dir = tmpDir(t, 'snowtap-dur-');
  const first = spawnEnricher(dir);
  t.after(() => first.proc.kill('SIGKILL'));
  const agent = await TestAgent.connect({ port: await first.ready, agentId: 'crash', incarnation: 'i1' });
  assert.equal(await agent.answer(), 'welcome');
  let killedWith = -1;
  void agent
    .until(() => agent.acked.size >= 40, 30_000)
    .then(() => {
      killedWith = agent.acked.size;
      first.proc.kill('SIGKILL');
    });
  const sent = await pump(agent, 8, () => false);
  const acked = [...agent.acked];
  assert.ok(killedWith >= 40 && acked.length >= killedWith, `acked ${acked.length}`);
  assert.ok(sent.length > acked.length, 'some batches were in flight at the kill');
  assert.equal((await first.exited).signal, 'SIGKILL');
  assert.ok(
    listFiles(dir).some((f) => f.endsWith('.partial')),
    'the kill left a partial chunk',
  );

  const second = spawnEnricher(dir);
  t.after(() => second.proc.kill('SIGKILL'));
  await second.ready;
  const recovered = second.lines.find((l) => l.msg === 'recovered partial chunks');
  assert.ok(recovered !== undefined && (recovered.rows as number) > 0, 'recovery logged');
  second.proc.kill('SIGTERM');
  assert.deepEqual(await second.exited, { code: 0, signal: null });

  assert.deepEqual(
    listFiles(dir).filter((f) => f.includes('_partial')),
    [],
  );
  // parseChunk is strict: a torn or partial row would fail it.
  const ids = new Set((await committedRows(dir)).map((r) => r.record_id));
  const missing = expectedIds(acked, 'crash', 'i1').filter((id) => !ids.has(id));
  assert.deepEqual(missing, []);
});

test('SIGTERM under load: Drain, every sent batch acknowledged, exit 0, no loss, no duplicate', async (t) => {
  const dir = tmpDir(t, 'snowtap-drain-');
  const child = spawnEnricher(dir);
  t.after(() => child.proc.kill('SIGKILL'));
  const agent = await TestAgent.connect({ port: await child.ready, agentId: 'drainer', incarnation: 'i1' });
  assert.equal(await agent.answer(), 'welcome');
  void agent.until(() => agent.acked.size >= 30, 30_000).then(() => child.proc.kill('SIGTERM'));
  const sent = await pump(agent, 16, () => agent.drains.length > 0);
  assert.equal(agent.drains.length, 1);
  assert.ok(agent.drains[0]!.deadlineMs > 0);
  // LINK.md: after Drain the agent sends nothing more there and waits for its outstanding acks.
  await agent.waitAcks(sent, 20_000);
  agent.goodbye('drained');
  await agent.closed;
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  assert.ok(child.lines.some((l) => l.msg === 'enricher draining'));
  assert.deepEqual(
    listFiles(dir).filter((f) => f.includes('_partial')),
    [],
  );
  const ids = (await committedRows(dir)).map((r) => r.record_id!);
  assert.equal(ids.length, sent.length * PER_BATCH, 'no loss, no duplicate');
  assert.deepEqual(new Set(ids), new Set(expectedIds(sent, 'drainer', 'i1')));
});
