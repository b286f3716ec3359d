// Builds NetworkTableData from CIDR text: parse (cidr.ts), fold IPv4-mapped IPv6 networks
// into IPv4, insert into per-family hash tables (doubling at half load), then push the
// prefixes of length <= 16 down into the per-/16 block array.

import { parseCidr } from './cidr';
import { StringPool } from './csv';
import {
  BLOCKS,
  type FamilyData,
  findV4,
  findV6,
  NetworkTable,
  type NetworkTableData,
  NONE,
  RULE_V6,
  SHORT_MAX,
  V4_STRIDE,
  V6_STRIDE,
} from './networks';

class FamilyBuilder {
  private slots: Int32Array;
  private count = 0;
  private readonly lengths: Int32Array;
  private readonly stride: number;

  constructor(private readonly words: 1 | 4) {
    this.stride = words === 1 ? V4_STRIDE : V6_STRIDE;
    this.slots = new Int32Array(this.stride * 1024);
    this.lengths = new Int32Array(BLOCKS * words);
  }

  private find(slots: Int32Array, w: ArrayLike<number>, len: number): number {
    return this.words === 1 ? findV4(slots, w[0]!, len) : findV6(slots, w[0]!, w[1]!, w[2]!, w[3]!, len);
  }

  /** Stores a prefix; returns the earlier rule index when it is a duplicate, else NONE. */
  insert(w: Int32Array, len: number, rule: number): number {
    const b = this.find(this.slots, w, len);
    const val = this.stride - 1;
    if (this.slots[b + val] !== 0) return this.slots[b + val]! - 1;
    for (let i = 0; i < this.words; i++) this.slots[b + i] = w[i]!;
    this.slots[b + this.words] = len;
    this.slots[b + val] = rule + 1;
    if (len > SHORT_MAX) {
      const bit = len - SHORT_MAX - 1;
      this.lengths[(w[0]! >>> 16) * this.words + (bit >>> 5)]! |= 1 << (bit & 31);
    }
    if (++this.count * 2 > this.slots.length / this.stride) this.grow();
    return NONE;
  }

  private grow(): void {
    const old = this.slots;
    const slots = new Int32Array(old.length * 2);
    const val = this.stride - 1;
    for (let b = 0; b < old.length; b += this.stride) {
      if (old[b + val] === 0) continue;
      const entry = old.subarray(b, b + this.stride);
      slots.set(entry, this.find(slots, entry, old[b + this.words]!));
    }
    this.slots = slots;
  }

  /** Final arrays, with prefixes <= /16 pushed down to the blocks they cover, longest last. */
  finish(): FamilyData {
    const short = new Int32Array(BLOCKS).fill(NONE);
    const val = this.stride - 1;
    const byLength: number[][] = Array.from({ length: SHORT_MAX + 1 }, () => []);
    for (let b = 0; b < this.slots.length; b += this.stride) {
      const len = this.slots[b + this.words]!;
      if (this.slots[b + val] !== 0 && len <= SHORT_MAX) byLength[len]!.push(b);
    }
    for (let len = 0; len <= SHORT_MAX; len++) {
      for (const b of byLength[len]!) {
        const first = this.slots[b]! >>> 16;
        short.fill(this.slots[b + val]! - 1, first, first + (1 << (SHORT_MAX - len)));
      }
    }
    return { short, lengths: this.lengths, slots: this.slots };
  }
}

export class NetworkTableBuilder {
  private readonly v4 = new FamilyBuilder(1);
  private readonly v6 = new FamilyBuilder(4);
  private readonly ruleWords: number[] = [];
  private readonly ruleLength: number[] = [];
  private readonly ruleTenant: number[] = [];
  private readonly tenants = new StringPool();

  /**
   * Adds a rule; throws FieldError for bad CIDR text. Returns the rule's index, or, when
   * the network is already present (also as its IPv4-mapped twin), -1 - (earlier index).
   */
  add(cidr: string, tenant: string): number {
    const c = parseCidr(cidr);
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

  finish(): NetworkTableData {
    return {
      v4: this.v4.finish(),
      v6: this.v6.finish(),
      ruleWords: Int32Array.from(this.ruleWords),
      ruleLength: Uint8Array.from(this.ruleLength),
      ruleTenant: Int32Array.from(this.ruleTenant),
      tenants: this.tenants.strings,
      tenantFields: this.tenants.fields,
    };
  }

  build(): NetworkTable {
    return new NetworkTable(this.finish());
  }
}
