// Longest-prefix match of client addresses against policy networks, IPv4 and IPv6.
//
// Design, per family: the top 16 address bits index two flat arrays. `short[block]` holds
// the longest rule of length <= 16 covering that /16 (pushed down at build time), and
// `lengths[block]` is a bitmap of the lengths > 16 that occur inside the block. A lookup
// probes one hash table (keyed by masked address and length) only for the lengths in that
// bitmap, longest first, then falls back to `short[block]`. Addresses in blocks without
// long prefixes cost two array reads; no allocation, no BigInt. 100k networks (80% IPv4),
// addresses 30% inside a network: 11-19 M lookups/s on the build VM (bench-policy.ts).
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is the same host as a.b.c.d: such addresses are
// looked up in the IPv4 table, and IPv6 rules inside ::ffff:0:0/96 are stored as the
// equivalent IPv4 rules. IPv6 rules shorter than /96 (::/0 included) apply to native IPv6
// only; a catch-all for everything needs both 0.0.0.0/0 and ::/0.

import { formatCidr, maskWord } from './cidr';

export interface NetworkRule {
  /**
   * The network in canonical text (RFC 5952 for IPv6); IPv4-mapped IPv6 networks appear
   * in their IPv4 form, which is how they are matched.
   */
  readonly cidr: string;
  readonly tenant: string;
  /** The tenant field, RFC 4180-escaped UTF-8. */
  readonly csv: Buffer;
}

// Exported as a list so that compiled CommonJS reads them as locals, not `exports.X`,
// on the hot path.
export { BLOCKS, NONE, RULE_V6, SHORT_MAX, V4_STRIDE, V6_STRIDE };

const BLOCKS = 1 << 16;
const SHORT_MAX = 16;
const NONE = -1;
const V4_STRIDE = 3; // [key, length, rule + 1]
const V6_STRIDE = 6; // [w0, w1, w2, w3, length, rule + 1]
/** Added to ruleLength for IPv6 rules. */
const RULE_V6 = 128;

/** One family's arrays; the hash table has a power-of-two number of slots. */
export interface FamilyData {
  /** Rule index of the longest prefix <= /16 covering each /16 block, or NONE. */
  short: Int32Array;
  /** Per block, bit (len - 17) set when a prefix of that length lies in the block (1 or 4 words). */
  lengths: Int32Array;
  slots: Int32Array;
}

export interface NetworkTableData {
  v4: FamilyData;
  v6: FamilyData;
  /** 4 words per rule: the network address (IPv4 in word 0). */
  ruleWords: Int32Array;
  /** Prefix length per rule, plus RULE_V6 for IPv6 rules. */
  ruleLength: Uint8Array;
  ruleTenant: Int32Array;
  tenants: string[];
  tenantFields: Buffer[];
}

export function prefixHash(w0: number, w1: number, w2: number, w3: number, len: number): number {
  let h = Math.imul(w0 ^ Math.imul(len, 0x27d4eb2f), 0x9e3779b1);
  h = Math.imul(h ^ w1 ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ w2 ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ w3 ^ (h >>> 16), 0x9e3779b1);
  return h ^ (h >>> 15);
}

/** Offset of the IPv4 slot holding (key, len), or of the empty slot where it would go. */
export function findV4(slots: Int32Array, key: number, len: number): number {
  const mask = slots.length / V4_STRIDE - 1;
  for (let s = prefixHash(key, 0, 0, 0, len) & mask; ; s = (s + 1) & mask) {
    const b = s * V4_STRIDE;
    if (slots[b + 2] === 0 || (slots[b] === key && slots[b + 1] === len)) return b;
  }
}

/** Offset of the IPv6 slot holding (w0..w3, len), or of the empty slot where it would go. */
export function findV6(
  slots: Int32Array,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  len: number,
): number {
  const mask = slots.length / V6_STRIDE - 1;
  for (let s = prefixHash(w0, w1, w2, w3, len) & mask; ; s = (s + 1) & mask) {
    const b = s * V6_STRIDE;
    if (slots[b + 5] === 0) return b;
    if (
      slots[b] === w0 &&
      slots[b + 1] === w1 &&
      slots[b + 2] === w2 &&
      slots[b + 3] === w3 &&
      slots[b + 4] === len
    ) {
      return b;
    }
  }
}

function word(b: Buffer, off: number): number {
  return (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
}

export class NetworkTable {
  readonly size: number;
  private readonly v4: FamilyData;
  private readonly v6: FamilyData;
  /** Rule objects, created on first match; same object for the same rule every time. */
  private readonly cache: (NetworkRule | undefined)[];

  /** Use NetworkTableBuilder (or data from a worker). */
  constructor(private readonly data: NetworkTableData) {
    this.v4 = data.v4;
    this.v6 = data.v6;
    this.size = data.ruleTenant.length;
    this.cache = new Array(this.size);
  }

  /** Rule of the longest prefix containing addr[off..off+len); len 4 or 16, else null. */
  lookup(addr: Buffer, off: number, len: number): NetworkRule | null {
    if (len === 4) return this.lookup4(word(addr, off));
    if (len !== 16) return null;
    const w0 = word(addr, off);
    const w1 = word(addr, off + 4);
    const w2 = word(addr, off + 8);
    const w3 = word(addr, off + 12);
    if (w0 === 0 && w1 === 0 && w2 === 0xffff) return this.lookup4(w3);
    const t = this.v6;
    const block = w0 >>> 16;
    for (let k = 3; k >= 0; k--) {
      let bits = t.lengths[block * 4 + k]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits ^= 1 << bit;
        const p = SHORT_MAX + 1 + k * 32 + bit;
        const b = findV6(
          t.slots,
          maskWord(w0, p),
          maskWord(w1, p - 32),
          maskWord(w2, p - 64),
          maskWord(w3, p - 96),
          p,
        );
        if (t.slots[b + 5] !== 0) return this.rule(t.slots[b + 5]! - 1);
      }
    }
    const r = t.short[block]!;
    return r === NONE ? null : this.rule(r);
  }

  private lookup4(a: number): NetworkRule | null {
    const t = this.v4;
    const block = a >>> 16;
    let bits = t.lengths[block]!;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits);
      bits ^= 1 << bit;
      const p = SHORT_MAX + 1 + bit;
      const b = findV4(t.slots, maskWord(a, p), p);
      if (t.slots[b + 2] !== 0) return this.rule(t.slots[b + 2]! - 1);
    }
    const r = t.short[block]!;
    return r === NONE ? null : this.rule(r);
  }

  private rule(i: number): NetworkRule {
    const hit = this.cache[i];
    return hit !== undefined ? hit : this.materialize(i);
  }

  private materialize(i: number): NetworkRule {
    const d = this.data;
    const tenant = d.ruleTenant[i]!;
    const len = d.ruleLength[i]!;
    const family = len >= RULE_V6 ? 6 : 4;
    const rule: NetworkRule = Object.freeze({
      cidr: formatCidr(family, d.ruleWords.subarray(4 * i, 4 * i + 4), family === 6 ? len - RULE_V6 : len),
      tenant: d.tenants[tenant]!,
      csv: d.tenantFields[tenant]!,
    });
    this.cache[i] = rule;
    return rule;
  }
}
