// Policy suffixes against qnames exactly as the DNS parser presents them: wire-format
// queries (built here, byte by byte) go through parseDnsMessage into a DnsView, and the
// view's name and label starts go to lookupDomain. Policy suffixes are written in other
// spellings of the same wire bytes (upper case, \DDD for every byte, escapes for specials)
// to pin that the document's canonical form is the parser's presentation form.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePolicyDocument } from '../../enricher/policy';
import type { DomainTable } from '../../enricher/policy/domains';
import { prng } from '../../loadtest/prng';
import { DnsView, parseDnsMessage } from '../../proto/dns';

/** A DNS query (RFC 1035 §4.1): 12-byte header, QNAME as given, QTYPE A, QCLASS IN. */
function query(labels: number[][]): Buffer {
  const bytes = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) bytes.push(l.length, ...l);
  bytes.push(0, 0, 1, 0, 1);
  return Buffer.from(bytes);
}

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
/** Every byte as \DDD: the least canonical spelling of a label. */
const decimal = (label: number[]) => label.map((b) => `\\${String(b).padStart(3, '0')}`).join('');

function tableOf(suffixes: string[]): DomainTable {
  const doc = {
    version: 't',
    domains: suffixes.map((suffix, i) => ({ suffix, category: `c${i}`, action: 'a' })),
  };
  return parsePolicyDocument(Buffer.from(JSON.stringify(doc)), 'dns-test').domains;
}

const view = new DnsView();
function lookup(t: DomainTable, labels: number[][]): string | null {
  const msg = query(labels);
  parseDnsMessage(msg, 0, msg.length, view);
  return t.lookup(view.name, view.nameLen, view.labelStarts, view.labelCount)?.category ?? null;
}

describe('suffixes written in any spelling match the parser output', () => {
  test('case, escaped specials, \\DDD', () => {
    const t = tableOf([
      'Example.COM.', // c0
      'a\\046b.example.com', // c1: one label "a.b"
      'WE"IRD.org', // c2: a bare quote is the byte 0x22
      'sp\\032ace.org', // c3: space by number
      '\\000\\255\\065.net', // c4: bytes 0, 255 and "A" (which the parser lower-cases)
      "semi\\;colon\\@at\\(x\\)'q.io", // c5
      'back\\\\slash.io', // c6
    ]);
    assert.equal(lookup(t, [ascii('WWW'), ascii('example'), ascii('com')]), 'c0');
    assert.equal(lookup(t, [ascii('x'), ascii('a.b'), ascii('example'), ascii('com')]), 'c1');
    assert.equal(lookup(t, [ascii('a'), ascii('b'), ascii('example'), ascii('com')]), 'c0');
    assert.equal(lookup(t, [ascii('we"ird'), ascii('ORG')]), 'c2');
    assert.equal(lookup(t, [ascii('sp ace'), ascii('org')]), 'c3');
    assert.equal(lookup(t, [[0, 255, 0x41], ascii('net')]), 'c4');
    assert.equal(lookup(t, [[0, 255, 0x61], ascii('net')]), 'c4');
    assert.equal(lookup(t, [ascii("semi;colon@at(x)'q"), ascii('io')]), 'c5');
    assert.equal(lookup(t, [ascii('back\\slash'), ascii('io')]), 'c6');
    assert.equal(lookup(t, [ascii('sp_ace'), ascii('org')]), null);
  });

  test('the root name matches only the root rule', () => {
    assert.equal(lookup(tableOf(['com', '.']), []), 'c1');
    assert.equal(lookup(tableOf(['com']), []), null);
  });

  test('random wire labels, policy written as \\DDD for every byte', () => {
    const rand = prng(7);
    for (let round = 0; round < 300; round++) {
      const labels = Array.from({ length: 1 + Math.floor(rand() * 3) }, () =>
        Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 256)),
      );
      const t = tableOf([labels.map(decimal).join('.')]);
      assert.equal(lookup(t, [ascii('x'), ...labels]), 'c0', `labels ${JSON.stringify(labels)}`);
      // Change one byte (not by case alone) and the name must miss.
      const other = labels.map((l) => [...l]);
      const l = other[Math.floor(rand() * other.length)]!;
      const i = Math.floor(rand() * l.length);
      const lower = (b: number) => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);
      do l[i] = Math.floor(rand() * 256);
      while (lower(l[i]!) === lower(labels[other.indexOf(l)]![i]!));
      assert.equal(lookup(t, other), null, `labels ${JSON.stringify(other)}`);
    }
  });
});
