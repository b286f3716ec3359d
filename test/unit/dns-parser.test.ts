// parseDnsMessage on messages from the independent test builder: header, question, skipped
// sections, partial results after an error, the error type, and the bounds-checked cursor.
// EDNS is in dns-edns.test.ts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DnsParseError,
  DnsView,
  ecsText,
  isDnsParseError,
  nameToString,
  parseDnsMessage,
  tryParseDnsMessage,
} from '../../proto/dns';
import { Cursor } from '../../proto/dns/cursor';
import { buildQuery, DnsBuilder, ecsOption } from '../support/dns-builder';

function parse(msg: Buffer): DnsView {
  const view = new DnsView();
  parseDnsMessage(msg, 0, msg.length, view);
  return view;
}

function codeOf(msg: Buffer, view = new DnsView()): string | null {
  return tryParseDnsMessage(msg, 0, msg.length, view);
}

/** A response with an answer, an authority record, a compressed owner and an OPT RR. */
function richResponse(): Buffer {
  const b = new DnsBuilder().header({
    id: 0xbeef,
    qr: true,
    opcode: 0,
    rcode: 3,
    qdcount: 1,
    ancount: 2,
    nscount: 1,
    arcount: 2,
  });
  b.question('www.Example.com', 28);
  b.pointer(12).rrBody(5, 1, 60, new DnsBuilder().labels(['cdn']).pointer(16).build());
  b.a('cdn.example.com');
  b.pointer(16).rrBody(6, 1, 60, Buffer.alloc(22, 1));
  b.a('ns.example.com', [192, 0, 2, 53]);
  b.opt({
    extRcode: 1,
    options: [
      { code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8] },
      ecsOption(2, 56, 48, [0x20, 1, 0xd, 0xb8, 0, 0, 0x12]),
    ],
  });
  return b.build();
}

describe('header and question', () => {
  test('a typical query', () => {
    const v = parse(buildQuery('www.tap.test', 1, { id: 0x0102 }));
    assert.equal(v.id, 0x0102);
    assert.equal(v.isResponse, false);
    assert.equal(v.opcode, 0);
    assert.equal(v.rcode, 0);
    assert.deepEqual([v.qdcount, v.ancount, v.nscount, v.arcount], [1, 0, 0, 0]);
    assert.equal(v.hasQuestion, true);
    assert.equal(nameToString(v), 'www.tap.test');
    assert.deepEqual([v.qtype, v.qclass], [1, 1]);
    assert.equal(v.hasOpt, false);
    assert.equal(v.size, 30);
  });

  test('a response with every section, compression, OPT and an IPv6 ECS', () => {
    const v = parse(richResponse());
    assert.equal(v.id, 0xbeef);
    assert.equal(v.isResponse, true);
    assert.equal(nameToString(v), 'www.example.com');
    assert.equal(v.qtype, 28);
    assert.deepEqual([v.ancount, v.nscount, v.arcount], [2, 1, 2]);
    assert.equal(v.hasOpt, true);
    assert.equal(v.rcode, (1 << 4) | 3, 'extended RCODE = EDNS upper 8 bits + header 4 bits');
    assert.equal(v.hasEcs, true);
    assert.deepEqual([v.ecsFamily, v.ecsSourcePrefix, v.ecsScopePrefix], [2, 56, 48]);
    assert.equal(ecsText(v), '2001:db8:0:1200::/56');
  });

  test('opcode and flags bits', () => {
    const v = parse(
      new DnsBuilder()
        .header({ qr: true, opcode: 5, aa: true, tc: true, rd: true, ra: true, rcode: 15 })
        .build(),
    );
    assert.deepEqual([v.isResponse, v.opcode, v.rcode], [true, 5, 15]);
  });

  test('qdcount 0 is valid: no question', () => {
    const v = parse(new DnsBuilder().header({ id: 7, arcount: 1 }).opt().build());
    assert.equal(v.hasQuestion, false);
    assert.equal(v.nameLen, 0);
    assert.equal(v.hasOpt, true);
  });

  test('only the first of several questions is decoded; the others are skipped', () => {
    const msg = new DnsBuilder()
      .header({ qdcount: 2, arcount: 1 })
      .question('first.test', 16)
      .question('second.test')
      .opt()
      .build();
    const v = parse(msg);
    assert.equal(nameToString(v), 'first.test');
    assert.equal(v.qtype, 16);
    assert.equal(v.hasOpt, true);
  });

  test('a message inside a larger buffer reads only its own bytes', () => {
    const msg = buildQuery('in.the.middle', 2);
    const buf = Buffer.concat([Buffer.alloc(5, 0xc0), msg, Buffer.alloc(9, 0xff)]);
    const v = new DnsView();
    parseDnsMessage(buf, 5, 5 + msg.length, v);
    assert.equal(nameToString(v), 'in.the.middle');
    assert.equal(v.size, msg.length);
    assert.equal(tryParseDnsMessage(buf, 5, 5 + msg.length - 1, v), 'DNS_TRUNCATED');
  });

  test('trailing bytes after the last record are ignored', () => {
    assert.equal(codeOf(Buffer.concat([buildQuery('a.b'), Buffer.from([1, 2, 3])])), null);
  });

  test('a view is fully reset between messages', () => {
    const v = new DnsView();
    parseDnsMessage(richResponse(), 0, richResponse().length, v);
    const q = new DnsBuilder().header({ id: 1 }).build();
    parseDnsMessage(q, 0, q.length, v);
    assert.deepEqual(
      [v.id, v.hasQuestion, v.nameLen, v.hasOpt, v.hasEcs, v.rcode, v.ancount],
      [1, false, 0, false, false, 0, 0],
    );
  });

  test('a bad range is a RangeError (a caller bug), not a DnsParseError', () => {
    const msg = buildQuery('a');
    assert.throws(() => parseDnsMessage(msg, 0, msg.length + 1, new DnsView()), RangeError);
    assert.throws(() => parseDnsMessage(msg, 3, 2, new DnsView()), RangeError);
  });
});

describe('errors and partial results', () => {
  test('header and question survive an error in the additional section', () => {
    const msg = new DnsBuilder()
      .header({ id: 99, qdcount: 1, arcount: 1 })
      .question('kept.test', 15)
      .opt({ options: [ecsOption(9, 0, 0, [])] })
      .build();
    const v = new DnsView();
    assert.throws(() => parseDnsMessage(msg, 0, msg.length, v), DnsParseError);
    assert.deepEqual(
      [v.id, v.hasQuestion, nameToString(v), v.qtype, v.hasOpt, v.hasEcs],
      [99, true, 'kept.test', 15, true, false],
    );
  });

  test('a question cut after its name leaves no half question', () => {
    const full = buildQuery('cut.test');
    const v = new DnsView();
    assert.equal(tryParseDnsMessage(full, 0, full.length - 2, v), 'DNS_TRUNCATED');
    assert.deepEqual([v.hasQuestion, v.nameLen, v.labelCount, v.qdcount], [false, 0, 0, 1]);
  });

  test('DnsParseError has a stable code, its name, an offset, and no captured frames', () => {
    try {
      parseDnsMessage(Buffer.alloc(5), 0, 5, new DnsView());
      assert.fail('no error');
    } catch (e) {
      assert.ok(isDnsParseError(e, 'DNS_TRUNCATED_HEADER'));
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'DnsParseError');
      assert.equal(e.offset, 0);
      assert.equal(String(e.stack).split('\n').length, 1);
    }
    const msg = new DnsBuilder().header({ qdcount: 1 }).labels(['abc']).u8(0x40).build();
    try {
      parseDnsMessage(msg, 0, msg.length, new DnsView());
      assert.fail('no error');
    } catch (err) {
      assert.ok(isDnsParseError(err, 'DNS_BAD_LABEL_TYPE'));
      assert.equal(err.offset, 16, 'offset of the bad label byte');
    }
  });

  test('captureStacks brings stacks back for debugging', () => {
    DnsParseError.captureStacks = true;
    try {
      assert.ok(String(new DnsParseError('DNS_TRUNCATED', 1).stack).split('\n').length > 1);
    } finally {
      DnsParseError.captureStacks = false;
    }
  });

  test('every truncation of a rich response is DNS_TRUNCATED(_HEADER) with the offsets in range', () => {
    const full = richResponse();
    assert.equal(codeOf(full), null);
    for (let end = 0; end < full.length; end++) {
      const expected = end < 12 ? 'DNS_TRUNCATED_HEADER' : 'DNS_TRUNCATED';
      try {
        parseDnsMessage(full, 0, end, new DnsView());
        assert.fail(`end ${end} parsed`);
      } catch (e) {
        assert.ok(isDnsParseError(e, expected), `end ${end}: ${e}`);
        assert.ok(e.offset >= 0 && e.offset <= end, `end ${end}: offset ${e.offset}`);
      }
    }
  });
});

describe('cursor', () => {
  test('reads big-endian values within bounds and records the first overrun', () => {
    const cur = new Cursor();
    cur.reset(Buffer.from([9, 0x12, 0x34, 0xff, 0xfe, 0xfd, 0xfc, 1, 2]), 1, 8);
    assert.equal(cur.u16(), 0x1234);
    assert.equal(cur.u32(), 0xfffefdfc);
    assert.equal(cur.remaining(), 1);
    assert.equal(cur.u16(), 0, 'overrun reads 0');
    assert.deepEqual([cur.error, cur.errorOffset, cur.remaining()], ['DNS_TRUNCATED', 6, 0]);
    assert.equal(cur.advance(0), true);
    assert.equal(cur.u8(), 0);
    cur.fail('DNS_BAD_OPT', 2);
    assert.equal(cur.error, 'DNS_TRUNCATED', 'the first error wins');
    cur.reset(Buffer.from([1, 2, 3]), 0, 3);
    assert.deepEqual([cur.error, cur.need(3), cur.need(4), cur.error], [null, true, false, 'DNS_TRUNCATED']);
  });
});
