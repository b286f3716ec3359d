// Longest-suffix match of qnames against policy domains, on label boundaries.
//
// Design: a label trie stored as one open-addressing hash table (linear probing) in an
// Int32Array. Each 32-byte slot is a node: (parent slot, label bytes) plus its rule, with
// labels of up to 16 bytes inline, so a probe touches one slot and nothing else. The key
// hash mixes the label four bytes per step, seeded with the parent slot, so a lookup
// hashes each byte of the name once, right-most label first, and verifies a candidate by
// comparing one label. Every suffix of a rule is a node, so the walk stops at the first
// label that is not one, or after a node without children. A small Bloom filter over the
// node hashes (16 bits per node, L2/L3-sized) answers most of those "not a node" probes
// without touching the big table. The lookup allocates nothing; rule objects are created
// on a rule's first match and cached (see `rule()`): a million eager rule objects would
// cost ~165 B each on the V8 heap for rules that may never match.
//
// loadtest/bench-policy.ts, 1M domains, 70% misses / 30% hits at depth 0-3 below a rule,
// Node 20 on the build VM (2 vCPUs shared with other jobs: best of 10 rounds, and the
// range over several runs). Rates include copying each name into a reused view buffer
// (~27 ns), as the DNS parser does per record:
//   this table, hits uniform over all rules (worst case for caches)   4.6-7.9 M lookups/s
//   this table, Zipf-distributed hits (closer to real traffic)        6.7-9.4 M lookups/s
//   Map<string, rule> + latin1Slice at every label boundary           0.6-0.9 M lookups/s
// A/B in one process: the filter is worth +25-35%. Misses alone run at ~13 M/s; uniform
// hits alone at ~3.5 M/s, ~90 ns of which is reaching the cached rule object. A random
// read of the 64 MB table costs ~230 ns on this VM (TLB + DRAM), which is the floor here.

import { normalizeSuffix, splitLabels } from './names';

export interface DomainRule {
  /** The matched suffix in presentation format; '.' for the root rule. */
  readonly suffix: string;
  readonly category: string;
  readonly action: string;
  /** `policy_category,policy_action,matched_domain`, RFC 4180-escaped UTF-8, no commas around. */
  readonly csv: Buffer;
}

// Slot layout (Int32Array, SLOT_STRIDE words). A zero LEN word marks an empty slot.
// Exported as a list so that compiled CommonJS reads them as locals, not `exports.X`,
// on the hot path.
export {
  FILTER_BITS_PER_NODE,
  FILTER_SHIFT,
  HAS_CHILDREN,
  INLINE_LABEL_BYTES,
  LEN_MASK,
  NO_RULE,
  S_HASH,
  S_LABEL,
  S_LEN,
  S_PARENT,
  S_RULE,
  SLOT_STRIDE,
  TOP,
};

const S_HASH = 0;
const S_PARENT = 1; // slot of the parent node; TOP for labels directly under the root
const S_RULE = 2; // rule index or NO_RULE
const S_LEN = 3; // label length | HAS_CHILDREN
const S_LABEL = 4; // bytes 0..15 little-endian, or for longer labels the offset in `overflow`
const SLOT_STRIDE = 8;
const INLINE_LABEL_BYTES = 16;
/** Set on nodes with children: a match on a leaf ends the walk without another probe. */
const HAS_CHILDREN = 1 << 16;
const LEN_MASK = 0xffff;
const TOP = -1;
const NO_RULE = -1;

/**
 * Hash of (parent, label bytes[start..end)), four bytes per step. Lookup and build must
 * agree bit for bit, so both call this one function.
 */
export function labelHash(parent: number, bytes: Uint8Array, start: number, end: number): number {
  let h = Math.imul(parent ^ 0x2545f491, 0x9e3779b1) ^ (end - start);
  let p = start;
  for (; p + 4 <= end; p += 4) {
    h = Math.imul(
      h ^ (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24)),
      0x85ebca6b,
    );
    h ^= h >>> 15;
  }
  if (p < end) {
    let w = 0;
    for (let k = 0; p < end; p++, k += 8) w |= bytes[p]! << k;
    h = Math.imul(h ^ w, 0x85ebca6b);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 13);
}

/** The two filter bits of a hash; the filter word is (h >>> FILTER_SHIFT) & filterMask. */
export function filterBits(h: number): number {
  return (1 << (h & 31)) | (1 << ((h >>> 5) & 31));
}
const FILTER_SHIFT = 10;
/** Filter size per node: 16 bits and two bits set per node give ~1.5% false positives. */
const FILTER_BITS_PER_NODE = 16;

/** What DomainTableBuilder produces; plain typed arrays so it could cross a worker boundary. */
export interface DomainTableData {
  slots: Int32Array;
  /** Blocked Bloom filter over node hashes: most misses end here, in cache, not in the table. */
  filter: Int32Array;
  overflow: Buffer;
  rootRule: number;
  /** Per rule: its slot (-1 for the root rule), category and action string indexes. */
  ruleSlot: Int32Array;
  ruleCategory: Int32Array;
  ruleAction: Int32Array;
  strings: string[];
  /** Rule i's CSV bytes are csvBytes[csvStarts[i]..csvStarts[i+1]). */
  csvBytes: Buffer;
  csvStarts: Int32Array;
}

export class DomainTable {
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly filter: Int32Array;
  private readonly filterMask: number;
  private readonly overflow: Buffer;
  private readonly rootRule: number;
  private readonly data: DomainTableData;
  /** Rule objects, created on first match; same object for the same rule every time. */
  private readonly cache: (DomainRule | undefined)[];
  readonly size: number;

  constructor(data: DomainTableData) {
    this.slots = data.slots;
    this.mask = data.slots.length / SLOT_STRIDE - 1;
    this.filter = data.filter;
    this.filterMask = data.filter.length - 1;
    this.overflow = data.overflow;
    this.rootRule = data.rootRule;
    this.data = data;
    this.size = data.ruleSlot.length;
    this.cache = new Array(this.size);
  }

  /**
   * Rule of the longest suffix of name[0..nameLen) that is a policy domain, ending on a
   * label boundary; the root rule when nothing longer matches; null without a root rule.
   * labelStarts[0..labelCount) are the offsets where labels start (see DnsView).
   */
  lookup(name: Buffer, nameLen: number, labelStarts: Int32Array, labelCount: number): DomainRule | null {
    const slots = this.slots;
    const mask = this.mask;
    let parent = TOP;
    let best = this.rootRule;
    let end = nameLen;
    for (let i = labelCount - 1; i >= 0; i--) {
      const start = labelStarts[i]!;
      const len = end - start;
      const h = labelHash(parent, name, start, end);
      const bits = filterBits(h);
      if ((this.filter[(h >>> FILTER_SHIFT) & this.filterMask]! & bits) !== bits) break;
      let s = h & mask;
      let b = s * SLOT_STRIDE;
      let lenWord = slots[b + S_LEN]!;
      while (lenWord !== 0) {
        if (slots[b + S_HASH] === h && (lenWord & LEN_MASK) === len && slots[b + S_PARENT] === parent) {
          if (
            len <= INLINE_LABEL_BYTES
              ? this.inlineEquals(b, name, start, len)
              : this.overflowEquals(b, name, start, len)
          ) {
            break;
          }
        }
        s = (s + 1) & mask;
        b = s * SLOT_STRIDE;
        lenWord = slots[b + S_LEN]!;
      }
      if (lenWord === 0) break;
      const rule = slots[b + S_RULE]!;
      if (rule !== NO_RULE) best = rule;
      if ((lenWord & HAS_CHILDREN) === 0) break;
      parent = s;
      end = start - 1; // skip the separating dot
    }
    return best === NO_RULE ? null : this.rule(best);
  }

  private inlineEquals(b: number, name: Buffer, start: number, len: number): boolean {
    const slots = this.slots;
    let j = 0;
    for (; j + 4 <= len; j += 4) {
      const p = start + j;
      const w = name[p]! | (name[p + 1]! << 8) | (name[p + 2]! << 16) | (name[p + 3]! << 24);
      if (slots[b + S_LABEL + (j >> 2)] !== w) return false;
    }
    if (j === len) return true;
    let w = 0;
    for (let k = 0; j + k < len; k++) w |= name[start + j + k]! << (8 * k);
    return slots[b + S_LABEL + (j >> 2)] === w;
  }

  private overflowEquals(b: number, name: Buffer, start: number, len: number): boolean {
    const off = this.slots[b + S_LABEL]!;
    const overflow = this.overflow;
    for (let j = 0; j < len; j++) if (overflow[off + j] !== name[start + j]) return false;
    return true;
  }

  /** The rule object for index i (cached after the first call). */
  private rule(i: number): DomainRule {
    const hit = this.cache[i];
    return hit !== undefined ? hit : this.materialize(i);
  }

  private materialize(i: number): DomainRule {
    const d = this.data;
    const rule: DomainRule = Object.freeze({
      suffix: this.suffixOf(d.ruleSlot[i]!),
      category: d.strings[d.ruleCategory[i]!]!,
      action: d.strings[d.ruleAction[i]!]!,
      csv: d.csvBytes.subarray(d.csvStarts[i]!, d.csvStarts[i + 1]!),
    });
    this.cache[i] = rule;
    return rule;
  }

  /** Presentation text of a node: its labels up to the root, left to right. */
  private suffixOf(slot: number): string {
    if (slot < 0) return '.';
    const labels: string[] = [];
    for (let s = slot; s !== TOP; s = this.slots[s * SLOT_STRIDE + S_PARENT]!) {
      const b = s * SLOT_STRIDE;
      const len = this.slots[b + S_LEN]! & LEN_MASK;
      let label = '';
      if (len > INLINE_LABEL_BYTES) {
        label = this.overflow.toString('latin1', this.slots[b + S_LABEL]!, this.slots[b + S_LABEL]! + len);
      } else {
        for (let j = 0; j < len; j++) {
          label += String.fromCharCode((this.slots[b + S_LABEL + (j >> 2)]! >>> (8 * (j & 3))) & 0xff);
        }
      }
      labels.push(label);
    }
    return labels.join('.');
  }

  /**
   * Convenience for tools and tests (allocates): `name` in presentation format, any
   * spelling the document accepts (case, escapes, trailing dot); null when it is invalid.
   */
  lookupName(name: string): DomainRule | null {
    let canonical: string;
    try {
      canonical = normalizeSuffix(name);
    } catch {
      return null;
    }
    const starts = new Int32Array(128);
    const count = splitLabels(canonical, starts);
    return this.lookup(Buffer.from(canonical, 'latin1'), canonical.length, starts, count);
  }
}
