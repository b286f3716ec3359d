// decodeDnstap on hand-built payloads (test-only PbBuilder, not the production encoder):
// unknown fields, field order, last-wins, merges, wide varints, and every error code.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDnstap, requireTypes } from '../../proto/dnstap/decoder';
import { DnstapErrorCode, isDnstapDecodeError } from '../../proto/dnstap/errors';
import { Dnstap } from '../../proto/dnstap/schema';
import { ABSENT, DnstapView } from '../../proto/dnstap/view';
import { PbBuilder, WIRE } from '../support/dnstap-builder';
import { diffView } from '../support/dnstap-compare';

function decode(buf: Buffer): DnstapView {
  const view = new DnstapView();
  decodeDnstap(buf, 0, buf.length, view);
  return view;
}

function str(view: DnstapView, off: number, len: number): string | null {
  return off === ABSENT ? null : view.buf.toString('latin1', off, off + len);
}

/** Our decode agrees with protobufjs on `buf` (which protobufjs must accept). */
function agrees(buf: Buffer): DnstapView {
  const view = decode(buf);
  assert.deepEqual(diffView(view, Dnstap.decode(buf) as never), []);
  return view;
}

function rejects(buf: Buffer, code: DnstapErrorCode): void {
  assert.throws(
    () => decode(buf),
    (e: unknown) => isDnstapDecodeError(e, code),
  );
}

const msg = () => new PbBuilder().uint(1, 5);

test('decoder: unknown fields of every wire type are skipped, top level and in Message', () => {
  const m = msg()
    .uint(100, 12345678901234n)
    .fixed64(101, 0xdeadbeefcafen)
    .len(102, 'unknown bytes')
    .fixed32(103, 7)
    .len(15, new PbBuilder().len(1, 'RPZ').uint(3, 1)) // Policy: read by nobody
    .uint(6, 53000);
  const buf = new PbBuilder()
    .uint(99, 1)
    .len(1, 'id')
    .fixed32(98, 1)
    .len(14, m)
    .uint(15, 1)
    .len(4000, 'x')
    .build();
  const view = agrees(buf);
  assert.equal(str(view, view.identityOff, view.identityLen), 'id');
  assert.equal(view.type, 5);
  assert.equal(view.queryPort, 53000);
});

test('decoder: fields in any order, Message before identity, type first', () => {
  const m = new PbBuilder()
    .uint(7, 53)
    .len(14, 'resp')
    .fixed32(13, 999)
    .uint(12, 1700000001)
    .uint(1, 6)
    .uint(2, 2);
  const buf = new PbBuilder().uint(15, 1).len(14, m).len(2, 'v1').len(1, 'id').build();
  const view = agrees(buf);
  assert.equal(view.type, 6);
  assert.equal(view.socketFamily, 2);
  assert.equal(view.responsePort, 53);
  assert.equal(view.responseTimeSec, 1700000001);
  assert.equal(view.responseTimeNsec, 999);
  assert.equal(str(view, view.responseMessageOff, view.responseMessageLen), 'resp');
  assert.equal(str(view, view.versionOff, view.versionLen), 'v1');
});

test('decoder: the last occurrence of a repeated scalar or bytes field wins', () => {
  const m = msg().uint(6, 1).uint(6, 2).len(4, [1, 2, 3, 4]).len(4, [5, 6, 7, 8]).fixed32(9, 1).fixed32(9, 2);
  const buf = new PbBuilder().len(1, 'a').len(1, 'bb').uint(15, 1).len(14, m).uint(15, 1).build();
  const view = agrees(buf);
  assert.equal(str(view, view.identityOff, view.identityLen), 'bb');
  assert.equal(view.queryPort, 2);
  assert.equal(view.queryTimeNsec, 2);
  assert.deepEqual([...view.buf.subarray(view.queryAddressOff, view.queryAddressOff + 4)], [5, 6, 7, 8]);
});

test('decoder: a repeated Message merges into the first, field by field', () => {
  const buf = new PbBuilder()
    .len(14, msg().uint(6, 1111).uint(7, 53))
    .len(14, new PbBuilder().uint(6, 2222).len(10, 'q'))
    .uint(15, 1)
    .build();
  const view = agrees(buf);
  assert.equal(view.type, 5);
  assert.equal(view.queryPort, 2222);
  assert.equal(view.responsePort, 53);
  assert.equal(str(view, view.queryMessageOff, view.queryMessageLen), 'q');
});

test('decoder: a known field with another wire type is skipped as unknown', () => {
  const m = msg().len(6, 'not a port').uint(4, 7).fixed32(8, 1);
  const buf = new PbBuilder().uint(1, 3).len(15, 'x').uint(15, 1).len(14, m).build();
  const view = agrees(buf);
  assert.equal(view.identityOff, ABSENT);
  assert.equal(view.queryPort, ABSENT);
  assert.equal(view.queryAddressOff, ABSENT);
  assert.equal(view.queryTimeSec, ABSENT);
});

test('decoder: empty bytes fields are present with length 0', () => {
  const view = agrees(new PbBuilder().len(1, '').uint(15, 1).len(14, msg().len(10, '')).build());
  assert.notEqual(view.identityOff, ABSENT);
  assert.equal(view.identityLen, 0);
  assert.equal(view.queryMessageLen, 0);
  assert.notEqual(view.queryMessageOff, ABSENT);
});

test('decoder: 10-byte varints: padded, 2^53 - 1 exact, 2^64 - 1, high bits dropped', () => {
  const m = msg()
    .uint(8, 1700000000, 10) // padded, non-minimal
    .uint(12, 2n ** 53n - 1n)
    .uint(6, -1) // uint32 written as a sign-extended 64-bit varint: low 32 bits count
    .uint(7, 53, 10);
  const view = agrees(new PbBuilder().uint(15, 1, 10).len(14, m).build());
  assert.equal(view.dnstapType, 1);
  assert.equal(view.queryTimeSec, 1700000000);
  assert.equal(view.responseTimeSec, 2 ** 53 - 1);
  assert.equal(view.queryPort, 0xffffffff);
  assert.equal(view.responsePort, 53);

  const max = decode(new PbBuilder().len(14, msg().uint(8, 2n ** 64n - 1n)).build());
  assert.equal(max.queryTimeSec, 2 ** 64);
  // The 10th byte carries bit 63 only; protoc and protobufjs drop the rest, so do we.
  const extra = new PbBuilder().len(
    14,
    msg().tag(8, WIRE.VARINT).raw(0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7e),
  );
  assert.equal(agrees(extra.uint(15, 1).build()).queryTimeSec, 1);
});

test('decoder: enum values are kept raw, never confused with ABSENT', () => {
  const view = decode(
    new PbBuilder().uint(15, 7).len(14, new PbBuilder().uint(1, -1).uint(2, 9).uint(16, 2)).build(),
  );
  assert.equal(view.dnstapType, 7);
  assert.equal(view.type, 0xffffffff);
  assert.equal(view.socketFamily, 9);
  assert.equal(view.httpProtocol, 2);
});

test('decoder: missing types are reported by requireTypes(), not by decodeDnstap()', () => {
  const noMessage = decode(new PbBuilder().len(1, 'id').uint(15, 1).build());
  assert.equal(noMessage.hasMessage, false);
  assert.equal(noMessage.type, ABSENT);
  requireTypes(noMessage);
  const noDnstapType = decode(new PbBuilder().len(14, msg()).build());
  assert.throws(
    () => requireTypes(noDnstapType),
    (e) => isDnstapDecodeError(e, DnstapErrorCode.MISSING_TYPE),
  );
  const noMessageType = decode(new PbBuilder().uint(15, 1).len(14, new PbBuilder().uint(6, 1)).build());
  assert.throws(
    () => requireTypes(noMessageType),
    (e) => isDnstapDecodeError(e, DnstapErrorCode.MISSING_TYPE),
  );
  const empty = decode(Buffer.alloc(0));
  assert.equal(empty.dnstapType, ABSENT);
});

test('decoder: error codes', () => {
  const T = DnstapErrorCode;
  rejects(new PbBuilder().tag(1, WIRE.SGROUP).tag(1, WIRE.EGROUP).build(), T.BAD_WIRE_TYPE);
  rejects(new PbBuilder().tag(5, WIRE.EGROUP).build(), T.BAD_WIRE_TYPE);
  rejects(new PbBuilder().tag(5, 6).build(), T.BAD_WIRE_TYPE);
  rejects(new PbBuilder().len(14, new PbBuilder().tag(20, 7).raw(0)).build(), T.BAD_WIRE_TYPE);
  rejects(new PbBuilder().raw(0x00, 0x00).build(), T.BAD_FIELD_NUMBER);
  rejects(new PbBuilder().raw(0x02, 0x00).build(), T.BAD_FIELD_NUMBER);
  rejects(new PbBuilder().tag(1, WIRE.LEN, 6).raw(0).build(), T.VARINT_OVERFLOW); // tag > 5 bytes
  rejects(new PbBuilder().raw(0xf8, 0xff, 0xff, 0xff, 0x10, 0).build(), T.VARINT_OVERFLOW); // tag >= 2^32
  rejects(new PbBuilder().uint(99, 1, 11).build(), T.VARINT_OVERFLOW);
  rejects(new PbBuilder().len(14, new PbBuilder().uint(8, 1, 11)).build(), T.VARINT_OVERFLOW);
  rejects(
    new PbBuilder()
      .tag(1, WIRE.LEN)
      .varint(2n ** 31n)
      .build(),
    T.BAD_LENGTH,
  );
  rejects(new PbBuilder().tag(1, WIRE.LEN).varint(1, 6).build(), T.BAD_LENGTH); // 5th byte continues
  // Inside the frame but past the Message's end: the Message length was wrong.
  rejects(
    new PbBuilder().tag(14, WIRE.LEN).varint(4).raw(0x08, 0x05, 0x52, 0x03, 0x41, 0x41, 0x41).build(),
    T.BAD_LENGTH,
  );
  rejects(new PbBuilder().tag(14, WIRE.LEN).varint(1).raw(0x30, 0x05).build(), T.BAD_LENGTH);
  rejects(new PbBuilder().tag(14, WIRE.LEN).varint(9).raw(0x08, 0x05).build(), T.TRUNCATED);
  rejects(new PbBuilder().tag(1, WIRE.LEN).varint(3).raw(0x41).build(), T.TRUNCATED);
  rejects(new PbBuilder().tag(15, WIRE.VARINT).raw(0x81).build(), T.TRUNCATED);
  rejects(new PbBuilder().raw(0x88).build(), T.TRUNCATED);
  rejects(new PbBuilder().tag(14, WIRE.LEN).varint(3).tag(9, WIRE.I32).raw(1, 2).build(), T.TRUNCATED);
  rejects(new PbBuilder().tag(77, WIRE.I64).raw(1, 2, 3, 4, 5, 6, 7).build(), T.TRUNCATED);
});

test('decoder: errors carry name, code and offset; bad ranges are RangeErrors', () => {
  const buf = new PbBuilder().len(1, 'ok').tag(5, 6).build();
  try {
    decode(buf);
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(isDnstapDecodeError(e));
    assert.equal(e.name, 'DnstapDecodeError');
    assert.equal(e.code, 'DNSTAP_BAD_WIRE_TYPE');
    assert.equal(e.offset, 5);
  }
  const view = new DnstapView();
  assert.throws(() => decodeDnstap(buf, 2, 1, view), RangeError);
  assert.throws(() => decodeDnstap(buf, 0, buf.length + 1, view), RangeError);
  assert.throws(() => decodeDnstap(buf, -1, 2, view), RangeError);
});

test('a reused view: the Policy of one payload does not linger into the next', () => {
  const view = new DnstapView();
  const policy = new PbBuilder().len(1, 'RPZ').len(2, 'rule.').uint(3, 1).uint(4, 2).len(5, 'value');
  const withPolicy = new PbBuilder().len(14, msg().len(15, policy)).uint(15, 1).build();
  const without = new PbBuilder().len(14, msg()).uint(15, 1).build();
  decodeDnstap(withPolicy, 0, withPolicy.length, view);
  assert.equal(view.hasPolicy, true);
  assert.equal(str(view, view.policyValueOff, view.policyValueLen), 'value');
  decodeDnstap(without, 0, without.length, view);
  assert.deepEqual(diffView(view, Dnstap.decode(without) as never), []);
  assert.deepEqual(
    [
      view.hasPolicy,
      view.policyTypeOff,
      view.policyRuleOff,
      view.policyAction,
      view.policyMatch,
      view.policyValueOff,
    ],
    [false, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT],
  );
  assert.deepEqual([view.policyTypeLen, view.policyRuleLen, view.policyValueLen], [0, 0, 0]);
});
