// Hourly aggregates through the real executable (issue 9 step 3): an enricher child process
// with --aggregates hourly is SIGKILLed under load (rows on and rows off) and restarted on the
// same volume; the agent re-sends its unacknowledged batches marked as re-sends. After a
// SIGTERM the published aggregates hold every record at least once and over-count by at most
// resent_records; with rows on, the rows (deduplicated by record_id) give the exact answer.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { AGG_COLUMNS } from '../../enricher/aggregates/csv';
import { RecordPipeline, type RowSink } from '../../enricher/pipeline/pipeline';
import { MAX_ROW_BYTES, RowSource } from '../../enricher/pipeline/row-encoder';
import { committedRows, type EnricherChild, spawnEnricherChild, tmpDir } from '../support/enricher-helpers';
import { fixtureRecords, TestAgent } from '../support/link-client';
import { listFiles } from '../support/output-rows';

const RECORDS = fixtureRecords();
const PER_BATCH = 100;

function recordsFor(seq: number): Buffer[] {
  const out: Buffer[] = [];
  for (let j = 0; j < PER_BATCH; j++) out.push(RECORDS[(seq * PER_BATCH + j) % RECORDS.length]!);
  return out;
}

/** Records of these batches that become rows (the pipeline drops undecodable ones). */
function exactRecords(seqs: Iterable<number>): number {
  let n = 0;
  const sink: RowSink = {
    rowTarget: Buffer.alloc(MAX_ROW_BYTES),
    beginRow: () => 0,
    endRow: () => {
      n++;
      return true;
    },
    full: false,
    whenDrained: () => Promise.resolve(),
  };
  const p = new RecordPipeline(sink, 'x', () => null);
  const src = new RowSource('s', '');
  for (const seq of seqs) for (const r of recordsFor(seq)) p.process(r, 0, r.length, src, seq, 0);
  return n;
}

function spawnEnricher(dir: string, rows: 'on' | 'off'): EnricherChild {
  return spawnEnricherChild(['--listen', '127.0.0.1:0', '--output-dir', dir, '--compression', 'gzip'], {
    SNOWTAP_ID: 'enr-agg',
    SNOWTAP_AGGREGATES: 'hourly',
    SNOWTAP_ROWS: rows,
    SNOWTAP_AGGREGATES_GRACE: '0',
    SNOWTAP_ROTATE_MAX_AGE: '3600',
  });
}

function aggregateTotals(dir: string) {
  let records = 0;
  let resent = 0;
  for (const f of listFiles(dir).filter((x) => x.startsWith('aggregates/'))) {
    const text = gunzipSync(fs.readFileSync(path.join(dir, f))).toString('utf8');
    const lines = text.split('\r\n').filter((l) => l !== '');
    const h = lines[0]!.split(',');
    assert.deepEqual(h, [...AGG_COLUMNS]);
    for (const l of lines.slice(1)) {
      // The first columns hold no commas (ids, time, tenant, CIDR, counts).
      const f2 = l.split(',');
      records += Number(f2[h.indexOf('queries')]) + Number(f2[h.indexOf('responses')]);
      resent += Number(f2[h.indexOf('resent_records')]);
    }
  }
  return { records, resent };
}

for (const rows of ['on', 'off'] as const) {
  test(`kill -9 under load with --aggregates hourly --rows ${rows}: totals in [exact, exact + resent_records]`, async (t) => {
    const dir = tmpDir(t, `snowtap-agg-${rows}-`);
    const first = spawnEnricher(dir, rows);
    t.after(() => first.proc.kill('SIGKILL'));
    const agent = await TestAgent.connect({ port: await first.ready, agentId: 'ag', incarnation: 'i1' });
    assert.equal(await agent.answer(), 'welcome');
    const sent: number[] = [];
    // Window of 8; the kill comes once 20 batches are acknowledged, some still in flight.
    while (agent.acked.size < 20) {
      while (sent.length - agent.acked.size < 8) {
        const seq = sent.length + 1;
        agent.sendBatch(seq, recordsFor(seq));
        sent.push(seq);
      }
      await agent.until(() => sent.length - agent.acked.size < 8, 20_000);
    }
    first.proc.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    const acked = new Set(agent.acked);
    agent.destroy();

    const second = spawnEnricher(dir, rows);
    t.after(() => second.proc.kill('SIGKILL'));
    const again = await TestAgent.connect({ port: await second.ready, agentId: 'ag', incarnation: 'i1' });
    assert.equal(await again.answer(), 'welcome');
    const resentSeqs = sent.filter((s) => !acked.has(s));
    for (const seq of resentSeqs) again.sendBatch(seq, recordsFor(seq), { resent: true });
    const more = [sent.length + 1, sent.length + 2, sent.length + 3];
    for (const seq of more) again.sendBatch(seq, recordsFor(seq));
    await again.waitAcks([...resentSeqs, ...more], 20_000);
    again.goodbye('done');
    await again.closed;
    second.proc.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    assert.ok(second.lines.some((l) => l.msg === 'aggregates journal replayed'));

    const all = [...sent, ...more];
    const exact = exactRecords(all);
    const got = aggregateTotals(dir);
    assert.equal(got.resent, exactRecords(resentSeqs), 'resent_records = the re-sent batches');
    assert.ok(got.records >= exact, `${got.records} < exact ${exact}`);
    assert.ok(got.records <= exact + got.resent, `${got.records} > ${exact} + ${got.resent}`);
    if (rows === 'on') {
      const ids = new Set((await committedRows(dir)).map((r) => r.record_id));
      assert.equal(ids.size, exact, 'rows, deduplicated, are the exact answer');
    } else assert.deepEqual((await committedRows(dir)).length, 0, 'rows off: no row chunk');
  });
}
