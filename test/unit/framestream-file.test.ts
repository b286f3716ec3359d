// Capture files: FrameFileWriter output checked against the builder, and
// readFrameStreamFile on files larger than its read block, damaged files and missing files.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { FramestreamError } from '../../proto/framestream/errors';
import { readFrameStreamFile } from '../../proto/framestream/file';
import { encodeFrameStreamFile, FrameFileWriter } from '../../proto/framestream/writer';
import * as B from '../support/fstrm-builder';

const dir = mkdtempSync(path.join(tmpdir(), 'fstrm-file-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function digest(parts: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('|');
  return h.digest('hex');
}

async function readAll(file: string, options = {}) {
  const h = createHash('sha256');
  const result = await readFrameStreamFile(
    file,
    (b, s, e) => h.update(b.subarray(s, e)).update('|'),
    options,
  );
  return { ...result, digest: h.digest('hex') };
}

test('FrameFileWriter and encodeFrameStreamFile write START, frames, STOP exactly', () => {
  const payloads = ['a', 'bb', 'x'.repeat(1000)].map((s) => Buffer.from(s));
  const chunks: Buffer[] = [];
  const w = new FrameFileWriter((b) => chunks.push(b), { capacity: 256 });
  for (const p of payloads) w.write(p);
  w.close();
  w.close();
  assert.equal(w.frames, 3);
  assert.ok(chunks.length > 1, 'small capacity splits the output');
  assert.deepEqual(Buffer.concat(chunks), B.file(payloads));
  assert.deepEqual(encodeFrameStreamFile(payloads), B.file(payloads));
  assert.deepEqual(encodeFrameStreamFile([], 'text/x'), B.file([], 'text/x'));
  assert.throws(() => w.write(Buffer.from('late')), { code: 'FSTRM_INVALID_STATE' });
});

test('a file far larger than the read block, with frames across block edges and an oversized frame', async () => {
  const rand = B.prng(99);
  const payloads: Buffer[] = [];
  for (let i = 0; i < 20_000; i++) payloads.push(Buffer.alloc(1 + Math.floor(rand() * 400), i & 0xff));
  payloads.splice(7000, 0, Buffer.alloc(1024 * 1024, 1)); // exactly the default limit
  const oversized = Buffer.alloc(3 * 1024 * 1024, 2);
  const input = B.bytes(B.start(), ...payloads.slice(0, 9000).map((p) => B.data(p)), B.data(oversized));
  const rest = B.bytes(...payloads.slice(9000).map((p) => B.data(p)), B.stop());
  const file = path.join(dir, 'big.fstrm');
  writeFileSync(file, B.bytes(input, rest));

  const progress: number[] = [];
  const got = await readAll(file, {
    onProgress: async (read: number, size: number) => {
      assert.equal(size, input.length + rest.length);
      progress.push(read);
    },
  });
  assert.equal(got.frames, payloads.length);
  assert.equal(got.oversize, 1);
  assert.equal(got.bytes, input.length + rest.length);
  assert.equal(got.digest, digest(payloads));
  assert.equal(progress.at(-1), got.bytes);
  assert.ok(progress.length >= 5, `${progress.length} blocks`);

  const small = await readAll(file, { blockSize: 1000, maxDataFrameSize: 4 * 1024 * 1024 });
  assert.equal(small.frames, payloads.length + 1);
  assert.equal(small.oversize, 0);
});

test('a file cut mid-frame rejects with FSTRM_TRUNCATED naming the pending bytes', async () => {
  const whole = B.file(['first', 'second-frame']);
  const file = path.join(dir, 'cut.fstrm');
  writeFileSync(file, whole.subarray(0, whole.length - B.stop().length - 5));
  await assert.rejects(readAll(file), (err) => {
    assert.ok(err instanceof FramestreamError);
    assert.equal(err.code, 'FSTRM_TRUNCATED');
    assert.match(err.message, /7 of 12 payload bytes/);
    return true;
  });
});

test('files without STOP, without START, or empty are FSTRM_TRUNCATED; data before START is refused', async () => {
  const cases: [string, Buffer, string][] = [
    ['nostop', B.bytes(B.start(), B.data('x')), 'FSTRM_TRUNCATED'],
    ['empty', Buffer.alloc(0), 'FSTRM_TRUNCATED'],
    ['headless', B.bytes(B.data('x'), B.stop()), 'FSTRM_UNEXPECTED_DATA'],
    ['othertype', B.file(['x'], 'protobuf:other'), 'FSTRM_CONTENT_TYPE_MISMATCH'],
    ['garbage', Buffer.from('not a frame stream at all, just text'), 'FSTRM_TRUNCATED'],
  ];
  for (const [name, bytes, code] of cases) {
    const file = path.join(dir, `${name}.fstrm`);
    writeFileSync(file, bytes);
    await assert.rejects(readAll(file), { name: 'FramestreamError', code }, name);
  }
  const ok = path.join(dir, 'other-ok.fstrm');
  writeFileSync(ok, B.file(['x'], 'protobuf:other'));
  assert.equal((await readAll(ok, { contentType: 'protobuf:other' })).frames, 1);
});

test('file system errors pass through unchanged; bad options are named', async () => {
  await assert.rejects(readAll(path.join(dir, 'missing.fstrm')), { code: 'ENOENT' });
  await assert.rejects(readAll(path.join(dir, 'x'), { blockSize: 0 }), { code: 'FSTRM_INVALID_ARGUMENT' });
  await assert.rejects(readAll(path.join(dir, 'x'), { block: 5 }), /unknown option "block"/);
});
