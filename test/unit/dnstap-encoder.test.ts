// DnstapEncoder round trips: seeded random field sets are encoded by the production
// encoder and decoded by protobufjs (the independent reference) and by decodeDnstap.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDnstap } from '../../proto/dnstap/decoder';
import { DnstapEncoder, type DnstapFields } from '../../proto/dnstap/encoder';
import { Dnstap, DnstapMessage } from '../../proto/dnstap/schema';
import { ABSENT, DnstapView } from '../../proto/dnstap/view';
import { prng, randInt } from '../support/dnstap-builder';
import { diffView } from '../support/dnstap-compare';

const ROUND_TRIPS = 5_000;

type Rand = () => number;
const bytes = (rand: Rand, max: number) =>
  Buffer.from(Array.from({ length: randInt(rand, max + 1) }, () => randInt(rand, 256)));
const maybe = <T>(rand: Rand, make: () => T): T | undefined => (rand() < 0.7 ? make() : undefined);
/** Spread over every varint width: 1..5 bytes for uint32, up to 8 for seconds below 2^53. */
const wide = (rand: Rand, bits: number) => Math.floor(2 ** (rand() * bits));

function randomFields(rand: Rand): DnstapFields {
  const family = randInt(rand, 3);
  return {
    identity: maybe(rand, () => bytes(rand, 40)),
    version: maybe(rand, () => bytes(rand, 20)),
    type: 1 + randInt(rand, 14),
    socketFamily: maybe(rand, () => family || 1),
    socketProtocol: maybe(rand, () => 1 + randInt(rand, 7)),
    queryAddress: maybe(rand, () => bytes(rand, 16)),
    responseAddress: rand() < 0.1 ? null : maybe(rand, () => bytes(rand, 16)),
    queryPort: maybe(rand, () => randInt(rand, 65536)),
    responsePort: rand() < 0.1 ? ABSENT : maybe(rand, () => wide(rand, 32)),
    queryTimeSec: maybe(rand, () => wide(rand, 53)),
    queryTimeNsec: maybe(rand, () => randInt(rand, 1e9)),
    queryMessage: maybe(rand, () => bytes(rand, rand() < 0.05 ? 70_000 : 300)),
    queryZone: maybe(rand, () => bytes(rand, 30)),
    responseTimeSec: maybe(rand, () => 1_700_000_000 + randInt(rand, 1e8)),
    responseTimeNsec: maybe(rand, () => wide(rand, 32) - 1),
    responseMessage: maybe(rand, () => bytes(rand, 600)),
  };
}

/** What protobufjs should decode `f` to, as the object `toObject` gives. */
function expected(f: DnstapFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const message: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(f)) {
    if (value === undefined || value === null || (typeof value === 'number' && value < 0)) continue;
    const target = key === 'identity' || key === 'version' ? out : message;
    target[key] = value instanceof Uint8Array ? Buffer.from(value) : value;
  }
  out.message = message;
  out.type = 1;
  return out;
}

test(`encoder: ${ROUND_TRIPS} random field sets round-trip through protobufjs`, () => {
  const rand = prng(0xe1c0de);
  const encoder = new DnstapEncoder();
  const view = new DnstapView();
  const scratch = Buffer.alloc(200_000);
  for (let n = 0; n < ROUND_TRIPS; n++) {
    const f = randomFields(rand);
    const offset = randInt(rand, 64);
    scratch.fill(0xee);
    const len = encoder.encodeInto(f, scratch, offset);
    assert.equal(len, encoder.encodedLength(f));
    assert.equal(scratch[offset - 1] ?? 0xee, 0xee, 'nothing written before offset');
    assert.equal(scratch[offset + len], 0xee, 'nothing written past the length');
    const payload = scratch.subarray(offset, offset + len);
    assert.deepEqual(payload, encoder.encode(f));
    const decoded = Dnstap.decode(payload);
    const obj = Dnstap.toObject(decoded, { longs: Number });
    assert.deepEqual(obj, expected(f), `round trip ${n}`);
    decodeDnstap(payload, 0, payload.length, view);
    assert.deepEqual(diffView(view, decoded as never), []);
    // Canonical output: the Message body is byte-identical to protobufjs' own encoding.
    const reference = DnstapMessage.encode(DnstapMessage.fromObject(obj.message as object)).finish();
    const body = payload.subarray(payload.length - 2 - reference.length, payload.length - 2);
    assert.deepEqual(body, Buffer.from(reference));
  }
});

test('encoder: the largest values: seconds 2^53 - 1, uint32 maxima', () => {
  const f: DnstapFields = {
    type: 0xffffffff,
    queryPort: 0xffffffff,
    queryTimeSec: Number.MAX_SAFE_INTEGER,
    queryTimeNsec: 0xffffffff,
  };
  const view = new DnstapView();
  const buf = new DnstapEncoder().encode(f);
  decodeDnstap(buf, 0, buf.length, view);
  assert.equal(view.type, 0xffffffff);
  assert.equal(view.queryPort, 0xffffffff);
  assert.equal(view.queryTimeSec, Number.MAX_SAFE_INTEGER);
  assert.equal(view.queryTimeNsec, 0xffffffff);
  assert.equal(view.dnstapType, 1);
});

test('encoder: invalid input is a RangeError naming the field, and nothing is written', () => {
  const encoder = new DnstapEncoder();
  const buf = Buffer.alloc(64, 0xee);
  const bad: [Partial<DnstapFields>, RegExp][] = [
    [{ type: ABSENT }, /type .*required/],
    [{ type: 1.5 }, /type must be an integer/],
    [{ type: 5, queryPort: 2 ** 32 }, /queryPort/],
    [{ type: 5, queryTimeSec: 2 ** 53 }, /queryTimeSec/],
    [{ type: 5, responseTimeNsec: Number.NaN }, /responseTimeNsec/],
    [{ type: 5, queryMessage: Buffer.alloc(100) }, /do not fit/],
  ];
  for (const [f, message] of bad) {
    assert.throws(
      () => encoder.encodeInto(f as DnstapFields, buf, 0),
      (e: unknown) => {
        return e instanceof RangeError && message.test(e.message);
      },
    );
    assert.ok(buf.every((b) => b === 0xee));
  }
  assert.throws(() => encoder.encodeInto({ type: 5 }, buf, 62), RangeError);
  assert.equal(encoder.encodeInto({ type: 5 }, buf, 58), 6);
});
