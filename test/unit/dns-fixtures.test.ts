// Every DNS message in every fixture capture (real unbound, bind, knot, kresd, dnsdist, pdns
// traffic), parsed by us and, independently, by the dns-packet npm package: the fields we
// output must agree. Then every byte-length truncation of every message must fail cleanly.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import {
  DnsView,
  ecsText,
  nameToString,
  parseDnsMessage,
  qclassName,
  qtypeName,
  rcodeName,
  tryParseDnsMessage,
} from '../../proto/dns';
import { unescapePresentation } from '../support/dns-builder';
import { allFixtureMessages, type FixtureMessage, fixtureFiles } from '../support/fixture-messages';

interface PacketOption {
  code: number;
  family?: number;
  sourcePrefixLength?: number;
  scopePrefixLength?: number;
  ip?: string;
}

interface PacketOpt {
  type: string;
  extendedRcode?: number;
  options?: PacketOption[];
}

/** The question name's labels straight from the wire (the first qname is never compressed). */
function wireLabels(wire: Buffer): Buffer[] {
  const labels: Buffer[] = [];
  let pos = 12;
  while (wire[pos] !== 0) {
    labels.push(wire.subarray(pos + 1, pos + 1 + wire[pos]));
    pos += 1 + wire[pos];
  }
  return labels;
}

const lowerAscii = (b: Buffer) => Buffer.from(b.map((c) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c)));

let messages: FixtureMessage[] = [];
before(() => {
  messages = allFixtureMessages();
});

describe('fixtures', () => {
  test('every fixture file yields DNS messages', () => {
    const files = new Set(messages.map((m) => m.file));
    assert.equal(files.size, fixtureFiles().length);
    assert.ok(messages.length > 10_000, `${messages.length} messages`);
  });

  test('every message agrees with dns-packet', () => {
    const view = new DnsView();
    let ecsSeen = 0;
    let optSeen = 0;
    for (const m of messages) {
      const where = `${m.file} frame ${m.frame} ${m.field}`;
      parseDnsMessage(m.wire, 0, m.wire.length, view);
      const p = dnsPacket.decode(m.wire);
      assert.equal(view.id, p.id, where);
      assert.equal(view.isResponse, p.type === 'response', where);
      assert.equal(view.opcode, (p.flags! >> 11) & 0xf, where);
      assert.equal(rcodeName(view.rcode & 0xf), (p as { rcode?: string }).rcode, where);
      assert.equal(view.size, m.wire.length, where);
      assert.equal(view.ancount, p.answers!.length, where);
      assert.equal(view.hasQuestion, p.questions!.length > 0, where);
      if (view.hasQuestion) {
        const q = p.questions![0];
        const text = nameToString(view);
        const labels = wireLabels(m.wire);
        if (labels.every((l) => /^[A-Za-z0-9_*-]+$/.test(l.toString('latin1')))) {
          assert.equal(text, q.name.toLowerCase(), where);
        } else {
          // Escaped names: undo our escapes and compare with the wire labels.
          assert.deepEqual(unescapePresentation(text), labels.map(lowerAscii), where);
        }
        assert.equal(view.labelCount, labels.length, where);
        const type = q.type as string;
        assert.equal(
          qtypeName(view.qtype),
          type.startsWith('UNKNOWN_') ? `TYPE${type.slice(8)}` : type,
          where,
        );
        assert.equal(qclassName(view.qclass), q.class, where);
      }
      const opt = (p.additionals as PacketOpt[]).find((a) => a.type === 'OPT');
      assert.equal(view.hasOpt, opt !== undefined, where);
      if (opt) {
        optSeen++;
        assert.equal(view.rcode >> 4, opt.extendedRcode, where);
        const ecs = opt.options?.find((o) => o.code === 8);
        assert.equal(view.hasEcs, ecs !== undefined, where);
        if (ecs) {
          ecsSeen++;
          assert.deepEqual(
            [view.ecsFamily, view.ecsSourcePrefix, view.ecsScopePrefix],
            [ecs.family, ecs.sourcePrefixLength, ecs.scopePrefixLength],
            where,
          );
          if (ecs.family === 1) assert.equal(ecsText(view), `${ecs.ip}/${ecs.sourcePrefixLength}`, where);
        }
      }
    }
    assert.ok(optSeen > 0 && ecsSeen > 0, `OPT ${optSeen}, ECS ${ecsSeen}`);
  });

  test('the escaped names in the captures print exactly like miekg/dns (lower-cased, no trailing dot)', () => {
    const view = new DnsView();
    const names = new Set<string>();
    for (const m of messages) {
      parseDnsMessage(m.wire, 0, m.wire.length, view);
      if (view.hasQuestion) names.add(nameToString(view));
    }
    for (const expected of [
      'www.tap.test',
      'dot\\.inside.w.tap.test',
      'sp\\ ace.w.tap.test',
      'q\\"uote,comma.w.tap.test',
      'back\\\\slash.w.tap.test',
      '\\000nul\\255.w.tap.test',
      '\\195\\169t\\195\\169.w.tap.test',
    ]) {
      assert.ok(names.has(expected), expected);
    }
  });

  test('every byte-length truncation of every message fails with a truncation error', () => {
    const view = new DnsView();
    let checked = 0;
    for (const m of messages) {
      const full = m.wire.length;
      for (let end = 0; end < full; end++) {
        const code = tryParseDnsMessage(m.wire, 0, end, view);
        if (code !== (end < 12 ? 'DNS_TRUNCATED_HEADER' : 'DNS_TRUNCATED')) {
          assert.fail(`${m.file} frame ${m.frame} ${m.field} cut at ${end}/${full}: ${code}`);
        }
        checked++;
      }
    }
    assert.ok(checked > 1_000_000, `${checked} truncations`);
  });

  test('truncations keep the header and the question when they were complete', () => {
    const view = new DnsView();
    const full = new DnsView();
    for (const m of messages.filter((_, i) => i % 50 === 0)) {
      parseDnsMessage(m.wire, 0, m.wire.length, full);
      const questionEnd = 12 + wireLabels(m.wire).reduce((n, l) => n + l.length + 1, 1) + 4;
      for (let end = 12; end < m.wire.length; end++) {
        tryParseDnsMessage(m.wire, 0, end, view);
        assert.equal(view.id, full.id);
        assert.equal(view.ancount, full.ancount);
        assert.equal(
          view.hasQuestion,
          full.hasQuestion && end >= questionEnd,
          `${m.file} ${m.frame} at ${end}`,
        );
        if (view.hasQuestion) assert.equal(nameToString(view), nameToString(full));
      }
    }
  });
});
