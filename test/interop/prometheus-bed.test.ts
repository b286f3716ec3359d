// Metrics for real inside the test bed: Debian's Prometheus in the namespace scrapes an enricher
// pod (CPU-limited, at its own address) with the target labels a ServiceMonitor would add; the
// HPA stand-in queries it the way KEDA's Prometheus scaler does: a present series gives a value,
// a missing one is 0 (ignoreNullValues), and a stopped Prometheus is a failed query.
// Needs root, iproute2, iptables, prometheus, a cgroup cpu controller.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ClusterBed, enricherPodSpec } from '../../loadtest/cluster-bed';
import { HpaModel } from '../../loadtest/hpa-model';
import { PrometheusBed } from '../../loadtest/prometheus-bed';
import { samplePolicy } from '../../loadtest/synthetic';
import { needBed } from '../support/bed';

const PROM = '10.96.0.20';

test('Prometheus in the bed scrapes a pod; the HPA stand-in reads it like KEDA', {
  timeout: 45_000,
}, async (t) => {
  if (!needBed(t, ['iptables-restore', 'prometheus'], true)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bed-prom-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = path.join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify(samplePolicy()));
  const bed = await ClusterBed.create({ mode: 'iptables', port: 7400, label: 'prom' });
  t.after(() => bed.close());
  const pod = await bed.startPod(
    enricherPodSpec({
      name: 'enricher-0',
      port: 7400,
      outputDir: path.join(dir, 'out'),
      policyFile: policy,
      cpuLimit: 0.3,
    }),
  );
  await bed.netns.addAddress(PROM);
  const prom = await PrometheusBed.start(bed.netns, bed.probe, {
    listen: `${PROM}:9090`,
    jobs: [{ name: 'enricher', intervalSeconds: 1 }],
  });
  t.after(() => prom.stop());
  prom.setTargets('enricher', [
    {
      address: `${pod.address}:9400`,
      labels: { namespace: 'snowtap', service: 'snowtap-enricher-metrics', pod: pod.name },
    },
  ]);
  const upQuery = 'sum(up{namespace="snowtap",service="snowtap-enricher-metrics"})';
  const started = Date.now();
  let up: number[] = [];
  while (Date.now() - started < 20_000) {
    up = await prom.query(upQuery);
    if (up[0] === 1) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(up, [1], 'the pod is scraped at its own address with the ServiceMonitor labels');
  t.diagnostic(`first successful scrape seen ${Date.now() - started} ms after the target was added`);

  let clock = 0;
  const hpa = new HpaModel({
    minReplicas: 1,
    maxReplicas: 5,
    triggers: [
      { name: 'up', query: upQuery, target: 0.5 },
      { name: 'absent', query: 'sum(snowtap_no_such_metric_total)' },
    ].map((x) => ({ target: 1, ...x })),
    behavior: { scaleUp: { stabilizationWindowSeconds: 0 } },
    fallback: { failureThreshold: 1, replicas: 3 },
    now: () => clock,
  });
  const r = await hpa.sync((q) => prom.query(q));
  assert.deepEqual(
    r.triggers.map((x) => [x.name, x.value, x.error]),
    [
      ['up', 1, null],
      ['absent', 0, null],
    ],
  );
  assert.equal(r.desiredReplicas, 2, '1 / 0.5 per pod');

  await prom.stop();
  clock += 15_000;
  const down = await hpa.sync((q) => prom.query(q));
  assert.ok(
    down.triggers.every((x) => x.error !== null && x.consecutiveFailures === 1),
    JSON.stringify(down.triggers),
  );
  assert.equal(down.desiredReplicas, 2, 'first failure: no scaling');
  clock += 15_000;
  assert.equal(
    (await hpa.sync((q) => prom.query(q))).desiredReplicas,
    3,
    'second failure passes failureThreshold 1: fallback',
  );
});
