// Records/s through one enricher process from N in-process test agents, each keeping a window
// of batches of 1000 real dnstap records (the bulk unbound capture) in flight; ack latency
// (batch sent -> Ack received, so it includes the fsync) p50/p99; enricher RSS (peak).
// The enricher runs as a child process (`snowtap enricher`), so its CPU and memory are its own.
//
//   node dist/loadtest/bench-enricher.js [agents=4] [seconds=10] [gzip=0] [window=32]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixtureRecords, TestAgent } from '../test/support/link-client';

const AGENTS = Number(process.argv[2] ?? 4);
const SECONDS = Number(process.argv[3] ?? 10);
const GZIP = process.argv[4] === '1';
const WINDOW = Number(process.argv[5] ?? 32);
const PER_BATCH = 1000;
const WARMUP_MS = 2000;
const MAIN = path.resolve(__dirname, '../cli/main.js');

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snowtap-bench-enr-'));
  const args = [
    'enricher',
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    '--output-dir',
    dir,
    '--id',
    'bench',
  ];
  const child = spawn(process.execPath, [MAIN, ...args, ...(GZIP ? ['--gzip'] : [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /"port":(\d+)[^\n]*"link listening"/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`enricher exited ${code}: ${text}`)));
  });
  const records = fixtureRecords();
  let acked = 0;
  let measuring = false;
  const latencies: number[] = [];
  let stop = false;
  const agents: TestAgent[] = [];
  for (let a = 0; a < AGENTS; a++) {
    const agent = await TestAgent.connect({ port, agentId: `bench-${a}`, incarnation: 'i1' });
    if ((await agent.answer()) !== 'welcome') throw new Error(`agent ${a}: ${JSON.stringify(agent.reject)}`);
    agents.push(agent);
    const sentAt = new Map<number, number>();
    let seq = 0;
    let inFlight = 0;
    let offset = a * 997;
    const fill = () => {
      while (!stop && inFlight < WINDOW) {
        seq++;
        const batch: Buffer[] = [];
        for (let j = 0; j < PER_BATCH; j++) batch.push(records[(offset + j) % records.length]!);
        offset += PER_BATCH;
        sentAt.set(seq, performance.now());
        agent.sendBatch(seq, batch);
        inFlight++;
      }
    };
    agent.onAck = (s) => {
      inFlight--;
      if (measuring) {
        acked += PER_BATCH;
        latencies.push(performance.now() - sentAt.get(s)!);
      }
      sentAt.delete(s);
      fill();
    };
    fill();
  }
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssOf(child.pid!));
  }, 250);
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  const cpu0 = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' ');
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const secs = (performance.now() - t0) / 1000;
  measuring = false;
  const cpu1 = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' ');
  const ticks = (s: string[]) => Number(s[13]) + Number(s[14]);
  const cpu = (ticks(cpu1) - ticks(cpu0)) / 100 / secs; // USER_HZ = 100 on Linux
  stop = true;
  clearInterval(sampler);
  for (const a of agents) a.goodbye();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  latencies.sort((x, y) => x - y);
  console.log(
    `agents ${AGENTS} window ${WINDOW} x ${PER_BATCH} records, gzip ${GZIP}: ` +
      `${Math.round(acked / secs).toLocaleString('en')} records/s acknowledged over ${secs.toFixed(1)} s, ` +
      `ack latency p50 ${quantile(latencies, 0.5).toFixed(1)} ms p99 ${quantile(latencies, 0.99).toFixed(1)} ms, ` +
      `enricher CPU ${(cpu * 100).toFixed(0)}%, peak RSS ${(peakRss / 1048576).toFixed(0)} MiB`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
