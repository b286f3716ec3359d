// Startup that never finishes (issue 10), through the real executable: an output directory
// mkdir cannot create (a /proc path spun Node's recursive mkdir at 100 % CPU, deaf to
// SIGTERM) and a policy URL that accepts and never answers. Each ends in exit 1 with an error
// naming the problem, within its deadline.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { exitWithin, freeTcpPort, startSnowtap, tmpDir } from '../support/pipeline-procs';

async function enricher(t: Parameters<typeof tmpDir>[0], outputDir: string, extra: string[]) {
  const metricsPort = await freeTcpPort();
  return startSnowtap(
    t,
    [
      'enricher',
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--output-dir',
      outputDir,
      '--id',
      'startup-e2e',
      ...extra,
    ],
    metricsPort,
  );
}

test('an output directory under /proc (mkdir ENOENT forever) exits 1 at once naming the path', async (t) => {
  const p = await enricher(t, '/proc/self/snowtap-out/x', []);
  const t0 = Date.now();
  const code = await exitWithin(p, 15_000, 'enricher with a /proc output dir');
  assert.equal(code, 1);
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  assert.match(p.log(), /mkdir \/proc\/self\/snowtap-out/);
});

test('an output directory that cannot be written exits 1 naming it', async (t) => {
  // A regular file where a directory component should be: mkdir fails with ENOTDIR/EEXIST.
  const dir = tmpDir(t, 'startup-');
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  const p = await enricher(t, path.join(file, 'out'), []);
  const code = await exitWithin(p, 15_000, 'enricher with a file in the output path');
  assert.equal(code, 1);
  assert.match(p.log(), /output (not writable|I\/O failed): mkdir .*file/);
});

test('a policy URL that accepts and never answers: exit 1 after --policy-start-timeout, naming the URL', async (t) => {
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => held.push(s)); // accepts, reads, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });
  const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/policy.json`;
  const dir = tmpDir(t, 'startup-');
  const p = await enricher(t, path.join(dir, 'out'), [
    '--policy-url',
    url,
    '--policy-timeout',
    '0.5',
    '--policy-start-timeout',
    '2',
  ]);
  const t0 = Date.now();
  const code = await exitWithin(p, 20_000, 'enricher with a silent policy URL');
  assert.equal(code, 1);
  const took = Date.now() - t0;
  assert.ok(took >= 1_500 && took < 15_000, `exited after ${took} ms`);
  assert.match(p.log(), /ENRICHER_POLICY_START_TIMEOUT/);
  assert.ok(p.log().includes(`--policy-url ${url}: no policy loaded within 2 s`));
});

test('agent: a --spool-dir under /proc exits 1 at once naming it (it spun like the enricher did)', async (t) => {
  const metricsPort = await freeTcpPort();
  const p = startSnowtap(
    t,
    [
      'agent',
      '--input-file',
      path.resolve(__dirname, '../../../test/fixtures/unbound-local-unix.fstrm'),
      '--enricher',
      '127.0.0.1:1',
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--spool-dir',
      '/proc/self/snowtap-spool/x',
    ],
    metricsPort,
  );
  assert.equal(await exitWithin(p, 15_000, 'agent with a /proc spool dir'), 1);
  assert.match(p.log(), /spool directory \/proc\/self\/snowtap-spool\/x is not usable/);
});
