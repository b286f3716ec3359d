// The Helm chart (helm/snowtap) checked with the real helm binary: `helm lint --strict` with
// every CI values file, the strict values schema, and the properties of the rendered enricher
// that operations depend on (security context, probes, drain timing, config roll-outs, KEDA vs
// HPA, NetworkPolicy). Without helm: skip, or FAIL when SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import {
  CHART_DIR,
  find,
  get,
  type K8sObject,
  metricDefinedChecker,
  metricsIn,
  render,
  requireTool,
  run,
  templateArgs,
} from '../support/helm';

const CI_VALUES = readdirSync(path.join(CHART_DIR, 'ci')).filter((f) => f.endsWith('.yaml'));
const ENRICHER = 'snowtap-enricher';

function enricherContainer(objs: readonly K8sObject[]) {
  const dep = get(objs, 'Deployment', ENRICHER);
  return { dep, pod: dep.spec.template.spec, c: dep.spec.template.spec.containers[0] };
}

test('helm lint --strict passes with the defaults and with every ci/ values file', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  assert.ok(CI_VALUES.length >= 5, `expected the CI values files, found ${CI_VALUES.join(', ')}`);
  for (const file of [null, ...CI_VALUES]) {
    const args = ['lint', '--strict', CHART_DIR, '--namespace', 'snowtap'];
    if (file) args.push('--values', path.join(CHART_DIR, 'ci', file));
    const r = await run(helm, args);
    assert.equal(r.code, 0, `helm lint ${file ?? '(defaults)'}:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test('values.yaml documents every field with a `# --` comment; the chart packages', async (t) => {
  const doc = YAML.parseDocument(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8'));
  const undocumented: string[] = [];
  // A leaf is documented by its own `# --` comment or by one on an enclosing map (e.g. resources).
  const walk = (map: YAML.YAMLMap, prefix: string, documented: boolean) => {
    map.items.forEach((pair, i) => {
      const key = prefix + String((pair.key as YAML.Scalar).value);
      // The comment above a map's first key belongs to the map in the yaml package's tree.
      const comment = `${(pair.key as YAML.Scalar).commentBefore ?? ''}\n${i === 0 ? (map.commentBefore ?? '') : ''}`;
      const isDocumented = documented || /(^|\n) ?-- /.test(comment);
      if (YAML.isMap(pair.value) && pair.value.items.length > 0) walk(pair.value, `${key}.`, isDocumented);
      else if (!isDocumented) undocumented.push(key);
    });
  };
  walk(doc.contents as YAML.YAMLMap, '', false);
  assert.deepEqual(undocumented, [], 'values without a # -- comment');

  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const dest = mkdtempSync(path.join(tmpdir(), 'snowtap-package-'));
  try {
    const r = await run(helm, ['package', CHART_DIR, '--destination', dest]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dest), ['snowtap-0.1.0.tgz']);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});

test('the values schema rejects unknown keys and bad enums (helm exits non-zero)', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const cases: [string, RegExp][] = [
    ['bogus=1', /Additional property bogus is not allowed/],
    ['enricher.replica=3', /Additional property replica is not allowed/],
    ['autoscaling.keda.serverAdress=http://x', /Additional property serverAdress is not allowed/],
    ['autoscaling.mode=kedaa', /autoscaling\.mode must be one of the following/],
    ['blob.type=azurefile', /blob\.type must be one of the following/],
    ['agent.whenFull=drop-all', /agent\.whenFull must be one of the following/],
    ['enricher.compression=lz4', /enricher\.compression must be one of the following/],
    ['enricher.terminationGracePeriodSeconds=5', /terminationGracePeriodSeconds/],
  ];
  for (const [set, message] of cases) {
    const r = await run(helm, templateArgs({ set: [set] }));
    assert.notEqual(r.code, 0, `--set ${set} should be rejected`);
    assert.match(r.stderr, message, `--set ${set}`);
  }
  // A grace period too short for the drain is refused by the template itself.
  const r = await run(helm, templateArgs({ set: ['enricher.terminationGracePeriodSeconds=30'] }));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /must be at least preStopSleepSeconds \+ drainTimeout \+ 10 = 35/);
});

test('the enricher pod is locked down, probed, and drains inside its grace period', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const objs = await render(helm);
  const { dep, pod, c } = enricherContainer(objs);
  assert.equal(dep.metadata.labels!['app.kubernetes.io/component'], 'enricher');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 10001);
  assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.deepEqual(c.args, ['enricher', '--config', '/etc/snowtap/config/enricher.yaml']);
  assert.deepEqual(
    c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
    [
      ['link', 7400],
      ['metrics', 9400],
    ],
  );
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.ok(c.resources.requests.cpu && c.resources.limits.memory, 'requests and a memory limit');
  // Grace period > preStop pause + drain: the enricher exits 0 before SIGKILL.
  const config = get(objs, 'ConfigMap', ENRICHER).data['enricher.yaml'] as string;
  const drain = Number(/^drain-timeout: (\d+)$/m.exec(config)![1]);
  assert.equal(c.lifecycle.preStop.sleep.seconds, 5);
  assert.ok(pod.terminationGracePeriodSeconds > drain + 5, `grace ${pod.terminationGracePeriodSeconds}`);
  // Writable places are volumes: the chunk output and /tmp; the root file system is not.
  const mounts = Object.fromEntries(
    c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.mountPath, m.name]),
  );
  assert.equal(mounts['/data'], 'data');
  assert.equal(mounts['/tmp'], 'tmp');
  assert.match(config, /^output-dir: \/data$/m);
  assert.equal(get(objs, 'PersistentVolumeClaim').spec.storageClassName, 'azureblob-fuse-premium');
  assert.deepEqual(get(objs, 'PersistentVolumeClaim').spec.accessModes, ['ReadWriteMany']);
  // Selector labels are a subset of the pod labels and never carry the version.
  const selector = dep.spec.selector.matchLabels;
  assert.equal(selector['app.kubernetes.io/version'], undefined);
  for (const [k, v] of Object.entries(selector)) assert.equal(dep.spec.template.metadata.labels[k], v);
  const pdb = get(objs, 'PodDisruptionBudget', ENRICHER);
  assert.deepEqual(pdb.spec.selector.matchLabels, selector);
  // Kubernetes before 1.30 has no sleep action: no preStop then.
  const old = enricherContainer(await render(helm, { kubeVersion: '1.29.0' })).c;
  assert.equal(old.lifecycle, undefined);
});

test('checksum/config is the hash of the rendered config and changes only with it', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const checksum = (objs: K8sObject[]) =>
    enricherContainer(objs).dep.spec.template.metadata.annotations['checksum/config'];
  const base = await render(helm);
  const config = get(base, 'ConfigMap', ENRICHER).data['enricher.yaml'] as string;
  assert.equal(checksum(base), createHash('sha256').update(config.replace(/\n$/, '')).digest('hex'));
  const rotated = await render(helm, { set: ['enricher.rotate.maxRows=5000'] });
  assert.match(get(rotated, 'ConfigMap', ENRICHER).data['enricher.yaml'], /^rotate-max-rows: 5000$/m);
  assert.notEqual(checksum(rotated), checksum(base));
  const extra = await render(helm, { set: ['enricher.extraConfig.policy-timeout=5'] });
  assert.notEqual(checksum(extra), checksum(base));
  assert.match(config, /^compression: gzip$/m);
  const zstd = await render(helm, { set: ['enricher.compression=zstd'] });
  assert.match(get(zstd, 'ConfigMap', ENRICHER).data['enricher.yaml'], /^compression: zstd$/m);
  assert.notEqual(checksum(zstd), checksum(base));
  const resized = await render(helm, { set: ['enricher.resources.requests.cpu=2'] });
  assert.equal(checksum(resized), checksum(base), 'resources are not config');
});

test('autoscaling: KEDA when the cluster serves keda.sh, the HPA fallback otherwise, or as forced', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const kinds = (objs: K8sObject[]) => ({
    keda: find(objs, 'ScaledObject') !== undefined,
    hpa: find(objs, 'HorizontalPodAutoscaler') !== undefined,
    replicas: get(objs, 'Deployment', ENRICHER).spec.replicas,
  });
  const keda = ['keda.sh/v1alpha1'];
  assert.deepEqual(kinds(await render(helm)), { keda: false, hpa: true, replicas: undefined });
  assert.deepEqual(kinds(await render(helm, { apiVersions: keda })), {
    keda: true,
    hpa: false,
    replicas: undefined,
  });
  assert.deepEqual(kinds(await render(helm, { apiVersions: keda, set: ['autoscaling.mode=hpa'] })), {
    keda: false,
    hpa: true,
    replicas: undefined,
  });
  assert.deepEqual(kinds(await render(helm, { set: ['autoscaling.mode=keda'] })), {
    keda: true,
    hpa: false,
    replicas: undefined,
  });
  assert.deepEqual(kinds(await render(helm, { set: ['autoscaling.mode=none'] })), {
    keda: false,
    hpa: false,
    replicas: 2,
  });

  const hpa = get(await render(helm), 'HorizontalPodAutoscaler', ENRICHER);
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: ENRICHER });
  assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');

  const so = get(await render(helm, { values: ['ci/keda-values.yaml'] }), 'ScaledObject', ENRICHER);
  assert.equal(so.spec.scaleTargetRef.name, ENRICHER);
  assert.equal(so.spec.minReplicaCount, 3);
  assert.ok(so.spec.fallback.replicas >= 1);
  const defined = metricDefinedChecker();
  for (const trigger of so.spec.triggers) {
    assert.equal(trigger.type, 'prometheus');
    assert.equal(trigger.metricType, 'AverageValue');
    assert.equal(trigger.metadata.serverAddress, 'http://prometheus.monitoring.svc:9090');
    assert.equal(trigger.authenticationRef.name, 'prometheus-auth');
    assert.match(trigger.metadata.threshold, /^\d+(\.\d+)?$/);
    // KEDA's trigger metadata is map[string]string: a YAML boolean would be rejected.
    for (const [k, v] of Object.entries(trigger.metadata)) assert.equal(typeof v, 'string', k);
    assert.equal(trigger.metadata.ignoreNullValues, 'false');
    assert.doesNotMatch(trigger.metadata.query, /service=/, 'no ServiceMonitor-only label');
    for (const m of metricsIn(trigger.metadata.query)) {
      assert.ok(defined(m), `KEDA query uses ${m}, which no source file defines`);
    }
  }
  assert.deepEqual(
    so.spec.triggers.map((x: { name: string }) => x.name),
    ['records-offered', 'agent-backlog', 'enricher-busy'],
  );
  // Scoped to this release through labels the processes export themselves.
  assert.match(
    so.spec.triggers[0].metadata.query,
    /snowtap_agent_info\{enricher="snowtap-enricher\.snowtap\.svc:7400"\}/,
  );
  assert.match(
    so.spec.triggers[2].metadata.query,
    /snowtap_enricher_info\{id=~"snowtap-enricher-\[a-z0-9\]\+-\[a-z0-9\]\+"\}/,
  );
  assert.equal(so.spec.triggers[0].metadata.threshold, '200000');
  // Passthrough values land in every trigger; reserved keys are refused with a message.
  const tuned = get(
    await render(helm, {
      set: [
        'autoscaling.mode=keda',
        'autoscaling.keda.authModes=bearer',
        'autoscaling.keda.customHeaders=X-Scope-OrgID=dns',
        'autoscaling.keda.unsafeSsl=true',
        'autoscaling.keda.extraMetadata.timeout=2000',
        'autoscaling.keda.extraSelector=namespace="dns"',
        'autoscaling.keda.enricherBusy.enabled=false',
      ],
    }),
    'ScaledObject',
    ENRICHER,
  );
  assert.equal(tuned.spec.triggers.length, 2);
  for (const trigger of tuned.spec.triggers) {
    assert.equal(trigger.metadata.authModes, 'bearer');
    assert.equal(trigger.metadata.customHeaders, 'X-Scope-OrgID=dns');
    assert.equal(trigger.metadata.unsafeSsl, 'true');
    assert.equal(trigger.metadata.timeout, '2000');
    assert.match(trigger.metadata.query, /snowtap_agent_info\{enricher="[^"]+",namespace="dns"\}/);
  }
  await assert.rejects(
    render(helm, { set: ['autoscaling.mode=keda', 'autoscaling.keda.extraMetadata.query=up'] }),
    /extraMetadata\.query: set it with its own value/,
  );
});

test('NetworkPolicy: the link port from agent pods only, the metrics port from any scraper unless metricsFrom says', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const objs = await render(helm);
  const np = get(objs, 'NetworkPolicy', ENRICHER);
  const { dep, c } = enricherContainer(objs);
  assert.deepEqual(np.spec.podSelector.matchLabels, dep.spec.selector.matchLabels);
  assert.deepEqual(np.spec.policyTypes, ['Ingress']);
  const portNames = new Set(c.ports.map((p: { name: string }) => p.name));
  const [link, metrics] = np.spec.ingress;
  assert.deepEqual(link.ports, [{ port: 'link', protocol: 'TCP' }]);
  assert.deepEqual(link.from[0].podSelector.matchLabels, { 'snowtap.io/agent': 'true' });
  assert.deepEqual(metrics.ports, [{ port: 'metrics', protocol: 'TCP' }]);
  // Regression: the default admitted only app.kubernetes.io/name=prometheus pods, which shut out
  // AKS managed Prometheus (ama-metrics in kube-system), Alloy, vmagent and the OTel collector.
  assert.equal(metrics.from, undefined, 'metrics port open to any scraper by default');
  const restricted = get(
    await render(helm, {
      set: [
        'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=kube-system',
      ],
    }),
    'NetworkPolicy',
    ENRICHER,
  );
  assert.deepEqual(restricted.spec.ingress[1].from, [
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } },
  ]);
  for (const rule of np.spec.ingress)
    assert.ok(portNames.has(rule.ports[0].port), 'named ports exist on the container');
  assert.equal(np.spec.ingress.length, 2);
  const svc = get(objs, 'Service', ENRICHER);
  assert.equal(svc.spec.type, 'ClusterIP');
  assert.deepEqual(svc.spec.ports, [{ name: 'link', port: 7400, targetPort: 'link', protocol: 'TCP' }]);
  assert.equal(get(objs, 'Service', `${ENRICHER}-metrics`).spec.ports[0].targetPort, 'metrics');
  const off = await render(helm, { set: ['networkPolicy.enabled=false'] });
  assert.equal(find(off, 'NetworkPolicy'), undefined);
});

test('names stay within 63 characters for long release names', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const release = 'a-very-long-release-name-for-a-dns-logging-pipeline-in-production';
  const objs = await render(helm, { release: release.slice(0, 53), values: ['ci/resolver-values.yaml'] });
  for (const o of objs) {
    assert.ok(o.metadata.name.length <= 63, `${o.kind}/${o.metadata.name} is ${o.metadata.name.length} long`);
    assert.doesNotMatch(o.metadata.name, /-$/);
  }
  const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
  assert.equal(new Set(names).size, names.length, 'truncation keeps names distinct');
});

test('KEDA enricher selector: the id regex matches the pod names Kubernetes generates, short and long', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  for (const release of ['snowtap', 'dns-logging-pipeline-production-westeurope-blue']) {
    const objs = await render(helm, { release, set: ['autoscaling.mode=keda'] });
    const deploy = objs.find((o) => o.kind === 'Deployment')!.metadata.name;
    const busy = get(objs, 'ScaledObject', deploy).spec.triggers.find(
      (x: { name: string }) => x.name === 'enricher-busy',
    );
    const m = /snowtap_enricher_info\{id=~"([^"]+)"\}/.exec(busy.metadata.query);
    assert.ok(m, busy.metadata.query);
    const re = new RegExp(`^(?:${m[1]})$`); // PromQL regexes are fully anchored
    // ReplicaSet = Deployment + "-" + pod-template-hash; pods: generateName cut to 58 + 5 chars.
    for (const hash of ['7c9d5b6f8', '5d8f7c9b4c']) {
      const pod = `${`${deploy}-${hash}-`.slice(0, 58)}x2k9z`;
      assert.match(pod, re, `${release}: ${pod}`);
      assert.doesNotMatch(`other-${pod}`, re);
    }
  }
});

test('prometheus.io scrape annotations: on by default (enricher metrics port), off with metrics.scrapeAnnotations.enabled=false', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const annotations = (objs: K8sObject[]) =>
    get(objs, 'Deployment', ENRICHER).spec.template.metadata.annotations as Record<string, string>;
  const on = annotations(await render(helm));
  assert.deepEqual(
    [on['prometheus.io/scrape'], on['prometheus.io/port'], on['prometheus.io/path']],
    ['true', '9400', '/metrics'],
  );
  const off = annotations(await render(helm, { set: ['metrics.scrapeAnnotations.enabled=false'] }));
  assert.deepEqual(Object.keys(off), ['checksum/config']);
});
