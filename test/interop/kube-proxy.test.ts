// kube-proxy's data plane, for real, in a network namespace the test creates and removes:
// a ClusterIP in front of three "pods" (echo servers on the same port, each at its own address)
// through the iptables rules, the nftables rules, and the haproxy stand-in.
// (a) 300 new connections spread over all three (chi-square, df = 2, below 18.4: p < 1e-4 for a
//     fair spread, so a pass/fail flip needs a one-in-ten-thousand draw);
// (b) the rules rewritten to two pods: a connection established to the removed pod keeps
//     working (conntrack holds its DNAT; the entry names that pod), new ones never reach it, and a
//     re-added pod gets new connections again;
// (c) removal leaves no namespace and no process behind.
// Needs root, iproute2, iptables, nftables, conntrack, haproxy (interop rule: skip on a laptop,
// fail under SNOWTAP_REQUIRE_INTEROP=1).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conntrackEntries, PROXY_MODES, type ProxyMode, startServiceProxy } from '../../loadtest/kube-proxy';
import { listSnowtapNamespaces, Netns, type NetnsProcess } from '../../loadtest/netns';
import { ProbeClient, startEchoPod } from '../../loadtest/pod-probe';
import { needBed } from '../support/bed';

const TOOLS: Record<ProxyMode, string[]> = {
  iptables: ['iptables-restore', 'conntrack'],
  nftables: ['nft', 'conntrack'],
  haproxy: ['haproxy'],
};
const CLUSTER_IP = '10.96.0.10';
const PORT = 7400;
const PODS = ['10.244.0.11', '10.244.0.12', '10.244.0.13'];
const ID = (i: number) => `pod-${i + 1}`;
/** chi-square quantile, 2 degrees of freedom, p = 1e-4: -2 ln(1e-4). */
const CHI2_DF2_P1E4 = 18.42;

function chiSquare(counts: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  const expected = n / counts.length;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const mode of PROXY_MODES) {
  test(`${mode}: a ClusterIP over three pods in a test namespace`, { timeout: 60_000 }, async (t) => {
    if (!needBed(t, TOOLS[mode])) return;
    const ns = await Netns.create(mode.slice(0, 4));
    t.after(() => ns.remove());
    await ns.addAddress(CLUSTER_IP);
    for (const p of PODS) await ns.addAddress(p);
    const pods: NetnsProcess[] = [];
    for (const [i, p] of PODS.entries()) pods.push(await startEchoPod(ns, p, PORT, ID(i)));
    const service = {
      namespace: 'snowtap',
      name: 'enricher',
      portName: 'link',
      clusterIP: CLUSTER_IP,
      port: PORT,
    };
    const proxy = await startServiceProxy(mode, ns, service);
    t.after(() => proxy.close());
    const client = new ProbeClient(ns);
    t.after(() => client.close());
    const spread = async (n: number) =>
      (await client.must({ op: 'spread', host: CLUSTER_IP, port: PORT, n })).counts ?? {};

    await t.test('no endpoints: new connections are refused', async () => {
      assert.deepEqual(await spread(3), { error: 3 });
    });

    await t.test('(a) 300 new connections spread over all three pods', async () => {
      await proxy.setEndpoints(PODS);
      const counts = await spread(300);
      const per = PODS.map((_, i) => counts[ID(i)] ?? 0);
      const chi2 = chiSquare(per);
      t.diagnostic(`${mode}: per pod ${per.join('/')} of 300, chi-square ${chi2.toFixed(2)}`);
      assert.equal(counts.error, undefined, 'every connection answered');
      assert.equal(
        per.reduce((a, b) => a + b),
        300,
      );
      assert.ok(chi2 < CHI2_DF2_P1E4, `chi-square ${chi2.toFixed(2)} for ${per.join('/')}`);
    });

    await t.test(
      '(b) rules rewritten to two pods: established stays, new ones avoid the removed pod',
      async () => {
        const held = await client.must({ op: 'open', host: CLUSTER_IP, port: PORT, key: 'held' });
        const gone = Number(held.id!.slice(4)) - 1;
        const goneAddr = PODS[gone]!;
        if (mode !== 'haproxy') {
          const entries = await conntrackEntries(ns, CLUSTER_IP);
          assert.ok(
            entries.some((e) => e.state === 'ESTABLISHED' && e.replySrc === goneAddr),
            `a conntrack entry ClusterIP -> ${goneAddr}: ${JSON.stringify(entries.filter((e) => e.state === 'ESTABLISHED'))}`,
          );
        }
        const rest = PODS.filter((p) => p !== goneAddr);
        await proxy.setEndpoints(rest);
        assert.deepEqual(proxy.endpoints(), rest);
        assert.equal(
          (await client.must({ op: 'ping', key: 'held' })).id,
          held.id,
          'the held connection keeps its pod',
        );
        const counts = await spread(100);
        t.diagnostic(`${mode}: after removing ${held.id}: ${JSON.stringify(counts)}`);
        assert.equal(counts[held.id!], undefined, `no new connection reaches ${held.id}`);
        assert.equal(counts.error, undefined);
        for (const p of rest) assert.ok((counts[ID(PODS.indexOf(p))] ?? 0) > 0, `${p} gets new connections`);
        assert.equal(
          (await client.must({ op: 'ping', key: 'held' })).id,
          held.id,
          'still there after 100 others',
        );
        if (mode !== 'haproxy') {
          const entries = await conntrackEntries(ns, CLUSTER_IP);
          assert.ok(entries.some((e) => e.state === 'ESTABLISHED' && e.replySrc === goneAddr));
        }
        // The pod comes back (Ready again): it gets new connections again.
        await proxy.setEndpoints(PODS);
        const again = await spread(150);
        assert.ok((again[held.id!] ?? 0) > 0, `${held.id} re-added: ${JSON.stringify(again)}`);
        await client.must({ op: 'close', key: 'held' });
      },
    );

    await t.test('(c) removal leaves no namespace and no process behind', async () => {
      const pids = [...pods.map((p) => p.pid), client.proc.pid];
      await client.close();
      await proxy.close();
      await ns.remove();
      await ns.remove(); // idempotent
      assert.equal(ns.exists(), false);
      assert.ok(!(await listSnowtapNamespaces()).includes(ns.name));
      for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} stopped`);
      await assert.rejects(ns.run(['true']), (e: unknown) => (e as { code?: string }).code === 'BED_CLOSED');
    });
  });
}
