// Connection attacks (issue 10, "Attackers"), CI-sized: the handshaking budget of the link
// port holds and never takes an agent's slot, and loadtest/attack.ts's scenarios with 2,000
// connections (idle, and slowloris at one byte a second) leave a real agent's --input-file
// replay within 3x its time without the attack. The dnstap ports (a real dnstap sender is
// Debian software) are in test/interop/dnstap-exposed-interop.test.ts. The long form (10,000
// connections, every port) is `npm run attack`.
//
// Regression: 3,000 idle connections used to make an agent's replay 26x slower (they filled
// --max-connections plus the Node-level cap while waiting out their handshake deadline).

import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { type AttackReport, runAttack } from '../../loadtest/attack';
import { startEnricher, waitFor } from '../support/enricher-helpers';
import { TestAgent } from '../support/link-client';

const REPO = path.resolve(__dirname, '../../..');
const DIST = path.resolve(__dirname, '../..');
const BULK = path.join(REPO, 'test/fixtures/unbound-local-unix-bulk.fstrm');
/**
 * Process start-up of the sender (~0.2-0.4 s of a ~0.4 s replay) is the noisiest part of the
 * figure on a shared CI machine: ratios are taken against at least this baseline.
 */
const BASELINE_FLOOR_MS = 500;

function assertWithin3x(r: AttackReport): void {
  const limit = 3 * Math.max(r.baselineMs, BASELINE_FLOOR_MS);
  assert.ok(
    r.underAttackMs <= limit,
    `under attack ${r.underAttackMs} ms > 3 x ${r.baselineMs} ms: ${JSON.stringify(r)}`,
  );
}

function idle(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

test('link: idle connections beyond the handshaking budget evict the oldest; an agent still gets Welcome', async (t) => {
  const { port, enricher } = await startEnricher(t, { link: { maxConnections: 2, maxHandshaking: 4 } });
  const sockets: net.Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  for (let i = 0; i < 12; i++) sockets.push(await idle(port));
  const stats = enricher.link!.stats;
  await waitFor(() => (stats.rejected.get('handshake_evicted') ?? 0) >= 8, 'evictions');
  assert.ok(stats.connectionsHandshaking <= 4, `${stats.connectionsHandshaking} handshaking`);
  const a = await TestAgent.connect({ port, agentId: 'real-a' });
  const b = await TestAgent.connect({ port, agentId: 'real-b' });
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  assert.equal(await a.answer(), 'welcome');
  assert.equal(await b.answer(), 'welcome');
});

test('link: 2,000 idle connections re-opened as fast as closed: a real agent replay within 3x', {
  timeout: 60_000,
}, async () => {
  const r = await runAttack({
    target: 'link',
    mode: 'idle',
    connections: 2_000,
    file: BULK,
    dist: DIST,
    replayTimeoutMs: 30_000,
  });
  assertWithin3x(r);
  assert.equal(r.connectedAtStart, 2_000, 'the attack was held, not churned');
});

test('link: 2,000 slowloris handshakes (one byte a second): a real agent replay within 3x', {
  timeout: 60_000,
}, async () => {
  const r = await runAttack({
    target: 'link',
    mode: 'slowloris',
    connections: 2_000,
    file: BULK,
    dist: DIST,
    replayTimeoutMs: 30_000,
  });
  assertWithin3x(r);
});
