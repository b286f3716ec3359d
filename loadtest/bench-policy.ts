// Policy benchmark: load time and memory for a 1M-domain / 100k-network document (JSON
// and gzip, each loaded in a fresh child process so peak RSS is the load's own), then
// lookups/s for domains (against a Map<string> baseline design) and networks over a mix
// of 70% misses and 30% hits at varying depth. Hits are drawn uniformly over all rules
// (worst case for caches) and Zipf-distributed (closer to real traffic). Rates are the
// best and the median of ROUNDS rounds: on a shared machine the best is the cleanest.
//
//   npx tsc -p . && node --expose-gc dist/loadtest/bench-policy.js [domains] [networks]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { DomainRule } from '../enricher/policy';
import { loadPolicyFile, Policy, parsePolicyDocument } from '../enricher/policy';
import { prng } from './prng';

const QUERIES = 1 << 18;
const ROUNDS = 10;
const LOOKUPS_PER_ROUND = 2_000_000;

const rand = prng(42);
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
const TLDS = ['com', 'com', 'com', 'com', 'net', 'org', 'io', 'de', 'co.uk', 'ru', 'xyz', 'info', 'cn', 'fr'];
const CATEGORIES = ['malware', 'phishing', 'ads', 'tracking', 'adult', 'gambling', 'social', 'news'];
function word(min: number, max: number): string {
  const n = min + Math.floor(rand() * (max - min + 1));
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(rand() * 26));
  return s;
}

function makeDocument(nDomains: number, nNetworks: number) {
  const seen = new Set<string>();
  const domains: { suffix: string; category: string; action: string }[] = [];
  while (domains.length < nDomains) {
    // Mostly registered domains, some deeper (cdn.x.com, a.b.x.co.uk).
    let s = `${word(4, 12)}.${pick(TLDS)}`;
    if (rand() < 0.2) s = `${word(2, 6)}.${s}`;
    if (rand() < 0.05) s = `${word(2, 6)}.${s}`;
    if (seen.has(s)) continue;
    seen.add(s);
    domains.push({ suffix: s, category: pick(CATEGORIES), action: rand() < 0.7 ? 'block' : 'log' });
  }
  const cidrs = new Set<string>();
  const networks: { cidr: string; tenant: string }[] = [];
  while (networks.length < nNetworks) {
    let cidr: string;
    if (rand() < 0.8) {
      // Tenant networks: mostly small blocks; a few /16s cover ~10% of the space.
      const len = pick([16, 20, 22, 24, 24, 24, 26, 28, 29, 30, 32, 32]);
      const a = Math.floor(rand() * 2 ** 32) & (len === 0 ? 0 : -1 << (32 - len));
      cidr = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${len}`;
    } else {
      const g = () => Math.floor(rand() * 65536).toString(16);
      const len = pick([32, 48, 56, 64, 64, 128]);
      const groups = [
        `2${Math.floor(rand() * 4096)
          .toString(16)
          .padStart(3, '0')}`,
        g(),
        g(),
        g(),
        g(),
        g(),
        g(),
        g(),
      ];
      cidr = `${groups.slice(0, len / 16).join(':')}${len === 128 ? '' : '::'}/${len}`;
    }
    if (cidrs.has(cidr)) continue;
    cidrs.add(cidr);
    networks.push({ cidr, tenant: `tenant-${Math.floor(rand() * 5000)}` });
  }
  return { version: 'bench-1', domains, networks };
}

/**
 * Query names stored compactly; each lookup first copies one into a reused name buffer
 * and label-start array, as the DNS parser fills DnsView per record, so the query set
 * itself does not thrash the cache. The copy is timed separately and reported.
 */
class Queries {
  readonly bytes = Buffer.alloc(QUERIES * 64);
  readonly off = new Int32Array(QUERIES + 1);
  readonly starts = new Int32Array(QUERIES * 16);
  readonly startsOff = new Int32Array(QUERIES + 1);
  readonly name = Buffer.alloc(1024);
  readonly labelStarts = new Int32Array(128);
  nameLen = 0;
  labelCount = 0;

  constructor(names: string[]) {
    for (let i = 0; i < QUERIES; i++) {
      const s = names[i]!;
      const at = this.off[i]!;
      this.bytes.write(s, at, 'latin1');
      this.off[i + 1] = at + s.length;
      let n = this.startsOff[i]!;
      this.starts[n++] = 0;
      for (let j = 0; j < s.length; j++) if (s[j] === '.') this.starts[n++] = j + 1;
      this.startsOff[i + 1] = n;
    }
  }

  load(i: number): void {
    const from = this.off[i]!;
    const len = this.off[i + 1]! - from;
    for (let j = 0; j < len; j++) this.name[j] = this.bytes[from + j]!;
    const s0 = this.startsOff[i]!;
    const count = this.startsOff[i + 1]! - s0;
    for (let j = 0; j < count; j++) this.labelStarts[j] = this.starts[s0 + j]!;
    this.nameLen = len;
    this.labelCount = count;
  }
}

/** Zipf (s = 1) sampler over indexes 0..n-1: rank k is drawn with weight 1/(k+1). */
function zipf(n: number): () => number {
  const cum = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) cum[k] = total += 1 / (k + 1);
  return () => {
    const x = rand() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function domainQueries(suffixes: string[], hit: () => number): Queries {
  const out: string[] = [];
  for (let i = 0; i < QUERIES; i++) {
    const depth = Math.floor(rand() * 4);
    let prefix = '';
    for (let d = 0; d < depth; d++) prefix += `${word(1, 10)}.`;
    // Misses: unknown names under popular TLDs, some under unknown TLDs.
    const base =
      rand() < 0.3 ? suffixes[hit()]! : `q${word(5, 14)}.${rand() < 0.9 ? pick(TLDS) : word(2, 3)}`;
    out.push(prefix + base);
  }
  return new Queries(out);
}

/** Node's undocumented but stable fast path behind toString('latin1'), minus argument checks. */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** Baseline design: one Map keyed by suffix strings, one latin1 slice per label boundary. */
class MapDomainTable {
  private readonly map = new Map<string, DomainRule>();
  private readonly root: DomainRule | null = null;
  constructor(policy: Policy, suffixes: string[]) {
    for (const s of suffixes) this.map.set(s, policy.lookupDomainName(s)!);
  }
  readonly lookup = (name: Buffer, nameLen: number, labelStarts: Int32Array, labelCount: number) => {
    for (let i = 0; i < labelCount; i++) {
      const r = this.map.get((name as Latin1Buffer).latin1Slice(labelStarts[i]!, nameLen));
      if (r !== undefined) return r;
    }
    return this.root;
  };
}

function rate(label: string, run: () => number): void {
  const rates: number[] = [];
  let hits = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    hits = run();
    rates.push(LOOKUPS_PER_ROUND / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6);
  }
  rates.sort((x, y) => x - y);
  const best = rates[rates.length - 1]!.toFixed(2);
  const median = rates[rates.length >> 1]!.toFixed(2);
  const hitPct = ((100 * hits) / LOOKUPS_PER_ROUND).toFixed(0);
  console.log(
    `${label.padEnd(52)} best ${best.padStart(6)} M/s  median ${median.padStart(6)} M/s  (${hitPct}% hit)`,
  );
}

/**
 * Bytes of the distinct ArrayBuffers reachable from `root`. Tables built in the worker
 * are allocated by its isolate, so process.memoryUsage().arrayBuffers does not see them.
 */
function typedArrayBytes(root: unknown): number {
  const seen = new Set<unknown>();
  let total = 0;
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      if (!seen.has(v.buffer)) total += v.buffer.byteLength;
      seen.add(v.buffer);
      return;
    }
    for (const x of Object.values(v)) walk(x);
  };
  walk(root);
  return total;
}

/** Runs in a fresh process: one load, its event-loop stall, and what stays in memory. */
async function childLoad(file: string, worker: boolean): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const settle = async () => {
    // Buffers' backing stores are released after the collection that finds them dead.
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
  };
  await settle();
  const before = process.memoryUsage();
  let maxLag = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - 2);
    last = now;
  }, 2);
  const t0 = performance.now();
  const policy = await loadPolicyFile(file, { worker });
  const ms = performance.now() - t0;
  // Let the probe fire once more: a blocked loop shows up only on the next tick.
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(probe);
  await settle();
  const after = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 1048576);
  console.log(
    JSON.stringify({
      ms: Math.round(ms),
      maxEventLoopStallMs: Math.round(maxLag),
      entries: policy.domainCount + policy.networkCount,
      retainedHeapMB: mb(after.heapUsed - before.heapUsed),
      tableMB: mb(typedArrayBytes(policy)),
      rssAfterMB: mb(after.rss),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
}

function main(): void {
  if (process.argv[2] === '--child-load') {
    void childLoad(process.argv[3]!, process.argv[4] === 'worker');
    return;
  }
  const nDomains = Number(process.argv[2] ?? 1_000_000);
  const nNetworks = Number(process.argv[3] ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'bench-policy-'));
  try {
    const doc = makeDocument(nDomains, nNetworks);
    const json = Buffer.from(JSON.stringify(doc));
    const gz = gzipSync(json);
    writeFileSync(join(dir, 'p.json'), json);
    writeFileSync(join(dir, 'p.json.gz'), gz);
    console.log(
      `document: ${nDomains} domains, ${nNetworks} networks, json ${json.length} B, gzip ${gz.length} B`,
    );
    for (const f of ['p.json', 'p.json.gz']) {
      for (const mode of ['worker', 'in-thread']) {
        const args = ['--expose-gc', __filename, '--child-load', join(dir, f), mode];
        const out = execFileSync(process.execPath, args);
        console.log(`load ${f.padEnd(10)} ${mode.padEnd(9)} ${out.toString().trim()}`);
      }
    }

    const t0 = performance.now();
    const policy = new Policy(parsePolicyDocument(readFileSync(join(dir, 'p.json')), 'bench'));
    console.log(`in-process parse+build ${Math.round(performance.now() - t0)} ms`);
    const suffixes = doc.domains.map((d) => d.suffix);
    const mask = QUERIES - 1;
    const lookups = (q: Queries, table: { lookupDomain: Policy['lookupDomain'] }) => () => {
      let hits = 0;
      for (let i = 0; i < LOOKUPS_PER_ROUND; i++) {
        q.load(i & mask);
        if (table.lookupDomain(q.name, q.nameLen, q.labelStarts, q.labelCount) !== null) hits++;
      }
      return hits;
    };
    const uniform = domainQueries(suffixes, () => Math.floor(rand() * suffixes.length));
    const skewed = domainQueries(suffixes, zipf(suffixes.length));
    rate('domain: copy into the view only (overhead)', () => {
      for (let i = 0; i < LOOKUPS_PER_ROUND; i++) uniform.load(i & mask);
      return 0;
    });
    rate('domain: label trie (domains.ts), uniform hits', lookups(uniform, policy));
    rate('domain: label trie (domains.ts), Zipf hits', lookups(skewed, policy));
    const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (const s of suffixes) policy.lookupDomainName(s);
    gc();
    const perRule = (process.memoryUsage().heapUsed - heap0) / suffixes.length;
    console.log(`heap for rule objects once every rule has matched: ${perRule.toFixed(0)} B/rule`);
    const baseline = { lookupDomain: new MapDomainTable(policy, suffixes).lookup };
    rate('domain: Map<string> + latin1Slice (baseline), uniform', lookups(uniform, baseline));
    rate('domain: Map<string> + latin1Slice (baseline), Zipf', lookups(skewed, baseline));

    // Addresses: 30% inside a policy network, 70% random (most of them misses).
    const v4nets = doc.networks.filter((x) => !x.cidr.includes(':'));
    const v6nets = doc.networks.filter((x) => x.cidr.includes(':'));
    const addrs = Buffer.alloc(QUERIES * 16);
    const lens = new Uint8Array(QUERIES);
    for (let i = 0; i < QUERIES; i++) {
      const v6 = rand() < 0.2;
      lens[i] = v6 ? 16 : 4;
      for (let j = 0; j < lens[i]!; j++) addrs[i * 16 + j] = Math.floor(rand() * 256);
      if (rand() < 0.3) {
        const n = pick(v6 ? v6nets : v4nets);
        const [a, l] = n.cidr.split('/') as [string, string];
        const bytes = v6 ? ipv6Bytes(a) : a.split('.').map(Number);
        for (let j = 0; j < Number(l) / 8; j++) addrs[i * 16 + j] = bytes[j]!;
      }
    }
    rate('network: 80% IPv4 / 20% IPv6, 30% inside a network', () => {
      let hits = 0;
      for (let i = 0; i < LOOKUPS_PER_ROUND; i++) {
        const k = i & mask;
        if (policy.lookupNetwork(addrs, k * 16, lens[k]!) !== null) hits++;
      }
      return hits;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ipv6Bytes(text: string): number[] {
  const [head, tail = ''] = text.split('::') as [string, string?];
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((x) =>
    Number.parseInt(x, 16),
  );
  return groups.flatMap((g) => [g >> 8, g & 255]);
}

main();
