import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimestampWriter, writeBytes, writeInt, writeUint } from '../../enricher/pipeline/bytes';

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
