// Striping on the real test bed (issue 13, "What it must show", first bullet): three
// enricher pods under a 0.3-CPU limit behind a ClusterIP (kube-proxy's iptables data plane,
// loadtest/cluster-bed.ts), one agent replaying a capture (--input-file: it offers as much
// as the link takes, i.e. more than three pods' capacity, and exits once all is acked),
// with --active-connections 1, 3 and auto in turn. Per setting: wall time, records/s
// delivered (whole run, and the best 5 s from the agent's own acked counter), stripes over
// time (and when auto reached each count), collisions, the largest backlog the KEDA signal saw
// (snowtap_agent_backlog_bytes, sampled each second), and a CSV audit of every row
// (record_id): rows == frames, duplicates.
//
//   node dist/loadtest/stripes-bed.js [FRAMES] [SETTINGS]   (root; default 4000000 "1,3,auto")
//
// Pods are started fresh for every setting so each audit covers one run only.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { replicateCapture } from './capture';
import { SNOWTAP_MAIN } from './cluster';
import { type BedPod, ClusterBed } from './cluster-bed';
import { auditCsv } from './csv-audit';
import { samplePolicy } from './synthetic';

const PORT = 7400;
const POD_CPU = 0.3;
const PODS = 3;
const AGENT_ADDRESS = '10.244.0.250';
const SAMPLE_MS = 1_000;
const BEST_WINDOW_S = 5;

interface SettingResult {
  setting: string;
  frames: number;
  seconds: number;
  recordsPerS: number;
  bestRecordsPerS: number;
  stripes: number[];
  /** Seconds after the agent started at which each stripe count was first seen. */
  reached: Record<string, number>;
  /** Largest snowtap_agent_backlog_bytes sampled. */
  maxBacklogBytes: number;
  collisions: number;
  exitCode: number | null;
  rows: number;
  duplicates: number;
  lost: number;
  partialFiles: number;
  /** The machine's 1-minute load average at the end of the run (others share it). */
  load1: number;
}

function metric(body: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(body);
  return m === null ? 0 : Number(m[1]);
}

async function runSetting(bed: ClusterBed, dir: string, capture: string, frames: number, setting: string) {
  const env: NodeJS.ProcessEnv = { SNOWTAP_LOG_LEVEL: 'warn' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SNOWTAP_')) env[k] = v;
  const policy = path.join(dir, 'policy.json');
  const outs: string[] = [];
  const pods: BedPod[] = [];
  for (let i = 0; i < PODS; i++) {
    const out = path.join(dir, `out-${setting}`, `enricher-${i}`);
    outs.push(out);
    pods.push(
      await bed.startPod({
        name: `enricher-${setting}-${i}`,
        cpuLimit: POD_CPU,
        env,
        readiness: { http: { port: 9400, path: '/readyz' } },
        argv: (addr) => [
          process.execPath,
          SNOWTAP_MAIN,
          'enricher',
          '--listen',
          `${addr}:${PORT}`,
          '--metrics-listen',
          `${addr}:9400`,
          '--output-dir',
          out,
          '--policy-file',
          policy,
          '--id',
          `enricher-${setting}-${i}`,
        ],
      }),
    );
  }
  const started = Date.now();
  const agent = bed.netns.spawn(
    [
      process.execPath,
      SNOWTAP_MAIN,
      'agent',
      '--input-file',
      capture,
      '--enricher',
      `${bed.service.clusterIP}:${PORT}`,
      '--active-connections',
      setting,
      '--max-active-connections',
      '3',
      '--id',
      `agent-${setting}`,
      '--metrics-listen',
      `${AGENT_ADDRESS}:9401`,
    ],
    { env },
  );
  let agentLog = '';
  agent.child.stderr?.setEncoding('utf8').on('data', (d: string) => (agentLog = (agentLog + d).slice(-8000)));
  agent.child.stdout?.setEncoding('utf8').on('data', (d: string) => (agentLog = (agentLog + d).slice(-8000)));
  const acked: number[] = [];
  const stripes: number[] = [];
  const reached: Record<string, number> = {};
  let maxBacklogBytes = 0;
  let collisions = 0;
  while (agent.running) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const a = await bed.probe.request({ op: 'http', url: `http://${AGENT_ADDRESS}:9401/metrics` });
    if (!a.ok || a.body === undefined) continue;
    acked.push(metric(a.body, 'snowtap_agent_records_acked_total'));
    stripes.push(metric(a.body, 'snowtap_agent_link_active_connections'));
    reached[String(stripes.at(-1))] ??= Math.round((Date.now() - started) / 100) / 10;
    maxBacklogBytes = Math.max(maxBacklogBytes, metric(a.body, 'snowtap_agent_backlog_bytes'));
    collisions = metric(a.body, 'snowtap_agent_link_collisions_total');
    process.stderr.write(
      `  ${setting}: t=${acked.length}s acked=${acked.at(-1)} stripes=${stripes.at(-1)} backlog=${maxBacklogBytes}\n`,
    );
  }
  const exit = await agent.exited;
  const seconds = (Date.now() - started) / 1000;
  for (const p of pods) await bed.terminatePod(p, { graceMs: 25_000 });
  const audit = auditCsv(outs);
  let best = 0;
  for (let i = BEST_WINDOW_S; i < acked.length; i++)
    best = Math.max(best, (acked[i]! - acked[i - BEST_WINDOW_S]!) / ((BEST_WINDOW_S * SAMPLE_MS) / 1000));
  if (exit.code !== 0) process.stderr.write(`agent ${setting} exit ${exit.code}: ${agentLog}\n`);
  const distinct = audit.rows - audit.duplicates;
  const r: SettingResult = {
    setting,
    frames,
    seconds,
    recordsPerS: frames / seconds,
    bestRecordsPerS: best,
    stripes,
    reached,
    maxBacklogBytes,
    collisions,
    exitCode: exit.code,
    rows: audit.rows,
    duplicates: audit.duplicates,
    lost: frames - distinct,
    partialFiles: audit.partialFiles,
    load1: loadavg()[0]!,
  };
  rmSync(path.join(dir, `out-${setting}`), { recursive: true, force: true });
  return r;
}

async function main(): Promise<number> {
  const frames = Number(process.argv[2] ?? 4_000_000);
  const settings = (process.argv[3] ?? '1,3,auto').split(',');
  if (!Number.isSafeInteger(frames) || frames < 1)
    throw new Error(
      `FRAMES must be a positive integer, got "${process.argv[2]}" (usage: stripes-bed.js [FRAMES] [1,3,auto])`,
    );
  const bad = settings.filter((x) => x !== 'auto' && !/^[1-9][0-9]*$/.test(x));
  if (bad.length > 0)
    throw new Error(`SETTINGS: each an --active-connections value (N or auto), got ${bad.join(', ')}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-stripes-'));
  const capture = path.join(dir, 'capture.fstrm');
  const made = replicateCapture(capture, frames);
  writeFileSync(path.join(dir, 'policy.json'), JSON.stringify(samplePolicy()));
  const bed = await ClusterBed.create({ mode: 'iptables', port: PORT, label: 'stripes' });
  const results: SettingResult[] = [];
  try {
    await bed.netns.addAddress(AGENT_ADDRESS);
    for (const s of settings) {
      process.stderr.write(`setting --active-connections ${s}\n`);
      results.push(await runSetting(bed, dir, capture, made.frames, s));
    }
  } finally {
    await bed.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const one = results.find((r) => r.setting === '1');
  process.stdout.write(
    `${PODS} enricher pods x ${POD_CPU} CPU (iptables ClusterIP), one agent replaying ${made.frames} frames\n`,
  );
  process.stdout.write(
    'setting  seconds  records/s  best 5 s/s  x(N=1)  stripes max  max backlog MiB  collisions  rows  dup  lost  exit  load1  stripes reached at (s)\n',
  );
  for (const r of results) {
    const x = one ? (r.recordsPerS / one.recordsPerS).toFixed(2) : '-';
    process.stdout.write(
      `${r.setting.padStart(7)}  ${r.seconds.toFixed(1).padStart(7)}  ${Math.round(r.recordsPerS).toString().padStart(9)}  ` +
        `${Math.round(r.bestRecordsPerS).toString().padStart(10)}  ${x.padStart(6)}  ${String(Math.max(0, ...r.stripes)).padStart(11)}  ` +
        `${(r.maxBacklogBytes / 2 ** 20).toFixed(1).padStart(15)}  ` +
        `${String(r.collisions).padStart(10)}  ${r.rows}  ${r.duplicates}  ${r.lost}  ${r.exitCode}  ${r.load1.toFixed(1)}  ` +
        `${Object.entries(r.reached)
          .map(([n, t]) => `${n}@${t}`)
          .join(' ')}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
  return results.every((r) => r.exitCode === 0 && r.lost === 0) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
