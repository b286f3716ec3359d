// az:// output against Azurite (npm devDependency) behind a recording proxy: rows load, kill -9
// mid-chunk then recovery under a different enricher id loses no acknowledged record, racing
// successors commit once, and every chunk name is created exactly once, conditionally.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as zlib from 'node:zlib';
import type { ContainerClient } from '@azure/storage-blob';
import { azureContainer, recoverAzure, stagedPrefix } from '../../enricher/output/azure-store';
import { ChunkWriter } from '../../enricher/output/chunk-writer';
import { parseOutputUrl } from '../../enricher/output/object-url';
import {
  azuriteConnectionString,
  CHUNK_NAME,
  crashChildAfterFlushes,
  type RecordingProxy,
  type Server,
  startAzurite,
  startProxy,
} from '../support/objstore';
import { parseCsvText, row } from '../support/output-rows';
import { startEnricher } from '../support/pipeline-procs';

const CONTAINER = 'snowtap';
let azurite: Server;
let proxy: RecordingProxy;
let env: Record<string, string>;
let container: ContainerClient;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'objstore-az-'));

before(async () => {
  azurite = await startAzurite();
  proxy = await startProxy('az', azurite.port, false);
  env = { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(proxy.port) };
  process.env.AZURE_STORAGE_CONNECTION_STRING = env.AZURE_STORAGE_CONNECTION_STRING!;
  container = azureContainer(parseOutputUrl(`az://${CONTAINER}/`));
  await container.create();
});

after(async () => {
  await proxy?.close();
  await azurite?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Committed chunk blobs under `prefix` (heartbeat records excluded), sorted by name. */
async function chunks(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const b of container.listBlobsFlat({ prefix })) if (CHUNK_NAME.test(b.name)) names.push(b.name);
  return names.sort();
}

async function idsIn(names: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const n of names) {
    const raw = await container.getBlockBlobClient(n).downloadToBuffer();
    const text = (n.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
    for (const r of await parseCsvText(text)) ids.push(r.record_id!);
  }
  return ids;
}

function ids(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `r-${String(from + i).padStart(8, '0')}`);
}

/** Every chunk under prefix was created exactly once, with If-None-Match: *. */
function assertOneCreateEach(names: string[]): void {
  assert.ok(names.length > 0);
  for (const n of names) {
    const c = proxy.log.creates.get(n);
    assert.ok(c, `no create recorded for ${n}`);
    assert.equal(c.ok, 1, `${n}: ${c.ok} successful creates`);
    assert.equal(c.unconditional, 0, `${n}: unconditional create`);
  }
  assert.deepEqual(proxy.log.otherWrites, []);
}

describe('az:// output (Azurite)', () => {
  test('rows load: every committed blob holds the input rows in order, one conditional create each', async () => {
    const w = new ChunkWriter({
      outputDir: path.join(tmp, 'unused'),
      outputUrl: `az://${CONTAINER}/load/a`,
      enricherId: 'az-load',
      compression: 'gzip',
      blockBytes: 16 * 1024,
      maxRows: 250,
    });
    for (let i = 0; i < 1000; i++) {
      w.appendRow(row(i), 0, row(i).length);
      if (i % 90 === 89) await w.flush();
    }
    await w.close();
    const names = await chunks('load/a/');
    assert.equal(names.length, 4);
    assert.deepEqual(await idsIn(names), ids(0, 1000));
    assertOneCreateEach(names);
    // Staged blocks per chunk > 1: acknowledgements waited for blocks, not for the commit.
    assert.ok((proxy.log.writes.get('stage') ?? 0) > names.length);
    // close() deleted the heartbeat record; no local directory was made.
    const left: string[] = [];
    for await (const b of container.listBlobsFlat({ prefix: 'load/a/_partial/' })) left.push(b.name);
    assert.deepEqual(left, []);
    assert.equal(fs.existsSync(path.join(tmp, 'unused')), false);
  });

  test('kill -9 mid-chunk, recovery under a different id: 0 acknowledged records lost, one create per chunk', async (t) => {
    const url = `az://${CONTAINER}/crash`;
    const durable = await crashChildAfterFlushes(path.join(tmp, 'c1'), 'az-dead', 'none', url, 700, env);
    assert.equal(durable, 1500);
    const before = await chunks('crash/');
    // 1500 durable rows: at least two chunks of 700 were committed; the writer went on until the
    // kill, so how many more depends on the machine's speed.
    assert.ok(before.length >= 2, `${before.length} chunks of 700 rows committed before the kill`);
    // A peer: the dead writer's heartbeat is stale on the peer's clock (2 min ahead).
    const later = () => Date.now() + 120_000;
    const live = await recoverAzure(parseOutputUrl(url), container, 'az-successor', {
      staleAfterMs: 60_000,
      now: Date.now,
    });
    assert.equal(live.committed.length, 0, 'a fresh heartbeat is left alone');
    assert.equal(live.live.length, 1);
    const res = await recoverAzure(parseOutputUrl(url), container, 'az-successor', {
      staleAfterMs: 60_000,
      now: later,
    });
    // The writer was killed mid-stream: it had one chunk open, unless the kill landed after a
    // rotation and before the next chunk's first block was staged (rows only in memory, never
    // acknowledged); then there is nothing to commit. Either way nothing acknowledged is lost.
    assert.ok(res.committed.length <= 1, `${res.committed.length} chunks committed by the successor`);
    if (res.committed.length === 0) t.diagnostic('the kill landed between chunks: no open chunk to commit');
    const names = await chunks('crash/');
    assert.equal(names.length, before.length + res.committed.length);
    const got = await idsIn(names);
    assert.ok(got.length >= durable, `${got.length} rows committed, ${durable} acknowledged`);
    assert.deepEqual(got, ids(0, got.length), 'no loss, no duplicate, in order');
    assertOneCreateEach(names);
    // Nothing is left to recover; a second pass creates nothing.
    const again = await recoverAzure(parseOutputUrl(url), container, 'az-third', {
      staleAfterMs: 60_000,
      now: later,
    });
    assert.deepEqual(again.committed, []);
    assertOneCreateEach(names);
  });

  test('a kill between commit and bookkeeping, then two racing successors: each chunk committed once', async () => {
    const url = `az://${CONTAINER}/race`;
    const durable = await crashChildAfterFlushes(
      path.join(tmp, 'c2'),
      'az-dead2',
      'gzip',
      url,
      1_000_000,
      env,
    );
    assert.equal(durable, 1500);
    assert.deepEqual(await chunks('race/'), []);
    // A first successor committed the open chunk and died before deleting the record.
    const rec = JSON.parse(
      (await container.getBlockBlobClient('race/_partial/az-dead2/owner.json').downloadToBuffer()).toString(),
    ) as { open: string[] };
    assert.equal(rec.open.length, 1);
    const blob = container.getBlockBlobClient(rec.open[0]!);
    const staged = (await blob.getBlockList('uncommitted')).uncommittedBlocks!.map((b) => b.name!);
    await blob.commitBlockList(stagedPrefix(staged), { conditions: { ifNoneMatch: '*' } });
    const later = () => Date.now() + 120_000;
    const [b, c] = await Promise.all([
      recoverAzure(parseOutputUrl(url), container, 'az-b', { staleAfterMs: 60_000, now: later }),
      recoverAzure(parseOutputUrl(url), container, 'az-c', { staleAfterMs: 60_000, now: later }),
    ]);
    assert.equal(b.committed.length + c.committed.length, 0, 'nothing committed a second time');
    assert.equal(b.alreadyCommitted + c.alreadyCommitted, 1);
    const names = await chunks('race/');
    assert.equal(names.length, 1);
    const got = await idsIn(names);
    assert.ok(got.length >= durable);
    assert.deepEqual(got, ids(0, got.length));
    assertOneCreateEach(names);
  });

  test('three successors racing on one stale peer: one claims its record, each name is created once', async () => {
    const url = `az://${CONTAINER}/race2`;
    const durable = await crashChildAfterFlushes(
      path.join(tmp, 'c3'),
      'az-dead3',
      'none',
      url,
      1_000_000,
      env,
    );
    const later = () => Date.now() + 120_000;
    const results = await Promise.all(
      ['az-x', 'az-y', 'az-z'].map((id) =>
        recoverAzure(parseOutputUrl(url), container, id, { staleAfterMs: 60_000, now: later }),
      ),
    );
    assert.equal(
      results.reduce((n, r) => n + r.committed.length, 0),
      1,
    );
    const names = await chunks('race2/');
    const got = await idsIn(names);
    assert.ok(got.length >= durable);
    assert.deepEqual(got, ids(0, got.length));
    assertOneCreateEach(names);
  });

  test("the enricher process under a different id commits a killed peer's chunk before it is ready", async (t) => {
    const url = `az://${CONTAINER}/proc`;
    const durable = await crashChildAfterFlushes(
      path.join(tmp, 'c4'),
      'az-dead4',
      'none',
      url,
      1_000_000,
      env,
    );
    await new Promise((r) => setTimeout(r, 1500)); // the dead writer's record goes stale (1 s)
    const e = await startEnricher(
      t,
      path.join(tmp, 'e4'),
      ['--output-url', url, '--output-stale-after', '1'],
      'az-b',
    );
    const names = await chunks('proc/');
    assert.equal(names.length, 1);
    const got = await idsIn(names);
    assert.ok(got.length >= durable, `${got.length} rows committed, ${durable} acknowledged`);
    assert.deepEqual(got, ids(0, got.length));
    assertOneCreateEach(names);
    assert.match(e.log(), /recovered staged chunks/);
    e.child.kill('SIGTERM');
    assert.equal((await e.exited).code, 0);
  });
});
