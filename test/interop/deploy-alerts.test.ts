// The chart's PrometheusRule (helm/snowtap/templates/monitoring/prometheusrule.yaml): rendered
// with the chart's defaults, its groups pass `promtool check rules`, and every alert fires (and
// stays quiet for the other release's pods) in `promtool test rules` with the cases in
// test/fixtures/alerts/snowtap-alerts.test.yaml. Needs helm and promtool (interop rule).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import { find, get, REPO_ROOT, render, requireTool } from '../support/helm';
import { interopMissing } from '../support/interop';
import { findBinary } from '../support/peers';

const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/alerts/snowtap-alerts.test.yaml');
const tmp = mkdtempSync(path.join(tmpdir(), 'snowtap-alerts-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('PrometheusRule: auto renders it only where the CRD API is served; true/false force it', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  assert.equal(find(await render(helm), 'PrometheusRule'), undefined);
  const served = await render(helm, { apiVersions: ['monitoring.coreos.com/v1/PrometheusRule'] });
  assert.ok(find(served, 'PrometheusRule', 'snowtap'));
  const off = await render(helm, {
    apiVersions: ['monitoring.coreos.com/v1/PrometheusRule'],
    set: ['metrics.prometheusRule.enabled=false'],
  });
  assert.equal(find(off, 'PrometheusRule'), undefined);
  const labelled = await render(helm, {
    set: [
      'metrics.prometheusRule.enabled=true',
      'metrics.prometheusRule.labels.release=kube-prometheus-stack',
    ],
  });
  assert.equal(get(labelled, 'PrometheusRule', 'snowtap').metadata.labels?.release, 'kube-prometheus-stack');
});

test('every alert passes promtool check rules and fires in a promtool test rules case', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const promtool = findBinary('promtool');
  if (!promtool) {
    interopMissing(t, 'promtool not found: apt-get install -y prometheus');
    return;
  }
  const rule = get(
    await render(helm, { set: ['metrics.prometheusRule.enabled=true'] }),
    'PrometheusRule',
    'snowtap',
  );
  const groups = rule.spec.groups as { rules: { alert: string; expr: string }[] }[];
  const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert));
  assert.deepEqual(alerts.sort(), [
    'SnowtapAgentBacklogGrowing',
    'SnowtapAgentDroppingRecords',
    'SnowtapAutoscalerFallback',
    'SnowtapEnricherDroppingRecords',
    'SnowtapEnricherNotReady',
    'SnowtapOutputStale',
    'SnowtapPolicyStale',
  ]);
  for (const r of groups.flatMap((g) => g.rules))
    assert.doesNotMatch(r.expr, /\bservice=|\bjob=|\bpod=/, r.alert);
  writeFileSync(path.join(tmp, 'rules.yaml'), YAML.stringify({ groups }));
  copyFileSync(FIXTURE, path.join(tmp, 'snowtap-alerts.test.yaml'));

  const check = spawnSync(promtool, ['check', 'rules', 'rules.yaml'], { cwd: tmp, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: 7 rules found/);

  // Every alert has a case in which it fires.
  const cases = YAML.parse(readFileSync(FIXTURE, 'utf8')) as {
    tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  const fired = new Set(
    cases.tests.flatMap((c) =>
      c.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
    ),
  );
  assert.deepEqual([...fired].sort(), alerts.sort());

  const unit = spawnSync(promtool, ['test', 'rules', 'snowtap-alerts.test.yaml'], {
    cwd: tmp,
    encoding: 'utf8',
  });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout, /SUCCESS/);
});
