// HyperLogLog of client addresses under a keyed hash (issue 9 step 3: unique clients per
// hour x tenant x network). The hash is HMAC-SHA-256(key, address): without the key nobody can
// compute which register an address would touch, so a published sketch allows no membership
// test and no enumeration of the (small) address space. Pods that share the key (--aggregates-key)
// write mergeable sketches: the merge is the register-wise maximum.
//
// p = 12: 4096 registers, relative standard error 1.04 / sqrt(4096) = 1.63 %; 99.7 % of
// estimates fall within 3 standard errors (4.9 %). Registers are written as text, one
// character per register ('0' + rank, rank 0..41), 4096 characters: SQL (DuckDB macros, the
// Snowflake JavaScript UDFs in sql/schema/07-aggregates.sql) reads it with SUBSTR/ASCII.
//
// An address's (index, rank) pair is computed once and cached per address (bounded, cleared
// when full), as the pseudonyms are: one HMAC costs ~1 us and clients repeat.

import { createHmac } from 'node:crypto';

export const HLL_P = 12;
export const HLL_M = 1 << HLL_P;
/** Relative standard error of the estimate: 1.04 / sqrt(m). */
export const HLL_RSE = 1.04 / Math.sqrt(HLL_M);
/** Bits of the hash after the index that the rank is taken from. */
const RANK_BITS = 40;
export const HLL_MAX_RANK = RANK_BITS + 1;
/** Register r is written as the character code HLL_ZERO_CHAR + r ('0'..'Y'). */
export const HLL_ZERO_CHAR = 48;
export const HLL_KEY_ID_LABEL = 'snowtap aggregates key id v1';
const CACHE_ENTRIES = 65_536;

/** The keyed (index, rank) of client addresses, packed as index * 64 + rank. */
export class KeyedClientHash {
  private readonly cache4 = new Map<number, number>();
  private readonly cache6 = new Map<string, number>();
  /** HMAC-SHA-256(key, HLL_KEY_ID_LABEL), 64 bits hex: names the key, reveals nothing about it. */
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    this.keyId = createHmac('sha256', key).update(HLL_KEY_ID_LABEL).digest().subarray(0, 8).toString('hex');
  }

  /** The packed (index, rank) of the address a[off, off+len) (4 or 16 bytes); -1 for other lengths. */
  of(a: Uint8Array, off: number, len: number): number {
    if (len === 4 || (len === 16 && isV4Mapped(a, off))) {
      const o = len === 4 ? off : off + 12;
      const k = ((a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]!) >>> 0;
      let v = this.cache4.get(k);
      if (v === undefined) {
        v = this.hash(a, o, 4);
        if (this.cache4.size >= CACHE_ENTRIES) this.cache4.clear();
        this.cache4.set(k, v);
      }
      return v;
    }
    if (len !== 16) return -1;
    const k = Buffer.from(a.buffer, a.byteOffset + off, 16).toString('latin1');
    let v = this.cache6.get(k);
    if (v === undefined) {
      v = this.hash(a, off, 16);
      if (this.cache6.size >= CACHE_ENTRIES) this.cache6.clear();
      this.cache6.set(k, v);
    }
    return v;
  }

  private hash(a: Uint8Array, off: number, len: number): number {
    const h = createHmac('sha256', this.key)
      .update(a.subarray(off, off + len))
      .digest();
    return packedOf(h);
  }
}

/** (index, rank) of a 64-bit-or-longer hash: index = first 12 bits, rank from the next 40. */
export function packedOf(h: Uint8Array): number {
  const index = (h[0]! << 4) | (h[1]! >> 4);
  // The 40 bits after the index: low nibble of h[1], then h[2..5] and the high nibble of h[6].
  let rank = 1;
  let found = false;
  for (let bit = 0; bit < RANK_BITS && !found; bit++) {
    const pos = 12 + bit;
    if ((h[pos >> 3]! >> (7 - (pos & 7))) & 1) found = true;
    else rank++;
  }
  return index * 64 + rank;
}

function isV4Mapped(a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/** Adds a packed (index, rank) to registers (HLL_M bytes). */
export function hllAdd(registers: Uint8Array, packed: number): void {
  const i = packed >>> 6;
  const r = packed & 63;
  if (registers[i]! < r) registers[i] = r;
}

export function hllMergeInto(into: Uint8Array, from: Uint8Array): void {
  for (let i = 0; i < HLL_M; i++) if (into[i]! < from[i]!) into[i] = from[i]!;
}

export function hllText(registers: Uint8Array): string {
  return Buffer.from(registers.map((r) => r + HLL_ZERO_CHAR)).toString('latin1');
}

export function hllFromText(text: string): Uint8Array {
  if (text.length !== HLL_M) throw new Error(`HLL sketch must be ${HLL_M} characters, got ${text.length}`);
  const r = new Uint8Array(HLL_M);
  for (let i = 0; i < HLL_M; i++) {
    const v = text.charCodeAt(i) - HLL_ZERO_CHAR;
    if (v < 0 || v > HLL_MAX_RANK) throw new Error(`HLL sketch has a bad register at ${i}`);
    r[i] = v;
  }
  return r;
}

/**
 * The standard HyperLogLog estimate with linear counting for small cardinalities (Flajolet et
 * al. 2007; Heule et al. 2013's threshold 2.5 m). The same formula as the shipped SQL/JS UDFs.
 */
export function hllEstimate(registers: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < HLL_M; i++) {
    const r = registers[i]!;
    sum += 2 ** -r;
    if (r === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / HLL_M);
  const raw = (alpha * HLL_M * HLL_M) / sum;
  return raw <= 2.5 * HLL_M && zeros > 0 ? HLL_M * Math.log(HLL_M / zeros) : raw;
}
