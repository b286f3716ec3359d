// Robustness of decodeDnstap against damaged input, checked against protobufjs: seeded
// random mutations of real frames, and every truncation of real frames. Only a typed
// DnstapDecodeError may escape; whenever both decoders accept a frame they must agree.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDnstap } from '../../proto/dnstap/decoder';
import { DnstapDecodeError, DnstapErrorCode } from '../../proto/dnstap/errors';
import { Dnstap } from '../../proto/dnstap/schema';
import { ABSENT, DnstapView } from '../../proto/dnstap/view';
import { prng, randInt } from '../support/dnstap-builder';
import { diffView, snapshot } from '../support/dnstap-compare';
import { loadFixtures } from '../support/dnstap-frames';

const MUTATIONS = 40_000;
const SEED = 0x5eed_d75;
/** Bytes that are interesting to varint and tag parsing. */
const SPECIAL = [0x00, 0x01, 0x07, 0x08, 0x0f, 0x10, 0x72, 0x78, 0x7f, 0x80, 0x81, 0xfe, 0xff];
/**
 * Where protobufjs is lax and we are strict (README.md): it skips groups and unknown
 * varints of any length. Its other rejections (missing required types, unknown closed-enum
 * values) only make it refuse frames we accept.
 */
const STRICTER_THAN_PROTOBUFJS: readonly string[] = [
  DnstapErrorCode.BAD_WIRE_TYPE,
  DnstapErrorCode.VARINT_OVERFLOW,
];

const fixtures = loadFixtures();
const frames = fixtures.flatMap((f) => f.frames);

function mutate(src: Buffer, rand: () => number): Buffer {
  let b = Buffer.from(src);
  // Tags and lengths are dense in the first bytes; DNS payload fills the rest.
  const at = () => (rand() < 0.5 ? randInt(rand, Math.min(b.length, 48)) : randInt(rand, b.length));
  for (let ops = 1 + randInt(rand, 3); ops > 0 && b.length > 0; ops--) {
    const i = at();
    switch (randInt(rand, 7)) {
      case 0:
        b[i] ^= 1 << randInt(rand, 8);
        break;
      case 1:
        b[i] = randInt(rand, 256);
        break;
      case 2:
        b[i] = SPECIAL[randInt(rand, SPECIAL.length)];
        break;
      case 3: {
        const ins = Array.from(
          { length: 1 + randInt(rand, 4) },
          () => SPECIAL[randInt(rand, SPECIAL.length)],
        );
        b = Buffer.concat([b.subarray(0, i), Buffer.from(ins), b.subarray(i)]);
        break;
      }
      case 4:
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + randInt(rand, 8))]);
        break;
      case 5:
        b = b.subarray(0, i);
        break;
      default: {
        const j = at();
        b = Buffer.concat([b.subarray(0, j), b.subarray(i, i + 1 + randInt(rand, 16)), b.subarray(j)]);
      }
    }
  }
  return b;
}

function reference(buf: Buffer): { [key: string]: unknown } | null {
  try {
    return Dnstap.decode(buf) as never;
  } catch {
    return null;
  }
}

test(`mutations: ${MUTATIONS} seeded random mutations of real frames`, (t) => {
  const rand = prng(SEED);
  const view = new DnstapView();
  const codes = new Map<string, number>();
  const count = (key: string) => codes.set(key, (codes.get(key) ?? 0) + 1);
  let bothOk = 0;
  let onlyOursOk = 0;
  let bothFailed = 0;
  for (let n = 0; n < MUTATIONS; n++) {
    const buf = mutate(frames[randInt(rand, frames.length)], rand);
    let ourError: DnstapDecodeError | null = null;
    try {
      decodeDnstap(buf, 0, buf.length, view);
    } catch (e) {
      if (!(e instanceof DnstapDecodeError))
        assert.fail(`mutation ${n} (${buf.toString('hex')}): ${String(e)}`);
      ourError = e;
      count(e.code);
    }
    const ref = reference(buf);
    if (ref !== null && ourError === null) {
      bothOk++;
      assert.deepEqual(diffView(view, ref), [], `mutation ${n}: ${buf.toString('hex')}`);
    } else if (ref !== null && ourError !== null) {
      count(`protobufjs accepted, we said ${ourError.code}`);
      assert.ok(STRICTER_THAN_PROTOBUFJS.includes(ourError.code), `mutation ${n}: ${buf.toString('hex')}`);
    } else if (ourError === null) onlyOursOk++;
    else bothFailed++;
  }
  t.diagnostic(
    `both accepted and agreed: ${bothOk}; only we accepted: ${onlyOursOk}; both rejected: ${bothFailed}`,
  );
  t.diagnostic(`our errors: ${[...codes].map(([k, v]) => `${k}=${v}`).join(', ')}`);
  assert.ok(bothOk > MUTATIONS / 10, 'the mutations should leave many frames decodable');
});

test('mutations: truncation at every byte position of real frames', (t) => {
  const full = new DnstapView();
  const cut = new DnstapView();
  let decoded = 0;
  let rejected = 0;
  // A few frames of each producer, queries and responses.
  for (const frame of fixtures.flatMap((f) => f.frames.slice(0, 4))) {
    decodeDnstap(frame, 0, frame.length, full);
    const whole = snapshot(full);
    for (let end = 0; end < frame.length; end++) {
      try {
        // The bytes after `end` are real: they must not be read.
        decodeDnstap(frame, 0, end, cut);
      } catch (e) {
        assert.ok(e instanceof DnstapDecodeError, String(e));
        rejected++;
        continue;
      }
      decoded++;
      const part = snapshot(cut);
      for (const [key, value] of Object.entries(part)) {
        if (value === ABSENT || value === false || key.endsWith('Len') || key.endsWith('Hex')) continue;
        assert.equal(value, whole[key], `${key} at cut ${end}`);
        if (key.endsWith('Off')) {
          const len = key.replace(/Off$/, 'Len');
          assert.equal(part[len], whole[len]);
          assert.ok((value as number) + (part[len] as number) <= end, `${key} lies within the cut`);
        }
      }
      const ref = reference(frame.subarray(0, end));
      if (ref !== null) assert.deepEqual(diffView(cut, ref), []);
    }
  }
  t.diagnostic(`truncations: ${decoded} decoded (whole fields only), ${rejected} rejected`);
  assert.ok(rejected > 0 && decoded > 0);
});
