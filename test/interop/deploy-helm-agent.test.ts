// The agent side of the Helm chart: discovery RBAC, the sidecar snippet (in this chart and from
// a parent chart), the complete Unbound-with-agent example (its config checked by the real
// unbound-checkconf), TLS and token wiring, blob and monitoring options. Real helm; without it:
// skip, or FAIL when SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

interface Validatable {
  validate(): void;
}

/** Validates an object against its kubernetes-models schema (apps/v1 DaemonSet, v1 Service ...). */
function validateModel(o: K8sObject): void {
  // biome-ignore lint/suspicious/noExplicitAny: models are looked up by name at run time
  const mod = require(`kubernetes-models/${o.apiVersion}/${o.kind}`) as Record<string, any>;
  const Model = mod[o.kind] as new (d: unknown) => Validatable;
  try {
    new Model(o).validate();
  } catch (err) {
    assert.fail(`${o.kind}/${o.metadata.name} is invalid: ${(err as Error).message}`);
  }
}

function standalone(objs: readonly K8sObject[], kind: 'Deployment' | 'DaemonSet') {
  const workload = get(objs, kind, 'snowtap-agent');
  const spec = workload.spec.template.spec;
  assert.equal(spec.containers.length, 1);
  const c = spec.containers[0] as Container & {
    ports: { name: string; containerPort: number }[];
    env: { name: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
    resources: unknown;
  };
  return { workload, spec, c, svc: get(objs, 'Service', 'snowtap-agent') };
}

test('standalone agent (CoreDNS): DaemonSet behind a node-local Service, TLS, allow-list, hostPath spool; valid objects', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const objs = await render(helm, { values: ['ci/standalone-agent-values.yaml'] });
  const { workload, spec, c, svc } = standalone(objs, 'DaemonSet');
  for (const o of [workload, svc]) validateModel(o);
  assert.equal(find(objs, 'Deployment', 'snowtap-agent'), undefined);
  // dnstap over TCP on the Service's port, no unix socket, no socket directory.
  assert.equal(arg(c, 'dnstap-tcp'), '0.0.0.0:6000');
  assert.equal(arg(c, 'dnstap-socket'), undefined);
  assert.equal(arg(c, 'dnstap-socket-mode'), undefined);
  assert.equal(arg(c, 'dnstap-allow'), '10.244.0.0/16,fd00:10:244::/56');
  assert.equal(arg(c, 'dnstap-max-connections'), '16');
  assert.equal(arg(c, 'dnstap-handshake-timeout'), '5');
  assert.equal(arg(c, 'dnstap-tls-cert'), '/etc/snowtap/dnstap-tls/tls.crt');
  assert.equal(arg(c, 'dnstap-tls-key'), '/etc/snowtap/dnstap-tls/tls.key');
  assert.equal(arg(c, 'dnstap-tls-ca'), undefined, 'CoreDNS has no client certificate');
  assert.equal(arg(c, 'enricher'), 'snowtap-enricher.snowtap.svc:7400');
  assert.ok(c.args!.includes('--active-connections') && c.args!.includes('2'), 'standalone extraArgs');
  assert.equal(
    spec.volumes.find((v: { name: string }) => v.name === 'snowtap-dnstap-tls').secret.secretName,
    'snowtap-agent-dnstap-tls',
  );
  assert.equal(
    c.volumeMounts.find((m) => m.name === 'snowtap-dnstap-tls')?.mountPath,
    '/etc/snowtap/dnstap-tls',
  );
  assert.equal(
    c.volumeMounts.find((m) => m.name === 'snowtap-dnstap'),
    undefined,
  );
  // The Service reaches the dnstap port of these pods, node-local.
  const port = c.ports.find((p) => p.name === 'dnstap')!;
  assert.equal(port.containerPort, 6000);
  assert.deepEqual(svc.spec.ports, [{ name: 'dnstap', port: 6000, targetPort: 'dnstap', protocol: 'TCP' }]);
  assert.equal(svc.spec.internalTrafficPolicy, 'Local');
  const labels = workload.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v);
  for (const [k, v] of Object.entries(workload.spec.selector.matchLabels)) assert.equal(labels[k], v);
  // The enricher's NetworkPolicy admits these pods like sidecars.
  const np = get(objs, 'NetworkPolicy', 'snowtap-enricher');
  for (const [k, v] of Object.entries(np.spec.ingress[0].from[0].podSelector.matchLabels))
    assert.equal(labels[k], v);
  // A Service backend: ready only while it serves.
  assert.equal((c.readinessProbe as { httpGet: { path: string } }).httpGet.path, '/readyz');
  // The spool outlives the pod on its node; the agent id is the node's, one pod per node at a time.
  assert.deepEqual(spec.volumes.find((v: { name: string }) => v.name === 'snowtap-spool').hostPath, {
    path: '/var/lib/snowtap-spool',
    type: 'DirectoryOrCreate',
  });
  assert.equal(arg(c, 'spool-dir'), '/var/spool/snowtap');
  assert.equal(c.env.find((e) => e.name === 'SNOWTAP_ID')!.valueFrom!.fieldRef.fieldPath, 'spec.nodeName');
  assert.deepEqual(workload.spec.updateStrategy.rollingUpdate, { maxUnavailable: 1, maxSurge: 0 });
  assert.deepEqual(c.resources, { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } });
  assert.equal(spec.priorityClassName, 'system-node-critical');

  // The rendered flags are the agent's own: its CLI parser takes them (files it would read left out).
  const { parseCommand } = await import('../../cli/options');
  const { AGENT_OPTIONS, agentOptionsFrom } = await import('../../cli/agent');
  const argv = c.args!.slice(1).filter((a) => !a.startsWith('--dnstap-tls-'));
  const o = agentOptionsFrom(parseCommand(argv, AGENT_OPTIONS).options);
  assert.deepEqual(o.dnstapTcp, { host: '0.0.0.0', port: 6000 });
  assert.deepEqual(o.dnstapInput?.allow, ['10.244.0.0/16', 'fd00:10:244::/56']);
  assert.equal(o.dnstapInput?.maxConnections, 16);
  assert.equal(o.dnstapInput?.handshakeTimeoutMs, 5000);
  assert.equal(o.activeConnections, 2);
});

test('standalone agent as a Deployment: replicas, pod-name id, emptyDir spool by default, Recreate with a claim; off by default', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  assert.equal(find(await render(helm), 'Service', 'snowtap-agent'), undefined, 'off by default');
  const objs = await render(helm, {
    set: ['standaloneAgent.enabled=true', 'standaloneAgent.replicas=3', 'standaloneAgent.port=6001'],
  });
  const { workload, spec, c, svc } = standalone(objs, 'Deployment');
  for (const o of [workload, svc]) validateModel(o);
  assert.equal(workload.spec.replicas, 3);
  assert.equal(workload.spec.strategy, undefined, 'rolling update with an emptyDir spool');
  assert.equal(arg(c, 'dnstap-tcp'), '0.0.0.0:6001');
  assert.equal(arg(c, 'dnstap-allow'), undefined);
  assert.equal(arg(c, 'dnstap-tls-cert'), undefined);
  assert.equal(svc.spec.ports[0].port, 6001);
  assert.equal(svc.spec.internalTrafficPolicy, undefined);
  assert.equal(c.env.find((e) => e.name === 'SNOWTAP_ID')!.valueFrom!.fieldRef.fieldPath, 'metadata.name');
  assert.deepEqual(spec.volumes.find((v: { name: string }) => v.name === 'snowtap-spool').emptyDir, {
    sizeLimit: '1280Mi',
  });
  assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } });

  const pvc = standalone(
    await render(helm, {
      set: [
        'standaloneAgent.enabled=true',
        'standaloneAgent.replicas=1',
        'standaloneAgent.spoolVolume.persistentVolumeClaim.claimName=agent-spool',
      ],
    }),
    'Deployment',
  );
  validateModel(pvc.workload);
  assert.deepEqual(pvc.workload.spec.strategy, { type: 'Recreate' });
  assert.deepEqual(
    pvc.spec.volumes.find((v: { name: string }) => v.name === 'snowtap-spool').persistentVolumeClaim,
    { claimName: 'agent-spool' },
  );
  // The schema refuses what the template cannot render.
  await assert.rejects(
    render(helm, { set: ['standaloneAgent.enabled=true', 'standaloneAgent.kind=StatefulSet'] }),
  );
  await assert.rejects(
    render(helm, {
      set: ['standaloneAgent.enabled=true', 'standaloneAgent.service.internalTrafficPolicy=Node'],
    }),
  );
});

test('the Corefile snippet in the chart README dials the standalone agent Service', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const readme = readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
  const m = /dnstap tcp:\/\/([a-z0-9.-]+):(\d+) full/.exec(readme);
  assert.ok(m, 'README has a CoreDNS dnstap line');
  const objs = await render(helm, { values: ['ci/standalone-agent-values.yaml'] });
  const svc = get(objs, 'Service', 'snowtap-agent');
  assert.equal(m[1], `${svc.metadata.name}.${svc.metadata.namespace}.svc`);
  assert.equal(Number(m[2]), svc.spec.ports[0].port);
});
