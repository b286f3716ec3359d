// Every text column, fuzzed, must load into Snowflake unchanged and without a rejected row under
// two option sets (issue 8):
//   (A) the shipped file format, read from sql/schema/02-file-format.sql;
//   (B) TYPE = CSV, SKIP_HEADER = 1, FIELD_OPTIONALLY_ENCLOSED_BY = '"', all else Snowflake's
//       defaults (ESCAPE_UNENCLOSED_FIELD = '\\', NULL_IF = ('\\N'), ...: see
//       test/support/snowflake-csv.ts for the documented defaults).
// "Unchanged" = the same values as a strict RFC 4180 reading of the file (our declared dialect:
// an unquoted empty field is NULL, "" is an empty string), cross-checked with fast-csv; plus,
// for the columns fed from outside, a lossless round trip back to the original bytes.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { EnricherMetrics } from '../../enricher/metrics';
import { COLUMN_COUNT, COLUMN_TYPES, COLUMNS } from '../../enricher/output/csv';
import { escapeTextBytes, escapeTextString, unescapeText } from '../../enricher/output/text-escape';
import { RowSource } from '../../enricher/pipeline/row-encoder';
import { loadPolicyBytes } from '../../enricher/policy/index';
import { dnstapFrame, encodeChunk } from '../support/chunk-builder';
import { DnsBuilder, ecsOption, unescapePresentation } from '../support/dns-builder';
import { parseCsvText } from '../support/output-rows';
import {
  castField,
  OPTION_SET_B,
  optionsFromFileFormat,
  parseTimestamp,
  readSnowflakeCsv,
  SNOWFLAKE_CSV_DEFAULTS,
  type SnowflakeCsvOptions,
} from '../support/snowflake-csv';
import { findStatement, parseFileFormat, readSqlTree } from '../support/snowflake-sql';

const SQL_DIR = path.join(__dirname, '..', '..', '..', 'sql');

function shippedFormat(): SnowflakeCsvOptions {
  const [ff, ...more] = findStatement(readSqlTree(SQL_DIR), /^CREATE (OR ALTER )?FILE FORMAT SNOWTAP_CSV\b/i);
  assert.ok(ff !== undefined && more.length === 0, 'exactly one SNOWTAP_CSV file format in sql/');
  return optionsFromFileFormat(parseFileFormat(ff.text).options);
}

/** Our declared dialect, strictly: RFC 4180 enclosure, no escapes, no NULL strings. */
const RFC4180: SnowflakeCsvOptions = {
  ...SNOWFLAKE_CSV_DEFAULTS,
  recordDelimiter: '\r\n',
  skipHeader: 1,
  fieldOptionallyEnclosedBy: '"',
  escapeUnenclosedField: null,
  nullIf: [],
};

const OPTION_SETS: [string, () => SnowflakeCsvOptions][] = [
  ['A (shipped file format)', shippedFormat],
  ['B (defaults + SKIP_HEADER = 1 + FIELD_OPTIONALLY_ENCLOSED_BY)', () => OPTION_SET_B],
];

/** Byte strings every text column is fed: each byte, invalid UTF-8, NULL markers, quotes, CR/LF, BOM, NUL. */
function fuzzBytes(): Buffer[] {
  const out: Buffer[] = [];
  for (let b = 0; b < 256; b++) out.push(Buffer.from([b]), Buffer.from([0x61, b, 0x7a]));
  for (const s of [
    '\\N',
    'NULL',
    'null',
    '\\\\N',
    '"',
    '""',
    '"a,b"',
    'a"b',
    ',',
    '\r',
    '\n',
    '\r\n',
    '\0',
    'a\0b',
  ])
    out.push(Buffer.from(s, 'utf8'));
  for (const s of ['\ufeff', '\ufeffbom', 'é', '日本', '😀', '\\', '\\.', '\\065', ' lead', 'trail ', '\t'])
    out.push(Buffer.from(s, 'utf8'));
  // Invalid UTF-8: lone continuation, overlong, surrogate, above U+10FFFF, truncated, stray lead bytes.
  for (const b of [
    [0x80],
    [0xc0, 0x80],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xe2, 0x82],
    [0xff, 0xfe],
  ])
    out.push(Buffer.from(b));
  out.push(Buffer.alloc(0));
  // Seeded random mixes of the nasty bytes.
  const nasty = [0x00, 0x0a, 0x0d, 0x22, 0x2c, 0x5c, 0x4e, 0x80, 0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff, 0x61];
  let x = 12345;
  for (let i = 0; i < 300; i++) {
    const len = 1 + (i % 24);
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k++) {
      x = (x * 1103515245 + 12345) >>> 0;
      b[k] = nasty[x % nasty.length]!;
    }
    out.push(b);
  }
  return out;
}

/** JavaScript strings for the JSON-fed columns: every code unit 0-255, lone surrogates, the byte strings as UTF-8 text. */
function fuzzStrings(): string[] {
  const out = new Set<string>();
  for (let c = 0; c < 256; c++) out.add(String.fromCharCode(c)).add(`a${String.fromCharCode(c)}z`);
  for (const b of fuzzBytes()) out.add(b.toString('utf8')).add(b.toString('latin1'));
  for (const s of ['\ud800', 'a\udfffb', '\udc00\ud800', '😀\ud83d']) out.add(s);
  out.delete('');
  return [...out];
}

/** WTF-8: UTF-8 that encodes a lone surrogate as its 3-byte form (what unescapeText returns). */
function wtf8(s: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (c >= 0xd800 && c <= 0xdfff && !pair)
      parts.push(Buffer.from([0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]));
    else {
      parts.push(Buffer.from(s.slice(i, pair ? i + 2 : i + 1), 'utf8'));
      if (pair) i++;
    }
  }
  return Buffer.concat(parts);
}

const col = (name: string) => COLUMNS.indexOf(name as (typeof COLUMNS)[number]);
const T0 = 1_795_000_000;

/**
 * Reads `chunk` under the reference dialect and under each option set; asserts no rejected row,
 * identical values, every typed field inside its type; returns the reference rows.
 */
async function assertLoadsUnchanged(chunk: Buffer): Promise<(string | null)[][]> {
  assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(chunk), 'chunk is valid UTF-8');
  const ref = readSnowflakeCsv(chunk, { ...RFC4180, errorOnColumnCountMismatch: true }, COLUMN_COUNT);
  assert.deepEqual(ref.rejected, []);
  // The reference reading agrees with fast-csv (which cannot tell NULL from "").
  const fast = await parseCsvText(chunk.toString('utf8'));
  assert.deepEqual(
    fast.map((r) => COLUMNS.map((c) => r[c])),
    ref.rows.map((r) => r.map((v) => v ?? '')),
  );
  for (const [name, set] of OPTION_SETS) {
    const o = set();
    const got = readSnowflakeCsv(chunk, { ...o, errorOnColumnCountMismatch: true }, COLUMN_COUNT);
    assert.deepEqual(got.rejected, [], `${name}: no rejected rows`);
    assert.equal(got.rows.length, ref.rows.length, name);
    for (let r = 0; r < ref.rows.length; r++) {
      assert.deepEqual(got.rows[r], ref.rows[r], `${name}: row ${r} unchanged`);
      for (let c = 0; c < COLUMN_COUNT; c++) {
        const v = castField(got.rows[r]![c]!, COLUMN_TYPES[COLUMNS[c]!].snowflake, o);
        assert.ok(
          !(v instanceof Error),
          `${name}: row ${r} ${COLUMNS[c]}: ${v instanceof Error ? v.message : ''}`,
        );
      }
    }
  }
  return ref.rows;
}

describe('Snowtap text escaping', () => {
  test('bytes: every input round-trips, the output is printable UTF-8 and never exactly \\N', () => {
    for (const b of fuzzBytes()) {
      const s = escapeTextBytes(b);
      assert.ok(unescapeText(s).equals(b), JSON.stringify(s));
      assert.ok(!/[\x00-\x1f\x7f\ufffd]/.test(s), JSON.stringify(s));
      assert.notEqual(s, '\\N');
    }
    assert.equal(escapeTextBytes(Buffer.from([0x61, 0xff, 0x5c, 0x0a])), 'a\\xff\\\\\\x0a');
    assert.equal(escapeTextBytes(Buffer.from('café', 'utf8')), 'café');
  });

  test('strings: every input round-trips to its WTF-8 bytes, lone surrogates as \\uHHHH', () => {
    for (const s of fuzzStrings())
      assert.ok(unescapeText(escapeTextString(s)).equals(wtf8(s)), JSON.stringify(s));
    assert.equal(escapeTextString('a\ud800'), 'a\\ud800');
    assert.equal(escapeTextString('\\N'), '\\\\N');
  });
});

describe('option sets A and B: every text column loads unchanged', () => {
  test('identity (raw dnstap bytes) under A and B, lossless', async () => {
    const inputs = fuzzBytes();
    const frames = inputs.map((identity, i) =>
      dnstapFrame({ identity, queryTime: [T0 + i, 0], qname: ['x'] }),
    );
    const rows = await assertLoadsUnchanged(encodeChunk(frames).chunk);
    rows.forEach((r, i) => {
      const loaded = r[col('identity')]!;
      assert.ok(unescapeText(loaded ?? '').equals(inputs[i]!), `identity ${i}: ${JSON.stringify(loaded)}`);
    });
  });

  test('qname (every byte in a label), qtype, qclass, rcode, dns_id under A and B', async () => {
    const labels: Buffer[][] = [];
    for (let b = 0; b < 256; b++) labels.push([Buffer.from([b]), Buffer.from([0x61, b])]);
    labels.push([Buffer.from('\\'), Buffer.from('.')], [Buffer.from('"quoted"'), Buffer.from('a,b')], []);
    const frames = labels.map((qname, i) =>
      dnstapFrame({ qname, qtype: (i * 257) & 0xffff, qclass: i * 13, rcode: i & 0xf, dnsId: i * 251 }),
    );
    const rows = await assertLoadsUnchanged(encodeChunk(frames).chunk);
    // Names are lower-cased (A-Z only): compare the wire labels byte-wise after the same folding.
    const fold = (l: Buffer) => Buffer.from([...l].map((b) => (b >= 0x41 && b <= 0x5a ? b + 32 : b)));
    rows.forEach((r, i) => {
      const got = unescapePresentation(r[col('qname')]!);
      assert.deepEqual(
        got.map((l) => l.toString('hex')),
        labels[i]!.map((l) => fold(l).toString('hex')),
        `qname ${i}: ${r[col('qname')]}`,
      );
    });
  });

  test('policy category, action, tenant (a user JSON) and matched_domain under A and B, lossless', async () => {
    const strings = fuzzStrings();
    const suffixes = ['a\\.b', 'x\\\\y', 'q\\"r', 'c\\,d', '\\000\\255', 'semi\\;colon', 'plain'];
    const domains = strings.map((s, i) => ({
      suffix: `${suffixes[i % suffixes.length]}.r${i}.fuzz.test`,
      category: s,
      action: strings[(i + 1) % strings.length]!,
    }));
    const networks = strings.slice(0, 250).map((tenant, i) => ({ cidr: `10.${i}.0.0/16`, tenant }));
    const doc = Buffer.from(JSON.stringify({ version: 'fuzz', domains, networks }), 'utf8');
    const policy = await loadPolicyBytes(doc, { source: 'fuzz' });
    const frames = domains.map((d, i) =>
      dnstapFrame({
        qname: [Buffer.from('www'), ...unescapePresentation(d.suffix)],
        family: 1,
        queryAddress: Buffer.from([10, i % 250, 1, 2]),
        queryTime: [T0, i],
      }),
    );
    const rows = await assertLoadsUnchanged(encodeChunk(frames, { policy }).chunk);
    rows.forEach((r, i) => {
      const d = domains[i]!;
      assert.ok(unescapeText(r[col('policy_category')]!).equals(wtf8(d.category)), `category ${i}`);
      assert.ok(unescapeText(r[col('policy_action')]!).equals(wtf8(d.action)), `action ${i}`);
      assert.ok(unescapeText(r[col('tenant')]!).equals(wtf8(networks[i % 250]!.tenant)), `tenant ${i}`);
      assert.equal(r[col('qname')], `www.${r[col('matched_domain')]}`, `matched_domain ${i}`);
    });
  });

  test('record_id and agent_id (source names) and enricher_id under A and B, lossless', async () => {
    const strings = fuzzStrings().filter((_, i) => i % 3 === 0);
    const chunks: Buffer[] = [];
    for (const [i, s] of strings.entries()) {
      const { chunk } = encodeChunk([dnstapFrame({ qname: ['x'] })], {
        source: new RowSource(`src-${s}`, s),
        enricherId: `e${s}`,
        seq: i,
      });
      const rows = await assertLoadsUnchanged(chunk);
      const id = rows[0]![col('record_id')]!;
      const prefix = id.slice(0, id.lastIndexOf('/', id.lastIndexOf('/') - 1));
      assert.ok(unescapeText(prefix).equals(wtf8(`src-${s}`)), `record_id ${JSON.stringify(id)}`);
      assert.ok(unescapeText(rows[0]![col('agent_id')]!).equals(wtf8(s)), 'agent_id');
      assert.ok(unescapeText(rows[0]![col('enricher_id')]!).equals(wtf8(`e${s}`)), 'enricher_id');
      chunks.push(chunk);
    }
    assert.equal(chunks.length, strings.length);
  });

  test('appended columns: answers (every byte in names and TXT), dnstap policy and query_zone under A and B', async () => {
    const inputs = fuzzBytes().filter((b) => b.length > 0 && b.length < 64);
    const frames = inputs.map((b, i) => {
      // CNAME to a name with the fuzz bytes as a label, then a TXT holding them.
      const answers = new DnsBuilder()
        .name(['x'])
        .rrBody(5, 1, 60, new DnsBuilder().name([b, 'fz']).build())
        .name(['x'])
        .rrBody(16, 1, 60, [b.length, ...b])
        .build();
      return dnstapFrame({
        type: 6,
        qname: ['x'],
        flags: (i * 16) & 0x07f0,
        edns: { udpSize: i, dnssecOk: i % 2 === 0 },
        answers: { count: 2, bytes: answers },
        policy: {
          type: b,
          rule: new DnsBuilder().name([b, 'rpz']).build(),
          action: i % 8,
          match: i % 7,
          value: i % 2 ? new DnsBuilder().name([b]).build() : b,
        },
        queryZone: i % 3 ? new DnsBuilder().name([b]).build() : b,
      });
    });
    const rows = await assertLoadsUnchanged(encodeChunk(frames).chunk);
    rows.forEach((r, i) => {
      assert.ok(unescapeText(r[col('dnstap_policy_type')]!).equals(inputs[i]!), `policy type ${i}`);
      const answers = r[col('answers')]!;
      assert.ok(answers.startsWith('CNAME ') && answers.includes(';TXT "'), `answers ${i}: ${answers}`);
      assert.equal(r[col('edns_do')], i % 2 === 0 ? 'true' : 'false');
    });
  });

  test('generated text: addresses of any length, unknown enums, odd ECS options under A and B', async () => {
    const frames: Buffer[] = [];
    for (let len = 0; len <= 20; len++) {
      const addr = Buffer.from(Array.from({ length: len }, (_, k) => (k * 37 + len) & 0xff));
      frames.push(
        dnstapFrame({
          type: 1 + (len % 16),
          family: len % 4,
          protocol: len % 9,
          queryAddress: addr,
          responseAddress: addr,
          qname: ['ecs'],
          ecs: ecsOption(len % 4, len * 7, len * 3, [...addr]),
        }),
      );
    }
    await assertLoadsUnchanged(encodeChunk(frames).chunk);
  });
});

describe('typed columns stay inside their SQL types', () => {
  test('regression: a far-future dnstap time became +010000-..., which TIMESTAMP_FORMAT rejects; now empty and counted', async () => {
    const { chunk, pipeline } = encodeChunk([
      dnstapFrame({ queryTime: [253_402_300_800, 0], qname: ['x'] }), // 10000-01-01T00:00:00Z
      dnstapFrame({ queryTime: [253_402_300_799, 999_999_999], qname: ['x'] }), // the last valid instant
      dnstapFrame({ queryTime: [2n ** 63n, 5], qname: ['x'] }),
      dnstapFrame({ queryTime: [T0, 1_000_000_000], qname: ['x'] }), // nsec outside 0..999999999
      dnstapFrame({ type: 6, queryTime: [0, 0], responseTime: [253_402_300_799, 0], qname: ['x'] }),
      dnstapFrame({ type: 6, queryTime: [T0, 0], responseTime: [T0 + 1e6, 0], qname: ['x'] }),
      dnstapFrame({ queryPort: 65_536, responsePort: 2 ** 32 - 1, qname: ['x'] }),
      dnstapFrame({ queryPort: 65_535, responsePort: 0, qname: ['x'] }),
    ]);
    const rows = await assertLoadsUnchanged(chunk);
    const et = rows.map((r) => r[col('event_time')]);
    assert.deepEqual(et.slice(0, 4), [null, '9999-12-31T23:59:59.999999999Z', null, null]);
    assert.equal(et[4], '9999-12-31T23:59:59.000000000Z');
    assert.equal(rows[4]![col('latency_us')], null, 'a latency beyond 2^53 us is not written');
    assert.equal(rows[5]![col('latency_us')], '1000000000000');
    assert.deepEqual([rows[6]![col('query_port')], rows[6]![col('response_port')]], [null, null]);
    assert.deepEqual([rows[7]![col('query_port')], rows[7]![col('response_port')]], ['65535', '0']);
    assert.deepEqual(
      { ...pipeline.counters.outOfRange },
      {
        event_time: 3,
        latency_us: 1,
        query_port: 1,
        response_port: 1,
      },
    );
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
    assert.match(text, /^snowtap_enricher_fields_out_of_range_total\{column="event_time"\} 3$/m);
    assert.match(text, /^snowtap_enricher_fields_out_of_range_total\{column="latency_us"\} 1$/m);
  });
});

describe('the test reader implements the rules that broke rows (it must see the old bugs)', () => {
  const header = `${COLUMNS.join(',')}\r\n`;
  const rowWith = (field: number, text: string) =>
    Buffer.from(
      header + COLUMNS.map((_, i) => (i === field ? text : i === 0 ? 'id/1/0' : '')).join(',') + '\r\n',
    );

  test('regression: an unquoted qname a\\.b\\\\c\\065 is rewritten under (B), intact when quoted', () => {
    const unquoted = readSnowflakeCsv(rowWith(col('qname'), 'a\\.b\\\\c\\065'), OPTION_SET_B, COLUMN_COUNT);
    assert.equal(unquoted.rows[0]![col('qname')], 'a.b\\c5');
    const quoted = readSnowflakeCsv(rowWith(col('qname'), '"a\\.b\\\\c\\065"'), OPTION_SET_B, COLUMN_COUNT);
    assert.equal(quoted.rows[0]![col('qname')], 'a\\.b\\\\c\\065');
  });

  test('regression: invalid UTF-8 in identity rejects the row', () => {
    const data = Buffer.concat([
      Buffer.from(`${header}id/1/0,,,`),
      Buffer.from([0xff]), // identity
      Buffer.from(`${','.repeat(COLUMN_COUNT - 4)}\r\n`),
    ]);
    assert.equal(readSnowflakeCsv(data, OPTION_SET_B, COLUMN_COUNT).rejected[0]?.code, 'INVALID_UTF8');
  });

  test('\\N is NULL under (B), quoted or not; an empty field is NULL and "" an empty string', () => {
    const o = OPTION_SET_B;
    assert.equal(readSnowflakeCsv(rowWith(3, '\\N'), o, COLUMN_COUNT).rows[0]![3], null);
    assert.equal(readSnowflakeCsv(rowWith(3, '"\\N"'), o, COLUMN_COUNT).rows[0]![3], null);
    assert.equal(readSnowflakeCsv(rowWith(3, ''), o, COLUMN_COUNT).rows[0]![3], null);
    assert.equal(readSnowflakeCsv(rowWith(3, '""'), o, COLUMN_COUNT).rows[0]![3], '');
  });

  test('TIMESTAMP_FORMAT of (A) rejects +010000- and impossible dates, takes the 9-digit form', () => {
    const f = shippedFormat().timestampFormat;
    assert.equal(parseTimestamp('2026-11-22T03:18:39.123456789Z', f), '2026-11-22T03:18:39.123456789');
    assert.ok(parseTimestamp('+010000-01-01T00:00:00.000000000Z', f) instanceof Error);
    assert.ok(parseTimestamp('2026-02-29T00:00:00.000000000Z', f) instanceof Error);
    assert.ok(parseTimestamp('2026-11-22T03:18:39.123Z', f) instanceof Error);
  });
});
