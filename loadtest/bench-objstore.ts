// Local disk vs az:// (Azurite) vs s3:// (s3rver) side by side: rows/s and acknowledgement
// latency (append a batch, await flush(): what the link server does before it acks) at an
// offered rate, and the time from a row's append to its chunk being committed.
//
// Offered load: a batch every 10 ms (rate / 100 rows, ~250-byte rows), each batch's flush()
// awaited concurrently (several connections' batches share group commits), for SECONDS.
// Emulators on loopback are not the cloud: Azurite keeps blocks in memory and answers in
// well under a millisecond, where Azure Blob answers a Put Block in ~5-30 ms; the az:// ack
// figures here are a floor, the README states the real-service expectation separately.
// 'az:// Azurite' runs at the az:// default --output-ack-interval (0.25 s), 'az:// ack 0 s'
// without it (a Put Block per idle flush).
// Usage: node dist/loadtest/bench-objstore.js [seconds=10] [rates=1000,100000] [rotateSeconds=5]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { azureContainer } from '../enricher/output/azure-store';
import { ChunkWriter } from '../enricher/output/chunk-writer';
import { COLUMNS } from '../enricher/output/csv';
import { parseOutputUrl } from '../enricher/output/object-url';
import { azuriteConnectionString, startAzurite, startS3rverProcess } from '../test/support/objstore';

const SECONDS = Number(process.argv[2] ?? 10);
const RATES = (process.argv[3] ?? '1000,100000').split(',').map(Number);
const ROTATE_S = Number(process.argv[4] ?? 5);
const TICK_MS = 10;

function rowOf(i: number): Buffer {
  const fields = COLUMNS.map((c, k) => {
    if (k === 0) return `r-${String(i).padStart(10, '0')}`;
    if (c === 'event_time') return '2026-12-06T17:00:00.123456789Z';
    if (c === 'qname') return `host-${i % 9973}.example.com`;
    return k % 3 === 0 ? 'CLIENT_RESPONSE' : String((i * 31 + k) % 65535);
  });
  return Buffer.from(`${fields.join(',')}\r\n`, 'latin1');
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Result {
  target: string;
  rate: number;
  rowsPerSec: number;
  ackP50: number;
  ackP99: number;
  ackMax: number;
  chunks: number;
  commitP99: number;
}

async function run(
  target: string,
  url: string | undefined,
  rate: number,
  ackIntervalMs?: number,
): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-objstore-'));
  const commits: number[] = [];
  const openedAt: number[] = [];
  const w = new ChunkWriter({
    outputDir: dir,
    enricherId: `bench-${target.replace(/[^a-z0-9]/g, '')}-${rate}`,
    ...(url ? { outputUrl: url } : {}),
    ...(ackIntervalMs === undefined ? {} : { ackIntervalMs }),
    maxAgeMs: ROTATE_S * 1000,
    onCommit: () => commits.push(performance.now()),
  });
  const perBatch = Math.max(1, Math.round((rate * TICK_MS) / 1000));
  const lat: number[] = [];
  const pending: Promise<void>[] = [];
  let i = 0;
  const t0 = performance.now();
  const heartbeat = setInterval(() => void w.heartbeat().catch(() => undefined), 5000);
  for (let tick = 0; performance.now() - t0 < SECONDS * 1000; tick++) {
    const due = t0 + tick * TICK_MS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const start = performance.now();
    if (openedAt.length === commits.length) openedAt.push(start);
    for (let k = 0; k < perBatch; k++) {
      const r = rowOf(i++);
      if (!w.appendRow(r, 0, r.length)) await w.whenDrained();
    }
    w.tick();
    pending.push(w.flush().then(() => void lat.push(performance.now() - start)));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  await w.close();
  clearInterval(heartbeat);
  fs.rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  // Commit latency bound: from a chunk's first row to its commit (rotation age + publish).
  const commitLat = commits.map((c, k) => c - (openedAt[k] ?? c)).sort((a, b) => a - b);
  return {
    target,
    rate,
    rowsPerSec: Math.round(i / elapsed),
    ackP50: pct(lat, 50),
    ackP99: pct(lat, 99),
    ackMax: lat[lat.length - 1] ?? Number.NaN,
    chunks: commits.length,
    commitP99: pct(commitLat, 99),
  };
}

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const s3 = await startS3rverProcess(['bench']);
  process.env.AZURE_STORAGE_CONNECTION_STRING = azuriteConnectionString(azurite.port);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: `http://127.0.0.1:${s3.port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_S3_FORCE_PATH_STYLE: 'true',
  });
  const container: ContainerClient = azureContainer(parseOutputUrl('az://bench/'));
  await container.create();
  const results: Result[] = [];
  try {
    for (const rate of RATES) {
      for (const [target, url, ack] of [
        ['local disk', undefined, undefined],
        ['az:// Azurite', 'az://bench/x', undefined],
        ['az:// ack 0 s', 'az://bench/y', 0],
        ['s3:// s3rver', 's3://bench/x', undefined],
      ] as const) {
        process.stderr.write(`bench-objstore: ${target} at ${rate} rows/s ...\n`);
        results.push(await run(target, url, rate, ack));
      }
    }
  } finally {
    await azurite.close();
    await s3.close();
  }
  const f = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(1));
  process.stdout.write(
    `bench-objstore: Node ${process.versions.node}, ${SECONDS} s per run, batch every ${TICK_MS} ms, rotation ${ROTATE_S} s\n`,
  );
  process.stdout.write(
    'target          offered/s  achieved/s  ack p50 ms  ack p99 ms  ack max ms  chunks  first-row->commit p99 ms\n',
  );
  for (const r of results) {
    process.stdout.write(
      `${r.target.padEnd(15)} ${String(r.rate).padStart(9)}  ${String(r.rowsPerSec).padStart(10)}  ${f(r.ackP50).padStart(10)}  ${f(r.ackP99).padStart(10)}  ${f(r.ackMax).padStart(10)}  ${String(r.chunks).padStart(6)}  ${f(r.commitP99).padStart(10)}\n`,
    );
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
