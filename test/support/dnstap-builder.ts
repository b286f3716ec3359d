// Test-only protobuf byte builder, independent of proto/dnstap/encoder.ts (a production
// encoder must not check itself). Deliberately naive: BigInt varints, a number[] of bytes,
// and explicit control over what real encoders never do: unknown fields, any field order,
// repeats, wrong wire types, padded (non-minimal) varints, raw bytes.
import { prng, randInt } from '../../loadtest/prng';

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

export class PbBuilder {
  readonly bytes: number[] = [];

  /** Minimal varint of v (0 <= v < 2^64), or padded with 0x80 groups to `width` bytes. */
  varint(v: bigint | number, width = 0): this {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n; // int32/int64 negatives are sign-extended to 64 bits
    const out: number[] = [];
    do {
      out.push(Number(x & 0x7fn));
      x >>= 7n;
    } while (x > 0n);
    while (out.length < width) out.push(0);
    for (let i = 0; i < out.length - 1; i++) out[i] |= 0x80;
    this.bytes.push(...out);
    return this;
  }

  tag(field: number, wire: number, width = 0): this {
    return this.varint((BigInt(field) << 3n) | BigInt(wire), width);
  }

  uint(field: number, v: bigint | number, width = 0): this {
    return this.tag(field, WIRE.VARINT).varint(v, width);
  }

  fixed32(field: number, v: number): this {
    this.tag(field, WIRE.I32);
    for (let i = 0; i < 4; i++) this.bytes.push((v >>> (8 * i)) & 0xff);
    return this;
  }

  fixed64(field: number, v: bigint): this {
    this.tag(field, WIRE.I64);
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((v >> (8n * i)) & 0xffn));
    return this;
  }

  /** Length-delimited field: bytes, a string (UTF-8) or a nested builder. */
  len(field: number, body: Uint8Array | string | PbBuilder | number[]): this {
    const b =
      body instanceof PbBuilder
        ? body.bytes
        : typeof body === 'string'
          ? [...Buffer.from(body)]
          : Array.from(body);
    this.tag(field, WIRE.LEN).varint(b.length);
    this.bytes.push(...b);
    return this;
  }

  raw(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }

  build(): Buffer {
    return Buffer.from(this.bytes);
  }
}

export { prng, randInt };
