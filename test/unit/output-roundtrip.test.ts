// Rows encoded with the production field writers, written by ChunkWriter, read back by two
// independent readers: fast-csv (exact string round trip) and DuckDB with the declared
// column types (what the Snowflake table will hold).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { ChunkWriter } from '../../enricher/output/chunk-writer';
import { COLUMNS, writeCsvBytesField, writeCsvField, writeCsvQuotedEmpty } from '../../enricher/output/csv';
import { duckdbQuery, finalFiles, parseChunk, rowValues } from '../support/output-rows';

const ROWS = 120;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'snowtap-rt-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const TRICKY = [
  'plain',
  'comma,inside',
  'say "hi"',
  '"',
  'line\nfeed',
  'cr\ronly',
  'crlf\r\nend',
  'ünïcödé',
  '日本語.example',
  'emoji😀,"x"',
  ' padded ',
  '\\065scaped\\.dot',
];

/** Expected string values of row i (the identity travels as Latin-1 bytes). */
function values(i: number): string[] {
  const t = TRICKY[i % TRICKY.length]!;
  return rowValues(`agent-1:${i}:0`, {
    event_time: `2026-11-22T03:18:39.${String(i).padStart(9, '0')}Z`,
    identity: i % 3 === 0 ? 'caf\u00e9,ns' : 'ns1',
    query_port: String(1024 + i),
    qname: t,
    latency_us: String(5_000_000_000 + i),
    ecs: '', // absent: an empty field
    tenant: t,
    policy_category: '', // present but empty: ""
    matched_domain: TRICKY[(i + 5) % TRICKY.length]!,
  });
}

function encode(i: number, buf: Buffer): number {
  const v = values(i);
  let pos = 0;
  for (let c = 0; c < COLUMNS.length; c++) {
    if (c > 0) buf[pos++] = 0x2c;
    const name = COLUMNS[c];
    if (name === 'identity') {
      const raw = Buffer.from(v[c]!, 'latin1');
      pos = writeCsvBytesField(buf, pos, raw, 0, raw.length);
    } else if (name === 'policy_category') pos = writeCsvQuotedEmpty(buf, pos);
    else pos = writeCsvField(buf, pos, v[c]!);
  }
  buf[pos++] = 0x0d;
  buf[pos++] = 0x0a;
  return pos;
}

async function writeAll(gzip: boolean): Promise<string[]> {
  const dir = path.join(root, gzip ? 'gz' : 'plain');
  const w = new ChunkWriter({ outputDir: dir, enricherId: 'rt', maxRows: 50, gzip, blockBytes: 2048 });
  const buf = Buffer.alloc(8192);
  for (let i = 0; i < ROWS; i++) {
    w.appendRow(buf, 0, encode(i, buf));
    if (i % 7 === 0) await w.flush(); // many small gzip members
  }
  await w.close();
  return finalFiles(dir).map((f) => path.join(dir, f));
}

for (const gzip of [false, true]) {
  describe(gzip ? 'gzip chunks' : 'plain chunks', () => {
    let files: string[] = [];

    test('fast-csv reads back every value exactly', async () => {
      files = await writeAll(gzip);
      assert.equal(files.length, 3);
      let i = 0;
      for (const f of files) {
        for (const r of await parseChunk(f)) {
          assert.deepEqual(
            COLUMNS.map((c) => r[c]),
            values(i),
            `row ${i}`,
          );
          i++;
        }
      }
      assert.equal(i, ROWS);
    });

    test('DuckDB loads them with the declared column types', async () => {
      const [agg] = await duckdbQuery(
        files,
        'select count(*)::INTEGER as n, count(distinct record_id)::INTEGER as ids, sum(query_port)::BIGINT::VARCHAR as ports from $SOURCE',
      );
      assert.deepEqual(agg, { n: ROWS, ids: ROWS, ports: String(ROWS * 1024 + (ROWS * (ROWS - 1)) / 2) });
      const rows = await duckdbQuery(
        files,
        `select record_id, epoch_ns(event_time)::VARCHAR as ns, strftime(event_time, '%Y-%m-%dT%H:%M:%S') as ts,
                query_port, latency_us::VARCHAR as lat, ecs is null as ecs_null, policy_category,
                identity, qname, tenant, typeof(event_time) as et, typeof(latency_us) as lt
           from $SOURCE where record_id in ('agent-1:0:0', 'agent-1:6:0', 'agent-1:9:0', 'agent-1:119:0') order by query_port`,
      );
      const base = BigInt(Date.UTC(2026, 10, 22, 3, 18, 39)) * 1_000_000n;
      assert.deepEqual(
        rows.map((r) => [r.record_id, r.ns, r.query_port, r.lat, r.identity, r.qname]),
        [
          ['agent-1:0:0', String(base), 1024, '5000000000', 'café,ns', 'plain'],
          ['agent-1:6:0', String(base + 6n), 1030, '5000000006', 'café,ns', 'crlf\r\nend'],
          ['agent-1:9:0', String(base + 9n), 1033, '5000000009', 'café,ns', 'emoji😀,"x"'],
          ['agent-1:119:0', String(base + 119n), 1143, '5000000119', 'ns1', '\\065scaped\\.dot'],
        ],
      );
      for (const r of rows) {
        assert.equal(r.ts, '2026-11-22T03:18:39');
        assert.equal(r.et, 'TIMESTAMP_NS');
        assert.equal(r.lt, 'BIGINT');
        assert.equal(r.ecs_null, true, 'an empty field is NULL');
        assert.equal(r.policy_category, '', '"" is an empty string');
      }
    });
  });
}

test('DuckDB: TIMESTAMP_NS keeps 9 digits of an ISO 8601 value with a trailing Z', async () => {
  const [r] = await duckdbQuery(
    [],
    `select epoch_ns('2026-11-22T03:18:39.123456789Z'::TIMESTAMP_NS)::VARCHAR as z,
            epoch_ns('2026-11-22T03:18:39.123456789'::TIMESTAMP_NS)::VARCHAR as bare`,
  );
  assert.deepEqual(r, { z: '1795317519123456789', bare: '1795317519123456789' });
});
