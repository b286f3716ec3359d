// `npm run bench:enricher`: the enricher over the link against `snowtap convert`, per core, and
// the enricher's ack latency at a fraction of its capacity (issue: "a faster enricher"). Each
// round, on the same capture, with the full default schema:
//   convert    `snowtap convert` pinned to CPU 1: frames / wall seconds (whole process);
//   saturated  `snowtap enricher` pinned to CPU 1, fed by N in-process link agents (this process,
//              pinned to CPU 0), every agent keeping a window of batches of the agent's
//              default size (--batch-records, 1000 records; --batch N to change) in
//              flight: records acknowledged per second = its capacity C on one core;
//   paced      a fresh enricher, the same agents sending batches evenly spaced in time at
//              --load x C: the ack latency (batch sent -> Ack received; it includes the group
//              commit's fsync) p50/p99/max, and the rate actually acknowledged.
// Output goes to a temp dir on the same file system for both (--dir to choose). Reported: the
// figures of each round and their medians, and saturated / convert (the link's cost: >= 1.0
// means the link costs nothing measurable).
//
//   node dist/loadtest/bench-enricher.js [--rounds K] [--seconds S] [--agents N] [--window W]
//     [--load F] [--frames N] [--batch N] [--compression none|gzip|zstd] [--dir DIR] [--quick] [--json FILE]
//     [--trace FILE]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AGENT_DEFAULTS } from '../agent/options';
import { fixtureRecords, TestAgent } from '../test/support/link-client';
import { cpuSeconds, procStatus } from './agent-bench-support';
import { replicateCapture } from './capture';
import { median } from './stats';

const MAIN = path.resolve(__dirname, '../cli/main.js');
const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const num = (name: string, def: number) => Number(opt(name) ?? def);
const ROUNDS = num('--rounds', QUICK ? 1 : 3);
const SECONDS = num('--seconds', QUICK ? 3 : 8);
const AGENTS = num('--agents', 4);
const WINDOW = num('--window', AGENT_DEFAULTS.maxInFlight);
const LOAD = num('--load', 0.8);
const FRAMES = num('--frames', QUICK ? 520_000 : 1_040_000);
const COMPRESSION = opt('--compression') ?? 'none';
const BASE = opt('--dir') ?? tmpdir();
const jsonOut = opt('--json');
/** --trace FILE: every paced ack as "sent-ms latency-ms" lines (where the tail comes from). */
const traceOut = opt('--trace');
/** Records per batch: the agent's default (--batch N to compare another). */
const PER_BATCH = num('--batch', AGENT_DEFAULTS.batchRecords);
const WARMUP_MS = QUICK ? 1500 : 2000;
/** CPUs: the measured process on ENRICHER_CPU, this process (the agents) on the other. */
const AGENT_CPU = '0';
const ENRICHER_CPU = '1';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

function convertRate(capture: string, frames: number, dir: string): number {
  const out = path.join(dir, 'convert-out');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    'taskset',
    [
      '-c',
      ENRICHER_CPU,
      process.execPath,
      MAIN,
      'convert',
      '--compression',
      COMPRESSION,
      '--output-dir',
      out,
      '--rotate-max-rows',
      '1000000',
      capture,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(out, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`convert exited ${r.status ?? r.signal}: ${r.stderr.slice(-500)}`);
  return frames / secs;
}

interface Enricher {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

async function startEnricher(dir: string): Promise<Enricher> {
  const out = path.join(dir, `enricher-out-${Date.now()}`);
  const child = spawn(
    'taskset',
    [
      '-c',
      ENRICHER_CPU,
      process.execPath,
      MAIN,
      'enricher',
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--output-dir',
      out,
      '--id',
      'bench',
      '--compression',
      COMPRESSION,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /"port":(\d+)[^\n]*"link listening"/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`enricher exited ${code}: ${text.slice(-500)}`)));
  });
  return {
    pid: child.pid!,
    port,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(out, { recursive: true, force: true });
    },
  };
}

/** The link agents: batches of PER_BATCH records, at most WINDOW unacknowledged each. */
class Agents {
  acked = 0;
  latencies: number[] = [];
  /** [sent at, latency] of every measured ack, for --trace. */
  trace: number[] = [];
  measuring = false;
  /** Batches a paced send found no window for (the pacing fell behind). */
  held = 0;
  private readonly agents: TestAgent[] = [];
  private readonly inFlight: number[] = [];
  private readonly sentAt: Map<number, number>[] = [];
  private readonly offsets: number[] = [];
  private readonly seqs: number[] = [];
  private next = 0;
  stopped = false;

  constructor(private readonly records: Buffer[]) {}

  async connect(port: number, count: number, onWindow: (a: number) => void): Promise<void> {
    for (let a = 0; a < count; a++) {
      const agent = await TestAgent.connect({ port, agentId: `bench-${a}`, incarnation: 'i1' });
      if ((await agent.answer()) !== 'welcome')
        throw new Error(`agent ${a}: ${JSON.stringify(agent.reject)}`);
      this.agents.push(agent);
      this.inFlight.push(0);
      this.sentAt.push(new Map());
      this.offsets.push(a * 997);
      this.seqs.push(0);
      agent.onAck = (seq) => {
        this.inFlight[a]!--;
        const at = this.sentAt[a]!.get(seq)!;
        this.sentAt[a]!.delete(seq);
        if (this.measuring) {
          this.acked += PER_BATCH;
          this.latencies.push(performance.now() - at);
          if (traceOut) this.trace.push(at, performance.now() - at);
        }
        if (!this.stopped) onWindow(a);
      };
    }
  }

  /** Sends one batch on agent `a` if its window has room. */
  send(a: number): boolean {
    if (this.inFlight[a]! >= WINDOW) return false;
    const seq = ++this.seqs[a]!;
    const batch: Buffer[] = new Array(PER_BATCH);
    const off = this.offsets[a]!;
    for (let j = 0; j < PER_BATCH; j++) batch[j] = this.records[(off + j) % this.records.length]!;
    this.offsets[a] = off + PER_BATCH;
    this.sentAt[a]!.set(seq, performance.now());
    this.agents[a]!.sendBatch(seq, batch);
    this.inFlight[a]!++;
    return true;
  }

  /** Round-robin over the agents; false when every window is full. */
  sendAny(): boolean {
    for (let i = 0; i < this.agents.length; i++) {
      const a = this.next;
      this.next = (this.next + 1) % this.agents.length;
      if (this.send(a)) return true;
    }
    return false;
  }

  fill(a: number): void {
    while (this.send(a)) {}
  }

  get count(): number {
    return this.agents.length;
  }

  close(): void {
    this.stopped = true;
    for (const a of this.agents) a.goodbye();
  }
}

interface Measured {
  recordsPerSec: number;
  enricherCpu: number;
  ackP50ms: number;
  ackP99ms: number;
  ackMaxms: number;
  enricherPeakRssMiB: number;
  held: number;
}

/** One enricher, measured for SECONDS after a warm-up; `rate` undefined = saturated. */
async function measure(records: Buffer[], dir: string, rate?: number): Promise<Measured> {
  const enricher = await startEnricher(dir);
  const agents = new Agents(records);
  let pacer: NodeJS.Timeout | undefined;
  try {
    await agents.connect(enricher.port, AGENTS, rate === undefined ? (a) => agents.fill(a) : () => {});
    const t0 = performance.now();
    if (rate === undefined) for (let a = 0; a < agents.count; a++) agents.fill(a);
    else {
      // Evenly spaced in time: every 2 ms, send the batches due by now.
      let sent = 0;
      pacer = setInterval(() => {
        const due = Math.floor(((performance.now() - t0) / 1000) * (rate / PER_BATCH));
        while (sent < due) {
          if (!agents.sendAny()) {
            agents.held += due - sent;
            sent = due;
            break;
          }
          sent++;
        }
      }, 2);
    }
    await sleep(WARMUP_MS);
    agents.measuring = true;
    agents.held = 0;
    const cpu0 = cpuSeconds(enricher.pid);
    const m0 = performance.now();
    await sleep(SECONDS * 1000);
    const secs = (performance.now() - m0) / 1000;
    agents.measuring = false;
    const cpu = (cpuSeconds(enricher.pid) - cpu0) / secs;
    if (traceOut && rate !== undefined) {
      const lines: string[] = [];
      for (let i = 0; i < agents.trace.length; i += 2)
        lines.push(`${(agents.trace[i]! - m0).toFixed(1)} ${agents.trace[i + 1]!.toFixed(1)}`);
      writeFileSync(traceOut, `${lines.join('\n')}\n`);
    }
    const lat = agents.latencies.sort((x, y) => x - y);
    return {
      recordsPerSec: agents.acked / secs,
      enricherCpu: cpu,
      ackP50ms: quantile(lat, 0.5),
      ackP99ms: quantile(lat, 0.99),
      ackMaxms: lat.at(-1) ?? Number.NaN,
      enricherPeakRssMiB: procStatus(enricher.pid, 'VmHWM') / 2 ** 20,
      held: agents.held,
    };
  } finally {
    if (pacer) clearInterval(pacer);
    agents.close();
    await enricher.stop();
  }
}

interface Round {
  convertPerSec: number;
  saturated: Measured;
  paced: Measured;
}

const k = (x: number) => `${Math.round(x / 1000)} k/s`;

async function main(): Promise<void> {
  // The agents' side runs on its own CPU so the enricher's core is the enricher's alone.
  if (process.env.SNOWTAP_BENCH_PINNED !== '1') {
    const r = spawnSync('taskset', ['-c', AGENT_CPU, process.execPath, __filename, ...args], {
      stdio: 'inherit',
      env: { ...process.env, SNOWTAP_BENCH_PINNED: '1' },
    });
    process.exit(r.status ?? 1);
  }
  const dir = mkdtempSync(path.join(BASE, 'snowtap-bench-enr-'));
  try {
    const capture = path.join(dir, 'capture.fstrm');
    const { frames } = replicateCapture(capture, FRAMES);
    const records = fixtureRecords();
    console.log(
      `Node ${process.version}; convert: ${frames} frames; enricher: ${AGENTS} link agents x window ${WINDOW} x ${PER_BATCH} records, ` +
        `${SECONDS} s measured after ${WARMUP_MS / 1000} s; paced at ${LOAD} x saturated; compression ${COMPRESSION}; ` +
        `convert and enricher on CPU ${ENRICHER_CPU}, agents on CPU ${AGENT_CPU}; output under ${BASE}`,
    );
    const rounds: Round[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const convertPerSec = convertRate(capture, frames, dir);
      const saturated = await measure(records, dir);
      const paced = await measure(records, dir, LOAD * saturated.recordsPerSec);
      rounds.push({ convertPerSec, saturated, paced });
      console.log(
        `  round ${i}: convert ${k(convertPerSec)}; enricher saturated ${k(saturated.recordsPerSec)} at ` +
          `${Math.round(saturated.enricherCpu * 100)} % CPU (ack p99 ${saturated.ackP99ms.toFixed(0)} ms), ` +
          `${(saturated.recordsPerSec / convertPerSec).toFixed(2)}x convert; paced ${k(paced.recordsPerSec)} ` +
          `at ${Math.round(paced.enricherCpu * 100)} % CPU: ack p50 ${paced.ackP50ms.toFixed(1)} ms, ` +
          `p99 ${paced.ackP99ms.toFixed(1)} ms, max ${paced.ackMaxms.toFixed(0)} ms, held ${paced.held}`,
      );
    }
    const med = (f: (r: Round) => number) => median(rounds.map(f));
    const result = {
      node: process.version,
      frames,
      rounds: ROUNDS,
      seconds: SECONDS,
      agents: AGENTS,
      window: WINDOW,
      load: LOAD,
      compression: COMPRESSION,
      convertPerSec: Math.round(med((r) => r.convertPerSec)),
      enricherPerSec: Math.round(med((r) => r.saturated.recordsPerSec)),
      enricherPerCpuSec: Math.round(med((r) => r.saturated.recordsPerSec / r.saturated.enricherCpu)),
      linkPerConvert: med((r) => r.saturated.recordsPerSec / r.convertPerSec),
      saturatedAckP99ms: med((r) => r.saturated.ackP99ms),
      pacedPerSec: Math.round(med((r) => r.paced.recordsPerSec)),
      pacedAckP50ms: med((r) => r.paced.ackP50ms),
      pacedAckP99ms: med((r) => r.paced.ackP99ms),
      pacedAckMaxms: med((r) => r.paced.ackMaxms),
      enricherPeakRssMiB: med((r) => r.saturated.enricherPeakRssMiB),
      perRound: rounds,
    };
    console.log(
      `medians: convert ${k(result.convertPerSec)}; enricher over the link ${k(result.enricherPerSec)} ` +
        `(${k(result.enricherPerCpuSec)} per CPU-second) = ${result.linkPerConvert.toFixed(2)}x convert; ` +
        `at ${LOAD} x capacity: ack p50 ${result.pacedAckP50ms.toFixed(1)} ms, p99 ${result.pacedAckP99ms.toFixed(1)} ms`,
    );
    if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
