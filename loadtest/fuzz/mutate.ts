// Mutations for the fuzz targets (loadtest/fuzz.ts): each case is a valid seed changed by
// 1..4 stacked edits: bit flips, byte insert/delete, a length field set to a boundary value
// or nudged by ±1..8, a boundary integer written anywhere, a splice of two seeds, a cut, a
// duplicated slice. Seeds say where their length fields are, so length edits hit them
// rather than random bytes (random bytes die at the first check and teach nothing).

import { randInt } from '../prng';

/** A length (or count) field in a seed: `width` bytes big-endian at `at`, or a varint. */
export interface LengthField {
  at: number;
  width: 1 | 2 | 4 | 'varint';
}

export interface Seed {
  bytes: Buffer;
  lengths: LengthField[];
  /** A seed that is invalid on purpose (a refused value): not expected to pass unmutated. */
  bad?: boolean;
}

export type Rand = () => number;

const BOUNDARY_U8 = [0, 1, 2, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xfe, 0xff];
const BOUNDARY_U16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x7fff, 0x8000, 0xfffe, 0xffff];
const BOUNDARY_U32 = [
  0, 1, 2, 3, 4, 5, 8, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0xffff, 0x10000, 0x100000, 0x100001,
  0xffffff, 0x1000000, 0x1000001, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];
const BOUNDARY_VARINT: number[][] = [
  [0],
  [1],
  [0x7f],
  [0x80, 0x01],
  [0xff, 0xff, 0xff, 0xff, 0x0f],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], // 2^53-ish
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 2^64-1
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // 11 bytes
  [0x80], // cut
  [0x80, 0x00], // padded zero
];

export function pick<T>(rand: Rand, list: readonly T[]): T {
  return list[randInt(rand, list.length)]!;
}

function writeBE(b: Buffer, at: number, width: number, v: number): void {
  for (let i = width - 1; i >= 0; i--) {
    if (at + i < b.length) b[at + i] = v & 0xff;
    v = Math.floor(v / 256);
  }
}

function readBE(b: Buffer, at: number, width: number): number {
  let v = 0;
  for (let i = 0; i < width; i++) v = v * 256 + (b[at + i] ?? 0);
  return v;
}

function boundaryFor(rand: Rand, width: 1 | 2 | 4): number {
  return width === 1
    ? pick(rand, BOUNDARY_U8)
    : width === 2
      ? pick(rand, BOUNDARY_U16)
      : pick(rand, BOUNDARY_U32);
}

/** One edit of `b` (may return a new buffer). `seeds` feeds splices. */
export function mutateOnce(rand: Rand, b: Buffer, seed: Seed, seeds: readonly Seed[]): Buffer {
  const n = b.length;
  switch (randInt(rand, 10)) {
    case 0:
    case 1: {
      // bit flips
      if (n === 0) return Buffer.from([randInt(rand, 256)]);
      const out = Buffer.from(b);
      const flips = 1 + randInt(rand, 4);
      for (let i = 0; i < flips; i++) {
        const at = randInt(rand, n);
        out[at] = out[at]! ^ (1 << randInt(rand, 8));
      }
      return out;
    }
    case 2: {
      // insert bytes (random or a boundary byte)
      const at = randInt(rand, n + 1);
      const k = 1 + randInt(rand, rand() < 0.8 ? 4 : 64);
      const ins = Buffer.alloc(k);
      for (let i = 0; i < k; i++) ins[i] = rand() < 0.5 ? pick(rand, BOUNDARY_U8) : randInt(rand, 256);
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    case 3: {
      // delete bytes
      if (n === 0) return b;
      const at = randInt(rand, n);
      const k = 1 + randInt(rand, Math.min(n - at, rand() < 0.8 ? 4 : 64));
      return Buffer.concat([b.subarray(0, at), b.subarray(at + k)]);
    }
    case 4:
    case 5: {
      // length field edit (positions are the seed's; after earlier edits they may be off: fine)
      if (seed.lengths.length === 0) return mutateOnce(rand, b, { bytes: b, lengths: [] }, seeds);
      const f = pick(rand, seed.lengths);
      if (f.at >= n) return b;
      if (f.width === 'varint') {
        let end = f.at;
        while (end < n && b[end]! >= 0x80) end++;
        const v = pick(rand, BOUNDARY_VARINT);
        return Buffer.concat([b.subarray(0, f.at), Buffer.from(v), b.subarray(Math.min(end + 1, n))]);
      }
      const out = Buffer.from(b);
      if (rand() < 0.5) writeBE(out, f.at, f.width, boundaryFor(rand, f.width));
      else {
        const d = (1 + randInt(rand, 8)) * (rand() < 0.5 ? -1 : 1);
        const max = 2 ** (8 * f.width);
        writeBE(out, f.at, f.width, (readBE(out, f.at, f.width) + d + max) % max);
      }
      return out;
    }
    case 6: {
      // boundary integer anywhere
      if (n === 0) return b;
      const width = pick(rand, [1, 2, 4] as const);
      const out = Buffer.from(b);
      writeBE(out, randInt(rand, n), width, boundaryFor(rand, width));
      return out;
    }
    case 7: {
      // splice: a prefix of this with a suffix of another seed
      const other = pick(rand, seeds).bytes;
      return Buffer.concat([
        b.subarray(0, randInt(rand, n + 1)),
        other.subarray(randInt(rand, other.length + 1)),
      ]);
    }
    case 8: {
      // cut the end
      return b.subarray(0, randInt(rand, n + 1));
    }
    default: {
      // duplicate a slice
      if (n === 0) return b;
      const at = randInt(rand, n);
      const k = 1 + randInt(rand, Math.min(n - at, 32));
      const to = randInt(rand, n + 1);
      return Buffer.concat([b.subarray(0, to), b.subarray(at, at + k), b.subarray(to)]);
    }
  }
}

/** A seed with 1..4 stacked edits; a few cases (1 in 20) keep the seed as it is. */
export function mutate(rand: Rand, seeds: readonly Seed[]): { seed: Seed; bytes: Buffer; mutated: boolean } {
  const seed = pick(rand, seeds);
  if (rand() < 0.05) return { seed, bytes: seed.bytes, mutated: false };
  let b = seed.bytes;
  const edits = 1 + randInt(rand, rand() < 0.7 ? 1 : 4);
  for (let i = 0; i < edits; i++) b = mutateOnce(rand, b, seed, seeds);
  return { seed, bytes: b, mutated: true };
}

/** Splits `b` into 1..8 chunks at random points (socket-like delivery). */
export function chunks(rand: Rand, b: Buffer): Buffer[] {
  const k = rand() < 0.5 ? 1 : 1 + randInt(rand, 8);
  if (k === 1 || b.length < 2) return [b];
  const cuts = new Set<number>();
  for (let i = 1; i < k; i++) cuts.add(1 + randInt(rand, b.length - 1));
  const points = [0, ...[...cuts].sort((x, y) => x - y), b.length];
  const out: Buffer[] = [];
  for (let i = 1; i < points.length; i++) out.push(b.subarray(points[i - 1], points[i]));
  return out;
}
