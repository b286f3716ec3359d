// Hand-written dnstap.Dnstap encoder for synthetic traffic: the demo's built-in producer and
// the load generator build millions of frames per second with it, so it writes straight
// into a caller's buffer (two passes: size the Message, then write) and allocates nothing
// in encodeInto(). Output is canonical protobuf (minimal varints, fields in number order,
// Dnstap.type last as real producers write it), decodable by protobufjs and any dnstap tool.

import { varintSize, writeVarint } from '../kit/bytes';
import { intRangeProblem, isIntIn } from '../kit/options';

/**
 * What to encode. Absent = `undefined`, `null` (bytes) or a negative number such as
 * ABSENT from view.ts (numbers), mirroring DnstapView. Bytes are written verbatim (addresses are 4 or
 * 16 raw octets, messages and query_zone are DNS wire format). Numbers must be integers:
 * enums, ports and nanoseconds in [0, 2^32), seconds in [0, 2^53).
 */
export interface DnstapFields {
  identity?: Uint8Array | null;
  version?: Uint8Array | null;
  /** Message.type (MessageType in view.ts); required, Dnstap.type is always MESSAGE. */
  type: number;
  socketFamily?: number;
  socketProtocol?: number;
  queryAddress?: Uint8Array | null;
  responseAddress?: Uint8Array | null;
  queryPort?: number;
  responsePort?: number;
  queryTimeSec?: number;
  queryTimeNsec?: number;
  queryMessage?: Uint8Array | null;
  queryZone?: Uint8Array | null;
  responseTimeSec?: number;
  responseTimeNsec?: number;
  responseMessage?: Uint8Array | null;
}

const DNSTAP_TYPE_MESSAGE = 1;
const MAX_UINT32 = 0xffffffff;
/** Up to this many bytes, copying in a loop is faster than Uint8Array.set(). */
const SHORT_COPY = 8;
// Tags (field number << 3 | wire type); every field number here is below 16: one byte.
const TAG_IDENTITY = 0x0a;
const TAG_VERSION = 0x12;
const TAG_MESSAGE = 0x72;
const TAG_DNSTAP_TYPE = 0x78;

/** Absent = undefined or negative (ABSENT); NaN counts as present so that it is rejected. */
function present(v: number | undefined): v is number {
  return v !== undefined && !(v < 0);
}

const rangeError = (message: string) => new RangeError(message);

function checkUint(name: string, v: number, max: number): void {
  if (!isIntIn(v, 0, max)) throw rangeError(`DnstapEncoder: ${intRangeProblem(name, v, 0, max)}`);
}

function bytesSize(b: Uint8Array | null | undefined): number {
  return b == null ? 0 : 1 + varintSize(b.length) + b.length;
}

function writeBytes(buf: Uint8Array, p: number, tag: number, b: Uint8Array | null | undefined): number {
  if (b == null) return p;
  buf[p++] = tag;
  const n = b.length;
  p = writeVarint(buf, p, n);
  // A JS loop beats the native call of set() for the short fields (addresses, names).
  if (n > SHORT_COPY) buf.set(b, p);
  else for (let i = 0; i < n; i++) buf[p + i] = b[i];
  return p + n;
}

function uintSize(name: string, v: number | undefined, max: number): number {
  if (!present(v)) return 0;
  checkUint(name, v, max);
  return 1 + varintSize(v);
}

function writeUint(buf: Uint8Array, p: number, tag: number, v: number | undefined): number {
  if (!present(v)) return p;
  buf[p++] = tag;
  return writeVarint(buf, p, v);
}

function fixed32Size(name: string, v: number | undefined): number {
  if (!present(v)) return 0;
  checkUint(name, v, MAX_UINT32);
  return 5;
}

function writeFixed32(buf: Uint8Array, p: number, tag: number, v: number | undefined): number {
  if (!present(v)) return p;
  buf[p] = tag;
  buf[p + 1] = v & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = (v >>> 16) & 0xff;
  buf[p + 4] = v >>> 24;
  return p + 5;
}

/** Size of the Message body; validates every number on the way (once per frame). */
function messageSize(f: DnstapFields): number {
  if (!present(f.type)) throw new RangeError('DnstapEncoder: type (Message.type) is required');
  return (
    uintSize('type', f.type, MAX_UINT32) +
    uintSize('socketFamily', f.socketFamily, MAX_UINT32) +
    uintSize('socketProtocol', f.socketProtocol, MAX_UINT32) +
    bytesSize(f.queryAddress) +
    bytesSize(f.responseAddress) +
    uintSize('queryPort', f.queryPort, MAX_UINT32) +
    uintSize('responsePort', f.responsePort, MAX_UINT32) +
    uintSize('queryTimeSec', f.queryTimeSec, Number.MAX_SAFE_INTEGER) +
    fixed32Size('queryTimeNsec', f.queryTimeNsec) +
    bytesSize(f.queryMessage) +
    bytesSize(f.queryZone) +
    uintSize('responseTimeSec', f.responseTimeSec, Number.MAX_SAFE_INTEGER) +
    fixed32Size('responseTimeNsec', f.responseTimeNsec) +
    bytesSize(f.responseMessage)
  );
}

export class DnstapEncoder {
  /** Bytes encodeInto() will write for `f`. */
  encodedLength(f: DnstapFields): number {
    const msg = messageSize(f);
    return bytesSize(f.identity) + bytesSize(f.version) + 1 + varintSize(msg) + msg + 2;
  }

  /**
   * Writes the Dnstap payload for `f` at buf[offset..] and returns its length. Throws a
   * RangeError, writing nothing, when a number is out of range or the buffer is too short.
   * To frame it for Frame Streams without a copy, encode at offset + 4 and write the
   * returned length big-endian in front.
   */
  encodeInto(f: DnstapFields, buf: Uint8Array, offset: number): number {
    const msg = messageSize(f);
    const total = bytesSize(f.identity) + bytesSize(f.version) + 1 + varintSize(msg) + msg + 2;
    if (!(offset >= 0 && total <= buf.length - offset)) {
      throw new RangeError(`DnstapEncoder: ${total} bytes do not fit at offset ${offset} of ${buf.length}`);
    }
    let p = writeBytes(buf, offset, TAG_IDENTITY, f.identity);
    p = writeBytes(buf, p, TAG_VERSION, f.version);
    buf[p++] = TAG_MESSAGE;
    p = writeVarint(buf, p, msg);
    p = writeUint(buf, p, 0x08, f.type);
    p = writeUint(buf, p, 0x10, f.socketFamily);
    p = writeUint(buf, p, 0x18, f.socketProtocol);
    p = writeBytes(buf, p, 0x22, f.queryAddress);
    p = writeBytes(buf, p, 0x2a, f.responseAddress);
    p = writeUint(buf, p, 0x30, f.queryPort);
    p = writeUint(buf, p, 0x38, f.responsePort);
    p = writeUint(buf, p, 0x40, f.queryTimeSec);
    p = writeFixed32(buf, p, 0x4d, f.queryTimeNsec);
    p = writeBytes(buf, p, 0x52, f.queryMessage);
    p = writeBytes(buf, p, 0x5a, f.queryZone);
    p = writeUint(buf, p, 0x60, f.responseTimeSec);
    p = writeFixed32(buf, p, 0x6d, f.responseTimeNsec);
    p = writeBytes(buf, p, 0x72, f.responseMessage);
    buf[p++] = TAG_DNSTAP_TYPE;
    buf[p++] = DNSTAP_TYPE_MESSAGE;
    return p - offset;
  }

  /** Convenience (allocates): the payload for `f` in a new Buffer of exactly its size. */
  encode(f: DnstapFields): Buffer {
    const out = Buffer.allocUnsafe(this.encodedLength(f));
    this.encodeInto(f, out, 0);
    return out;
  }
}
