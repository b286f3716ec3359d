// `npm run bench:e2e`: records/s through the real processes, agent -> enricher -> CSV on this
// machine, ack latency p50/p99 (the agent's histogram: batch sent -> ack received) and the
// peak RSS of both processes. Two inputs:
//   replay: `snowtap agent --input-file` (backpressure, nothing dropped): the pipeline's capacity
//   socket: `fstrm_replay` -> the agent's unix socket (a DNS server's path; drops are counted)
//
//   node dist/loadtest/bench-e2e.js [--frames N] [--quick] [--json FILE] [--acking-peer] [--pin]
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freeTcpPort } from '../common/listen';
import { cpuSeconds } from './agent-bench-support';
import { replicateCapture } from './capture';
import { median } from './stats';

const MAIN = path.resolve(__dirname, '../cli/main.js');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const FRAMES = args.includes('--frames')
  ? Number(args[args.indexOf('--frames') + 1])
  : QUICK
    ? 100_000
    : 1_040_000;
// A deployment's enricher runs on other nodes; on this 2-core machine it competes with the
// agent and fstrm_replay for CPU (three busy processes on two cores). `--acking-peer` puts a
// minimal link peer (loadtest/acking-peer.ts: parses each batch's header and acknowledges it at
// once) in the real enricher's place for the socket row: an enricher that keeps up at almost no
// CPU, so the row shows what the agent itself absorbs. The agent still relays every frame and
// waits for every ack, and the run fails if it dropped anything. (Running the real enricher
// under SCHED_IDLE instead starved it: the agent's memory buffer filled and it dropped half.)
const ACKING_PEER = args.includes('--acking-peer');
// `--pin`: the producer on one core, the reader on the other (`taskset`), for the socket row and
// its reference alike: fstrm_replay on CPU 0; the agent (and the acking peer, if any) or
// fstrm_capture on CPU 1. Without it the scheduler places the three processes on two cores as
// it likes, and whichever reader uses more CPU also slows the producer it is measured by.
const PIN = args.includes('--pin');
// `--pairs N`: the socket row's agent stays up and absorbs the capture N times, each followed by
// the C reference on the same cores; the figures are medians over the pairs (this machine's speed
// drifts by a third within minutes, so one pair says little). Default 5, 1 with --quick.
const PAIRS = args.includes('--pairs') ? Number(args[args.indexOf('--pairs') + 1]) : QUICK ? 1 : 5;
if (!Number.isInteger(PAIRS) || PAIRS < 1)
  throw new Error(`--pairs must be a whole number >= 1, got ${PAIRS}`);
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;

async function scrape(port: number): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
  } catch {}
  return m;
}

/** Quantile from a Prometheus histogram's cumulative buckets (linear inside the bucket). */
function quantile(m: Map<string, number>, name: string, q: number): number {
  const buckets: [number, number][] = [];
  for (const [k, v] of m) {
    const b = new RegExp(`^${name}_bucket\\{.*le="([^"]+)"`).exec(k);
    if (b) buckets.push([b[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(b[1]), v]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** `cmd args` under `taskset -c cpu` when pinning and a CPU is given. */
function pinned(cpu: number | undefined, cmd: string, argv: string[]): [string, string[]] {
  return PIN && cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...argv]] : [cmd, argv];
}

function start(argv: string[], cpu?: number): ChildProcess {
  return spawn(...pinned(cpu, process.execPath, [MAIN, ...argv]), {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, SNOWTAP_LOG_LEVEL: 'warn' },
  });
}

async function waitReady(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not ready on :${port}`);
}

interface Result {
  input: string;
  records: number;
  seconds: number;
  recordsPerSec: number;
  ackP50ms: number;
  ackP99ms: number;
  agentPeakRssMiB: number;
  enricherPeakRssMiB: number;
  dropped: number;
  /** Socket input only: frames/s fstrm_replay got rid of (start to its exit), the rate at
   * which the agent absorbs a DNS server's stream; compare with fstrm_capture's. */
  absorbPerSec?: number;
  /** Socket input only: data frames per socket read (records_in / the agent's input_reads_total). */
  framesPerRead?: number;
  /** Socket input only: the agent's CPU (user + system) while fstrm_replay ran, in cores. */
  agentCores?: number;
  /** Socket input only: the enricher's and fstrm_replay's CPU over the same time, in cores. */
  enricherCores?: number;
  replayCores?: number;
  /** Socket input only: the C reference in the same run (fstrm_replay -> fstrm_capture). */
  capturePerSec?: number;
  /** absorbPerSec / capturePerSec: the agent against the C reference in the same run. */
  absorbRatio?: number;
  captureCores?: number;
  /** Socket input only: each absorption and its reference. */
  pairs?: Pair[];
}

/** One absorption by the agent and the C reference's right after it. */
interface Pair {
  absorbPerSec: number;
  agentCores: number;
  enricherCores: number;
  replayCores: number;
  capturePerSec: number;
  captureCores: number;
  /** From fstrm_replay's start until the agent had every frame acknowledged. */
  relaySecs: number;
}

/** Records the agent dropped, every reason summed (its scraped metrics). */
function droppedOf(m: Map<string, number>): number {
  let sum = 0;
  for (const [k, v] of m) if (k.startsWith('snowtap_agent_records_dropped_total')) sum += v;
  return sum;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The socket row's figures: medians over the pairs, the ratio as the median of each pair's. */
function socketFigures(pairs: Pair[], m: Map<string, number>): Partial<Result> {
  const ratios = pairs.filter((p) => p.capturePerSec > 0).map((p) => p.absorbPerSec / p.capturePerSec);
  return {
    absorbPerSec: Math.round(median(pairs.map((p) => p.absorbPerSec))),
    agentCores: round2(median(pairs.map((p) => p.agentCores))),
    enricherCores: round2(median(pairs.map((p) => p.enricherCores))),
    replayCores: round2(median(pairs.map((p) => p.replayCores))),
    framesPerRead: Math.round((10 * (m.get(IN) ?? 0)) / (m.get(READS) ?? 1)) / 10,
    ...(ratios.length > 0
      ? {
          capturePerSec: Math.round(median(pairs.map((p) => p.capturePerSec))),
          captureCores: round2(median(pairs.map((p) => p.captureCores))),
          absorbRatio: round2(median(ratios)),
        }
      : {}),
    pairs,
  };
}

const referenceAvailable = spawnSync('fstrm_capture', ['-h']).error === undefined;

/** The C reference in the same run: fstrm_replay -> fstrm_capture -w /dev/null, frames/s. */
async function captureReference(
  capture: string,
  frames: number,
  dir: string,
): Promise<{ perSec: number; cores: number }> {
  const sock = path.join(dir, `capture-${Date.now()}.sock`);
  const cap = spawn(
    ...pinned(1, 'fstrm_capture', ['-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-w', '/dev/null']),
    { stdio: 'ignore' },
  );
  try {
    while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
    const t0 = process.hrtime.bigint();
    const cpu0 = cpuSeconds(cap.pid!);
    spawnSync(...pinned(0, 'fstrm_replay', ['-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-r', capture]), {
      stdio: 'ignore',
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return { perSec: Math.round(frames / secs), cores: (cpuSeconds(cap.pid!) - cpu0) / secs };
  } finally {
    const exited = new Promise((r) => cap.once('exit', r));
    cap.kill('SIGTERM');
    await exited; // reaped before the next pair counts its children's CPU
  }
}

async function run(
  input: 'replay' | 'socket',
  capture: string,
  frames: number,
  dir: string,
): Promise<Result> {
  let link = await freeTcpPort();
  const [em, am] = [await freeTcpPort(), await freeTcpPort()];
  const out = path.join(dir, `out-${input}`);
  const peer = ACKING_PEER && input === 'socket';
  const enricher = peer
    ? spawn(...pinned(1, process.execPath, [path.resolve(__dirname, 'acking-peer.js')]), {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : start([
        'enricher',
        '--listen',
        `127.0.0.1:${link}`,
        '--metrics-listen',
        `127.0.0.1:${em}`,
        '--output-dir',
        out,
        '--id',
        'bench-e',
      ]);
  if (peer) link = await peerPort(enricher);
  else await waitReady(em);
  const sock = path.join(dir, `agent-${input}.sock`);
  const inputArgs = input === 'replay' ? ['--input-file', capture] : ['--dnstap-socket', sock];
  const agent = start(
    [
      'agent',
      ...inputArgs,
      '--enricher',
      `127.0.0.1:${link}`,
      '--metrics-listen',
      `127.0.0.1:${am}`,
      '--id',
      'bench-a',
    ],
    input === 'socket' ? 1 : undefined,
  );
  const agentExit = new Promise<number | null>((r) => agent.once('exit', (c) => r(c)));
  let peakA = 0;
  let peakE = 0;
  let lastA = new Map<string, number>();
  const poll = setInterval(async () => {
    const a = await scrape(am);
    const e = await scrape(em);
    if (a.size > 0) lastA = a;
    peakA = Math.max(peakA, a.get('snowtap_agent_process_resident_memory_bytes') ?? 0);
    peakE = Math.max(peakE, e.get('snowtap_enricher_process_resident_memory_bytes') ?? 0);
  }, 250);
  await waitReady(am);
  const t0 = process.hrtime.bigint();
  const pairs: Pair[] = [];
  if (input === 'socket') {
    while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
    for (let p = 1; p <= PAIRS; p++) {
      const t1 = process.hrtime.bigint();
      const cpu0 = cpuSeconds(agent.pid!);
      const e0 = cpuSeconds(enricher.pid!);
      const r0 = childrenCpuSeconds();
      spawnSync(...pinned(0, 'fstrm_replay', ['-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-r', capture]), {
        stdio: 'ignore',
      });
      const secs = Number(process.hrtime.bigint() - t1) / 1e9;
      const agentCores = (cpuSeconds(agent.pid!) - cpu0) / secs;
      const enricherCores = (cpuSeconds(enricher.pid!) - e0) / secs;
      const replayCores = (childrenCpuSeconds() - r0) / secs;
      // Everything relayed and acknowledged before the reference runs on the same core.
      for (;;) {
        const a = await scrape(am);
        const acked = a.get('snowtap_agent_records_acked_total') ?? 0;
        const inRec = a.get('snowtap_agent_records_in_total') ?? 0;
        if (inRec >= frames * p && acked + droppedOf(a) >= inRec) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const relaySecs = Number(process.hrtime.bigint() - t1) / 1e9;
      const ref = referenceAvailable ? await captureReference(capture, frames, dir) : { perSec: 0, cores: 0 };
      pairs.push({
        absorbPerSec: Math.round(frames / secs),
        agentCores,
        enricherCores,
        replayCores,
        capturePerSec: ref.perSec,
        captureCores: ref.cores,
        relaySecs,
      });
    }
  }
  const lastBeforeExit = input === 'socket' ? await scrape(am) : null;
  if (input === 'socket') agent.kill('SIGTERM');
  const agentCode = await agentExit;
  if (input === 'replay' && agentCode !== 0)
    throw new Error(`agent replay exited ${agentCode}: not everything was acknowledged`);
  // The socket row: the agent's own phases only (each from fstrm_replay's start until all acked).
  const seconds =
    input === 'socket'
      ? pairs.reduce((t, p) => t + p.relaySecs, 0)
      : Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(poll);
  const a = lastBeforeExit ?? lastA;
  enricher.kill('SIGTERM');
  await new Promise((r) => enricher.once('exit', r));
  const dropped = droppedOf(a);
  // A replaying agent exits 0 only once every record is acknowledged.
  const records = input === 'replay' ? frames : (a.get('snowtap_agent_records_acked_total') ?? 0);
  return {
    input,
    records,
    seconds,
    recordsPerSec: Math.round(records / seconds),
    ackP50ms: quantile(a, 'snowtap_agent_ack_latency_seconds', 0.5) * 1000,
    ackP99ms: quantile(a, 'snowtap_agent_ack_latency_seconds', 0.99) * 1000,
    agentPeakRssMiB: peakA / 2 ** 20,
    enricherPeakRssMiB: peakE / 2 ** 20,
    dropped,
    ...(input === 'socket' ? socketFigures(pairs, a) : {}),
  };
}

/** The port loadtest/acking-peer.js prints once it listens. */
function peerPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`acking peer exited ${code}`)));
  });
}

/** CPU seconds of this process's reaped children (fstrm_replay runs under spawnSync). */
function childrenCpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime
}

const IN = 'snowtap_agent_records_in_total';
const READS = 'snowtap_agent_input_reads_total';

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bench-e2e-'));
  try {
    const capture = path.join(dir, 'capture.fstrm');
    const { frames } = replicateCapture(capture, FRAMES);
    console.log(
      `agent -> enricher, ${frames} records (unbound bulk capture replicated), both processes on this machine` +
        (ACKING_PEER ? '; socket row: a minimal acknowledging peer in place of the enricher' : ''),
    );
    const results: Result[] = [await run('replay', capture, frames, dir)];
    if (spawnSync('fstrm_replay', ['-h']).error === undefined)
      results.push(await run('socket', capture, frames, dir));
    else console.log('fstrm_replay not installed: socket input skipped (apt-get install fstrm-bin)');
    console.log('input    records/s   ack p50   ack p99   agent RSS   enricher RSS   dropped');
    for (const r of results) {
      console.log(
        `${r.input.padEnd(8)} ${String(r.recordsPerSec).padStart(9)}   ${r.ackP50ms.toFixed(1).padStart(5)} ms ${r.ackP99ms.toFixed(1).padStart(6)} ms` +
          `   ${r.agentPeakRssMiB.toFixed(0).padStart(5)} MiB   ${r.enricherPeakRssMiB.toFixed(0).padStart(8)} MiB   ${r.dropped}`,
      );
    }
    const socket = results.find((r) => r.input === 'socket');
    if (socket?.absorbRatio !== undefined) {
      for (const [i, p] of (socket.pairs ?? []).entries())
        console.log(
          `  pair ${i + 1}: agent ${p.absorbPerSec} frames/s (${p.agentCores.toFixed(2)} cores), ` +
            `fstrm_capture ${p.capturePerSec} (${p.captureCores.toFixed(2)}): ${(p.absorbPerSec / p.capturePerSec).toFixed(2)}x`,
        );
      console.log(
        `fstrm_replay absorbed (median of ${PAIRS} pairs): agent ${socket.absorbPerSec} frames/s, ` +
          `fstrm_capture ${socket.capturePerSec} frames/s: ${socket.absorbRatio.toFixed(2)}x (median of the pairs' ratios)`,
      );
      // fstrm_replay writes one frame per write(): each is a socket buffer of its own, so the
      // reader's kernel work is per frame, and a read brings what arrived since the last wakeup.
      console.log(
        `  while absorbing: agent ${socket.agentCores} cores (${socket.framesPerRead} frames per read), ` +
          `enricher ${socket.enricherCores}, fstrm_replay ${socket.replayCores}; ` +
          `fstrm_capture ${socket.captureCores} cores`,
      );
    }
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2) + '\n');
    if (ACKING_PEER && (socket?.dropped ?? 0) > 0) {
      console.error(`the agent dropped ${socket!.dropped} frames with a peer acknowledging at once`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
