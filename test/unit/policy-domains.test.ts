// Domain suffix lookups through the hot-path signature (name bytes + label starts, as the
// DNS parser fills DnsView), with a test-only splitter independent of the production one.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type DomainRule, parsePolicyDocument } from '../../enricher/policy';
import type { DomainTable } from '../../enricher/policy/domains';

/** Presentation name -> view-like buffers; `\DDD` and `\X` never start a label. */
function view(name: string, garbage = 0): { name: Buffer; len: number; starts: Int32Array; count: number } {
  const starts = new Int32Array(128).fill(-7);
  let count = 0;
  if (name !== '.') {
    let labelStart = true;
    for (let i = 0; i < name.length; i++) {
      if (labelStart) starts[count++] = i;
      labelStart = false;
      if (name[i] === '\\') i += /[0-9]/.test(name[i + 1]!) ? 3 : 1;
      else if (name[i] === '.') labelStart = true;
    }
  }
  // Bytes after nameLen must be ignored: fill them with a plausible continuation.
  const buf = Buffer.alloc(name.length + garbage, '.example.com');
  buf.write(name, 'latin1');
  return { name: buf, len: name.length, starts, count };
}

function tableOf(...domains: [string, string?, string?][]): DomainTable {
  const doc = {
    version: 't',
    domains: domains.map(([suffix, category = `cat:${suffix}`, action = 'block']) => ({
      suffix,
      category,
      action,
    })),
  };
  return parsePolicyDocument(Buffer.from(JSON.stringify(doc)), 'domains-test').domains;
}

function match(t: DomainTable, name: string): string | null {
  const v = view(name, 16);
  return t.lookup(v.name, v.len, v.starts, v.count)?.suffix ?? null;
}

describe('suffix matching on label boundaries', () => {
  const t = tableOf(['example.com'], ['www.example.com'], ['b.c'], ['c.b.c'], ['org']);

  test('a rule matches itself and names below it, never across a label', () => {
    assert.equal(match(t, 'example.com'), 'example.com');
    assert.equal(match(t, 'mail.example.com'), 'example.com');
    assert.equal(match(t, 'a.b.c.d.example.com'), 'example.com');
    assert.equal(match(t, 'badexample.com'), null);
    assert.equal(match(t, 'com'), null);
    assert.equal(match(t, 'example.com.evil'), null);
    assert.equal(match(t, 'xample.com'), null);
  });

  test('the longest matching suffix wins', () => {
    assert.equal(match(t, 'www.example.com'), 'www.example.com');
    assert.equal(match(t, 'x.www.example.com'), 'www.example.com');
    assert.equal(match(t, 'wwww.example.com'), 'example.com');
    assert.equal(match(t, 'c.b.c'), 'c.b.c');
    assert.equal(match(t, 'b.b.c'), 'b.c');
    assert.equal(match(t, 'c.b.c.b.c'), 'c.b.c');
    assert.equal(match(t, 'anything.org'), 'org');
  });

  test('without a root rule misses are null; with one it is the default', () => {
    assert.equal(match(t, 'unknown.net'), null);
    assert.equal(match(t, '.'), null);
    const withRoot = tableOf(['example.com'], ['.', 'default', 'allow']);
    assert.equal(match(withRoot, 'unknown.net'), '.');
    assert.equal(match(withRoot, '.'), '.');
    assert.equal(match(withRoot, 'badexample.com'), '.');
    assert.equal(match(withRoot, 'www.example.com'), 'example.com');
    assert.equal(match(tableOf(['', 'default']), 'a.b'), '.');
  });

  test('an empty table matches nothing', () => {
    const empty = tableOf();
    assert.equal(empty.size, 0);
    assert.equal(match(empty, 'example.com'), null);
  });
});

describe('presentation format', () => {
  test('escaped dots are inside labels, not boundaries', () => {
    const t = tableOf(['b.example.com'], ['a\\.b.example.com'], ['x\\.y']);
    assert.equal(match(t, 'a\\.b.example.com'), 'a\\.b.example.com');
    assert.equal(match(t, 'q.a\\.b.example.com'), 'a\\.b.example.com');
    assert.equal(match(t, 'a.b.example.com'), 'b.example.com');
    assert.equal(match(t, 'z\\.b.example.com'), null);
    assert.equal(match(t, 'w.x\\.y'), 'x\\.y');
    assert.equal(match(t, 'y'), null);
    assert.equal(match(t, 'x.y'), null);
  });

  test('\\DDD escapes and other printable bytes match byte for byte', () => {
    const t = tableOf(['a\\000b.com'], ['_dmarc.x.org'], ['*.wild.net'], ['q\\\\.net']);
    assert.equal(match(t, 'z.a\\000b.com'), 'a\\000b.com');
    assert.equal(match(t, 'a\\001b.com'), null);
    assert.equal(match(t, '_dmarc.x.org'), '_dmarc.x.org');
    assert.equal(match(t, '*.wild.net'), '*.wild.net');
    assert.equal(match(t, 'a.wild.net'), null);
    assert.equal(match(t, 'p.q\\\\.net'), 'q\\\\.net');
  });

  test('document suffixes are lower-cased and lose one trailing dot', () => {
    const t = tableOf(['WWW.Example.COM.'], ['Other.ORG'], ['esc\\.'], ['B\\.c']);
    assert.equal(match(t, 'www.example.com'), 'www.example.com');
    assert.equal(match(t, 'a.other.org'), 'other.org');
    assert.equal(match(t, 'esc\\.'), 'esc\\.', 'an escaped trailing dot is part of the label');
    assert.equal(match(t, 'b\\.c'), 'b\\.c');
  });

  test('labels around the 16-byte inline limit and at the 63-byte maximum', () => {
    for (const n of [1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63]) {
      const label = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2).slice(0, n);
      const t = tableOf([`${label}.com`], [`${label}.${label}`]);
      assert.equal(match(t, `${label}.com`), `${label}.com`, `length ${n}`);
      assert.equal(match(t, `x.${label}.${label}`), `${label}.${label}`, `length ${n}`);
      assert.equal(match(t, `${label.slice(0, -1)}_.com`), null, `length ${n}, last byte differs`);
      assert.equal(match(t, `_${label.slice(1)}.com`), null, `length ${n}, first byte differs`);
      assert.equal(match(t, `${label}x.com`), null, `length ${n} + 1`);
    }
  });

  test('names with the maximum number of labels', () => {
    const t = tableOf(['a.a.a'], ['b']);
    const deep = Array.from({ length: 127 }, () => 'a').join('.');
    assert.equal(match(t, deep), 'a.a.a');
    assert.equal(match(t, `${deep.slice(0, 199)}.b`), 'b');
  });
});

describe('rules', () => {
  test('csv holds category, action and matched domain, RFC 4180 escaped, UTF-8', () => {
    const t = tableOf(
      ['plain.com', 'ads', 'block'],
      ['comma.com', 'a,b', 'log'],
      ['quote.com', 'say "hi"', 'x'],
      ['crlf.com', 'line1\r\nline2', 'lf\nonly'],
      ['utf8.com', 'caf\u00e9 \u2603', 'ok'],
      ['.', '', ''],
    );
    const csv = (name: string) => t.lookupName(name)!.csv.toString('utf8');
    assert.equal(csv('plain.com'), 'ads,block,plain.com');
    assert.equal(csv('comma.com'), '"a,b",log,comma.com');
    assert.equal(csv('quote.com'), '"say ""hi""",x,quote.com');
    // Control bytes are written as Snowtap text escapes (output/text-escape.ts), never raw.
    assert.equal(csv('crlf.com'), '"line1\\x0d\\x0aline2","lf\\x0aonly",crlf.com');
    assert.equal(csv('utf8.com'), 'caf\u00e9 \u2603,ok,utf8.com');
    assert.deepEqual([...t.lookupName('utf8.com')!.csv.subarray(0, 5)], [0x63, 0x61, 0x66, 0xc3, 0xa9]);
    // "" is a present empty string; an empty field would load as NULL.
    assert.equal(csv('nothing.net'), '"","",.');
  });

  test('a rule is one frozen object, the same on every match', () => {
    const t = tableOf(['example.com', 'c', 'a']);
    const first = t.lookupName('a.example.com') as DomainRule;
    assert.equal(t.lookupName('b.example.com'), first);
    assert.ok(Object.isFrozen(first));
    assert.deepEqual(
      { ...first, csv: first.csv.toString() },
      {
        suffix: 'example.com',
        category: 'c',
        action: 'a',
        csv: 'c,a,example.com',
      },
    );
  });

  test('lookupName accepts a trailing dot like the document does', () => {
    const t = tableOf(['example.com']);
    assert.equal(t.lookupName('www.example.com.')?.suffix, 'example.com');
    assert.equal(t.lookupName('.'), null);
  });
});
