// The HPA stand-in fed from a ScaledObject (loadtest/scaledobject.ts): a fixture written as the
// chart's template renders it with default values, the chart itself rendered by the real helm
// (interop rule: skipped without helm, failed in CI), and the parsing of Prometheus' instant-query
// answers that KEDA's Prometheus scaler reads.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import YAML from 'yaml';
import { BedError } from '../../loadtest/bed-errors';
import { HpaModel } from '../../loadtest/hpa-model';
import { hpaOptionsFromScaledObject, instantQueryUrl, parseInstantQuery } from '../../loadtest/scaledobject';
import { parseManifests, requireTool, run, templateArgs } from '../support/helm';

// helm/snowtap/templates/enricher/scaledobject.yaml with values.yaml's defaults (release snowtap).
const FIXTURE = `
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: snowtap-enricher
  namespace: snowtap
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: snowtap-enricher }
  minReplicaCount: 2
  maxReplicaCount: 20
  pollingInterval: 15
  cooldownPeriod: 300
  fallback: { failureThreshold: 3, replicas: 4 }
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 300
          policies: [{ type: Pods, value: 1, periodSeconds: 60 }]
  triggers:
    - type: prometheus
      name: records-per-second
      metricType: AverageValue
      metadata:
        serverAddress: "http://prometheus-operated.monitoring.svc:9090"
        query: "sum(rate(snowtap_enricher_records_received_total{namespace=\\"snowtap\\",service=\\"snowtap-enricher-metrics\\"}[2m]))"
        threshold: "150000"
    - type: prometheus
      name: agent-backlog
      metricType: AverageValue
      metadata:
        serverAddress: "http://prometheus-operated.monitoring.svc:9090"
        query: "sum(snowtap_agent_buffer_bytes)"
        threshold: "67108864"
`;

test('the chart default ScaledObject becomes the stand-in options: triggers verbatim, counts, fallback, behavior', () => {
  const o = hpaOptionsFromScaledObject(YAML.parse(FIXTURE), () => 0);
  assert.equal(o.minReplicas, 2);
  assert.equal(o.maxReplicas, 20);
  assert.deepEqual(o.fallback, { failureThreshold: 3, replicas: 4 });
  assert.deepEqual(o.behavior, {
    scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
  });
  assert.deepEqual(
    o.triggers.map((t) => [t.name, t.target, t.ignoreNullValues]),
    [
      ['records-per-second', 150_000, true],
      ['agent-backlog', 67_108_864, true],
    ],
  );
  assert.equal(
    o.triggers[0]!.query,
    'sum(rate(snowtap_enricher_records_received_total{namespace="snowtap",service="snowtap-enricher-metrics"}[2m]))',
  );
});

test('with the chart defaults: 2.5 pods worth of records scales 2 -> 3; no series at all falls to min, not fallback', () => {
  let t = 0;
  const m = new HpaModel(hpaOptionsFromScaledObject(YAML.parse(FIXTURE), () => t));
  const records = 'records-per-second';
  const backlog = 'agent-backlog';
  let r = m.syncWith(
    new Map([
      [records, [375_000]],
      [backlog, [0]],
    ]),
  );
  assert.equal(r.desiredReplicas, 3);
  // Issue 7's fresh-install trap: empty results are 0 under ignoreNullValues, so fallback never fires.
  for (let s = 15; s <= 600; s += 15) {
    t = s * 1000;
    r = m.syncWith(
      new Map([
        [records, []],
        [backlog, []],
      ]),
    );
    assert.ok(r.triggers.every((x) => !x.fallbackActive));
  }
  assert.equal(r.desiredReplicas, 2, 'back to minReplicas, one pod per minute after the 300 s window');
  // Prometheus down: the 4th consecutive failure falls back to 4 replicas.
  const down = new Error('connect ECONNREFUSED');
  const seen: number[] = [];
  for (let i = 1; i <= 4; i++) {
    t += 15_000;
    seen.push(
      m.syncWith(
        new Map([
          [records, down],
          [backlog, down],
        ]),
      ).desiredReplicas,
    );
  }
  assert.deepEqual(seen, [2, 2, 2, 4]);
});

test('what the stand-in does not model is refused by name', () => {
  const so = YAML.parse(FIXTURE);
  const code = (c: string) => (e: unknown) => e instanceof BedError && e.code === c;
  assert.throws(
    () => hpaOptionsFromScaledObject({ ...so, spec: { ...so.spec, minReplicaCount: 0 } }, () => 0),
    code('BED_INVALID_ARGUMENT'),
  );
  const cpu = { ...so, spec: { ...so.spec, triggers: [{ type: 'cpu', metadata: { value: '50' } }] } };
  assert.throws(() => hpaOptionsFromScaledObject(cpu, () => 0), code('BED_UNSUPPORTED'));
  const value = { ...so, spec: { ...so.spec, triggers: [{ ...so.spec.triggers[0], metricType: 'Value' }] } };
  assert.throws(() => hpaOptionsFromScaledObject(value, () => 0), code('BED_UNSUPPORTED'));
  const noThreshold = {
    ...so,
    spec: { ...so.spec, triggers: [{ type: 'prometheus', metadata: { query: 'up' } }] },
  };
  assert.throws(
    () => hpaOptionsFromScaledObject(noThreshold, () => 0),
    /spec.triggers\[0\].metadata.threshold/,
  );
  const unnamed = {
    ...so,
    spec: {
      ...so.spec,
      triggers: [
        { type: 'prometheus', metadata: { query: 'up', threshold: '1', ignoreNullValues: 'false' } },
      ],
    },
  };
  const o = hpaOptionsFromScaledObject(unnamed, () => 0);
  assert.deepEqual(
    o.triggers.map((t) => [t.name, t.ignoreNullValues]),
    [['s0-prometheus', false]],
  );
});

test('the chart as helm renders it (autoscaling.mode=keda) feeds the stand-in', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const res = await run(helm, templateArgs({ set: ['autoscaling.mode=keda'] }));
  assert.equal(res.code, 0, res.stderr);
  const so = parseManifests(res.stdout).find((m) => m.kind === 'ScaledObject');
  assert.ok(so, 'the chart renders a ScaledObject');
  const o = hpaOptionsFromScaledObject(so, () => 0);
  const rendered = (so.spec.triggers as { metadata: { query: string } }[]).map((x) => x.metadata.query);
  assert.deepEqual(
    o.triggers.map((x) => x.query),
    rendered,
    'queries verbatim',
  );
  const m = new HpaModel(o);
  const r = m.syncWith(new Map(o.triggers.map((x) => [x.name, [x.target * o.minReplicas * 3]])));
  t.diagnostic(
    `rendered: ${o.triggers.map((x) => `${x.name} target ${x.target}`).join(', ')}; 3x load -> ${r.desiredReplicas}`,
  );
  assert.ok(r.desiredReplicas > o.minReplicas);
});

test('Prometheus instant-query answers: vector values, empty vector, scalar; errors throw BED_PROBE_FAILED', () => {
  assert.equal(
    instantQueryUrl('http://10.96.0.20:9090/', 'sum(rate(x[2m]))'),
    'http://10.96.0.20:9090/api/v1/query?query=sum(rate(x%5B2m%5D))',
  );
  const vec = (vals: string[]) =>
    JSON.stringify({
      status: 'success',
      data: { resultType: 'vector', result: vals.map((v) => ({ metric: {}, value: [1733490000.1, v] })) },
    });
  assert.deepEqual(parseInstantQuery(200, vec(['12.5'])), [12.5]);
  assert.deepEqual(parseInstantQuery(200, vec([])), []);
  assert.deepEqual(parseInstantQuery(200, vec(['1', '2'])), [1, 2]);
  assert.ok(Number.isNaN(parseInstantQuery(200, vec(['NaN']))[0]));
  assert.deepEqual(
    parseInstantQuery(
      200,
      JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, '3'] } }),
    ),
    [3],
  );
  const fails = (status: number, body: string, re: RegExp) =>
    assert.throws(
      () => parseInstantQuery(status, body),
      (e: unknown) => e instanceof BedError && e.code === 'BED_PROBE_FAILED' && re.test(e.message),
    );
  fails(400, JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error' }), /parse error/);
  fails(503, 'Service Unavailable', /non-JSON/);
  fails(200, JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } }), /matrix/);
});
