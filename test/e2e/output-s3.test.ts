// s3:// output against s3rver (npm devDependency) behind a proxy that enforces what s3rver does
// not (If-None-Match: * on PutObject -> 412; multipart refused) and records every write: rows
// load, kill -9 mid-chunk then a restart under a different enricher id on the same volume
// loses no acknowledged record, a kill between upload and local delete and racing successors
// never create a name twice.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as zlib from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { ChunkWriter } from '../../enricher/output/chunk-writer';
import { parseOutputUrl } from '../../enricher/output/object-url';
import { recoverPartials } from '../../enricher/output/recovery';
import { s3Client, s3Publisher } from '../../enricher/output/s3-store';
import {
  CHUNK_NAME,
  crashChildAfterFlushes,
  type RecordingProxy,
  type Server,
  startProxy,
  startS3rver,
} from '../support/objstore';
import { listFiles, parseCsvText, row } from '../support/output-rows';
import { startEnricher } from '../support/pipeline-procs';

const BUCKET = 'snowtap';
let s3rver: Server;
let proxy: RecordingProxy;
let env: Record<string, string>;
let client: S3Client;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'objstore-s3-'));

before(async () => {
  s3rver = await startS3rver([BUCKET]);
  proxy = await startProxy('s3', s3rver.port, true);
  env = {
    AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_S3_FORCE_PATH_STYLE: 'true',
  };
  Object.assign(process.env, env);
  client = s3Client();
});

after(async () => {
  client?.destroy();
  await proxy?.close();
  await s3rver?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function chunks(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => CHUNK_NAME.test(k))
    .sort();
}

async function idsIn(keys: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const k of keys) {
    const o = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }));
    const raw = Buffer.from(await o.Body!.transformToByteArray());
    const text = (k.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
    for (const r of await parseCsvText(text)) ids.push(r.record_id!);
  }
  return ids;
}

function ids(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `r-${String(from + i).padStart(8, '0')}`);
}

function assertOneCreateEach(keys: string[]): void {
  assert.ok(keys.length > 0);
  for (const k of keys) {
    const c = proxy.log.creates.get(k);
    assert.ok(c, `no create recorded for ${k}`);
    assert.equal(c.ok, 1, `${k}: ${c.ok} successful creates`);
    assert.equal(c.unconditional, 0, `${k}: unconditional create`);
  }
  assert.deepEqual(proxy.log.otherWrites, []);
  assert.deepEqual(proxy.log.refused, []);
}

const later = () => Date.now() + 120_000;

describe('s3:// output (s3rver behind an enforcing proxy)', () => {
  test('the proxy enforces If-None-Match: * as S3 does (s3rver alone does not)', async () => {
    const f = path.join(tmp, 'probe.csv');
    fs.writeFileSync(f, 'a\r\n1\r\n');
    const put = s3Publisher(parseOutputUrl(`s3://${BUCKET}/probe`), client);
    await put(f, '2026/01/01/00', 'snowtap-p-20260101T000000.000Z-00000000-000001.csv');
    await put(f, '2026/01/01/00', 'snowtap-p-20260101T000000.000Z-00000000-000001.csv');
    const c = proxy.log.creates.get('probe/2026/01/01/00/snowtap-p-20260101T000000.000Z-00000000-000001.csv');
    assert.deepEqual(c, { ok: 1, attempts: 2, unconditional: 0 });
  });

  test('rows load: every object holds the input rows in order; the local log is emptied', async () => {
    const dir = path.join(tmp, 'load');
    const w = new ChunkWriter({
      outputDir: dir,
      outputUrl: `s3://${BUCKET}/load/a`,
      enricherId: 's3-load',
      blockBytes: 16 * 1024,
      maxRows: 250,
    });
    for (let i = 0; i < 1000; i++) {
      w.appendRow(row(i), 0, row(i).length);
      if (i % 90 === 89) await w.flush();
    }
    await w.close();
    const keys = await chunks('load/a/');
    assert.equal(keys.length, 4);
    assert.deepEqual(await idsIn(keys), ids(0, 1000));
    assertOneCreateEach(keys);
    assert.deepEqual(listFiles(dir), [], 'uploaded chunks are deleted locally');
  });

  test('kill -9 mid-chunk, restart under a different id on the same volume: 0 acknowledged records lost', async (t) => {
    const dir = path.join(tmp, 'crash');
    const url = `s3://${BUCKET}/crash`;
    const durable = await crashChildAfterFlushes(dir, 's3-dead', 'none', url, 700, env);
    assert.equal(durable, 1500);
    const sealed = (await chunks('crash/')).length;
    assert.ok(sealed >= 2, 'sealed chunks were uploaded before the kill');
    const publish = s3Publisher(parseOutputUrl(url), client);
    const live = await recoverPartials(dir, 's3-successor', { publish });
    assert.equal(live.recovered, 0, 'a live-looking peer is left alone');
    // The child rotates every 700 rows while writing flat out, so the kill can land just after
    // a rotation: on a partial chunk without a complete row yet (dropped, not uploaded), or
    // before the new chunk's first block reached the disk (no partial file at all: its rows
    // were never acknowledged). Either way every partial file left is accounted for.
    const left = listFiles(dir).filter((f) => f.endsWith('.partial')).length;
    const res = await recoverPartials(dir, 's3-successor', { publish, now: later });
    assert.equal(
      res.recovered + res.dropped,
      left,
      'each torn chunk is salvaged and uploaded, or dropped empty',
    );
    if (left === 0) t.diagnostic('the kill landed between chunks: no partial file to recover');
    const keys = await chunks('crash/');
    assert.ok(keys.length >= sealed);
    const got = await idsIn(keys);
    assert.ok(got.length >= durable, `${got.length} rows uploaded, ${durable} acknowledged`);
    assert.deepEqual(got, ids(0, got.length));
    assertOneCreateEach(keys);
    assert.deepEqual(
      listFiles(dir).filter((f) => f.endsWith('.partial')),
      [],
    );
  });

  test('a kill between upload and local delete, then racing successors: one create per chunk', async () => {
    const dir = path.join(tmp, 'race');
    const url = `s3://${BUCKET}/race`;
    const durable = await crashChildAfterFlushes(dir, 's3-dead2', 'gzip', url, 1_000_000, env);
    assert.equal(durable, 1500);
    const real = s3Publisher(parseOutputUrl(url), client);
    // Successor A uploads the salvaged chunk and dies before deleting the local file.
    await assert.rejects(
      recoverPartials(dir, 's3-a', {
        now: later,
        publish: async (file, hourDir, name) => {
          await real(file, hourDir, name);
          throw new Error('killed after the upload');
        },
      }),
      /killed after the upload/,
    );
    assert.equal(listFiles(dir).filter((f) => f.endsWith('.partial')).length, 1);
    // A's claim on the directory goes stale too (another minute on the successors' clocks).
    const muchLater = () => Date.now() + 240_000;
    const [b, c] = await Promise.all([
      recoverPartials(dir, 's3-b', { publish: real, now: muchLater }),
      recoverPartials(dir, 's3-c', { publish: real, now: muchLater }),
    ]);
    assert.ok(b.recovered + c.recovered >= 1);
    const keys = await chunks('race/');
    assert.equal(keys.length, 1);
    const c1 = proxy.log.creates.get(keys[0]!)!;
    assert.ok(c1.attempts >= 2, 'the re-upload was attempted and refused by the condition');
    const got = await idsIn(keys);
    assert.ok(got.length >= durable);
    assert.deepEqual(got, ids(0, got.length));
    assertOneCreateEach(keys);
    assert.deepEqual(
      listFiles(dir).filter((f) => f.endsWith('.partial')),
      [],
    );
  });

  test("the enricher process under a different id, same volume, uploads a killed peer's chunks before it is ready", async (t) => {
    const dir = path.join(tmp, 'proc');
    const url = `s3://${BUCKET}/proc`;
    const durable = await crashChildAfterFlushes(dir, 's3-dead3', 'none', url, 1_000_000, env);
    await new Promise((r) => setTimeout(r, 1500)); // the dead writer's directory goes stale (1 s)
    const e = await startEnricher(t, dir, ['--output-url', url, '--output-stale-after', '1'], 's3-b');
    const keys = await chunks('proc/');
    assert.equal(keys.length, 1);
    const got = await idsIn(keys);
    assert.ok(got.length >= durable, `${got.length} rows uploaded, ${durable} acknowledged`);
    assert.deepEqual(got, ids(0, got.length));
    assertOneCreateEach(keys);
    assert.match(e.log(), /recovered partial chunks/);
    e.child.kill('SIGTERM');
    assert.equal((await e.exited).code, 0);
  });
});
