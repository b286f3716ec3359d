// The control messages' fields (link.proto, camelCase names as protobufjs gives them) and a
// small proto3 codec for them, so that the agent and the enricher do not load protobufjs
// and parse link.proto at run time (~3 MiB of the sidecar's RSS). link.proto stays the
// schema: test/unit/link-control.test.ts checks this table against protobufjs' reflection
// of it, and both codecs against each other.
import { type ControlMessageType, MessageType } from './constants';

/** A field's protobuf type; enums by their name (Reject.Code), encoded as int32. */
export type ControlFieldType = 'uint32' | 'uint64' | 'string' | 'bytes' | 'bool' | 'Code';

export interface ControlField {
  readonly name: string;
  readonly id: number;
  readonly type: ControlFieldType;
  readonly repeated: boolean;
}

export interface ControlSchema {
  readonly name: string;
  readonly fieldsArray: readonly ControlField[];
  readonly fields: Readonly<Record<string, ControlField>>;
}

function schema(name: string, ...spec: [string, ControlFieldType, boolean?][]): ControlSchema {
  const fieldsArray = spec.map(([n, type, repeated], i) => ({
    name: n,
    id: i + 1,
    type,
    repeated: repeated === true,
  }));
  const fields: Record<string, ControlField> = Object.create(null);
  for (const f of fieldsArray) fields[f.name] = f;
  return { name, fieldsArray, fields };
}

/** Every control message of link.proto; field numbers are 1, 2, ... in declaration order. */
export const CONTROL_SCHEMAS: Readonly<Record<ControlMessageType, ControlSchema>> = {
  [MessageType.HELLO]: schema(
    'Hello',
    ['protocolVersion', 'uint32'],
    ['minProtocolVersion', 'uint32'],
    ['agentId', 'string'],
    ['incarnation', 'string'],
    ['contentType', 'string'],
    ['authToken', 'bytes'],
    ['software', 'string'],
    ['marksResends', 'bool'],
  ),
  [MessageType.WELCOME]: schema(
    'Welcome',
    ['protocolVersion', 'uint32'],
    ['enricherId', 'string'],
    ['maxInFlightBatches', 'uint32'],
    ['keepaliveIntervalMs', 'uint32'],
    ['maxFrameBytes', 'uint32'],
  ),
  [MessageType.REJECT]: schema(
    'Reject',
    ['code', 'Code'],
    ['message', 'string'],
    ['supportedMinVersion', 'uint32'],
    ['supportedMaxVersion', 'uint32'],
    ['retryAfterMs', 'uint32'],
  ),
  [MessageType.ACK]: schema('Ack', ['seqs', 'uint64', true]),
  [MessageType.DRAIN]: schema('Drain', ['reason', 'string'], ['deadlineMs', 'uint32']),
  [MessageType.PING]: schema('Ping', ['nonce', 'uint64']),
  [MessageType.PONG]: schema('Pong', ['nonce', 'uint64']),
  [MessageType.GOODBYE]: schema('Goodbye', ['reason', 'string']),
};

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

class Writer {
  private buf = Buffer.allocUnsafe(64);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** A non-negative integer up to 2^53-1 as a varint. */
  varint(v: number): void {
    this.room(10);
    while (v > 0x7f) {
      this.buf[this.length++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.length++] = v;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(w: Writer, type: ControlFieldType, v: unknown): void {
  if (type === 'string') w.bytes(Buffer.from(v as string, 'utf8'));
  else if (type === 'bytes') w.bytes(v as Uint8Array);
  else if (type === 'bool') w.varint(v ? 1 : 0);
  else w.varint(v as number);
}

function isZero(v: unknown): boolean {
  return v === 0 || v === false || v === '' || (v instanceof Uint8Array && v.length === 0);
}

/**
 * The body of a message whose values are already checked (control.ts): the fields present
 * and not zero in field order, repeated numbers packed, as protobufjs writes them.
 */
export function encodeControlBody(s: ControlSchema, message: Readonly<Record<string, unknown>>): Buffer {
  const w = new Writer();
  for (const f of s.fieldsArray) {
    const v = message[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      const values = v as number[];
      if (values.length === 0) continue;
      const packed = new Writer();
      for (const n of values) packed.varint(n);
      w.varint(f.id * 8 + WIRE_LEN);
      w.bytes(packed.finish());
    } else if (!isZero(v)) {
      // proto3 implicit presence: a zero, empty or false value is not written.
      const isLen = f.type === 'string' || f.type === 'bytes';
      w.varint(f.id * 8 + (isLen ? WIRE_LEN : WIRE_VARINT));
      writeScalar(w, f.type, v);
    }
  }
  return w.finish();
}

/** Thrown by the decoder; control.ts turns it into LINK_BAD_MESSAGE naming the message. */
export class MalformedControl extends Error {}

class Reader {
  constructor(
    private readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  /** The low 32 bits of the last varint read, exact (uint32 and enum fields use these). */
  low32 = 0;

  /** A varint as a Number: exact up to 2^53-1, approximate above (uint64 fields refuse those). */
  varint(): number {
    let value = 0;
    let scale = 1;
    let low = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end)
        throw new MalformedControl(`index out of range: ${this.pos} + 1 > ${this.end}`);
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (i < 5) low = (low | ((b & 0x7f) << (7 * i))) >>> 0;
      if (b < 0x80) {
        this.low32 = low;
        return value;
      }
      scale *= 128;
    }
    throw new MalformedControl('invalid varint encoding');
  }

  length(): number {
    const n = this.varint();
    if (n > this.end - this.pos)
      throw new MalformedControl(`index out of range: ${this.pos} + ${n} > ${this.end}`);
    return n;
  }

  skip(n: number): void {
    if (n > this.end - this.pos)
      throw new MalformedControl(`index out of range: ${this.pos} + ${n} > ${this.end}`);
    this.pos += n;
  }

  skipField(wire: number, depth = 0): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.skip(8);
    else if (wire === WIRE_LEN) this.skip(this.length());
    else if (wire === WIRE_I32) this.skip(4);
    else if (wire === 3 && depth < 32) {
      // A group (proto2): skip to its end tag.
      for (;;) {
        const tag = this.varint();
        if ((tag & 7) === 4) return;
        this.skipField(tag & 7, depth + 1);
      }
    } else throw new MalformedControl(`invalid wire type ${wire} at offset ${this.pos}`);
  }
}

function zero(f: ControlField): unknown {
  if (f.repeated) return [];
  if (f.type === 'string') return '';
  if (f.type === 'bytes') return Buffer.alloc(0);
  if (f.type === 'bool') return false;
  return 0;
}

/** A varint field's value as protobufjs reads it (uint32 truncated, enum as int32, uint64 whole). */
function fromVarint(type: ControlFieldType, r: Reader): unknown {
  const v = r.varint();
  if (type === 'bool') return v !== 0;
  if (type === 'uint32') return r.low32;
  if (type === 'Code') return r.low32 | 0;
  return v; // uint64: control.ts refuses values above 2^53-1
}

/**
 * Decodes body buf[start, end): every field present (zero when absent, proto3), unknown
 * fields skipped, repeated numbers packed or not. Throws MalformedControl.
 */
export function decodeControlBody(
  s: ControlSchema,
  buf: Uint8Array,
  start: number,
  end: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of s.fieldsArray) out[f.name] = zero(f);
  const r = new Reader(buf, start, end);
  while (r.pos < end) {
    const tag = r.varint();
    if (tag < 8 || tag > 0xffffffff) throw new MalformedControl(`invalid tag ${tag} at offset ${r.pos}`);
    const wire = tag % 8;
    const f = s.fieldsArray[Math.floor(tag / 8) - 1];
    if (f === undefined) {
      r.skipField(wire);
      continue;
    }
    if (f.type === 'string' || f.type === 'bytes') {
      if (wire !== WIRE_LEN) throw new MalformedControl(`${f.name}: wire type ${wire}, expected 2`);
      const n = r.length();
      out[f.name] =
        f.type === 'string'
          ? Buffer.from(buf.buffer, buf.byteOffset + r.pos, n).toString('utf8')
          : Buffer.from(buf.subarray(r.pos, r.pos + n));
      r.pos += n;
    } else if (f.repeated && wire === WIRE_LEN) {
      const n = r.length();
      const list = out[f.name] as unknown[];
      const packed = new Reader(buf, r.pos, r.pos + n);
      while (packed.pos < packed.end) list.push(fromVarint(f.type, packed));
      r.pos += n;
    } else if (wire === WIRE_VARINT) {
      const v = fromVarint(f.type, r);
      if (f.repeated) (out[f.name] as unknown[]).push(v);
      else out[f.name] = v;
    } else {
      throw new MalformedControl(`${f.name}: wire type ${wire}, expected 0`);
    }
  }
  return out;
}
