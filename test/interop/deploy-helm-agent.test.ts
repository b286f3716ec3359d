// The agent side of the Helm chart: discovery RBAC, the sidecar snippet (in this chart and from
// a parent chart), the complete Unbound-with-agent example (its config checked by the real
// unbound-checkconf), TLS and token wiring, blob and monitoring options. Real helm; without it:
// skip, or FAIL when SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CHART_DIR, find, get, type K8sObject, render, requireTool, run } from '../support/helm';
import { findBinary, requireInterop } from '../support/peers';

const tmp = mkdtempSync(path.join(tmpdir(), 'snowtap-helm-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Container {
  name: string;
  args?: string[];
  restartPolicy?: string;
  readinessProbe?: unknown;
  volumeMounts: { name: string; mountPath: string }[];
}

function podOf(objs: readonly K8sObject[], name: string) {
  const spec = get(objs, 'Deployment', name).spec.template.spec;
  const all: Container[] = [...(spec.initContainers ?? []), ...spec.containers];
  const byName = (n: string) => all.find((c) => c.name === n);
  return { spec, all, byName, labels: get(objs, 'Deployment', name).spec.template.metadata.labels };
}

const arg = (c: Container, flag: string) =>
  c.args?.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3);

test('discovery RBAC: get/list/watch EndpointSlices in the namespace, bound to the agents', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const objs = await render(helm, { values: ['ci/resolver-values.yaml'] });
  const role = get(objs, 'Role', 'snowtap-discovery');
  assert.equal(role.metadata.namespace, 'snowtap');
  assert.deepEqual(role.rules, [
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
  ]);
  const binding = get(objs, 'RoleBinding', 'snowtap-discovery');
  assert.deepEqual(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: 'snowtap-discovery',
  });
  assert.deepEqual(binding.subjects, [
    { kind: 'ServiceAccount', name: 'snowtap-agent', namespace: 'snowtap' },
    { kind: 'ServiceAccount', name: 'unbound', namespace: 'dns' },
  ]);
  get(objs, 'ServiceAccount', 'snowtap-agent');
  const off = await render(helm, { set: ['rbac.create=false'] });
  assert.equal(find(off, 'Role'), undefined);
  assert.equal(find(off, 'RoleBinding'), undefined);
});

test('resolver example: Unbound and the agent share the dnstap socket; unbound-checkconf accepts it', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const objs = await render(helm, { values: ['ci/resolver-values.yaml'] });
  const pod = podOf(objs, 'snowtap-resolver');
  const unbound = pod.byName('unbound')!;
  const agent = pod.byName('snowtap-agent')!;
  assert.ok(unbound && agent, `containers: ${pod.all.map((c) => c.name)}`);
  // A native sidecar: an init container that keeps running (Kubernetes >= 1.29).
  assert.equal(pod.spec.initContainers[0].name, 'snowtap-agent');
  assert.equal(agent.restartPolicy, 'Always');
  const socketPath = arg(agent, 'dnstap-socket')!;
  const socketDir = path.posix.dirname(socketPath);
  const mountOf = (c: Container) => c.volumeMounts.find((m) => m.name === 'snowtap-dnstap')?.mountPath;
  assert.equal(mountOf(agent), socketDir);
  assert.equal(mountOf(unbound), socketDir);
  const volume = pod.spec.volumes.find((v: { name: string }) => v.name === 'snowtap-dnstap');
  assert.deepEqual(volume, { name: 'snowtap-dnstap', emptyDir: {} });
  const conf = get(objs, 'ConfigMap', 'snowtap-resolver').data['unbound.conf'] as string;
  assert.match(conf, new RegExp(`dnstap-socket-path: "${socketPath}"`));
  assert.match(conf, /dnstap-enable: yes/);
  // The agent reaches this release's link Service; the pod label admits it through the NetworkPolicy.
  const svc = get(objs, 'Service', 'snowtap-enricher');
  assert.equal(arg(agent, 'enricher'), `snowtap-enricher.snowtap.svc:${svc.spec.ports[0].port}`);
  assert.equal(arg(agent, 'discovery'), 'k8s://snowtap/snowtap-enricher');
  assert.equal(pod.spec.serviceAccountName, 'snowtap-agent');
  assert.equal(pod.spec.automountServiceAccountToken, true, 'discovery needs the token');
  const np = get(objs, 'NetworkPolicy', 'snowtap-enricher');
  for (const [k, v] of Object.entries(np.spec.ingress[0].from[0].podSelector.matchLabels))
    assert.equal(pod.labels[k], v);
  assert.equal(agent.readinessProbe, undefined, 'a sidecar must not take the resolver out of its Service');
  assert.equal(arg(agent, 'auth-token-file'), '/etc/snowtap/auth/token');
  assert.equal(pod.spec.securityContext.runAsUser, 10001);
  assert.deepEqual(
    get(objs, 'Service', 'snowtap-resolver').spec.ports.map((p: { port: number }) => p.port),
    [53, 53],
  );

  // Before Kubernetes 1.29 (or when asked) the agent is an ordinary container.
  const plain = podOf(
    await render(helm, { values: ['ci/resolver-values.yaml'], kubeVersion: '1.28.0' }),
    'snowtap-resolver',
  );
  assert.equal(plain.spec.initContainers, undefined);
  assert.deepEqual(
    plain.spec.containers.map((c: Container) => c.name),
    ['unbound', 'snowtap-agent'],
  );
  assert.equal(plain.byName('snowtap-agent')!.restartPolicy, undefined);

  if (!requireInterop(t, ['unbound-checkconf'])) return;
  const file = path.join(tmp, 'unbound.conf');
  writeFileSync(file, conf);
  const r = await run(findBinary('unbound-checkconf')!, [file]);
  assert.equal(r.code, 0, `unbound-checkconf: ${r.stdout}${r.stderr}`);
});

test('link TLS and token: secrets mounted and passed to enricher and agents', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const objs = await render(helm, { values: ['ci/tls-token-values.yaml', 'ci/resolver-values.yaml'] });
  const config = get(objs, 'ConfigMap', 'snowtap-enricher').data['enricher.yaml'] as string;
  for (const line of [
    'auth-token-file: /etc/snowtap/auth/token',
    'tls-cert: /etc/snowtap/tls/tls.crt',
    'tls-key: /etc/snowtap/tls/tls.key',
    'tls-ca: /etc/snowtap/tls/ca.crt',
    'max-connections: 2000',
    'rotate-max-age: 30',
  ]) {
    assert.ok(config.split('\n').includes(line), `enricher config lacks '${line}':\n${config}`);
  }
  const enricher = get(objs, 'Deployment', 'snowtap-enricher').spec.template.spec;
  const secretOf = (spec: { volumes: { name: string; secret?: { secretName: string } }[] }, name: string) =>
    spec.volumes.find((v) => v.name === name)?.secret?.secretName;
  assert.equal(secretOf(enricher, 'link-token'), 'snowtap-link-token');
  assert.equal(secretOf(enricher, 'link-tls'), 'snowtap-link-tls');
  assert.match(enricher.containers[0].image, /^ghcr\.io\/snowtap\/snowtap@sha256:[0-9a-f]{64}$/);
  assert.equal(get(objs, 'Deployment', 'snowtap-enricher').spec.replicas, 3);
  assert.equal(find(objs, 'PersistentVolumeClaim'), undefined, 'existingClaim: no claim created');
  assert.equal(
    enricher.volumes.find((v: { name: string }) => v.name === 'data').persistentVolumeClaim.claimName,
    'dnslogs',
  );

  const pod = podOf(objs, 'snowtap-resolver');
  const agent = pod.byName('snowtap-agent')!;
  assert.equal(arg(agent, 'tls-ca'), '/etc/snowtap/tls/ca.crt');
  assert.equal(arg(agent, 'tls-cert'), '/etc/snowtap/tls/tls.crt');
  assert.equal(secretOf(pod.spec, 'snowtap-link-tls'), 'snowtap-agent-tls');
  assert.equal(secretOf(pod.spec, 'snowtap-link-token'), 'snowtap-link-token');
  const r = await run(helm, [
    'template',
    'x',
    CHART_DIR,
    '--set',
    'link.tls.enabled=true,link.tls.clientAuth=true,examples.resolver.enabled=true',
  ]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /agent\.tls\.clientSecretName is required/);
});

test('blob as an inline Azure Blob CSI volume; ServiceMonitor and PodMonitor select real ports', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const csi = await render(helm, { values: ['ci/hpa-values.yaml'] });
  const data = get(csi, 'Deployment', 'snowtap-enricher').spec.template.spec.volumes.find(
    (v: { name: string }) => v.name === 'data',
  );
  assert.equal(data.csi.driver, 'blob.csi.azure.com');
  assert.equal(data.csi.volumeAttributes.containerName, 'dnslogs');
  assert.equal(data.csi.volumeAttributes.storageAccount, 'snowtapdnslogs');
  assert.match(data.csi.volumeAttributes.mountOptions, /uid=10001/);
  assert.equal(find(csi, 'PersistentVolumeClaim'), undefined);

  const objs = await render(helm, { values: ['ci/keda-values.yaml', 'ci/resolver-values.yaml'] });
  const sm = get(objs, 'ServiceMonitor', 'snowtap-enricher');
  const metricsSvc = get(objs, 'Service', 'snowtap-enricher-metrics');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
    assert.equal(metricsSvc.metadata.labels![k], v);
  assert.equal(sm.spec.endpoints[0].port, metricsSvc.spec.ports[0].name);
  assert.equal(sm.metadata.labels!.release, 'kube-prometheus-stack');
  const pm = get(objs, 'PodMonitor', 'snowtap-agent');
  const pod = podOf(objs, 'snowtap-resolver');
  for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) assert.equal(pod.labels[k], v);
  const agentPorts = (pod.byName('snowtap-agent') as unknown as { ports: { name: string }[] }).ports;
  assert.ok(agentPorts.some((p) => p.name === pm.spec.podMetricsEndpoints[0].port));
});

test('a parent chart includes the sidecar snippet through .Subcharts', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const parent = path.join(tmp, 'my-dns');
  mkdirSync(path.join(parent, 'templates'), { recursive: true });
  writeFileSync(
    path.join(parent, 'Chart.yaml'),
    `apiVersion: v2\nname: my-dns\nversion: 1.0.0\ndependencies:\n  - name: snowtap\n    version: "*"\n    repository: "file://${CHART_DIR}"\n`,
  );
  writeFileSync(path.join(parent, 'values.yaml'), 'snowtap:\n  agent:\n    switchInterval: 10\n');
  writeFileSync(
    path.join(parent, 'templates/dns.yaml'),
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: {name: my-dns}',
      'spec:',
      '  selector: {matchLabels: {app: my-dns}}',
      '  template:',
      '    metadata:',
      '      labels:',
      '        app: my-dns',
      '        {{- include "snowtap.agentPodLabels" .Subcharts.snowtap | nindent 8 }}',
      '    spec:',
      '      containers:',
      '        - name: dns',
      '          image: example/dns',
      '          volumeMounts:',
      '            {{- include "snowtap.agentSocketMount" .Subcharts.snowtap | nindent 12 }}',
      '        {{- include "snowtap.agentSidecar" .Subcharts.snowtap | nindent 8 }}',
      '      volumes:',
      '        {{- include "snowtap.agentVolumes" .Subcharts.snowtap | nindent 8 }}',
      '',
    ].join('\n'),
  );
  const dep = await run(helm, ['dependency', 'update', parent]);
  assert.equal(dep.code, 0, dep.stderr);
  const objs = await render(helm, { release: 'dns', namespace: 'resolvers', chart: parent });
  const pod = podOf(objs, 'my-dns');
  const agent = pod.byName('snowtap-agent')!;
  assert.equal(arg(agent, 'enricher'), 'dns-snowtap-enricher.resolvers.svc:7400');
  assert.equal(arg(agent, 'switch-interval'), '10');
  assert.equal(pod.labels['snowtap.io/agent'], 'true');
  assert.equal(
    pod.byName('dns')!.volumeMounts[0].mountPath,
    path.posix.dirname(arg(agent, 'dnstap-socket')!),
  );
  get(objs, 'Deployment', 'dns-snowtap-enricher');
});

test('agent.activeConnections: 1 adds no flag (the agent default); 3 and "auto" reach the sidecar; 0 fails the schema', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const sidecar = async (set: string[]) =>
    podOf(await render(helm, { values: ['ci/resolver-values.yaml'], set }), 'snowtap-resolver').byName(
      'snowtap-agent',
    )!;
  assert.equal(arg(await sidecar([]), 'active-connections'), undefined);
  assert.equal(arg(await sidecar(['agent.activeConnections=3']), 'active-connections'), '3');
  assert.equal(arg(await sidecar(['agent.activeConnections=auto']), 'active-connections'), 'auto');
  await assert.rejects(sidecar(['agent.activeConnections=0']));
});

test('agent.nodeOptions reaches the sidecar as NODE_OPTIONS; "" (the default) leaves Node defaults', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const env = async (set: string[]) => {
    const c = podOf(
      await render(helm, { values: ['ci/resolver-values.yaml'], set }),
      'snowtap-resolver',
    ).byName('snowtap-agent') as Container & { env?: { name: string; value?: string }[] };
    return c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
  };
  assert.equal(await env([]), undefined);
  assert.equal(await env(['agent.nodeOptions=--max-semi-space-size=1']), '--max-semi-space-size=1');
});
