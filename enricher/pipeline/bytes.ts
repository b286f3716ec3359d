// Byte-level writers for the CSV row encoder: numbers and timestamps written
// straight into the row buffer, so a row is built without intermediate strings.

/** "00".."99": DIGIT_PAIRS[2k], DIGIT_PAIRS[2k+1] are the digits of k. */
const DIGIT_PAIRS = new Uint8Array(200);
for (let k = 0; k < 100; k++) {
  DIGIT_PAIRS[2 * k] = 48 + ((k / 10) | 0);
  DIGIT_PAIRS[2 * k + 1] = 48 + (k % 10);
}

/** "000".."999": the three digits of k as bytes 0..2 of a little-endian word. */
const DIGIT_TRIPLES = new Uint32Array(1000);
for (let k = 0; k < 1000; k++) {
  DIGIT_TRIPLES[k] = (48 + ((k / 100) | 0)) | ((48 + (((k / 10) | 0) % 10)) << 8) | ((48 + (k % 10)) << 16);
}

/** Writes a non-negative integer (< 2^53) in decimal; returns the new position. */
export function writeUint(buf: Buffer, pos: number, n: number): number {
  if (n < 10) {
    buf[pos] = 48 + n;
    return pos + 1;
  }
  if (n > 0x7fffffff) return writeBigUint(buf, pos, n);
  // Small integers: int32 arithmetic (`| 0`) is several times faster than Math.floor; the
  // length by comparison, the digits two at a time from a table.
  const len =
    n < 100
      ? 2
      : n < 1000
        ? 3
        : n < 10_000
          ? 4
          : n < 100_000
            ? 5
            : n < 1_000_000
              ? 6
              : n < 10_000_000
                ? 7
                : n < 100_000_000
                  ? 8
                  : n < 1_000_000_000
                    ? 9
                    : 10;
  let end = pos + len;
  while (n >= 100) {
    const q = (n / 100) | 0;
    const r = (n - q * 100) << 1;
    buf[--end] = DIGIT_PAIRS[r + 1]!;
    buf[--end] = DIGIT_PAIRS[r]!;
    n = q;
  }
  if (n >= 10) {
    buf[end - 1] = DIGIT_PAIRS[(n << 1) + 1]!;
    buf[end - 2] = DIGIT_PAIRS[n << 1]!;
  } else buf[end - 1] = 48 + n;
  return pos + len;
}

function writeBigUint(buf: Buffer, pos: number, n: number): number {
  let len = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
  let end = pos + len;
  while (n >= 10) {
    const q = Math.floor(n / 10);
    buf[--end] = 48 + (n - q * 10);
    n = q;
  }
  buf[end - 1] = 48 + n;
  return pos + len;
}

/** 1 to 3 digits of k < 1000, no leading zeros; may store 1 byte past the end. */
function writeUpTo3(buf: Buffer, dv: DataView, pos: number, k: number): number {
  if (k < 10) {
    buf[pos] = 48 + k;
    return pos + 1;
  }
  const w = DIGIT_TRIPLES[k]!;
  if (k < 100) {
    dv.setUint16(pos, w >>> 8, true);
    return pos + 2;
  }
  dv.setUint32(pos, w, true);
  return pos + 3;
}

/**
 * writeUint() for the row encoder: below 10^9 the digits go out as 3-digit words (one store
 * per three digits); may store 1 byte past the end (see writeWords).
 */
export function writeUintWords(buf: Buffer, dv: DataView, pos: number, n: number): number {
  if (n < 1000) return writeUpTo3(buf, dv, pos, n);
  if (!(n < 1_000_000_000)) return writeUint(buf, pos, n);
  let hi = (n / 1000) | 0;
  const lo = n - hi * 1000;
  if (hi < 1000) pos = writeUpTo3(buf, dv, pos, hi);
  else {
    const top = (hi / 1000) | 0;
    pos = writeUpTo3(buf, dv, pos, top);
    hi -= top * 1000;
    dv.setUint32(pos, DIGIT_TRIPLES[hi]!, true);
    pos += 3;
  }
  dv.setUint32(pos, DIGIT_TRIPLES[lo]!, true);
  return pos + 3;
}

/** Writes a signed integer in decimal. */
export function writeInt(buf: Buffer, pos: number, n: number): number {
  if (n < 0) {
    buf[pos++] = 45; // '-'
    n = -n;
  }
  return writeUint(buf, pos, n);
}

export function writeAscii(buf: Buffer, pos: number, s: string): number {
  return pos + buf.write(s, pos, 'latin1');
}

/**
 * Appends src. Short fields (mnemonics, ids, policy values) are copied with a plain loop:
 * Buffer#copy costs ~40 ns of call overhead, several times the copy itself at this size.
 */
export function writeBytes(buf: Buffer, pos: number, src: Uint8Array): number {
  const n = src.length;
  if (n > 64) return pos + Buffer.prototype.copy.call(src, buf, pos);
  for (let i = 0; i < n; i++) buf[pos + i] = src[i]!;
  return pos + n;
}

/**
 * DataView of a row buffer, for 4-byte stores: V8 compiles DataView#setUint32 to one store,
 * where a byte loop costs a bounds check, a load and a store per byte (20 bytes: ~4 ns
 * against ~15). One view per buffer, kept as long as the buffer lives.
 */
export function dataViewOf(buf: Uint8Array): DataView {
  let dv = VIEWS.get(buf);
  if (dv === undefined) {
    dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    VIEWS.set(buf, dv);
  }
  return dv;
}
const VIEWS = new WeakMap<Uint8Array, DataView>();

/** Bytes as little-endian 32-bit words (the last one zero-padded), for writeWords(). */
export function wordsOf(src: Uint8Array): Uint32Array {
  const words = new Uint32Array((src.length + 3) >> 2);
  for (let i = 0; i < src.length; i++) words[i >> 2]! |= src[i]! << ((i & 3) * 8);
  return words;
}

/**
 * Writes the `len` bytes held in `words` (wordsOf) at dv[pos..] four at a time; returns
 * pos + len. Stores up to 3 bytes past the end (the padding), which the caller's next
 * write overwrites: the destination needs that much room past the field.
 */
export function writeWords(dv: DataView, pos: number, words: Uint32Array, len: number): number {
  for (let i = 0, n = words.length; i < n; i++) dv.setUint32(pos + 4 * i, words[i]!, true);
  return pos + len;
}

/**
 * The names of values 0..size-1 (mnemonics) as words for writeWords(), each built on first
 * use: bounded by the value space, never per record.
 */
export class WordTable {
  private readonly words: (Uint32Array | undefined)[];
  private readonly lens: Uint16Array;

  constructor(
    private readonly bytesOf: (n: number) => Uint8Array,
    private readonly size: number,
  ) {
    this.words = new Array(size);
    this.lens = new Uint16Array(size);
  }

  /** Writes the name of n at dv/buf[pos..] (3 bytes of room past it: see writeWords). */
  write(buf: Buffer, dv: DataView, pos: number, n: number): number {
    if (!(n >= 0 && n < this.size)) return writeBytes(buf, pos, this.bytesOf(n));
    const w = this.words[n];
    if (w === undefined) return writeWords(dv, pos, this.add(n), this.lens[n]!);
    return writeWords(dv, pos, w, this.lens[n]!);
  }

  private add(n: number): Uint32Array {
    const bytes = this.bytesOf(n);
    const w = wordsOf(bytes);
    this.words[n] = w;
    this.lens[n] = bytes.length;
    return w;
  }
}

/** Buffers for a table of names, so the hot path copies bytes instead of encoding strings. */
export function encodeNames(names: readonly string[]): Buffer[] {
  return names.map((n) => Buffer.from(n, 'latin1'));
}

/**
 * UTC "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ". The date-time part is cached per second because
 * consecutive records almost always share it.
 */
export class TimestampWriter {
  private lastSec = Number.NaN;
  private readonly prefix = Buffer.alloc(32);
  private prefixLen = 0;
  /** The usual 20-byte prefix "YYYY-MM-DDTHH:MM:SS." as five little-endian words. */
  private readonly prefixWords = new Uint32Array(5);

  /**
   * Writes the timestamp at buf[pos..]; dv is dataViewOf(buf) (looked up when not given).
   * Needs 32 bytes of room.
   */
  write(buf: Buffer, pos: number, sec: number, nsec: number, dv: DataView = dataViewOf(buf)): number {
    if (sec !== this.lastSec) {
      const d = new Date(sec * 1000);
      if (Number.isNaN(d.getTime())) return pos; // beyond the Date range: leave the field empty
      const iso = d.toISOString(); // 2026-11-22T03:18:39.000Z (or ±YYYYYY for far years)
      this.prefixLen = this.prefix.write(iso.slice(0, iso.length - 4), 0, 'latin1');
      this.prefixWords.set(wordsOf(this.prefix.subarray(0, 20)));
      this.lastSec = sec;
    }
    if (this.prefixLen === 20) {
      const w = this.prefixWords;
      dv.setUint32(pos, w[0]!, true);
      dv.setUint32(pos + 4, w[1]!, true);
      dv.setUint32(pos + 8, w[2]!, true);
      dv.setUint32(pos + 12, w[3]!, true);
      dv.setUint32(pos + 16, w[4]!, true);
      pos += 20;
    } else {
      const pre = this.prefix;
      for (let i = 0, n = this.prefixLen; i < n; i++) buf[pos + i] = pre[i]!;
      pos += this.prefixLen;
    }
    if (nsec < 0 || nsec > 999_999_999) nsec = 0;
    // Nine digits, three triples from the table (two int32 divisions), then 'Z': three stores.
    let n = nsec | 0;
    const hi = (n / 1_000_000) | 0;
    n -= hi * 1_000_000;
    const mid = (n / 1000) | 0;
    const a = DIGIT_TRIPLES[hi]!;
    const b = DIGIT_TRIPLES[mid]!;
    const c = DIGIT_TRIPLES[n - mid * 1000]!;
    dv.setUint32(pos, a | (b << 24), true);
    dv.setUint32(pos + 4, (b >>> 8) | (c << 16), true);
    dv.setUint16(pos + 8, (c >>> 16) | (90 << 8), true); // 'Z'
    return pos + 10;
  }
}
