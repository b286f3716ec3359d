// Endpoint-aware mode end to end: the real `snowtap agent --discovery k8s://snowtap/enricher
// --discovery-mode direct` watches EndpointSlices on a STAND-IN API server (test/support/
// fake-kube-api.ts: no Kubernetes API server can run here) and relays a synthetic resolver's
// dnstap to two real enrichers at pod addresses 127.0.0.2 and 127.0.0.3. With the switch
// timer effectively off (600 s), a pod turning ready moves traffic to it at once, a pod
// turning not-ready moves it back, and nothing is lost or duplicated.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spreadOrder } from '../../agent/discovery/spread';
import { endpointSlice, FakeKubeApi, pod } from '../../loadtest/fake-kube-api';
import { DnstapProducer } from '../../loadtest/producer';
import {
  committedRows,
  exitWithin,
  freeTcpPort,
  metric,
  startSnowtap,
  tmpDir,
  waitReady,
  waitUntil,
} from '../support/pipeline-procs';

const RECEIVED = 'snowtap_enricher_records_received_total';

test('direct discovery: traffic follows EndpointSlice readiness at once, nothing lost', {
  timeout: 90_000,
}, async (t) => {
  const dir = tmpDir(t, 'snowtap-disc-');
  const api = await FakeKubeApi.start({ token: 'agent-sa-token' });
  t.after(() => api.close());
  const kubeconfig = api.writeKubeconfig(dir);
  const port = await freeTcpPort();
  const e = await Promise.all(
    ['127.0.0.2', '127.0.0.3'].map(async (ip, i) => {
      const metricsPort = await freeTcpPort();
      const out = path.join(dir, `out-${i + 1}`);
      const p = startSnowtap(
        t,
        [
          'enricher',
          '--listen',
          `${ip}:${port}`,
          '--metrics-listen',
          `127.0.0.1:${metricsPort}`,
          '--output-dir',
          out,
          '--id',
          `enricher-${i + 1}`,
          '--rotate-max-age',
          '1',
        ],
        metricsPort,
      );
      await waitReady(metricsPort);
      return { ...p, ip, out };
    }),
  );
  const [e1, e2] = e as [(typeof e)[0], (typeof e)[0]];
  const slice = (readyB: boolean | null) =>
    endpointSlice({
      name: 'enricher-abc12',
      service: 'enricher',
      ports: [{ name: 'link', port }],
      endpoints:
        readyB === null
          ? [pod(e1.ip, 'enricher-1')]
          : [pod(e1.ip, 'enricher-1'), { ...pod(e2.ip, 'enricher-2'), ready: readyB }],
    });
  api.apply(slice(null));

  // An agent id for which the new pod (e2) sorts first once it is ready: its share moves there.
  const both = [
    { address: e1.ip, port },
    { address: e2.ip, port },
  ];
  let id = 'resolver-0';
  for (let i = 0; spreadOrder(both, id)[0]!.address !== e2.ip; i++) id = `resolver-${i}`;

  const sock = path.join(dir, 'dnstap.sock');
  const agentMetrics = await freeTcpPort();
  const agent = startSnowtap(
    t,
    [
      'agent',
      '--dnstap-socket',
      sock,
      '--discovery',
      'k8s://snowtap/enricher:link',
      '--discovery-mode',
      'direct',
      '--enricher',
      `${e1.ip}:${port}`,
      '--switch-interval',
      '600',
      '--metrics-listen',
      `127.0.0.1:${agentMetrics}`,
      '--id',
      id,
    ],
    agentMetrics,
    { KUBECONFIG: kubeconfig },
  );
  await waitUntil(() => fs.existsSync(sock), 'agent socket');
  const producer = new DnstapProducer({ socket: sock, rate: 3000 });
  await producer.start();

  const rate = async (p: { metricsPort: number }) => {
    const a = await metric(p.metricsPort, RECEIVED);
    await new Promise((r) => setTimeout(r, 500));
    return (await metric(p.metricsPort, RECEIVED)) - a;
  };
  await waitUntil(async () => (await metric(e1.metricsPort, RECEIVED)) > 1000, 'traffic on enricher-1');
  assert.equal(await metric(e2.metricsPort, RECEIVED), 0, 'enricher-2 is not ready yet: no traffic');

  // enricher-2 becomes ready: the agent moves at once (the timer would take 10 minutes).
  let t0 = Date.now();
  api.apply(slice(true));
  await waitUntil(async () => (await rate(e2)) > 500, 'traffic moves to enricher-2', 10_000);
  const moveMs = Date.now() - t0;
  assert.ok((await rate(e1)) < 100, 'enricher-1 no longer gets new batches');
  assert.ok(Number(await metric(agentMetrics, 'snowtap_agent_discovery_changes_total')) >= 2);

  // enricher-2 turns not-ready: traffic goes back to enricher-1 at once.
  t0 = Date.now();
  api.apply(slice(false));
  await waitUntil(async () => (await rate(e1)) > 500, 'traffic back on enricher-1', 10_000);
  const backMs = Date.now() - t0;
  t.diagnostic(`moved to the new pod in ${moveMs} ms, back in ${backMs} ms (switch interval 600 s)`);

  const sent = (await producer.stop()).framesSent;
  await waitUntil(
    async () => (await metric(agentMetrics, 'snowtap_agent_records_acked_total')) === sent,
    'all acked',
    20_000,
  );
  agent.child.kill('SIGTERM');
  assert.equal(await exitWithin(agent, 20_000, 'agent'), 0);
  for (const x of [e1, e2]) {
    x.child.kill('SIGTERM');
    assert.equal(await exitWithin(x, 25_000, x.ip), 0);
  }
  const rows = [...(await committedRows(e1.out)), ...(await committedRows(e2.out))];
  assert.equal(rows.length, sent, 'every record written once');
  assert.equal(new Set(rows.map((r) => r.record_id)).size, sent, 'no duplicates');
  assert.ok(rows.some((r) => r.enricher_id === 'enricher-2'));
});
