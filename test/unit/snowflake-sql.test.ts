// The shipped SQL (sql/), read and exercised: the writer, the table and the pipes cannot drift
// apart. (a) the raw table's columns and types are the writer's (enricher/output/csv.ts), fed by
// the pipe in file order; (b) the file format drives the test reader (snowflake-csv-fuzz.test.ts
// fuzzes through it); (c) table + de-duplicating view run in DuckDB through a small documented
// dialect mapping and return one row per record_id after duplicate chunks; (d) upgrades in both
// directions load with the documented outcome; and every object name an enricher can write
// matches exactly one pipe's PATTERN, partial and lock files none.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { JOURNAL_FILE } from '../../enricher/aggregates/journal';
import { GENERATED_KEY_FILE } from '../../enricher/aggregates/options';
import { AGGREGATES_DIR, aggregateFileName } from '../../enricher/aggregates/service';
import { COMPRESSION_SUFFIX, type Compression } from '../../enricher/output/compression';
import { COLUMN_COUNT, COLUMN_TYPES, COLUMNS } from '../../enricher/output/csv';
import {
  chunkFileName,
  hourDirOf,
  LOCK_FILE,
  PARTIAL_DIR,
  PARTIAL_SUFFIX,
} from '../../enricher/output/layout';
import { tenantDir } from '../../enricher/output/partition';
import { RowSource } from '../../enricher/pipeline/row-encoder';
import { dnstapFrame, encodeChunk } from '../support/chunk-builder';
import {
  castField,
  optionsFromFileFormat,
  readSnowflakeCsv,
  SNOWFLAKE_CSV_DEFAULTS,
  type SnowflakeCsvOptions,
} from '../support/snowflake-csv';
import {
  findStatement,
  type PipeDefinition,
  parseCreateTable,
  parseFileFormat,
  parsePipe,
  patternMatches,
  readSqlTree,
  type SqlStatement,
  toDuckDb,
} from '../support/snowflake-sql';

const SQL_DIR = path.join(__dirname, '..', '..', '..', 'sql');
const ALL = readSqlTree(SQL_DIR);

function one(re: RegExp): SqlStatement {
  const found = findStatement(ALL, re);
  assert.equal(found.length, 1, `exactly one statement matching ${re}`);
  return found[0]!;
}

const TABLE = parseCreateTable(one(/^CREATE (TRANSIENT )?TABLE (IF NOT EXISTS )?DNS_QUERIES_RAW\b/i).text);
const PIPES: PipeDefinition[] = findStatement(ALL, /^CREATE (OR REPLACE )?PIPE\b/i).map((s) =>
  parsePipe(s.text),
);
const FORMAT = parseFileFormat(one(/^CREATE (OR ALTER )?FILE FORMAT SNOWTAP_CSV\b/i).text);
const FORMAT_A: SnowflakeCsvOptions = optionsFromFileFormat(FORMAT.options);
const ROWS_PIPE = PIPES.find((p) => p.table === TABLE.name)!;
/** Path below the container that the stage URL names ('' = the container root). */
const STAGE_PATH = (() => {
  const m = /URL = 'azure:\/\/[^/]+\/[^/]+\/([^']*)'/.exec(one(/^CREATE STAGE/i).text.replace(/\s+/g, ' '));
  assert.ok(m !== null, 'stage URL');
  return m[1]!;
})();

/** The pipe as Snowflake runs it on one chunk: file format, then the COPY's select list. */
function loadThroughPipe(
  chunk: Buffer,
  fileName: string,
  o: {
    pipe?: PipeDefinition;
    format?: SnowflakeCsvOptions;
    table?: { name: string; type: string }[];
    /** METADATA$START_SCAN_TIME of this load. */
    scan?: string;
  } = {},
) {
  const pipe = o.pipe ?? ROWS_PIPE;
  const table = o.table ?? TABLE.columns;
  const fields = pipe.select.filter((s) => s.startsWith('$')).length;
  const read = readSnowflakeCsv(chunk, o.format ?? FORMAT_A, fields);
  const scan = o.scan ?? '2026-12-06 12:00:00+00';
  const rows = read.rows.map((r, i) =>
    pipe.columns.map((c, k) => {
      const sel = pipe.select[k]!;
      const type = table.find((t) => t.name === c)!.type;
      let v: string | null;
      if (sel.startsWith('$')) v = r[Number(sel.slice(1)) - 1] ?? null;
      else if (sel === 'METADATA$FILENAME') v = fileName;
      else if (sel === 'METADATA$FILE_ROW_NUMBER') v = String(i + 1);
      else if (sel === 'METADATA$START_SCAN_TIME') return scan;
      else throw new Error(`select item ${sel} is not modelled`);
      const cast = castField(v, type, o.format ?? FORMAT_A);
      if (cast instanceof Error) throw cast;
      return cast;
    }),
  );
  return { rows, rejected: read.rejected };
}

describe('(a) the table, the pipe and the writer agree', () => {
  test('data columns: the writer order, the writer types, loaded from $1..$N in file order', () => {
    const dataCols = ROWS_PIPE.columns.filter((_, k) => ROWS_PIPE.select[k]!.startsWith('$'));
    assert.deepEqual(dataCols, [...COLUMNS], 'pipe loads COLUMNS in order');
    ROWS_PIPE.columns.forEach((c, k) => {
      const sel = ROWS_PIPE.select[k]!;
      if (sel.startsWith('$')) assert.equal(sel, `$${COLUMNS.indexOf(c as (typeof COLUMNS)[number]) + 1}`, c);
    });
    assert.deepEqual(
      TABLE.columns.slice(0, COLUMN_COUNT).map((c) => [c.name, c.type]),
      COLUMNS.map((c) => [c, COLUMN_TYPES[c].snowflake.replace(/\s+/g, '')]),
      'table starts with the CSV columns, same SQL types',
    );
    assert.deepEqual(
      [...TABLE.columns.map((c) => c.name)].sort(),
      [...ROWS_PIPE.columns].sort(),
      'the pipe fills every table column, and only those',
    );
  });

  test('load metadata comes from METADATA$ columns, not CURRENT_TIMESTAMP() defaults', () => {
    const meta = Object.fromEntries(
      ROWS_PIPE.columns.map((c, k) => [c, ROWS_PIPE.select[k]!]).filter(([, s]) => !s!.startsWith('$')),
    );
    assert.deepEqual(meta, {
      source_file: 'METADATA$FILENAME',
      source_row: 'METADATA$FILE_ROW_NUMBER',
      loaded_at: 'METADATA$START_SCAN_TIME',
    });
    for (const s of ALL.filter((x) => x.file.startsWith('schema/')))
      assert.ok(!/CURRENT_TIMESTAMP|DEFAULT/i.test(s.text), s.text.slice(0, 60));
  });

  test('pipe: ON_ERROR = CONTINUE with an ERROR_INTEGRATION defined at account level; file format as documented', () => {
    assert.equal(ROWS_PIPE.onError, 'CONTINUE');
    assert.equal(ROWS_PIPE.fileFormat, FORMAT.name);
    assert.ok(ROWS_PIPE.errorIntegration !== null);
    const integration = one(
      new RegExp(`^CREATE NOTIFICATION INTEGRATION (IF NOT EXISTS )?${ROWS_PIPE.errorIntegration}\\b`, 'i'),
    );
    assert.match(integration.file, /^account\//);
    assert.match(integration.text, /DIRECTION = OUTBOUND/);
    assert.equal(FORMAT_A.escapeUnenclosedField, null, 'ESCAPE_UNENCLOSED_FIELD = NONE');
    assert.deepEqual(FORMAT_A.nullIf, []);
    assert.equal(FORMAT_A.skipHeader, 1);
    assert.equal(FORMAT_A.fieldOptionallyEnclosedBy, '"');
  });

  test('account-level objects only in sql/account/, schema objects only in sql/schema/', () => {
    for (const s of ALL) {
      const account =
        /^(CREATE (ROLE|STORAGE INTEGRATION|NOTIFICATION INTEGRATION)|GRANT .* ON (INTEGRATION|DATABASE|WAREHOUSE|SCHEMA)|GRANT ROLE)\b/i.test(
          s.text.replace(/\s+/g, ' '),
        );
      const schema = /^CREATE (OR (REPLACE|ALTER) )?(TRANSIENT )?(TABLE|FILE FORMAT|STAGE|PIPE|VIEW)\b/i.test(
        s.text,
      );
      if (account) assert.match(s.file, /^account\//, s.text.slice(0, 60));
      if (schema) assert.match(s.file, /^schema\//, s.text.slice(0, 60));
    }
    assert.ok(
      findStatement(ALL, /^GRANT SELECT ON VIEW DNS_QUERIES TO ROLE/i).length === 1,
      'readers get the view',
    );
    assert.match(TABLE.columns[0]!.type, /^VARCHAR$/);
    assert.ok(
      /^CREATE TRANSIENT TABLE/i.test(
        one(/^CREATE (TRANSIENT )?TABLE (IF NOT EXISTS )?DNS_QUERIES_RAW\b/i).text,
      ),
      'transient raw table',
    );
    assert.ok(
      !ALL.some((s) => /^CREATE .*TABLE[\s\S]*\)\s*CLUSTER BY/i.test(s.text)),
      'no clustering by default',
    );
  });

  test('monitoring: COPY_HISTORY and VALIDATE_PIPE_LOAD name the shipped table and pipe', () => {
    const mon = ALL.filter((s) => s.file === 'monitoring.sql').map((s) => s.text);
    assert.ok(mon.some((t) => t.includes('COPY_HISTORY') && t.includes(`'${TABLE.name}'`)));
    assert.ok(mon.some((t) => t.includes('VALIDATE_PIPE_LOAD') && t.includes(`'${ROWS_PIPE.name}'`)));
  });
});

// ---- chunks for the load tests --------------------------------------------------------------

const T0 = 1_795_000_000; // 2026-11-18T...
/** Records 0..n-1 of one source: record i has time T0 + i*600 s (every 10 min), or none when i % 7 === 3. */
function chunkOf(first: number, count: number): Buffer {
  const frames = [];
  for (let i = first; i < first + count; i++)
    frames.push(
      dnstapFrame({
        identity: Buffer.from('ns1\\x'),
        qname: ['www', `r${i}`, 'test'],
        ...(i % 7 === 3 ? {} : { queryTime: [T0 + i * 600, i] as [number, number] }),
      }),
    );
  return encodeChunk(frames, { source: new RowSource('agent-1/inc', 'agent-1'), seq: 1, firstIndex: first })
    .chunk;
}

function sqlLiteral(v: string | null): string {
  return v === null ? 'NULL' : `'${v.split("'").join("''")}'`;
}

describe('(c) table + de-duplicating view in DuckDB', () => {
  test('after duplicate chunks the view returns exactly one row per record_id; a time filter still works; NULL event_time rows stay reachable', async () => {
    const db = await DuckDBInstance.create(':memory:', {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    try {
      const conn = await db.connect();
      await conn.run(toDuckDb(one(/^CREATE (TRANSIENT )?TABLE (IF NOT EXISTS )?DNS_QUERIES_RAW\b/i).text));
      await conn.run(toDuckDb(one(/^CREATE (OR REPLACE )?VIEW DNS_QUERIES\b/i).text));
      // Chunk 2 re-delivers records 10..19 (a lost ack), chunk 3 is chunk 1 again under another
      // name (a successor enricher committing a peer's partial), chunk 4 is new.
      const chunks: [string, Buffer][] = [
        ['2026/11/18/00/snowtap-e0-20261118T000000.000Z-aa-000001.csv', chunkOf(0, 20)],
        ['2026/11/18/00/snowtap-e1-20261118T000100.000Z-bb-000001.csv', chunkOf(10, 20)],
        ['2026/11/18/00/snowtap-e2-20261118T000200.000Z-cc-000001.csv.gz', gzipSync(chunkOf(0, 20))],
        ['2026/11/18/00/snowtap-e0-20261118T000300.000Z-aa-000002.csv', chunkOf(30, 10)],
      ];
      let loaded = 0;
      for (const [k, [name, data]] of chunks.entries()) {
        const text = name.endsWith('.gz') ? gunzipSync(data) : data;
        // Loaded in list order, a minute apart; the view keeps the earliest load of a record.
        const { rows, rejected } = loadThroughPipe(text, name, { scan: `2026-12-06 12:0${k}:00+00` });
        assert.deepEqual(rejected, []);
        for (const r of rows) {
          await conn.run(
            `INSERT INTO ${TABLE.name} (${ROWS_PIPE.columns.join(', ')}) VALUES (${r.map(sqlLiteral).join(', ')})`,
          );
          loaded++;
        }
      }
      assert.equal(loaded, 70);
      const q = async (sql: string) => (await conn.runAndReadAll(sql)).getRowObjectsJson();
      assert.deepEqual(
        await q('SELECT count(*)::INTEGER AS n, count(DISTINCT record_id)::INTEGER AS ids FROM DNS_QUERIES'),
        [{ n: 40, ids: 40 }],
      );
      assert.deepEqual(
        await q('SELECT record_id FROM DNS_QUERIES GROUP BY record_id HAVING count(*) > 1'),
        [],
      );
      // The earliest load wins: records 10..19 were loaded from chunks 0, 1 and 2.
      assert.deepEqual(
        await q(
          "SELECT DISTINCT source_file FROM DNS_QUERIES WHERE record_id LIKE 'agent-1/inc/1/1_' ORDER BY 1",
        ),
        [{ source_file: chunks[0]![0] }],
      );
      // Records 0..39 every 10 minutes from T0: a one-hour window holds records 6..11 minus the timeless 10.
      const from = new Date((T0 + 6 * 600) * 1000).toISOString().slice(0, 19);
      const to = new Date((T0 + 12 * 600) * 1000).toISOString().slice(0, 19);
      const window = await q(
        `SELECT record_id FROM DNS_QUERIES WHERE event_time >= '${from}' AND event_time < '${to}' ORDER BY event_time`,
      );
      assert.deepEqual(
        window.map((r) => r.record_id),
        [6, 7, 8, 9, 11].map((i) => `agent-1/inc/1/${i}`),
      );
      const timeless = await q(
        'SELECT record_id FROM DNS_QUERIES WHERE event_time IS NULL ORDER BY record_id',
      );
      assert.deepEqual(
        timeless.map((r) => r.record_id),
        [3, 10, 17, 24, 31, 38].map((i) => `agent-1/inc/1/${i}`).sort(),
      );
      conn.closeSync();
    } finally {
      db.closeSync();
    }
  });
});

describe('(d) upgrades: appended columns load with the documented outcome', () => {
  const chunk = chunkOf(0, 5);
  const pipeFor = (cols: string[]): PipeDefinition => ({
    ...ROWS_PIPE,
    columns: cols,
    select: cols.map((_, i) => `$${i + 1}`),
  });
  const tableFor = (cols: string[]) =>
    cols.map((name) => ({
      name,
      type: COLUMN_TYPES[name as (typeof COLUMNS)[number]]?.snowflake ?? 'VARCHAR',
    }));

  test('an older table (fewer columns) with newer files: rows load, the appended fields are dropped', () => {
    const older = COLUMNS.slice(0, COLUMN_COUNT - 2);
    const { rows, rejected } = loadThroughPipe(chunk, 'x.csv', {
      pipe: pipeFor(older),
      table: tableFor(older),
    });
    assert.deepEqual(rejected, []);
    assert.equal(rows.length, 5);
    assert.equal(rows[0]!.length, COLUMN_COUNT - 2);
    // Snowflake's default (TRUE) would have rejected every row: the shipped FALSE is what makes this work.
    const strict = loadThroughPipe(chunk, 'x.csv', {
      pipe: pipeFor(older),
      table: tableFor(older),
      format: { ...FORMAT_A, errorOnColumnCountMismatch: true },
    });
    assert.equal(strict.rejected.length, 5);
    assert.equal(strict.rejected[0]!.code, 'COLUMN_COUNT');
  });

  test('a newer table (appended columns) with older files: rows load, the new columns are NULL', () => {
    const newer = [...COLUMNS, 'future_a', 'future_b'];
    const { rows, rejected } = loadThroughPipe(chunk, 'x.csv', {
      pipe: pipeFor(newer),
      table: tableFor(newer),
    });
    assert.deepEqual(rejected, []);
    assert.equal(rows.length, 5);
    for (const r of rows) assert.deepEqual(r.slice(COLUMN_COUNT), [null, null]);
    assert.equal(rows[0]![0], 'agent-1/inc/1/0');
  });

  test('the outcome is the one the SQL header documents', () => {
    assert.equal(FORMAT_A.errorOnColumnCountMismatch, false);
    assert.equal(SNOWFLAKE_CSV_DEFAULTS.errorOnColumnCountMismatch, true);
  });
});

// ---- object names ↔ pipes -------------------------------------------------------------------

/**
 * Every kind of object name an enricher writes, one axis per row: add a compression, a
 * --partition-by layout or an aggregate file kind here and the test covers it. (`.zst` is the
 * --compression zstd name being added in parallel; names only until that writer lands.)
 */
// Every suffix the writer can produce (from the writer's own table, so a new compression
// joins this test by itself).
const COMPRESSIONS = Object.values(COMPRESSION_SUFFIX);
const PREFIXES = ['', 'snowtap/', 'region-a/cluster-1/']; // --output-dir below the mounted container root
const ENRICHER_IDS = ['enricher-0', 'snowtap-enricher-7d9c5b-x2k4q', 'a.b_c-d'];
// --partition-by none, and tenant (hostile names, rows without a tenant, a cut 1 kB name).
const PARTITIONS = [
  '',
  ...[null, '', 'acme', 'a/b', '..', 'k=v', '100%', 'Zürich 東京', 'ctl\u0001', '2026', 'x'.repeat(1024)].map(
    (t) => `${tenantDir(t)}/`,
  ),
];
const TIMES = [
  Date.UTC(2026, 0, 1, 0, 0, 0, 0),
  Date.UTC(2026, 11, 31, 23, 59, 59, 999),
  Date.UTC(2099, 5, 15, 12, 0, 0, 1),
];

function writtenNames(): { name: string; compression: string }[] {
  const out: { name: string; compression: string }[] = [];
  for (const ext of COMPRESSIONS)
    for (const prefix of PREFIXES)
      for (const part of PARTITIONS)
        for (const id of ENRICHER_IDS)
          for (const [k, t] of TIMES.entries()) {
            const base = chunkFileName(id, t, 'deadbeef', k + 1, ext);
            out.push({ name: `${prefix}${part}${hourDirOf(t)}/${base}`, compression: ext });
          }
  return out;
}

/** Hourly aggregate files (--aggregates hourly): their own prefix, name and pipe. */
function aggregateNames(): string[] {
  const out: string[] = [];
  for (const c of Object.keys(COMPRESSION_SUFFIX) as Compression[])
    for (const prefix of PREFIXES)
      for (const id of ENRICHER_IDS)
        for (const t of TIMES) {
          const h = Math.floor(t / 3_600_000) * 3_600_000;
          out.push(
            `${prefix}${AGGREGATES_DIR}/${hourDirOf(h)}/${aggregateFileName(id, '0123456789ab', h, c)}`,
          );
        }
  return out;
}

/** Things that live in the container and must never load. */
function neverLoaded(): string[] {
  const out: string[] = [];
  for (const prefix of PREFIXES) {
    // owner.lock (mount), owner.json (az:// heartbeat record, enricher/output/object-url.ts).
    out.push(
      `${prefix}${PARTIAL_DIR}/enricher-0/${LOCK_FILE}`,
      `${prefix}${PARTIAL_DIR}/enricher-0/owner.json`,
    );
    for (const { name } of writtenNames()) {
      const base = name.slice(name.lastIndexOf('/') + 1);
      out.push(`${prefix}${PARTIAL_DIR}/enricher-0/${base}${PARTIAL_SUFFIX}`, `${name}.tmp`);
      // --partition-by tenant: partial chunks in the tenant sub-directories of the partial directory.
      for (const part of PARTITIONS.slice(1, 4))
        out.push(`${prefix}${PARTIAL_DIR}/enricher-0/${part}${base}${PARTIAL_SUFFIX}`);
    }
    // The aggregates' journal, key and files being written.
    out.push(
      `${prefix}${PARTIAL_DIR}/enricher-0/${JOURNAL_FILE}`,
      `${prefix}${PARTIAL_DIR}/${GENERATED_KEY_FILE}`,
    );
    for (const name of aggregateNames()) {
      const base = name.slice(name.lastIndexOf('/') + 1);
      out.push(`${prefix}${PARTIAL_DIR}/enricher-0/${base}.agg-tmp`);
    }
  }
  out.push('README.md', '2026/01/01/00/other-file.csv', 'snowtap-x.csv');
  return out;
}

describe('every file an enricher can write matches exactly one pipe', () => {
  test('each name matches one PATTERN (after the stage path is trimmed) and loads into that pipe’s table', () => {
    const names = writtenNames();
    assert.equal(
      names.length,
      COMPRESSIONS.length * PREFIXES.length * PARTITIONS.length * ENRICHER_IDS.length * TIMES.length,
    );
    const content = chunkOf(0, 3);
    for (const { name, compression } of names) {
      const matching = PIPES.filter((p) => patternMatches(p.pattern, STAGE_PATH, name));
      assert.equal(matching.length, 1, `${name}: ${matching.map((p) => p.name).join(', ')}`);
      assert.equal(matching[0]!.table, TABLE.name);
      // Snowflake decompresses by COMPRESSION = AUTO; zstd content arrives with its writer.
      if (compression === '.zst') continue;
      const data = compression === '.gz' ? gunzipSync(gzipSync(content)) : content;
      const { rows, rejected } = loadThroughPipe(data, name, { pipe: matching[0]! });
      assert.deepEqual(rejected, []);
      assert.equal(rows.length, 3);
    }
  });

  test('each aggregate file name matches exactly one PATTERN: the aggregates pipe into its table', () => {
    const names = aggregateNames();
    assert.ok(names.length >= 27);
    for (const name of names) {
      const matching = PIPES.filter((p) => patternMatches(p.pattern, STAGE_PATH, name));
      assert.equal(matching.length, 1, `${name}: ${matching.map((p) => p.name).join(', ')}`);
      assert.equal(matching[0]!.table, 'SNOWTAP_AGGREGATES_RAW', name);
    }
  });

  test('partial chunks, owner locks and foreign files match no pipe', () => {
    for (const name of neverLoaded()) {
      const matching = PIPES.filter((p) => patternMatches(p.pattern, STAGE_PATH, name));
      assert.deepEqual(
        matching.map((p) => p.name),
        [],
        name,
      );
    }
  });
});
