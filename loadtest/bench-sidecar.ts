// The sidecar's footprint at a steady rate (issue: "a lean sidecar"): a synthetic DNS server
// (`snowtap loadtest producer`, bidirectional Frame Streams, paced) sends N frames/s for D
// seconds to a unix socket read by, in turn, the C reference `fstrm_capture -w /dev/null` and
// a real `snowtap agent` with its DEFAULT options relaying to a minimal acknowledging enricher
// (agent-bench-support.ts). The pairs run back to back, K times; reported per receiver:
// CPU per frame (utime + stime from /proc over the steady window), peak RSS (VmHWM), idle RSS
// before traffic, CPU and wakeups of the main thread while idle (connected, no traffic, for
// IDLE_SECONDS), and drops. A last run stops the enricher so the agent's memory buffer fills
// (RSS with the buffer full).
//
//   node dist/loadtest/bench-sidecar.js [--rate N] [--seconds D] [--warmup W] [--runs K] [--quick] [--json FILE]
//     --warmup W: seconds of traffic before the measured window (default 10; 2 with --quick).
//       V8 compiles the agent's per-batch code (about 100 calls a second at this rate) during
//       the first ~7 s of traffic: in that time the agent costs 1.5x its steady CPU per frame
//       (measured 2026-12-07, Node 24: 6-8 % of a core for 7 s, then 3-5 %). The warm-up
//       window's CPU per frame is reported too (`warmupCpuPerFrameUs`), so the transient stays
//       visible; the target is the steady state.
//     [--agent-flag=--x=y ...]   extra agent flags (repeatable)
//     [--tick-ms MS] [--frames-per-write N]   how the producer writes (`snowtap loadtest producer`);
//       by default a 10 ms burst of ~1000 frames in one write, so a read brings ~1000 frames.
//       A DNS server writes less at a time (unbound: one frame per write), which costs every
//       reader more per frame (a wakeup per few frames; the kernel's per-write buffers).
//       With --frames-per-write 1 keep --tick-ms short (1): a unix socket holds only ~300
//       one-frame writes, so a 10 ms burst of 1,000 backs up in the producer, which then
//       falls behind (the run notes it). Measured 2026-12-07, Node 24, --quick, one run each:
//       agent / fstrm_capture 1.05 / 0.33 µs a frame with --tick-ms 1; 0.90 / 0.27 with
//       --tick-ms 1 --frames-per-write 1; 0.67 / 0.18 by default (median of 3).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ackingEnricher,
  cpuSeconds,
  procStatus,
  runNanoseconds,
  voluntarySwitches,
} from './agent-bench-support';
import { median } from './stats';

const MAIN = path.resolve(__dirname, '../cli/main.js');
const CAPTURE = '/usr/bin/fstrm_capture';
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const num = (name: string, def: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : def);
const RATE = num('--rate', 100_000);
const SECONDS = num('--seconds', QUICK ? 4 : 12);
const RUNS = num('--runs', QUICK ? 1 : 3);
const WARMUP = num('--warmup', QUICK ? 2 : 10);
for (const [name, v, min] of [
  ['--rate', RATE, 1],
  ['--seconds', SECONDS, 1],
  ['--runs', RUNS, 1],
  ['--warmup', WARMUP, 0],
] as const)
  if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number >= ${min}, got ${v}`);
const AGENT_FLAGS = args
  .filter((a) => a.startsWith('--agent-flag='))
  .map((a) => a.slice('--agent-flag='.length));
const PRODUCER_FLAGS = ['--tick-ms', '--frames-per-write'].flatMap((f) =>
  args.includes(f) ? [f, args[args.indexOf(f) + 1]!] : [],
);
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const MiB = 2 ** 20;
/** The idle window before traffic: CPU (all threads) and the main thread's wakeups. */
const IDLE_SECONDS = 3;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Reading {
  receiver: 'fstrm_capture' | 'agent';
  frames: number;
  cpuSeconds: number;
  cpuPerFrameUs: number;
  /** CPU per frame during the warm-up before the measured window (V8 still compiling). */
  warmupCpuPerFrameUs: number;
  coreShare: number;
  idleRssMiB: number;
  /** CPU while idle (connected, no traffic), milliseconds a second, all threads. */
  idleCpuMsPerSec: number;
  /** Times a second the main thread went to sleep while idle (voluntary context switches). */
  idleWakeupsPerSec: number;
  peakRssMiB: number;
  /** Peak of the process's own memory (RssAnon, sampled every 20 ms): RSS less the pages
   * mapped from files, mostly the node binary's code, which every node process shares. */
  peakAnonMiB: number;
  dropped: number;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
    else child.once('exit', (code) => r(code));
  });
}

async function waitForSocket(sock: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!existsSync(sock)) {
    if (Date.now() > deadline) throw new Error(`${sock} never appeared`);
    await sleep(20);
  }
}

/** Runs the paced producer against `sock`; resolves with the frames it handed to the socket. */
async function produce(sock: string, rate: number, seconds: number): Promise<number> {
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'loadtest',
      'producer',
      '--socket',
      sock,
      '--rate',
      String(rate),
      '--duration',
      String(seconds),
      ...PRODUCER_FLAGS,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SNOWTAP_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  const code = await exitOf(child);
  if (code !== 0) throw new Error(`producer exited ${code}: ${out}`);
  const stats = JSON.parse(out.trim().split('\n').pop()!) as { framesSent: number; framesBehind: number };
  if (stats.framesBehind > rate * 0.02)
    console.log(`  note: the producer fell behind by ${stats.framesBehind} frames (machine busy)`);
  return stats.framesSent;
}

interface Measured {
  frames: number;
  cpu: number;
  secs: number;
  peakAnon: number;
  warmupCpuPerFrameUs: number;
}

/** Samples a receiver's CPU over the steady part of a producer run (after WARMUP s). */
async function measure(pid: number, sock: string): Promise<Measured> {
  let peakAnon = procStatus(pid, 'RssAnon');
  const sampler = setInterval(() => {
    peakAnon = Math.max(peakAnon, procStatus(pid, 'RssAnon'));
  }, 20);
  const total = SECONDS + WARMUP;
  const cpuStart = cpuSeconds(pid);
  const tStart = performance.now();
  const run = produce(sock, RATE, total);
  await sleep(WARMUP * 1000);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const frames = await run.finally(() => clearInterval(sampler));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  // Frames per window: the paced producer sends evenly, so scale by time.
  const warmupFrames = (frames * Math.min((t0 - tStart) / 1000, WARMUP)) / total;
  return {
    frames: Math.round((frames * Math.min(secs, SECONDS)) / total),
    cpu,
    secs,
    peakAnon,
    warmupCpuPerFrameUs: warmupFrames > 0 ? ((cpu0 - cpuStart) / warmupFrames) * 1e6 : 0,
  };
}

async function captureRun(dir: string): Promise<Reading> {
  const sock = path.join(dir, `cap-${Date.now()}.sock`);
  const child = spawn(CAPTURE, ['-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-w', '/dev/null'], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  try {
    await waitForSocket(sock);
    await sleep(200);
    const idle = await idleWindow(child.pid!);
    const m = await measure(child.pid!, sock);
    return reading('fstrm_capture', m, idle, procStatus(child.pid!, 'VmHWM'), 0);
  } finally {
    child.kill('SIGTERM');
    await exitOf(child);
  }
}

interface Idle {
  rss: number;
  cpuMsPerSec: number;
  wakeupsPerSec: number;
}

/** RSS, then CPU and wakeups over IDLE_SECONDS with no traffic. */
async function idleWindow(pid: number): Promise<Idle> {
  const rss = procStatus(pid, 'VmRSS');
  const ns0 = runNanoseconds(pid);
  const v0 = voluntarySwitches(pid);
  const t0 = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const secs = (performance.now() - t0) / 1000;
  return {
    rss,
    cpuMsPerSec: (runNanoseconds(pid) - ns0) / 1e6 / secs,
    wakeupsPerSec: (voluntarySwitches(pid) - v0) / secs,
  };
}

function reading(
  receiver: Reading['receiver'],
  m: Measured,
  idle: Idle,
  peak: number,
  dropped: number,
): Reading {
  return {
    receiver,
    frames: m.frames,
    cpuSeconds: m.cpu,
    cpuPerFrameUs: (m.cpu / m.frames) * 1e6,
    warmupCpuPerFrameUs: m.warmupCpuPerFrameUs,
    coreShare: m.cpu / m.secs,
    idleRssMiB: idle.rss / MiB,
    idleCpuMsPerSec: idle.cpuMsPerSec,
    idleWakeupsPerSec: idle.wakeupsPerSec,
    peakRssMiB: peak / MiB,
    peakAnonMiB: m.peakAnon / MiB,
    dropped,
  };
}

async function agentMetric(port: number, prefix: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(prefix + ' ') || line.startsWith(prefix + '{'))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function freePort(): Promise<number> {
  const e = await ackingEnricher();
  await new Promise((r) => e.server.close(r));
  return e.port;
}

async function agentRun(dir: string, bufferFull: boolean): Promise<Reading> {
  const sock = path.join(dir, `agent-${Date.now()}.sock`);
  const enricher = await ackingEnricher();
  // With the buffer-full case, the agent points at a port nobody listens on: batches pile up.
  const target = bufferFull ? await freePort() : enricher.port;
  if (bufferFull) enricher.server.close();
  const metricsPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'agent',
      '--dnstap-socket',
      sock,
      '--enricher',
      `127.0.0.1:${target}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--id',
      'bench-sidecar',
      ...AGENT_FLAGS,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SNOWTAP_LOG_LEVEL: 'warn' } },
  );
  try {
    await waitForSocket(sock);
    await sleep(500);
    const idle = await idleWindow(child.pid!);
    const m = await measure(child.pid!, sock);
    const dropped = await agentMetric(metricsPort, 'snowtap_agent_records_dropped_total');
    return reading('agent', m, idle, procStatus(child.pid!, 'VmHWM'), dropped);
  } finally {
    child.kill('SIGTERM');
    await exitOf(child);
    if (!bufferFull) enricher.server.close();
  }
}

function summarise(rs: Reading[]): Reading {
  const pick = (k: keyof Reading) => median(rs.map((r) => r[k] as number));
  return {
    receiver: rs[0]!.receiver,
    frames: pick('frames'),
    cpuSeconds: pick('cpuSeconds'),
    cpuPerFrameUs: pick('cpuPerFrameUs'),
    warmupCpuPerFrameUs: pick('warmupCpuPerFrameUs'),
    coreShare: pick('coreShare'),
    idleRssMiB: pick('idleRssMiB'),
    idleCpuMsPerSec: pick('idleCpuMsPerSec'),
    idleWakeupsPerSec: pick('idleWakeupsPerSec'),
    peakRssMiB: pick('peakRssMiB'),
    peakAnonMiB: pick('peakAnonMiB'),
    dropped: pick('dropped'),
  };
}

function line(r: Reading): string {
  return (
    `${r.receiver.padEnd(14)} ${r.cpuPerFrameUs.toFixed(2).padStart(6)} µs/frame  ${(r.coreShare * 100).toFixed(1).padStart(5)} % of a core  ` +
    `(warm-up ${r.warmupCpuPerFrameUs.toFixed(2)})  ` +
    `idle RSS ${r.idleRssMiB.toFixed(1).padStart(6)} MiB, CPU ${r.idleCpuMsPerSec.toFixed(2)} ms/s, ${r.idleWakeupsPerSec.toFixed(0)} wakeups/s  peak RSS ${r.peakRssMiB.toFixed(1).padStart(6)} MiB (anon ${r.peakAnonMiB.toFixed(1).padStart(5)})  dropped ${r.dropped}`
  );
}

async function main(): Promise<void> {
  if (!existsSync(CAPTURE)) throw new Error('fstrm_capture not installed: apt-get install fstrm-bin');
  if (spawnSync(process.execPath, [MAIN, '--help']).status !== 0) throw new Error(`cannot run ${MAIN}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bench-sidecar-'));
  console.log(
    `steady ${RATE} frames/s for ${SECONDS} s (after ${WARMUP} s warm-up), ${RUNS} paired runs, Node ${process.version}, agent flags: ${AGENT_FLAGS.join(' ') || '(defaults)'}, producer: ${PRODUCER_FLAGS.join(' ') || 'a 10 ms burst per write'}`,
  );
  try {
    const cap: Reading[] = [];
    const agent: Reading[] = [];
    for (let i = 0; i < RUNS; i++) {
      cap.push(await captureRun(dir));
      console.log(`  run ${i + 1} ${line(cap[i]!)}`);
      agent.push(await agentRun(dir, false));
      console.log(`  run ${i + 1} ${line(agent[i]!)}`);
    }
    const full = await agentRun(dir, true);
    // Each run's agent against the fstrm_capture run just before it, then the median: the
    // machine's speed drifts within minutes, so pairs compare better than two medians.
    const ratios = agent.map((a, i) => a.cpuPerFrameUs / cap[i]!.cpuPerFrameUs);
    const result = {
      node: process.version,
      rate: RATE,
      seconds: SECONDS,
      warmupSeconds: WARMUP,
      runs: RUNS,
      fstrmCapture: summarise(cap),
      agent: summarise(agent),
      agentBufferFull: full,
      cpuPerFrameRatio: median(ratios),
      cpuPerFrameRatios: ratios,
    };
    console.log('\nmedians:');
    console.log(`  ${line(result.fstrmCapture)}`);
    console.log(`  ${line(result.agent)}`);
    console.log(`  agent, enricher unreachable (memory buffer fills): ${line(full)}`);
    console.log(
      `  agent CPU per frame / fstrm_capture's: ${result.cpuPerFrameRatio.toFixed(2)} (median of the runs: ${result.cpuPerFrameRatios.map((r) => r.toFixed(2)).join(', ')})`,
    );
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
