// `npm run bench`: records/s of `snowtap convert` on ONE core for a large capture (the unbound
// bulk fixture replicated to >= 1M frames), per chunk compression (records/s and bytes on
// disk), and the cost split per stage (Frame Streams, dnstap decode, DNS parse, policy
// lookup, CSV encode, chunk write). Each stage is timed alone over frames held in memory,
// except CSV encoding: it is the whole pipeline minus its decoding half run as one loop over
// the same frames.
//
//   node dist/loadtest/bench-convert.js [--frames N] [--runs K] [--quick] [--json FILE]
//        [--compression none,gzip,zstd] [--no-split]
//        [--mask-client-ipv4 BITS] [--mask-client-ipv6 BITS] [--drop-ecs] [--pseudonymize-clients KEYFILE]
//        [--tenants N [--max-open-tenants M] [--tenant-chunk-rate R] [--tenant-run K]]
// --tenants N: the capture's client addresses are rewritten to N tenants' networks (runs of K
// records per client, default 1: every record may switch tenant), and each codec runs twice
// per round, paired: one tree, then --partition-by tenant (bound M, default max(64, N)).
//        [--aggregates] [--rows-off]
// --aggregates: hourly aggregates as well (issue 9 step 3); --rows-off: aggregates only (--rows off).
// --compression: the codecs to run (default none,gzip; zstd needs Node >= 22.15); the runs
// alternate between them (paired) so that a busy neighbour hurts each codec alike.
//
// It re-executes itself under `taskset -c 0` when available so the numbers are per core
// (gzip then competes with the pipeline on that core instead of using the other one).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../common/log';
import type { AggregatesConfig } from '../enricher/aggregates/options';
import { convertFiles } from '../enricher/convert';
import {
  ChunkWriter,
  COMPRESSIONS,
  type Compression,
  PARTITION_DEFAULTS,
  type PartitionOptions,
  zstdAvailable,
} from '../enricher/output/index';
import { RecordPipeline, type RowOptions, type RowSink } from '../enricher/pipeline/pipeline';
import { Pseudonymizer } from '../enricher/pipeline/pseudonym';
import { MAX_ROW_BYTES, RowSource } from '../enricher/pipeline/row-encoder';
import { loadPolicyBytes, type Policy } from '../enricher/policy/index';
import { DnsView, tryParseDnsMessage } from '../proto/dns/index';
import { decodeDnstap } from '../proto/dnstap/index';
import { ABSENT, DnstapView, isResponseType } from '../proto/dnstap/view';
import { readFrameStreamFile } from '../proto/framestream/index';
import { replicateCapture } from './capture';

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const QUICK = args.includes('--quick');
const TARGET_FRAMES = flag('--frames', QUICK ? 200_000 : 1_040_000);
const RUNS = flag('--runs', QUICK ? 1 : 3);
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const CODECS = (args.includes('--compression') ? args[args.indexOf('--compression') + 1]! : 'none,gzip')
  .split(',')
  .map((c) => {
    if (!COMPRESSIONS.includes(c as Compression)) throw new Error(`--compression: unknown codec ${c}`);
    return c as Compression;
  })
  .filter((c) => {
    if (c !== 'zstd' || zstdAvailable()) return true;
    console.log(`zstd left out: Node ${process.versions.node} has no built-in zstd`);
    return false;
  });
const SPLIT = !args.includes('--no-split');
const TENANTS = flag('--tenants', 0);
const TENANT_RUN = flag('--tenant-run', 1);
const PARTITION: PartitionOptions | null =
  TENANTS > 0
    ? {
        partitionBy: 'tenant',
        maxOpenTenants: flag('--max-open-tenants', Math.max(PARTITION_DEFAULTS.maxOpenTenants, TENANTS)),
        tenantChunkRate: flag('--tenant-chunk-rate', PARTITION_DEFAULTS.tenantChunkRate),
      }
    : null;
/** Result keys of earlier versions, kept so that stored JSON stays comparable. */
const RATE_KEY: Record<Compression, string> = {
  none: 'convertRecordsPerSec',
  gzip: 'convertGzipRecordsPerSec',
  zstd: 'convertZstdRecordsPerSec',
};

// Row options under test (issue 9 step 1): --mask-client-ipv4 N, --mask-client-ipv6 N, --drop-ecs,
// --pseudonymize-clients KEYFILE.
const ROWS: RowOptions = {
  maskClientIpv4: flag('--mask-client-ipv4', 32),
  maskClientIpv6: flag('--mask-client-ipv6', 128),
  dropEcs: args.includes('--drop-ecs'),
  ...(args.includes('--pseudonymize-clients')
    ? { pseudonymizer: Pseudonymizer.fromFile(args[args.indexOf('--pseudonymize-clients') + 1]!) }
    : {}),
};

// Hourly aggregates under test (issue 9 step 3): --aggregates, --rows-off.
const AGGREGATES: AggregatesConfig | null =
  args.includes('--aggregates') || args.includes('--rows-off')
    ? { mode: 'hourly', rows: !args.includes('--rows-off'), graceMs: 0, key: Buffer.alloc(32, 7) }
    : null;

function pinToOneCore(): void {
  if (process.env.SNOWTAP_BENCH_PINNED === '1') return;
  const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, __filename, ...args], {
    stdio: 'inherit',
    env: { ...process.env, SNOWTAP_BENCH_PINNED: '1' },
  });
  if (r.error) {
    console.log('taskset not available: measuring without CPU pinning');
    process.env.SNOWTAP_BENCH_PINNED = 'unpinned';
    return;
  }
  process.exit(r.status ?? 1);
}

/** START + the fixture's data frames repeated + STOP, written to a temp file. */
function buildCapture(dir: string): { file: string; frames: number; bytes: number } {
  const file = path.join(dir, 'bulk-x.fstrm');
  const cap = { file, ...replicateCapture(file, TARGET_FRAMES) };
  if (TENANTS > 0) spreadClients(file, TENANTS);
  return cap;
}

/**
 * Rewrites every frame's client address in place to 10.<k>.1 (IPv6: ::ffff:10.<k>.1), k the
 * tenant of record i (runs of TENANT_RUN records, order scrambled): the bench policy maps
 * 10.<k>.0/24 to tenant t<k>. Sizes stay the same.
 */
function spreadClients(file: string, tenants: number): void {
  const buf = readFileSync(file);
  const view = new DnstapView();
  let p = 8 + buf.readUInt32BE(4); // after the START control frame
  let i = 0;
  let rewritten = 0;
  while (p + 4 <= buf.length) {
    const len = buf.readUInt32BE(p);
    if (len === 0) break; // STOP (an escaped control frame)
    const start = p + 4;
    decodeDnstap(buf, start, start + len, view);
    const run = Math.floor(i++ / TENANT_RUN);
    const k = Math.imul(run, 0x9e3779b1) >>> 0;
    const t = k % tenants;
    const off = view.queryAddressOff;
    if (off !== ABSENT && view.queryAddressLen === 4) {
      buf[off] = 10;
      buf[off + 1] = t >> 8;
      buf[off + 2] = t & 255;
      buf[off + 3] = 1;
      rewritten++;
    } else if (off !== ABSENT && view.queryAddressLen === 16) {
      buf.fill(0, off, off + 10);
      buf[off + 10] = 0xff;
      buf[off + 11] = 0xff;
      buf[off + 12] = 10;
      buf[off + 13] = t >> 8;
      buf[off + 14] = t & 255;
      buf[off + 15] = 1;
      rewritten++;
    }
    p = start + len;
  }
  writeFileSync(file, buf);
  console.log(
    `client addresses: ${rewritten} of ${i} records spread over ${tenants} tenants (runs of ${TENANT_RUN})`,
  );
}

/** A realistic policy: 100k domains + 10k networks, a few of which match the fixture. */
async function benchPolicy(): Promise<Policy> {
  const domains = [{ suffix: 'w.tap.test', category: 'wildcard', action: 'log' }];
  for (let i = 0; i < 100_000; i++)
    domains.push({ suffix: `d${i}.example${i % 97}.com`, category: 'c' + (i % 13), action: 'log' });
  const networks = [{ cidr: '127.0.0.0/8', tenant: 'loopback' }];
  for (let i = 0; i < 10_000; i++) networks.push({ cidr: `10.${i >> 8}.${i & 255}.0/24`, tenant: 't' + i });
  return loadPolicyBytes(Buffer.from(JSON.stringify({ version: 'bench', domains, networks })), {
    source: 'bench',
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  pinToOneCore();
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-bench-'));
  try {
    const cap = buildCapture(dir);
    const policy = await benchPolicy();
    console.log(
      `capture: ${cap.frames} frames, ${(cap.bytes / 1e6).toFixed(1)} MB (unbound bulk fixture x${Math.round(cap.frames / 13002)}); ` +
        `policy: ${policy.domainCount} domains, ${policy.networkCount} networks; cpu pinning: ${process.env.SNOWTAP_BENCH_PINNED}` +
        (AGGREGATES === null ? '' : `; aggregates hourly, rows ${AGGREGATES.rows ? 'on' : 'off'}`),
    );
    const results: Record<string, unknown> = {
      frames: cap.frames,
      bytes: cap.bytes,
      pinned: process.env.SNOWTAP_BENCH_PINNED,
    };

    // End to end: file -> CSV chunks on disk (what `snowtap convert` does), the codecs in
    // turn within each round (with --tenants: each codec one tree, then by tenant, paired).
    const cases: { key: string; compression: Compression; partition: PartitionOptions | null }[] = [];
    for (const compression of CODECS) {
      cases.push({ key: compression, compression, partition: null });
      if (PARTITION) cases.push({ key: `${compression}/tenant`, compression, partition: PARTITION });
    }
    const secs = new Map<string, number[]>(cases.map((c) => [c.key, []]));
    // CPU seconds of the whole process (pipeline + threadpool compression): steadier than wall
    // time on a machine shared with other work.
    const cpus = new Map<string, number[]>(cases.map((c) => [c.key, []]));
    const sizes = new Map<string, { csv: number; file: number; chunks: number }>();
    for (let r = 0; r < RUNS; r++) {
      for (const { key, compression, partition } of cases) {
        const out = path.join(dir, `out-${key.replace('/', '-')}-${r}`);
        let csv = 0;
        let file = 0;
        const cpu0 = process.cpuUsage();
        const s = await convertFiles({
          files: [cap.file],
          output: {
            outputDir: out,
            enricherId: 'bench',
            maxRows: 1_000_000,
            maxBytes: 1 << 30,
            maxAgeMs: 3.6e6,
            compression,
          },
          ...(partition ? { partition } : {}),
          policy,
          rows: ROWS,
          aggregates: AGGREGATES,
          log: silentLogger(),
          onCommit: (c) => {
            csv += c.bytes;
            file += c.compressedBytes;
          },
        });
        const want = AGGREGATES?.rows === false ? 0 : cap.frames;
        if (s.rows !== want) throw new Error(`expected ${want} rows, got ${s.rows}`);
        if (AGGREGATES !== null && s.aggregateFiles === 0) throw new Error('no aggregate file written');
        secs.get(key)!.push(s.seconds);
        const cpu = process.cpuUsage(cpu0);
        cpus.get(key)!.push((cpu.user + cpu.system) / 1e6);
        sizes.set(key, { csv, file, chunks: s.chunks });
        rmSync(out, { recursive: true, force: true });
      }
    }
    for (const { key, compression, partition } of cases) {
      const ss = secs.get(key)!;
      const rate = cap.frames / median(ss);
      const { csv, file, chunks } = sizes.get(key)!;
      const cpu = median(cpus.get(key)!);
      if (partition === null) {
        results[RATE_KEY[compression]] = Math.round(rate);
        results[`${compression}FileBytes`] = file;
        results[`${compression}CpuNsPerRecord`] = Math.round((cpu / cap.frames) * 1e9);
      } else {
        results[`${compression}TenantRecordsPerSec`] = Math.round(rate);
        results[`${compression}TenantCpuNsPerRecord`] = Math.round((cpu / cap.frames) * 1e9);
        results[`${compression}TenantChunks`] = chunks;
        results.tenants = TENANTS;
        results.partition = partition;
      }
      const label =
        partition === null
          ? compression.padEnd(5)
          : `${compression} by tenant (${TENANTS} tenants, bound ${partition.maxOpenTenants})`;
      console.log(
        `convert ${label}: ${(rate / 1e6).toFixed(3)} M records/s (median of ${RUNS}: ${ss.map((x) => x.toFixed(2)).join(' ')} s), ` +
          `CPU ${((cpu / cap.frames) * 1e9).toFixed(0)} ns/record; ${chunks} chunk(s), ` +
          `${(file / 1e6).toFixed(1)} MB on disk for ${(csv / 1e6).toFixed(1)} MB of CSV (ratio ${(csv / file).toFixed(2)})`,
      );
    }
    if (!SPLIT) {
      if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2) + '\n');
      return;
    }

    // Cost split: each stage alone over the same frames held in memory.
    const frames: Buffer[] = [];
    await readFrameStreamFile(cap.file, (buf, s, e) => {
      frames.push(Buffer.from(buf.subarray(s, e)));
    });
    const n = frames.length;
    const split: Record<string, number> = {};
    split.framestream = median(
      await Promise.all(
        Array.from({ length: RUNS }, async () => {
          const t0 = process.hrtime.bigint();
          let c = 0;
          await readFrameStreamFile(cap.file, () => {
            c++;
          });
          if (c !== n) throw new Error('frame count');
          return Number(process.hrtime.bigint() - t0) / 1e9;
        }),
      ),
    );
    const view = new DnstapView();
    split.dnstap = median(
      Array.from({ length: RUNS }, () =>
        time(() => {
          for (const f of frames) decodeDnstap(f, 0, f.length, view);
        }),
      ),
    );
    const dv = new DnsView();
    const msgs: [Buffer, number, number][] = frames.map((f) => {
      decodeDnstap(f, 0, f.length, view);
      const useR = isResponseType(view.type)
        ? view.responseMessageOff !== ABSENT
        : view.queryMessageOff === ABSENT;
      return useR
        ? [f, view.responseMessageOff, view.responseMessageOff + view.responseMessageLen]
        : [f, view.queryMessageOff, view.queryMessageOff + view.queryMessageLen];
    });
    split.dns = median(
      Array.from({ length: RUNS }, () =>
        time(() => {
          for (const [b, s, e] of msgs) tryParseDnsMessage(b, s, e, dv);
        }),
      ),
    );
    // Lookups: parse once, keep the names, then time only the lookups.
    const names = msgs.slice(0, 200_000).map(([b, s, e]) => {
      tryParseDnsMessage(b, s, e, dv);
      return {
        name: Buffer.from(dv.name.subarray(0, dv.nameLen)),
        starts: dv.labelStarts.slice(0, dv.labelCount),
        count: dv.labelCount,
      };
    });
    const addr = Buffer.from([127, 0, 0, 1]);
    const lookupSecs = median(
      Array.from({ length: RUNS }, () =>
        time(() => {
          for (let i = 0; i < n; i++) {
            const x = names[i % names.length]!;
            policy.lookupDomain(x.name, x.name.length, x.starts, x.count);
            policy.lookupNetwork(addr, 0, 4);
          }
        }),
      ),
    );
    split.lookup = lookupSecs;
    // Whole pipeline into a sink that only counts: everything but the chunk writer.
    let rowBytes = 0;
    const counting: RowSink = {
      rowTarget: Buffer.alloc(MAX_ROW_BYTES),
      beginRow: () => 0,
      endRow: (end) => {
        rowBytes += end;
        return true;
      },
      full: false,
      whenDrained: () => Promise.resolve(),
    };
    const pipe = new RecordPipeline(counting, 'bench', () => policy, ROWS);
    const src = new RowSource('file-bench', '');
    const pipelineSecs = median(
      Array.from({ length: RUNS }, () =>
        time(() => {
          for (let i = 0; i < n; i++) pipe.process(frames[i]!, 0, frames[i]!.length, src, 0, i);
        }),
      ),
    );
    // The decoding half of the pipeline in one loop over the same frames (same cache
    // behaviour as the pipeline), so that CSV encoding is what the full pipeline adds to it.
    const decodeSecs = median(
      Array.from({ length: RUNS }, () =>
        time(() => {
          for (let i = 0; i < n; i++) {
            const f = frames[i]!;
            decodeDnstap(f, 0, f.length, view);
            const [b, s, e] = msgs[i]!;
            tryParseDnsMessage(b, s, e, dv);
            if (dv.hasQuestion) policy.lookupDomain(dv.name, dv.nameLen, dv.labelStarts, dv.labelCount);
            if (view.queryAddressOff !== ABSENT)
              policy.lookupNetwork(f, view.queryAddressOff, view.queryAddressLen);
          }
        }),
      ),
    );
    split.csvEncode = Math.max(0, pipelineSecs - decodeSecs);
    // Chunk writer alone: rows of the average length placed in its blocks the way the
    // pipeline does (beginRow/endRow, one memcpy standing in for the encoder), committed (plain).
    const rowLen = Math.round(pipe.counters.rowBytes / pipe.counters.rows);
    const rowBuf = Buffer.alloc(rowLen, 0x61);
    rowBuf.write('\r\n', rowLen - 2, 'latin1');
    const writerSecs: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const out = path.join(dir, `w-${r}`);
      const w = new ChunkWriter({
        outputDir: out,
        enricherId: 'bench',
        maxRows: 1_000_000,
        maxBytes: 1 << 30,
        maxAgeMs: 3.6e6,
        gzip: false,
      });
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const at = w.beginRow(MAX_ROW_BYTES);
        w.rowTarget.set(rowBuf, at);
        if (!w.endRow(at + rowLen)) await w.whenDrained();
      }
      await w.close();
      writerSecs.push(Number(process.hrtime.bigint() - t0) / 1e9);
      rmSync(out, { recursive: true, force: true });
    }
    split.chunkWrite = median(writerSecs);
    const total = Object.values(split).reduce((a, b) => a + b, 0);
    console.log(`\ncost split (${n} records, average row ${rowLen.toFixed(0)} B):`);
    console.log('stage            ns/record   share   alone (M records/s)');
    for (const [k, v] of Object.entries(split)) {
      console.log(
        `${k.padEnd(16)} ${((v / n) * 1e9).toFixed(0).padStart(9)}   ${((v / total) * 100).toFixed(0).padStart(4)} %   ${(n / v / 1e6).toFixed(2)}`,
      );
    }
    results.splitNsPerRecord = Object.fromEntries(
      Object.entries(split).map(([k, v]) => [k, Math.round((v / n) * 1e9)]),
    );
    results.rowBytes = Math.round(rowLen);
    void rowBytes;
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
