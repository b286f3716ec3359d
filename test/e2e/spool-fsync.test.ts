// The agent's spool with and without --spool-fsync (issue 10, "the agent's spool and node
// crashes"). kill -9 keeps the page cache, so no process-level test can show what fsync buys;
// the argument is in agent/README.md "Spool durability". What a test can show: the fsync mode
// delivers everything through a real outage like the default, and what it costs — per batch
// file on this machine's disk, and as spool throughput of a real agent process during an
// enricher outage (drops `spool_slow` when the disk cannot keep up).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { Spool } from '../../agent/spool';
import { silentLogger } from '../../common/log';
import { runProducer } from '../../loadtest/producer';
import {
  committedRows,
  exitWithin,
  freeTcpPort,
  metric,
  restartEnricher,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';

/** A batch frame of the typical size (1000 records of ~130 B); the spool stores bytes as given. */
const FRAME_BYTES = 130 * 1024;
const FILES = 200;

async function timeSpoolWrites(dir: string, fsync: boolean): Promise<number> {
  const { spool } = await Spool.open(dir, 2 ** 40, silentLogger(), { fsync });
  const frame = Buffer.alloc(FRAME_BYTES, 7);
  const started = process.hrtime.bigint();
  for (let i = 0; i < FILES; i++) await spool.write(spool.nameFor(i + 1, 'inc', 1000), frame);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.batch')).length, FILES);
  return ms / FILES;
}

test('spool write cost per batch file, with and without fsync (this disk)', async (t) => {
  const dir = tmpDir(t, 'snowtap-spool-cost-');
  const plain = await timeSpoolWrites(path.join(dir, 'plain'), false);
  const synced = await timeSpoolWrites(path.join(dir, 'fsync'), true);
  t.diagnostic(
    `${FILES} files of ${FRAME_BYTES >> 10} KiB: ${plain.toFixed(3)} ms/batch without fsync, ${synced.toFixed(3)} ms/batch with --spool-fsync (${(synced / plain).toFixed(1)}x; ${((FRAME_BYTES / 1048576) * (1000 / synced)).toFixed(0)} MiB/s, ${Math.round((1000 / synced) * 1000)} records/s of 1000-record batches)`,
  );
  assert.ok(synced > 0 && plain > 0);
});

async function outageThroughSpool(t: TestContext, fsync: boolean) {
  const dir = tmpDir(t, 'snowtap-spool-fsync-');
  const sock = path.join(dir, 'dnstap.sock');
  const spoolDir = path.join(dir, 'spool');
  const linkPort = await freeTcpPort(); // nothing listens yet: the enricher is down
  const agent = await startAgent(t, [
    '--dnstap-socket',
    sock,
    '--enricher',
    `127.0.0.1:${linkPort}`,
    '--buffer-bytes',
    String(2 << 20),
    '--spool-dir',
    spoolDir,
    ...(fsync ? ['--spool-fsync'] : []),
  ]);
  const rate = 20_000;
  const sent = await runProducer({ socket: sock, rate, seconds: 4, connectTimeoutMs: 10_000 });
  assert.equal(sent.error, null);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_in_total')) === sent.framesSent,
    'all frames in',
  );
  const spooled = await metric(agent.metricsPort, 'snowtap_agent_spool_bytes');
  const dropped = await metric(agent.metricsPort, 'snowtap_agent_records_dropped_total');
  // Bring the enricher up on the port the agent dials.
  const first = await startEnricher(t, path.join(dir, 'out'));
  first.child.kill('SIGTERM');
  await exitWithin(first, 30_000, 'enricher');
  const enricher = await restartEnricher(t, { ...first, linkPort });
  await waitUntil(
    async () =>
      (await metric(agent.metricsPort, 'snowtap_agent_records_acked_total')) === sent.framesSent - dropped,
    'everything kept is acknowledged',
    60_000,
  );
  agent.child.kill('SIGTERM');
  assert.equal(await exitWithin(agent, 30_000, 'agent'), 0);
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0);
  const rows = await committedRows(enricher.outputDir);
  return {
    sent: sent.framesSent,
    rate,
    spooled,
    dropped,
    rows: rows.length,
    ids: new Set(rows.map((r) => r.record_id)).size,
  };
}

for (const fsync of [false, true]) {
  test(`enricher outage at 20k records/s through the spool${fsync ? ' with --spool-fsync' : ''}: 0 lost`, {
    timeout: 120_000,
  }, async (t) => {
    const r = await outageThroughSpool(t, fsync);
    t.diagnostic(
      `${r.sent} records sent at ${r.rate}/s, ${r.spooled} spool bytes, ${r.dropped} dropped, ${r.rows} rows (${r.ids} distinct)`,
    );
    assert.ok(r.spooled > 0, 'the outage went to the spool');
    assert.equal(r.dropped, 0, 'the disk kept up: nothing dropped');
    assert.equal(r.ids, r.sent, 'every record delivered');
    assert.equal(r.rows, r.sent, 'no duplicates');
  });
}
