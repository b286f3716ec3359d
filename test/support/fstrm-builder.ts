// Test-only Frame Streams byte builder and reference splitter, written independently of
// proto/framestream so that the production decoder is never checked by its own encoder.
// The builder can also lie (wrong lengths, unknown types) to produce malformed input.
import { prng } from '../../loadtest/prng';

export const CT_DNSTAP = 'protobuf:dnstap.Dnstap';

export const ACCEPT = 1;
export const START = 2;
export const STOP = 3;
export const READY = 4;
export const FINISH = 5;

/** 32-bit big-endian bytes of n. */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b[0] = Math.floor(n / 0x1000000) & 0xff;
  b[1] = (n >> 16) & 0xff;
  b[2] = (n >> 8) & 0xff;
  b[3] = n & 0xff;
  return b;
}

export function bytes(...parts: (Uint8Array | string | number[])[]): Buffer {
  return Buffer.concat(
    parts.map((p) =>
      typeof p === 'string' ? Buffer.from(p, 'latin1') : Array.isArray(p) ? Buffer.from(p) : Buffer.from(p),
    ),
  );
}

/** A data frame: length then payload. `lengthOverride` writes a different length. */
export function data(payload: Uint8Array | string, lengthOverride?: number): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : Buffer.from(payload);
  return bytes(u32(lengthOverride ?? p.length), p);
}

/** A raw control field: type, length (or override), value bytes. */
export function field(type: number, value: string | Uint8Array, lengthOverride?: number): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
  return bytes(u32(type), u32(lengthOverride ?? v.length), v);
}

/** A content type field (field type 1). */
export function ct(value: string): Buffer {
  return field(1, value);
}

/** A control frame: escape, control length (or override), type, fields. */
export function control(type: number, fields: Uint8Array[] = [], lengthOverride?: number): Buffer {
  const body = bytes(u32(type), ...fields);
  return bytes(u32(0), u32(lengthOverride ?? body.length), body);
}

export const start = (type: string | null = CT_DNSTAP): Buffer =>
  control(START, type === null ? [] : [ct(type)]);
export const stop = (): Buffer => control(STOP);
export const ready = (...types: string[]): Buffer => control(READY, types.map(ct));
export const accept = (...types: string[]): Buffer => control(ACCEPT, types.map(ct));
export const finish = (): Buffer => control(FINISH);

/** A whole capture file as the reference defines it. */
export function file(payloads: (Uint8Array | string)[], type: string = CT_DNSTAP): Buffer {
  return bytes(start(type), ...payloads.map((p) => data(p)), stop());
}

export type RefEvent =
  | { kind: 'data'; offset: number; length: number }
  | { kind: 'control'; offset: number; type: number; contentTypes: string[] };

/**
 * Reference splitter for well-formed input: walks the frames of a whole buffer with no
 * limits and no incremental state. Payload offsets are absolute in `buf`.
 */
export function splitFrames(buf: Buffer): RefEvent[] {
  const out: RefEvent[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = buf.readUInt32BE(at);
    if (len > 0) {
      out.push({ kind: 'data', offset: at + 4, length: len });
      at += 4 + len;
      continue;
    }
    const clen = buf.readUInt32BE(at + 4);
    const type = buf.readUInt32BE(at + 8);
    const contentTypes: string[] = [];
    let f = at + 12;
    while (f < at + 8 + clen) {
      const flen = buf.readUInt32BE(f + 4);
      contentTypes.push(buf.toString('latin1', f + 8, f + 8 + flen));
      f += 8 + flen;
    }
    out.push({ kind: 'control', offset: at, type, contentTypes });
    at += 8 + clen;
  }
  if (at !== buf.length) throw new Error(`reference splitter overran: ${at} vs ${buf.length}`);
  return out;
}

/** Splits `buf` into chunks of random sizes in [1, maxChunk]. */
export function randomChunks(buf: Buffer, rand: () => number, maxChunk: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const n = 1 + Math.floor(rand() * maxChunk);
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

export { prng };
