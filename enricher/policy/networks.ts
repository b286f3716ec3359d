// Longest-prefix match of client addresses against policy networks, IPv4 and IPv6.
//
// Design, per family: the top 16 address bits index two flat arrays. `short[block]` holds
// the longest rule of length <= 16 covering that /16 (pushed down at build time), and
// `lengths[block]` is a bitmap of the lengths > 16 that occur inside the block. A lookup
// probes one hash table (keyed by masked address and length) only for the lengths in that
// bitmap, longest first, then falls back to `short[block]`. Addresses in blocks without
// long prefixes cost two array reads; no allocation, no BigInt.
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is the same host as a.b.c.d: such addresses are
// looked up in the IPv4 table, and IPv6 rules inside ::ffff:0:0/96 are stored as the
// equivalent IPv4 rules. IPv6 rules shorter than /96 (::/0 included) apply to native IPv6
// only; a catch-all for everything needs both 0.0.0.0/0 and ::/0.

import { type Cidr, formatCidr, maskWord, parseCidr } from './cidr';
import { StringPool } from './csv';

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

const BLOCKS = 1 << 16;
const SHORT_MAX = 16;
const NONE = -1;
const V4_STRIDE = 3; // [key, length, rule + 1]
const V6_STRIDE = 6; // [w0, w1, w2, w3, length, rule + 1]

function hash(w0: number, w1: number, w2: number, w3: number, len: number): number {
  let h = Math.imul(w0 ^ Math.imul(len, 0x27d4eb2f), 0x9e3779b1);
  h = Math.imul(h ^ w1 ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ w2 ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ w3 ^ (h >>> 16), 0x9e3779b1);
  return h ^ (h >>> 15);
}

function word(b: Buffer, off: number): number {
  return (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
}

/** One family's tables; `words` is 1 for IPv4, 4 for IPv6. */
class FamilyTable {
  readonly short = new Int32Array(BLOCKS).fill(NONE);
  readonly lengths: Int32Array;
  readonly stride: number;
  slots: Int32Array;
  mask: number;
  count = 0;

  constructor(readonly words: 1 | 4) {
    this.lengths = new Int32Array(BLOCKS * words);
    this.stride = words === 1 ? V4_STRIDE : V6_STRIDE;
    this.slots = new Int32Array(this.stride * 1024);
    this.mask = 1023;
  }

  /** Slot index of (w, len) or of the empty slot where it would go. */
  find(w0: number, w1: number, w2: number, w3: number, len: number): number {
    const slots = this.slots;
    const stride = this.stride;
    let s = hash(w0, w1, w2, w3, len) & this.mask;
    if (stride === V4_STRIDE) {
      for (;;) {
        const b = s * V4_STRIDE;
        if (slots[b + 2] === 0 || (slots[b] === w0 && slots[b + 1] === len)) return b;
        s = (s + 1) & this.mask;
      }
    }
    for (;;) {
      const b = s * V6_STRIDE;
      if (slots[b + 5] === 0) return b;
      if (slots[b] === w0 && slots[b + 1] === w1 && slots[b + 2] === w2 && slots[b + 3] === w3) {
        if (slots[b + 4] === len) return b;
      }
      s = (s + 1) & this.mask;
    }
  }

  /** Stores a prefix; returns the earlier rule index when it is a duplicate, else NONE. */
  insert(w: Int32Array, len: number, rule: number): number {
    const b = this.find(w[0]!, w[1]!, w[2]!, w[3]!, len);
    const val = this.stride - 1;
    if (this.slots[b + val] !== 0) return this.slots[b + val]! - 1;
    for (let i = 0; i < this.words; i++) this.slots[b + i] = w[i]!;
    this.slots[b + this.words] = len;
    this.slots[b + val] = rule + 1;
    if (len > SHORT_MAX) {
      const bit = len - SHORT_MAX - 1;
      this.lengths[(w[0]! >>> 16) * this.words + (bit >>> 5)]! |= 1 << (bit & 31);
    }
    if (++this.count * 2 > this.mask + 1) this.grow();
    return NONE;
  }

  /** Pushes prefixes of length <= 16 down to the /16 blocks they cover, longest last. */
  fillShort(): void {
    const val = this.stride - 1;
    const byLength: number[][] = Array.from({ length: SHORT_MAX + 1 }, () => []);
    for (let b = 0; b < this.slots.length; b += this.stride) {
      const len = this.slots[b + this.words]!;
      if (this.slots[b + val] !== 0 && len <= SHORT_MAX) byLength[len]!.push(b);
    }
    for (let len = 0; len <= SHORT_MAX; len++) {
      for (const b of byLength[len]!) {
        const first = this.slots[b]! >>> 16;
        this.short.fill(this.slots[b + val]! - 1, first, first + (1 << (SHORT_MAX - len)));
      }
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2);
    this.mask = this.mask * 2 + 1;
    const val = this.stride - 1;
    for (let b = 0; b < old.length; b += this.stride) {
      if (old[b + val] === 0) continue;
      const w1 = this.words === 4 ? old[b + 1]! : 0;
      const w2 = this.words === 4 ? old[b + 2]! : 0;
      const w3 = this.words === 4 ? old[b + 3]! : 0;
      const to = this.find(old[b]!, w1, w2, w3, old[b + this.words]!);
      this.slots.set(old.subarray(b, b + this.stride), to);
    }
  }
}

/** Per rule, plain arrays: (family, words, length) of the network and the tenant index. */
interface NetworkRuleData {
  ruleWords: Int32Array; // 4 per rule
  ruleLength: Uint8Array; // prefix length; IPv6 rules have RULE_V6 added
  ruleTenant: Int32Array;
  tenants: string[];
  tenantFields: Buffer[];
}
const RULE_V6 = 128;

export class NetworkTable {
  readonly size: number;
  /** Rule objects, created on first match; same object for the same rule every time. */
  private readonly cache: (NetworkRule | undefined)[];

  /** Use NetworkTableBuilder. */
  constructor(
    private readonly v4: FamilyTable,
    private readonly v6: FamilyTable,
    private readonly data: NetworkRuleData,
  ) {
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
    const slots = t.slots;
    for (let k = 3; k >= 0; k--) {
      let bits = t.lengths[block * 4 + k]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits ^= 1 << bit;
        const plen = SHORT_MAX + 1 + k * 32 + bit;
        const b = t.find(
          maskWord(w0, plen),
          maskWord(w1, plen - 32),
          maskWord(w2, plen - 64),
          maskWord(w3, plen - 96),
          plen,
        );
        if (slots[b + 5] !== 0) return this.rule(slots[b + 5]! - 1);
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
      const plen = SHORT_MAX + 1 + bit;
      const b = t.find(maskWord(a, plen), 0, 0, 0, plen);
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
    const words = d.ruleWords.subarray(4 * i, 4 * i + 4);
    const rule: NetworkRule = Object.freeze({
      cidr: formatCidr(family, words, family === 6 ? len - RULE_V6 : len),
      tenant: d.tenants[tenant]!,
      csv: d.tenantFields[tenant]!,
    });
    this.cache[i] = rule;
    return rule;
  }
}

export class NetworkTableBuilder {
  private readonly v4 = new FamilyTable(1);
  private readonly v6 = new FamilyTable(4);
  private readonly ruleWords: number[] = [];
  private readonly ruleLength: number[] = [];
  private readonly ruleTenant: number[] = [];
  private readonly tenants = new StringPool();

  /**
   * Adds a rule; throws FieldError for bad CIDR text. Returns the rule's index, or, when
   * the network is already present (also as its IPv4-mapped twin), -1 - (earlier index).
   */
  add(cidr: string, tenant: string): number {
    const c: Cidr = parseCidr(cidr);
    let v6 = c.family === 6;
    let len = c.length;
    const w = c.words;
    if (v6 && len >= 96 && w[0] === 0 && w[1] === 0 && w[2] === 0xffff) {
      v6 = false;
      len -= 96;
      w[0] = w[3]!;
      w[2] = 0;
      w[3] = 0;
    }
    const rule = this.ruleTenant.length;
    const earlier = (v6 ? this.v6 : this.v4).insert(w, len, rule);
    if (earlier !== NONE) return -1 - earlier;
    this.ruleWords.push(w[0]!, w[1]!, w[2]!, w[3]!);
    this.ruleLength.push(v6 ? len + RULE_V6 : len);
    this.ruleTenant.push(this.tenants.add(tenant));
    return rule;
  }

  build(): NetworkTable {
    this.v4.fillShort();
    this.v6.fillShort();
    return new NetworkTable(this.v4, this.v6, {
      ruleWords: Int32Array.from(this.ruleWords),
      ruleLength: Uint8Array.from(this.ruleLength),
      ruleTenant: Int32Array.from(this.ruleTenant),
      tenants: this.tenants.strings,
      tenantFields: this.tenants.fields,
    });
  }
}
