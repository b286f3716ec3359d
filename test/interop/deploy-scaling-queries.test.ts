// Every autoscaling query the chart renders with DEFAULT values (KEDA present), evaluated in a
// real Prometheus (Debian's package) that scrapes real `snowtap enricher` and `snowtap agent`
// processes, under the target labels of each common scrape path: prometheus-operator
// ServiceMonitor, PodMonitor, and the community chart's annotation-driven kubernetes-pods job.
// Pods are processes on their own 127.x addresses with the chart's ports, labels and
// annotations; a second release's enricher and agent run beside them so scoping is checked.
// Then the two failure modes: no series yet (fresh install) and Prometheus down, through a
// named stand-in for KEDA's scaler and fallback. Needs helm and prometheus (interop rule).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { get, type K8sObject, render, requireTool } from '../support/helm';
import { interopMissing } from '../support/interop';
import { findBinary } from '../support/peers';
import { freeTcpPort, startSnowtap, waitUntil } from '../support/pipeline-procs';
import {
  annotationsJob,
  type FakePod,
  podMonitorJob,
  query,
  serviceMonitorJob,
  startPrometheus,
} from '../support/prometheus';

const tmp = mkdtempSync(path.join(tmpdir(), 'snowtap-scaling-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Trigger {
  name: string;
  metadata: Record<string, string>;
}

interface ScaledObjectSpec {
  minReplicaCount: number;
  maxReplicaCount: number;
  fallback: { failureThreshold: number; replicas: number };
  triggers: Trigger[];
}

/**
 * A STAND-IN for KEDA (not KEDA), as its documentation describes it: the Prometheus scaler
 * reads a one-element vector; an empty vector is an error when ignoreNullValues is "false"
 * and 0 when "true" (KEDA's default); a failed request is an error. A trigger that failed
 * fallback.failureThreshold times in a row asks for fallback.replicas; otherwise AverageValue
 * asks for ceil(value / threshold). The HPA takes the largest count, within min and max.
 */
class KedaStandIn {
  private failures = new Map<string, number>();
  constructor(private readonly so: ScaledObjectSpec) {}

  static value(result: { value: number }[] | Error, ignoreNullValues: string): number | Error {
    if (result instanceof Error) return result;
    if (result.length === 0)
      return ignoreNullValues === 'false' ? new Error('prometheus query returned no result') : 0;
    if (result.length > 1) return new Error('query returned more than one element');
    return result[0]!.value;
  }

  /** One poll of every trigger against `promUrl`; returns the desired replica count (null: no opinion). */
  async poll(promUrl: string): Promise<number | null> {
    let desired: number | null = null;
    for (const tr of this.so.triggers) {
      const raw = await query(promUrl, tr.metadata.query!).catch((e: unknown) =>
        e instanceof Error ? e : new Error(String(e)),
      );
      const v = KedaStandIn.value(raw, tr.metadata.ignoreNullValues ?? 'true');
      let want: number | null;
      if (v instanceof Error) {
        const n = (this.failures.get(tr.name) ?? 0) + 1;
        this.failures.set(tr.name, n);
        want = n >= this.so.fallback.failureThreshold ? this.so.fallback.replicas : null;
      } else {
        this.failures.set(tr.name, 0);
        want = Math.ceil(v / Number(tr.metadata.threshold));
      }
      if (want !== null) desired = Math.max(desired ?? 0, want);
    }
    if (desired === null) return null;
    return Math.min(this.so.maxReplicaCount, Math.max(this.so.minReplicaCount, desired));
  }
}

function podTemplate(objs: readonly K8sObject[], deployment: string) {
  const tpl = get(objs, 'Deployment', deployment).spec.template;
  const containers = [...(tpl.spec.initContainers ?? []), ...tpl.spec.containers] as {
    name: string;
    args?: string[];
    ports?: { name: string; containerPort: number }[];
  }[];
  return {
    labels: tpl.metadata.labels as Record<string, string>,
    annotations: (tpl.metadata.annotations ?? {}) as Record<string, string>,
    container: (name: string) => containers.find((c) => c.name === name)!,
  };
}

const ports = (c: { ports?: { name: string; containerPort: number }[] }) =>
  Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));

test('every default trigger query answers under ServiceMonitor, PodMonitor and annotation scraping; empty on a fresh install; errors with Prometheus down', async (t) => {
  const helm = requireTool(t, 'helm');
  if (!helm) return;
  const prometheus = findBinary('prometheus');
  if (!prometheus) {
    interopMissing(t, 'prometheus not found: apt-get install -y prometheus');
    return;
  }

  // The chart with default values in a cluster that serves KEDA (release snowtap in snowtap).
  const objs = await render(helm, { apiVersions: ['keda.sh/v1alpha1'] });
  const so = get(objs, 'ScaledObject', 'snowtap-enricher').spec as ScaledObjectSpec;
  const triggers = so.triggers;
  assert.deepEqual(
    triggers.map((x) => x.name),
    ['records-offered', 'agent-backlog', 'enricher-busy'],
  );
  for (const tr of triggers) assert.doesNotMatch(tr.metadata.query!, /\bservice=|\bjob=|\bpod=|\bnamespace=/);
  // The agent sidecar exactly as the chart renders it (the resolver example uses the snippet).
  const withResolver = await render(helm, { set: ['examples.resolver.enabled=true'] });
  const enricherTpl = podTemplate(objs, 'snowtap-enricher');
  const resolverTpl = podTemplate(withResolver, 'snowtap-resolver');
  const agentArgs = resolverTpl.container('snowtap-agent').args!;
  const enricherAddress = agentArgs.find((a) => a.startsWith('--enricher='))!.slice('--enricher='.length);
  assert.equal(enricherAddress, 'snowtap-enricher.snowtap.svc:7400');
  const enricherPorts = ports(enricherTpl.container('enricher'));
  const agentPorts = ports(resolverTpl.container('snowtap-agent'));
  assert.equal(enricherTpl.annotations['prometheus.io/scrape'], 'true', 'scrape annotations on by default');
  assert.equal(enricherTpl.annotations['prometheus.io/port'], String(enricherPorts.metrics));
  assert.equal(resolverTpl.annotations['prometheus.io/port'], String(agentPorts['snowtap-metrics']));
  const metricsService = get(objs, 'Service', 'snowtap-enricher-metrics').metadata.name;

  // "Pods": each on its own loopback address with the chart's ports, as pod IPs are.
  const net = `127.${100 + randomInt(100)}.${randomInt(250)}.`;
  const pod = (host: number, p: Omit<FakePod, 'ip'>): FakePod => ({ ...p, ip: `${net}${host}` });
  const enricher = pod(2, {
    namespace: 'snowtap',
    name: 'snowtap-enricher-7c9d5b6f8-x2k9z',
    container: 'enricher',
    ports: enricherPorts,
    labels: { ...enricherTpl.labels, 'pod-template-hash': '7c9d5b6f8' },
    annotations: enricherTpl.annotations,
    service: metricsService,
  });
  const otherEnricher = pod(3, {
    ...enricher,
    name: 'other-snowtap-enricher-5f6d7c8b9-abcde',
    labels: { ...enricher.labels, 'app.kubernetes.io/instance': 'other' },
    service: 'other-snowtap-enricher-metrics',
  });
  const agent = pod(4, {
    namespace: 'dns',
    name: 'resolver-6d5f8c7b9-q1w2e',
    container: 'snowtap-agent',
    ports: agentPorts,
    labels: resolverTpl.labels,
    annotations: resolverTpl.annotations,
  });
  const otherAgent = pod(5, { ...agent, name: 'resolver-other-59c8d7f6b-r4t5y' });

  const startEnricher = async (p: FakePod) => {
    const proc = startSnowtap(
      t,
      [
        'enricher',
        '--listen',
        `${p.ip}:${p.ports.link}`,
        '--metrics-listen',
        `${p.ip}:${p.ports.metrics}`,
        '--output-dir',
        mkdtempSync(path.join(tmp, 'out-')),
        '--id',
        p.name, // the chart sets SNOWTAP_ID to the pod name
        '--rotate-max-age',
        '1',
      ],
      p.ports.metrics!,
    );
    await waitUntil(
      async () => (await fetch(`http://${p.ip}:${p.ports.metrics}/readyz`)).ok,
      `enricher ${p.name} ready (${proc.log().slice(-300)})`,
    );
  };
  const startAgent = async (p: FakePod, enricherArg: string, rate: number) => {
    const dnstap = `${p.ip}:${await freeTcpPort()}`;
    const proc = startSnowtap(
      t,
      [
        'agent',
        '--metrics-listen',
        `${p.ip}:${p.ports['snowtap-metrics']}`,
        '--id',
        p.name,
        `--enricher=${enricherArg}`,
        '--dnstap-tcp',
        dnstap,
      ],
      p.ports['snowtap-metrics']!,
    );
    await waitUntil(
      async () => (await fetch(`http://${p.ip}:${p.ports['snowtap-metrics']}/healthz`)).ok,
      `agent ${p.name} up (${proc.log().slice(-300)})`,
    );
    startSnowtap(
      t,
      ['loadtest', 'producer', '--socket', dnstap, '--rate', String(rate), '--duration', '600'],
      0,
    );
  };
  await startEnricher(enricher);
  await startEnricher(otherEnricher);
  // This release's agent dials the chart's Service name, which does not resolve here: its
  // records wait in its buffer (a real backlog). The other release's agent delivers.
  await startAgent(agent, enricherAddress, 1000);
  await startAgent(otherAgent, `${otherEnricher.ip}:${otherEnricher.ports.link}`, 3000);

  const enrichers = [enricher, otherEnricher];
  const agents = [agent, otherAgent];
  const paths: [string, object[]][] = [
    [
      'ServiceMonitor (enrichers) + PodMonitor (agents, which have no Service)',
      [
        serviceMonitorJob('snowtap/snowtap-enricher/0', enrichers, 'metrics'),
        podMonitorJob('snowtap', 'snowtap-agent', agents, 'snowtap-metrics'),
      ],
    ],
    [
      'PodMonitor',
      [
        podMonitorJob('snowtap', 'snowtap-enricher', enrichers, 'metrics'),
        podMonitorJob('snowtap', 'snowtap-agent', agents, 'snowtap-metrics'),
      ],
    ],
    [
      'prometheus.io annotations (community chart kubernetes-pods job)',
      [annotationsJob([...enrichers, ...agents])],
    ],
  ];

  for (const [name, jobs] of paths) {
    await t.test(name, async (st) => {
      const prom = await startPrometheus(st, prometheus, jobs);
      await waitUntil(async () => {
        const up = await query(prom.url, 'up');
        return up.length === 4 && up.every((s) => s.value === 1);
      }, `4 targets up under ${name}`);
      const values: Record<string, number> = {};
      for (const tr of triggers) {
        const q = tr.metadata.query!;
        await waitUntil(
          async () => (await query(prom.url, q)).length === 1,
          `${tr.name} answers under ${name}`,
        );
        const [s] = await query(prom.url, q);
        assert.ok(Number.isFinite(s!.value), `${tr.name}: ${s!.value}`);
        values[tr.name] = s!.value;
        // Scoped to this release: exactly one agent / one enricher counted, not the other release's.
        const inner = await query(prom.url, q.replace(/^sum\(/, 'count('));
        assert.equal(inner[0]?.value, 1, `${tr.name} counts this release's pod only`);
      }
      st.diagnostic(`${name}: ${JSON.stringify(values)}`);
      assert.ok(values['records-offered']! > 0, "the producer sends to this release's agent");
      // The magnitude, with the rate window cut to 5 s (the 2m window over a few seconds of
      // samples reads low): this release's agent gets 1000/s, the other release's 3000/s.
      const short = triggers[0]!.metadata.query!.replaceAll('[2m]', '[5s]');
      await new Promise((r) => setTimeout(r, 6000));
      const [offered] = await query(prom.url, short);
      st.diagnostic(`records-offered over [5s]: ${offered?.value}`);
      assert.ok(offered!.value > 700 && offered!.value < 1300, `${offered?.value} records/s, expected ~1000`);
      assert.ok(values['agent-backlog']! > 0, 'undelivered records wait in the backlog');
      assert.ok(values['enricher-busy']! > 0 && values['enricher-busy']! <= 1);
    });
  }

  await t.test(
    'no series yet (fresh install): every query is empty; KEDA (stand-in) errors and holds fallback replicas',
    async (st) => {
      // The same kubernetes-pods job, before any pod answers a scrape.
      const nobody = [enricher, agent].map((p) => ({ ...p, ip: `${net}9` }));
      const prom = await startPrometheus(st, prometheus, [annotationsJob(nobody)]);
      await waitUntil(async () => (await query(prom.url, 'up')).length === 2, 'targets scraped (down)');
      for (const tr of triggers) {
        assert.deepEqual(await query(prom.url, tr.metadata.query!), [], `${tr.name} is empty`);
        assert.equal(tr.metadata.ignoreNullValues, 'false');
      }
      const keda = new KedaStandIn(so);
      const desired: (number | null)[] = [];
      for (let i = 0; i < so.fallback.failureThreshold; i++) desired.push(await keda.poll(prom.url));
      // Errors until failureThreshold, then fallback.replicas: not minReplicas forever.
      assert.deepEqual(desired, [
        ...Array(so.fallback.failureThreshold - 1).fill(null),
        so.fallback.replicas,
      ]);
      assert.ok(so.fallback.replicas > so.minReplicaCount);
      // The old behaviour (KEDA's default ignoreNullValues "true") reads the same answer as 0.
      const lenient = new KedaStandIn({
        ...so,
        triggers: triggers.map((x) => ({ ...x, metadata: { ...x.metadata, ignoreNullValues: 'true' } })),
      });
      for (let i = 0; i < so.fallback.failureThreshold; i++)
        assert.equal(await lenient.poll(prom.url), so.minReplicaCount);
    },
  );

  await t.test(
    'Prometheus down: the query errors; the rendered fallback makes KEDA (stand-in) hold fallback replicas',
    async (st) => {
      const prom = await startPrometheus(st, prometheus, paths[2]![1]);
      assert.deepEqual(so.fallback, { failureThreshold: 3, replicas: 4 });
      const keda = new KedaStandIn(so);
      await waitUntil(async () => (await keda.poll(prom.url)) !== null, 'answers while up');
      await prom.stop();
      await assert.rejects(query(prom.url, triggers[0]!.metadata.query!), /fetch failed/);
      const desired: (number | null)[] = [];
      for (let i = 0; i < so.fallback.failureThreshold; i++) desired.push(await keda.poll(prom.url));
      assert.equal(desired.at(-1), so.fallback.replicas);
    },
  );
});
