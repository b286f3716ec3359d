// --pseudonymize-clients in a running enricher: the key file laid out as the kubelet mounts a
// Secret (<dir>/key -> ..data/key, ..data -> ..<timestamp>), rotated the way the kubelet does
// it (a new timestamped directory, a temporary symlink renamed over ..data). Rows written
// before the swap carry the first key's id and pseudonyms, rows after it the second's - no
// restart - and no row carries the client address.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Pseudonymizer } from '../../enricher/pipeline/pseudonym';
import { committedRows, findLog, startEnricher, tmpDir, waitFor } from '../support/enricher-helpers';
import { fixtureRecords, TestAgent } from '../support/link-client';

test('a kubelet-style Secret update rotates the pseudonym key without a restart', async (t) => {
  const mount = tmpDir(t, 'snowtap-secret-');
  const version = (name: string, key: string) => {
    fs.mkdirSync(path.join(mount, name));
    fs.writeFileSync(path.join(mount, name, 'key'), `${key}\n`);
  };
  version('..2026_12_06_15_00_00.1', 'first-key-0123456789abcdef');
  fs.symlinkSync('..2026_12_06_15_00_00.1', path.join(mount, '..data'));
  fs.symlinkSync('..data/key', path.join(mount, 'key'));
  const pseudonymizer = Pseudonymizer.fromFile(path.join(mount, 'key'));
  const firstId = pseudonymizer.keyId.toString();

  const { port, enricher, dir, lines } = await startEnricher(t, {
    rows: { pseudonymizer },
    secretReloadMs: 50,
  });
  const agent = await TestAgent.connect({ port, agentId: 'agent-p', incarnation: '20261206T150000-aa' });
  assert.equal(await agent.answer(), 'welcome');
  const records = fixtureRecords().slice(0, 200);
  agent.sendBatch(1, records);
  await agent.waitAcks([1]);

  version('..2026_12_06_15_05_00.2', 'second-key-0123456789abcdef');
  fs.symlinkSync('..2026_12_06_15_05_00.2', path.join(mount, '..data_tmp'));
  fs.renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'));
  fs.rmSync(path.join(mount, '..2026_12_06_15_00_00.1'), { recursive: true });
  await waitFor(() => pseudonymizer.reloads === 1, 'the key reload');
  assert.equal(findLog(lines, 'pseudonym key changed').length, 1);

  agent.sendBatch(2, records);
  await agent.waitAcks([2]);
  agent.goodbye();
  await agent.closed;
  assert.equal(await enricher.stop(), 0);

  const rows = await committedRows(dir);
  const seqOf = (r: Record<string, string>) => r.record_id!.split('/')[2];
  const before = rows.filter((r) => seqOf(r) === '1');
  const after = rows.filter((r) => seqOf(r) === '2');
  assert.equal(before.length, 200);
  assert.equal(after.length, 200);
  assert.deepEqual(new Set(before.map((r) => r.client_key_id)), new Set([firstId]));
  const secondId = pseudonymizer.keyId.toString();
  assert.notEqual(secondId, firstId);
  assert.deepEqual(new Set(after.map((r) => r.client_key_id)), new Set([secondId]));
  // The same records, so the same clients: pseudonyms differ only by key.
  const key = (r: Record<string, string>) => r.record_id!.split('/')[3];
  const afterByIndex = new Map(after.map((r) => [key(r), r]));
  let compared = 0;
  for (const r of before) {
    if (!/^CLIENT_/.test(r.message_type!)) continue;
    assert.match(r.query_address!, /^[0-9a-f]{32}$/);
    assert.notEqual(afterByIndex.get(key(r))!.query_address, r.query_address);
    compared++;
  }
  assert.ok(compared > 0);
  assert.ok(rows.every((r) => !r.query_address!.includes('127.0.0.1')));
});
