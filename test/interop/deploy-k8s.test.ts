// k8s/ holds plain manifests equal to the Helm chart's defaults (written by k8s/render.sh).
// These tests keep the two in sync object by object, and check that the real kubectl's
// kustomize builds k8s/ into the same objects plus the Namespace. Without helm/kubectl: skip,
// or FAIL when SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { K8S_DIR, type K8sObject, parseManifests, requireTool, run, templateArgs } from '../support/helm';

/** The rewrites k8s/render.sh applies to helm's output (Helm-only labels). */
function normalizeHelmOutput(text: string): string {
  return text
    .replace(/^ *helm\.sh\/chart: .*\n/gm, '')
    .replace(/app\.kubernetes\.io\/managed-by: Helm$/gm, 'app.kubernetes.io/managed-by: kubectl');
}

const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

function kustomization(): { namespace: string; resources: string[] } {
  return YAML.parse(readFileSync(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8'));
}

function k8sFiles(): Map<string, K8sObject> {
  const out = new Map<string, K8sObject>();
  for (const file of kustomization().resources) {
    for (const o of parseManifests(readFileSync(path.join(K8S_DIR, file), 'utf8'))) {
      assert.ok(!out.has(key(o)), `${key(o)} appears twice in k8s/`);
      out.set(key(o), o);
    }
  }
  return out;
}

test('k8s/ equals `helm template` of the chart defaults, object by object (run k8s/render.sh)', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const r = await run(helm, templateArgs({ release: 'snowtap', namespace: 'snowtap' }));
  assert.equal(r.code, 0, r.stderr);
  const chart = parseManifests(normalizeHelmOutput(r.stdout));
  const plain = k8sFiles();
  const ns = plain.get('Namespace/snowtap');
  assert.ok(ns, 'k8s/namespace.yaml defines the namespace');
  plain.delete('Namespace/snowtap');
  assert.deepEqual(
    [...plain.keys()].sort(),
    chart.map(key).sort(),
    'same objects (k8s/render.sh regenerates k8s/)',
  );
  for (const o of chart) {
    assert.deepEqual(plain.get(key(o)), o, `${key(o)} differs from the chart: run k8s/render.sh`);
  }
  for (const o of plain.values()) {
    assert.equal(o.metadata.labels?.['helm.sh/chart'], undefined, `${key(o)} keeps a Helm-only label`);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'kubectl');
  }
});

test('kubectl kustomize builds k8s/ into the namespace with every object', async (t) => {
  const kubectl = requireTool(t, 'kubectl');
  if (!kubectl) return;
  const r = await run(kubectl, ['kustomize', K8S_DIR]);
  assert.equal(r.code, 0, r.stderr);
  const built = parseManifests(r.stdout);
  const { namespace } = kustomization();
  assert.deepEqual(built.map(key).sort(), [...k8sFiles().keys()].sort());
  for (const o of built) {
    if (o.kind === 'Namespace') continue;
    assert.equal(o.metadata.namespace, namespace, `${key(o)} lands in ${namespace}`);
  }
  const binding = built.find((o) => o.kind === 'RoleBinding')!;
  assert.equal(binding.subjects[0].namespace, namespace);
  // The defaults carry the HPA fallback (no KEDA in a plain cluster) and the blob claim.
  assert.ok(built.some((o) => o.kind === 'HorizontalPodAutoscaler'));
  assert.ok(built.some((o) => o.kind === 'PersistentVolumeClaim'));
});
