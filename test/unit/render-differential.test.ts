// Differential test of the issue 11 step 6 speed-ups: the answers renderer (A/AAAA fast path
// and its `plain` hint that lets the row skip the CSV quoting scan) and the table-driven IPv4
// text must write exactly the bytes of the plain versions they replaced (frozen in
// test/support/answers-reference.ts), over every DNS message of the fixtures, over generated
// answer sections of every kind, and over corrupted copies of the fixture messages; the
// table-driven decimal digits (numbers, timestamps) against String().

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { quoteCsvFieldInPlace } from '../../enricher/output/csv';
import { TimestampWriter, writeUint } from '../../enricher/pipeline/bytes';
import { prng, randInt } from '../../loadtest/prng';
import { DnsView, tryParseDnsMessage } from '../../proto/dns';
import { ANSWERS_TEXT_MAX_BYTES, ANSWERS_TEXT_SLACK, AnswersWriter } from '../../proto/dns/answers';
import { writeIpv4Text } from '../../proto/net/ip-text';
import { ReferenceAnswersWriter, referenceIpv4Text } from '../support/answers-reference';
import { DnsBuilder } from '../support/dns-builder';
import { allFixtureMessages } from '../support/fixture-messages';

const BOUNDS = [ANSWERS_TEXT_MAX_BYTES, 200, 40, 3];
const ROOM = ANSWERS_TEXT_MAX_BYTES + ANSWERS_TEXT_SLACK + 64;
/** Bytes that force CSV quoting (enricher/output/csv.ts). */
const SPECIAL = new Set([0x22, 0x2c, 0x5c, 0x0d, 0x0a]);

interface Tally {
  compared: number;
  plainNonEmpty: number;
  notPlain: number;
  truncated: number;
}

const newTally = (): Tally => ({ compared: 0, plainNonEmpty: 0, notPlain: 0, truncated: 0 });

/** Renders `msg`'s answers with both writers at every bound; asserts identical bytes and counts. */
function compare(msg: Buffer, label: string, tally: Tally): void {
  const view = new DnsView();
  tryParseDnsMessage(msg, 0, msg.length, view);
  for (const bound of BOUNDS) {
    const fast = new AnswersWriter(bound);
    const ref = new ReferenceAnswersWriter(bound);
    // Dirty, different buffers: nothing may depend on what was there before.
    const a = Buffer.alloc(ROOM, 0x41);
    const b = Buffer.alloc(ROOM, 0x42);
    const endA = fast.write(msg, view, a, 7);
    const endB = ref.write(msg, view, b, 7);
    const got = a.subarray(7, endA);
    const want = b.subarray(7, endB);
    assert.deepEqual(
      got,
      want,
      `${label} (bound ${bound}): ${got.toString('latin1')} != ${want.toString('latin1')}`,
    );
    assert.equal(fast.truncated, ref.truncated, `${label} (bound ${bound}): truncation count`);
    // The same through a DataView (4-byte stores, as the row encoder calls it).
    const c = Buffer.alloc(ROOM, 0x43);
    const words = new AnswersWriter(bound);
    const endC = words.write(msg, view, c, 7, new DataView(c.buffer, c.byteOffset, c.length));
    assert.deepEqual(c.subarray(7, endC), want, `${label} (bound ${bound}, DataView)`);
    assert.equal(words.plain, fast.plain);
    assert.equal(words.truncated, ref.truncated);
    if (fast.plain) {
      for (const x of got) assert.ok(!SPECIAL.has(x), `${label}: 'plain' text holds byte ${x}`);
      if (got.length > 0) tally.plainNonEmpty++;
    } else tally.notPlain++;
    // The CSV field the row gets: skipping the scan when plain equals always scanning.
    const rowField = fast.plain ? endA : quoteCsvFieldInPlace(a, 7, endA);
    const refField = quoteCsvFieldInPlace(b, 7, endB);
    assert.deepEqual(a.subarray(7, rowField), b.subarray(7, refField), `${label}: CSV field`);
    tally.compared++;
    tally.truncated += fast.truncated;
  }
}

const bytes = (rand: () => number, n: number, pool?: readonly number[]) =>
  Array.from({ length: n }, () => (pool ? pool[randInt(rand, pool.length)]! : randInt(rand, 256)));

/** A response with `n` random answers of every rendered kind, well-formed or not. */
function generated(rand: () => number): Buffer {
  const n = randInt(rand, 14);
  const d = new DnsBuilder().header({ id: randInt(rand, 65536), qr: true, qdcount: 1, ancount: n });
  d.question('www.example.com', 1);
  const tricky = [0x22, 0x2c, 0x5c, 0x3b, 0x20, 0x0a, 0x41, 0x7a, 0x80, 0xff, 0x2e];
  for (let i = 0; i < n; i++) {
    d.pointer(12);
    const k = randInt(rand, 12);
    const name = () => {
      const labels = Array.from({ length: 1 + randInt(rand, 3) }, () =>
        Buffer.from(bytes(rand, 1 + randInt(rand, 8), tricky)),
      );
      const w = new DnsBuilder().name(labels).build();
      return [...w];
    };
    switch (k) {
      case 0:
      case 1:
      case 2:
        d.rrBody(1, 1, 300, bytes(rand, 4)); // A
        break;
      case 3:
      case 4:
        // AAAA, zero runs for the "::" cases
        d.rrBody(28, 1, 300, bytes(rand, 16, [0, 0, 0, 0, 1, 0xff, 0x20, 0x01, 0xab]));
        break;
      case 5:
        d.rrBody(randInt(rand, 2) ? 1 : 28, 1, 300, bytes(rand, randInt(rand, 20))); // bad length
        break;
      case 6:
        d.rrBody(5, 1, 300, name()); // CNAME
        break;
      case 7:
        d.rrBody(15, 1, 300, [0, randInt(rand, 256), ...name()]); // MX
        break;
      case 8: {
        const strings: number[] = [];
        for (let s = 1 + randInt(rand, 3); s > 0; s--) {
          const t = bytes(rand, randInt(rand, 30), tricky);
          strings.push(t.length, ...t);
        }
        d.rrBody(16, 1, 300, strings); // TXT
        break;
      }
      case 9:
        d.rrBody(33, 1, 300, [...bytes(rand, 6), ...name()]); // SRV
        break;
      case 10:
        d.rrBody(randInt(rand, 300), 1, 300, bytes(rand, randInt(rand, 40))); // any type
        break;
      default:
        d.rrBody(1, 1, 300, bytes(rand, 4));
    }
  }
  return d.build();
}

describe('answers renderer: fast path vs the frozen reference', () => {
  test('every DNS message of the fixtures, at every bound', () => {
    const tally = newTally();
    const messages = allFixtureMessages();
    assert.ok(messages.length > 1000, `fixtures hold ${messages.length} messages`);
    for (const m of messages) compare(m.wire, `${m.file}#${m.frame} ${m.field}`, tally);
    // The fixtures must exercise both paths, or this test proves nothing.
    assert.ok(tally.plainNonEmpty > 100, `plain texts: ${tally.plainNonEmpty}`);
    assert.ok(tally.notPlain > 100, `other texts: ${tally.notPlain}`);
  });

  test('generated answer sections (A, AAAA, bad lengths, names, MX, TXT, SRV, any type)', () => {
    const rand = prng(0x511e);
    const tally = newTally();
    for (let i = 0; i < 3000; i++) compare(generated(rand), `generated #${i}`, tally);
    assert.ok(
      tally.plainNonEmpty > 100 && tally.notPlain > 1000 && tally.truncated > 100,
      JSON.stringify(tally),
    );
  });

  test('corrupted copies of the fixture responses with answers', () => {
    const rand = prng(0xc0de);
    const tally = newTally();
    const withAnswers = allFixtureMessages().filter((m) => m.wire.length > 12 && m.wire.readUInt16BE(6) > 0);
    assert.ok(withAnswers.length > 100);
    for (let i = 0; i < 4000; i++) {
      const msg = Buffer.from(withAnswers[randInt(rand, withAnswers.length)]!.wire);
      for (let f = 1 + randInt(rand, 3); f > 0; f--)
        msg[12 + randInt(rand, msg.length - 12)] = randInt(rand, 256);
      compare(msg, `corrupted #${i}`, tally);
    }
    assert.ok(tally.compared === 4000 * BOUNDS.length);
  });
});

test('IPv4 text: table-driven digits equal the reference and String() for every byte value', () => {
  const a = Buffer.alloc(64);
  const b = Buffer.alloc(64);
  const addr = new Uint8Array(4);
  for (let v = 0; v < 256; v++)
    for (let at = 0; at < 4; at++) {
      addr.fill((v * 7 + at * 31) & 0xff);
      addr[at] = v;
      const endA = writeIpv4Text(addr, 0, a, 3);
      const endB = referenceIpv4Text(addr, 0, b, 3);
      assert.equal(a.toString('latin1', 3, endA), b.toString('latin1', 3, endB));
      assert.equal(a.toString('latin1', 3, endA), Array.from(addr, String).join('.'));
    }
});

test('digit pairs: writeUint equals String() at every length boundary and over 0..10^6', () => {
  const buf = Buffer.alloc(32, 0x78);
  const values: number[] = [];
  for (let v = 0; v <= 1_000_000; v++) values.push(v);
  for (let p = 10; p <= 1e15; p *= 10) values.push(p - 1, p, p + 1, 2 ** 31 - 1, 2 ** 31);
  for (const v of values) assert.equal(buf.toString('latin1', 1, writeUint(buf, 1, v)), String(v));
});

test('digit pairs: TimestampWriter fractional digits equal the zero-padded nanoseconds', () => {
  const w = new TimestampWriter();
  const buf = Buffer.alloc(64);
  const rand = prng(0x7157);
  const values = [0, 1, 9, 10, 99, 100, 999_999_999, 100_000_000, 99_999_999, 123_456_789];
  for (let i = 0; i < 20_000; i++) values.push(randInt(rand, 1_000_000_000));
  for (const ns of values) {
    const text = buf.toString('latin1', 0, w.write(buf, 0, 1_763_782_719, ns));
    assert.equal(text, `2025-11-22T03:38:39.${String(ns).padStart(9, '0')}Z`);
  }
});
