// Hourly aggregates (issue 9 step 3) against exact answers computed from the row output of the
// same input: counts exact without re-sends; after a simulated kill -9 (journal replay) with
// re-sends, rows on and rows off, totals within [exact, exact + resent_records]; the unique
// client estimate within the sketch's stated error on a fixture of known cardinality; top
// qnames within the Space-Saving bound; the Snowflake JavaScript UDF bodies and the DuckDB
// macros agree with the TypeScript estimate; two pods' files plus a duplicated file through the
// shipped SNOWTAP_AGGREGATES view in DuckDB give the right totals.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { C_QTYPE, C_QUERIES, C_RCODE, C_RESENT, C_RESPONSES } from '../../enricher/aggregates/aggregator';
import { AGG_COLUMNS, aggColumnType } from '../../enricher/aggregates/csv';
import {
  HLL_M,
  HLL_RSE,
  hllEstimate,
  hllFromText,
  hllText,
  KeyedClientHash,
} from '../../enricher/aggregates/hll';
import { entry, JOURNAL_FILE, KIND_EMITTING, readJournal } from '../../enricher/aggregates/journal';
import { AckGate, AggregateService, replayInto } from '../../enricher/aggregates/service';
import { SpaceSaving, TOPK_SLOTS } from '../../enricher/aggregates/space-saving';
import { COLUMNS } from '../../enricher/output/csv';
import { QTYPE_INDEX, QTYPE_LABELS, RCODE_INDEX, RCODE_LABELS } from '../../enricher/pipeline/dns-traffic';
import { type DurableRowSink, RecordPipeline } from '../../enricher/pipeline/pipeline';
import { MAX_ROW_BYTES, RowSource } from '../../enricher/pipeline/row-encoder';
import { loadPolicyBytes, type Policy } from '../../enricher/policy/index';
import type { LinkBatch } from '../../enricher/server/options';
import { QTYPES, RCODES_TABLE } from '../../proto/dns/index';
import { BatchEncoder, BatchView, markResent } from '../../proto/link/index';
import { dnstapFrame } from '../support/chunk-builder';
import { dollarBody, findStatement, readSqlTree, toDuckDb } from '../support/snowflake-sql';

const SQL_DIR = path.join(__dirname, '..', '..', '..', 'sql');
const ALL = readSqlTree(SQL_DIR);
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'aggregates-test-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

// ---- fixture ------------------------------------------------------------------------------

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T0 = Date.UTC(2026, 10, 22, 3, 0, 0) / 1000; // an hour start
const QT = [1, 28, 5, 65, 15, 16, 12, 2, 6, 33, 99, 255];
const RC = [0, 0, 0, 3, 3, 2, 5, 1, 4, 9, 16, 23, 3841];

/** n frames: CLIENT_QUERY/RESPONSE (5/6) and a few RESOLVER_QUERY (3), over two hours. */
function fixture(n: number, seed: number, uniformShare = 0): Buffer[] {
  const r = rng(seed);
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const u = r();
    const type = u < 0.45 ? 5 : u < 0.93 ? 6 : 3;
    const net = r();
    const host = Math.floor(r() * 400);
    const addr =
      net < 0.5
        ? Buffer.from([10, 1, host >> 8, host & 255])
        : net < 0.85
          ? Buffer.from([10, 2, host >> 8, host & 255])
          : Buffer.from([192, 168, 7, host & 255]);
    // Zipf-ish qnames: a few heavy hitters and a long tail.
    // uniformShare > 0 mixes in names drawn uniformly from 5,000 (summaries overflow sooner).
    const rank =
      uniformShare > 0 && r() < uniformShare
        ? 1000 + Math.floor(r() * 5000)
        : Math.floor(1 / (r() * 0.999 + 0.001));
    const qname = [`n${rank}`, rank % 3 === 0 ? 'example' : 'test', 'com'];
    const sec = T0 + Math.floor(r() * 7200);
    frames.push(
      dnstapFrame({
        type,
        family: 1,
        protocol: 1,
        queryAddress: addr,
        queryPort: 5353,
        responseAddress: Buffer.from([10, 0, 0, 53]),
        responsePort: 53,
        queryTime: [sec, 1000],
        ...(type === 6 ? { responseTime: [sec, 900_000] as [number, number] } : {}),
        qname,
        qtype: QT[Math.floor(r() * QT.length)]!,
        rcode: type === 6 ? RC[Math.floor(r() * RC.length)]! : 0,
      }),
    );
  }
  return frames;
}

async function policy(): Promise<Policy> {
  return loadPolicyBytes(
    Buffer.from(
      JSON.stringify({
        version: 'p',
        domains: [],
        networks: [
          { cidr: '10.1.0.0/16', tenant: 'tenant-a' },
          { cidr: '10.2.0.0/16', tenant: 'tenant-b' },
        ],
      }),
    ),
    { source: 'test' },
  );
}

/** An in-memory durable row sink (rows as text). */
class MemorySink implements DurableRowSink {
  rowTarget = Buffer.alloc(MAX_ROW_BYTES * 2);
  readonly rows: string[] = [];
  full = false;
  beginRow(): number {
    return 0;
  }
  endRow(end: number): boolean {
    this.rows.push(this.rowTarget.toString('utf8', 0, end - 2));
    return true;
  }
  whenDrained(): Promise<void> {
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

// ---- exact answers from rows ----------------------------------------------------------------

interface Exact {
  queries: number;
  responses: number;
  rcodes: number[];
  qtypes: number[];
  clients: Set<string>;
  qnames: Map<string, number>;
  sampled: boolean;
}

const QTYPE_CODE = new Map<string, number>();
for (let n = 65535; n >= 0; n--) QTYPE_CODE.set(QTYPES.name(n), n);
const RCODE_CODE = new Map<string, number>();
for (let n = 4095; n >= 0; n--) RCODE_CODE.set(RCODES_TABLE.name(n), n);

const col = (name: string) => COLUMNS.indexOf(name as (typeof COLUMNS)[number]);
const I = {
  id: col('record_id'),
  time: col('event_time'),
  type: col('message_type'),
  addr: col('query_address'),
  qname: col('qname'),
  qtype: col('qtype'),
  rcode: col('rcode'),
  tenant: col('tenant'),
  rate: col('sample_rate'),
};

/** Per "<hour ms>|<tenant>": the exact aggregates of the distinct records (by record_id) in `rows`. */
function exactFromRows(rows: readonly string[]): Map<string, Exact> {
  const out = new Map<string, Exact>();
  const seen = new Set<string>();
  for (const line of rows) {
    const f = line.split(',');
    if (seen.has(f[I.id]!)) continue;
    seen.add(f[I.id]!);
    const hour = Math.floor(Date.parse(f[I.time]!) / 3_600_000) * 3_600_000;
    const key = `${hour}|${f[I.tenant]}`;
    let e = out.get(key);
    if (e === undefined) {
      e = {
        queries: 0,
        responses: 0,
        rcodes: new Array(RCODE_LABELS.length).fill(0),
        qtypes: new Array(QTYPE_LABELS.length).fill(0),
        clients: new Set(),
        qnames: new Map(),
        sampled: false,
      };
      out.set(key, e);
    }
    const w = Number(f[I.rate]);
    if (w > 1) e.sampled = true;
    const type = f[I.type]!;
    if (type.endsWith('_RESPONSE')) {
      e.responses += w;
      if (f[I.rcode] !== '') e.rcodes[RCODE_INDEX[RCODE_CODE.get(f[I.rcode]!)!]!]! += w;
    } else {
      e.queries += w;
      if (f[I.qtype] !== '') e.qtypes[QTYPE_INDEX[QTYPE_CODE.get(f[I.qtype]!)!]!]! += w;
    }
    if (!type.startsWith('RESOLVER_') && !type.startsWith('FORWARDER_')) e.clients.add(f[I.addr]!);
    e.qnames.set(f[I.qname]!, (e.qnames.get(f[I.qname]!) ?? 0) + w);
  }
  return out;
}

/** Parses an aggregate file (CSV with one quoted JSON field) into objects. */
function parseAggregateCsv(text: string): Record<string, string>[] {
  const lines = text.split('\r\n').filter((l) => l !== '');
  const header = lines[0]!.split(',');
  assert.deepEqual(header, [...AGG_COLUMNS]);
  return lines.slice(1).map((line) => {
    const fields: string[] = [];
    let i = 0;
    while (i <= line.length) {
      if (line[i] === '"') {
        let s = '';
        i++;
        for (;;) {
          if (line[i] === '"' && line[i + 1] === '"') {
            s += '"';
            i += 2;
          } else if (line[i] === '"') {
            i++;
            break;
          } else s += line[i++];
        }
        fields.push(s);
        i++;
      } else {
        const j = line.indexOf(',', i);
        const end = j < 0 ? line.length : j;
        fields.push(line.slice(i, end));
        i = end + 1;
      }
    }
    return Object.fromEntries(header.map((h, k) => [h, fields[k] ?? '']));
  });
}

function readAggregateFiles(files: readonly string[]): Record<string, string>[] {
  return files.flatMap((f) => {
    const data = fs.readFileSync(f);
    return parseAggregateCsv((f.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8'));
  });
}

/** Sums aggregate rows per "<hour ms>|<tenant>" (what the view does, in TypeScript). */
function sumRows(rows: readonly Record<string, string>[]) {
  const out = new Map<
    string,
    {
      queries: number;
      responses: number;
      resent: number;
      rcodes: number[];
      qtypes: number[];
      hll: Uint8Array;
    }
  >();
  for (const r of rows) {
    const key = `${Date.parse(r.hour_start!)}|${r.tenant}`;
    let s = out.get(key);
    if (s === undefined) {
      s = {
        queries: 0,
        responses: 0,
        resent: 0,
        rcodes: new Array(RCODE_LABELS.length).fill(0),
        qtypes: new Array(QTYPE_LABELS.length).fill(0),
        hll: new Uint8Array(HLL_M),
      };
      out.set(key, s);
    }
    s.queries += Number(r.queries);
    s.responses += Number(r.responses);
    s.resent += Number(r.resent_records);
    RCODE_LABELS.forEach((l, k) => {
      s.rcodes[k]! += Number(r[`rcode_${l.toLowerCase()}`]);
    });
    QTYPE_LABELS.forEach((l, k) => {
      s.qtypes[k]! += Number(r[`qtype_${l.toLowerCase()}`]);
    });
    const h = hllFromText(r.clients_hll!);
    for (let i = 0; i < HLL_M; i++) if (h[i]! > s.hll[i]!) s.hll[i] = h[i]!;
  }
  return out;
}

function service(dir: string, id: string, journal: boolean): AggregateService {
  return new AggregateService({
    outputDir: dir,
    enricherId: id,
    key: KEY,
    graceMs: 0,
    journal,
    compression: 'gzip',
  });
}

// ---- tests --------------------------------------------------------------------------------

describe('aggregates equal the exact answers from the rows of the same input', () => {
  test('no re-sends: queries, responses, rcodes, qtypes exact; clients within 3 RSE; top-K within its bound; sampled scaled', async () => {
    const pol = await policy();
    const frames = fixture(6000, 1);
    const dir = path.join(tmpRoot, 'exact');
    const svc = service(dir, 'enricher-0', false);
    const sink = new MemorySink();
    const pipeline = new RecordPipeline(sink, 'enricher-0', () => pol);
    pipeline.observer = svc.aggregator;
    const plain = new RowSource('file-a', '');
    const sampled = new RowSource('file-b', '', 4);
    frames.forEach((f, i) => {
      pipeline.process(f, 0, f.length, i % 10 === 0 ? sampled : plain, 1, i);
    });
    await svc.close();
    assert.equal(svc.published.length, 2, 'one file per hour');
    const rows = readAggregateFiles(svc.published);
    const exact = exactFromRows(sink.rows);
    assert.equal(rows.length, exact.size);
    for (const r of rows) {
      const e = exact.get(`${Date.parse(r.hour_start!)}|${r.tenant}`);
      assert.ok(e !== undefined, `${r.hour_start} ${r.tenant}`);
      assert.equal(Number(r.queries), e.queries);
      assert.equal(Number(r.responses), e.responses);
      assert.equal(Number(r.resent_records), 0);
      assert.equal(r.estimated, e.sampled ? 'TRUE' : 'FALSE');
      RCODE_LABELS.forEach((l, k) => {
        assert.equal(Number(r[`rcode_${l.toLowerCase()}`]), e.rcodes[k], l);
      });
      QTYPE_LABELS.forEach((l, k) => {
        assert.equal(Number(r[`qtype_${l.toLowerCase()}`]), e.qtypes[k], l);
      });
      const est = Number(r.clients_estimate);
      assert.ok(
        Math.abs(est - e.clients.size) <= 3 * HLL_RSE * e.clients.size + 1,
        `${est} vs ${e.clients.size}`,
      );
      // Space-Saving: a listed name's true count in [count - error, count]; unlisted <= bound.
      const top = JSON.parse(r.top_qnames!) as [string, number, number][];
      const bound = Number(r.top_qnames_bound);
      const listed = new Set(top.map(([n]) => n));
      for (const [n, c, err] of top) {
        const truth = e.qnames.get(n) ?? 0;
        assert.ok(truth <= c && truth >= c - err, `${n}: ${truth} not in [${c - err}, ${c}]`);
      }
      for (const [n, truth] of e.qnames)
        if (!listed.has(n)) assert.ok(truth <= bound, `${n}: ${truth} > ${bound}`);
      if (e.qnames.size > TOPK_SLOTS) assert.ok(bound > 0);
    }
    assert.ok(rows.some((r) => r.estimated === 'TRUE'));
    assert.ok(
      rows.some((r) => r.tenant === ''),
      'records without a network have their own group',
    );
  });

  test('unique clients: a fixture of known cardinality (v4 and v6) within 3 RSE; the sketch is keyed', () => {
    for (const n of [100, 5_000, 60_000]) {
      const regs = new Uint8Array(HLL_M);
      const h = new KeyedClientHash(KEY);
      for (let i = 0; i < n; i++) {
        const a =
          i % 3 === 0
            ? Buffer.from([
                0x20,
                0x01,
                0x0d,
                0xb8,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                i >> 16,
                (i >> 8) & 255,
                i & 255,
              ])
            : Buffer.from([10, i >> 16, (i >> 8) & 255, i & 255]);
        const p = h.of(a, 0, a.length);
        // Twice: duplicates do not count.
        for (const q of [p, h.of(a, 0, a.length)]) if (regs[q >>> 6]! < (q & 63)) regs[q >>> 6] = q & 63;
      }
      const est = hllEstimate(regs);
      assert.ok(Math.abs(est - n) <= 3 * HLL_RSE * n, `n=${n}: estimate ${est}`);
    }
    // Another key sends the same address elsewhere: without the key no register can be predicted.
    const a = Buffer.from([192, 0, 2, 1]);
    const differs = [...Array(8)].some(
      () => new KeyedClientHash(randomBytes(32)).of(a, 0, 4) !== new KeyedClientHash(KEY).of(a, 0, 4),
    );
    assert.ok(differs);
    assert.notEqual(new KeyedClientHash(KEY).keyId, new KeyedClientHash(randomBytes(32)).keyId);
  });

  test('Space-Saving: exact while names fit, bounded once full', () => {
    const ss = new SpaceSaving();
    const truth = new Map<string, number>();
    const r = rng(7);
    for (let i = 0; i < 50_000; i++) {
      const name = `q${Math.floor(1 / (r() * 0.999 + 0.001))}.example`;
      truth.set(name, (truth.get(name) ?? 0) + 1);
      const b = Buffer.from(name);
      ss.add(b, b.length, 1);
    }
    const listed = new Map(ss.entries().map(([n, c, e]) => [n, [c, e] as const]));
    assert.ok(ss.bound <= 50_000 / TOPK_SLOTS);
    for (const [n, t] of truth) {
      const l = listed.get(n);
      if (l === undefined) assert.ok(t <= ss.bound);
      else assert.ok(t <= l[0] && t >= l[0] - l[1], n);
    }
    // The heaviest name is exact enough to be first.
    const top = [...truth.entries()].sort((x, y) => y[1] - x[1])[0]!;
    assert.equal(ss.entries()[0]![0], top[0]);
  });
});

// ---- the journal: kill -9, re-sends, rows on and off ----------------------------------------

function batches(frames: readonly Buffer[], per: number): Buffer[] {
  const out: Buffer[] = [];
  const enc = new BatchEncoder();
  for (let i = 0, seq = 1; i < frames.length; i += per, seq++) {
    enc.begin(seq, '', 0);
    for (const f of frames.slice(i, i + per)) assert.ok(enc.append(f));
    out.push(enc.finish());
  }
  return out;
}

/** One enricher "pod": pipeline (+ rows or not), aggregates with journal, fed like LinkConnection. */
async function pod(dir: string, id: string, pol: Policy, rows: boolean, staleAfterMs?: number) {
  const sink = new MemorySink();
  const svc = service(dir, id, true);
  const pipeline = new RecordPipeline(rows ? sink : null, id, () => pol);
  pipeline.observer = svc.aggregator;
  const replay = new RecordPipeline(null, id, () => pol);
  replay.observer = svc.aggregator;
  await svc.open((b, into) => {
    replay.observer = into;
    replayInto(replay, b);
  }, staleAfterMs);
  const gate = new AckGate(sink, svc);
  const view = new BatchView();
  return {
    sink,
    svc,
    /** Processes a batch frame and resolves when it would be acknowledged. */
    async send(frame: Buffer, marksResends = true): Promise<void> {
      view.parse(frame, 5, frame.length);
      const b: LinkBatch = {
        agentId: 'agent-1',
        incarnation: 'inc1',
        marksResends,
        view,
        buf: frame,
        start: 5,
        end: frame.length,
      };
      svc.onBatch(b);
      const src = new RowSource('agent-1/inc1', 'agent-1');
      while (view.nextRecord())
        pipeline.process(view.buf, view.recordStart, view.recordEnd, src, view.seq, view.recordIndex);
      await gate.flush();
    },
  };
}

function totals(rows: readonly Record<string, string>[]) {
  let queries = 0;
  let responses = 0;
  let resent = 0;
  for (const r of rows) {
    queries += Number(r.queries);
    responses += Number(r.responses);
    resent += Number(r.resent_records);
  }
  return { queries, responses, resent };
}

function exactTotals(rows: readonly string[]) {
  let queries = 0;
  let responses = 0;
  for (const e of exactFromRows(rows).values()) {
    queries += e.queries;
    responses += e.responses;
  }
  return { queries, responses };
}

for (const rowsOn of [true, false]) {
  test(`kill -9 with re-sends (rows ${rowsOn ? 'on' : 'off'}): totals within [exact, exact + resent_records], nothing acknowledged lost`, async () => {
    const pol = await policy();
    const frames = batches(fixture(3000, 2), 50); // 60 batches
    const dir = path.join(tmpRoot, `kill-${rowsOn}`);
    const reference = new MemorySink();
    {
      // Exact: the rows of every record once.
      const p = new RecordPipeline(reference, 'ref', () => pol);
      const view = new BatchView();
      const src = new RowSource('agent-1/inc1', 'agent-1');
      for (const f of frames) {
        view.parse(f, 5, f.length);
        while (view.nextRecord())
          p.process(view.buf, view.recordStart, view.recordEnd, src, view.seq, view.recordIndex);
      }
    }
    // Pod A takes batches 1-40 (all journaled = acknowledged), then dies (kill -9: no close,
    // nothing published). Batches 31-40 lost their acks: the agent re-sends them to pod B,
    // marked, together with 41-60. Pod A restarts with the same id and replays its journal.
    const a = await pod(dir, 'enricher-a', pol, rowsOn);
    for (const f of frames.slice(0, 40)) await a.send(f);
    const aRows = [...a.sink.rows];
    a.svc.abandon();
    assert.equal(a.svc.published.length, 0);
    const b = await pod(dir, 'enricher-b', pol, rowsOn);
    for (const f of frames.slice(30, 40)) await b.send(markResent(f));
    for (const f of frames.slice(40)) await b.send(f);
    await b.svc.close();
    const a2 = await pod(dir, 'enricher-a', pol, rowsOn);
    assert.equal(a2.svc.stats.replayedBatches, 40);
    await a2.svc.close();
    const rows = readAggregateFiles([...a2.svc.published, ...b.svc.published]);
    const got = totals(rows);
    const exact = exactTotals(reference.rows);
    assert.ok(got.resent > 0);
    const records = (from: number, to: number) =>
      frames.slice(from, to).reduce((n, f) => n + new BatchView().parse(f, 5, f.length).recordCount, 0);
    assert.equal(got.resent, records(30, 40), 'resent_records = the re-sent batches records');
    assert.ok(got.queries + got.responses >= exact.queries + exact.responses, 'never below the truth');
    assert.ok(
      got.queries + got.responses <= exact.queries + exact.responses + got.resent,
      'at most resent_records above',
    );
    assert.equal(got.queries + got.responses, exact.queries + exact.responses + records(30, 40));
    if (rowsOn) {
      // The rows written by both pods, deduplicated by record_id, are the exact answer too.
      assert.deepEqual(exactTotals([...aRows, ...b.sink.rows]), exact);
    } else assert.equal(a.sink.rows.length + b.sink.rows.length, 0, 'rows off: no rows');
  });
}

test('a pod that never returns under its id: a peer adopts its journal once, nothing lost or doubled', async () => {
  const pol = await policy();
  const frames = batches(fixture(1000, 6), 100);
  const dir = path.join(tmpRoot, 'adopt');
  const a = await pod(dir, 'enricher-dead', pol, false);
  for (const f of frames.slice(0, 6)) await a.send(f);
  a.svc.abandon();
  // A live peer (fresh files) is left alone; a stale one is adopted.
  const b = await pod(dir, 'enricher-b', pol, false);
  assert.equal(b.svc.stats.adoptedJournals, 0);
  for (const f of frames.slice(6)) await b.send(f);
  b.svc.abandon();
  const c = await pod(dir, 'enricher-c', pol, false, 0);
  assert.equal(c.svc.stats.adoptedJournals, 2, 'both dead journals (a, b) adopted');
  await c.svc.close();
  const again = await pod(dir, 'enricher-d', pol, false, 0);
  assert.equal(
    again.svc.stats.adoptedJournals,
    0,
    'nothing left to adopt (a clean close removes the journal)',
  );
  await again.svc.close();
  const got = totals(readAggregateFiles([...c.svc.published, ...again.svc.published]));
  const ref = new MemorySink();
  const p = new RecordPipeline(ref, 'x', () => pol);
  const view = new BatchView();
  for (const f of frames) {
    view.parse(f, 5, f.length);
    while (view.nextRecord())
      p.process(
        view.buf,
        view.recordStart,
        view.recordEnd,
        new RowSource('s', ''),
        view.seq,
        view.recordIndex,
      );
  }
  const e = exactTotals(ref.rows);
  assert.equal(got.queries, e.queries);
  assert.equal(got.responses, e.responses);
  assert.equal(
    fs.readdirSync(path.join(dir, '_partial', 'enricher-c')).filter((n) => n.startsWith('adopted-')).length,
    0,
  );
});

test('an old agent (no marks_resends): every batch counts in resent_records', async () => {
  const pol = await policy();
  const frames = batches(fixture(200, 3), 50);
  const p = await pod(path.join(tmpRoot, 'old-agent'), 'enricher-0', pol, true);
  for (const f of frames) await p.send(f, false);
  await p.svc.close();
  const t = totals(readAggregateFiles(p.svc.published));
  assert.equal(t.resent, t.queries + t.responses);
});

test('journal: a torn tail is ignored; an EMITTING entry is published again under the same epoch and name', async () => {
  const pol = await policy();
  const dir = path.join(tmpRoot, 'emitting');
  const frames = batches(fixture(300, 4), 100);
  const a = await pod(dir, 'enricher-0', pol, false);
  for (const f of frames) await a.send(f);
  a.svc.abandon();
  const file = path.join(dir, '_partial', 'enricher-0', JOURNAL_FILE);
  const before = readJournal(file)!;
  assert.equal(before.batches.length, 3);
  const epoch = before.snapshot!.epoch;
  const hour = T0 * 1000;
  // As if the process died between publishing hour T0 and swapping the journal.
  fs.appendFileSync(file, entry(KIND_EMITTING, Buffer.from(JSON.stringify({ hours: [hour] }))));
  fs.appendFileSync(file, Buffer.from([0, 0, 1, 0, 2, 9, 9])); // torn
  const b = await pod(dir, 'enricher-0', pol, false);
  assert.equal(b.svc.stats.tornBytes, 7);
  // Both fixture hours are long closed: the EMITTING hour and the other one go out at open, in
  // the dead segment's epoch (so the EMITTING hour's file has the name it had before the crash).
  assert.equal(b.svc.published.length, 2);
  const names = b.svc.published.map((f) => path.basename(f)).sort();
  assert.deepEqual(names, [
    `snowtap_agg-enricher-0-${epoch}-20261122T03.csv.gz`,
    `snowtap_agg-enricher-0-${epoch}-20261122T04.csv.gz`,
  ]);
  const rows = readAggregateFiles(b.svc.published);
  assert.ok(rows.every((r) => r.emission_id === `enricher-0-${epoch}`));
  await b.svc.close();
  // Nothing double-counted, nothing lost: both hours in total = the input.
  const all = totals(readAggregateFiles(b.svc.published));
  const exact = new MemorySink();
  const p = new RecordPipeline(exact, 'x', () => pol);
  const view = new BatchView();
  for (const f of frames) {
    view.parse(f, 5, f.length);
    while (view.nextRecord())
      p.process(
        view.buf,
        view.recordStart,
        view.recordEnd,
        new RowSource('s', ''),
        view.seq,
        view.recordIndex,
      );
  }
  const e = exactTotals(exact.rows);
  assert.equal(all.queries + all.responses, e.queries + e.responses);
  // Everything published at close: the journal is gone.
  assert.equal(readJournal(file), null);
});

// ---- the shipped SQL: UDFs and the view ------------------------------------------------------

describe('sketch functions and the SNOWTAP_AGGREGATES view', () => {
  const merge = findStatement(ALL, /^CREATE OR REPLACE FUNCTION SNOWTAP_HLL_MERGE\b/i);
  const estimate = findStatement(ALL, /^CREATE OR REPLACE FUNCTION SNOWTAP_HLL_ESTIMATE\b/i);
  // The Snowflake JavaScript UDF bodies, run as Snowflake runs them: arguments by upper-case name.
  const jsMerge = new Function('SKETCHES', dollarBody(merge[0]!.text)) as (
    s: (string | null)[],
  ) => string | null;
  const jsEstimate = new Function('SKETCH', dollarBody(estimate[0]!.text)) as (
    s: string | null,
  ) => number | null;

  const topk = findStatement(ALL, /^CREATE OR REPLACE FUNCTION SNOWTAP_TOPK_MERGE\b/i);
  type TopK = { top: [string, number, number][]; bound: number };
  const jsTopk = new Function('PARTS', dollarBody(topk[0]!.text)) as (
    parts: ({ top: string | TopK['top'] | null; bound: number } | TopK | null)[],
  ) => TopK;
  const topkPart = (r: Record<string, string>) => ({ top: r.top_qnames!, bound: Number(r.top_qnames_bound) });
  /** Every listed name's true total lies in [count - error, count]; every other is <= bound. */
  const assertTopkHolds = (m: TopK, truth: ReadonlyMap<string, number>) => {
    const listed = new Set(m.top.map(([n]) => n));
    for (const [n, c, e] of m.top) {
      const t = truth.get(n) ?? 0;
      assert.ok(t <= c && t >= c - e, `${n}: ${t} not in [${c - e}, ${c}]`);
    }
    for (const [n, t] of truth) if (!listed.has(n)) assert.ok(t <= m.bound, `${n}: ${t} > ${m.bound}`);
  };

  test('the JavaScript UDFs agree with the enricher: merge = register-wise max, estimate = hllEstimate', () => {
    assert.equal(merge.length, 1);
    assert.equal(estimate.length, 1);
    assert.equal(topk.length, 1);
    const h = new KeyedClientHash(KEY);
    const regs = [new Uint8Array(HLL_M), new Uint8Array(HLL_M)];
    const union = new Uint8Array(HLL_M);
    for (let i = 0; i < 30_000; i++) {
      const p = h.of(Buffer.from([10, i >> 16, (i >> 8) & 255, i & 255]), 0, 4);
      for (const r of i < 20_000 ? [regs[0]!, union] : [regs[1]!, union])
        if (r[p >>> 6]! < (p & 63)) r[p >>> 6] = p & 63;
      if (i >= 10_000 && i < 20_000) if (regs[1]![p >>> 6]! < (p & 63)) regs[1]![p >>> 6] = p & 63;
    }
    const merged = jsMerge([hllText(regs[0]!), null, hllText(regs[1]!)]);
    assert.equal(merged, hllText(union));
    assert.equal(jsEstimate(merged), hllEstimate(union));
    assert.ok(Math.abs(jsEstimate(merged)! - 30_000) <= 3 * HLL_RSE * 30_000);
    assert.equal(jsMerge([null]), null);
    assert.equal(jsEstimate(null), null);
    assert.equal(jsEstimate(hllText(new Uint8Array(HLL_M))), 0);
    assert.throws(() => jsMerge(['abc']), /registers/);
  });

  test('SNOWTAP_TOPK_MERGE (JavaScript UDF): two pods summaries merged stay within the bound, and merge again', async () => {
    const pol = await policy();
    const frames = fixture(6000, 8);
    const rows: Record<string, string>[] = [];
    const all = new MemorySink();
    for (const [k, id] of ['enricher-0', 'enricher-1'].entries()) {
      const svc = service(path.join(tmpRoot, 'topk'), id, false);
      const p = new RecordPipeline(all, id, () => pol);
      p.observer = svc.aggregator;
      frames.forEach((f, i) => {
        if (i % 2 === k) p.process(f, 0, f.length, new RowSource(`f${k}`, ''), 1, i);
      });
      await svc.close();
      rows.push(...readAggregateFiles(svc.published));
    }
    // Every hour of tenant-a, both pods: one merged summary.
    const mine = rows.filter((r) => r.tenant === 'tenant-a');
    const merged = jsTopk(mine.map(topkPart));
    const truth = new Map<string, number>();
    for (const [key, e] of exactFromRows(all.rows)) {
      if (!key.endsWith('|tenant-a')) continue;
      for (const [n, c] of e.qnames) truth.set(n, (truth.get(n) ?? 0) + c);
    }
    assert.equal(merged.top.length, TOPK_SLOTS);
    assertTopkHolds(merged, truth);
    // Merged per pod first, then the two results (the view's column merged again): still bounded.
    const perPod = ['enricher-0', 'enricher-1'].map((id) =>
      jsTopk(mine.filter((r) => r.enricher_id === id).map(topkPart)),
    );
    assert.ok(perPod.every((m) => m.top.length > 0));
    assertTopkHolds(jsTopk(perPod), truth);
    assert.deepEqual(jsTopk([null, { top: null, bound: 0 }]), { top: [], bound: 0 });
    assert.deepEqual(jsTopk([{ top: '[]', bound: 7 }]), { top: [], bound: 7 });
  });

  test('two pods and a duplicated file through the view in DuckDB: exact totals, merged clients and top names', async () => {
    const pol = await policy();
    const frames = fixture(4000, 5, 0.1);
    const dir = path.join(tmpRoot, 'view');
    const all = new MemorySink();
    const files: string[] = [];
    for (const [k, id] of ['enricher-0', 'enricher-1'].entries()) {
      const svc = service(dir, id, false);
      const p = new RecordPipeline(all, id, () => pol);
      p.observer = svc.aggregator;
      const src = new RowSource(`file-${k}`, '');
      frames.forEach((f, i) => {
        if (i % 2 === k) p.process(f, 0, f.length, src, 1, i);
      });
      await svc.close();
      files.push(...svc.published);
    }
    const exact = exactFromRows(all.rows);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const stmts = (re: RegExp) => findStatement(ALL, re);
      for (const s of stmts(/^CREATE OR REPLACE MACRO\b/i)) await conn.run(s.text);
      await conn.run(
        toDuckDb(stmts(/^CREATE (TRANSIENT )?TABLE (IF NOT EXISTS )?SNOWTAP_AGGREGATES_RAW\b/i)[0]!.text),
      );
      await conn.run(toDuckDb(stmts(/^CREATE OR REPLACE VIEW SNOWTAP_AGGREGATES\b/i)[0]!.text));
      const duck = (name: string) => {
        const t = aggColumnType(name);
        if (name === 'hour_start') return `CAST(replace(${name}, 'Z', '') AS TIMESTAMP_NS)`;
        return `CAST(${name} AS ${toDuckDb(t).replace('TIMESTAMP_NTZ(9)', 'TIMESTAMP_NS')})`;
      };
      // The first pod's first file arrives twice (a REFRESH, or a re-publish after a crash).
      const loads = [...files, files[0]!];
      for (const [k, f] of loads.entries()) {
        await conn.run(
          `INSERT INTO SNOWTAP_AGGREGATES_RAW SELECT ${AGG_COLUMNS.map(duck).join(', ')}, '${f}', TIMESTAMPTZ '2026-12-01 00:00:00+00' + INTERVAL (${k}) SECOND
           FROM read_csv('${f}', header = true, all_varchar = true, quote = '"', escape = '"', delim = ',')`,
        );
      }
      const raw = await (
        await conn.runAndReadAll('SELECT count(*)::INTEGER AS n FROM SNOWTAP_AGGREGATES_RAW')
      ).getRowObjects();
      const result = await conn.runAndReadAll(
        `SELECT epoch_ms(hour_start::TIMESTAMP)::BIGINT AS h, coalesce(tenant, '') AS tenant, enrichers::INTEGER AS enrichers,
                queries::BIGINT AS queries, responses::BIGINT AS responses, resent_records::BIGINT AS resent,
                rcode_nxdomain::BIGINT AS nx, qtype_a::BIGINT AS a, clients_estimate, top_qnames::VARCHAR AS top
         FROM SNOWTAP_AGGREGATES ORDER BY h, tenant`,
      );
      const got = result.getRowObjects();
      assert.equal(got.length, exact.size);
      assert.ok(Number(raw[0]!.n) > got.length * 2 - 1, 'duplicates and both pods are in the raw table');
      const fileRows = readAggregateFiles(files);
      // Summaries that overflowed (bound > 0) are among them, so the merge arithmetic is tested.
      assert.ok(fileRows.some((r) => Number(r.top_qnames_bound) > 0));
      const summed = sumRows(fileRows);
      for (const g of got) {
        const key = `${Number(g.h)}|${g.tenant}`;
        const e = exact.get(key)!;
        assert.ok(e !== undefined, key);
        assert.equal(Number(g.enrichers), 2);
        assert.equal(Number(g.queries), e.queries, `${key} queries`);
        assert.equal(Number(g.responses), e.responses, `${key} responses`);
        assert.equal(Number(g.resent), 0);
        assert.equal(Number(g.nx), e.rcodes[RCODE_INDEX[3]!]);
        assert.equal(Number(g.a), e.qtypes[QTYPE_INDEX[1]!]);
        const est = Number(g.clients_estimate);
        // The DuckDB macros give the TypeScript estimate of the merged sketch.
        assert.ok(Math.abs(est - hllEstimate(summed.get(key)!.hll)) < 1e-6, `${est}`);
        assert.ok(
          Math.abs(est - e.clients.size) <= 3 * HLL_RSE * e.clients.size + 1,
          `${est} vs ${e.clients.size}`,
        );
        // The DuckDB macro gives the JavaScript UDF's merge of the same (deduplicated) rows,
        // and it holds against the exact counts.
        const top = JSON.parse(String(g.top)) as TopK;
        const same = fileRows.filter((r) => `${Date.parse(r.hour_start!)}|${r.tenant}` === key);
        assert.deepEqual(top, jsTopk(same.map(topkPart)), key);
        assertTopkHolds(top, e.qnames);
      }
      // The view's top_qnames merges again (all hours per tenant), as in Snowflake.
      const perTenant = (
        await conn.runAndReadAll(
          `SELECT coalesce(tenant, '') AS tenant, SNOWTAP_TOPK_MERGE(ARRAY_AGG(top_qnames))::VARCHAR AS top
           FROM SNOWTAP_AGGREGATES GROUP BY tenant`,
        )
      ).getRowObjects();
      assert.ok(perTenant.length >= 2);
      for (const g of perTenant) {
        const truth = new Map<string, number>();
        for (const [key, e] of exact)
          if (key.split('|')[1] === g.tenant)
            for (const [n, c] of e.qnames) truth.set(n, (truth.get(n) ?? 0) + c);
        const top = JSON.parse(String(g.top)) as TopK;
        assert.ok(top.top.length > 0);
        assertTopkHolds(top, truth);
        const views = got.filter((v) => v.tenant === g.tenant).map((v) => JSON.parse(String(v.top)) as TopK);
        assert.deepEqual(top, jsTopk(views));
      }
    } finally {
      conn.closeSync();
    }
    // Counters by index as the service writes them (layout sanity).
    assert.ok(C_QUERIES < C_RESPONSES && C_RESPONSES < C_RESENT && C_RESENT < C_RCODE && C_RCODE < C_QTYPE);
  });
});
