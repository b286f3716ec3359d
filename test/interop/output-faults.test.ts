// Output faults through the real processes (issue 10, "Faults to survive"): the enricher's
// --output-dir on a small tmpfs that fills up, remounted read-only, or failing writes and
// fsyncs with EIO through an LD_PRELOAD shim. Each time the enricher withholds acks, turns
// not-ready naming the reason (log, /readyz, metrics), the agent keeps what was not
// acknowledged, and once the output works again every record of the capture is delivered:
// audited record by record, duplicates only from re-sent batches.
//
// Needs root (mount). Without it the tests skip, and fail under SNOWTAP_REQUIRE_INTEROP=1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { buildEioShim, gccVersion } from '../support/eio-shim';
import { interopMissing } from '../support/interop';
import {
  type EnricherProc,
  exitWithin,
  freeTcpPort,
  metric,
  type Proc,
  startAgent,
  startSnowtap,
  tmpDir,
  waitUntil,
} from '../support/pipeline-procs';
import { auditDelivery, type Expected, expectedCapture } from '../support/record-audit';

const RECORDS = 100_000;
const BATCH = 1000;
const RETRY_S = 1;

function needRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  return interopMissing(t, 'mounting a tmpfs needs root');
}

/** Mounts a tmpfs of `size` on a fresh directory; unmounted and removed after the test, whatever happens. */
function mountTmpfs(t: TestContext, size: string): string {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'snowtap-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'snowtap-test', mnt]);
  t.after(() => {
    try {
      execFileSync('umount', ['-l', mnt]);
    } finally {
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  });
  return mnt;
}

function remount(mnt: string, opts: string): void {
  // A remount can race with the enricher's lock heartbeat (a file open for writing: EBUSY).
  for (let i = 0; ; i++) {
    try {
      execFileSync('mount', ['-o', `remount,${opts}`, mnt], { stdio: 'pipe' });
      return;
    } catch (err) {
      if (i >= 50) throw err;
      execFileSync('sleep', ['0.1']);
    }
  }
}

async function startEnricherOn(
  t: TestContext,
  outputDir: string,
  env: NodeJS.ProcessEnv = {},
  retryS = RETRY_S,
): Promise<EnricherProc> {
  const linkPort = await freeTcpPort();
  const metricsPort = await freeTcpPort();
  const args = [
    'enricher',
    '--listen',
    `127.0.0.1:${linkPort}`,
    '--metrics-listen',
    `127.0.0.1:${metricsPort}`,
    '--output-dir',
    outputDir,
    '--id',
    'enr-faults',
    '--rotate-max-age',
    '1',
    '--output-retry',
    String(retryS),
  ];
  const p = startSnowtap(t, args, metricsPort, env);
  // Ready, not just alive: /healthz answers before the start-up probe of the output directory,
  // and a fault switched on before that probe fails the start instead of the running output.
  await waitUntil(
    async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200,
    'enricher ready',
    20_000,
    p,
  );
  return { ...p, linkPort, outputDir };
}

async function readyz(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: await res.text() };
}

function replayAgent(t: TestContext, want: Expected, enricher: EnricherProc): Promise<Proc> {
  return startAgent(t, [
    '--input-file',
    want.file,
    '--enricher',
    `127.0.0.1:${enricher.linkPort}`,
    '--batch-records',
    String(BATCH),
    '--rate-limit',
    '50000',
  ]);
}

const acked = (a: Proc) => metric(a.metricsPort, 'snowtap_agent_records_acked_total');

/**
 * While the output is failing: not ready with `reason` in /readyz, suspended in the metrics,
 * and no acknowledgement for a few seconds. Returns when the fault was noticed.
 */
async function assertWithholding(enricher: EnricherProc, agent: Proc, code: string): Promise<number> {
  const started = Date.now();
  await waitUntil(
    async () => (await metric(enricher.metricsPort, 'snowtap_enricher_output_suspended')) === 1,
    `enricher suspended (${code})`,
    30_000,
    enricher,
  );
  const noticed = Date.now() - started;
  const r = await readyz(enricher.metricsPort);
  assert.equal(r.status, 503, '/readyz is not ready');
  assert.match(r.body, new RegExp(code), `/readyz names ${code}`);
  assert.match(enricher.log(), new RegExp(`"code":"${code}".*acknowledgements withheld`), 'logged');
  assert.ok((await metric(enricher.metricsPort, 'snowtap_enricher_output_failures_total')) >= 1);
  const before = await acked(agent);
  // Retries (every RETRY_S) probe the output first: readiness must not flap meanwhile.
  for (const until = Date.now() + 3000; Date.now() < until; ) {
    assert.equal((await readyz(enricher.metricsPort)).status, 503, 'not ready throughout');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await acked(agent), before, 'no acknowledgement while the output fails');
  assert.equal(agent.child.exitCode, null, 'the agent keeps what was not acknowledged');
  return noticed;
}

/** After the fault: ready again, the agent finishes, the enricher drains; every record audited. */
async function assertRecovery(t: TestContext, enricher: EnricherProc, agent: Proc, want: Expected) {
  const fixedAt = Date.now();
  await waitUntil(
    async () => (await readyz(enricher.metricsPort)).status === 200,
    'ready again',
    30_000,
    enricher,
  );
  const readyMs = Date.now() - fixedAt;
  assert.equal(await exitWithin(agent, 120_000, 'agent replay'), 0, 'agent: everything acknowledged');
  const doneMs = Date.now() - fixedAt;
  const resent = await metric(agent.metricsPort, 'snowtap_agent_batches_resent_total').catch(() => 0);
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 0, 'enricher drains and exits 0');
  const d = await auditDelivery([enricher.outputDir], want);
  t.diagnostic(
    `${want.frames} records, ${d.rows} rows, ${d.duplicates} duplicates; ready again ${readyMs} ms after the fix, all acknowledged after ${doneMs} ms`,
  );
  assert.match(enricher.log(), /output works again/);
  // Rows written but never acknowledged come back from recovery and again from the agent.
  assert.ok(
    d.duplicates <= Math.max(resent, 32) * BATCH,
    `duplicates ${d.duplicates} within re-sent batches`,
  );
}

test('disk full on the output (8 MiB tmpfs): acks withheld, not ready (OUTPUT_NO_SPACE), 0 lost after space returns', {
  timeout: 180_000,
}, async (t) => {
  if (!needRoot(t)) return;
  const dir = tmpDir(t, 'snowtap-enospc-');
  const want = await expectedCapture(dir, RECORDS);
  const out = mountTmpfs(t, '8m');
  const enricher = await startEnricherOn(t, out);
  const agent = await replayAgent(t, want, enricher);
  const noticed = await assertWithholding(enricher, agent, 'OUTPUT_NO_SPACE');
  t.diagnostic(
    `suspended ${noticed} ms after the agent started (the 8 MiB fill within that); ${await acked(agent)} acked before`,
  );
  remount(out, 'size=256m');
  await assertRecovery(t, enricher, agent, want);
});

test('read-only output (remount,ro while idle, then load): acks withheld, not ready, 0 lost after remount,rw', {
  timeout: 180_000,
}, async (t) => {
  if (!needRoot(t)) return;
  const dir = tmpDir(t, 'snowtap-erofs-');
  const want = await expectedCapture(dir, RECORDS);
  const out = mountTmpfs(t, '256m');
  const enricher = await startEnricherOn(t, out);
  // A file system cannot go read-only under a file open for writing (EBUSY) unless the kernel
  // forces it after an error; the enricher holds none while idle.
  remount(out, 'ro');
  const agent = await replayAgent(t, want, enricher);
  await assertWithholding(enricher, agent, 'OUTPUT_NOT_WRITABLE');
  assert.match((await readyz(enricher.metricsPort)).body, /EROFS|not writable/);
  remount(out, 'rw');
  await assertRecovery(t, enricher, agent, want);
});

test('EIO from write and fsync (LD_PRELOAD shim) mid-stream: acks withheld, not ready (OUTPUT_IO), 0 lost after', {
  timeout: 180_000,
}, async (t) => {
  if (!needRoot(t)) return;
  if (gccVersion() === null) {
    interopMissing(t, 'gcc is needed to build the EIO shim');
    return;
  }
  const dir = tmpDir(t, 'snowtap-eio-');
  const want = await expectedCapture(dir, RECORDS);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const shim = buildEioShim(dir, out);
  const enricher = await startEnricherOn(t, out, shim.env);
  const agent = await replayAgent(t, want, enricher);
  await waitUntil(async () => (await acked(agent)) >= want.frames / 4, 'a quarter acknowledged', 60_000);
  shim.on('EIO');
  await assertWithholding(enricher, agent, 'OUTPUT_IO');
  assert.match(enricher.log(), /EIO/, 'the log carries the errno');
  // A retry meets the error again and stays suspended.
  await new Promise((r) => setTimeout(r, 2 * RETRY_S * 1000));
  assert.equal(await metric(enricher.metricsPort, 'snowtap_enricher_output_suspended'), 1);
  shim.off();
  await assertRecovery(t, enricher, agent, want);
});

test('--output-retry 0: the first output failure (EIO) stops the enricher with exit 1, nothing acknowledged after it', {
  timeout: 120_000,
}, async (t) => {
  if (!needRoot(t)) return;
  if (gccVersion() === null) {
    interopMissing(t, 'gcc is needed to build the EIO shim');
    return;
  }
  const dir = tmpDir(t, 'snowtap-eio-exit-');
  const want = await expectedCapture(dir, 20_000);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const shim = buildEioShim(dir, out);
  const enricher = await startEnricherOn(t, out, shim.env, 0);
  shim.on('EIO');
  const agent = await replayAgent(t, want, enricher);
  assert.equal(await exitWithin(enricher, 30_000, 'enricher'), 1, 'exit 1');
  assert.match(enricher.log(), /"code":"OUTPUT_IO".*output failed; stopping/);
  assert.equal(await acked(agent).catch(() => 0), 0, 'nothing acknowledged');
  agent.child.kill('SIGKILL');
});

test('SIGTERM while the output is failing: the enricher exits 1 promptly, nothing acknowledged meanwhile', {
  timeout: 120_000,
}, async (t) => {
  if (!needRoot(t)) return;
  if (gccVersion() === null) {
    interopMissing(t, 'gcc is needed to build the EIO shim');
    return;
  }
  const dir = tmpDir(t, 'snowtap-eio-term-');
  const want = await expectedCapture(dir, 20_000);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const shim = buildEioShim(dir, out);
  const enricher = await startEnricherOn(t, out, shim.env);
  shim.on('EIO');
  const agent = await replayAgent(t, want, enricher);
  await waitUntil(
    async () => (await metric(enricher.metricsPort, 'snowtap_enricher_output_suspended')) === 1,
    'suspended',
    30_000,
    enricher,
  );
  const termAt = Date.now();
  enricher.child.kill('SIGTERM');
  assert.equal(await exitWithin(enricher, 10_000, 'enricher'), 1, 'exit 1: the output never recovered');
  t.diagnostic(`exited ${Date.now() - termAt} ms after SIGTERM`);
  assert.equal(await acked(agent), 0, 'nothing acknowledged');
  agent.child.kill('SIGKILL');
});
