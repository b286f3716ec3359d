import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  COLUMN_TYPES,
  COLUMNS,
  csvBytesFieldMaxBytes,
  csvFieldMaxBytes,
  csvFieldNeedsQuoting,
  HEADER_BYTES,
  HEADER_ROW,
  ROW_TERMINATOR,
  writeCsvBytesField,
  writeCsvField,
  writeCsvQuotedEmpty,
} from '../../enricher/output/csv';
import { prng } from '../../loadtest/prng';
import { buildRow, parseCsvText } from '../support/output-rows';

function field(s: string, pos = 0): string {
  const buf = Buffer.alloc(pos + csvFieldMaxBytes(s.length));
  const end = writeCsvField(buf, pos, s);
  return buf.subarray(pos, end).toString('utf8');
}

function bytesField(src: Buffer): Buffer {
  const buf = Buffer.alloc(csvBytesFieldMaxBytes(src.length));
  return buf.subarray(0, writeCsvBytesField(buf, 0, src, 0, src.length));
}

// A seeded generator (prng) keeps the fuzz cases reproducible.

const ALPHABET = ['a', 'Z', '0', ' ', ',', '"', '\r', '\n', '\r\n', 'é', '日本', '😀', '\t', ';', "'", '\\'];

describe('columns', () => {
  test('README "Output: CSV chunks" order, 26 columns, then issue 9 step 4 appended after enricher_id; a type for each', () => {
    assert.equal(COLUMNS.length, 38);
    assert.equal(COLUMNS[0], 'record_id');
    assert.equal(COLUMNS[25], 'enricher_id');
    assert.deepEqual(COLUMNS.slice(26), [
      'flags',
      'opcode',
      'edns_udp_size',
      'edns_do',
      'answers',
      'dnstap_policy_type',
      'dnstap_policy_rule',
      'dnstap_policy_action',
      'dnstap_policy_match',
      'dnstap_policy_value',
      'query_zone',
      'client_key_id',
    ]);
    assert.equal(HEADER_ROW, COLUMNS.join(',') + '\r\n');
    assert.equal(HEADER_BYTES.toString('latin1'), HEADER_ROW);
    assert.equal(ROW_TERMINATOR, '\r\n');
    assert.deepEqual(Object.keys(COLUMN_TYPES), [...COLUMNS]);
    assert.equal(COLUMN_TYPES.event_time.duckdb, 'TIMESTAMP_NS');
    assert.equal(COLUMN_TYPES.event_time.snowflake, 'TIMESTAMP_NTZ(9)');
    assert.equal(COLUMN_TYPES.latency_us.duckdb, 'BIGINT');
    for (const c of [
      'query_port',
      'response_port',
      'dns_id',
      'answer_count',
      'message_size',
      'sample_rate',
    ] as const) {
      assert.equal(COLUMN_TYPES[c].duckdb, 'INTEGER', c);
    }
    assert.equal(COLUMN_TYPES.qname.duckdb, 'VARCHAR');
  });
});

describe('writeCsvField', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ['""', '""""""'],
    ['line\nbreak', '"line\nbreak"'],
    ['cr\ronly', '"cr\ronly"'],
    ['crlf\r\n', '"crlf\r\n"'],
    ['tab\tsemi;', 'tab\tsemi;'],
    [' spaced ', ' spaced '],
    ['é', 'é'],
    ['日本語,"x"', '"日本語,""x"""'],
    ['😀"😀', '"😀""😀"'],
    ['x'.repeat(100), 'x'.repeat(100)],
    ['y'.repeat(50) + '"' + 'é'.repeat(30), '"' + 'y'.repeat(50) + '""' + 'é'.repeat(30) + '"'],
    // Snowflake's default ESCAPE_UNENCLOSED_FIELD = '\\' would rewrite these if unquoted.
    [' \\', '" \\"'],
    ['\\N', '"\\N"'],
    ['a\\.b', '"a\\.b"'],
    ['w'.repeat(40) + '\\', '"' + 'w'.repeat(40) + '\\"'],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input).slice(0, 40)}`, () => {
      assert.equal(field(input), want);
      assert.equal(field(input, 7), want);
      assert.equal(csvFieldNeedsQuoting(input), want.startsWith('"'));
    });
  }

  test('lone surrogate becomes U+FFFD, the file stays valid UTF-8', () => {
    assert.equal(field('a\ud800b'), 'a\ufffdb');
  });

  test('writes nothing outside [pos, returned end)', () => {
    const buf = Buffer.alloc(64, 0xaa);
    const end = writeCsvField(buf, 5, 'a"b,é');
    assert.equal(buf.subarray(5, end).toString(), '"a""b,é"');
    assert.ok(buf.subarray(0, 5).every((b) => b === 0xaa));
    assert.ok(buf.subarray(end).every((b) => b === 0xaa));
  });

  test('refuses to write past the end instead of truncating', () => {
    assert.throws(() => writeCsvField(Buffer.alloc(10), 0, 'abcd'), RangeError);
    assert.equal(writeCsvField(Buffer.alloc(14), 0, 'abcd'), 4);
  });

  test('quoted empty is "" and an empty field is nothing', () => {
    const buf = Buffer.alloc(4);
    assert.equal(writeCsvQuotedEmpty(buf, 1), 3);
    assert.equal(buf.subarray(1, 3).toString(), '""');
  });

  test('agrees with the independent test builder on fuzzed strings', () => {
    const rnd = prng(42);
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const len = Math.floor(rnd() * 12);
      for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
      assert.equal(field(s), buildRow([s]).toString('utf8').slice(0, -2), JSON.stringify(s));
    }
  });
});

describe('writeCsvBytesField', () => {
  test('ASCII copies, specials quote, high bytes become UTF-8 (Latin-1)', () => {
    assert.equal(bytesField(Buffer.from('ns1.example')).toString(), 'ns1.example');
    assert.equal(bytesField(Buffer.from('a,"b"')).toString(), '"a,""b"""');
    assert.equal(bytesField(Buffer.from([0x61, 0xe9, 0xff])).toString('utf8'), 'aéÿ');
    assert.equal(bytesField(Buffer.from([0x22, 0xe9])).toString('utf8'), '"""é"');
    assert.equal(bytesField(Buffer.from('z'.repeat(40))).toString(), 'z'.repeat(40));
    // Regression: qname escapes (\. \\ \DDD) were written unquoted and Snowflake's default
    // ESCAPE_UNENCLOSED_FIELD rewrote them on load.
    assert.equal(bytesField(Buffer.from('a\\.b\\\\c\\009')).toString(), '"a\\.b\\\\c\\009"');
    assert.equal(bytesField(Buffer.alloc(0)).length, 0);
  });

  test('agrees with Latin-1 decode + RFC 4180 quoting + UTF-8 on 20k random fields, specials anywhere', () => {
    const alphabet = [
      0x61, 0x2e, 0x2d, 0x5f, 0x2c, 0x22, 0x0d, 0x0a, 0x7f, 0x80, 0xe9, 0xff, 0x00, 0x20, 0x5c,
    ];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const buf = Buffer.alloc(2 * 300 + 2 + 8);
    for (let t = 0; t < 20_000; t++) {
      const len = rnd(60);
      // Mostly plain bytes, so the special one lands at every position of a long plain run.
      const src = Buffer.from(
        Array.from({ length: len }, () => (rnd(8) === 0 ? alphabet[rnd(alphabet.length)]! : 0x61 + rnd(26))),
      );
      const text = src.toString('latin1');
      const quoted = /[",\r\n\\]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
      const end = writeCsvBytesField(buf, 3, src, 0, src.length);
      assert.equal(buf.toString('utf8', 3, end), quoted, `field ${JSON.stringify(text)}`);
    }
  });

  test('honours start/end and refuses too small targets', () => {
    const src = Buffer.from('xxhello,worldxx');
    const buf = Buffer.alloc(40);
    assert.equal(buf.subarray(0, writeCsvBytesField(buf, 0, src, 2, 13)).toString(), '"hello,world"');
    assert.throws(() => writeCsvBytesField(Buffer.alloc(5), 0, src, 0, 4), RangeError);
  });
});

describe('round trip through fast-csv', () => {
  // fast-csv 5 loses a whitespace-only FIRST field of a row (C2FO/fast-csv PR #1243, RFC 4180
  // §2.4 keeps it); column 0 is record_id, never blank, so the fuzz keeps it plain.
  test('rows written with writeCsvField parse back to the same values', async () => {
    const rnd = prng(7);
    const rows: string[][] = [];
    const buf = Buffer.alloc(1 << 20);
    let pos = buf.write(HEADER_ROW);
    for (let r = 0; r < 300; r++) {
      const values: string[] = [];
      for (let c = 0; c < COLUMNS.length; c++) {
        let s = c === 0 ? `id${r}` : '';
        const len = c === 0 ? 0 : Math.floor(rnd() * 6);
        for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
        values.push(s);
        if (c > 0) buf[pos++] = 0x2c;
        pos = writeCsvField(buf, pos, s);
      }
      pos += buf.write('\r\n', pos);
      rows.push(values);
    }
    const parsed = await parseCsvText(buf.subarray(0, pos).toString('utf8'));
    assert.equal(parsed.length, rows.length);
    parsed.forEach((p, i) => {
      assert.deepEqual(
        COLUMNS.map((c) => p[c]),
        rows[i],
      );
    });
  });
});
