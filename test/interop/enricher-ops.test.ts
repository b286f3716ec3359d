// The ops endpoint of a running enricher (README "Operations"): /healthz, /readyz (false while draining,
// before a required policy, when the output directory is gone), /metrics with the promised
// families, valid per `promtool check metrics`. Also --dnstap-listen end to end: a capture
// streamed over TCP becomes rows with connection-derived record ids.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { FIXTURES_DIR } from '../support/dnstap-frames';
import { committedRows, startEnricher, tmpDir, waitFor } from '../support/enricher-helpers';
import { interopMissing } from '../support/interop';
import { fixtureRecords, TestAgent } from '../support/link-client';

async function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: res.status, body: await res.text() };
}

/** The interop rule: promtool present, else skip (fail under SNOWTAP_REQUIRE_INTEROP=1). */
function promtool(t: TestContext): boolean {
  if (spawnSync('promtool', ['--version']).status === 0) return true;
  return interopMissing(t, 'missing promtool: apt-get install prometheus');
}

const METRICS = [
  'snowtap_enricher_records_received_total{input="link"} 500',
  'snowtap_enricher_rows_written_total',
  'snowtap_enricher_received_bytes_total{input="dnstap"}',
  'snowtap_enricher_output_written_bytes_total',
  'snowtap_enricher_link_batches_received_total 5',
  'snowtap_enricher_link_batches_acked_total 5',
  'snowtap_enricher_link_ack_latency_seconds_count 5',
  'snowtap_enricher_link_connections 1',
  'snowtap_enricher_link_connections_accepted_total 1',
  'snowtap_enricher_policy_info{version="ops-1"} 1',
  'snowtap_enricher_policy_entries{kind="domains"} 1',
  'snowtap_enricher_policy_age_seconds',
  'snowtap_enricher_policy_last_success_timestamp_seconds',
  'snowtap_enricher_chunks_committed_total',
  'snowtap_enricher_rows_committed_total',
  'snowtap_enricher_fields_out_of_range_total{column="event_time"} 0',
  'snowtap_enricher_oldest_uncommitted_row_age_seconds',
  'snowtap_enricher_writer_pending_bytes',
  'snowtap_enricher_dnstap_connections',
  'snowtap_enricher_ready 1',
  'snowtap_enricher_nodejs_eventloop_lag_seconds',
];

test('healthz, readyz, metrics (promtool), dnstap-listen rows, readiness false while draining', async (t) => {
  const dir = tmpDir(t);
  const policyFile = path.join(dir, 'policy.json');
  fs.writeFileSync(
    policyFile,
    JSON.stringify({ version: 'ops-1', domains: [{ suffix: 'example', category: 'c', action: 'a' }] }),
  );
  const out = path.join(dir, 'out');
  const s = await startEnricher(
    t,
    {
      output: { outputDir: out },
      metricsListen: { host: '127.0.0.1', port: 0 },
      dnstapListen: { host: '127.0.0.1', port: 0 },
      policy: { file: policyFile },
    },
    out,
  );
  const mport = s.addresses.metrics!;
  assert.deepEqual(await get(mport, '/healthz'), { status: 200, body: 'ok\n' });
  assert.equal((await get(mport, '/readyz')).status, 200);

  const records = fixtureRecords();
  const agent = await TestAgent.connect({ port: s.port, agentId: 'ops' });
  assert.equal(await agent.answer(), 'welcome');
  for (let seq = 1; seq <= 5; seq++) agent.sendBatch(seq, records.slice(seq * 100, seq * 100 + 100));
  await agent.waitAcks([1, 2, 3, 4, 5]);

  const capture = fs.readFileSync(path.join(FIXTURES_DIR, 'unbound-local-unix.fstrm'));
  const frames = fixtureRecords('unbound-local-unix.fstrm').length;
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: s.addresses.dnstap! }, () => sock.end(capture));
    sock.on('error', reject);
    sock.on('close', () => resolve());
  });
  await waitFor(() => s.enricher.pipeline!.counters.rows === 500 + frames, 'dnstap rows');

  const metrics = await get(mport, '/metrics');
  assert.equal(metrics.status, 200);
  for (const m of METRICS) assert.ok(metrics.body.includes(m), `metrics has ${m}`);
  if (promtool(t)) {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: metrics.body, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  }

  const stopped = s.enricher.stop();
  const ready = await get(mport, '/readyz');
  assert.equal(ready.status, 503);
  assert.deepEqual(JSON.parse(ready.body), { ready: false, reasons: ['draining'] });
  await agent.until(() => agent.drains.length === 1);
  agent.goodbye();
  assert.equal(await stopped, 0);
  const rows = await committedRows(out);
  assert.equal(rows.length, 500 + frames);
  const inc = s.enricher.writer!.incarnation;
  const dnstapIds = rows.filter((r) => r.agent_id === '').map((r) => r.record_id);
  assert.equal(dnstapIds.length, frames);
  assert.ok(dnstapIds.includes(`dnstap-enr-test-${inc}-1/1/0`), String(dnstapIds[0]));
});

test('readiness is false while the output directory is not writable', async (t) => {
  const out = path.join(tmpDir(t), 'out');
  const { enricher } = await startEnricher(t, { output: { outputDir: out }, writableProbeMs: 20 }, out);
  assert.equal(enricher.readiness().ready, true);
  fs.rmSync(out, { recursive: true, force: true }); // root can write anywhere: remove it instead
  await waitFor(() => !enricher.readiness().ready, 'readiness false');
  assert.deepEqual(enricher.readiness().reasons, ['output directory not writable']);
  fs.mkdirSync(out);
  await waitFor(() => enricher.readiness().ready, 'readiness back');
});
