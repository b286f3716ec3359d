// Randomized differential tests: the policy tables against slow, obviously-correct
// reference implementations (linear scans over the rules) on thousands of random rule
// sets, names and addresses. Small alphabets make shared labels, nested suffixes and
// overlapping prefixes common. Seeds are fixed, so a failure reproduces.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePolicyDocument } from '../../enricher/policy';
import { prng } from '../../loadtest/prng';

// Labels in the parser's canonical presentation form: plain, escaped specials (dot, quote,
// space), a \DDD byte, and lengths on both sides of the 16-byte inline limit.
const LABELS = [
  'a',
  'b',
  'ab',
  'ba',
  'com',
  'x\\.y',
  'q\\000',
  '\\"',
  'sp\\ ',
  'p'.repeat(16),
  'p'.repeat(17),
  'zz-9_',
];

/** Another spelling of a canonical name that means the same wire bytes. */
function respell(name: string, rand: () => number): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    let ch = name[i]!;
    if (ch === '\\') {
      const esc = /[0-9]/.test(name[i + 1]!) ? name.slice(i, i + 4) : name.slice(i, i + 2);
      i += esc.length - 1;
      const byte = esc.length === 4 ? Number(esc.slice(1)) : esc.charCodeAt(1);
      out += rand() < 0.5 ? esc : `\\${String(byte).padStart(3, '0')}`;
      continue;
    }
    if (ch !== '.' && rand() < 0.15) ch = `\\${String(ch.charCodeAt(0)).padStart(3, '0')}`;
    else if (rand() < 0.3) ch = ch.toUpperCase();
    out += ch;
  }
  return out;
}

/** Test-only: the label start offsets of a presentation name (escape-aware). */
function labelStarts(name: string): number[] {
  const starts = [0];
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '\\') i += name[i + 1]! >= '0' && name[i + 1]! <= '9' ? 3 : 1;
    else if (name[i] === '.') starts.push(i + 1);
  }
  return starts;
}

describe('domains vs a linear-scan reference', () => {
  for (let round = 0; round < 60; round++) {
    test(`rule set ${round}`, () => {
      const rand = prng(1000 + round);
      const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
      const randomName = (maxDepth: number) =>
        Array.from({ length: 1 + Math.floor(rand() * maxDepth) }, () => pick(LABELS)).join('.');
      const count = round < 50 ? Math.floor(rand() * 40) : 3000;
      const rules = new Map<string, string>(); // canonical suffix -> category
      if (rand() < 0.3) rules.set('', 'root');
      while (rules.size < count) rules.set(randomName(4), `c${rules.size}`);
      // Written as an operator might: random upper case, sometimes a trailing dot.
      const domains = [...rules].map(([suffix, category]) => {
        let written = respell(suffix, rand);
        if (rand() < 0.2) written += '.';
        if (suffix === '') written = pick(['', '.']);
        return { suffix: written, category, action: 'a' };
      });
      const table = parsePolicyDocument(
        Buffer.from(JSON.stringify({ version: 'r', domains })),
        'diff',
      ).domains;

      const nameBuf = Buffer.alloc(1024);
      const starts = new Int32Array(128);
      for (let q = 0; q < (count > 100 ? 2000 : 200); q++) {
        const name =
          rand() < 0.5 ? randomName(6) : `${randomName(2)}.${pick([...rules.keys()])}`.replace(/\.$/, '');
        // Reference: every rule whose suffix starts at a label boundary of the name.
        const suffixes = new Set(labelStarts(name).map((s) => name.slice(s)));
        let best: string | null = rules.has('') ? '' : null;
        for (const suffix of rules.keys()) {
          if (suffixes.has(suffix) && (best === null || suffix.length > best.length)) best = suffix;
        }
        nameBuf.fill(0x2e);
        nameBuf.write(name, 'latin1');
        const s = labelStarts(name);
        starts.set(s);
        const got = table.lookup(nameBuf, name.length, starts, s.length);
        const want = best === null ? null : best === '' ? '.' : best;
        assert.equal(got?.suffix ?? null, want, `name ${name}`);
        if (best !== null) assert.equal(got!.category, rules.get(best));
      }
    });
  }
});

interface Prefix {
  bytes: number[];
  len: number;
}

/** True when the first `len` bits of a and b agree. */
function samePrefix(a: number[], b: number[], len: number): boolean {
  for (let i = 0; i < len; i++) {
    const bit = 7 - (i % 8);
    if (((a[i >> 3]! >> bit) & 1) !== ((b[i >> 3]! >> bit) & 1)) return false;
  }
  return true;
}

function cidrText(p: Prefix): string {
  if (p.bytes.length === 4) return `${p.bytes.join('.')}/${p.len}`;
  const groups = Array.from({ length: 8 }, (_, i) =>
    ((p.bytes[2 * i]! << 8) | p.bytes[2 * i + 1]!).toString(16),
  );
  return `${groups.join(':')}/${p.len}`;
}

const MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** IPv4-mapped IPv6 is IPv4: addresses and prefixes (/96 and longer) are folded. */
function fold(p: Prefix): Prefix {
  if (p.bytes.length === 16 && p.len >= 96 && samePrefix(p.bytes, MAPPED, 96)) {
    return { bytes: p.bytes.slice(12), len: p.len - 96 };
  }
  return p;
}

describe('networks vs a linear-scan reference', () => {
  for (let round = 0; round < 40; round++) {
    test(`prefix set ${round}`, () => {
      const rand = prng(5000 + round);
      const byte = () => Math.floor(rand() * 256);
      // A few base addresses per family, so prefixes nest and overlap.
      const bases4 = Array.from({ length: 3 }, () => [10, byte(), byte(), byte()]);
      const bases6 = Array.from({ length: 3 }, () => [
        0x20,
        0x01,
        0x0d,
        0xb8,
        ...Array.from({ length: 12 }, byte),
      ]);
      bases6.push([...MAPPED, ...bases4[0]!]);
      const masked = (bytes: number[], len: number) =>
        bytes.map((b, i) => (i * 8 >= len ? 0 : i * 8 + 8 <= len ? b : b & (0xff << (8 - (len - i * 8)))));
      const randomPrefix = (): Prefix => {
        const v6 = rand() < 0.5;
        const base = v6 ? bases6[Math.floor(rand() * bases6.length)]! : bases4[Math.floor(rand() * 3)]!;
        const len = Math.floor(rand() * (v6 ? 129 : 33));
        const flipped = rand() < 0.3 ? base.map((b) => b ^ (rand() < 0.1 ? byte() : 0)) : base;
        return { bytes: masked(flipped, len), len };
      };
      const rules: Prefix[] = [];
      const seen = new Set<string>();
      for (let i = 0, n = round < 30 ? Math.floor(rand() * 30) : 2000; i < n; i++) {
        const p = randomPrefix();
        const f = fold(p);
        const key = `${f.bytes.join(',')}/${f.len}`;
        if (seen.has(key)) continue;
        seen.add(key);
        rules.push(p);
      }
      const doc = { version: 'r', networks: rules.map((p, i) => ({ cidr: cidrText(p), tenant: `t${i}` })) };
      const table = parsePolicyDocument(Buffer.from(JSON.stringify(doc)), 'diff').networks;
      const folded = rules.map(fold);

      for (let q = 0; q < 300; q++) {
        let addr =
          rand() < 0.5 ? [...randomPrefix().bytes] : Array.from({ length: rand() < 0.5 ? 4 : 16 }, byte);
        addr = addr.map((b) => (rand() < 0.2 ? byte() : b));
        if (rand() < 0.1 && addr.length === 4) addr = [...MAPPED, ...addr];
        const a = fold({ bytes: addr, len: addr.length * 8 }).bytes;
        let want = -1;
        for (let i = 0; i < folded.length; i++) {
          const r = folded[i]!;
          if (r.bytes.length !== a.length || !samePrefix(r.bytes, a, r.len)) continue;
          if (want < 0 || r.len > folded[want]!.len) want = i;
        }
        const buf = Buffer.from([7, ...addr, 7]);
        const got = table.lookup(buf, 1, addr.length);
        assert.equal(got?.tenant ?? null, want < 0 ? null : `t${want}`, `address ${addr.join('.')}`);
      }
    });
  }
});
