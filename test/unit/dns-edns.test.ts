// EDNS (RFC 6891) and Client Subnet (RFC 7871) in parseDnsMessage: the extended RCODE,
// valid IPv4/IPv6 ECS options, and every way an OPT RR or an ECS option can be malformed.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DnsView, ecsText, parseDnsMessage, tryParseDnsMessage } from '../../proto/dns';
import { DnsBuilder, ecsOption } from '../support/dns-builder';

function parse(msg: Buffer): DnsView {
  const view = new DnsView();
  parseDnsMessage(msg, 0, msg.length, view);
  return view;
}

function codeOf(msg: Buffer): string | null {
  return tryParseDnsMessage(msg, 0, msg.length, new DnsView());
}

describe('EDNS', () => {
  const withOpt = (o: Parameters<DnsBuilder['opt']>[0], rcode = 0) =>
    new DnsBuilder().header({ qr: true, rcode, qdcount: 1, arcount: 1 }).question('x.test').opt(o).build();

  test('extended RCODE BADVERS (16) and BADCOOKIE (23)', () => {
    assert.equal(parse(withOpt({ extRcode: 1 }, 0)).rcode, 16);
    assert.equal(parse(withOpt({ extRcode: 1 }, 7)).rcode, 23);
    assert.equal(parse(withOpt({ extRcode: 0xff }, 0xf)).rcode, 4095);
  });

  test('an IPv4 ECS', () => {
    const v = parse(withOpt({ options: [ecsOption(1, 24, 0, [192, 0, 2])] }));
    assert.deepEqual([v.hasEcs, v.ecsFamily, v.ecsSourcePrefix, v.ecsScopePrefix], [true, 1, 24, 0]);
    assert.deepEqual([...v.ecsAddress], [192, 0, 2, ...Array(13).fill(0)]);
    assert.equal(ecsText(v), '192.0.2.0/24');
  });

  test('ECS with source prefix 0 has no address bytes', () => {
    const v = parse(withOpt({ options: [ecsOption(2, 0, 0, [])] }));
    assert.equal(ecsText(v), '::/0');
  });

  const bad: [string, ReturnType<typeof ecsOption>][] = [
    ['family 0', ecsOption(0, 0, 0, [])],
    ['family 3', ecsOption(3, 8, 0, [10])],
    ['IPv4 source prefix 33', ecsOption(1, 33, 0, [1, 2, 3, 4, 5])],
    ['IPv6 source prefix 129', ecsOption(2, 129, 0, Array(17).fill(0))],
    ['IPv4 scope prefix 33', ecsOption(1, 24, 33, [1, 2, 3])],
    ['too many address bytes', ecsOption(1, 24, 0, [192, 0, 2, 0])],
    ['too few address bytes', ecsOption(1, 24, 0, [192, 0])],
    ['address bits set past the source prefix', ecsOption(1, 23, 0, [192, 0, 3])],
    ['shorter than the fixed part', { code: 8, data: [0, 1, 24] }],
  ];
  for (const [title, option] of bad) {
    test(`a bad ECS (${title}) is DNS_BAD_OPT`, () =>
      assert.equal(codeOf(withOpt({ options: [option] })), 'DNS_BAD_OPT'));
  }

  test('two ECS options, two OPT RRs, a non-root OPT owner are DNS_BAD_OPT', () => {
    const ecs = ecsOption(1, 8, 0, [10]);
    assert.equal(codeOf(withOpt({ options: [ecs, ecs] })), 'DNS_BAD_OPT');
    const twoOpts = new DnsBuilder().header({ arcount: 2 }).opt().opt().build();
    assert.equal(codeOf(twoOpts), 'DNS_BAD_OPT');
    const named = new DnsBuilder().header({ arcount: 1 }).name(['x']).u16(41).u16(512).u32(0).u16(0).build();
    assert.equal(codeOf(named), 'DNS_BAD_OPT');
  });

  test('an option overrunning the OPT RDATA is DNS_BAD_OPT; RDATA overrunning the message is DNS_TRUNCATED', () => {
    const overrun = new DnsBuilder()
      .header({ arcount: 1 })
      .u8(0)
      .u16(41)
      .u16(512)
      .u32(0)
      .u16(6)
      .raw([0, 8, 0, 9, 0, 1])
      .build();
    assert.equal(codeOf(overrun), 'DNS_BAD_OPT');
    const short = new DnsBuilder()
      .header({ arcount: 1 })
      .u8(0)
      .u16(41)
      .u16(512)
      .u32(0)
      .u16(3)
      .raw([0, 8, 0])
      .build();
    assert.equal(codeOf(short), 'DNS_BAD_OPT');
    const beyond = new DnsBuilder()
      .header({ arcount: 1 })
      .u8(0)
      .u16(41)
      .u16(512)
      .u32(0)
      .u16(8)
      .raw([0, 8])
      .build();
    assert.equal(codeOf(beyond), 'DNS_TRUNCATED');
  });
});

test('a reused view: the ECS of one message does not linger into the next', () => {
  const withEcs = new DnsBuilder()
    .header({ qr: true, qdcount: 1, arcount: 1 })
    .question('x.test')
    .opt({ options: [ecsOption(2, 56, 0, [0x20, 1, 0xd, 0xb8, 0, 0, 1])] })
    .build();
  const without = new DnsBuilder().header({ qr: true, qdcount: 1 }).question('x.test').build();
  const view = new DnsView();
  parseDnsMessage(withEcs, 0, withEcs.length, view);
  assert.equal(view.hasEcs, true);
  parseDnsMessage(without, 0, without.length, view);
  assert.deepEqual(
    [view.hasEcs, view.ecsFamily, view.ecsSourcePrefix, view.ecsScopePrefix, view.ecsOptionOff],
    [false, 0, 0, 0, -1],
  );
  assert.deepEqual([...view.ecsAddress], Array(16).fill(0));
});
