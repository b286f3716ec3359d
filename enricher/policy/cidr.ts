// CIDR text -> (family, four big-endian 32-bit words, prefix length), strictly: dotted
// quads without leading zeros, RFC 4291 IPv6 text (with `::` and a trailing dotted quad),
// no zone ids, an explicit /LENGTH, and no host bits set (a typo like 10.0.0.1/8 is more
// likely than an intent, so it is an error that names the network that was probably
// meant). Load-time only.

import { FieldError, PolicyErrorCode } from './errors';

export interface Cidr {
  family: 4 | 6;
  /** Address as big-endian words (int32); IPv4 uses w[0] only. */
  words: Int32Array;
  length: number;
}

function invalid(text: string, problem: string): FieldError {
  const shown = text.length > 80 ? JSON.stringify(text.slice(0, 80)) + '...' : JSON.stringify(text);
  return new FieldError(PolicyErrorCode.INVALID, `${shown} ${problem}`);
}

/** The word with only its first `bits` (0..32) bits kept. */
export function maskWord(word: number, bits: number): number {
  if (bits <= 0) return 0;
  return bits >= 32 ? word | 0 : word & (-1 << (32 - bits));
}

function parseIPv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) return Number.NaN;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return Number.NaN;
    const n = Number(p);
    if (n > 255) return Number.NaN;
    v = (v << 8) | n;
  }
  return v | 0;
}

/** Eight 16-bit groups, or null when `text` is not IPv6 text. */
function parseIPv6(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups: number[][] = [[], []];
  for (let h = 0; h < halves.length; h++) {
    if (halves[h] === '') continue;
    const parts = halves[h]!.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const last = h === halves.length - 1 && i === parts.length - 1;
      if (last && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (Number.isNaN(v4)) return null;
        groups[h]!.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        groups[h]!.push(Number.parseInt(p, 16));
      } else {
        return null;
      }
    }
  }
  const [head, tail] = groups as [number[], number[]];
  const given = head.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  return [...head, ...new Array<number>(8 - given).fill(0), ...tail];
}

/** RFC 5952 text: lower-case, longest run of two or more zero groups as `::`. */
export function formatIPv6(words: Int32Array): string {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push(words[i]! >>> 16, words[i]! & 0xffff);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  return bestAt < 0 ? hex(g) : `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

function formatIPv4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/** Canonical `ADDRESS/LENGTH` text. */
export function formatCidr(family: 4 | 6, words: Int32Array, length: number): string {
  return `${family === 4 ? formatIPv4(words[0]!) : formatIPv6(words)}/${length}`;
}

/**
 * A policy network's text no more precise than the client masks (--mask-client-ipv4/-ipv6): a
 * /32 network under a /24 mask is written as its /24, so that an aggregate row keyed by the
 * network never names a client address the masks configured away.
 */
export function maskedCidrText(cidr: string, v4Bits: number, v6Bits: number): string {
  const c = parseCidr(cidr);
  const bits = c.family === 4 ? v4Bits : v6Bits;
  if (c.length <= bits) return cidr;
  const words = new Int32Array(4);
  for (let i = 0; i < 4; i++) words[i] = maskWord(c.words[i]!, bits - 32 * i);
  return formatCidr(c.family, words, bits);
}

/** Parses `ADDRESS/LENGTH` or throws FieldError naming the problem. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw invalid(text, 'is not ADDRESS/LENGTH (a single host is /32 or /128)');
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const words = new Int32Array(4);
  let family: 4 | 6;
  if (addr.includes(':')) {
    const g = parseIPv6(addr);
    if (g === null) throw invalid(text, 'does not hold a valid IPv6 address');
    for (let i = 0; i < 4; i++) words[i] = (g[2 * i]! << 16) | g[2 * i + 1]!;
    family = 6;
  } else {
    const v4 = parseIPv4(addr);
    if (Number.isNaN(v4)) throw invalid(text, 'does not hold a valid IPv4 address');
    words[0] = v4;
    family = 4;
  }
  const max = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) throw invalid(text, 'has an invalid prefix length');
  const length = Number(lenText);
  if (length > max) throw invalid(text, `has a prefix length above ${max}`);
  let hostBits = false;
  for (let i = 0; i < 4; i++) {
    const masked = maskWord(words[i]!, length - 32 * i);
    if (masked !== words[i]) hostBits = true;
    words[i] = masked;
  }
  if (hostBits) {
    const net = family === 4 ? formatIPv4(words[0]!) : formatIPv6(words);
    throw invalid(text, `has host bits set (the network is ${net}/${length})`);
  }
  return { family, words, length };
}
