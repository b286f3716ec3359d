// The autoscale scenario's figures (loadtest/autoscale-report.ts) on a hand-made run: scale-up
// time to the count the load needs, the bound summed from the rendered values, a new pod's
// share over [ready, ready + 2 x switch interval] against fair, the loss audit arithmetic; plus
// the target labels of each scrape path and Go durations as the chart writes them. Pure.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { targetLabels } from '../../loadtest/autoscale';
import {
  type AutoscaleFacts,
  evaluateAutoscale,
  podRates,
  renderAutoscaleHtml,
  type Sample,
} from '../../loadtest/autoscale-report';
import { durationSeconds } from '../../loadtest/chart-render';

function facts(): AutoscaleFacts {
  // Two pods (a, b) at 100/s each until t=20; a third pod c ready at t=30 that takes 50/s for
  // its first 6 s (a third of fair is 33 %; it gets 50 / 250 = 20 %).
  const samples: Sample[] = [];
  const count = { a: 0, b: 0, c: 0 };
  for (let t = 0; t <= 40; t++) {
    const enricher: Record<string, number> = { a: count.a, b: count.b };
    if (t >= 30) enricher.c = count.c;
    samples.push({
      t,
      enricher,
      backlogBytes: t >= 10 && t < 33 ? 8 << 20 : 0,
      dropped: 0,
      resentBatches: 1,
      drains: 0,
      recordsIn: 1000,
      bytesIn: 200_000,
    });
    count.a += 100;
    count.b += 100;
    if (t >= 30) count.c += 50;
  }
  return {
    options: {
      mode: 'iptables',
      scrapePath: 'servicemonitor',
      agents: 8,
      switchInterval: 3,
      syncPeriod: 15,
      peakFactor: 2.5,
    },
    chart: {
      set: [],
      scrapeIntervalSeconds: 5,
      rateWindowSeconds: 20,
      readinessPeriodSeconds: 5,
      preStopSleepSeconds: 5,
      terminationGracePeriodSeconds: 45,
      minReplicas: 2,
      maxReplicas: 20,
      triggers: [{ name: 'records-offered', query: 'sum(x)', target: 100 }],
      behavior: null,
      enricherAddress: 'snowtap-enricher.snowtap.svc:7400',
    },
    capacity: { recordsPerSecond: 120, cpuUsed: 0.1, offered: 300, startupSeconds: 1 },
    low: 60,
    peak: 250,
    stepAt: 10,
    stepDownAt: 40,
    producersStoppedAt: 40,
    events: [{ t: 10, what: 'load step' }],
    samples,
    replicaSamples: samples.map((s) => ({
      t: s.t,
      desired: s.t >= 25 ? 3 : 2,
      ready: s.t >= 30 ? 3 : 2,
      running: 3,
      offered: 250,
    })),
    syncs: [],
    pods: [
      {
        name: 'a',
        createdAt: 0,
        readyAt: 0,
        terminatingAt: null,
        sigtermAt: null,
        exitedAt: null,
        exit: null,
      },
      {
        name: 'b',
        createdAt: 0,
        readyAt: 0,
        terminatingAt: null,
        sigtermAt: null,
        exitedAt: null,
        exit: null,
      },
      {
        name: 'c',
        createdAt: 25,
        readyAt: 30,
        terminatingAt: null,
        sigtermAt: null,
        exitedAt: null,
        exit: null,
      },
    ],
    produced: 1000,
    framesBehind: 0,
    producerErrors: [],
    settled: true,
    agentExits: {},
    audit: { files: 3, rows: 1005, duplicates: 5, rowsPerDir: [], partialFiles: 0, badIds: 0 },
    workDir: '/nonexistent',
  };
}

test('figures: scale-up to the needed count, bound from the rendered values, new pod share vs fair, loss', () => {
  const r = evaluateAutoscale(facts());
  const g = r.figures;
  assert.equal(g.needed, 3, 'ceil(250 / 100)');
  assert.equal(g.scaleUpSeconds, 20, 'step at 10, 3 ready at 30');
  assert.equal(g.bound.total, 5 + 20 + 15 + 0 + 6 + 3);
  assert.equal(g.newPods.length, 1);
  const c = g.newPods[0]!;
  assert.equal(c.name, 'c');
  assert.equal(c.records, 300, '50/s over (30, 36]');
  assert.ok(Math.abs(c.share! - 0.2) < 1e-9, `${c.share}`);
  assert.ok(Math.abs(c.fair - 1 / 3) < 1e-9);
  assert.ok(Math.abs(c.ratio! - 0.6) < 1e-9);
  assert.equal(g.lost, 0, '1005 rows - 5 duplicates = 1000 produced');
  assert.equal(g.backlogClearSeconds, 23);
  assert.equal(r.checks['0 lost']!.ok, true);
  assert.equal(r.checks['duplicates only from re-sent batches']!.ok, true, '5 <= 1 batch x 1000');
  assert.equal(r.checks["new pods' share >= 70 % of fair (median)"]!.ok, false);
  assert.equal(r.checks["new pods' share >= 70 % of fair (median)"]!.advisory, true);
});

test('a lost record fails the run; the HTML carries no JSON dump', () => {
  const f = facts();
  f.audit = { ...f.audit, rows: 999, duplicates: 0 };
  const r = evaluateAutoscale(f);
  assert.equal(r.figures.lost, 1);
  assert.equal(r.ok, false);
  const html = renderAutoscaleHtml(f, r);
  assert.doesNotMatch(html, /"samples"/);
  assert.match(html, /<svg/);
});

test('podRates: a counter seen for the first time counts from 0', () => {
  const rows = podRates([
    {
      t: 0,
      enricher: { a: 0 },
      backlogBytes: 0,
      dropped: 0,
      resentBatches: 0,
      drains: 0,
      recordsIn: 0,
      bytesIn: 0,
    },
    {
      t: 2,
      enricher: { a: 10, b: 4 },
      backlogBytes: 0,
      dropped: 0,
      resentBatches: 0,
      drains: 0,
      recordsIn: 0,
      bytesIn: 0,
    },
  ]);
  assert.deepEqual(rows, [{ t: 2, rates: { a: 5, b: 2 } }]);
});

test('target labels per scrape path: what the rendered queries join on', () => {
  const sm = targetLabels('servicemonitor', 'enricher', 'p', {});
  assert.equal(sm.service, 'snowtap-enricher-metrics');
  assert.equal(targetLabels('podmonitor', 'enricher', 'p', {}).service, undefined);
  assert.equal(targetLabels('podmonitor', 'agent', 'r', {}).job, 'snowtap/snowtap-agent');
  const ann = targetLabels('annotations', 'enricher', 'p', { 'app.kubernetes.io/name': 'snowtap' });
  assert.equal(ann.job, 'kubernetes-pods');
  assert.equal(ann.app_kubernetes_io_name, 'snowtap');
});

test('durationSeconds reads Go durations as the chart writes them', () => {
  assert.equal(durationSeconds('30s'), 30);
  assert.equal(durationSeconds('2m'), 120);
  assert.equal(durationSeconds('1m30s'), 90);
  assert.throws(() => durationSeconds('2 minutes'), /not a duration/);
});

test('time to spread: from the needed pods ready to the first 3 s in which the added pods hold >= 70 % of fair', () => {
  const f = facts();
  assert.equal(evaluateAutoscale(f).figures.spreadSeconds, null, 'c at 60 % of fair throughout: never');
  // c doubles to 100/s (its fair third) from t = 35 on: the 3 s pooled share reaches 0.25 >= 0.7 / 3 at t = 35.
  let c = 0;
  for (const s of f.samples) {
    if (s.t < 30) continue;
    s.enricher.c = c;
    c += s.t >= 34 ? 100 : 50;
  }
  const g = evaluateAutoscale(f).figures;
  assert.equal(g.spreadSeconds, 5, '3 pods ready at 30, spread at 35');
  assert.equal(g.overloadDrains, 0);
});
