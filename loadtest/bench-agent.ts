// Agent throughput end to end: fstrm_replay (libfstrm, Debian fstrm-bin) sends the bulk
// unbound fixture, repeated, into a real `snowtap agent` process over its unix socket; the
// agent batches and relays to an in-process minimal enricher that acknowledges every batch
// at once. Measures records/s from the start of fstrm_replay until the last record is
// acknowledged, the agent's CPU seconds and its RSS (sampled, and the kernel's peak).
//
//   node dist/loadtest/bench-agent.js [repeats=40] [runs=3] [extra agent flags...]
//
// BENCH_PARALLEL=N runs N fstrm_replay processes at once (fstrm_replay alone tops out near
// 1.3 M frames/s, below what the agent takes). Extra flags go to the agent; with `--sample N` (every mode) the expected count is scaled.
// Flags that drop records (--rate-limit, a tiny --buffer-bytes) would never reach it.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ackingEnricher, cpuSeconds, procStatus } from './agent-bench-support';

const REPLAY = '/usr/bin/fstrm_replay';
const FIXTURE = path.resolve(__dirname, '../../test/fixtures/unbound-local-unix-bulk.fstrm');
const FIXTURE_FRAMES = 13002;
const MAIN = path.resolve(__dirname, '../cli/main.js');
const REPEATS = Number(process.argv[2] ?? 40);
const RUNS = Number(process.argv[3] ?? 3);
const EXTRA = process.argv.slice(4);
const PARALLEL = Number(process.env['BENCH_PARALLEL'] ?? 1);
const SAMPLE = EXTRA.includes('--sample') ? Number(EXTRA[EXTRA.indexOf('--sample') + 1]) : 1;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function replay(sock: string): Promise<void> {
  const args = ['-t', 'protobuf:dnstap.Dnstap', '-u', sock];
  for (let i = 0; i < REPEATS; i++) args.push('-r', FIXTURE);
  return new Promise((resolve, reject) => {
    const child = spawn(REPLAY, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`fstrm_replay exited ${code}`))));
  });
}

async function main(): Promise<void> {
  if (!existsSync(REPLAY)) throw new Error('fstrm_replay not installed: apt-get install fstrm-bin');
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-agent-'));
  const sock = path.join(dir, 'dnstap.sock');
  const enricher = await ackingEnricher();
  const args = [MAIN, 'agent', '--dnstap-socket', sock, '--enricher', `127.0.0.1:${enricher.port}`];
  args.push('--metrics-listen', '127.0.0.1:0', '--id', 'bench', ...EXTRA);
  const agent: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<number | null>((r) => agent.on('exit', (code) => r(code)));
  try {
    while (!existsSync(sock)) await sleep(20);
    await sleep(300);
    const pid = agent.pid!;
    const perRun = FIXTURE_FRAMES * REPEATS * PARALLEL;
    console.log(
      `agent pid ${pid}; ${RUNS} runs of ${perRun} records (${REPEATS} x the bulk fixture x ${PARALLEL} fstrm_replay), flags: ${EXTRA.join(' ') || '(defaults)'}`,
    );
    console.log(`idle RSS ${(procStatus(pid, 'VmRSS') / 2 ** 20).toFixed(1)} MiB`);
    for (let run = 1; run <= RUNS; run++) {
      const target = Math.ceil((perRun * run) / SAMPLE);
      let peakRss = 0;
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, procStatus(pid, 'VmRSS'))), 25);
      await Promise.all(Array.from({ length: PARALLEL }, () => replay(sock)));
      const tSent = performance.now();
      const deadline = Date.now() + 60_000;
      while (enricher.stats.records < target) {
        if (Date.now() > deadline)
          throw new Error(`only ${enricher.stats.records} of ${target} records acknowledged`);
        await sleep(1);
      }
      const secs = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      const cpu = cpuSeconds(pid) - cpu0;
      console.log(
        `run ${run}: ${(perRun / secs / 1e6).toFixed(3)} M records/s end to end (${secs.toFixed(2)} s, fstrm_replay done at ` +
          `${((tSent - t0) / 1000).toFixed(2)} s), agent CPU ${cpu.toFixed(2)} s = ${((cpu / secs) * 100).toFixed(0)}% of a core, ` +
          `${(perRun / Math.max(cpu, 0.01) / 1e6).toFixed(2)} M records per CPU-second, peak RSS ${(peakRss / 2 ** 20).toFixed(1)} MiB`,
      );
    }
    console.log(
      `agent VmHWM (peak RSS) ${(procStatus(pid, 'VmHWM') / 2 ** 20).toFixed(1)} MiB; batches acked ${enricher.stats.batches}`,
    );
  } finally {
    agent.kill('SIGTERM');
    const code = await exited;
    console.log(`agent exited ${code} after SIGTERM`);
    enricher.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
