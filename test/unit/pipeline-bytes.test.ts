import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  dataViewOf,
  TimestampWriter,
  WordTable,
  wordsOf,
  writeBytes,
  writeInt,
  writeUint,
  writeUintWords,
  writeWords,
} from '../../enricher/pipeline/bytes';
import { writeIpv4TextWords } from '../../proto/net/index';

test('writeUint/writeInt match String() over the whole range, including above 2^31', () => {
  const buf = Buffer.alloc(32);
  const values = [0, 7, 9, 10, 99, 100, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 1_763_782_719, 2 ** 53 - 1];
  for (let i = 0; i < 2000; i++) values.push(Math.floor(Math.random() * 2 ** (1 + (i % 53))));
  for (const v of values) {
    assert.equal(buf.toString('latin1', 0, writeUint(buf, 0, v)), String(v));
    assert.equal(buf.toString('latin1', 3, writeInt(buf, 3, -v)), v === 0 ? '0' : String(-v));
  }
});

test('TimestampWriter: UTC ISO 8601 with 9 fractional digits and Z, cache invalidated per second', () => {
  const w = new TimestampWriter();
  const buf = Buffer.alloc(64);
  const at = (sec: number, nsec: number) => buf.toString('latin1', 0, w.write(buf, 0, sec, nsec));
  assert.equal(at(1_763_782_719, 5), '2025-11-22T03:38:39.000000005Z');
  assert.equal(at(1_763_782_719, 999_999_999), '2025-11-22T03:38:39.999999999Z');
  assert.equal(at(1_763_782_720, 0), '2025-11-22T03:38:40.000000000Z');
  assert.equal(at(0, 123), '1970-01-01T00:00:00.000000123Z');
  assert.equal(at(1_763_782_720, 2e9), '2025-11-22T03:38:40.000000000Z', 'out-of-range nsec is written as 0');
  assert.equal(at(1e15, 1), '', 'a time beyond the Date range leaves the field empty');
});

test('writeBytes copies short and long sources alike', () => {
  const dst = Buffer.alloc(300);
  for (const n of [0, 1, 63, 64, 65, 200]) {
    const src = Buffer.alloc(n, 0x41 + (n % 26));
    const end = writeBytes(dst, 5, src);
    assert.equal(end, 5 + n);
    assert.ok(dst.subarray(5, end).equals(src));
  }
});

test('word writers (4-byte stores) write what the byte writers write', () => {
  const buf = Buffer.alloc(64, 0x78);
  const dv = dataViewOf(buf);
  const values: number[] = [];
  for (let v = 0; v <= 1_100_000; v++) values.push(v);
  for (let p = 10; p <= 1e15; p *= 10) values.push(p - 1, p, p + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1);
  for (const v of values) assert.equal(buf.toString('latin1', 1, writeUintWords(buf, dv, 1, v)), String(v));
  for (let a = 0; a < 256; a++) {
    const addr = Buffer.from([a, 255 - a, a >> 1, (a * 7) & 255]);
    assert.equal(buf.toString('latin1', 3, writeIpv4TextWords(addr, 0, dv, 3)), addr.join('.'));
  }
  for (const text of ['', 'a', 'abcd', 'CLIENT_RESPONSE', 'file-0123456789abcdef/17/']) {
    const src = Buffer.from(text, 'latin1');
    assert.equal(buf.toString('latin1', 5, writeWords(dv, 5, wordsOf(src), src.length)), text);
  }
  const names = new WordTable((n) => Buffer.from(`N${n}`, 'latin1'), 100);
  for (const n of [0, 7, 99, 7, 100, 12345])
    assert.equal(buf.toString('latin1', 2, names.write(buf, dv, 2, n)), `N${n}`);
});
