// The composed test bed (loadtest/cluster-bed.ts): pods join the Service only when their
// readiness probe passes; a SIGTERM that leads the endpoint removal (the race issue 7 asks the
// autoscale loop to survive) really sends new connections to a pod that has stopped listening,
// and none after the rules change; a real enricher under a CPU limit is started, probed, made an
// endpoint and terminated with a clean drain; close() leaves nothing behind.
// Needs root, iproute2, iptables, nftables, a cgroup cpu controller.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ClusterBed, enricherPodSpec } from '../../loadtest/cluster-bed';
import { PROBE_MAIN } from '../../loadtest/pod-probe';
import { samplePolicy } from '../../loadtest/synthetic';
import { needBed } from '../support/bed';

const PORT = 7400;

const echoPod = (name: string) => ({
  name,
  argv: (addr: string) => [process.execPath, PROBE_MAIN, 'serve', addr, String(PORT), name],
  readiness: { tcp: { port: PORT } },
});

for (const mode of ['iptables', 'nftables'] as const) {
  test(`${mode}: SIGTERM 1 s before the rules change: new connections fail in the gap, none after`, {
    timeout: 30_000,
  }, async (t) => {
    if (!needBed(t, mode === 'iptables' ? ['iptables-restore'] : ['nft'])) return;
    const bed = await ClusterBed.create({ mode, port: PORT, label: 'gap' });
    t.after(() => bed.close());
    const spread = async (n: number) =>
      (await bed.probe.must({ op: 'spread', host: bed.service.clusterIP, port: PORT, n })).counts ?? {};
    const a = await bed.startPod(echoPod('pod-a'));
    const b = await bed.startPod(echoPod('pod-b'));
    assert.deepEqual(
      bed.endpoints().map((p) => p.name),
      ['pod-a', 'pod-b'],
    );
    const before = await spread(60);
    assert.ok((before['pod-a'] ?? 0) > 0 && (before['pod-b'] ?? 0) > 0, JSON.stringify(before));

    const terminated = bed.terminatePod(a, { sigtermLeadMs: 1_000, graceMs: 5_000 });
    await a.proc.exited; // the echo pod stops listening at once on SIGTERM
    assert.deepEqual(bed.proxy.endpoints(), [a.address, b.address], 'still an endpoint during the lead');
    const gap = await spread(20);
    t.diagnostic(`${mode}: during the 1 s lead: ${JSON.stringify(gap)}`);
    // Each new connection picks pod-a with p = 1/2: all 20 avoiding it has p = 1e-6.
    assert.ok((gap.error ?? 0) > 0, 'connections DNATed to the stopped pod are refused');
    const exit = await terminated;
    assert.equal(exit.code, 0);
    assert.deepEqual(bed.proxy.endpoints(), [b.address]);
    const after = await spread(40);
    assert.deepEqual(after, { 'pod-b': 40 }, 'after the rules change every new connection works');

    await bed.close();
    assert.equal(bed.netns.exists(), false);
  });
}

test('readiness gates the endpoints; an enricher under a 0.3-CPU limit joins, then drains on SIGTERM', {
  timeout: 40_000,
}, async (t) => {
  if (!needBed(t, ['iptables-restore'], true)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = path.join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify(samplePolicy()));
  const bed = await ClusterBed.create({ mode: 'iptables', port: PORT, label: 'ready' });
  t.after(() => bed.close());

  // Never ready (nothing answers HTTP on 9400): never an endpoint.
  await assert.rejects(
    bed.startPod({
      ...echoPod('never'),
      readiness: { http: { port: 9400, path: '/readyz' } },
      readyTimeoutMs: 1_000,
    }),
    (e: unknown) => (e as { code?: string }).code === 'BED_PROBE_FAILED',
  );
  assert.deepEqual(bed.proxy.endpoints(), []);

  const enricher = await bed.startPod(
    enricherPodSpec({
      name: 'enricher-0',
      port: PORT,
      outputDir: path.join(dir, 'out'),
      policyFile: policy,
      cpuLimit: 0.3,
    }),
  );
  t.diagnostic(`enricher ready ${enricher.readyAt! - enricher.startedAt} ms after start under 0.3 CPU`);
  assert.deepEqual(bed.proxy.endpoints(), [enricher.address]);
  assert.ok(enricher.cpu!.pids().includes(enricher.proc.pid), 'inside its CPU-limited cgroup');
  const exit = await bed.terminatePod(enricher, { sigtermLeadMs: 0, graceMs: 25_000 });
  assert.equal(exit.code, 0, enricher.log);
  assert.deepEqual(bed.proxy.endpoints(), []);
  assert.equal(enricher.cpu!.exists(), false, 'its cgroup is removed with it');
  await bed.close();
  assert.equal(bed.netns.exists(), false);
});
