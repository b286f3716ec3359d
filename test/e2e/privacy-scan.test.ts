// The privacy scan through a real pipeline (issue 9 step 1): `snowtap agent` and `snowtap
// enricher` processes with masking configured, run on a capture whose client addresses are
// known (test/support/privacy-scan.ts: client-side query addresses in IPv4, IPv6 and
// IPv4-mapped IPv6, ECS, a policy CLIENT_IP value). No configured-away client address may be
// left anywhere the run leaves data: the decompressed chunks, both processes' stderr at debug
// level, `/metrics` scrapes of both, and - when the agent masks - the agent's spool files, in
// every textual form (dotted, IPv4-mapped IPv6 dotted and hex, compressed and expanded IPv6,
// the low 64 bits, hex) and as raw bytes in the spool.
//
// 1. Masking in the agent (minimise at the edge), the enricher masks nothing: the agent first
//    runs with no enricher reachable, so everything lands in its spool (scanned), then again
//    with an enricher, which receives the spooled batches. The tenant lookup sees the masked
//    address: rows get the /24 network's tenant, not the /32's.
// 2. Masking in the enricher only: chunks, logs and metrics are clean, the tenant lookup saw
//    the real address.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { dnstapFrame } from '../support/chunk-builder';
import { file as fstrmFile } from '../support/fstrm-builder';
import { finalFiles, parseCsvText } from '../support/output-rows';
import {
  exitWithin,
  freeTcpPort,
  metric,
  startAgent,
  startEnricher,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';
import { forms, frames, MAPPED, V4, V6 } from '../support/privacy-scan';

const MASK = ['--mask-client-ipv4', '24', '--mask-client-ipv6', '56'];
const DEBUG = ['--log-level', 'debug'];
const COPIES = 20;

const POLICY = {
  version: 'privacy-scan',
  domains: [],
  networks: [
    { cidr: '192.0.2.77/32', tenant: 'exact-v4' },
    { cidr: '192.0.2.0/24', tenant: 'subnet-v4' },
  ],
};

function setup(t: Parameters<typeof tmpDir>[0]) {
  const dir = tmpDir(t, 'snowtap-privacy-scan-');
  const capture = path.join(dir, 'capture.fstrm');
  const one = frames().map(dnstapFrame);
  const all: Buffer[] = [];
  for (let i = 0; i < COPIES; i++) all.push(...one);
  fs.writeFileSync(capture, fstrmFile(all));
  const policy = path.join(dir, 'policy.json');
  fs.writeFileSync(policy, JSON.stringify(POLICY));
  return { dir, capture, policy, records: all.length };
}

/** Every configured-away address form found in `text` (case-insensitive). */
function leaks(text: string): string[] {
  const lower = text.toLowerCase();
  return [V4, V6, MAPPED].flatMap((a) => forms(a)).filter((f) => lower.includes(f.toLowerCase()));
}

function rawLeaks(bytes: Buffer): string[] {
  return [V4, V6, MAPPED.slice(12)]
    .map((a) => Buffer.from(a))
    .filter((a) => bytes.indexOf(a) >= 0)
    .map((a) => a.toString('hex'));
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function chunkText(outputDir: string): string {
  return finalFiles(outputDir)
    .map((f) => zlib.gunzipSync(fs.readFileSync(path.join(outputDir, f))).toString('utf8'))
    .join('');
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

test('masking in the agent: spool, link, chunks, logs and metrics never hold a client address', async (t) => {
  const { dir, capture, policy, records } = setup(t);
  // The scan can see the addresses: the capture itself holds them as raw bytes.
  assert.equal(rawLeaks(fs.readFileSync(capture)).length, 3);
  const spool = path.join(dir, 'spool');

  // No enricher: every batch stays unacknowledged and is spooled when the replay gives up.
  const dead = await freeTcpPort();
  const first = await startAgent(
    t,
    [
      '--input-file',
      capture,
      '--input-timeout',
      '2',
      '--drain-timeout',
      '1',
      '--spool-dir',
      spool,
      '--enricher',
      `127.0.0.1:${dead}`,
      ...MASK,
      ...DEBUG,
    ],
    'agent-privacy',
  );
  await waitUntil(
    async () => (await metric(first.metricsPort, 'snowtap_agent_records_in_total')) >= records,
    'agent input',
  );
  const firstMetrics = await scrape(first.metricsPort);
  assert.equal(await exitWithin(first, 20_000, 'the first agent'), 1);
  const spoolFiles = filesUnder(spool);
  assert.ok(spoolFiles.length > 0, 'batches were spooled');
  const spoolBytes = Buffer.concat(spoolFiles.map((f) => fs.readFileSync(f)));
  assert.deepEqual(rawLeaks(spoolBytes), [], 'raw address bytes in the spool');
  assert.deepEqual(leaks(spoolBytes.toString('latin1')), [], 'address text in the spool');

  // With an enricher (no masking there): the spooled batches are delivered.
  const out = path.join(dir, 'out');
  const enricher = await startEnricher(t, out, ['--compression', 'gzip', '--policy-file', policy, ...DEBUG]);
  const second = await startAgent(
    t,
    [
      '--dnstap-socket',
      path.join(dir, 'dnstap.sock'),
      '--spool-dir',
      spool,
      '--enricher',
      `127.0.0.1:${enricher.linkPort}`,
      ...MASK,
      ...DEBUG,
    ],
    'agent-privacy',
  );
  await waitUntil(
    async () => (await metric(enricher.metricsPort, 'snowtap_enricher_rows_committed_total')) >= records,
    'all rows committed',
  );
  const metrics = [firstMetrics, await scrape(second.metricsPort), await scrape(enricher.metricsPort)];
  second.child.kill('SIGTERM');
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(second, 20_000, 'the second agent'), 0);
  assert.equal(await exitWithin(enricher, 30_000, 'the enricher'), 0);

  const text = chunkText(out);
  const rows = await parseCsvText(text);
  assert.equal(rows.length, records);
  assert.deepEqual(leaks(text), [], 'in the chunks');
  for (const [i, m] of metrics.entries()) assert.deepEqual(leaks(m), [], `in /metrics scrape ${i}`);
  for (const [name, log] of [
    ['agent 1', first.log()],
    ['agent 2', second.log()],
    ['enricher', enricher.log()],
  ]) {
    assert.ok(log.length > 0, `${name} logged`);
    assert.deepEqual(leaks(log), [], `in the ${name} log`);
  }
  // The rows hold the masked addresses, and the tenant lookup saw them masked.
  const a = rows.filter((r) => r.qname === 'a');
  assert.equal(a.length, 7 * COPIES);
  assert.ok(a.every((r) => r.query_address === '192.0.2.0' && r.tenant === 'subnet-v4'));
  assert.ok(rows.some((r) => r.query_address === '2001:db8:1234:5600::'));
  assert.ok(
    rows.some((r) => r.query_address === '10.99.98.97'),
    'the resolver address is kept',
  );
});

/** The decompressed text of every hourly aggregate file (--aggregates hourly). */
function aggregateText(outputDir: string): { files: number; text: string } {
  const dir = path.join(outputDir, 'aggregates');
  const files = fs.existsSync(dir) ? filesUnder(dir).filter((f) => f.endsWith('.csv.gz')) : [];
  return {
    files: files.length,
    text: files.map((f) => zlib.gunzipSync(fs.readFileSync(f)).toString('utf8')).join(''),
  };
}

test('masking in the enricher only: chunks, aggregates, logs and metrics hold no client address', async (t) => {
  const { dir, capture, policy, records } = setup(t);
  const out = path.join(dir, 'out');
  const enricher = await startEnricher(t, out, [
    '--compression',
    'gzip',
    '--policy-file',
    policy,
    '--aggregates',
    'hourly',
    ...MASK,
    ...DEBUG,
  ]);
  const agent = await startAgent(
    t,
    ['--input-file', capture, '--enricher', `127.0.0.1:${enricher.linkPort}`, ...DEBUG],
    'agent-privacy',
  );
  await waitUntil(
    async () => (await metric(enricher.metricsPort, 'snowtap_enricher_rows_committed_total')) >= records,
    'all rows committed',
  );
  const metrics = await scrape(enricher.metricsPort);
  assert.equal(await exitWithin(agent, 20_000, 'the agent'), 0);
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'the enricher'), 0);
  const text = chunkText(out);
  const rows = await parseCsvText(text);
  assert.equal(rows.length, records);
  assert.deepEqual(leaks(text), [], 'in the chunks');
  assert.deepEqual(leaks(metrics), [], 'in /metrics');
  assert.deepEqual(leaks(enricher.log()), [], 'in the enricher log');
  assert.deepEqual(leaks(agent.log()), [], 'in the agent log');
  // Hourly aggregates: the 192.0.2.77/32 policy network is written at the mask's /24.
  const agg = aggregateText(out);
  assert.ok(agg.files > 0, 'aggregate files were written');
  assert.deepEqual(leaks(agg.text), [], 'in the aggregate files');
  assert.match(agg.text, /192\.0\.2\.0\/24/);
  // Nothing else the run left behind (journal, generated key, partial directories) holds one either.
  for (const f of filesUnder(out).filter((f) => !f.endsWith('.gz')))
    assert.deepEqual(rawLeaks(fs.readFileSync(f)), [], `raw bytes of ${f}`);
  const a = rows.filter((r) => r.qname === 'a');
  assert.ok(
    a.every((r) => r.query_address === '192.0.2.0' && r.tenant === 'exact-v4'),
    'lookup before masking',
  );
});
