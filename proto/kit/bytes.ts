// Wire primitives shared by the codecs: big-endian u32 (Frame Streams and link frame
// headers) and protobuf varints (the dnstap encoder and the link Batch codec). Plain
// functions over Uint8Array: no allocation, inlined by V8 on the per-record path.

/** Big-endian unsigned 32-bit integer at buf[at..at+4) (the caller checked the bounds). */
export function readU32(buf: Uint8Array, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

const MAX_UINT32 = 0xffffffff;

/** Bytes of the minimal varint of v (0 <= v <= 2^53-1). */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  let n = 6;
  for (v = Math.floor(v / 0x800000000); v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** Writes the minimal varint of v (0 <= v <= 2^53-1) at buf[p]; returns the offset after it. */
export function writeVarint(buf: Uint8Array, p: number, v: number): number {
  // Above 32 bits bit operators truncate, so peel 7-bit groups off arithmetically first.
  while (v > MAX_UINT32) {
    buf[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v >= 0x80) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  return p;
}
