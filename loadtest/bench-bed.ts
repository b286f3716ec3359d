// Figures for the cluster test bed, reproducible with `node dist/loadtest/bench-bed.js [runs]`
// (as root): per data plane, the share of new connections each of three pods gets over
// `runs` x 300 connections (min/max share, chi-square per run), and how long one atomic rules
// swap takes; then how close a CPU-limited pod's busy loop comes to its limit at several limits
// (CPU-s/s from /proc/PID/stat over 2 s, after 0.3 s of warm-up).

import { CpuPod, measureCpuRate } from './cpu-pod';
import { PROXY_MODES, startServiceProxy } from './kube-proxy';
import { Netns } from './netns';
import { ProbeClient, startEchoPod } from './pod-probe';

const CLUSTER_IP = '10.96.0.10';
const PORT = 7400;
const PODS = ['10.244.0.11', '10.244.0.12', '10.244.0.13'];

async function spreadFigures(runs: number): Promise<void> {
  for (const mode of PROXY_MODES) {
    const ns = await Netns.create('bench');
    try {
      await ns.addAddress(CLUSTER_IP);
      for (const p of PODS) await ns.addAddress(p);
      for (const [i, p] of PODS.entries()) await startEchoPod(ns, p, PORT, `pod-${i + 1}`);
      const proxy = await startServiceProxy(mode, ns, {
        namespace: 'snowtap',
        name: 'enricher',
        portName: 'link',
        clusterIP: CLUSTER_IP,
        port: PORT,
      });
      const swaps: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = process.hrtime.bigint();
        await proxy.setEndpoints(i % 2 === 0 ? PODS.slice(0, 2) : PODS);
        swaps.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      await proxy.setEndpoints(PODS);
      const client = new ProbeClient(ns);
      const shares: number[] = [];
      const chi: number[] = [];
      for (let r = 0; r < runs; r++) {
        const counts =
          (await client.must({ op: 'spread', host: CLUSTER_IP, port: PORT, n: 300 })).counts ?? {};
        const per = PODS.map((_, i) => counts[`pod-${i + 1}`] ?? 0);
        shares.push(...per.map((c) => c / 300));
        chi.push(per.reduce((s, c) => s + (c - 100) ** 2 / 100, 0));
      }
      await client.close();
      await proxy.close();
      swaps.sort((a, b) => a - b);
      chi.sort((a, b) => a - b);
      const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
      console.log(
        `${mode.padEnd(8)} ${runs} x 300 conns: share min ${pct(Math.min(...shares))} max ${pct(Math.max(...shares))}` +
          ` (fair 33.3 %); chi-square median ${chi[chi.length >> 1]!.toFixed(2)} max ${chi.at(-1)!.toFixed(2)}` +
          ` (df 2, p=0.01 at 9.21); rules swap median ${swaps[5]!.toFixed(1)} ms max ${swaps[9]!.toFixed(1)} ms`,
      );
    } finally {
      await ns.remove();
    }
  }
}

async function cpuFigures(): Promise<void> {
  for (const limit of [0.1, 0.3, 0.5, 1.0]) {
    const pod = CpuPod.create(limit, 'bench');
    const ns = await Netns.create('bench');
    try {
      const loop = ns.spawn(['/bin/sh', '-c', 'while :; do :; done'], { wrapper: pod, stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
      const rates = [];
      for (let w = 0; w < 3; w++) rates.push(await measureCpuRate(loop.pid, 2_000));
      await loop.stop('SIGKILL');
      console.log(
        `cpu pod limit ${limit.toFixed(1)} (cgroup v${pod.version}, quota ${pod.quotaUs} us / 100000 us):` +
          ` ${rates.map((r) => r.toFixed(3)).join(', ')} CPU-s/s in 3 windows of 2 s`,
      );
    } finally {
      pod.remove();
      await ns.remove();
    }
  }
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 10);
  await spreadFigures(runs);
  await cpuFigures();
  const load = (await import('node:os')).loadavg();
  console.log(`load average during the run: ${load.map((l) => l.toFixed(2)).join(' ')} (2 cores, shared)`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
