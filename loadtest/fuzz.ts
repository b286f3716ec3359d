// `npm run fuzz`: mutation fuzzing of the four parsers that take input from outside
// (issue 10, "Attackers and bad input at scale"): Frame Streams, the link protocol, DNS
// messages, the policy document. Each target gets N cases (default 1,000,000) mutated from
// valid seeds with a seeded PRNG (loadtest/prng.ts), most in-process against the parser,
// a share over real TCP sockets against common/framestream-server.ts and the enricher's link
// server (their counters must match an in-process model, case by case). Branch coverage of
// each parser's files comes from V8 (NODE_V8_COVERAGE on a child process running the cases).
//
//   node dist/loadtest/fuzz.js [--cases N] [--seed S] [--targets framestream,link,dns,policy]
//                              [--floor PCT] [--verbose] [--json]
//
// Exit 1 on any crash (an exception the parser does not document, an invariant broken, a
// case over the per-case time bound), a socket mismatch, or coverage under the floor.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { branchCoverage, type FileCoverage, percent } from './fuzz/coverage';
import type { Rand, Seed } from './fuzz/mutate';
import { fstrmOverSocket, linkOverSocket, type SocketTally } from './fuzz/socket';
import {
  dnsCase,
  dnsSeeds,
  fstrmCase,
  fstrmSeeds,
  HELLO_SETTINGS,
  linkAgentCase,
  linkAgentSeeds,
  linkEnricherCase,
  linkEnricherSeeds,
  policyCase,
  policyLoadCase,
  policySeeds,
} from './fuzz/targets';
import { prng } from './prng';

/**
 * A case slower than this is reported as a hang. Every parser is synchronous and a case is
 * at most a few KiB (one 1 MiB batch): anything near this bound is a loop, not a GC pause
 * on a busy machine (the slowest case is reported too).
 */
export const CASE_TIME_BOUND_MS = 1000;

export interface TargetReport {
  target: string;
  cases: number;
  inProcessCases: number;
  socketCases: number;
  socketConnections: number;
  ms: number;
  casesPerSec: number;
  outcomes: Record<string, number>;
  crashes: number;
  crashSamples: string[];
  maxCaseMs: number;
  hangs: number;
  socketMismatches: string[];
}

export const TARGETS = ['framestream', 'link', 'dns', 'policy'] as const;

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Default: all four. */
  targets?: readonly string[];
  /** Cases for the policy target when it should differ (the slowest: ~0.8 ms a case). */
  policyCases?: number;
}

function seeded(seed: number, target: string): Rand {
  let h = seed >>> 0;
  for (const c of target) h = Math.imul(h ^ c.charCodeAt(0), 0x9e3779b1) >>> 0;
  return prng(h);
}

class Runner {
  readonly r: TargetReport;
  constructor(target: string) {
    this.r = {
      target,
      cases: 0,
      inProcessCases: 0,
      socketCases: 0,
      socketConnections: 0,
      ms: 0,
      casesPerSec: 0,
      outcomes: {},
      crashes: 0,
      crashSamples: [],
      maxCaseMs: 0,
      hangs: 0,
      socketMismatches: [],
    };
  }

  private note(outcome: string, ms: number): void {
    this.r.outcomes[outcome] = (this.r.outcomes[outcome] ?? 0) + 1;
    if (ms > this.r.maxCaseMs) this.r.maxCaseMs = ms;
    if (ms > CASE_TIME_BOUND_MS) this.r.hangs++;
    this.r.inProcessCases++;
    this.r.cases++;
  }

  crash(err: unknown): void {
    this.r.crashes++;
    if (this.r.crashSamples.length < 10) {
      const e = err as Error;
      this.r.crashSamples.push(
        `case ${this.r.cases}: ${e?.name}: ${e?.message} ${(e?.stack ?? '').split('\n')[1]?.trim() ?? ''}`,
      );
    }
  }

  run(n: number, rand: Rand, seeds: Seed[], fn: (rand: Rand, seeds: Seed[]) => string): void {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      let outcome: string;
      try {
        outcome = fn(rand, seeds);
      } catch (err) {
        this.crash(err);
        outcome = 'crash';
      }
      this.note(outcome, performance.now() - t0);
    }
  }

  async runAsync(n: number, fn: () => Promise<string>): Promise<void> {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      let outcome: string;
      try {
        outcome = await fn();
      } catch (err) {
        this.crash(err);
        outcome = 'crash';
      }
      // A worker thread start is not the parser's time: bound it loosely.
      this.note(outcome, (performance.now() - t0) / 10);
    }
  }

  addSocket(t: SocketTally): void {
    this.r.socketCases += t.cases;
    this.r.cases += t.cases;
    this.r.socketConnections += t.connections;
    for (const [k, v] of Object.entries(t.outcomes))
      this.r.outcomes[`socket ${k}`] = (this.r.outcomes[`socket ${k}`] ?? 0) + v;
    this.r.socketMismatches.push(...t.mismatches);
  }

  finish(t0: number): TargetReport {
    this.r.ms = Math.round(performance.now() - t0);
    this.r.casesPerSec = Math.round((this.r.cases * 1000) / Math.max(1, this.r.ms));
    this.r.maxCaseMs = Math.round(this.r.maxCaseMs * 100) / 100;
    return this.r;
  }
}

/** Socket shares: a few percent of the cases (a connection costs far more than a parse). */
export function socketShare(cases: number): { fstrm: number; link: number; policyWorker: number } {
  return {
    fstrm: Math.max(200, Math.round(cases * 0.05)),
    link: Math.max(100, Math.min(3000, Math.round(cases * 0.003))),
    policyWorker: Math.max(10, Math.min(200, Math.round(cases * 0.0002))),
  };
}

/** Runs every target in this process (no coverage): the child side of fuzzWithCoverage. */
export async function runFuzz(o: FuzzOptions): Promise<TargetReport[]> {
  const share = socketShare(o.cases);
  const reports: TargetReport[] = [];

  const want = (t: string) => o.targets === undefined || o.targets.includes(t);
  let t0 = performance.now();
  let run = new Runner('framestream');
  if (want('framestream')) {
    run.run(o.cases - share.fstrm, seeded(o.seed, 'fstrm'), fstrmSeeds(), fstrmCase);
    try {
      run.addSocket(await fstrmOverSocket(seeded(o.seed, 'fstrm-socket'), share.fstrm, 200));
    } catch (err) {
      run.crash(err);
    }
    reports.push(run.finish(t0));
  }

  if (want('link')) {
    t0 = performance.now();
    run = new Runner('link');
    const inLink = o.cases - share.link;
    const enricherSeeds = linkEnricherSeeds();
    run.run(Math.round(inLink * 0.7), seeded(o.seed, 'link-enricher'), enricherSeeds, linkEnricherCase);
    run.run(inLink - Math.round(inLink * 0.7), seeded(o.seed, 'link-agent'), linkAgentSeeds(), linkAgentCase);
    try {
      run.addSocket(
        await linkOverSocket(
          seeded(o.seed, 'link-socket'),
          share.link,
          enricherSeeds,
          HELLO_SETTINGS.authToken,
        ),
      );
    } catch (err) {
      run.crash(err);
    }
    reports.push(run.finish(t0));
  }

  if (want('dns')) {
    t0 = performance.now();
    run = new Runner('dns');
    run.run(o.cases, seeded(o.seed, 'dns'), dnsSeeds(), dnsCase);
    reports.push(run.finish(t0));
  }

  if (want('policy')) {
    t0 = performance.now();
    run = new Runner('policy');
    const pseeds = policySeeds();
    const prand = seeded(o.seed, 'policy');
    const n = o.policyCases ?? o.cases;
    const workerCases = socketShare(n).policyWorker;
    const inline = Math.max(10, Math.round(n * 0.002));
    run.run(n - workerCases - inline, prand, pseeds, policyCase);
    await run.runAsync(inline, () => policyLoadCase(prand, pseeds, false));
    await run.runAsync(workerCases, () => policyLoadCase(prand, pseeds, true));
    reports.push(run.finish(t0));
  }
  return reports;
}

/** The parser files whose branch coverage is held to the floor, per target (dist paths). */
export const COVERED_FILES: Record<string, string[]> = {
  framestream: [
    'proto/framestream/decoder.js',
    'proto/framestream/control.js',
    'proto/framestream/reader.js',
  ],
  link: [
    'proto/link/decoder.js',
    'proto/link/control.js',
    'proto/link/batch-view.js',
    'proto/link/varint.js',
    'proto/link/handshake.js',
  ],
  dns: ['proto/dns/parser.js', 'proto/dns/name.js', 'proto/dns/cursor.js', 'proto/dns/answers.js'],
  policy: ['enricher/policy/document.js', 'enricher/policy/validate.js', 'enricher/policy/load.js'],
};

/** Reported, not held to the floor: servers with TLS, unix sockets, shutdown paths the fuzz does not aim at. */
export const REPORTED_FILES: Record<string, string[]> = {
  framestream: ['common/framestream-connection.js', 'common/framestream-server.js'],
  link: ['enricher/server/link-connection.js'],
  dns: [],
  policy: ['enricher/policy/names.js', 'enricher/policy/cidr.js', 'enricher/policy/network-builder.js'],
};

/**
 * Functions left out of the count: they build frames or check constructor options, they do
 * not read input. Every one is named in the report.
 */
export const EXCLUDED_FUNCTIONS: Record<string, string[]> = {
  'proto/framestream/control.js': ['encodeControlFrame'],
  'proto/framestream/decoder.js': ['FrameDecoder'],
  'proto/framestream/reader.js': ['ReaderSession'],
  'proto/link/decoder.js': ['LinkFrameDecoder'],
  'proto/link/control.js': ['encodeControl', 'encodeFrame', 'checkValue'],
  'proto/link/varint.js': ['varintSize', 'writeVarint'],
  'proto/link/handshake.js': ['EnricherHandshake', 'makeHello', 'checkUint'],
};

export interface FuzzResult {
  reports: TargetReport[];
  coverage: Record<string, { percent: number; files: FileCoverage[]; reported: FileCoverage[] }>;
  wallMs: number;
}

/** Runs runFuzz in a child process under NODE_V8_COVERAGE and computes branch coverage. */
export async function fuzzWithCoverage(o: FuzzOptions, timeoutMs = 6 * 3600_000): Promise<FuzzResult> {
  const t0 = performance.now();
  const work = mkdtempSync(path.join(os.tmpdir(), 'snowtap-fuzz-'));
  const covDir = path.join(work, 'coverage');
  const out = path.join(work, 'report.json');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          __filename,
          '--child',
          '--cases',
          String(o.cases),
          '--seed',
          String(o.seed),
          '--targets',
          (o.targets ?? TARGETS).join(','),
          '--policy-cases',
          String(o.policyCases ?? o.cases),
          '--out',
          out,
        ],
        { env: { ...process.env, NODE_V8_COVERAGE: covDir }, stdio: ['ignore', 'inherit', 'inherit'] },
      );
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`fuzz child did not finish within ${timeoutMs} ms (a hang)`));
      }, timeoutMs);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`fuzz child exited with ${code ?? signal} (a crash outside any case)`));
      });
    });
    const reports = JSON.parse(readFileSync(out, 'utf8')) as TargetReport[];
    const root = path.resolve(__dirname, '..');
    const coverage: FuzzResult['coverage'] = {};
    for (const [target, files] of Object.entries(COVERED_FILES)) {
      if (!reports.some((t) => t.target === target)) continue;
      const held = branchCoverage(covDir, root, files, EXCLUDED_FUNCTIONS);
      const reported = branchCoverage(covDir, root, REPORTED_FILES[target] ?? []);
      coverage[target] = { percent: percent(held), files: held, reported };
    }
    return { reports, coverage, wallMs: Math.round(performance.now() - t0) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function pct(f: FileCoverage): string {
  return `${f.file} ${((100 * f.covered) / Math.max(1, f.branches)).toFixed(1)}% (${f.covered}/${f.branches})`;
}

export function formatResult(r: FuzzResult, verbose: boolean): string {
  const lines: string[] = [];
  for (const t of r.reports) {
    lines.push(
      `${t.target}: ${t.cases} cases (${t.inProcessCases} in-process, ${t.socketCases} over ${t.socketConnections} TCP connections) ` +
        `in ${(t.ms / 1000).toFixed(1)} s = ${t.casesPerSec}/s; crashes ${t.crashes}, hangs ${t.hangs}, ` +
        `slowest case ${t.maxCaseMs} ms, socket mismatches ${t.socketMismatches.length}`,
    );
    const top = Object.entries(t.outcomes).sort((a, b) => b[1] - a[1]);
    lines.push(`  outcomes: ${top.map(([k, v]) => `${k}=${v}`).join(', ')}`);
    for (const s of t.crashSamples) lines.push(`  CRASH ${s}`);
    for (const s of t.socketMismatches) lines.push(`  MISMATCH ${s}`);
    const c = r.coverage[t.target]!;
    lines.push(`  branch coverage ${c.percent.toFixed(1)}%: ${c.files.map(pct).join('; ')}`);
    if (c.reported.length > 0) lines.push(`  also (not held): ${c.reported.map(pct).join('; ')}`);
    if (verbose)
      for (const f of c.files) for (const u of f.uncovered) lines.push(`    uncovered ${f.file}:${u}`);
  }
  lines.push(`excluded functions (not parsers): ${JSON.stringify(EXCLUDED_FUNCTIONS)}`);
  lines.push(`wall time ${(r.wallMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
}

export function failures(r: FuzzResult, floor: number): string[] {
  const out: string[] = [];
  for (const t of r.reports) {
    if (t.crashes > 0) out.push(`${t.target}: ${t.crashes} crashes`);
    if (t.hangs > 0) out.push(`${t.target}: ${t.hangs} cases over ${CASE_TIME_BOUND_MS} ms`);
    if (t.socketMismatches.length > 0)
      out.push(`${t.target}: ${t.socketMismatches.length} socket mismatches`);
    // Every case lands in exactly one outcome (connections are tallied apart, as socket closed:*).
    const sum = Object.values(t.outcomes).reduce((s, v) => s + v, 0) - closedCount(t);
    if (sum !== t.cases) out.push(`${t.target}: outcomes add up to ${sum}, not ${t.cases} cases`);
    const c = r.coverage[t.target]!.percent;
    if (c < floor) out.push(`${t.target}: branch coverage ${c.toFixed(1)}% < ${floor}%`);
  }
  return out;
}

function closedCount(t: TargetReport): number {
  return Object.entries(t.outcomes)
    .filter(([k]) => k.startsWith('socket closed:'))
    .reduce((s, [, v]) => s + v, 0);
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const cases = Number(arg('--cases', '1000000'));
  const seed = Number(arg('--seed', '20261206'));
  const targets = arg('--targets', TARGETS.join(',')).split(',');
  for (const t of targets) {
    if (!(TARGETS as readonly string[]).includes(t))
      throw new Error(`--targets: unknown target ${t} (${TARGETS.join(', ')})`);
  }
  if (process.argv.includes('--child')) {
    let uncaught = 0;
    process.on('uncaughtException', (err) => {
      uncaught++;
      console.error('fuzz: uncaught exception', err);
    });
    process.on('unhandledRejection', (err) => {
      uncaught++;
      console.error('fuzz: unhandled rejection', err);
    });
    const reports = await runFuzz({
      cases,
      seed,
      targets,
      policyCases: Number(arg('--policy-cases', String(cases))),
    });
    writeFileSync(arg('--out', 'fuzz-report.json'), JSON.stringify(reports));
    process.exit(uncaught === 0 ? 0 : 3);
  }
  const floor = Number(arg('--floor', '90'));
  console.log(`fuzz: ${cases} cases per target, seed ${seed}, coverage floor ${floor}%`);
  const result = await fuzzWithCoverage({ cases, seed, targets });
  console.log(formatResult(result, process.argv.includes('--verbose')));
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
  const bad = failures(result, floor);
  for (const b of bad) console.log(`FAIL ${b}`);
  process.exitCode = bad.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
