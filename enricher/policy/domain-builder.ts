// Builds a DomainTable from canonical suffixes (names.ts). Insertion uses a growable
// node list with its own hash index; build() then lays the final nodes out as slots of
// one right-sized hash table (domains.ts), parents before children, so every parent
// reference in the final table is a slot number known when the child is placed.

import { ByteStore, csvField, StringPool } from './csv';
import {
  DomainTable,
  type DomainTableData,
  FILTER_BITS_PER_NODE,
  FILTER_SHIFT,
  filterBits,
  HAS_CHILDREN,
  INLINE_LABEL_BYTES,
  labelHash,
  NO_RULE,
  S_HASH,
  S_LABEL,
  S_LEN,
  S_PARENT,
  S_RULE,
  SLOT_STRIDE,
  TOP,
} from './domains';
import { ROOT_SUFFIX, splitLabels } from './names';

/** Final table load factor stays at or below this (linear probing, misses end at an empty slot). */
const MAX_LOAD = 0.6;

function grow(a: Int32Array, need: number): Int32Array {
  if (need <= a.length) return a;
  const grown = new Int32Array(Math.max(a.length * 2, need));
  grown.set(a);
  return grown;
}

export class DomainTableBuilder {
  // Build-time nodes; node 0 is the root. Per node: parent, label offset, label length, rule.
  private parent: Int32Array = new Int32Array(1024);
  private labelOff: Int32Array = new Int32Array(1024);
  private labelLen = new Uint8Array(1024);
  private hasChildren = new Uint8Array(1024);
  private ruleOf: Int32Array = new Int32Array(1024).fill(NO_RULE);
  private nodeCount = 1;
  /** Build-time index: node + 1 per slot, 0 empty; keys hashed by (parent node, label). */
  private index = new Int32Array(2048);
  private labels = Buffer.allocUnsafe(1 << 16);
  private labelBytes = 0;
  private readonly ruleNode: number[] = [];
  private readonly ruleCategory: number[] = [];
  private readonly ruleAction: number[] = [];
  private readonly strings = new StringPool();
  private readonly csv = new ByteStore();
  private readonly starts = new Int32Array(256);

  /**
   * Adds a rule for a canonical suffix. Returns the rule's index, or, when the suffix is
   * already present, -1 - (index of the earlier rule) and adds nothing.
   */
  add(suffix: string, category: string, action: string): number {
    const count = splitLabels(suffix, this.starts);
    let node = 0;
    let end = suffix.length;
    for (let i = count - 1; i >= 0; i--) {
      const start = this.starts[i]!;
      node = this.child(node, suffix, start, end);
      end = start - 1;
    }
    const existing = this.ruleOf[node]!;
    if (existing !== NO_RULE) return -1 - existing;
    const rule = this.ruleNode.length;
    const cat = this.strings.add(category);
    const act = this.strings.add(action);
    this.ruleOf[node] = rule;
    this.ruleNode.push(node);
    this.ruleCategory.push(cat);
    this.ruleAction.push(act);
    const shown = suffix === ROOT_SUFFIX ? '.' : suffix;
    const texts = this.strings.fieldTexts;
    this.csv.append(texts[cat] + ',' + texts[act] + ',' + csvField(shown));
    return rule;
  }

  /** Finds or creates the node for label suffix[start..end) under `parent`. */
  private child(parent: number, suffix: string, start: number, end: number): number {
    const len = end - start;
    if (this.labelBytes + len > this.labels.length) {
      const bigger = Buffer.allocUnsafe(this.labels.length * 2);
      this.labels.copy(bigger, 0, 0, this.labelBytes);
      this.labels = bigger;
    }
    // The label goes to the end of `labels` first; it stays there only if it is new.
    const at = this.labelBytes;
    const labels = this.labels;
    for (let j = 0; j < len; j++) labels[at + j] = suffix.charCodeAt(start + j);
    const mask = this.index.length - 1;
    let s = labelHash(parent, labels, at, at + len) & mask;
    for (let id = this.index[s]!; id !== 0; s = (s + 1) & mask, id = this.index[s]!) {
      const n = id - 1;
      if (this.parent[n] !== parent || this.labelLen[n] !== len) continue;
      const off = this.labelOff[n]!;
      let j = 0;
      while (j < len && labels[off + j] === labels[at + j]) j++;
      if (j === len) return n;
    }
    const n = this.nodeCount++;
    if (n >= this.parent.length) {
      const size = this.parent.length * 2;
      this.parent = grow(this.parent, size);
      this.labelOff = grow(this.labelOff, size);
      const lens = new Uint8Array(size);
      lens.set(this.labelLen);
      this.labelLen = lens;
      const kids = new Uint8Array(size);
      kids.set(this.hasChildren);
      this.hasChildren = kids;
      const old = this.ruleOf.length;
      this.ruleOf = grow(this.ruleOf, size);
      this.ruleOf.fill(NO_RULE, old);
    }
    this.parent[n] = parent;
    this.labelOff[n] = at;
    this.labelLen[n] = len;
    this.hasChildren[parent] = 1;
    this.labelBytes += len;
    this.index[s] = n + 1;
    if (this.nodeCount * 2 > this.index.length) this.reindex();
    return n;
  }

  private reindex(): void {
    const index = new Int32Array(this.index.length * 2);
    const mask = index.length - 1;
    for (let n = 1; n < this.nodeCount; n++) {
      const off = this.labelOff[n]!;
      let s = labelHash(this.parent[n]!, this.labels, off, off + this.labelLen[n]!) & mask;
      while (index[s] !== 0) s = (s + 1) & mask;
      index[s] = n + 1;
    }
    this.index = index;
  }

  finish(): DomainTableData {
    let capacity = 16;
    while ((this.nodeCount - 1) / capacity > MAX_LOAD) capacity *= 2;
    const slots = new Int32Array(capacity * SLOT_STRIDE);
    const mask = capacity - 1;
    const slotOf = new Int32Array(this.nodeCount);
    slotOf[0] = TOP;
    let overflowBytes = 0;
    for (let n = 1; n < this.nodeCount; n++)
      if (this.labelLen[n]! > INLINE_LABEL_BYTES) overflowBytes += this.labelLen[n]!;
    const overflow = Buffer.alloc(overflowBytes);
    let overflowUsed = 0;
    let filterWords = 1;
    while (filterWords * 32 < (this.nodeCount - 1) * FILTER_BITS_PER_NODE) filterWords *= 2;
    const filter = new Int32Array(filterWords);
    // Nodes were created parent first, so slotOf[parent] is always set when needed.
    for (let n = 1; n < this.nodeCount; n++) {
      const parentSlot = slotOf[this.parent[n]!]!;
      const off = this.labelOff[n]!;
      const len = this.labelLen[n]!;
      const h = labelHash(parentSlot, this.labels, off, off + len);
      filter[(h >>> FILTER_SHIFT) & (filterWords - 1)]! |= filterBits(h);
      let s = h & mask;
      while (slots[s * SLOT_STRIDE + S_LEN] !== 0) s = (s + 1) & mask;
      const b = s * SLOT_STRIDE;
      slots[b + S_HASH] = h;
      slots[b + S_PARENT] = parentSlot;
      slots[b + S_RULE] = this.ruleOf[n]!;
      slots[b + S_LEN] = len | (this.hasChildren[n] === 1 ? HAS_CHILDREN : 0);
      if (len <= INLINE_LABEL_BYTES) {
        for (let j = 0; j < len; j++)
          slots[b + S_LABEL + (j >> 2)]! |= this.labels[off + j]! << (8 * (j & 3));
      } else {
        slots[b + S_LABEL] = overflowUsed;
        overflowUsed += this.labels.copy(overflow, overflowUsed, off, off + len);
      }
      slotOf[n] = s;
    }
    const [csvBytes, csvStarts] = this.csv.finish();
    return {
      slots,
      filter,
      overflow,
      rootRule: this.ruleOf[0]!,
      ruleSlot: Int32Array.from(this.ruleNode, (n) => slotOf[n]!),
      ruleCategory: Int32Array.from(this.ruleCategory),
      ruleAction: Int32Array.from(this.ruleAction),
      strings: this.strings.strings,
      csvBytes,
      csvStarts,
    };
  }

  build(): DomainTable {
    return new DomainTable(this.finish());
  }
}
