// Every object the chart renders, under every CI values file, validated against the Kubernetes
// OpenAPI schemas (kubernetes-models) and KEDA's CRD schema (@kubernetes-models/keda): field
// types, enums and required fields. Also lists the kinds nothing validates, so a new kind does
// not slip through unchecked. Real helm; without it: skip, or FAIL when SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CHART_DIR, type K8sObject, render, requireTool } from '../support/helm';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

// prometheus-operator kinds: their models package is not a dependency; other tests check them
// (the PrometheusRule's rules: promtool in deploy-alerts.test.ts).
const NOT_MODELLED = new Set([
  'monitoring.coreos.com/v1 ServiceMonitor',
  'monitoring.coreos.com/v1 PodMonitor',
  'monitoring.coreos.com/v1 PrometheusRule',
]);

/** The model class for apiVersion + kind, or null for kinds in NOT_MODELLED. */
function modelFor(o: K8sObject): ModelClass | null {
  const id = `${o.apiVersion} ${o.kind}`;
  if (NOT_MODELLED.has(id)) return null;
  const pkg = o.apiVersion.startsWith('keda.sh/')
    ? `@kubernetes-models/keda/${o.apiVersion}`
    : `kubernetes-models/${o.apiVersion}`;
  // biome-ignore lint/suspicious/noExplicitAny: models are looked up by name at run time
  const mod = require(`${pkg}/${o.kind}`) as Record<string, any>;
  const cls = mod[o.kind] as ModelClass | undefined;
  if (!cls) throw new Error(`no model for ${id}`);
  return cls;
}

const CASES: { name: string; values: string[]; set?: string[]; apiVersions?: string[] }[] = [
  ...readdirSync(path.join(CHART_DIR, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => ({ name: f, values: [`ci/${f}`] })),
  { name: 'auto mode on a cluster with KEDA', values: [], apiVersions: ['keda.sh/v1alpha1'] },
  {
    name: 'everything at once',
    values: [
      'ci/keda-values.yaml',
      'ci/tls-token-values.yaml',
      'ci/resolver-values.yaml',
      'ci/standalone-agent-values.yaml',
    ],
  },
  {
    name: 'standalone agent as a Deployment with a claim for its spool',
    values: [],
    set: [
      'standaloneAgent.enabled=true',
      'standaloneAgent.replicas=1',
      'standaloneAgent.spoolVolume.persistentVolumeClaim.claimName=agent-spool',
    ],
  },
];

test('every rendered object validates against its Kubernetes / KEDA schema', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const validated = new Set<string>();
  const unvalidated = new Set<string>();
  for (const c of CASES) {
    const objs = await render(helm, { values: c.values, set: c.set, apiVersions: c.apiVersions });
    assert.ok(objs.length > 5, `${c.name}: only ${objs.length} objects`);
    for (const o of objs) {
      const Model = modelFor(o);
      const id = `${o.apiVersion} ${o.kind}`;
      if (!Model) {
        unvalidated.add(id);
        continue;
      }
      try {
        new Model(o).validate();
      } catch (err) {
        assert.fail(`${c.name}: ${o.kind}/${o.metadata.name} is invalid: ${(err as Error).message}`);
      }
      validated.add(id);
    }
  }
  for (const kind of [
    'apps/v1 Deployment',
    'apps/v1 DaemonSet',
    'v1 Service',
    'v1 ConfigMap',
    'v1 ServiceAccount',
    'v1 PersistentVolumeClaim',
    'policy/v1 PodDisruptionBudget',
    'networking.k8s.io/v1 NetworkPolicy',
    'autoscaling/v2 HorizontalPodAutoscaler',
    'keda.sh/v1alpha1 ScaledObject',
    'rbac.authorization.k8s.io/v1 Role',
    'rbac.authorization.k8s.io/v1 RoleBinding',
  ]) {
    assert.ok(validated.has(kind), `${kind} was never rendered and validated`);
  }
  assert.deepEqual([...unvalidated].sort(), [...NOT_MODELLED].sort());
});

test('the validator is not a rubber stamp: a bad port type and a bad KEDA trigger are caught', () => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x' },
    spec: {
      selector: { matchLabels: { a: 'b' } },
      template: { spec: { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 'link' }] }] } },
    },
  };
  const Deployment = modelFor(deployment)!;
  assert.throws(() => new Deployment(deployment).validate(), /containerPort must be integer/);
  const so = {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: 'x' },
    spec: { scaleTargetRef: { name: 'x' }, triggers: [{ type: 'prometheus', metadata: { threshold: 5 } }] },
  };
  const ScaledObject = modelFor(so)!;
  assert.throws(() => new ScaledObject(so).validate(), /threshold must be string/);
});
