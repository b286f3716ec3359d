// Longest-prefix network lookups for IPv4, IPv6 and IPv4-mapped IPv6 through the
// hot-path signature (address bytes at an offset inside a larger buffer).

import assert from 'node:assert/strict';
import { isIPv4 } from 'node:net';
import { describe, test } from 'node:test';
import { parsePolicyDocument } from '../../enricher/policy';
import type { NetworkTable } from '../../enricher/policy/networks';

/** Test-only text -> bytes (independent of cidr.ts): dotted quads, `::`, embedded IPv4. */
function bytesOf(text: string): number[] {
  if (isIPv4(text)) return text.split('.').map(Number);
  let tail: number[] = [];
  let t = text;
  const lastColon = t.lastIndexOf(':');
  if (t.includes('.')) {
    tail = bytesOf(t.slice(lastColon + 1));
    t = `${t.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = t.split('::') as [string, string?];
  const hs = head === '' ? [] : head.split(':');
  const rs = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = [...hs, ...Array<string>(8 - hs.length - rs.length).fill('0'), ...rs];
  const out = groups.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 255]);
  if (tail.length > 0) out.splice(12, 4, ...tail);
  return out;
}

function tableOf(...cidrs: string[]): NetworkTable {
  const doc = { version: 't', networks: cidrs.map((cidr) => ({ cidr, tenant: `t:${cidr}` })) };
  return parsePolicyDocument(Buffer.from(JSON.stringify(doc)), 'networks-test').networks;
}

/** Looks `addr` up from offset 5 of a buffer with unrelated bytes around it. */
function match(t: NetworkTable, addr: string): string | null {
  const bytes = bytesOf(addr);
  const buf = Buffer.alloc(40, 0xa5);
  Buffer.from(bytes).copy(buf, 5);
  return t.lookup(buf, 5, bytes.length)?.tenant.slice(2) ?? null;
}

describe('IPv4', () => {
  const t = tableOf(
    '10.0.0.0/8',
    '10.1.0.0/16',
    '10.1.2.0/24',
    '10.1.2.3/32',
    '10.1.2.128/25',
    '10.1.128.0/17',
  );

  test('longest prefix wins among nested networks', () => {
    assert.equal(match(t, '10.1.2.3'), '10.1.2.3/32');
    assert.equal(match(t, '10.1.2.4'), '10.1.2.0/24');
    assert.equal(match(t, '10.1.2.200'), '10.1.2.128/25');
    assert.equal(match(t, '10.1.3.1'), '10.1.0.0/16');
    assert.equal(match(t, '10.1.200.1'), '10.1.128.0/17');
    assert.equal(match(t, '10.200.0.1'), '10.0.0.0/8');
    assert.equal(match(t, '11.0.0.0'), null);
    assert.equal(match(t, '9.255.255.255'), null);
  });

  test('/0 is the default; /1, /31 and /32 edges', () => {
    const t2 = tableOf('0.0.0.0/0', '128.0.0.0/1', '192.0.2.0/31', '255.255.255.255/32');
    assert.equal(match(t2, '1.2.3.4'), '0.0.0.0/0');
    assert.equal(match(t2, '200.1.1.1'), '128.0.0.0/1');
    assert.equal(match(t2, '192.0.2.1'), '192.0.2.0/31');
    assert.equal(match(t2, '192.0.2.2'), '128.0.0.0/1');
    assert.equal(match(t2, '255.255.255.255'), '255.255.255.255/32');
    assert.equal(match(t2, '255.255.255.254'), '128.0.0.0/1');
  });
});

describe('IPv6', () => {
  const t = tableOf(
    '2001:db8::/32',
    '2001:db8:1::/48',
    '2001:db8:1:2::/64',
    '2001:db8:1:2::1/128',
    '2001:db8:1:2::/127',
  );

  test('longest prefix wins, /127 and /128 included', () => {
    assert.equal(match(t, '2001:db8:1:2::1'), '2001:db8:1:2::1/128');
    assert.equal(match(t, '2001:db8:1:2::'), '2001:db8:1:2::/127');
    assert.equal(match(t, '2001:db8:1:2::2'), '2001:db8:1:2::/64');
    assert.equal(match(t, '2001:db8:1:3::1'), '2001:db8:1::/48');
    assert.equal(match(t, '2001:db8:ffff::1'), '2001:db8::/32');
    assert.equal(match(t, '2001:db9::1'), null);
    assert.equal(match(t, '::1'), null);
  });

  test('::/0 and short prefixes inside and across /16 blocks', () => {
    const t2 = tableOf('::/0', '2000::/3', '2001::/16', '2001:8000::/17', 'fe80::/10');
    assert.equal(match(t2, '::1'), '::/0');
    assert.equal(match(t2, '3fff::1'), '2000::/3');
    assert.equal(match(t2, '2001:1::1'), '2001::/16');
    assert.equal(match(t2, '2001:9000::1'), '2001:8000::/17');
    assert.equal(match(t2, 'febf::1'), 'fe80::/10');
    assert.equal(match(t2, 'fec0::1'), '::/0');
  });
});

describe('IPv4-mapped IPv6', () => {
  test('::ffff:a.b.c.d matches the IPv4 rules of a.b.c.d', () => {
    const t = tableOf('10.0.0.0/8', '10.1.0.0/16');
    assert.equal(match(t, '::ffff:10.1.2.3'), '10.1.0.0/16');
    assert.equal(match(t, '::ffff:10.2.2.3'), '10.0.0.0/8');
    assert.equal(match(t, '::ffff:11.0.0.1'), null);
    assert.equal(match(t, '::10.1.2.3'), null, 'IPv4-compatible (deprecated) is not mapped');
  });

  test('IPv6 rules inside ::ffff:0:0/96 are IPv4 rules', () => {
    const t = tableOf('::ffff:10.0.0.0/104', '::ffff:c000:200/120', '::ffff:0:0/96');
    assert.equal(match(t, '10.9.9.9'), '::ffff:10.0.0.0/104');
    assert.equal(match(t, '::ffff:10.9.9.9'), '::ffff:10.0.0.0/104');
    assert.equal(match(t, '192.0.2.9'), '::ffff:c000:200/120');
    assert.equal(match(t, '8.8.8.8'), '::ffff:0:0/96');
    assert.equal(match(t, '2001:db8::1'), null);
    assert.equal(t.lookup(Buffer.from(bytesOf('10.9.9.9')), 0, 4)?.cidr, '10.0.0.0/8');
  });

  test('::/0 covers native IPv6 only; 0.0.0.0/0 covers IPv4 and mapped', () => {
    const v6only = tableOf('::/0');
    assert.equal(match(v6only, '2001:db8::1'), '::/0');
    assert.equal(match(v6only, '1.2.3.4'), null);
    assert.equal(match(v6only, '::ffff:1.2.3.4'), null);
    const v4only = tableOf('0.0.0.0/0');
    assert.equal(match(v4only, '::ffff:1.2.3.4'), '0.0.0.0/0');
    assert.equal(match(v4only, '2001:db8::1'), null);
  });
});

describe('rules', () => {
  test('lengths other than 4 and 16 never match', () => {
    const t = tableOf('0.0.0.0/0', '::/0');
    const buf = Buffer.alloc(32);
    for (const len of [0, 1, 3, 5, 8, 15, 17, 32]) assert.equal(t.lookup(buf, 0, len), null, `len ${len}`);
  });

  test('cidr is canonical text; csv is the escaped tenant; one frozen object per rule', () => {
    const doc = {
      version: 't',
      networks: [
        { cidr: '2001:0DB8:0000::/48', tenant: 'a,b' },
        { cidr: '10.0.0.0/8', tenant: 'say "x"' },
        { cidr: '::ffff:192.0.2.0/120', tenant: 'plain' },
      ],
    };
    const t = parsePolicyDocument(Buffer.from(JSON.stringify(doc)), 'n').networks;
    const v6 = t.lookup(Buffer.from(bytesOf('2001:db8::5')), 0, 16)!;
    assert.equal(v6.cidr, '2001:db8::/48');
    assert.equal(v6.csv.toString(), '"a,b"');
    const v4 = t.lookup(Buffer.from([10, 0, 0, 1]), 0, 4)!;
    assert.equal(v4.csv.toString(), '"say ""x"""');
    assert.equal(t.lookup(Buffer.from([10, 9, 9, 9]), 0, 4), v4);
    assert.ok(Object.isFrozen(v4));
    assert.equal(t.lookup(Buffer.from([192, 0, 2, 1]), 0, 4)!.cidr, '192.0.2.0/24');
  });
});
