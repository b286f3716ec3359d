// FrameStreamServer throughput with a real producer: fstrm_replay (libfstrm, Debian
// fstrm-bin) sends the bulk unbound fixture, repeated, over a unix socket into the server
// with a counting sink. Measures frames/s from the first byte of the connection to its
// close, i.e. socket reads + decoding + session + sink call, nothing downstream.
//
//   node dist/loadtest/bench-fstrm-server.js [repeats=40] [runs=5] [parallel=1]
//
// parallel > 1 runs that many fstrm_replay processes at once (several producer connections,
// as pdns_recursor opens), all into the same server.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FrameStreamServer } from '../common/framestream-server';
import { silentLogger } from '../common/log';

const REPLAY = '/usr/bin/fstrm_replay';
const FIXTURE = path.resolve(__dirname, '../../test/fixtures/unbound-local-unix-bulk.fstrm');
const FIXTURE_FRAMES = 13002;
const REPEATS = Number(process.argv[2] ?? 40);
const RUNS = Number(process.argv[3] ?? 5);
const PARALLEL = Number(process.argv[4] ?? 1);

interface RunResult {
  secs: number;
  frames: number;
  /** Socket bytes, and payload bytes handed to the sink. */
  bytes: number;
  payload: number;
  conns: number;
  /** CPU seconds this (the server's) process used during the run, user + system. */
  cpu: number;
}

function replay(sock: string): Promise<void> {
  const args = ['-t', 'protobuf:dnstap.Dnstap', '-u', sock];
  for (let i = 0; i < REPEATS; i++) args.push('-r', FIXTURE);
  return new Promise((resolve, reject) => {
    const child = spawn(REPLAY, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`fstrm_replay exited ${code}`))));
  });
}

async function runOnce(sock: string): Promise<RunResult> {
  let frames = 0;
  let payloadBytes = 0;
  const server = new FrameStreamServer({
    unixPath: sock,
    sink: {
      onFrame(_buf, start, end) {
        frames++;
        payloadBytes += end - start;
      },
    },
    log: silentLogger(),
  });
  await server.listen();
  const cpu0 = process.cpuUsage();
  let first = 0;
  let last = 0;
  let open = 0;
  let conns = 0;
  server.on('connection', () => {
    if (conns++ === 0) first = performance.now();
    open++;
  });
  const allClosed = new Promise<void>((resolve) =>
    server.on('connection-closed', () => {
      last = performance.now();
      if (--open === 0 && conns === PARALLEL) resolve();
    }),
  );
  await Promise.all(Array.from({ length: PARALLEL }, () => replay(sock)));
  await allClosed;
  const cpu = process.cpuUsage(cpu0);
  await server.close(0);
  const expected = FIXTURE_FRAMES * REPEATS * PARALLEL;
  if (frames !== expected) throw new Error(`expected ${expected} frames, got ${frames}`);
  return {
    secs: (last - first) / 1000,
    frames,
    bytes: server.stats.bytesIn,
    payload: payloadBytes,
    conns,
    cpu: (cpu.user + cpu.system) / 1e6,
  };
}

async function main(): Promise<void> {
  if (!existsSync(REPLAY)) {
    console.error(`${REPLAY} not installed: apt-get install fstrm-bin`);
    process.exit(2);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-fstrm-server-'));
  try {
    const results: RunResult[] = [];
    for (let run = 0; run < RUNS + 1; run++) {
      const r = await runOnce(path.join(dir, `bench-${run}.sock`));
      if (run > 0) results.push(r); // run 0 warms up the JIT
    }
    const rates = results.map((r) => r.frames / r.secs).sort((a, b) => a - b);
    const { frames, bytes, payload, conns } = results[0]!;
    const best = rates[rates.length - 1]!;
    const median = rates[Math.floor(rates.length / 2)]!;
    console.log(
      `fstrm_replay -> FrameStreamServer (unix): ${frames} frames, ${(bytes / 1e6).toFixed(1)} MB on the wire ` +
        `(${(payload / 1e6).toFixed(1)} MB payload), ` +
        `${conns} connection(s)/run, ${RUNS} runs`,
    );
    console.log(
      `  best ${(best / 1e3).toFixed(0)} kframes/s (${((best * bytes) / frames / 1e6).toFixed(0)} MB/s) | ` +
        `median ${(median / 1e3).toFixed(0)} kframes/s (${((median * bytes) / frames / 1e6).toFixed(0)} MB/s)`,
    );
    // The producer shares the machine: our own CPU per frame says what the server costs.
    const cpuPerFrame = results.map((r) => (r.cpu / r.frames) * 1e9).sort((a, b) => a - b);
    const busy = results.map((r) => r.cpu / r.secs).sort((a, b) => a - b);
    console.log(
      `  server process CPU: median ${cpuPerFrame[Math.floor(cpuPerFrame.length / 2)]!.toFixed(0)} ns/frame, ` +
        `${(busy[Math.floor(busy.length / 2)]! * 100).toFixed(0)}% of one core while receiving`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
