// Control frames: bounds-checked decoding and validated encoding.
//
// Control frames are rare (a handful per connection), so they are decoded into small
// objects; data frames never pass through here. Content types are kept as latin1 strings:
// one char per byte, so any byte sequence survives the round trip and compares exactly.

import { readU32 } from '../kit/bytes';
import {
  CONTROL_FIELD_CONTENT_TYPE,
  CONTROL_FIELD_HEADER_SIZE,
  CONTROL_FRAME_HEADER_SIZE,
  ControlType,
  type ControlTypeCode,
  controlTypeName,
  isControlType,
  MAX_CONTENT_TYPE_LENGTH,
  MAX_CONTROL_FRAME_SIZE,
  MIN_CONTROL_LENGTH,
  U32_SIZE,
} from './constants';
import { FramestreamError, FramestreamErrorCode } from './errors';

export interface ControlFrame {
  type: ControlTypeCode;
  /** CONTENT_TYPE fields in wire order; empty when the frame carries none. */
  contentTypes: string[];
}

function malformed(message: string, offset?: number): FramestreamError {
  return new FramestreamError(FramestreamErrorCode.CONTROL_MALFORMED, message, { offset });
}

/**
 * Checks a control length value (the be32 after the escape) before its bytes are awaited,
 * so an oversized or impossible control frame is rejected from its header alone.
 */
export function checkControlLength(length: number, offset?: number): void {
  if (length > MAX_CONTROL_FRAME_SIZE) {
    throw new FramestreamError(
      FramestreamErrorCode.CONTROL_TOO_LARGE,
      `control frame length ${length} exceeds the limit of ${MAX_CONTROL_FRAME_SIZE} bytes`,
      { offset },
    );
  }
  if (length < MIN_CONTROL_LENGTH) {
    throw malformed(
      `control frame length ${length} is shorter than its ${MIN_CONTROL_LENGTH}-byte type`,
      offset,
    );
  }
}

/**
 * Decodes a control frame body: `buf[start, end)` holds the control type and the fields,
 * i.e. exactly the bytes counted by the control length. `offset` (stream position of the
 * frame) only enriches errors. Throws FramestreamError on any violation.
 */
export function decodeControlBody(
  buf: Uint8Array,
  start: number,
  end: number,
  offset?: number,
): ControlFrame {
  checkControlLength(end - start, offset);
  const type = readU32(buf, start);
  if (!isControlType(type)) {
    throw new FramestreamError(
      FramestreamErrorCode.UNKNOWN_CONTROL,
      `unknown control frame type 0x${type.toString(16)}`,
      { offset },
    );
  }
  const contentTypes: string[] = [];
  let at = start + U32_SIZE;
  while (at < end) {
    if (end - at < CONTROL_FIELD_HEADER_SIZE) {
      throw malformed(
        `${controlTypeName(type)}: ${end - at} stray bytes where a field header was expected`,
        offset,
      );
    }
    const fieldType = readU32(buf, at);
    const fieldLength = readU32(buf, at + U32_SIZE);
    at += CONTROL_FIELD_HEADER_SIZE;
    // libfstrm rejects unknown field types too; accepting them would hide a peer bug.
    if (fieldType !== CONTROL_FIELD_CONTENT_TYPE) {
      throw malformed(`${controlTypeName(type)}: unknown field type 0x${fieldType.toString(16)}`, offset);
    }
    if (fieldLength > end - at) {
      throw malformed(
        `${controlTypeName(type)}: content type length ${fieldLength} runs past the frame (${end - at} bytes left)`,
        offset,
      );
    }
    if (fieldLength > MAX_CONTENT_TYPE_LENGTH) {
      throw malformed(
        `${controlTypeName(type)}: content type of ${fieldLength} bytes exceeds ${MAX_CONTENT_TYPE_LENGTH}`,
        offset,
      );
    }
    contentTypes.push(Buffer.from(buf.buffer, buf.byteOffset + at, fieldLength).toString('latin1'));
    at += fieldLength;
  }
  checkContentTypeCount(type, contentTypes.length, offset);
  return { type, contentTypes };
}

/** START carries at most one content type; STOP and FINISH carry none (libfstrm rules). */
function checkContentTypeCount(type: ControlTypeCode, count: number, offset?: number): void {
  if (type === ControlType.START && count > 1) {
    throw malformed(`START carries ${count} content types, at most 1 is allowed`, offset);
  }
  if ((type === ControlType.STOP || type === ControlType.FINISH) && count > 0) {
    throw malformed(`${controlTypeName(type)} must not carry content types (got ${count})`, offset);
  }
}

/**
 * Decodes one complete control frame including its escape and control length; the frame
 * must fill `frame` exactly. Convenience for callers that hold a whole frame.
 */
export function decodeControlFrame(frame: Uint8Array): ControlFrame {
  if (frame.length < CONTROL_FRAME_HEADER_SIZE) {
    throw new FramestreamError(
      FramestreamErrorCode.TRUNCATED,
      `control frame of ${frame.length} bytes is shorter than its 8-byte header`,
    );
  }
  if (readU32(frame, 0) !== 0) throw malformed('control frame does not start with the zero escape');
  const length = readU32(frame, U32_SIZE);
  checkControlLength(length);
  const have = frame.length - CONTROL_FRAME_HEADER_SIZE;
  if (have < length) {
    throw new FramestreamError(
      FramestreamErrorCode.TRUNCATED,
      `control frame announces ${length} bytes but only ${have} follow`,
    );
  }
  if (have > length) throw malformed(`control frame announces ${length} bytes but ${have} follow`);
  return decodeControlBody(frame, CONTROL_FRAME_HEADER_SIZE, frame.length);
}

/**
 * Encodes a control frame (escape + length + type + fields). Validates what libfstrm
 * validates: field counts per type, content type length, total size within
 * MAX_CONTROL_FRAME_SIZE including the 8-byte header.
 */
export function encodeControlFrame(type: ControlTypeCode, contentTypes: readonly string[] = []): Buffer {
  if (!isControlType(type)) {
    throw new FramestreamError(FramestreamErrorCode.INVALID_ARGUMENT, `unknown control type ${String(type)}`);
  }
  let size = CONTROL_FRAME_HEADER_SIZE + U32_SIZE;
  for (const ct of contentTypes) {
    if (typeof ct !== 'string' || /[^\x00-\xff]/.test(ct)) {
      throw new FramestreamError(
        FramestreamErrorCode.INVALID_ARGUMENT,
        `content type must be a string of bytes (latin1), got ${JSON.stringify(ct)}`,
      );
    }
    if (ct.length > MAX_CONTENT_TYPE_LENGTH) {
      throw new FramestreamError(
        FramestreamErrorCode.INVALID_ARGUMENT,
        `content type of ${ct.length} bytes exceeds ${MAX_CONTENT_TYPE_LENGTH}`,
      );
    }
    size += CONTROL_FIELD_HEADER_SIZE + ct.length;
  }
  try {
    checkContentTypeCount(type, contentTypes.length);
  } catch (err) {
    throw new FramestreamError(FramestreamErrorCode.INVALID_ARGUMENT, (err as Error).message);
  }
  if (size > MAX_CONTROL_FRAME_SIZE) {
    throw new FramestreamError(
      FramestreamErrorCode.INVALID_ARGUMENT,
      `${controlTypeName(type)} would be ${size} bytes, above the ${MAX_CONTROL_FRAME_SIZE}-byte limit`,
    );
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(0, 0);
  out.writeUInt32BE(size - CONTROL_FRAME_HEADER_SIZE, 4);
  out.writeUInt32BE(type, 8);
  let at = CONTROL_FRAME_HEADER_SIZE + U32_SIZE;
  for (const ct of contentTypes) {
    out.writeUInt32BE(CONTROL_FIELD_CONTENT_TYPE, at);
    out.writeUInt32BE(ct.length, at + U32_SIZE);
    at += CONTROL_FIELD_HEADER_SIZE;
    at += out.write(ct, at, 'latin1');
  }
  return out;
}
