// Throughput of the CSV chunk output alone: ~250-byte rows through ChunkWriter into real
// files, plain, gzip and zstd, in two patterns:
//   stream  append continuously (honouring backpressure), one flush at the end;
//   acked   batches of 1024 rows, each awaited with flush() before the next (the enricher's
//           ack path with a single connection: the worst case for group commit).
// MB per CPU-second (process CPU, compression threads included) is the figure to compare on a
// machine shared with other work, where wall-clock MB/s swings with the neighbours' load.
// Usage: node dist/loadtest/bench-output.js [rows=2000000] [dir=$TMPDIR] [codecs=none,gzip,zstd]
// (zstd needs Node >= 22.15: left out, and said so, where the runtime has none).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChunkWriter, type ChunkWriterOptions } from '../enricher/output/chunk-writer';
import { type Compression, zstdAvailable } from '../enricher/output/compression';
import { COLUMNS, writeCsvField } from '../enricher/output/csv';

const ROWS = Number(process.argv[2] ?? 2_000_000);
const BASE = process.argv[3] ?? os.tmpdir();
const CODECS = (process.argv[4] ?? 'none,gzip,zstd').split(',') as Compression[];
const POOL = 65_536;
const BATCH = 1024;

const DOMAINS = [
  'example.com',
  'cdn.example.net',
  'api.service.internal',
  'login.microsoftonline.com',
  'ads.tracker.io',
];
const TYPES = ['A', 'AAAA', 'HTTPS', 'CNAME', 'TXT', 'PTR'];

/** A pool of distinct, realistic rows so compression sees varied data. */
function buildPool(): { buf: Buffer; offsets: Uint32Array } {
  let x = 12345;
  const rnd = (n: number) => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x % n;
  };
  const buf = Buffer.alloc(POOL * 400);
  const offsets = new Uint32Array(POOL + 1);
  let pos = 0;
  for (let i = 0; i < POOL; i++) {
    const ns = String(rnd(1e9)).padStart(9, '0');
    const v: Record<string, string> = {
      record_id: `agent-${rnd(50)}-7f3a9c:${1000 + (i >> 8)}:${i & 255}`,
      event_time: `2026-11-22T03:${String(rnd(60)).padStart(2, '0')}:${String(rnd(60)).padStart(2, '0')}.${ns}Z`,
      message_type: rnd(2) ? 'CLIENT_RESPONSE' : 'CLIENT_QUERY',
      identity: `resolver-${rnd(20)}.dns.svc.cluster.local`,
      protocol: rnd(10) ? 'UDP' : 'TCP',
      family: 'INET',
      query_address: `10.${rnd(256)}.${rnd(256)}.${rnd(256)}`,
      query_port: String(1024 + rnd(64000)),
      response_address: '10.0.0.53',
      response_port: '53',
      qname: `${rnd(100000).toString(36)}.${DOMAINS[rnd(DOMAINS.length)]}`,
      qtype: TYPES[rnd(TYPES.length)]!,
      qclass: 'IN',
      rcode: rnd(20) ? 'NOERROR' : 'NXDOMAIN',
      dns_id: String(rnd(65536)),
      answer_count: String(rnd(5)),
      message_size: String(40 + rnd(400)),
      latency_us: String(rnd(50000)),
      ecs: rnd(5) ? '' : `192.0.${rnd(256)}.0/24`,
      tenant: `tenant-${rnd(40)}`,
      policy_category: rnd(8) ? '' : 'ads',
      policy_action: rnd(8) ? '' : 'block',
      matched_domain: rnd(8) ? '' : 'tracker.io',
      sample_rate: '1',
      agent_id: `agent-${rnd(50)}`,
      enricher_id: 'enricher-0',
    };
    offsets[i] = pos;
    COLUMNS.forEach((c, k) => {
      if (k > 0) buf[pos++] = 0x2c;
      pos = writeCsvField(buf, pos, v[c]!);
    });
    buf[pos++] = 0x0d;
    buf[pos++] = 0x0a;
  }
  offsets[POOL] = pos;
  return { buf, offsets };
}

interface Result {
  name: string;
  seconds: number;
  bytes: number;
  fileBytes: number;
  chunks: number;
  cpu: NodeJS.CpuUsage;
}

async function run(
  name: string,
  opts: Partial<ChunkWriterOptions>,
  acked: boolean,
  pool: ReturnType<typeof buildPool>,
) {
  const dir = fs.mkdtempSync(path.join(BASE, 'snowtap-bench-'));
  const w = new ChunkWriter({ outputDir: dir, enricherId: 'bench', ...opts });
  const { buf, offsets } = pool;
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ROWS; ) {
    let below = true;
    for (const end = Math.min(ROWS, i + BATCH); i < end; i++) {
      const k = i % POOL;
      below = w.appendRow(buf, offsets[k]!, offsets[k + 1]!);
      bytes += offsets[k + 1]! - offsets[k]!;
    }
    if (acked) await w.flush();
    else if (!below) await w.whenDrained();
  }
  await w.close();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = w.stats();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    name,
    seconds,
    bytes,
    fileBytes: s.bytesWritten,
    chunks: s.chunksCommitted,
    cpu: process.cpuUsage(cpu0),
  };
}

function report(r: Result): void {
  const mb = r.bytes / 1e6;
  const cpuMain = (r.cpu.user + r.cpu.system) / 1e6;
  process.stdout.write(
    `${r.name.padEnd(22)} ${(mb / r.seconds).toFixed(0).padStart(5)} MB/s  ${(ROWS / r.seconds / 1e6).toFixed(2)} M rows/s  ` +
      `ratio ${(r.bytes / r.fileBytes).toFixed(1).padStart(4)}  chunks ${r.chunks}  ` +
      `process CPU ${(cpuMain / r.seconds).toFixed(2)} cores, ${(mb / cpuMain).toFixed(0)} MB per CPU-second\n`,
  );
}

async function main(): Promise<void> {
  const pool = buildPool();
  const avg = (pool.offsets[POOL]! / POOL).toFixed(0);
  process.stdout.write(`${ROWS} rows of ~${avg} bytes, ${os.cpus().length} CPUs, output under ${BASE}\n`);
  const all: [Compression, string, Partial<ChunkWriterOptions>][] = [
    ['none', 'plain', { compression: 'none' }],
    ['gzip', 'gzip level 1', { compression: 'gzip', gzipLevel: 1 }],
    ['gzip', 'gzip level 6', { compression: 'gzip', gzipLevel: 6 }],
    ['zstd', 'zstd level 1', { compression: 'zstd', zstdLevel: 1 }],
    ['zstd', 'zstd level 3', { compression: 'zstd', zstdLevel: 3 }],
  ];
  if (CODECS.includes('zstd') && !zstdAvailable())
    process.stdout.write(`zstd left out: Node ${process.versions.node} has no built-in zstd\n`);
  const cases = all.filter(([c]) => CODECS.includes(c) && (c !== 'zstd' || zstdAvailable()));
  for (const [, name, opts] of cases) {
    report(await run(`${name} stream`, opts, false, pool));
    report(await run(`${name} acked`, opts, true, pool));
  }
}

main().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
