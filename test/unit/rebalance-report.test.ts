// The rebalance load test's bookkeeping, without processes: CSV audit (row counts, duplicate
// record_ids, uncommitted chunks), Prometheus text parsing, per-second shares, the newcomer
// figures, the pass/fail checks, and the self-contained HTML report.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { metricSum, parseMetrics } from '../../loadtest/cluster';
import { auditCsv, scanCsv } from '../../loadtest/csv-audit';
import { haproxyConfig } from '../../loadtest/haproxy';
import { evaluateRun, type RebalanceOptions, type RunFacts } from '../../loadtest/rebalance-checks';
import {
  analyseNewcomer,
  type CounterSample,
  renderHtml,
  shareRows,
  windowShare,
} from '../../loadtest/report';

const dir = mkdtempSync(path.join(tmpdir(), 'rebalance-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const HEADER = 'record_id,event_time,qname\r\n';
const csv = (ids: string[]) =>
  HEADER + ids.map((id) => `${id},2026-01-01T00:00:00.000000000Z,a.example\r\n`).join('');

test('scanCsv reads the first field of each record across quoted commas, quotes and line breaks', () => {
  const text =
    'record_id,qname\n' +
    'a/1/1/0,"x,y"\n' +
    '"a/1/1/1","line\nbreak"\r\n' +
    '"q""uoted",plain\n' +
    'a/1/1/2,"ends with ""quote"""\n' +
    'last,no-newline';
  const ids: string[] = [];
  assert.equal(
    scanCsv(Buffer.from(text), (id) => ids.push(id)),
    5,
  );
  assert.deepEqual(ids, ['a/1/1/0', 'a/1/1/1', 'q"uoted', 'a/1/1/2', 'last']);
  assert.equal(
    scanCsv(Buffer.from('record_id\n'), () => {}),
    0,
  );
  assert.equal(
    scanCsv(Buffer.alloc(0), () => {}),
    0,
  );
});

test('auditCsv counts rows per directory, duplicates across enrichers, gzip chunks and partials', () => {
  const e1 = path.join(dir, 'e1');
  const e2 = path.join(dir, 'e2');
  mkdirSync(path.join(e1, '2026/01/01/00'), { recursive: true });
  mkdirSync(path.join(e2, '2026/01/01/00'), { recursive: true });
  mkdirSync(path.join(e2, '_partial/e2'), { recursive: true });
  writeFileSync(path.join(e1, '2026/01/01/00/snowtap-e1-a-1.csv'), csv(['ag/i/1/0', 'ag/i/1/1', 'ag/i/2/0']));
  writeFileSync(
    path.join(e1, '2026/01/01/00/snowtap-e1-a-2.csv.gz'),
    gzipSync(csv(['ag/i/3/0', 'ag/i/3/9'])),
  );
  // A re-sent batch written by another enricher: the same id twice is one duplicate.
  writeFileSync(
    path.join(e2, '2026/01/01/00/snowtap-e2-a-1.csv'),
    csv(['ag/i/2/0', 'other/j/1/0', 'bad-id']),
  );
  writeFileSync(path.join(e2, '_partial/e2/snowtap-e2-b-1.csv.partial'), csv(['ag/i/9/0']));
  writeFileSync(path.join(e2, '_partial/e2/owner.lock'), 'x');
  const a = auditCsv([e1, e2, path.join(dir, 'absent')]);
  assert.deepEqual(a, {
    files: 3,
    rows: 8,
    duplicates: 1,
    rowsPerDir: [5, 3, 0],
    partialFiles: 1,
    badIds: 1,
  });
});

test('parseMetrics and metricSum pick one series by labels', () => {
  const text = [
    '# HELP snowtap_enricher_records_received_total x',
    '# TYPE snowtap_enricher_records_received_total counter',
    'snowtap_enricher_records_received_total{input="link"} 1234',
    'snowtap_enricher_records_received_total{input="dnstap"} 5',
    'snowtap_agent_records_dropped_total{reason="buffer_full"} 2',
    'snowtap_agent_records_dropped_total{reason="say \\"hi\\", ok"} 3',
    'snowtap_agent_link_switches_total 7',
    '',
  ].join('\n');
  const m = parseMetrics(text);
  assert.equal(metricSum(m, 'snowtap_enricher_records_received_total', { input: 'link' }), 1234);
  assert.equal(metricSum(m, 'snowtap_enricher_records_received_total'), 1239);
  assert.equal(metricSum(m, 'snowtap_agent_records_dropped_total'), 5);
  assert.equal(metricSum(m, 'snowtap_agent_link_switches_total'), 7);
  assert.equal(metricSum(m, 'absent_total'), 0);
});

/** Counters of three enrichers, e3 appearing at t=3 and taking `e3Share` from t=4 on. */
function samples(e3Share: number, seconds = 20): CounterSample[] {
  const out: CounterSample[] = [{ t: 0, counts: [0, 0, null] }];
  const c = [0, 0, 0];
  for (let t = 1; t <= seconds; t++) {
    const s3 = t >= 4 ? e3Share : 0;
    c[0] += 1000 * ((1 - s3) / 2);
    c[1] += 1000 * ((1 - s3) / 2);
    c[2] += 1000 * s3;
    out.push({ t, counts: [c[0]!, c[1]!, t >= 3 ? c[2]! : null] });
  }
  return out;
}

test('shareRows and analyseNewcomer: rates, shares, time to 70% of the fair share', () => {
  const rows = shareRows(samples(1 / 3));
  assert.equal(rows.length, 20);
  assert.deepEqual(rows[0]!.rates, [500, 500, 0]);
  assert.ok(Math.abs(rows[5]!.shares[2]! - 1 / 3) < 1e-9);
  assert.ok(Math.abs(windowShare(rows, 2, 3, 20)! - 1 / 3) < 1e-9);
  const f = analyseNewcomer(rows, 2, 2.5, 20, 3, 1);
  assert.equal(f.timeToThreshold, 1.5);
  assert.equal(f.shareAfterReach, 0.3333);
  const never = analyseNewcomer(shareRows(samples(0.1)), 2, 2.5, 20, 3, 1);
  assert.equal(never.timeToThreshold, null);
  assert.equal(never.shareObserved, 0.0944); // 17 seconds at 10%, one at 0
});

const OPTS: RebalanceOptions = {
  switchInterval: 1,
  agents: 6,
  enrichers: 2,
  rate: 1000,
  warmup: 3,
  observe: 12,
  afterRemove: 5,
};

function facts(over: Partial<RunFacts> = {}, e3Share = 1 / 3): RunFacts {
  const s = samples(e3Share);
  // e1 removed at t=15: it stops counting, e2 and e3 share its traffic.
  for (const x of s) if (x.t > 15) x.counts[0] = null;
  for (let i = 16; i < s.length; i++) {
    const prev = s[i - 1]!.counts;
    s[i]!.counts[1] = prev[1]! + 500;
    s[i]!.counts[2] = prev[2]! + 500;
  }
  const sent = 20_000;
  return {
    names: ['e1', 'e2', 'e3'],
    samples: s,
    events: [{ t: 2.5, what: 'e3 added' }],
    addedAt: 2.5,
    observeEnd: 14.5,
    removedAt: 15,
    producersStoppedAt: 20,
    producers: [
      {
        framesSent: sent,
        bytesSent: 1,
        writes: 1,
        framesBehind: 0,
        seconds: 20,
        finished: true,
        error: null,
      },
    ],
    settled: true,
    firstSwitchAfterAdd: [1, 1.2, 0.4, 2, 1.1, 0.9],
    agentDrops: 0,
    exits: { e1: 0, e2: 0, e3: 0, 'agent-1': 0 },
    connectionsObserved: [10, 10, 10],
    audit: { files: 3, rows: sent, duplicates: 0, rowsPerDir: [sent, 0, 0], partialFiles: 0, badIds: 0 },
    workDir: '/nonexistent',
    ...over,
  };
}

test('evaluateRun passes a healthy switching run and names each failed criterion', () => {
  const ok = evaluateRun(OPTS, facts());
  assert.equal(ok.ok, true, JSON.stringify(ok.checks, null, 1));
  assert.equal(ok.lost, 0);
  assert.equal(ok.reachLimitS, 3.4);
  assert.equal(ok.steadyShare, 0.3333);
  const bad = evaluateRun(
    OPTS,
    facts({
      audit: {
        files: 3,
        rows: 19_990,
        duplicates: 3,
        rowsPerDir: [19_990, 0, 0],
        partialFiles: 1,
        badIds: 0,
      },
      firstSwitchAfterAdd: [1, null, 5, 1, 1, 1],
      exits: { e1: 1, e2: 0, e3: 0 },
    }),
  );
  const failed = Object.entries(bad.checks)
    .filter(([, c]) => !c.ok)
    .map(([n]) => n)
    .sort();
  assert.deepEqual(failed, [
    'agentsSwitched',
    'chunksCommitted',
    'cleanExits',
    'removedDrained',
    'zeroDuplicates',
    'zeroLoss',
  ]);
  assert.equal(bad.lost, 13);
  assert.equal(bad.ok, false);
});

test('evaluateRun: a starved newcomer fails with switching on; advisory checks never decide', () => {
  const starved = evaluateRun(OPTS, facts({}, 0.1));
  assert.equal(starved.checks.newcomerShare!.ok, false);
  assert.equal(starved.checks.newcomerReached!.ok, false);
  assert.equal(starved.checks.newcomerReached!.advisory, true);
  assert.equal(starved.ok, false);
  const off = evaluateRun({ ...OPTS, switchInterval: 0 }, facts({}, 0));
  assert.equal(off.checks.newcomerIdle!.ok, true);
  assert.equal(off.checks.newcomerShare, undefined);
  assert.equal(off.ok, true, JSON.stringify(off.checks, null, 1));
  assert.equal(evaluateRun({ ...OPTS, switchInterval: 0 }, facts({}, 1 / 3)).checks.newcomerIdle!.ok, false);
});

test('the HTML report is self-contained: inline SVG, no external assets', () => {
  const html = renderHtml([evaluateRun(OPTS, facts())]);
  assert.match(html, /<svg /);
  assert.match(html, /<polyline /);
  assert.match(html, /e3 added/);
  const refs = html.match(/(?:src|href)=["'][^"']*["']/g) ?? [];
  assert.deepEqual(refs, []);
});

test('haproxy config: uniform random per connection, long idle timeouts, pre-declared slots', () => {
  const cfg = haproxyConfig(7400, 4, '/tmp/x.sock');
  assert.match(cfg, /bind 127\.0\.0\.1:7400/);
  assert.match(cfg, /server-template s 1-4 127\.0\.0\.1:1 disabled/);
  assert.match(cfg, /timeout tunnel 1h/);
  assert.match(cfg, /option tcpka/);
  assert.match(cfg, /balance hash rand\n {2}hash-type map-based/);
  assert.match(cfg, /stats socket \/tmp\/x\.sock .*level admin/);
  assert.doesNotMatch(cfg, /shutdown-sessions/);
});
