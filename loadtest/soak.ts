// `npm run soak`: a long run of the real pipeline — a synthetic DNS server -> agent (spool on)
// -> two enrichers -> CSV chunks — at a steady rate, with policy reloads, connection switches
// and an enricher restart (SIGTERM, start again on the same port and directory) every few
// minutes. RSS (from /proc) and V8 heap (from each process's /metrics) of the agent and of each
// enricher process are sampled; the report fits a line through each process's samples after
// warm-up and calls it flat when the fitted growth over the window stays under a bound, and
// shows the drift (mean of the last quarter of those samples minus the first quarter's), held
// to the same bound for the agent; every committed row is audited (0 lost, and
// duplicates only from re-sent batches). Writes soak-report.json and soak-report.txt.
//
//   npm run soak -- [--duration SECONDS] [--rate RECORDS_PER_S] [--out DIR] [--keep]
//
// The CSV chunks and the spool are deleted once audited (30 minutes at the default rate leave
// about 13 GB); --keep leaves them in DIR beside the reports.
//
// The default rate, 20,000 records/s, is about half of what one agent -> enricher pair sustains
// on the 2-core CI machine (captures replay at 40,000-60,000 records/s in the at-least-once
// tests); pass --rate to match another machine.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freeTcpPort } from '../common/listen';
import { metricSum, parseMetrics } from './cluster';
import { auditCsv } from './csv-audit';
import { DnstapProducer } from './producer';

const MAIN = path.resolve(__dirname, '../cli/main.js');
const BATCH_RECORDS = 1000;

export interface SoakOptions {
  durationS: number;
  /** Records per second offered by the synthetic DNS server. */
  rate: number;
  outDir: string;
  restartEveryS: number;
  reloadEveryS: number;
  switchIntervalS: number;
  sampleEveryS: number;
  /** Samples in the first warmupFraction of the run are left out of the slope fit. */
  warmupFraction: number;
  /** Flat: fitted growth over the fitted window below max(flatMiB, flatFraction x mean). */
  flatMiB: number;
  flatFraction: number;
  progress?: (line: string) => void;
  /** Leave the CSV chunks and the spool in outDir after the audit (default: deleted). */
  keepOutput?: boolean;
}

export const SOAK_DEFAULTS: Omit<SoakOptions, 'outDir'> = {
  durationS: 1800,
  rate: 20_000,
  restartEveryS: 300,
  reloadEveryS: 60,
  switchIntervalS: 30,
  sampleEveryS: 5,
  warmupFraction: 0.2,
  flatMiB: 16,
  flatFraction: 0.1,
};

interface Proc {
  name: string;
  child: ChildProcess;
  metricsPort: number;
  exited: Promise<number | null>;
  log: () => string;
}

export interface Series {
  /** agent, enricher-a, enricher-b (an enricher's series restarts with each process). */
  name: string;
  pid: number;
  t: number[];
  rss: number[];
  heap: number[];
  /**
   * Diagnostics beside RSS (not fitted): V8's committed heap and the memory of Buffers and
   * ArrayBuffers outside it, to tell an allocator's high-water mark from live objects.
   */
  heapTotal: number[];
  external: number[];
}

export interface Fit {
  name: string;
  metric: 'rss' | 'heap';
  samples: number;
  meanMiB: number;
  slopeMiBPerHour: number;
  /** Fitted growth over the fitted window. */
  growthMiB: number;
  boundMiB: number;
  flat: boolean;
  /** Means of the first and the last quarter of the fitted window (after warm-up). */
  firstQuarterMiB: number;
  lastQuarterMiB: number;
  /** lastQuarterMiB - firstQuarterMiB: the drift a step or a slow leak leaves, fit or not. */
  driftMiB: number;
  /** driftMiB below the same bound as the fitted growth. */
  driftOk: boolean;
}

export interface SoakReport {
  options: Omit<SoakOptions, 'progress'>;
  seconds: number;
  framesSent: number;
  recordsIn: number;
  dropped: number;
  acked: number;
  rows: number;
  distinct: number;
  duplicates: number;
  lost: number;
  resentBatches: number;
  /** Duplicates no greater than re-sent batches x batch size. */
  duplicatesWithinResent: boolean;
  restarts: number;
  reloads: number;
  switches: number;
  exitCodes: Record<string, number | null>;
  fits: Fit[];
  series: Series[];
  ok: boolean;
}

function start(name: string, args: string[], metricsPort: number): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // As the image runs them (Dockerfile: MALLOC_MMAP_THRESHOLD_, MALLOC_ARENA_MAX), unless the caller sets them.
    env: {
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_ARENA_MAX: '2',
      ...process.env,
      SNOWTAP_LOG_LEVEL: 'warn',
    },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { name, child, metricsPort, exited, log: () => err };
}

/** The named metrics' values (summed over their label sets) from one /metrics scrape. */
async function metrics(port: number, names: readonly string[]): Promise<number[]> {
  const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  return names.map((name) => {
    if (!samples.some((x) => x.name === name)) throw new Error(`${name} not on :${port}`);
    return metricSum(samples, name);
  });
}

async function metric(port: number, name: string): Promise<number> {
  return (await metrics(port, [name]))[0]!;
}

async function until(pred: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if (await pred()) return;
    } catch {}
    await sleep(200);
  }
  throw new Error(`soak: timed out waiting for ${what}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function writePolicy(file: string, version: number): void {
  const doc = {
    version: `soak-${version}`,
    domains: [{ suffix: '.', category: `c${version % 7}`, action: 'log' }],
    networks: [
      { cidr: '0.0.0.0/0', tenant: `t${version % 5}` },
      { cidr: '::/0', tenant: `t${version % 5}` },
    ],
  };
  writeFileSync(`${file}.tmp`, JSON.stringify(doc));
  renameSync(`${file}.tmp`, file);
}

/** Least-squares line through (t, v) after warm-up: is the growth it predicts within the bound? */
export function fitFlat(
  name: string,
  which: 'rss' | 'heap',
  t: number[],
  v: number[],
  o: Pick<SoakOptions, 'warmupFraction' | 'flatMiB' | 'flatFraction'>,
): Fit {
  const from = Math.floor(t.length * o.warmupFraction);
  const xs = t.slice(from);
  const ys = v.slice(from).map((b) => b / 1048576);
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  const my = ys.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx; // MiB per second
  const span = n > 1 ? xs[n - 1]! - xs[0]! : 0;
  const growth = slope * span;
  const bound = Math.max(o.flatMiB, o.flatFraction * my);
  const q = Math.max(1, Math.floor(n / 4));
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(a.length, 1);
  const first = mean(ys.slice(0, q));
  const last = mean(ys.slice(n - q));
  return {
    name,
    metric: which,
    samples: n,
    meanMiB: round(my),
    slopeMiBPerHour: round(slope * 3600),
    growthMiB: round(growth),
    boundMiB: round(bound),
    flat: n >= 3 && growth < bound,
    firstQuarterMiB: round(first),
    lastQuarterMiB: round(last),
    driftMiB: round(last - first),
    driftOk: n >= 4 && last - first < bound,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const say = o.progress ?? (() => undefined);
  mkdirSync(o.outDir, { recursive: true });
  const policy = path.join(o.outDir, 'policy.json');
  let reloads = 0;
  writePolicy(policy, reloads);
  const sock = path.join(o.outDir, 'dnstap.sock');
  const dirs = { 'enricher-a': path.join(o.outDir, 'out-a'), 'enricher-b': path.join(o.outDir, 'out-b') };
  const ports: Record<string, { link: number; metrics: number }> = {};
  for (const name of Object.keys(dirs))
    ports[name] = { link: await freeTcpPort(), metrics: await freeTcpPort() };
  const startEnricher = (name: keyof typeof dirs) =>
    start(
      name,
      [
        'enricher',
        '--listen',
        `127.0.0.1:${ports[name]!.link}`,
        '--metrics-listen',
        `127.0.0.1:${ports[name]!.metrics}`,
        '--output-dir',
        dirs[name],
        '--id',
        `soak-${name}`,
        '--rotate-max-age',
        '10',
        '--policy-file',
        policy,
        '--policy-interval',
        '1',
      ],
      ports[name]!.metrics,
    );
  const enrichers: Record<string, Proc> = {
    'enricher-a': startEnricher('enricher-a'),
    'enricher-b': startEnricher('enricher-b'),
  };
  const agentMetrics = await freeTcpPort();
  const agent = start(
    'agent',
    [
      'agent',
      '--id',
      'soak-agent',
      '--metrics-listen',
      `127.0.0.1:${agentMetrics}`,
      '--dnstap-socket',
      sock,
      '--enricher',
      Object.values(ports)
        .map((p) => `127.0.0.1:${p.link}`)
        .join(','),
      '--switch-interval',
      String(o.switchIntervalS),
      '--spool-dir',
      path.join(o.outDir, 'spool'),
      '--batch-records',
      String(BATCH_RECORDS),
    ],
    agentMetrics,
  );
  const all = () => [agent, ...Object.values(enrichers)];
  try {
    for (const p of all())
      await until(async () => (await fetch(`http://127.0.0.1:${p.metricsPort}/readyz`)).ok, p.name, 30_000);
    const producer = new DnstapProducer({ socket: sock, rate: o.rate });
    await producer.start();
    const t0 = Date.now();
    const series = new Map<number, Series>();
    let restarts = 0;
    let nextRestart = o.restartEveryS;
    let nextReload = o.reloadEveryS;
    let nextSample = 0;
    while ((Date.now() - t0) / 1000 < o.durationS) {
      const now = (Date.now() - t0) / 1000;
      if (now >= nextSample) {
        nextSample += o.sampleEveryS;
        for (const p of all()) {
          const pid = p.child.pid!;
          let s = series.get(pid);
          if (s === undefined)
            series.set(
              pid,
              (s = { name: p.name, pid, t: [], rss: [], heap: [], heapTotal: [], external: [] }),
            );
          try {
            const prefix = `snowtap_${p.name === 'agent' ? 'agent' : 'enricher'}_nodejs_`;
            const [heap, heapTotal, external] = await metrics(
              p.metricsPort,
              ['heap_size_used_bytes', 'heap_size_total_bytes', 'external_memory_bytes'].map(
                (m) => prefix + m,
              ),
            );
            s.rss.push(rss(pid));
            s.heap.push(heap!);
            s.heapTotal.push(heapTotal!);
            s.external.push(external!);
            s.t.push((Date.now() - t0) / 1000);
          } catch {
            // restarting: no sample
          }
        }
      }
      if (now >= nextReload) {
        nextReload += o.reloadEveryS;
        writePolicy(policy, ++reloads);
      }
      if (now >= nextRestart) {
        nextRestart += o.restartEveryS;
        const name = restarts % 2 === 0 ? 'enricher-a' : 'enricher-b';
        const old = enrichers[name]!;
        old.child.kill('SIGTERM');
        const code = await old.exited;
        if (code !== 0) throw new Error(`soak: ${name} exited ${code} on SIGTERM: ${old.log().slice(-2000)}`);
        enrichers[name] = startEnricher(name as keyof typeof dirs);
        restarts++;
        say(`t=${now.toFixed(0)} s: restarted ${name}`);
      }
      await sleep(250);
    }
    const sent = await producer.stop();
    const seconds = (Date.now() - t0) / 1000;
    say(`producer stopped: ${sent.framesSent} frames in ${seconds.toFixed(0)} s`);
    const m = (n: string) => metric(agentMetrics, `snowtap_agent_${n}`);
    await until(async () => (await m('records_in_total')) === sent.framesSent, 'every frame in', 60_000);
    await until(
      async () => (await m('records_acked_total')) + (await m('records_dropped_total')) === sent.framesSent,
      'everything acknowledged',
      120_000,
    );
    const acked = await m('records_acked_total');
    const dropped = await m('records_dropped_total');
    const resentBatches = await m('batches_resent_total');
    const switches = await metric(agentMetrics, 'snowtap_agent_link_switches_total').catch(() => -1);
    const exitCodes: Record<string, number | null> = {};
    for (const p of all()) p.child.kill('SIGTERM');
    for (const p of all()) exitCodes[p.name] = await p.exited;
    const audit = auditCsv(Object.values(dirs));
    const distinct = audit.rows - audit.duplicates;
    const fits: Fit[] = [];
    for (const s of series.values()) {
      // Only series long enough to say something: the agent's, and each enricher process's.
      if (s.t.length < 3) continue;
      fits.push(fitFlat(`${s.name}#${s.pid}`, 'rss', s.t, s.rss, o));
      fits.push(fitFlat(`${s.name}#${s.pid}`, 'heap', s.t, s.heap, o));
    }
    const lost = sent.framesSent - dropped - distinct;
    const duplicatesWithinResent = audit.duplicates <= resentBatches * BATCH_RECORDS;
    const { progress: _p, ...options } = o;
    const report: SoakReport = {
      options,
      seconds: round(seconds),
      framesSent: sent.framesSent,
      recordsIn: sent.framesSent,
      dropped,
      acked,
      rows: audit.rows,
      distinct,
      duplicates: audit.duplicates,
      lost,
      resentBatches,
      duplicatesWithinResent,
      restarts,
      reloads,
      switches,
      exitCodes,
      fits,
      series: [...series.values()],
      ok:
        lost === 0 &&
        dropped === 0 &&
        duplicatesWithinResent &&
        Object.values(exitCodes).every((c) => c === 0) &&
        fits.filter((f) => f.name.startsWith('agent')).every((f) => f.flat && f.driftOk) &&
        fits.every((f) => f.flat || f.samples < 12),
    };
    writeFileSync(path.join(o.outDir, 'soak-report.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(o.outDir, 'soak-report.txt'), textReport(report));
    if (!o.keepOutput)
      for (const dir of [...Object.values(dirs), path.join(o.outDir, 'spool')])
        rmSync(dir, { recursive: true, force: true });
    return report;
  } finally {
    for (const p of all())
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
}

export function textReport(r: SoakReport): string {
  const lines = [
    `snowtap soak: ${r.seconds} s at ${r.options.rate} records/s — ${r.ok ? 'OK' : 'FAILED'}`,
    `records: ${r.framesSent} sent, ${r.acked} acknowledged, ${r.dropped} dropped, ${r.distinct} delivered, ${r.lost} lost`,
    `duplicates: ${r.duplicates} rows (re-sent batches: ${r.resentBatches} x ${BATCH_RECORDS}; within: ${r.duplicatesWithinResent})`,
    `events: ${r.restarts} enricher restarts, ${r.reloads} policy reloads, ${r.switches} switches`,
    `exit codes: ${Object.entries(r.exitCodes)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    '',
    'memory after warm-up (flat = least-squares growth < bound; drift = mean of the last quarter',
    'of the samples - mean of the first quarter, ok when < bound; agent RSS and V8 heap included):',
    'process                metric samples  mean MiB  MiB/hour  growth MiB  bound MiB  flat   Q1 MiB  Q4 MiB  drift MiB  drift ok',
  ];
  for (const f of r.fits) {
    lines.push(
      `${f.name.padEnd(22)} ${f.metric.padEnd(6)} ${String(f.samples).padStart(7)} ${f.meanMiB.toFixed(1).padStart(9)} ${f.slopeMiBPerHour.toFixed(1).padStart(9)} ${f.growthMiB.toFixed(1).padStart(11)} ${f.boundMiB.toFixed(1).padStart(10)}  ${String(f.flat).padEnd(5)} ${f.firstQuarterMiB.toFixed(1).padStart(7)} ${f.lastQuarterMiB.toFixed(1).padStart(7)} ${f.driftMiB.toFixed(1).padStart(10)}  ${f.driftOk}`,
    );
  }
  const agent = r.series.find((s) => s.name === 'agent');
  if (agent !== undefined && agent.t.length > 0) {
    // Where the agent's RSS is: V8's committed heap vs Buffers outside it (not fitted).
    lines.push('', 'agent, one sample a minute (s: RSS / V8 heap used / V8 heap committed / external, MiB):');
    const mib = (x: number | undefined) => (x === undefined ? '-' : (x / 2 ** 20).toFixed(1));
    const row: string[] = [];
    let next = 0;
    agent.t.forEach((t, i) => {
      if (t < next) return;
      next = t + 60;
      row.push(
        `${Math.round(t)}: ${mib(agent.rss[i])} / ${mib(agent.heap[i])} / ${mib(agent.heapTotal?.[i])} / ${mib(agent.external?.[i])}`,
      );
    });
    for (let i = 0; i < row.length; i += 4) lines.push(`  ${row.slice(i, i + 4).join('   ')}`);
  }
  return `${lines.join('\n')}\n`;
}

function parseArgs(argv: string[]): SoakOptions {
  const o: SoakOptions = { ...SOAK_DEFAULTS, outDir: path.join(os.tmpdir(), `snowtap-soak-${Date.now()}`) };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--keep') {
      o.keepOutput = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--duration') o.durationS = Number(value);
    else if (flag === '--rate') o.rate = Number(value);
    else if (flag === '--out') o.outDir = value;
    else if (flag === '--restart-every') o.restartEveryS = Number(value);
    else throw new Error(`unknown flag ${flag} (known: --duration, --rate, --out, --restart-every, --keep)`);
  }
  for (const [k, v] of Object.entries(o))
    if (typeof v === 'number' && !(v > 0)) throw new Error(`${k} must be > 0`);
  return o;
}

if (require.main === module) {
  const o = parseArgs(process.argv.slice(2));
  o.progress = (l) => process.stderr.write(`${l}\n`);
  process.stderr.write(`soak: ${o.durationS} s at ${o.rate} records/s, report in ${o.outDir}\n`);
  runSoak(o).then(
    (r) => {
      process.stdout.write(textReport(r));
      process.exitCode = r.ok ? 0 : 1;
    },
    (err: Error) => {
      process.stderr.write(`soak failed: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    },
  );
}
