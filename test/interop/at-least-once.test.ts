// At-least-once delivery through the real processes: an agent replays >= 200k records to an
// enricher that is SIGKILLed mid-stream and restarted on the same volume (every record
// present at least once, duplicates only from the unacknowledged window), SIGTERMed mid-
// stream (zero loss, zero duplicates), or down for 30 s while a DNS-server stand-in keeps
// sending (nothing lost: the agent buffers and spools).
import assert from 'node:assert/strict';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { silentLogger } from '../../common/log';
import { convertFiles } from '../../enricher/convert';
import { replicateCapture } from '../../loadtest/capture';
import { fstrmReplay, requireInterop } from '../support/peers';
import {
  committedRows,
  type EnricherProc,
  exitWithin,
  metric,
  restartEnricher,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';

const MIN_RECORDS = 200_000;
const BATCH = 1000;

interface Expected {
  file: string;
  frames: number;
  /** The fields every row must carry, in capture order (from `convert` of the same file). */
  keys: string[];
}

function key(r: Record<string, string>): string {
  return `${r.event_time}|${r.message_type}|${r.qname}|${r.dns_id}|${r.query_port}`;
}

async function expectedFor(dir: string): Promise<Expected> {
  const file = path.join(dir, 'replay.fstrm');
  const { frames } = replicateCapture(file, MIN_RECORDS);
  const out = path.join(dir, 'expected');
  await convertFiles({
    files: [file],
    output: { outputDir: out, enricherId: 'ref', maxRows: 1e9, maxBytes: 1e12, maxAgeMs: 3.6e6, gzip: false },
    policy: null,
    log: silentLogger(),
  });
  const rows = await committedRows(out);
  rows.sort((a, b) => Number(a.record_id!.split('/')[2]) - Number(b.record_id!.split('/')[2]));
  return { file, frames, keys: rows.map(key) };
}

/** Distinct records in (seq, index) order = the order the agent read them. */
function distinctInOrder(rows: Record<string, string>[]): {
  keys: string[];
  duplicates: number;
  ids: Set<string>;
} {
  const byId = new Map<string, Record<string, string>>();
  for (const r of rows) byId.set(r.record_id!, r);
  const ordered = [...byId.values()].sort((a, b) => {
    const [, , sa, ia] = a.record_id!.split('/');
    const [, , sb, ib] = b.record_id!.split('/');
    return Number(sa) - Number(sb) || Number(ia) - Number(ib);
  });
  return { keys: ordered.map(key), duplicates: rows.length - byId.size, ids: new Set(byId.keys()) };
}

function assertSameRecords(got: string[], want: string[]): void {
  assert.equal(got.length, want.length, 'distinct records');
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`record ${i} differs: ${got[i]} vs ${want[i]}`);
  }
}

/** Polls the agent's counters until it exits; keeps the last values seen. */
function watchAgent(port: number): { last: Record<string, number>; stop: () => void } {
  const last: Record<string, number> = {};
  const names = [
    'snowtap_agent_records_acked_total',
    'snowtap_agent_batches_resent_total',
    'snowtap_agent_records_in_total',
  ];
  const timer = setInterval(async () => {
    for (const n of names) {
      try {
        last[n] = await metric(port, n);
      } catch {}
    }
  }, 100);
  timer.unref(); // a test that fails before stop() must not keep the file's process alive
  return { last, stop: () => clearInterval(timer) };
}

/** An enricher and an agent replaying the >= 200k-record capture; returns once a quarter is acknowledged. */
async function replayUntilAQuarterAcked(t: TestContext, prefix: string) {
  const dir = tmpDir(t, prefix);
  const want = await expectedFor(dir);
  const enricher = await startEnricher(t, path.join(dir, 'out'));
  const agent = await startAgent(t, [
    '--input-file',
    want.file,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--switch-interval',
    '1',
    '--batch-records',
    String(BATCH),
    '--rate-limit',
    '60000',
  ]);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_acked_total')) > want.frames / 4,
    'a quarter acked',
    60_000,
  );
  return { want, enricher, agent };
}

test('kill -9 of the enricher mid-stream: every record present, duplicates only from the unacked window', {
  timeout: 240_000,
}, async (t) => {
  const { want, agent, ...started } = await replayUntilAQuarterAcked(t, 'snowtap-alo-kill-');
  let enricher: EnricherProc = started.enricher;
  const seen = watchAgent(agent.metricsPort);
  t.after(seen.stop);
  const ackedAtKill = await metric(agent.metricsPort, 'snowtap_agent_records_acked_total');
  enricher.child.kill('SIGKILL');
  await enricher.exited;
  await new Promise((r) => setTimeout(r, 1000));
  enricher = await restartEnricher(t, enricher);
  assert.match(enricher.log(), /recover/i, 'the restarted enricher reports what it recovered');
  assert.equal(
    await exitWithin(agent, 120_000, 'agent replay'),
    0,
    'agent exits 0 once everything is acknowledged',
  );
  seen.stop();
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0);

  const rows = await committedRows(enricher.outputDir);
  const got = distinctInOrder(rows);
  assertSameRecords(got.keys, want.keys);
  const resent = (seen.last.snowtap_agent_batches_resent_total ?? 0) * BATCH;
  t.diagnostic(
    `${want.frames} records, ${rows.length} rows, ${got.duplicates} duplicates, ~${resent} records re-sent, ${ackedAtKill} acked before the kill`,
  );
  assert.ok(
    got.duplicates <= resent,
    `duplicates (${got.duplicates}) come only from re-sent batches (${resent})`,
  );
});

test('SIGTERM of the enricher during load: zero loss, zero duplicates', { timeout: 240_000 }, async (t) => {
  const { want, agent, ...started } = await replayUntilAQuarterAcked(t, 'snowtap-alo-term-');
  let enricher = started.enricher;
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'draining enricher'), 0, 'drains and exits 0');
  enricher = await restartEnricher(t, enricher);
  assert.equal(await exitWithin(agent, 120_000, 'agent replay'), 0);
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0);
  const rows = await committedRows(enricher.outputDir);
  const got = distinctInOrder(rows);
  assertSameRecords(got.keys, want.keys);
  assert.equal(got.duplicates, 0, 'no duplicates after a drain');
  assert.equal(rows.length, want.frames);
});

test('enricher down for 30 s while the DNS server keeps sending: nothing lost (buffer + spool)', {
  timeout: 240_000,
}, async (t) => {
  if (!requireInterop(t, ['fstrm_replay'])) return;
  const dir = tmpDir(t, 'snowtap-alo-down-');
  const want = await expectedFor(dir);
  let enricher = await startEnricher(t, path.join(dir, 'out'));
  const sock = path.join(dir, 'dnstap.sock');
  // A small memory buffer so the outage overflows into the spool.
  const agent = await startAgent(t, [
    '--dnstap-socket',
    sock,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--switch-interval',
    '2',
    '--buffer-bytes',
    String(8 << 20),
    '--spool-dir',
    path.join(dir, 'spool'),
    '--batch-records',
    String(BATCH),
  ]);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_in_total')) === 0,
    'agent up',
  );
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0);
  const downAt = Date.now();
  const replay = await fstrmReplay({ files: [want.file], unix: sock, timeoutMs: 60_000 });
  assert.equal(replay.code, 0, replay.stderr);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_in_total')) === want.frames,
    'all frames received',
  );
  const spooled = await metric(agent.metricsPort, 'snowtap_agent_spool_bytes');
  await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downAt))));
  enricher = await restartEnricher(t, enricher);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_acked_total')) === want.frames,
    'everything acknowledged after the outage',
    120_000,
  );
  agent.child.kill('SIGTERM');
  assert.equal(await exitWithin(agent, 30_000, 'agent'), 0);
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0);
  const rows = await committedRows(enricher.outputDir);
  const got = distinctInOrder(rows);
  t.diagnostic(
    `outage ${((Date.now() - downAt) / 1000).toFixed(0)} s, ${spooled} bytes spooled at peak-ish, ${rows.length} rows`,
  );
  assert.ok(spooled > 0, 'the outage overflowed into the spool');
  assertSameRecords(got.keys, want.keys);
  assert.equal(got.duplicates, 0);
});
