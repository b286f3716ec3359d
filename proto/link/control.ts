// Control messages (every type but Batch): encoded and decoded by control-codec.ts, a small
// proto3 codec over a table of link.proto's fields (protobufjs is the tests' reference, not a
// run-time dependency: it cost the sidecar ~3 MiB of RSS). They are rare (a handshake per connection, an ack per batch or group of
// batches, a ping per keepalive interval), so a plain object per message costs nothing
// that matters; Batch has its own allocation-free codec in batch-encoder.ts and batch-view.ts.

import {
  type ControlMessageType,
  FRAME_HEADER_SIZE,
  MAX_CONTROL_BODY,
  MAX_SEQ,
  MessageType,
  messageTypeName,
} from './constants';
import {
  CONTROL_SCHEMAS,
  type ControlSchema,
  decodeControlBody,
  encodeControlBody,
  MalformedControl,
} from './control-codec';
import { badMessage, invalidArgument, LinkErrorCode, LinkProtocolError } from './errors';

// Field names are link.proto's in camelCase (protobufjs' default). Decoded messages have
// every field, zero when absent (proto3); messages to encode may leave any field out.

export interface Hello {
  protocolVersion: number;
  minProtocolVersion: number;
  agentId: string;
  incarnation: string;
  contentType: string;
  authToken: Buffer;
  software: string;
  /** The agent sets Batch.resent on possible re-sends; absent/false = an older agent (unknown). */
  marksResends?: boolean;
}

export interface Welcome {
  protocolVersion: number;
  enricherId: string;
  maxInFlightBatches: number;
  keepaliveIntervalMs: number;
  maxFrameBytes: number;
}

export interface Reject {
  /** RejectCode; may be a value this code does not know (a newer enricher). */
  code: number;
  message: string;
  supportedMinVersion: number;
  supportedMaxVersion: number;
  retryAfterMs: number;
}

export interface Ack {
  seqs: number[];
}

export interface Drain {
  reason: string;
  deadlineMs: number;
}

export interface Ping {
  nonce: number;
}

export interface Pong {
  nonce: number;
}

export interface Goodbye {
  reason: string;
}

/** Message shape per type byte. */
export interface ControlMessages {
  [MessageType.HELLO]: Hello;
  [MessageType.WELCOME]: Welcome;
  [MessageType.REJECT]: Reject;
  [MessageType.ACK]: Ack;
  [MessageType.DRAIN]: Drain;
  [MessageType.PING]: Ping;
  [MessageType.PONG]: Pong;
  [MessageType.GOODBYE]: Goodbye;
}

/** What encodeControl takes: any subset of the fields; `authToken` may be a string. */
export type ControlInit<T extends ControlMessageType> = {
  [K in keyof ControlMessages[T]]?: K extends 'authToken' ? Uint8Array | string : ControlMessages[T][K];
};

/** link.proto's fields of a control message type (control-codec.ts; no protobufjs at run time). */
function controlSchema(type: number, what: string): ControlSchema {
  if (type === MessageType.BATCH || !(type >= MessageType.HELLO && type <= MessageType.GOODBYE)) {
    throw invalidArgument(`${what}: ${messageTypeName(type)} is not a control message type`);
  }
  return CONTROL_SCHEMAS[type as ControlMessageType];
}

/** Checks one field value against its protobuf type: protobufjs would silently wrap or coerce. */
function checkValue(msgName: string, field: string, pbType: string, v: unknown): void {
  let ok: boolean;
  let want = `a ${pbType}`;
  if (pbType === 'uint32') ok = Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
  else if (pbType === 'uint64') {
    ok = Number.isSafeInteger(v) && (v as number) >= 0;
    want = 'a uint64 up to 2^53-1';
  } else if (pbType === 'string') ok = typeof v === 'string';
  else if (pbType === 'bytes') ok = v instanceof Uint8Array;
  else if (pbType === 'bool') ok = typeof v === 'boolean';
  else {
    // An enum (Reject.Code): open in proto3, so any non-negative int32 is a valid value.
    ok = Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0x7fffffff;
    want = `a ${pbType} value (non-negative int32)`;
  }
  if (!ok) throw invalidArgument(`${msgName}.${field} must be ${want}, got ${String(v)}`);
}

/**
 * A whole link frame carrying one control message. Throws LINK_INVALID_ARGUMENT for an
 * unknown field or a value of the wrong type or range, LINK_FRAME_TOO_LARGE when the body
 * exceeds MAX_CONTROL_BODY.
 */
export function encodeControl<T extends ControlMessageType>(type: T, message: ControlInit<T>): Buffer {
  const schema = controlSchema(type, 'encodeControl');
  const plain: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message as object)) {
    const field = schema.fields[key];
    if (field === undefined) {
      const known = schema.fieldsArray.map((f) => f.name).join(', ');
      throw invalidArgument(`${schema.name}: unknown field "${key}" (known: ${known})`);
    }
    if (value === undefined) continue;
    const v = key === 'authToken' && typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (field.repeated) {
      if (!Array.isArray(v)) throw invalidArgument(`${schema.name}.${key} must be an array`);
      for (const item of v) checkValue(schema.name, key, field.type, item);
    } else {
      checkValue(schema.name, key, field.type, v);
    }
    plain[key] = v;
  }
  const body = encodeControlBody(schema, plain);
  if (body.length > MAX_CONTROL_BODY) {
    throw new LinkProtocolError(
      LinkErrorCode.FRAME_TOO_LARGE,
      `${schema.name} body of ${body.length} bytes exceeds MAX_CONTROL_BODY (${MAX_CONTROL_BODY})`,
    );
  }
  return encodeFrame(type, body);
}

/** A link frame around an already encoded body: be32 N = 1 + body length, type, body. */
export function encodeFrame(type: number, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  frame.writeUInt32BE(body.length + 1, 0);
  frame[4] = type;
  frame.set(body, FRAME_HEADER_SIZE);
  return frame;
}

/**
 * Decodes the body `buf[start, end)` of a control frame of the given type (as delivered by
 * LinkFrameDecoder). Throws LINK_BAD_MESSAGE when it is not valid protobuf for that type or
 * carries a seq/nonce above 2^53-1.
 */
export function decodeControl<T extends ControlMessageType>(
  type: T,
  buf: Uint8Array,
  start = 0,
  end: number = buf.length,
): ControlMessages[T] {
  const schema = controlSchema(type, 'decodeControl');
  if (end - start > MAX_CONTROL_BODY) {
    throw new LinkProtocolError(
      LinkErrorCode.FRAME_TOO_LARGE,
      `${schema.name} body of ${end - start} bytes exceeds MAX_CONTROL_BODY (${MAX_CONTROL_BODY})`,
      { offset: start },
    );
  }
  let obj: Record<string, unknown>;
  try {
    obj = decodeControlBody(schema, buf, start, end);
  } catch (err) {
    if (!(err instanceof MalformedControl)) throw err;
    throw badMessage(`malformed ${schema.name}: ${err.message}`, start, err);
  }
  // uint64 values past 2^53 came out of toObject rounded: refuse rather than mis-ack.
  for (const field of schema.fieldsArray) {
    if (field.type !== 'uint64') continue;
    const v = obj[field.name];
    const values = Array.isArray(v) ? v : [v];
    for (const n of values) {
      if (!(Number.isSafeInteger(n) && (n as number) <= MAX_SEQ)) {
        throw badMessage(`${schema.name}.${field.name} ${String(n)} exceeds 2^53-1`, start);
      }
    }
  }
  if (type === MessageType.HELLO && !Buffer.isBuffer(obj.authToken)) {
    obj.authToken = Buffer.from(obj.authToken as Uint8Array);
  }
  return obj as unknown as ControlMessages[T];
}
