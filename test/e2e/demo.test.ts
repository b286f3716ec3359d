// `snowtap demo` (the README's first command) runs the whole pipeline and reports it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { duckdbQuery } from '../support/output-rows';

const MAIN = path.resolve(__dirname, '../../cli/main.js');

test('snowtap demo: synthetic resolver -> agent -> enricher -> CSV, nothing lost, summary printed', {
  timeout: 60_000,
}, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-demo-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [MAIN, 'demo', '--duration', '3', '--rate', '5000', '--switch-interval', '1', '--output-dir', dir],
    { env: { ...process.env, SNOWTAP_LOG_LEVEL: 'warn' } },
  );
  const m =
    /records: ([\d,]+) sent by the resolver, ([\d,]+) received by the agent, ([\d,]+) acknowledged, ([\d,]+) CSV rows/.exec(
      stdout,
    );
  assert.ok(m, stdout);
  const [sent, received, acked, rows] = m.slice(1, 5).map((x) => Number(x!.replace(/,/g, '')));
  assert.ok(sent! > 10_000, `sent ${sent}`);
  assert.equal(received, sent);
  assert.equal(acked, received);
  assert.equal(rows, acked);
  assert.match(stdout, /policy categories: .*malware/);
  assert.match(stdout, /tenants: .*corp-v6/);
  assert.match(stdout, /connection switches/);
  const [agg] = await duckdbQuery(
    [path.join(dir, '**', '*.csv')],
    `SELECT count(*)::BIGINT AS n, count(DISTINCT record_id)::BIGINT AS ids, count(tenant)::BIGINT AS with_tenant FROM $SOURCE`,
  );
  assert.equal(Number(agg!.n), rows);
  assert.equal(Number(agg!.ids), rows);
  assert.equal(Number(agg!.with_tenant), rows, 'every synthetic client is in a sample-policy network');
});
