// The columns appended after enricher_id (issue 9 step 4), as rows: frames built with the
// test-only byte builders go through the real RecordPipeline, the chunk is read back with
// fast-csv. Fidelity on real captures against the reference decoders is in
// test/interop/convert-fidelity.test.ts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { EnricherMetrics } from '../../enricher/metrics';
import { COLUMNS } from '../../enricher/output/csv';
import { unescapeText } from '../../enricher/output/text-escape';
import { OUTSIDE_TEXT_MAX_BYTES } from '../../enricher/pipeline/dns-columns';
import {
  DnsTrafficCounters,
  MESSAGE_TYPE_LABELS,
  QTYPE_INDEX,
  QTYPE_LABELS,
  RCODE_INDEX,
  RCODE_LABELS,
} from '../../enricher/pipeline/dns-traffic';
import { QTYPES, RCODES_TABLE } from '../../proto/dns/index';
import { dnstapFrame, encodeChunk, type FrameSpec } from '../support/chunk-builder';
import { DnsBuilder } from '../support/dns-builder';
import { parseCsvText } from '../support/output-rows';

async function rowsOf(frames: FrameSpec[], encoder = {}) {
  const { chunk, pipeline } = encodeChunk(frames.map(dnstapFrame), { encoder });
  const text = chunk.toString('utf8');
  assert.ok(text.startsWith(`${COLUMNS.join(',')}\r\n`));
  return { rows: await parseCsvText(text), text, pipeline };
}

/** Wire-format name bytes of dotted text (plain labels only). */
const wire = (name: string) => new DnsBuilder().dotted(name).build();

/** The raw CSV field text of column `c` in data row `r` (0-based), quotes and all. */
function rawField(text: string, r: number, c: string): string {
  const line = text.split('\r\n')[r + 1]!;
  const fields: string[] = [];
  let cur = '';
  let q = false;
  for (const ch of line) {
    if (ch === '"') q = !q;
    if (ch === ',' && !q) {
      fields.push(cur);
      cur = '';
    } else cur += ch;
  }
  fields.push(cur);
  return fields[COLUMNS.indexOf(c as (typeof COLUMNS)[number])]!;
}

describe('flags, opcode, EDNS', () => {
  test('flags as words in dig order, "" when none, empty without a header; opcode mnemonic', async () => {
    const { rows, text } = await rowsOf([
      { type: 6, qname: ['a'], flags: 0x0400 | 0x0100 | 0x0080 | 0x0020 },
      { type: 5, qname: ['a'] }, // a query with no flag at all
      { type: 5, qname: ['a'], opcode: 4, flags: 0x0200 | 0x0010 },
      { type: 5, rawDns: Buffer.from([1, 2, 3]) }, // no header
      { type: 5, opcode: 3, qname: ['a'] },
    ]);
    assert.deepEqual(
      rows.map((r) => [r.flags, r.opcode]),
      [
        ['qr aa rd ra ad', 'QUERY'],
        ['', 'QUERY'],
        ['tc cd', 'NOTIFY'],
        ['', ''],
        ['', 'OPCODE3'],
      ],
    );
    assert.equal(rawField(text, 1, 'flags'), '""', 'no flag set: present, empty');
    assert.equal(rawField(text, 3, 'flags'), '', 'no header: NULL');
  });

  test('edns_udp_size and edns_do only with an OPT RR', async () => {
    const { rows } = await rowsOf([
      { qname: ['a'], edns: { udpSize: 1232, dnssecOk: true } },
      { qname: ['a'], edns: { udpSize: 4096 } },
      { qname: ['a'] },
    ]);
    assert.deepEqual(
      rows.map((r) => [r.edns_udp_size, r.edns_do]),
      [
        ['1232', 'true'],
        ['4096', 'false'],
        ['', ''],
      ],
    );
  });
});

describe('answers', () => {
  test('compact text in wire order, quoted when it holds a comma, quote or backslash', async () => {
    const answers = dnsPacket
      .encode({
        type: 'response',
        answers: [
          { type: 'CNAME', name: 'www.example.com', data: 'a,b.example.net' },
          { type: 'A', name: 'a,b.example.net', data: '192.0.2.7' },
          { type: 'TXT', name: 'a,b.example.net', data: ['say "hi"'] },
        ],
      })
      .subarray(12);
    const { rows, pipeline } = await rowsOf([
      { type: 6, qname: ['www', 'example', 'com'], answers: { count: 3, bytes: answers } },
      { type: 6, qname: ['www'] },
    ]);
    assert.equal(rows[0]!.answers, 'CNAME a,b.example.net;A 192.0.2.7;TXT "say \\"hi\\""');
    assert.equal(rows[0]!.answer_count, '3');
    assert.equal(rows[1]!.answers, '');
    assert.equal(pipeline.counters.truncated.answers, 0);
  });

  test('a long answer section is cut with "..." and counted in truncated.answers', async () => {
    const list: dnsPacket.Answer[] = [];
    for (let i = 0; i < 120; i++)
      list.push({ type: 'AAAA', name: 'm.example', data: `2001:db8::${i.toString(16)}` });
    const bytes = dnsPacket.encode({ type: 'response', answers: list }).subarray(12);
    const { rows, pipeline } = await rowsOf([
      { type: 6, qname: ['m', 'example'], answers: { count: 120, bytes } },
    ]);
    const a = rows[0]!.answers!;
    assert.ok(a.length <= 1024 && a.endsWith(';...'), a.slice(-40));
    assert.equal(pipeline.counters.truncated.answers, 1);
  });
});

describe('dnstap policy and query_zone', () => {
  test('RPZ QNAME rule: type, rule and value as names, action and match by name', async () => {
    const { rows } = await rowsOf([
      {
        type: 6,
        qname: ['bad', 'example'],
        policy: {
          type: 'RPZ',
          rule: wire('bad.example.rpz.local'),
          action: 1,
          match: 1,
          value: wire('Bad.Example'),
        },
        queryZone: wire('Example'),
      },
    ]);
    const r = rows[0]!;
    assert.deepEqual(
      [
        r.dnstap_policy_type,
        r.dnstap_policy_rule,
        r.dnstap_policy_action,
        r.dnstap_policy_match,
        r.dnstap_policy_value,
        r.query_zone,
      ],
      ['RPZ', 'bad.example.rpz.local', 'NXDOMAIN', 'QNAME', 'bad.example', 'example'],
    );
  });

  test('addresses for *_IP matches, unknown enums as numbers, non-names as Snowtap text, absent as NULL', async () => {
    const { rows, pipeline } = await rowsOf([
      { qname: ['a'], policy: { action: 6, match: 3, value: Buffer.from([198, 51, 100, 9]) } },
      { qname: ['a'], policy: { action: 99, match: 5, value: Buffer.alloc(16, 0).fill(1, 15) } },
      {
        qname: ['a'],
        policy: { type: Buffer.from([0x52, 0xff, 0x0a]), rule: Buffer.from('not a name'), match: 2 },
      },
      {
        qname: ['a'],
        policy: { type: Buffer.alloc(OUTSIDE_TEXT_MAX_BYTES + 10, 0x61) },
        queryZone: Buffer.from([3, 0x61]),
      },
      { qname: ['a'] },
    ]);
    assert.deepEqual(
      rows.map((r) => [r.dnstap_policy_action, r.dnstap_policy_match, r.dnstap_policy_value]),
      [
        ['LOCAL_DATA', 'RESPONSE_IP', '198.51.100.9'],
        ['99', 'NS_IP', '::1'],
        ['', 'CLIENT_IP', ''],
        ['', '', ''],
        ['', '', ''],
      ],
    );
    assert.ok(unescapeText(rows[2]!.dnstap_policy_type!).equals(Buffer.from([0x52, 0xff, 0x0a])));
    assert.equal(rows[2]!.dnstap_policy_rule, 'not a name');
    assert.equal(rows[3]!.dnstap_policy_type, 'a'.repeat(OUTSIDE_TEXT_MAX_BYTES));
    assert.equal(rows[3]!.query_zone, '\\x03a', 'a zone that is not a whole wire name: Snowtap text');
    assert.equal(pipeline.counters.truncated.dnstap_policy_type, 1);
  });
});

describe('DNS traffic metrics (bounded labels)', () => {
  test('responses by rcode, queries by message type and qtype class; other values as "other"', async () => {
    const { pipeline } = await rowsOf([
      { type: 6, qname: ['a'], rcode: 3 },
      { type: 6, qname: ['a'], rcode: 3 },
      { type: 2, qname: ['a'], rcode: 0 },
      { type: 4, qname: ['a'], rcode: 14 }, // unassigned -> other
      { type: 5, qname: ['a'], qtype: 28 },
      { type: 5, qname: ['a'], qtype: 65 },
      { type: 3, qname: ['a'], qtype: 1 },
      { type: 11, qname: ['a'], qtype: 4242 }, // unknown type -> other
      { type: 77, qname: ['a'], qtype: 1 }, // unknown message type (odd: a query) -> other
      { type: 6 }, // no DNS message: not counted
    ]);
    const t = pipeline.counters.traffic;
    assert.deepEqual(t.responseSeries(), [
      [{ rcode: 'NOERROR' }, 1],
      [{ rcode: 'NXDOMAIN' }, 2],
      [{ rcode: 'other' }, 1],
    ]);
    assert.deepEqual(t.querySeries(), [
      [{ message_type: 'RESOLVER_QUERY', qtype: 'A' }, 1],
      [{ message_type: 'CLIENT_QUERY', qtype: 'AAAA' }, 1],
      [{ message_type: 'CLIENT_QUERY', qtype: 'HTTPS' }, 1],
      [{ message_type: 'TOOL_QUERY', qtype: 'other' }, 1],
      [{ message_type: 'other', qtype: 'A' }, 1],
    ]);
    const metrics = new EnricherMetrics({
      pipeline: () => pipeline.counters,
      link: () => null,
      writer: () => null,
      dnstap: () => null,
      policy: () => null,
      ready: () => true,
      draining: () => false,
    });
    const text = await metrics.registry.metrics();
    assert.match(text, /^snowtap_enricher_dns_responses_total\{rcode="NXDOMAIN"\} 2$/m);
    assert.match(
      text,
      /^snowtap_enricher_dns_queries_total\{message_type="CLIENT_QUERY",qtype="HTTPS"\} 1$/m,
    );
    assert.match(text, /^snowtap_enricher_fields_truncated_total\{column="answers"\} 0$/m);
  });

  test('every registered qtype and rcode, and only those, maps to its own label', () => {
    // Exhaustively, against the tables' own names: 65536 qtypes, 4096 rcodes.
    const other = (labels: readonly string[]) => labels.indexOf('other');
    for (let q = 0; q < 65536; q++) {
      const i = QTYPE_LABELS.indexOf(QTYPES.name(q));
      const want = QTYPES.isKnown(q) && i >= 0 ? i : other(QTYPE_LABELS);
      assert.equal(QTYPE_INDEX[q], want, `qtype ${q} (${QTYPES.name(q)})`);
    }
    for (let r = 0; r < 4096; r++) {
      const i = RCODE_LABELS.indexOf(RCODES_TABLE.name(r));
      const want = RCODES_TABLE.isKnown(r) && i >= 0 ? i : other(RCODE_LABELS);
      assert.equal(RCODE_INDEX[r], want, `rcode ${r} (${RCODES_TABLE.name(r)})`);
    }
    assert.equal(QTYPE_LABELS[QTYPE_INDEX[65]!], 'HTTPS');
    assert.equal(QTYPE_LABELS[QTYPE_INDEX[252]!], 'AXFR');
    assert.equal(QTYPE_LABELS[QTYPE_INDEX[999]!], 'other');
    assert.equal(RCODE_LABELS[RCODE_INDEX[16]!], 'BADVERS');
    assert.equal(RCODE_LABELS[RCODE_INDEX[23]!], 'BADCOOKIE');
  });

  test('label sets are bounded: at most 14 rcodes and 15 x 19 query series whatever the input', () => {
    const t = new DnsTrafficCounters();
    for (let r = 0; r < 4096; r++) t.countResponse(r);
    for (let m = 0; m < 40; m++) for (let q = 0; q < 65536; q += 7) t.countQuery(m, q);
    assert.equal(t.responseSeries().length, RCODE_LABELS.length);
    assert.ok(t.querySeries().length <= MESSAGE_TYPE_LABELS.length * QTYPE_LABELS.length);
  });
});
