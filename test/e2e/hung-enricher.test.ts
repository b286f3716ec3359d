// A hung enricher (SIGSTOP: alive for TCP, silent for the link) under a real agent replay. The
// agent notices through the link keepalive — the enricher advertises 2 s here, the agent
// declares the peer dead after KEEPALIVE_MISSES (3) silent intervals and checks every half
// interval, so within 3 x 2 s + 1 s = 7 s (52.5 s with the default 15 s) — fails over to
// the other enricher and re-sends the unacknowledged window there. On SIGCONT the old
// enricher reads what its kernel had buffered and writes it: those rows are the re-sent
// batches, so duplicates stay within them. Every record is audited.
//
// Needs nothing beyond the project (loopback, signals to our own children): runs everywhere.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { KEEPALIVE_MISSES } from '../../proto/link/constants';
import {
  type EnricherProc,
  exitWithin,
  metric,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';
import { auditDelivery, expectedCapture } from '../support/record-audit';

const RECORDS = 100_000;
const BATCH = 1000;
const KEEPALIVE_S = 2;
/** Dead-peer bound: silent intervals, plus the half-interval tick that notices. */
const NOTICE_BOUND_MS = (KEEPALIVE_MISSES + 0.5) * KEEPALIVE_S * 1000;

const received = (e: EnricherProc) => metric(e.metricsPort, 'snowtap_enricher_records_received_total');

test('SIGSTOPed enricher: the agent notices via keepalive within the bound, fails over, re-sends; nothing lost; duplicates only re-sent batches after SIGCONT', {
  timeout: 180_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-hung-');
  const want = await expectedCapture(dir, RECORDS);
  const extra = ['--keepalive-interval', String(KEEPALIVE_S)];
  const a = await startEnricher(t, path.join(dir, 'out-a'), extra, 'enr-a');
  const b = await startEnricher(t, path.join(dir, 'out-b'), extra, 'enr-b');
  const agent = await startAgent(t, [
    '--input-file',
    want.file,
    '--enricher',
    `127.0.0.1:${a.linkPort},127.0.0.1:${b.linkPort}`,
    '--switch-interval',
    '0',
    '--batch-records',
    String(BATCH),
    '--rate-limit',
    '20000',
  ]);
  await waitUntil(
    async () => (await metric(agent.metricsPort, 'snowtap_agent_records_acked_total')) >= want.frames / 4,
    'a quarter acknowledged',
    60_000,
  );
  // The one carrying the traffic hangs (switching is off: one active connection for good).
  const [hung, other] = (await received(a)) >= (await received(b)) ? [a, b] : [b, a];
  const otherBefore = await received(other);
  // The agent's counters vanish with it: keep the last value seen.
  let resent = 0;
  const poll = setInterval(() => {
    metric(agent.metricsPort, 'snowtap_agent_batches_resent_total').then(
      (v) => {
        resent = v;
      },
      () => undefined,
    );
  }, 100);
  t.after(() => clearInterval(poll));
  const stoppedAt = Date.now();
  hung.child.kill('SIGSTOP');
  t.after(() => {
    hung.child.kill('SIGCONT');
  });
  await waitUntil(() => /keepalive timeout/.test(agent.log()), 'keepalive timeout in the agent log', 30_000);
  const noticedMs = Date.now() - stoppedAt;
  await waitUntil(async () => (await received(other)) > otherBefore, 'the other enricher takes over', 30_000);
  const movedMs = Date.now() - stoppedAt;
  assert.ok(
    noticedMs <= NOTICE_BOUND_MS + 3000,
    `noticed after ${noticedMs} ms (bound ${NOTICE_BOUND_MS} ms + 3 s for a loaded machine)`,
  );
  assert.equal(
    await exitWithin(agent, 120_000, 'agent replay'),
    0,
    'everything acknowledged without the hung one',
  );
  clearInterval(poll);
  hung.child.kill('SIGCONT');
  // The old pod reads what was in its socket buffer: give it time to write it, then drain both.
  await new Promise((r) => setTimeout(r, 3000));
  for (const e of [a, b]) e.child.kill('SIGTERM');
  for (const e of [a, b]) assert.equal(await exitWithin(e, 30_000, 'enricher'), 0);
  const d = await auditDelivery([a.outputDir, b.outputDir], want);
  t.diagnostic(
    `keepalive ${KEEPALIVE_S} s: noticed ${noticedMs} ms after SIGSTOP (bound ${NOTICE_BOUND_MS} ms), traffic on the other enricher after ${movedMs} ms; ${resent} batches re-sent, ${d.duplicates} duplicate rows of ${d.rows}`,
  );
  assert.ok(resent >= 1, 'the unacknowledged window was re-sent');
  assert.ok(d.duplicates <= resent * BATCH, `duplicates ${d.duplicates} within re-sent batches (${resent})`);
});
