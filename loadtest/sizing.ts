// `npm run sizing`: the README's "Sizing" section, computed. Every figure it prints comes either
// from a measurement taken by a command in this repository (stored with that command in
// loadtest/sizing-inputs.json; `--measure` re-takes them on the machine at hand) or from a
// published price given as an option with its source. Nothing else is assumed.
//
//   node dist/loadtest/sizing.js [--inputs FILE] [--rate R] [--agents A] [--active-connections N]
//        [--switch-interval S] [--rotate-max-age S] [--pod-cpu C] [--target-utilisation F]
//        [--tenants T] [--credit-usd P] [--markdown]
//   node dist/loadtest/sizing.js --measure [--inputs FILE]      (re-measure, then print)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AZ_ACK_INTERVAL_MS, CHUNK_DEFAULTS } from '../enricher/output/options';

/** One measured input and the command that measured it. */
export interface Measured {
  value: number;
  command: string;
}

export interface SizingInputs {
  measured: string;
  node: string;
  machine: string;
  /** `convert` whole process on one core: what one enricher core does (the link adds nothing measurable; README Performance). */
  recordsPerCoreSec: Measured;
  enricherPeakRssMiB: Measured;
  agentCpuUsPerFrame: Measured;
  agentPeakRssMiB: Measured;
  agentBufferFullRssMiB: Measured;
  /** Bytes per row on disk for each compression, real captures (test/fixtures), default schema. */
  bytesPerRow: { none: Measured; gzip: Measured; zstd: Measured };
  /** One hourly aggregate row (sketch and top qnames included), uncompressed. */
  aggregateRowBytes: Measured;
}

export interface SizingParams {
  rate: number;
  agents: number;
  activeConnections: number;
  switchIntervalSec: number;
  rotateMaxAgeSec: number;
  rotateMaxBytes: number;
  podCpu: number;
  targetUtilisation: number;
  tenants: number;
  /** (tenant, policy network) groups each pod sees per hour: the hourly aggregate rows per pod-hour. */
  groups: number;
  compression: 'none' | 'gzip' | 'zstd';
  creditUsd: number;
  snowpipeCreditsPerGB: number;
  s3PutUsdPer1k: number;
  azureWriteUsdPer10k: number;
  /** nf_conntrack_tcp_timeout_time_wait (Linux default 120 s). */
  timeWaitSec: number;
  /** az:// --output-ack-interval: a block is staged at least this often while rows arrive. */
  azureAckIntervalSec: number;
  /** Uncompressed bytes of one block (CHUNK_DEFAULTS.blockBytes): a full block is staged at once. */
  blockBytes: number;
  /** The az:// writer rewrites its heartbeat record this often (enricher.ts HEARTBEAT_MS). */
  heartbeatSec: number;
}

/** Published prices, with where they come from (README "Sizing" cites them with dates). */
export const PRICES = {
  /** Snowpipe: fixed credits per GB loaded, text files billed on their uncompressed size (all editions). */
  snowpipeCreditsPerGB: 0.0037,
  /** A Snowflake credit's on-demand price differs by edition, cloud and region; a parameter, not a fact. */
  creditUsd: 3,
  /** Amazon S3 Standard, PUT/COPY/POST/LIST, US East (N. Virginia), per 1,000 requests. */
  s3PutUsdPer1k: 0.005,
  /** Azure Blob, block blob, Hot tier, LRS, write operations (Put Block, Put Block List), per 10,000. */
  azureWriteUsdPer10k: 0.065,
} as const;

export const DEFAULT_PARAMS: SizingParams = {
  rate: 15_000_000,
  agents: 1_000,
  activeConnections: 1,
  switchIntervalSec: 30,
  rotateMaxAgeSec: 60,
  rotateMaxBytes: 256 * 1024 * 1024,
  podCpu: 1,
  targetUtilisation: 0.6,
  tenants: 1,
  groups: 100,
  compression: 'zstd',
  creditUsd: PRICES.creditUsd,
  snowpipeCreditsPerGB: PRICES.snowpipeCreditsPerGB,
  s3PutUsdPer1k: PRICES.s3PutUsdPer1k,
  azureWriteUsdPer10k: PRICES.azureWriteUsdPer10k,
  timeWaitSec: 120,
  azureAckIntervalSec: AZ_ACK_INTERVAL_MS / 1000,
  blockBytes: CHUNK_DEFAULTS.blockBytes,
  heartbeatSec: 5,
};

export interface SizingResult {
  params: SizingParams;
  podCapacity: number;
  pods: number;
  cores: number;
  podsPerMillion: number;
  coresPerMillion: number;
  podMemoryMiB: number;
  agentCoresPer100k: number;
  agentRssMiB: number;
  agentBufferFullRssMiB: number;
  newConnectionsPerSec: number;
  conntrackEntries: number;
  bytesPerRow: Record<'none' | 'gzip' | 'zstd', number>;
  bytesPerDay: Record<'none' | 'gzip' | 'zstd', number>;
  chunkSeconds: number;
  filesPerMinute: number;
  aggregateBytesPerDay: number;
  snowpipeCreditsPerDay: number;
  snowpipeUsdPerDay: number;
  s3PutsPerPodPerDay: number;
  s3UsdPerDay: number;
  azureBlocksPerSecond: number;
  azureWritesPerPodPerDay: number;
  azureUsdPerDay: number;
}

const DAY = 86_400;

export function size(inputs: SizingInputs, p: SizingParams): SizingResult {
  const podCapacity = inputs.recordsPerCoreSec.value * p.podCpu;
  const pods = Math.ceil(p.rate / (podCapacity * p.targetUtilisation));
  const perPodRate = p.rate / pods;
  const bytesPerRow = {
    none: inputs.bytesPerRow.none.value,
    gzip: inputs.bytesPerRow.gzip.value,
    zstd: inputs.bytesPerRow.zstd.value,
  };
  const bytesPerDay = {
    none: bytesPerRow.none * p.rate * DAY,
    gzip: bytesPerRow.gzip * p.rate * DAY,
    zstd: bytesPerRow.zstd * p.rate * DAY,
  };
  // A chunk closes at the first of its age and size bounds (rows per tenant chunk: the pod's
  // rate split over the tenants it sees).
  const tenantRate = perPodRate / p.tenants;
  const secondsToFill = p.rotateMaxBytes / (tenantRate * bytesPerRow.none);
  const chunkSeconds = Math.min(p.rotateMaxAgeSec, secondsToFill);
  const chunksPerPodPerDay = (p.tenants * DAY) / chunkSeconds;
  const filesPerMinute = (pods * chunksPerPodPerDay) / (DAY / 60);
  // Snowpipe bills text on its uncompressed size, whatever the chunk compression.
  const snowpipeCreditsPerDay = (bytesPerDay.none / 1e9) * p.snowpipeCreditsPerGB;
  const newConnectionsPerSec = (p.agents * p.activeConnections) / p.switchIntervalSec;
  // Each stripe holds an active and a standby connection; a switch leaves one in TIME_WAIT.
  const conntrackEntries = p.agents * p.activeConnections * 2 + newConnectionsPerSec * p.timeWaitSec;
  const s3PutsPerPodPerDay = chunksPerPodPerDay;
  // az://: an open chunk stages a block at every ack flush, or whenever a block fills first.
  const azureBlocksPerSecond = Math.max(
    1 / p.azureAckIntervalSec,
    (tenantRate * bytesPerRow.none) / p.blockBytes,
  );
  const azureWritesPerPodPerDay =
    p.tenants * azureBlocksPerSecond * DAY + chunksPerPodPerDay + DAY / p.heartbeatSec;
  return {
    params: p,
    podCapacity,
    pods,
    cores: pods * p.podCpu,
    podsPerMillion: 1e6 / (podCapacity * p.targetUtilisation),
    coresPerMillion: (1e6 / (podCapacity * p.targetUtilisation)) * p.podCpu,
    podMemoryMiB: inputs.enricherPeakRssMiB.value,
    agentCoresPer100k: (inputs.agentCpuUsPerFrame.value * 100_000) / 1e6,
    agentRssMiB: inputs.agentPeakRssMiB.value,
    agentBufferFullRssMiB: inputs.agentBufferFullRssMiB.value,
    newConnectionsPerSec,
    conntrackEntries,
    bytesPerRow,
    bytesPerDay,
    aggregateBytesPerDay: pods * p.groups * 24 * inputs.aggregateRowBytes.value,
    chunkSeconds,
    filesPerMinute,
    snowpipeCreditsPerDay,
    snowpipeUsdPerDay: snowpipeCreditsPerDay * p.creditUsd,
    s3PutsPerPodPerDay,
    s3UsdPerDay: ((s3PutsPerPodPerDay * pods) / 1000) * p.s3PutUsdPer1k,
    azureBlocksPerSecond,
    azureWritesPerPodPerDay,
    azureUsdPerDay: ((azureWritesPerPodPerDay * pods) / 10_000) * p.azureWriteUsdPer10k,
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fix = (n: number, d: number) => n.toFixed(d);
const tb = (bytes: number) => `${fix(bytes / 1e12, 2)} TB`;

/** The table the README embeds (a unit test keeps the two identical). */
export function renderMarkdown(inputs: SizingInputs, r: SizingResult): string {
  const p = r.params;
  const rows: [string, string, string][] = [
    [
      'one enricher core',
      `${int(inputs.recordsPerCoreSec.value)} records/s`,
      `\`${inputs.recordsPerCoreSec.command}\``,
    ],
    [
      'pods (and cores) per 1 M records/s',
      `${fix(r.podsPerMillion, 2)} pods of ${p.podCpu} CPU at ${p.targetUtilisation * 100} % target = ${fix(r.coresPerMillion, 2)} cores`,
      'capacity above ÷ target utilisation',
    ],
    [
      'memory per enricher pod',
      `${int(r.podMemoryMiB)} MiB peak RSS, no policy loaded (the chart requests 1 GiB: policy tables with millions of entries need it)`,
      `\`${inputs.enricherPeakRssMiB.command}\``,
    ],
    [
      'agent per 100 k frames/s',
      `${fix(r.agentCoresPer100k, 3)} cores, ${int(r.agentRssMiB)} MiB peak RSS (${int(r.agentBufferFullRssMiB)} MiB with the memory buffer full)`,
      `\`${inputs.agentCpuUsPerFrame.command}\``,
    ],
    [
      'bytes per row (none / gzip / zstd)',
      `${fix(r.bytesPerRow.none, 1)} / ${fix(r.bytesPerRow.gzip, 1)} / ${fix(r.bytesPerRow.zstd, 1)}`,
      `\`${inputs.bytesPerRow.none.command}\``,
    ],
  ];
  const example: [string, string][] = [
    ['enricher pods (cores)', `${int(r.pods)} (${fix(r.cores, 0)}), ${int(p.rate / r.pods)} records/s each`],
    [
      'new connections/s into the Service',
      `${fix(r.newConnectionsPerSec, 1)} (${int(p.agents)} agents × ${p.activeConnections} ÷ ${p.switchIntervalSec} s)`,
    ],
    [
      'conntrack entries from the link',
      `${int(r.conntrackEntries)} (2 per stripe + TIME_WAIT for ${p.timeWaitSec} s after each switch)`,
    ],
    [
      'output per day (none / gzip / zstd)',
      `${tb(r.bytesPerDay.none)} / ${tb(r.bytesPerDay.gzip)} / ${tb(r.bytesPerDay.zstd)}`,
    ],
    [
      'hourly aggregates instead of rows (`--rows off`)',
      `${fix(r.aggregateBytesPerDay / 1e9, 2)} GB/day uncompressed (${int(p.groups)} tenant × network groups per pod-hour, ${int(inputs.aggregateRowBytes.value)} B per row) ≈ ${fix((r.aggregateBytesPerDay / 1e9) * p.snowpipeCreditsPerGB, 3)} Snowpipe credits/day`,
    ],
    [
      'chunks',
      `one per pod${p.tenants > 1 ? ' and tenant' : ''} every ${fix(r.chunkSeconds, 0)} s: ${fix(r.filesPerMinute, 0)} Snowpipe files per minute`,
    ],
    [
      'Snowpipe',
      `${fix(r.snowpipeCreditsPerDay, 1)} credits/day (${fix(r.bytesPerDay.none / 1e9, 0)} GB uncompressed × ${p.snowpipeCreditsPerGB}) ≈ $${int(r.snowpipeUsdPerDay)}/day at $${p.creditUsd}/credit`,
    ],
    [
      'object-store writes, s3://',
      `${int(r.s3PutsPerPodPerDay)} PUT per pod per day ≈ $${fix(r.s3UsdPerDay, 2)}/day for the fleet`,
    ],
    [
      'object-store writes, az://',
      `${int(r.azureWritesPerPodPerDay)} writes per pod per day (${fix(r.azureBlocksPerSecond, 0)} staged blocks/s per open chunk, 1 commit per chunk, a heartbeat every ${p.heartbeatSec} s) ≈ $${int(r.azureUsdPerDay)}/day for the fleet`,
    ],
  ];
  return [
    `Measured ${inputs.measured}, ${inputs.node}, ${inputs.machine}.`,
    '',
    '| per unit | figure | from |',
    '| --- | --- | --- |',
    ...rows.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`),
    '',
    `Worked example: ${fix(p.rate / 1e6, 1)} M records/s peak, ${int(p.agents)} agents, --active-connections ${p.activeConnections}, ` +
      `--switch-interval ${p.switchIntervalSec}, --rotate-max-age ${p.rotateMaxAgeSec}, ${p.compression === 'none' ? 'no compression' : `--compression ${p.compression}`}` +
      `${p.tenants > 1 ? `, ${p.tenants} tenants` : ''}:`,
    '',
    '| item | figure |',
    '| --- | --- |',
    ...example.map(([a, b]) => `| ${a} | ${b} |`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Measuring (--measure): short runs of the benchmarks that own each figure.

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

function benchJson(script: string, args: string[]): unknown {
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-sizing-'));
  try {
    const out = path.join(dir, 'r.json');
    execFileSync(process.execPath, [path.join(ROOT, 'dist', 'loadtest', script), ...args, '--json', out], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    return JSON.parse(readFileSync(out, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `snowtap convert ARGS` over every real fixture capture and returns bytes per row of the
 * files it wrote below `under` that `pick` selects (`size` gives each file's bytes and rows).
 */
function perFixtureRow(
  args: string[],
  under: string,
  pick: (name: string) => boolean,
  size: (file: string) => [bytes: number, rows: number],
): number {
  const fixtures = path.join(ROOT, 'test', 'fixtures');
  const files = readdirSync(fixtures)
    .filter((f) => f.endsWith('.fstrm'))
    .map((f) => path.join(fixtures, f));
  const dir = mkdtempSync(path.join(tmpdir(), 'snowtap-sizing-'));
  try {
    const argv = [MAIN, 'convert', '--output-dir', dir, ...args, '--log-level', 'silent', ...files];
    const r = spawnSync(process.execPath, argv, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`convert ${args.join(' ')} failed: ${r.stderr}`);
    let bytes = 0;
    let rows = 0;
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (pick(e.name)) {
          const [b, n] = size(p);
          bytes += b;
          rows += n;
        }
      }
    };
    walk(path.join(dir, under));
    return bytes / rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes per row on disk when `snowtap convert` writes every real fixture capture. */
export function bytesPerRow(compression: string): number {
  return perFixtureRow(
    ['--compression', compression],
    '',
    (name) => /\.csv(\.gz|\.zst)?$/.test(name),
    (file) => [statSync(file).size, rowCount(file, compression)],
  );
}

/** Bytes per hourly aggregate row when `snowtap convert --aggregates hourly --rows off` runs on the fixtures. */
export function aggregateRowBytes(): number {
  return perFixtureRow(
    ['--aggregates', 'hourly', '--rows', 'off'],
    'aggregates',
    (name) => name.endsWith('.csv'),
    (file) => {
      const text = readFileSync(file, 'utf8');
      const header = text.indexOf('\n') + 1;
      return [
        text.length - header,
        text
          .slice(header)
          .split('\n')
          .filter((l) => l !== '').length,
      ];
    },
  );
}

function rowCount(file: string, compression: string): number {
  const zlib = require('node:zlib') as typeof import('node:zlib') & {
    zstdDecompressSync?: (b: Buffer) => Buffer;
  };
  const raw = readFileSync(file);
  const buf: Uint8Array =
    compression === 'gzip'
      ? zlib.gunzipSync(raw)
      : compression === 'zstd'
        ? zlib.zstdDecompressSync!(raw)
        : raw;
  let n = 0;
  for (const b of buf) if (b === 0x0a) n++;
  return n - 1; // header
}

function measure(): SizingInputs {
  const convert = benchJson('bench-convert.js', [
    '--quick',
    '--runs',
    '3',
    '--no-split',
    '--compression',
    'none',
  ]) as {
    convertRecordsPerSec: number;
  };
  const e2e = benchJson('bench-e2e.js', ['--quick']) as { input: string; enricherPeakRssMiB: number }[];
  const sidecar = benchJson('bench-sidecar.js', ['--quick']) as {
    agent: { cpuPerFrameUs: number; peakRssMiB: number };
    agentBufferFull: { peakRssMiB: number };
  };
  const aggCmd =
    'npm run sizing -- --measure (snowtap convert --aggregates hourly --rows off test/fixtures/*.fstrm: bytes / aggregate rows)';
  const codecCmd =
    'snowtap convert --compression C test/fixtures/*.fstrm (bytes on disk ÷ rows; `npm run sizing -- --measure`)';
  return {
    measured: new Date().toISOString().slice(0, 10),
    node: `Node ${process.version}`,
    machine: `${require('node:os').cpus().length} vCPU (shared)`,
    recordsPerCoreSec: {
      value: convert.convertRecordsPerSec,
      command: 'node dist/loadtest/bench-convert.js --quick --runs 3 --no-split --compression none',
    },
    enricherPeakRssMiB: {
      value: Math.max(...e2e.map((r) => r.enricherPeakRssMiB)),
      command: 'node dist/loadtest/bench-e2e.js --quick',
    },
    agentCpuUsPerFrame: {
      value: sidecar.agent.cpuPerFrameUs,
      command: 'node dist/loadtest/bench-sidecar.js --quick',
    },
    agentPeakRssMiB: {
      value: sidecar.agent.peakRssMiB,
      command: 'node dist/loadtest/bench-sidecar.js --quick',
    },
    agentBufferFullRssMiB: {
      value: sidecar.agentBufferFull.peakRssMiB,
      command: 'node dist/loadtest/bench-sidecar.js --quick',
    },
    aggregateRowBytes: { value: aggregateRowBytes(), command: aggCmd },
    bytesPerRow: {
      none: { value: bytesPerRow('none'), command: codecCmd },
      gzip: { value: bytesPerRow('gzip'), command: codecCmd },
      zstd: { value: bytesPerRow('zstd'), command: codecCmd },
    },
  };
}

export const DEFAULT_INPUTS = path.join(ROOT, 'loadtest', 'sizing-inputs.json');

export function parseArgs(argv: string[]): {
  params: SizingParams;
  inputs: string;
  measure: boolean;
  markdown: boolean;
} {
  const params: SizingParams = { ...DEFAULT_PARAMS };
  let inputs = DEFAULT_INPUTS;
  let measure = false;
  let markdown = false;
  const numeric: Record<string, keyof SizingParams> = {
    '--rate': 'rate',
    '--agents': 'agents',
    '--active-connections': 'activeConnections',
    '--switch-interval': 'switchIntervalSec',
    '--rotate-max-age': 'rotateMaxAgeSec',
    '--rotate-max-bytes': 'rotateMaxBytes',
    '--pod-cpu': 'podCpu',
    '--target-utilisation': 'targetUtilisation',
    '--tenants': 'tenants',
    '--groups': 'groups',
    '--credit-usd': 'creditUsd',
    '--azure-ack-interval': 'azureAckIntervalSec',
    '--block-bytes': 'blockBytes',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--measure') measure = true;
    else if (a === '--markdown') markdown = true;
    else if (a === '--inputs') inputs = argv[++i]!;
    else if (a === '--compression') {
      const c = argv[++i];
      if (c !== 'none' && c !== 'gzip' && c !== 'zstd')
        throw new Error(`--compression: none, gzip or zstd, not ${c}`);
      params.compression = c;
    } else if (a in numeric) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a}: a positive number, not ${argv[i]}`);
      (params as unknown as Record<string, number>)[numeric[a]!] = v;
    } else throw new Error(`unknown option ${a}`);
  }
  return { params, inputs, measure, markdown };
}

function main(): void {
  const { params, inputs: file, measure: doMeasure, markdown } = parseArgs(process.argv.slice(2));
  let inputs: SizingInputs;
  if (doMeasure) {
    inputs = measure();
    writeFileSync(file, JSON.stringify(inputs, null, 2) + '\n');
    console.log(`measured inputs written to ${file}`);
  } else inputs = JSON.parse(readFileSync(file, 'utf8')) as SizingInputs;
  const r = size(inputs, params);
  if (markdown) console.log(renderMarkdown(inputs, r));
  else console.log(JSON.stringify(r, null, 2));
}

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(`sizing: ${(e as Error).message}`);
    process.exit(2);
  }
}
