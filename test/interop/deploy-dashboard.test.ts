// The Grafana dashboard (dashboards/snowtap.json): well-formed for import (unique panel ids,
// non-overlapping grid, every query on the selectable Prometheus datasource), every metric it
// queries defined in the enricher's or agent's source (a renamed metric breaks this test, not
// the dashboard in production), and the topics operators need covered. The chart ships a copy
// (helm/snowtap/dashboards/snowtap.json, a chart cannot read files outside itself) as a
// ConfigMap for the kube-prometheus-stack Grafana sidecar: the copy must stay equal.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  CHART_DIR,
  find,
  get,
  metricDefinedChecker,
  metricsIn,
  REPO_ROOT,
  render,
  requireTool,
} from '../support/helm';

interface Target {
  expr: string;
  refId: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}

const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'dashboards/snowtap.json'), 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};
const panels = dashboard.panels;
const queries = panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, target: t })),
);

test('the dashboard is importable: ids, grid and datasource variable', () => {
  assert.equal(dashboard.uid, 'snowtap');
  assert.ok(dashboard.schemaVersion >= 36);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const ds = dashboard.templating.list.find((v) => v.name === 'datasource');
  assert.deepEqual([ds?.type, ds?.query], ['datasource', 'prometheus']);
  const cells = new Map<string, string>();
  for (const p of panels) {
    const g = p.gridPos;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title}: inside the 24-column grid`);
    for (let y = g.y; y < g.y + g.h; y++) {
      for (let x = g.x; x < g.x + g.w; x++) {
        const other = cells.get(`${x},${y}`);
        assert.equal(other, undefined, `${p.title} overlaps ${other}`);
        cells.set(`${x},${y}`, p.title);
      }
    }
    if (p.type === 'row') continue;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
    assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
    for (const t of p.targets!) assert.deepEqual(t.datasource, p.datasource, `${p.title} ${t.refId}`);
  }
  for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
    for (const m of metricsIn(JSON.stringify(v.query)))
      assert.ok(metricDefinedChecker()(m), `variable ${v.name}: ${m}`);
  }
});

test('every metric the dashboard queries is defined in the enricher or agent source', () => {
  const defined = metricDefinedChecker();
  const missing: string[] = [];
  for (const q of queries) {
    const names = metricsIn(q.expr);
    assert.ok(names.length > 0, `${q.panel}: '${q.expr}' queries no snowtap metric`);
    for (const m of names) if (!defined(m)) missing.push(`${m} (${q.panel})`);
  }
  assert.deepEqual(missing, [], 'metrics queried but not defined');
  // The checker itself tells a missing metric from a present one.
  assert.equal(defined('snowtap_enricher_no_such_metric_total'), false);
  assert.equal(defined('snowtap_enricher_link_ack_latency_seconds_bucket'), true);
});

test('the dashboard covers throughput, drops, latency, link, buffers, policy, output, runtime and scaling signals', () => {
  const all = queries.map((q) => q.expr).join('\n');
  const mustQuery: [string, RegExp][] = [
    ['records in per pod', /sum by \(pod, input\) \(rate\(snowtap_enricher_records_received_total/],
    ['rows out per pod', /sum by \(pod\) \(rate\(snowtap_enricher_rows_written_total/],
    ['agent drops by reason', /sum by \(reason\) \(rate\(snowtap_agent_records_dropped_total/],
    [
      'enricher drops by stage and reason',
      /sum by \(stage, reason\) \(rate\(snowtap_enricher_dropped_records_total/,
    ],
    [
      'ack latency p50',
      /histogram_quantile\(0\.5, sum by \(le\) \(rate\(snowtap_enricher_link_ack_latency_seconds_bucket/,
    ],
    [
      'ack latency p99',
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(snowtap_agent_ack_latency_seconds_bucket/,
    ],
    ['connections', /snowtap_enricher_link_connections\{/],
    ['switches', /snowtap_agent_link_switches_total/],
    ['buffer bytes', /snowtap_agent_buffer_bytes/],
    ['spool bytes', /snowtap_agent_spool_bytes/],
    ['policy version', /snowtap_enricher_policy_info/],
    ['policy age', /snowtap_enricher_policy_age_seconds/],
    ['chunk commits', /snowtap_enricher_chunks_committed_total/],
    ['event-loop lag', /snowtap_enricher_nodejs_eventloop_lag_p99_seconds/],
    ['offered load (agents records in)', /sum\(rate\(snowtap_agent_records_in_total/],
    ['agent backlog', /snowtap_agent_backlog_bytes/],
    ['event-loop utilisation', /rate\(snowtap_enricher_event_loop_busy_seconds_total/],
  ];
  for (const [what, re] of mustQuery) assert.match(all, re, what);
  // Every enricher query is scoped to the selected namespace and pods.
  for (const q of queries) {
    for (const m of q.expr.matchAll(/snowtap_enricher_[a-z0-9_]+\{([^}]*)\}/g)) {
      assert.match(m[1]!, /namespace=~"\$namespace",pod=~"\$pod"/, `${q.panel}: ${m[0]}`);
    }
  }
});

test("the chart's copy equals dashboards/snowtap.json (run: cp dashboards/snowtap.json helm/snowtap/dashboards/)", () => {
  assert.equal(
    readFileSync(path.join(CHART_DIR, 'dashboards/snowtap.json'), 'utf8'),
    readFileSync(path.join(REPO_ROOT, 'dashboards/snowtap.json'), 'utf8'),
  );
});

test('grafanaDashboard: a ConfigMap the kube-prometheus-stack sidecar loads (grafana_dashboard: "1"), off by default', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  assert.equal(find(await render(helm), 'ConfigMap', 'snowtap-dashboard'), undefined);
  const objs = await render(helm, {
    set: ['metrics.grafanaDashboard.enabled=true', 'metrics.grafanaDashboard.annotations.grafana_folder=DNS'],
  });
  const cm = get(objs, 'ConfigMap', 'snowtap-dashboard');
  assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
  assert.equal(cm.metadata.annotations?.grafana_folder, 'DNS');
  assert.equal(cm.metadata.namespace, 'snowtap');
  assert.deepEqual(JSON.parse(cm.data['snowtap.json']), dashboard);
});
