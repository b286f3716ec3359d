// proto/kit: the coded error base, the option checks and the wire primitives every layer shares.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CodedError,
  type CodeOf,
  checkInt,
  checkKnownKeys,
  isCoded,
  isIntIn,
  readU32,
  varintSize,
  writeVarint,
} from '../../proto/kit/index';

const DemoCode = { BAD: 'DEMO_BAD', WORSE: 'DEMO_WORSE' } as const;
type DemoCode = CodeOf<typeof DemoCode>;
class DemoError extends CodedError<DemoCode> {
  override readonly name = 'DemoError';
}

describe('CodedError', () => {
  test('carries code, name, message and cause', () => {
    const cause = new Error('root');
    const err = new DemoError(DemoCode.BAD, 'it broke', { cause });
    assert.equal(err.code, 'DEMO_BAD');
    assert.equal(err.name, 'DemoError');
    assert.equal(err.message, 'it broke');
    assert.equal(err.cause, cause);
    assert.ok(err instanceof Error);
  });

  test('has no cause key when there is no cause', () => {
    assert.equal('cause' in new DemoError(DemoCode.BAD, 'x'), false);
    assert.equal('cause' in new DemoError(DemoCode.BAD, 'x', { cause: undefined }), false);
  });

  test('isCoded checks the class and, when given, the code', () => {
    const err = new DemoError(DemoCode.WORSE, 'x');
    assert.equal(isCoded(err, DemoError), true);
    assert.equal(isCoded(err, DemoError, DemoCode.WORSE), true);
    assert.equal(isCoded(err, DemoError, DemoCode.BAD), false);
    assert.equal(isCoded(new Error('x'), DemoError), false);
    assert.equal(isCoded({ code: 'DEMO_BAD' }, DemoError), false);
  });
});

describe('option checks', () => {
  const fail = (m: string) => new DemoError(DemoCode.BAD, m);

  test('checkInt returns an integer in range', () => {
    assert.equal(checkInt('n', 5, 1, 5, fail), 5);
    assert.equal(checkInt('n', 1, 1, 5, fail), 1);
  });

  test('checkInt rejects out-of-range, fractional and non-numbers, naming the field', () => {
    for (const v of [0, 6, 1.5, Number.NaN, '3', undefined]) {
      assert.throws(
        () => checkInt('things', v, 1, 5, fail),
        (e: unknown) =>
          isCoded(e, DemoError, DemoCode.BAD) &&
          e.message === `things must be an integer in [1, 5], got ${String(v)}`,
      );
    }
    assert.equal(isIntIn(3, 1, 5), true);
    assert.equal(isIntIn(3, 4, 5), false);
  });

  test('checkKnownKeys names the unknown key and the known ones', () => {
    checkKnownKeys('Thing', { a: 1 }, ['a', 'b'], fail);
    checkKnownKeys('Thing', undefined, ['a'], fail);
    checkKnownKeys('Thing', { b: 1 }, new Set(['a', 'b']), fail);
    assert.throws(() => checkKnownKeys('Thing', { c: 1 }, ['a', 'b'], fail), {
      code: 'DEMO_BAD',
      message: 'Thing: unknown option "c" (known: a, b)',
    });
  });
});

describe('wire primitives', () => {
  test('readU32 is big-endian and unsigned', () => {
    const b = Uint8Array.of(0, 0xff, 0xfe, 0xfd, 0xfc, 0);
    assert.equal(readU32(b, 1), 0xfffefdfc);
    assert.equal(readU32(b, 2), 0xfefdfc00);
    assert.equal(readU32(Uint8Array.of(0, 0, 1, 0), 0), 256);
  });

  test('writeVarint writes the minimal varint that varintSize predicts, up to 2^53-1', () => {
    const values = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 32 - 1, 2 ** 32];
    values.push(2 ** 35, 2 ** 42 + 5, 2 ** 49, Number.MAX_SAFE_INTEGER);
    for (const v of values) {
      const buf = new Uint8Array(12);
      const end = writeVarint(buf, 1, v);
      assert.equal(end - 1, varintSize(v), `size of ${v}`);
      // An independent decode: little-endian base-128 groups.
      let back = 0;
      let scale = 1;
      for (let p = 1; p < end; p++) {
        assert.equal(buf[p]! >= 0x80, p < end - 1, `continuation bits of ${v}`);
        back += (buf[p]! & 0x7f) * scale;
        scale *= 128;
      }
      assert.equal(back, v);
    }
    assert.deepEqual([...writeVarintBytes(300)], [0xac, 0x02]);
  });
});

function writeVarintBytes(v: number): Uint8Array {
  const buf = new Uint8Array(10);
  return buf.subarray(0, writeVarint(buf, 0, v));
}
