// Frame Streams encoding for senders: single data frames, control frames, and a packer
// that lays many data frames out back to back in one Buffer, so a producer sending
// millions of frames issues one socket/file write per batch instead of one per frame.

import {
  ControlType,
  DATA_FRAME_HEADER_SIZE,
  DEFAULT_MAX_DATA_FRAME_SIZE,
  DEFAULT_PACKER_CAPACITY,
  MAX_CONFIGURABLE_DATA_FRAME_SIZE,
} from './constants';
import { encodeControlFrame } from './control';
import { checkIntOption, FramestreamError, FramestreamErrorCode, rejectUnknownOptions } from './errors';

/** Wire size of a data frame carrying `payloadLength` bytes. */
export function dataFrameSize(payloadLength: number): number {
  return DATA_FRAME_HEADER_SIZE + payloadLength;
}

function checkPayloadLength(length: number, max: number): void {
  if (length === 0) {
    throw new FramestreamError(
      FramestreamErrorCode.FRAME_TOO_LARGE,
      'a data frame cannot be empty: length 0 is the control frame escape',
    );
  }
  if (length > max) {
    throw new FramestreamError(
      FramestreamErrorCode.FRAME_TOO_LARGE,
      `data frame payload of ${length} bytes exceeds the limit of ${max}`,
    );
  }
}

/**
 * Writes the data frame for `payload[start, end)` into `target` at `offset` and returns
 * the offset after it. Throws FSTRM_FRAME_TOO_LARGE for an empty payload and
 * FSTRM_INVALID_ARGUMENT when the frame does not fit in `target`.
 */
export function writeDataFrameInto(
  target: Uint8Array,
  offset: number,
  payload: Uint8Array,
  start = 0,
  end: number = payload.length,
): number {
  const len = end - start;
  checkPayloadLength(len, 0xffffffff);
  const next = offset + DATA_FRAME_HEADER_SIZE + len;
  if (offset < 0 || next > target.length) {
    throw new FramestreamError(
      FramestreamErrorCode.INVALID_ARGUMENT,
      `data frame of ${len} bytes does not fit at offset ${offset} of a ${target.length}-byte buffer`,
    );
  }
  target[offset] = len >>> 24;
  target[offset + 1] = (len >>> 16) & 0xff;
  target[offset + 2] = (len >>> 8) & 0xff;
  target[offset + 3] = len & 0xff;
  target.set(start === 0 && end === payload.length ? payload : payload.subarray(start, end), offset + 4);
  return next;
}

/** One data frame as a new Buffer. For many frames use FramePacker. */
export function encodeDataFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(DATA_FRAME_HEADER_SIZE + payload.length);
  writeDataFrameInto(out, 0, payload);
  return out;
}

/** READY offering the given content types (bidirectional sender, first frame). */
export function encodeReady(contentTypes: readonly string[]): Buffer {
  return encodeControlFrame(ControlType.READY, contentTypes);
}

/** ACCEPT naming the content types the receiver takes (reply to READY). */
export function encodeAccept(contentTypes: readonly string[]): Buffer {
  return encodeControlFrame(ControlType.ACCEPT, contentTypes);
}

/** START, optionally with the stream's content type (the sender's first frame of data). */
export function encodeStart(contentType?: string): Buffer {
  return encodeControlFrame(ControlType.START, contentType === undefined ? [] : [contentType]);
}

export function encodeStop(): Buffer {
  return encodeControlFrame(ControlType.STOP);
}

export function encodeFinish(): Buffer {
  return encodeControlFrame(ControlType.FINISH);
}

export interface FramePackerOptions {
  /** Target batch size in bytes; a single larger frame gets a batch of its own. */
  capacity?: number;
  /** Payloads above this throw FSTRM_FRAME_TOO_LARGE (a receiver would skip them). */
  maxDataFrameSize?: number;
}

const PACKER_KEYS = ['capacity', 'maxDataFrameSize'] as const;

/**
 * Packs data frames back to back. Usage:
 *
 *   if (!packer.append(payload)) { send(packer.take()); packer.append(payload); }
 *
 * or, to encode a payload in place without an intermediate buffer:
 *
 *   let at = packer.reserve(len); if (at < 0) { send(packer.take()); at = packer.reserve(len); }
 *   writePayload(packer.buffer, at);
 *
 * take() hands the batch over (the packer allocates a fresh buffer for the next one), which
 * suits asynchronous socket writes; takeView() reuses the buffer for synchronous consumers.
 */
export class FramePacker {
  readonly capacity: number;
  readonly maxDataFrameSize: number;
  private buf: Buffer;
  private used = 0;
  private count = 0;

  constructor(options: FramePackerOptions = {}) {
    rejectUnknownOptions('FramePacker', options, PACKER_KEYS);
    this.capacity = checkIntOption(
      'FramePacker',
      'capacity',
      options.capacity ?? DEFAULT_PACKER_CAPACITY,
      64,
      1 << 30,
    );
    this.maxDataFrameSize = checkIntOption(
      'FramePacker',
      'maxDataFrameSize',
      options.maxDataFrameSize ?? DEFAULT_MAX_DATA_FRAME_SIZE,
      1,
      MAX_CONFIGURABLE_DATA_FRAME_SIZE,
    );
    this.buf = Buffer.allocUnsafe(this.capacity);
  }

  /** Bytes packed in the current batch. */
  get length(): number {
    return this.used;
  }

  /** Data frames packed in the current batch. */
  get frames(): number {
    return this.count;
  }

  /** The current batch's backing buffer; only `[0, length)` is meaningful. */
  get buffer(): Buffer {
    return this.buf;
  }

  /**
   * Writes a frame header for `payloadLength` bytes and returns where the payload must be
   * written in `buffer`, or -1 when the batch is non-empty and the frame does not fit.
   */
  reserve(payloadLength: number): number {
    checkPayloadLength(payloadLength, this.maxDataFrameSize);
    const size = DATA_FRAME_HEADER_SIZE + payloadLength;
    if (this.used + size > this.buf.length) {
      if (this.used > 0) return -1;
      // An empty batch always takes the frame, even one larger than the capacity.
      this.buf = Buffer.allocUnsafe(size);
    }
    const at = this.used;
    this.buf.writeUInt32BE(payloadLength, at);
    this.used = at + size;
    this.count++;
    return at + DATA_FRAME_HEADER_SIZE;
  }

  /** Appends the frame for `payload[start, end)`; false when the batch must be taken first. */
  append(payload: Uint8Array, start = 0, end: number = payload.length): boolean {
    const at = this.reserve(end - start);
    if (at < 0) return false;
    this.buf.set(start === 0 && end === payload.length ? payload : payload.subarray(start, end), at);
    return true;
  }

  /** Appends already-encoded bytes (e.g. a control frame); false when they do not fit. */
  appendRaw(bytes: Uint8Array): boolean {
    if (this.used + bytes.length > this.buf.length) {
      if (this.used > 0) return false;
      this.buf = Buffer.allocUnsafe(Math.max(this.capacity, bytes.length));
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
    return true;
  }

  /** Hands over the packed batch and starts a new one in a fresh buffer. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(this.capacity);
    this.used = 0;
    this.count = 0;
    return out;
  }

  /**
   * Returns the packed batch as a view of the packer's own buffer, which the next batch
   * reuses: for callers that consume it synchronously (fs.writeSync, a copy, a hash).
   */
  takeView(): Buffer {
    const out = this.buf.subarray(0, this.used);
    if (this.buf.length !== this.capacity) this.buf = Buffer.allocUnsafe(this.capacity);
    this.used = 0;
    this.count = 0;
    return out;
  }
}
