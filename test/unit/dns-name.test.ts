// Domain name decoding: presentation format (escapes exactly like miekg/dns, lower-cased,
// no trailing dot), label boundaries, compression pointers and their abuse, label types,
// length limits, and skipName.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cursor } from '../../proto/dns/cursor';
import { MAX_POINTER_JUMPS, nameToString, readName, skipName } from '../../proto/dns/name';
import { tryParseDnsMessage } from '../../proto/dns/parser';
import { DnsView } from '../../proto/dns/view';
import { DnsBuilder, type Label } from '../support/dns-builder';

/** Parses a one-question query whose qname is `labels`; returns [presentation, label strings]. */
function qname(labels: readonly Label[]): [string, string[]] {
  const msg = new DnsBuilder().header({ qdcount: 1 }).name(labels).u16(1).u16(1).build();
  const view = new DnsView();
  assert.equal(tryParseDnsMessage(msg, 0, msg.length, view), null);
  const text = nameToString(view);
  const parts: string[] = [];
  for (let i = 0; i < view.labelCount; i++) {
    const from = view.labelStarts[i];
    const to = i + 1 < view.labelCount ? view.labelStarts[i + 1] - 1 : view.nameLen;
    parts.push(text.slice(from, to));
  }
  return [text, parts];
}

/** readName on a name at `at` inside a hand-built buffer; returns the text or the error code. */
function readAt(buf: Buffer, at: number): string {
  const cur = new Cursor();
  cur.reset(buf, 0, buf.length);
  cur.pos = at;
  const view = new DnsView();
  return readName(cur, view) ? nameToString(view) : `error:${cur.error}`;
}

describe('presentation format', () => {
  const cases: [string, Label[], string][] = [
    ['plain', ['www', 'example', 'com'], 'www.example.com'],
    ['upper case is lowered', ['WwW', 'ExAmPlE', 'COM'], 'www.example.com'],
    ['the root', [], '.'],
    ['dot inside a label', ['a.b', 'c'], 'a\\.b.c'],
    ['space', ['sp ace'], 'sp\\ ace'],
    ['specials', ['\'@;()"\\'], '\\\'\\@\\;\\(\\)\\"\\\\'],
    ['comma and others are plain', ['a,b', 'x-y_z*'], 'a,b.x-y_z*'],
    ['newline and NUL', [[0x0a, 0x00, 0x61]], '\\010\\000a'],
    ['DEL and high bytes', [[0x7f, 0x80, 0xc3, 0xa9, 0xff]], '\\127\\128\\195\\169\\255'],
    ['tilde is printable', ['~'], '~'],
    ['upper-case bytes next to escapes', [[0x41, 0x2e, 0x5a, 0x20]], 'a\\.z\\ '],
  ];
  for (const [title, labels, expected] of cases) {
    test(title, () => assert.equal(qname(labels)[0], expected));
  }

  test('label starts fall on label boundaries even with escaped dots', () => {
    const [text, parts] = qname(['a.b', 'C\\d', 'e']);
    assert.equal(text, 'a\\.b.c\\\\d.e');
    assert.deepEqual(parts, ['a\\.b', 'c\\\\d', 'e']);
  });

  test('the root has no labels', () => {
    const msg = new DnsBuilder().header({ qdcount: 1 }).name([]).u16(2).u16(1).build();
    const view = new DnsView();
    tryParseDnsMessage(msg, 0, msg.length, view);
    assert.equal(view.labelCount, 0);
    assert.equal(nameToString(view), '.');
  });
});

describe('length limits', () => {
  const label63 = 'a'.repeat(63);
  test('a 255-octet name (three 63-byte labels and one of 61) is accepted', () => {
    // Wire octets: 3 * (1 + 63) + (1 + 61) + 1 (root) = 255.
    const labels = [label63, label63, label63, 'b'.repeat(61)];
    assert.equal(qname(labels)[0], labels.join('.'));
  });

  test('a 256-octet name is DNS_NAME_TOO_LONG', () => {
    const msg = new DnsBuilder()
      .header({ qdcount: 1 })
      .name([label63, label63, label63, 'b'.repeat(62)])
      .u16(1)
      .u16(1)
      .build();
    assert.equal(tryParseDnsMessage(msg, 0, msg.length, new DnsView()), 'DNS_NAME_TOO_LONG');
  });

  test('127 one-byte labels (the most a name can have) with the longest escapes', () => {
    const labels = Array.from({ length: 127 }, () => [0xff]);
    const [text, parts] = qname(labels);
    assert.equal(parts.length, 127);
    assert.equal(text, Array(127).fill('\\255').join('.'));
  });

  test('the longest presentation form fits NAME_BUF_SIZE', () => {
    const high = (n: number) => Array(n).fill(0xfe);
    const [text] = qname([high(63), high(63), high(63), high(61)]);
    assert.equal(text.length, 250 * 4 + 3);
  });
});

describe('compression pointers', () => {
  // Header (12 bytes of zeros), then "a" at 12, then whatever the test appends.
  const base = () => new DnsBuilder().header().name(['A']);

  test('a backward pointer after labels', () => {
    const b = base();
    const at = b.offset;
    b.labels(['x']).pointer(12);
    assert.equal(readAt(b.build(), at), 'x.a');
  });

  test('a self pointer is DNS_BAD_POINTER', () => {
    const b = base();
    const at = b.offset;
    b.pointer(at);
    assert.equal(readAt(b.build(), at), 'error:DNS_BAD_POINTER');
  });

  test('a forward pointer is DNS_BAD_POINTER', () => {
    const b = base();
    const at = b.offset;
    b.pointer(at + 2).name(['z']);
    assert.equal(readAt(b.build(), at), 'error:DNS_BAD_POINTER');
  });

  test('a pointer into the current name is DNS_BAD_POINTER', () => {
    const b = base();
    const at = b.offset;
    b.labels(['x']).pointer(at);
    assert.equal(readAt(b.build(), at), 'error:DNS_BAD_POINTER');
  });

  test('a two-pointer cycle terminates with DNS_BAD_POINTER', () => {
    const b = base();
    const first = b.offset;
    b.pointer(first + 2).pointer(first);
    assert.equal(readAt(b.build(), first + 2), 'error:DNS_BAD_POINTER');
  });

  test('a pointer into the header or beyond the message is DNS_BAD_POINTER', () => {
    for (const target of [0, 11, 0x3fff]) {
      const b = base();
      const at = b.offset;
      b.pointer(target);
      assert.equal(readAt(b.build(), at), 'error:DNS_BAD_POINTER', `target ${target}`);
    }
  });

  const chain = (jumps: number): [Buffer, number] => {
    const b = base();
    let prev = 12;
    for (let i = 0; i < jumps; i++) {
      const here = b.offset;
      b.pointer(prev);
      prev = here;
    }
    return [b.build(), prev];
  };

  test(`a chain of ${MAX_POINTER_JUMPS} backward pointers is followed`, () => {
    assert.equal(readAt(...chain(MAX_POINTER_JUMPS)), 'a');
  });

  test('one jump more is DNS_POINTER_LOOP', () => {
    assert.equal(readAt(...chain(MAX_POINTER_JUMPS + 1)), 'error:DNS_POINTER_LOOP');
  });

  test('the cursor continues after the first pointer', () => {
    const b = base();
    const at = b.offset;
    b.labels(['x']).pointer(12).u16(0xbeef);
    const cur = new Cursor();
    const buf = b.build();
    cur.reset(buf, 0, buf.length);
    cur.pos = at;
    assert.ok(readName(cur, new DnsView()));
    assert.equal(cur.u16(), 0xbeef);
  });
});

describe('label types and truncation', () => {
  for (const type of [0x40, 0x80, 0x41, 0xbf]) {
    test(`label type 0x${type.toString(16)} is DNS_BAD_LABEL_TYPE`, () => {
      const buf = new DnsBuilder().header().u8(type).raw([1, 2, 3, 0]).build();
      assert.equal(readAt(buf, 12), 'error:DNS_BAD_LABEL_TYPE');
    });
  }

  test('every truncation of a name is DNS_TRUNCATED', () => {
    const full = new DnsBuilder().header().name(['www', 'example']).build();
    for (let end = 12; end < full.length; end++) {
      assert.equal(readAt(full.subarray(0, end), 12), 'error:DNS_TRUNCATED', `end ${end}`);
    }
  });
});

describe('skipName', () => {
  const skip = (buf: Buffer, at: number): number | string => {
    const cur = new Cursor();
    cur.reset(buf, 0, buf.length);
    cur.pos = at;
    return skipName(cur) ? cur.pos : `error:${cur.error}`;
  };

  test('skips labels, the root, and a pointer', () => {
    const b = new DnsBuilder().header().name(['a', 'bc']);
    assert.equal(skip(b.build(), 12), 18);
    const at = b.offset;
    b.labels(['x']).pointer(12);
    assert.equal(skip(b.build(), at), at + 4);
  });

  test('rejects what readName rejects without following pointers', () => {
    const b = new DnsBuilder().header().name(['a']);
    const at = b.offset;
    assert.equal(skip(b.pointer(at).build(), at), 'error:DNS_BAD_POINTER');
    assert.equal(skip(new DnsBuilder().header().u8(0x80).build(), 12), 'error:DNS_BAD_LABEL_TYPE');
    assert.equal(skip(new DnsBuilder().header().labels(['abc']).build(), 12), 'error:DNS_TRUNCATED');
    const long = new DnsBuilder()
      .header()
      .name(Array(5).fill('a'.repeat(63)))
      .build();
    assert.equal(skip(long, 12), 'error:DNS_NAME_TOO_LONG');
  });
});
