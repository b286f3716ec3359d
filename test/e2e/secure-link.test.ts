// The real processes over a secured link: mTLS + shared token (files written the way
// kubectl/echo write them, with a trailing newline), sampling carried into the CSV, and a
// wrong token refused with the reason logged on both sides.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeCerts } from '../support/enricher-helpers';
import { FIXTURES_DIR } from '../support/peers';
import {
  committedRows,
  exitWithin,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';

const CAPTURE = path.join(FIXTURES_DIR, 'unbound-local-unix.fstrm'); // 628 frames

test('agent -> enricher over mTLS with a token; --sample 4 keeps every 4th record with sample_rate 4', {
  timeout: 60_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-tls-');
  const c = makeCerts(dir);
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 's3cret-token\n');
  const enricher = await startEnricher(t, path.join(dir, 'out'), [
    '--tls-cert',
    c.serverCert,
    '--tls-key',
    c.serverKey,
    '--tls-ca',
    c.ca,
    '--auth-token-file',
    token,
  ]);
  const agent = await startAgent(t, [
    '--input-file',
    CAPTURE,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--tls-ca',
    c.ca,
    '--tls-cert',
    c.clientCert,
    '--tls-key',
    c.clientKey,
    '--auth-token-file',
    token,
    '--sample',
    '4',
    '--sample-mode',
    'every',
  ]);
  assert.equal(await exitWithin(agent, 30_000, 'agent'), 0, agent.log().slice(-2000));
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 25_000, 'enricher'), 0);
  const rows = await committedRows(enricher.outputDir);
  assert.equal(rows.length, 628 / 4);
  assert.ok(rows.every((r) => r.sample_rate === '4' && r.agent_id === 'agent-e2e'));
});

test('a wrong token is refused: BAD_AUTH logged by the enricher and by the agent, nothing written', {
  timeout: 60_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-auth-');
  fs.writeFileSync(path.join(dir, 'good'), 'right-token\n');
  fs.writeFileSync(path.join(dir, 'bad'), 'wrong-token\n');
  const enricher = await startEnricher(t, path.join(dir, 'out'), [
    '--auth-token-file',
    path.join(dir, 'good'),
  ]);
  const agent = await startAgent(t, [
    '--input-file',
    CAPTURE,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--auth-token-file',
    path.join(dir, 'bad'),
    '--drain-timeout',
    '2',
  ]);
  await waitUntil(
    () => /BAD_AUTH/.test(agent.log()) && /BAD_AUTH/.test(enricher.log()),
    'BAD_AUTH in both logs',
    20_000,
  );
  agent.child.kill('SIGTERM');
  assert.notEqual(
    await exitWithin(agent, 20_000, 'agent'),
    0,
    'a replay that was never acknowledged does not exit 0',
  );
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 25_000, 'enricher'), 0);
  assert.equal((await committedRows(enricher.outputDir)).length, 0);
});
