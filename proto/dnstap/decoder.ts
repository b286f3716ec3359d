// Hand-written lazy decoder for one dnstap.Dnstap protobuf payload (dnstap.proto). It
// fills a reused DnstapView with numbers and (offset, length) pairs into the caller's
// buffer: no copies, no objects, no closures per frame. protobufjs (schema.ts) is the
// reference this is tested against; it allocates a message graph per frame, which is
// what the per-record path cannot afford (see README.md for the measurement).
//
// Protobuf semantics kept: unknown fields of every defined wire type are skipped; a known
// field with an unexpected wire type is skipped like an unknown one (as protoc and
// protobufjs do); the last occurrence of a scalar or bytes field wins; a repeated Message
// field merges into the earlier one (field by field, last wins).
// Deliberate differences from protobufjs, all documented in README.md:
// - missing `required` types are not errors here: the view says ABSENT, and the caller
//   may apply requireTypes(). A frame without a Message still yields identity/version.
// - enum values are kept as raw uint32 numbers, known or not (protobufjs, following proto2
//   closed-enum rules, moves unknown values to unknown fields). A future dnstap type still
//   produces a row that shows the number.
// - groups (wire types 3/4) and varints over 10 bytes are errors (protobufjs skips them).

import { DnstapDecodeError, DnstapErrorCode } from './errors';
import { ABSENT, type DnstapView } from './view';

/** Longest varint protobuf defines: 64 bits in 7-bit groups. */
export const MAX_VARINT_BYTES = 10;
/** Longest tag: protoc and protobufjs read tags as uint32 (5 bytes, last one below 0x10). */
export const MAX_TAG_BYTES = 5;
/** Length prefixes are int32 on the wire, so a field holds at most 2^31 - 1 bytes. */
export const MAX_FIELD_LENGTH = 0x7fffffff;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const TWO_POW_32 = 4294967296;

// Cursor state: one preallocated module-level object, so decoding allocates nothing (it
// measured ~10% faster in V8 than module-level `let`s). decodeDnstap() is synchronous and
// not re-entrant, so sharing it is safe.
const cur = { pos: 0, frameEnd: 0, varLo: 0, varHi: 0 };

function fail(code: DnstapErrorCode, what: string, at: number): never {
  throw new DnstapDecodeError(code, `dnstap: ${what} at offset ${at}`, at);
}

/**
 * A read needed bytes beyond `limit`. At the frame's end the frame is truncated; inside it,
 * the enclosing Message's own length prefix was wrong.
 */
function overrun(limit: number, what: string): never {
  if (limit >= cur.frameEnd)
    fail(DnstapErrorCode.TRUNCATED, `${what} cut off by the end of the frame`, cur.pos);
  fail(DnstapErrorCode.BAD_LENGTH, `${what} runs past the end of the enclosing Message`, cur.pos);
}

/** Reads a tag (uint32 varint). The caller has checked cur.pos < limit. */
function readTag(buf: Buffer, limit: number): number {
  const p = cur.pos;
  const b = buf[p];
  if (b < 0x80) {
    cur.pos = p + 1;
    return b;
  }
  return readLongTag(buf, limit);
}

/** A tag of 2 to MAX_TAG_BYTES bytes (field numbers from 16 up), kept out of readTag so that inlines. */
function readLongTag(buf: Buffer, limit: number): number {
  let p = cur.pos;
  let b = buf[p++];
  let v = b & 0x7f;
  for (let shift = 7; shift < 28; shift += 7) {
    if (p >= limit) overrun(limit, 'tag');
    b = buf[p++];
    v |= (b & 0x7f) << shift;
    if (b < 0x80) {
      cur.pos = p;
      return v >>> 0;
    }
  }
  if (p >= limit) overrun(limit, 'tag');
  b = buf[p];
  if (b >= 0x10) {
    fail(DnstapErrorCode.VARINT_OVERFLOW, `tag longer than ${MAX_TAG_BYTES} bytes or above 2^32`, cur.pos);
  }
  cur.pos = p + 1;
  return (v | (b << 28)) >>> 0;
}

/**
 * Reads a varint of up to MAX_VARINT_BYTES into cur.varLo/cur.varHi (two uint32 halves).
 * Bits past 64 in the 10th byte are dropped, as protoc and protobufjs drop them.
 */
function readVarint(buf: Buffer, limit: number): void {
  let p = cur.pos;
  if (p >= limit) overrun(limit, 'varint');
  let b = buf[p++];
  if (b < 0x80) {
    cur.varLo = b;
    cur.varHi = 0;
    cur.pos = p;
    return;
  }
  let lo = b & 0x7f;
  for (let shift = 7; shift < 28; shift += 7) {
    if (p >= limit) overrun(limit, 'varint');
    b = buf[p++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      cur.varLo = lo >>> 0;
      cur.varHi = 0;
      cur.pos = p;
      return;
    }
  }
  // The 5th byte straddles the halves: 4 bits to the top of lo, 3 to the bottom of hi.
  if (p >= limit) overrun(limit, 'varint');
  b = buf[p++];
  lo |= (b & 0x7f) << 28;
  let hi = (b & 0x7f) >>> 4;
  for (let shift = 3; b >= 0x80; shift += 7) {
    if (p - cur.pos === MAX_VARINT_BYTES) {
      fail(DnstapErrorCode.VARINT_OVERFLOW, `varint longer than ${MAX_VARINT_BYTES} bytes`, cur.pos);
    }
    if (p >= limit) overrun(limit, 'varint');
    b = buf[p++];
    hi |= (b & 0x7f) << shift; // the 10th byte, at shift 31, keeps bit 63 only
  }
  cur.varLo = lo >>> 0;
  cur.varHi = hi >>> 0;
  cur.pos = p;
}

/** Reads a length prefix and checks that the field fits inside `limit`. */
function readLength(buf: Buffer, limit: number): number {
  let p = cur.pos;
  let len = 0;
  for (let shift = 0; ; shift += 7) {
    if (p >= limit) overrun(limit, 'length prefix');
    const b = buf[p++];
    if (shift === 28) {
      // The 5th byte ends any length protobuf allows (lengths are int32).
      len += (b & 0x7f) * 2 ** 28;
      if (b >= 0x80 || len > MAX_FIELD_LENGTH) {
        fail(DnstapErrorCode.BAD_LENGTH, `length prefix above ${MAX_FIELD_LENGTH}`, cur.pos);
      }
      break;
    }
    len |= (b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  cur.pos = p;
  if (len > limit - p) {
    if (len > cur.frameEnd - p)
      fail(DnstapErrorCode.TRUNCATED, `field of ${len} bytes cut off by the frame end`, p);
    fail(DnstapErrorCode.BAD_LENGTH, `field of ${len} bytes runs past the end of the enclosing Message`, p);
  }
  return len;
}

function readFixed32(buf: Buffer, limit: number): number {
  const p = cur.pos;
  if (limit - p < 4) overrun(limit, 'fixed32');
  cur.pos = p + 4;
  return (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
}

/** Skips a field we do not read: unknown, or a known number with another wire type. */
function skipField(buf: Buffer, tag: number, limit: number): void {
  if (tag < 8) fail(DnstapErrorCode.BAD_FIELD_NUMBER, 'field number 0', cur.pos);
  switch (tag & 7) {
    case WIRE_VARINT:
      readVarint(buf, limit);
      return;
    case WIRE_I64:
      if (limit - cur.pos < 8) overrun(limit, 'fixed64');
      cur.pos += 8;
      return;
    case WIRE_LEN: {
      const len = readLength(buf, limit); // before `+=`, which would read pos first
      cur.pos += len;
      return;
    }
    case WIRE_I32:
      if (limit - cur.pos < 4) overrun(limit, 'fixed32');
      cur.pos += 4;
      return;
    default:
      fail(DnstapErrorCode.BAD_WIRE_TYPE, `wire type ${tag & 7} (field ${tag >>> 3})`, cur.pos);
  }
}

/**
 * Fast paths for the common one-byte varint and length prefix, small enough to be inlined;
 * everything else goes to the general readers above.
 */
function readUint32(buf: Buffer, limit: number): number {
  const p = cur.pos;
  if (p < limit) {
    const b = buf[p];
    if (b < 0x80) {
      cur.pos = p + 1;
      return b;
    }
  }
  readVarint(buf, limit);
  return cur.varLo;
}

function readUint64(buf: Buffer, limit: number): number {
  // Fast path, unrolled: values below 2^31 in at most 5 bytes (times in seconds until 2038).
  const p = cur.pos;
  if (limit - p >= 5) {
    let b = buf[p];
    let v = b & 0x7f;
    if (b < 0x80) {
      cur.pos = p + 1;
      return v;
    }
    b = buf[p + 1];
    v |= (b & 0x7f) << 7;
    if (b < 0x80) {
      cur.pos = p + 2;
      return v;
    }
    b = buf[p + 2];
    v |= (b & 0x7f) << 14;
    if (b < 0x80) {
      cur.pos = p + 3;
      return v;
    }
    b = buf[p + 3];
    v |= (b & 0x7f) << 21;
    if (b < 0x80) {
      cur.pos = p + 4;
      return v;
    }
    b = buf[p + 4];
    if (b < 0x08) {
      cur.pos = p + 5;
      return v | (b << 28);
    }
  }
  readVarint(buf, limit);
  return cur.varHi * TWO_POW_32 + cur.varLo;
}

function readLen(buf: Buffer, limit: number): number {
  const p = cur.pos;
  if (p < limit) {
    const n = buf[p];
    if (n < 0x80 && n < limit - p) {
      cur.pos = p + 1;
      return n;
    }
  }
  return readLength(buf, limit);
}

// Tags (field number << 3 | wire type) as read whole: switching on the tag rather than the
// field number means a known field number with another wire type falls to `default` and
// is skipped like an unknown field, with no separate wire-type check.
const T_TYPE = (1 << 3) | WIRE_VARINT;
const T_FAMILY = (2 << 3) | WIRE_VARINT;
const T_PROTOCOL = (3 << 3) | WIRE_VARINT;
const T_QUERY_ADDRESS = (4 << 3) | WIRE_LEN;
const T_RESPONSE_ADDRESS = (5 << 3) | WIRE_LEN;
const T_QUERY_PORT = (6 << 3) | WIRE_VARINT;
const T_RESPONSE_PORT = (7 << 3) | WIRE_VARINT;
const T_QUERY_TIME_SEC = (8 << 3) | WIRE_VARINT;
const T_QUERY_TIME_NSEC = (9 << 3) | WIRE_I32;
const T_QUERY_MESSAGE = (10 << 3) | WIRE_LEN;
const T_QUERY_ZONE = (11 << 3) | WIRE_LEN;
const T_RESPONSE_TIME_SEC = (12 << 3) | WIRE_VARINT;
const T_RESPONSE_TIME_NSEC = (13 << 3) | WIRE_I32;
const T_RESPONSE_MESSAGE = (14 << 3) | WIRE_LEN;
const T_POLICY = (15 << 3) | WIRE_LEN;
const T_HTTP_PROTOCOL = (16 << 3) | WIRE_VARINT;
// Policy
const T_POLICY_TYPE = (1 << 3) | WIRE_LEN;
const T_POLICY_RULE = (2 << 3) | WIRE_LEN;
const T_POLICY_ACTION = (3 << 3) | WIRE_VARINT;
const T_POLICY_MATCH = (4 << 3) | WIRE_VARINT;
const T_POLICY_VALUE = (5 << 3) | WIRE_LEN;
// Dnstap
const T_IDENTITY = (1 << 3) | WIRE_LEN;
const T_VERSION = (2 << 3) | WIRE_LEN;
const T_EXTRA = (3 << 3) | WIRE_LEN;
const T_MESSAGE = (14 << 3) | WIRE_LEN;
const T_DNSTAP_TYPE = (15 << 3) | WIRE_VARINT;

/** Message fields, from cur.pos up to `limit`, merged into the view. */
function decodeMessage(buf: Buffer, limit: number, v: DnstapView): void {
  while (cur.pos < limit) {
    const tag = readTag(buf, limit);
    switch (tag) {
      case T_TYPE:
        v.type = readUint32(buf, limit);
        break;
      case T_FAMILY:
        v.socketFamily = readUint32(buf, limit);
        break;
      case T_PROTOCOL:
        v.socketProtocol = readUint32(buf, limit);
        break;
      case T_QUERY_ADDRESS:
        v.queryAddressLen = readLen(buf, limit);
        v.queryAddressOff = cur.pos;
        cur.pos += v.queryAddressLen;
        break;
      case T_RESPONSE_ADDRESS:
        v.responseAddressLen = readLen(buf, limit);
        v.responseAddressOff = cur.pos;
        cur.pos += v.responseAddressLen;
        break;
      case T_QUERY_PORT:
        v.queryPort = readUint32(buf, limit);
        break;
      case T_RESPONSE_PORT:
        v.responsePort = readUint32(buf, limit);
        break;
      case T_QUERY_TIME_SEC:
        v.queryTimeSec = readUint64(buf, limit);
        break;
      case T_QUERY_TIME_NSEC:
        v.queryTimeNsec = readFixed32(buf, limit);
        break;
      case T_QUERY_MESSAGE:
        v.queryMessageLen = readLen(buf, limit);
        v.queryMessageOff = cur.pos;
        cur.pos += v.queryMessageLen;
        break;
      case T_QUERY_ZONE:
        v.queryZoneLen = readLen(buf, limit);
        v.queryZoneOff = cur.pos;
        cur.pos += v.queryZoneLen;
        break;
      case T_RESPONSE_TIME_SEC:
        v.responseTimeSec = readUint64(buf, limit);
        break;
      case T_RESPONSE_TIME_NSEC:
        v.responseTimeNsec = readFixed32(buf, limit);
        break;
      case T_RESPONSE_MESSAGE:
        v.responseMessageLen = readLen(buf, limit);
        v.responseMessageOff = cur.pos;
        cur.pos += v.responseMessageLen;
        break;
      case T_HTTP_PROTOCOL:
        v.httpProtocol = readUint32(buf, limit);
        break;
      case T_POLICY: {
        const len = readLen(buf, limit);
        v.hasPolicy = true;
        decodePolicy(buf, cur.pos + len, v);
        break;
      }
      default:
        skipField(buf, tag, limit);
    }
  }
}

/** Policy fields, from cur.pos up to `limit`: offsets and numbers only (rare, so read when seen). */
function decodePolicy(buf: Buffer, limit: number, v: DnstapView): void {
  while (cur.pos < limit) {
    const tag = readTag(buf, limit);
    switch (tag) {
      case T_POLICY_TYPE:
        v.policyTypeLen = readLen(buf, limit);
        v.policyTypeOff = cur.pos;
        cur.pos += v.policyTypeLen;
        break;
      case T_POLICY_RULE:
        v.policyRuleLen = readLen(buf, limit);
        v.policyRuleOff = cur.pos;
        cur.pos += v.policyRuleLen;
        break;
      case T_POLICY_ACTION:
        v.policyAction = readUint32(buf, limit);
        break;
      case T_POLICY_MATCH:
        v.policyMatch = readUint32(buf, limit);
        break;
      case T_POLICY_VALUE:
        v.policyValueLen = readLen(buf, limit);
        v.policyValueOff = cur.pos;
        cur.pos += v.policyValueLen;
        break;
      default:
        skipField(buf, tag, limit);
    }
  }
}

/**
 * Decodes the Dnstap payload buf[start, end) into `view` (reset first). Throws
 * DnstapDecodeError on malformed protobuf; the view is then partly filled and must not be
 * used. Presence of the `required` types is not checked: see requireTypes().
 */
export function decodeDnstap(buf: Buffer, start: number, end: number, view: DnstapView): void {
  if (!(start >= 0 && start <= end && end <= buf.length)) {
    throw new RangeError(`decodeDnstap: bad range [${start}, ${end}) for a buffer of ${buf.length} bytes`);
  }
  view.reset(buf);
  cur.frameEnd = end;
  cur.pos = start;
  while (cur.pos < end) {
    const tag = readTag(buf, end);
    switch (tag) {
      case T_IDENTITY:
        view.identityLen = readLen(buf, end);
        view.identityOff = cur.pos;
        cur.pos += view.identityLen;
        break;
      case T_VERSION:
        view.versionLen = readLen(buf, end);
        view.versionOff = cur.pos;
        cur.pos += view.versionLen;
        break;
      case T_EXTRA:
        view.extraLen = readLen(buf, end);
        view.extraOff = cur.pos;
        cur.pos += view.extraLen;
        break;
      case T_MESSAGE: {
        const len = readLen(buf, end);
        view.hasMessage = true;
        decodeMessage(buf, cur.pos + len, view);
        break;
      }
      case T_DNSTAP_TYPE:
        view.dnstapType = readUint32(buf, end);
        break;
      default:
        skipField(buf, tag, end);
    }
  }
}

/**
 * The strict proto2 reading, for callers that want it: throws DNSTAP_MISSING_TYPE when
 * Dnstap.type is absent or a Message lacks Message.type. A frame without a Message passes.
 */
export function requireTypes(view: DnstapView): void {
  if (view.dnstapType === ABSENT) fail(DnstapErrorCode.MISSING_TYPE, 'Dnstap.type absent', -1);
  if (view.hasMessage && view.type === ABSENT) fail(DnstapErrorCode.MISSING_TYPE, 'Message.type absent', -1);
}
