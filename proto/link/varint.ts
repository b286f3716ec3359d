// Protobuf varint and field-skipping primitives for the hand-written Batch codec. Values
// are JavaScript numbers, exact up to 2^53-1; the link never needs more (seq is capped
// there), so there is no BigInt or Long on the hot path.

import { MAX_SEQ } from './constants';

/** Where the last readVarint() ended: a second return value without allocating. */
export const VARINT = { next: 0 };

/** readVarint() results that are not values. */
export const VARINT_TRUNCATED = -1;
export const VARINT_TOO_LARGE = -2;

/**
 * Reads the varint at buf[p] (p < end required). Returns its value and sets VARINT.next to
 * the byte after it; VARINT_TRUNCATED when `end` cuts it, VARINT_TOO_LARGE when it is longer
 * than 10 bytes or its value exceeds 2^53-1 (padded encodings of small values are fine).
 */
export function readVarint(buf: Uint8Array, p: number, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= end) return VARINT_TRUNCATED;
    const b = buf[p++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      VARINT.next = p;
      return value > MAX_SEQ ? VARINT_TOO_LARGE : value;
    }
    scale *= 128;
  }
  return VARINT_TOO_LARGE;
}

// The varint writer is proto/kit/bytes.ts (one for the dnstap encoder and the link codec).

/**
 * Skips the value of a field whose tag (already read) is `tag` and which starts at buf[p].
 * Returns the offset after it, or -1 when it is malformed: field number 0, a group (3, 4:
 * deprecated and never used by link.proto), an undefined wire type (6, 7), or a value that
 * runs past `end`.
 */
export function skipField(buf: Uint8Array, p: number, end: number, tag: number): number {
  if (tag < 8 || tag > 0xffffffff) return -1;
  switch (tag & 7) {
    case 0: {
      // Any 64-bit value is legal here, so do not use readVarint's 2^53 cap.
      for (let i = 0; i < 10; i++) {
        if (p >= end) return -1;
        if (buf[p++]! < 0x80) return p;
      }
      return -1;
    }
    case 1:
      return end - p >= 8 ? p + 8 : -1;
    case 2: {
      const len = readVarint(buf, p, end);
      if (len < 0 || end - VARINT.next < len) return -1;
      return VARINT.next + len;
    }
    case 5:
      return end - p >= 4 ? p + 4 : -1;
    default:
      return -1;
  }
}
