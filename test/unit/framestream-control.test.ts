// Control frame encoding and decoding, checked against the independent test builder.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ControlType, type ControlTypeCode, controlTypeName } from '../../proto/framestream/constants';
import { decodeControlBody, decodeControlFrame, encodeControlFrame } from '../../proto/framestream/control';
import { FramestreamError } from '../../proto/framestream/errors';
import { bytes, CT_DNSTAP, control, ct, field, u32 } from '../support/fstrm-builder';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FramestreamError, `not a FramestreamError: ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

test('encodeControlFrame produces the bytes the builder produces', () => {
  assert.deepEqual(encodeControlFrame(ControlType.START, [CT_DNSTAP]), control(2, [ct(CT_DNSTAP)]));
  assert.deepEqual(encodeControlFrame(ControlType.STOP), control(3));
  assert.deepEqual(encodeControlFrame(ControlType.FINISH), control(5));
  assert.deepEqual(
    encodeControlFrame(ControlType.READY, ['a', CT_DNSTAP]),
    control(4, [ct('a'), ct(CT_DNSTAP)]),
  );
  assert.deepEqual(encodeControlFrame(ControlType.ACCEPT, []), control(1));
  // Bytes above 0x7f survive as latin1.
  assert.deepEqual(
    encodeControlFrame(ControlType.READY, ['\xe9']),
    control(4, [field(1, Buffer.from([0xe9]))]),
  );
});

test('decodeControlFrame reads builder frames, including several content types', () => {
  assert.deepEqual(decodeControlFrame(control(4, [ct('x'), ct(CT_DNSTAP), ct('')])), {
    type: ControlType.READY,
    contentTypes: ['x', CT_DNSTAP, ''],
  });
  assert.deepEqual(decodeControlFrame(control(2)), { type: ControlType.START, contentTypes: [] });
  const frame = control(2, [ct(CT_DNSTAP)]);
  const padded = bytes([9, 9, 9], frame, [9]);
  assert.deepEqual(decodeControlBody(padded, 3 + 8, 3 + frame.length), {
    type: ControlType.START,
    contentTypes: [CT_DNSTAP],
  });
});

test('decodeControlFrame rejects bad frames with stable codes', () => {
  assert.equal(
    code(() => decodeControlFrame(control(3).subarray(0, 6))),
    'FSTRM_TRUNCATED',
  );
  assert.equal(
    code(() => decodeControlFrame(control(2, [ct(CT_DNSTAP)]).subarray(0, 20))),
    'FSTRM_TRUNCATED',
  );
  assert.equal(
    code(() => decodeControlFrame(bytes(control(3), [0]))),
    'FSTRM_CONTROL_MALFORMED',
  );
  assert.equal(
    code(() => decodeControlFrame(bytes(u32(1), u32(4), u32(3)))),
    'FSTRM_CONTROL_MALFORMED',
  );
  assert.equal(
    code(() => decodeControlFrame(bytes(u32(0), u32(600), Buffer.alloc(600)))),
    'FSTRM_CONTROL_TOO_LARGE',
  );
  assert.equal(
    code(() => decodeControlFrame(control(0x10))),
    'FSTRM_UNKNOWN_CONTROL',
  );
  assert.equal(
    code(() => decodeControlFrame(control(5, [ct('x')]))),
    'FSTRM_CONTROL_MALFORMED',
  );
  assert.equal(
    code(() => decodeControlFrame(control(2, [field(1, 'abc', 0xffffffff)]))),
    'FSTRM_CONTROL_MALFORMED',
  );
});

test('encodeControlFrame validates what libfstrm validates', () => {
  assert.equal(
    code(() => encodeControlFrame(ControlType.START, ['a', 'b'])),
    'FSTRM_INVALID_ARGUMENT',
  );
  assert.equal(
    code(() => encodeControlFrame(ControlType.STOP, ['a'])),
    'FSTRM_INVALID_ARGUMENT',
  );
  assert.equal(
    code(() => encodeControlFrame(ControlType.READY, ['x'.repeat(257)])),
    'FSTRM_INVALID_ARGUMENT',
  );
  assert.equal(
    code(() => encodeControlFrame(ControlType.READY, ['\u20ac'])),
    'FSTRM_INVALID_ARGUMENT',
  );
  assert.equal(
    code(() => encodeControlFrame(9 as ControlTypeCode, [])),
    'FSTRM_INVALID_ARGUMENT',
  );
  // Whole frame (header included) within 512: 8 + 4 + 2 * (8 + 242) = 512 is the largest.
  assert.equal(encodeControlFrame(ControlType.READY, ['a'.repeat(242), 'b'.repeat(242)]).length, 512);
  assert.equal(
    code(() => encodeControlFrame(ControlType.READY, ['a'.repeat(243), 'b'.repeat(242)])),
    'FSTRM_INVALID_ARGUMENT',
  );
});

test('control type names for logs', () => {
  assert.equal(controlTypeName(ControlType.READY), 'READY');
  assert.equal(controlTypeName(0xabc), 'UNKNOWN(0xabc)');
});
