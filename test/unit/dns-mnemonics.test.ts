// Mnemonic tables (strings and pre-encoded bytes) and the ECS text writer. IPv6 text is
// checked against Node's WHATWG URL serializer, which implements the same RFC 5952 rules
// (lower-case, no leading zeros, first longest run of 2+ zero groups as "::").

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { prng, randInt } from '../../loadtest/prng';
import { DnsView, ECS_TEXT_MAX_LENGTH, ecsText, writeEcsText } from '../../proto/dns';
import {
  OPCODES_TABLE,
  opcodeName,
  qclassBytes,
  qclassName,
  qtypeBytes,
  qtypeName,
  rcodeBytes,
  rcodeName,
} from '../../proto/dns/mnemonics';

describe('mnemonics', () => {
  test('record types miekg/dns knows', () => {
    const expected: [number, string][] = [
      [1, 'A'],
      [2, 'NS'],
      [5, 'CNAME'],
      [6, 'SOA'],
      [12, 'PTR'],
      [15, 'MX'],
      [16, 'TXT'],
      [28, 'AAAA'],
      [33, 'SRV'],
      [35, 'NAPTR'],
      [23, 'NSAP-PTR'],
      [41, 'OPT'],
      [43, 'DS'],
      [46, 'RRSIG'],
      [47, 'NSEC'],
      [48, 'DNSKEY'],
      [50, 'NSEC3'],
      [52, 'TLSA'],
      [63, 'ZONEMD'],
      [64, 'SVCB'],
      [65, 'HTTPS'],
      [99, 'SPF'],
      [128, 'NXNAME'],
      [251, 'IXFR'],
      [252, 'AXFR'],
      [255, 'ANY'],
      [256, 'URI'],
      [257, 'CAA'],
      [261, 'RESINFO'],
      [32768, 'TA'],
      [32769, 'DLV'],
    ];
    for (const [n, s] of expected) assert.equal(qtypeName(n), s, `type ${n}`);
  });

  test('unknown values use the generic forms', () => {
    assert.equal(qtypeName(65534), 'TYPE65534');
    assert.equal(qtypeName(0), 'TYPE0');
    assert.equal(qtypeName(65535), 'TYPE65535');
    assert.equal(qtypeName(11), 'TYPE11');
    assert.equal(qclassName(42), 'CLASS42');
    assert.equal(rcodeName(12), 'RCODE12');
    assert.equal(rcodeName(4095), 'RCODE4095');
    assert.equal(opcodeName(3), 'OPCODE3');
    assert.equal(qtypeName(70000), 'TYPE70000', 'out of range still prints');
  });

  test('classes, rcodes, opcodes', () => {
    assert.deepEqual([1, 2, 3, 4, 254, 255].map(qclassName), ['IN', 'CS', 'CH', 'HS', 'NONE', 'ANY']);
    const rcodes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23].map(rcodeName);
    assert.deepEqual(rcodes, [
      'NOERROR',
      'FORMERR',
      'SERVFAIL',
      'NXDOMAIN',
      'NOTIMP',
      'REFUSED',
      'YXDOMAIN',
      'YXRRSET',
      'NXRRSET',
      'NOTAUTH',
      'NOTZONE',
      'DSOTYPENI',
      'BADVERS',
      'BADKEY',
      'BADTIME',
      'BADMODE',
      'BADNAME',
      'BADALG',
      'BADTRUNC',
      'BADCOOKIE',
    ]);
    assert.deepEqual([0, 1, 2, 4, 5, 6].map(opcodeName), [
      'QUERY',
      'IQUERY',
      'STATUS',
      'NOTIFY',
      'UPDATE',
      'DSO',
    ]);
    assert.ok(OPCODES_TABLE.isKnown(4) && !OPCODES_TABLE.isKnown(3));
  });

  test('bytes equal the strings and are cached (one Buffer per value)', () => {
    for (const n of [1, 28, 65534, 0]) {
      assert.equal(qtypeBytes(n).toString('latin1'), qtypeName(n));
      assert.equal(qtypeBytes(n), qtypeBytes(n));
    }
    assert.equal(qclassBytes(1).toString(), 'IN');
    assert.equal(rcodeBytes(3).toString(), 'NXDOMAIN');
    assert.equal(rcodeBytes(3), rcodeBytes(3));
    assert.equal(qtypeName(65534), qtypeName(65534));
  });
});

function ecsView(family: number, source: number, address: number[]): DnsView {
  const v = new DnsView();
  v.hasEcs = true;
  v.ecsFamily = family;
  v.ecsSourcePrefix = source;
  v.ecsAddress.fill(0);
  Buffer.from(address).copy(v.ecsAddress);
  return v;
}

/** Reference IPv6 text: the WHATWG URL host serializer (RFC 5952 without mixed notation). */
function urlIpv6(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16).padStart(4, '0'));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

describe('ECS text', () => {
  test('IPv4', () => {
    assert.equal(ecsText(ecsView(1, 24, [192, 0, 2])), '192.0.2.0/24');
    assert.equal(ecsText(ecsView(1, 32, [255, 255, 255, 255])), '255.255.255.255/32');
    assert.equal(ecsText(ecsView(1, 0, [])), '0.0.0.0/0');
    assert.equal(ecsText(ecsView(1, 9, [10, 128])), '10.128.0.0/9');
  });

  test('IPv6 canonical forms (RFC 5952)', () => {
    const cases: [number[], number, string][] = [
      [[0x20, 0x01, 0x0d, 0xb8], 32, '2001:db8::/32'],
      [[], 0, '::/0'],
      [[...Array(15).fill(0), 1], 128, '::1/128'],
      [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], 128, '2001:db8:0:1::1/128'],
      [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], 128, '2001:db8::1:0:0:1/128'],
      [[0x20, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], 128, '2001::1:0:0:1/128'],
      [[0xff, 0xff, 0, 1, ...Array(12).fill(0xff)], 128, 'ffff:1:ffff:ffff:ffff:ffff:ffff:ffff/128'],
      [[...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1], 128, '::ffff:192.0.2.1/128'],
    ];
    for (const [addr, source, expected] of cases) assert.equal(ecsText(ecsView(2, source, addr)), expected);
    assert.equal(ecsText(ecsView(2, 128, Array(16).fill(0xff))).length, ECS_TEXT_MAX_LENGTH);
  });

  test('10k random IPv6 addresses agree with the URL serializer', () => {
    const rand = prng(12345);
    const next = () => randInt(rand, 256);
    for (let i = 0; i < 10_000; i++) {
      // Bias towards zero groups so that runs of every length and position occur.
      const bytes: number[] = [];
      for (let g = 0; g < 8; g++) {
        const zero = next() < 128;
        bytes.push(zero ? 0 : next(), zero ? 0 : next());
      }
      const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
      if (mapped) continue;
      assert.equal(ecsText(ecsView(2, 128, bytes)), `${urlIpv6(bytes)}/128`);
    }
  });

  test('writes into a buffer at an offset and returns the end', () => {
    const dst = Buffer.alloc(60, 0x2a);
    const end = writeEcsText(ecsView(1, 24, [198, 51, 100]), dst, 5);
    assert.equal(dst.toString('latin1', 5, end), '198.51.100.0/24');
    assert.equal(dst[4], 0x2a);
    assert.equal(dst[end], 0x2a);
  });
});
