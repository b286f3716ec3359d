// Test-only link protocol byte builder, written independently of proto/link (a production
// encoder must not check itself). Deliberately naive: BigInt varints and number[] bytes,
// with explicit control over what real encoders never do: wrong lengths, padded varints,
// unknown fields, any field order, wrong wire types. The numbers below are restated from
// LINK.md on purpose rather than imported.
import { prng, randInt } from '../../loadtest/prng';

export const T = {
  HELLO: 1,
  WELCOME: 2,
  REJECT: 3,
  BATCH: 4,
  ACK: 5,
  DRAIN: 6,
  PING: 7,
  PONG: 8,
  GOODBYE: 9,
} as const;

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

/** Varint bytes of v (0 <= v < 2^64), padded with 0x80 groups to `width` bytes if asked. */
export function varint(v: bigint | number, width = 0): number[] {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    out.push(Number(x & 0x7fn));
    x >>= 7n;
  } while (x > 0n);
  while (out.length < width) out.push(0);
  for (let i = 0; i < out.length - 1; i++) out[i] = out[i]! | 0x80;
  return out;
}

export function u32be(n: number): number[] {
  return [Math.floor(n / 2 ** 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A protobuf body, one field at a time, in whatever order the test wants. */
export class Pb {
  readonly bytes: number[] = [];

  tag(field: number, wire: number, width = 0): this {
    this.bytes.push(...varint((BigInt(field) << 3n) | BigInt(wire), width));
    return this;
  }

  uint(field: number, v: bigint | number, width = 0): this {
    this.tag(field, WIRE.VARINT);
    this.bytes.push(...varint(v, width));
    return this;
  }

  /** Length-delimited field; `lengthWidth` pads the length varint. */
  len(field: number, body: Uint8Array | string | number[], lengthWidth = 0, tagWidth = 0): this {
    const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    this.tag(field, WIRE.LEN, tagWidth);
    this.bytes.push(...varint(b.length, lengthWidth));
    for (const x of b) this.bytes.push(x); // no push(...b): records may be megabytes
    return this;
  }

  fixed32(field: number, v: number): this {
    this.tag(field, WIRE.I32);
    for (let i = 0; i < 4; i++) this.bytes.push((v >>> (8 * i)) & 0xff);
    return this;
  }

  fixed64(field: number, lo: number, hi = 0): this {
    this.tag(field, WIRE.I64);
    for (let i = 0; i < 4; i++) this.bytes.push((lo >>> (8 * i)) & 0xff);
    for (let i = 0; i < 4; i++) this.bytes.push((hi >>> (8 * i)) & 0xff);
    return this;
  }

  raw(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }

  buffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

/** A link frame: be32 N (= 1 + body length unless overridden), type byte, body. */
export function frame(type: number, body: Uint8Array | number[] | Pb = [], lengthOverride?: number): Buffer {
  const b = body instanceof Pb ? body.bytes : body;
  return Buffer.concat([Buffer.from([...u32be(lengthOverride ?? b.length + 1), type]), Buffer.from(b)]);
}

export interface BatchFields {
  seq: number | bigint;
  incarnation?: string;
  sampleRate?: number;
  records: (Uint8Array | string)[];
}

/** A canonical Batch body as protobuf encoders write it: fields 1..4 in order, zeros omitted. */
export function batchBody(f: BatchFields): Buffer {
  const pb = new Pb();
  if (BigInt(f.seq) !== 0n) pb.uint(1, f.seq);
  if (f.incarnation) pb.len(2, f.incarnation);
  if (f.sampleRate) pb.uint(3, f.sampleRate);
  for (const r of f.records) pb.len(4, typeof r === 'string' ? Buffer.from(r, 'latin1') : r);
  return pb.buffer();
}

export function batchFrame(f: BatchFields): Buffer {
  return frame(T.BATCH, batchBody(f));
}

/** One frame of every type, bodies written field by field with the builder. */
export function oneOfEach(): Buffer {
  return Buffer.concat([
    frame(T.HELLO, new Pb().uint(1, 1).len(3, 'agent-0').len(4, 'inc-1').len(5, 'protobuf:dnstap.Dnstap')),
    frame(T.WELCOME, new Pb().uint(1, 1).len(2, 'enricher-0').uint(3, 32).uint(4, 15000)),
    frame(T.REJECT, new Pb().uint(1, 8).len(2, 'overloaded').uint(3, 1).uint(4, 1).uint(5, 250)),
    batchFrame({ seq: 7, incarnation: 'inc-1', sampleRate: 2, records: ['abc', 'x'.repeat(300), ''] }),
    frame(T.ACK, new Pb().len(1, [5, 6, ...[0x80, 0x01]])),
    frame(T.DRAIN, new Pb().len(1, 'shutdown').uint(2, 20000)),
    frame(T.PING, new Pb().uint(1, 42)),
    frame(T.PONG), // nonce 0: an empty body, N = 1
    frame(T.GOODBYE, new Pb().len(1, 'bye')),
  ]);
}

/** Reference splitter for a well-formed stream: [type, body] per frame, no limits. */
export function splitLinkFrames(buf: Buffer): { type: number; body: Buffer }[] {
  const out: { type: number; body: Buffer }[] = [];
  let at = 0;
  while (at < buf.length) {
    const n = buf.readUInt32BE(at);
    out.push({ type: buf[at + 4]!, body: buf.subarray(at + 5, at + 4 + n) });
    at += 4 + n;
  }
  if (at !== buf.length) throw new Error(`reference splitter overran: ${at} vs ${buf.length}`);
  return out;
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = randInt(rand, 256);
  return b;
}

/** Splits `buf` into chunks of random sizes in [1, maxChunk]. */
export function randomChunks(buf: Buffer, rand: () => number, maxChunk: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; ) {
    const n = 1 + randInt(rand, maxChunk);
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The whole input, then every two-piece split, then one byte at a time. */
export function everySplit(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input]];
  for (let k = 1; k < input.length; k++) out.push([input.subarray(0, k), input.subarray(k)]);
  out.push([...input].map((b) => Buffer.from([b])));
  return out;
}

/** Data frame payloads of a Frame Streams capture file (START ... STOP), for realistic records. */
export function fstrmPayloads(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at + 4 <= file.length) {
    const n = file.readUInt32BE(at);
    if (n === 0) {
      at += 8 + file.readUInt32BE(at + 4);
      continue;
    }
    out.push(file.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

export { prng, randInt };
