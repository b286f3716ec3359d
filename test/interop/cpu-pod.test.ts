// Pods with a Kubernetes CPU limit, for real: a cgroup with the kubelet's CFS quota
// (period 100 ms, quota = limit x 100 ms) that the test creates and removes.
// (d) a busy loop in a 0.3-CPU pod uses 0.3 +- 0.05 CPU-seconds per second, from /proc/PID/stat
//     over 2 s windows. The quota is a ceiling, so no window may exceed 0.35; reaching it needs
//     the CPU to be free, so on a loaded shared machine up to three windows are taken and one of
//     them must land within the band.
// (e) a real enricher (`node dist/cli/main.js enricher`) started inside a test network namespace
//     at a pod address, under a CPU limit from its first instruction, answers /readyz there.
// Both leave no cgroup and no namespace behind. Needs root, iproute2, a cgroup cpu controller.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SNOWTAP_MAIN } from '../../loadtest/cluster';
import { CFS_PERIOD_US, CpuPod, cfsQuotaUs, measureCpuRate } from '../../loadtest/cpu-pod';
import { Netns } from '../../loadtest/netns';
import { ProbeClient } from '../../loadtest/pod-probe';
import { samplePolicy } from '../../loadtest/synthetic';
import { needBed } from '../support/bed';

const LIMIT = 0.3;
const BAND = 0.05;
const WINDOW_MS = 2_000;

test('the kubelet quota for a CPU limit: 0.3 -> 30000 us per 100000 us, 1.5 -> 150000, at least 1 ms', () => {
  assert.equal(CFS_PERIOD_US, 100_000);
  assert.equal(cfsQuotaUs(0.3), 30_000);
  assert.equal(cfsQuotaUs(1.5), 150_000);
  assert.equal(cfsQuotaUs(0.001), 1_000);
  assert.throws(
    () => cfsQuotaUs(0),
    (e: unknown) => (e as { code?: string }).code === 'BED_INVALID_ARGUMENT',
  );
});

test('(d) a busy loop in a 0.3-CPU pod uses 0.3 +- 0.05 CPU-s/s', { timeout: 30_000 }, async (t) => {
  if (!needBed(t, [], true)) return;
  const ns = await Netns.create('cpu');
  t.after(() => ns.remove());
  const pod = CpuPod.create(LIMIT, 'busy');
  t.after(() => pod.remove());
  assert.deepEqual(pod.limits(), { quotaUs: 30_000, periodUs: 100_000 });
  const loop = ns.spawn(['/bin/sh', '-c', 'while :; do :; done'], { wrapper: pod, stdio: 'ignore' });
  for (let i = 0; i < 100 && !pod.pids().includes(loop.pid); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(pod.pids(), [loop.pid], 'the loop (same PID through sh and ip netns exec) is the pod');
  await new Promise((r) => setTimeout(r, 300));
  const before = pod.throttling();
  const rates: number[] = [];
  for (let w = 0; w < 3; w++) {
    const rate = await measureCpuRate(loop.pid, WINDOW_MS);
    rates.push(rate);
    assert.ok(rate <= LIMIT + BAND, `window ${w + 1}: ${rate.toFixed(3)} CPU-s/s is above the limit`);
    if (rate >= LIMIT - BAND) break;
  }
  const after = pod.throttling();
  t.diagnostic(
    `cgroup v${pod.version}, limit ${LIMIT}: ${rates.map((r) => r.toFixed(3)).join(', ')} CPU-s/s; ` +
      `throttled in ${after.throttled - before.throttled} of ${after.periods - before.periods} periods`,
  );
  assert.ok(
    rates.some((r) => Math.abs(r - LIMIT) <= BAND),
    `no 2 s window within ${LIMIT} +- ${BAND}: ${rates.map((r) => r.toFixed(3)).join(', ')}`,
  );
  assert.ok(after.throttled > before.throttled, 'the quota, not the scheduler, limited the loop');
  await loop.stop('SIGKILL');
  pod.remove();
  await ns.remove();
  assert.equal(pod.exists(), false, 'cgroup removed');
  assert.equal(ns.exists(), false, 'namespace removed');
});

test('(e) an enricher in the namespace at a pod address, under a CPU limit, answers /readyz', {
  timeout: 30_000,
}, async (t) => {
  if (!needBed(t, [], true)) return;
  const POD = '10.244.1.5';
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bed-enricher-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = path.join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify(samplePolicy()));
  const ns = await Netns.create('enr');
  t.after(() => ns.remove());
  await ns.addAddress(POD);
  const pod = CpuPod.create(0.5, 'enricher');
  t.after(() => pod.remove());
  // The harness's own SNOWTAP_* settings must not configure the child.
  const env: NodeJS.ProcessEnv = { SNOWTAP_LOG_LEVEL: 'warn' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SNOWTAP_')) env[k] = v;
  const started = Date.now();
  const enricher = ns.spawn(
    [
      process.execPath,
      SNOWTAP_MAIN,
      'enricher',
      '--listen',
      `${POD}:7400`,
      '--metrics-listen',
      `${POD}:9400`,
      '--output-dir',
      path.join(dir, 'out'),
      '--policy-file',
      policy,
      '--id',
      'enricher-0',
    ],
    { wrapper: pod, env },
  );
  let log = '';
  enricher.child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  enricher.child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const probe = new ProbeClient(ns);
  t.after(() => probe.close());
  let ready = false;
  while (!ready && Date.now() - started < 20_000) {
    assert.ok(enricher.running, `enricher exited during start-up: ${log}`);
    const a = await probe.request({ op: 'http', url: `http://${POD}:9400/readyz` });
    ready = a.ok && a.status === 200;
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(ready, `/readyz at ${POD}:9400 not 200 within 20 s: ${log}`);
  t.diagnostic(`enricher ready at ${POD} under a 0.5-CPU limit after ${Date.now() - started} ms`);
  assert.ok(pod.pids().includes(enricher.pid), 'the enricher runs inside the CPU-limited cgroup');
  const exit = await enricher.stop('SIGTERM', 25_000);
  assert.equal(exit.code, 0, `enricher drained and exited 0: ${log}`);
  await probe.close();
  pod.remove();
  await ns.remove();
  assert.equal(pod.exists(), false);
  assert.equal(ns.exists(), false);
});
