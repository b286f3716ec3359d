// The policy poller against a real local HTTP server (README "Output: CSV chunks", policy document): ETag / If-None-Match and 304
// honoured, gzip bodies, a changed document swapped in and used by new rows; HTTP 500,
// invalid JSON, a timeout, an oversized body and a vanished server keep the last good policy
// and are logged and counted by reason; readiness waits for the first policy. Also the file
// source: a changed file is reloaded, a broken one keeps the last good policy.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { PolicyPoller } from '../../enricher/policy/poller';
import {
  captureLog,
  committedRows,
  findLog,
  startEnricher,
  tmpDir,
  waitFor,
} from '../support/enricher-helpers';
import { fixtureRecords, TestAgent } from '../support/link-client';

const doc = (version: string, category: string) =>
  JSON.stringify({
    version,
    domains: [{ suffix: '.', category, action: 'log' }],
    networks: [
      { cidr: '0.0.0.0/0', tenant: `t-${version}` },
      { cidr: '::/0', tenant: `t-${version}` },
    ],
  });

/** A policy server whose answer the test sets; records the If-None-Match of every request. */
async function policyServer(t: Parameters<typeof tmpDir>[0]) {
  const state = {
    body: Buffer.from(doc('v1', 'one')) as Buffer | null,
    etag: '"e1"',
    status: 200,
    hang: false,
    seen: [] as (string | undefined)[],
  };
  const server = http.createServer((req, res) => {
    state.seen.push(req.headers['if-none-match']);
    if (state.hang) return; // never answers
    if (state.status !== 200) res.writeHead(state.status).end('boom');
    else if (req.headers['if-none-match'] === state.etag) res.writeHead(304).end();
    else res.writeHead(200, { etag: state.etag, 'content-type': 'application/json' }).end(state.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/policy.json`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.after(close);
  return { state, url, close };
}

test('poller: ETag/304, change, 500, invalid JSON, timeout, too large, server gone', async (t) => {
  const srv = await policyServer(t);
  const { log, lines } = captureLog();
  const p = new PolicyPoller({
    url: srv.url,
    log,
    intervalMs: 3_600_000,
    timeoutMs: 300,
    maxBodyBytes: 4096,
  });
  t.after(() => p.stop());
  await p.start();
  assert.equal(p.current?.version, 'v1');
  assert.equal(p.current?.sourceEtag, '"e1"');
  assert.equal(await p.poll(), 'unchanged');
  assert.deepEqual(srv.state.seen, [undefined, '"e1"']);

  srv.state.body = zlib.gzipSync(doc('v2', 'two'));
  srv.state.etag = '"e2"';
  assert.equal(await p.poll(), 'updated');
  assert.equal(p.current?.version, 'v2');
  const good = p.current;

  const failures: [() => void, string][] = [
    [() => (srv.state.status = 500), 'http_status'],
    [
      () => {
        srv.state.status = 200;
        srv.state.etag = '"e3"';
        srv.state.body = Buffer.from('{"version": "v3", oops');
      },
      'bad_json',
    ],
    [() => (srv.state.body = Buffer.from(JSON.stringify({ version: 'v4', domains: 'nope' }))), 'invalid'],
    [() => (srv.state.body = Buffer.alloc(5000, 0x20)), 'too_large'],
    [() => (srv.state.hang = true), 'timeout'],
  ];
  for (const [setup, reason] of failures) {
    setup();
    assert.equal(await p.poll(), 'failed', reason);
    assert.equal(p.current, good, `${reason}: the last good policy stays`);
    assert.equal(p.stats.failures.get(reason as never), 1, reason);
  }
  await srv.close();
  assert.equal(await p.poll(), 'failed');
  assert.equal(p.stats.failures.get('connect'), 1);
  assert.equal(p.current, good);
  const warned = findLog(lines, 'policy load failed; keeping the last good policy');
  assert.deepEqual(
    warned.map((l) => l.reason),
    ['http_status', 'bad_json', 'invalid', 'too_large', 'timeout', 'connect'],
  );
  assert.ok(warned.every((l) => l.keeping === 'v2'));
});

test('poller: retries sooner after a failure (backoff below the interval)', async (t) => {
  const srv = await policyServer(t);
  srv.state.status = 503;
  const { log } = captureLog();
  const p = new PolicyPoller({ url: srv.url, log, intervalMs: 3_600_000, minRetryMs: 50 });
  t.after(() => p.stop());
  await p.start();
  assert.equal(p.current, null);
  srv.state.status = 200;
  await waitFor(() => p.current !== null, 'a retry well before the interval', 3000);
  assert.equal(p.current!.version, 'v1');
});

test('poller: a policy file is reloaded when it changes; a broken one keeps the last good', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'policy.json');
  fs.writeFileSync(file, doc('f1', 'one'));
  const { log } = captureLog();
  const p = new PolicyPoller({ file, log, intervalMs: 3_600_000 });
  t.after(() => p.stop());
  await p.start();
  assert.equal(p.current?.version, 'f1');
  assert.equal(await p.poll(), 'unchanged');
  fs.writeFileSync(`${file}.tmp`, doc('f2-longer', 'two'));
  fs.renameSync(`${file}.tmp`, file);
  assert.equal(await p.poll(), 'updated');
  assert.equal(p.current?.version, 'f2-longer');
  fs.writeFileSync(file, '{not json');
  assert.equal(await p.poll(), 'failed');
  assert.equal(p.current?.version, 'f2-longer');
  assert.equal(p.stats.failures.get('bad_json'), 1);
});

test('enricher: not ready until the policy loads; new rows use a changed policy', async (t) => {
  const srv = await policyServer(t);
  srv.state.status = 500;
  const { port, enricher, dir } = await startEnricher(t, {
    policy: { url: srv.url, intervalMs: 3_600_000, minRetryMs: 50 },
  });
  assert.deepEqual(enricher.readiness(), { ready: false, reasons: ['policy not loaded'] });
  srv.state.status = 200;
  await waitFor(() => enricher.readiness().ready, 'readiness after the first policy');
  const records = fixtureRecords('unbound-local-unix.fstrm');
  const agent = await TestAgent.connect({ port, agentId: 'pol' });
  assert.equal(await agent.answer(), 'welcome');
  agent.sendBatch(1, records);
  await agent.waitAcks([1]);
  srv.state.body = Buffer.from(doc('v2', 'two'));
  srv.state.etag = '"e2"';
  assert.equal(await enricher.poller!.poll(), 'updated');
  agent.sendBatch(2, records);
  await agent.waitAcks([2]);
  agent.goodbye();
  await agent.closed;
  await enricher.stop();
  const rows = await committedRows(dir);
  const bySeq = (seq: number) => rows.filter((r) => r.record_id!.split('/')[2] === String(seq));
  assert.equal(bySeq(1).length, records.length);
  assert.ok(bySeq(1).every((r) => r.policy_category === 'one' && r.tenant === 't-v1'));
  assert.ok(bySeq(2).every((r) => r.policy_category === 'two' && r.tenant === 't-v2'));
});
