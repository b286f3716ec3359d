// BatchEncoder: the agent's hot path, one Batch link frame built in place.
//
// It writes a complete link frame (length, type, protobuf body) straight into one reusable
// buffer: the header fields first, then each record as field 4 copied in, so appending a
// record allocates nothing. Field order and omitted zero fields match what protobufjs
// writes for link.proto, byte for byte (tests check it); batch-view.ts reads it back.

import { readU32, varintSize, writeVarint } from '../kit/bytes';
import { checkInt } from '../kit/options';
import {
  BatchTag,
  FRAME_HEADER_SIZE,
  isValidId,
  LENGTH_SIZE,
  MAX_INCARNATION_LENGTH,
  MAX_LINK_FRAME,
  MAX_SEQ,
  MessageType,
  RESENT_MARK_BYTES,
} from './constants';
import { invalidArgument, LinkErrorCode, LinkProtocolError } from './errors';

const bufferCopy = Buffer.prototype.copy;

/** Initial capacity of the encoder's buffer; it doubles on demand up to one frame. */
export const BATCH_ENCODER_INITIAL_CAPACITY = 256 * 1024;

export interface BatchEncoderOptions {
  /** Largest frame length N to produce (the Welcome's max_frame_bytes). Default MAX_LINK_FRAME. */
  maxFrameBytes?: number;
  initialCapacity?: number;
}

function checkMaxFrameBytes(v: number): number {
  return checkInt('BatchEncoder: maxFrameBytes', v, 128, MAX_LINK_FRAME, invalidArgument);
}

export class BatchEncoder {
  private maxFrame: number;
  private buf: Buffer;
  private pos = 0;
  private count = 0;
  private open = false;

  constructor(options: BatchEncoderOptions = {}) {
    for (const key of Object.keys(options)) {
      if (key !== 'maxFrameBytes' && key !== 'initialCapacity') {
        throw invalidArgument(
          `BatchEncoder: unknown option "${key}" (known: maxFrameBytes, initialCapacity)`,
        );
      }
    }
    this.maxFrame = checkMaxFrameBytes(options.maxFrameBytes ?? MAX_LINK_FRAME);
    const capacity = options.initialCapacity ?? BATCH_ENCODER_INITIAL_CAPACITY;
    checkInt('BatchEncoder: initialCapacity', capacity, 256, MAX_LINK_FRAME + LENGTH_SIZE, invalidArgument);
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Largest frame length N produced (the Welcome's max_frame_bytes). */
  get maxFrameBytes(): number {
    return this.maxFrame;
  }

  /** Applies to the next append(): a connection with a smaller limit gets smaller batches. */
  set maxFrameBytes(v: number) {
    this.maxFrame = checkMaxFrameBytes(v);
  }

  /** Records appended since begin(). */
  get recordCount(): number {
    return this.count;
  }

  /** Bytes of the frame so far, header included: what finish() will return. */
  get frameSize(): number {
    return this.pos;
  }

  /**
   * Starts a batch, discarding any unfinished one. `seq` in [1, 2^53-1]; `incarnation` empty
   * (= the Hello's) or an id (1..64 of [A-Za-z0-9._:-]); `sampleRate` 0 or 1 when unsampled.
   */
  begin(seq: number, incarnation: string, sampleRate: number): void {
    if (!Number.isSafeInteger(seq) || seq < 1 || seq > MAX_SEQ) {
      throw invalidArgument(`BatchEncoder.begin: seq must be an integer in [1, 2^53-1], got ${seq}`);
    }
    if (!Number.isInteger(sampleRate) || sampleRate < 0 || sampleRate > 0xffffffff) {
      throw invalidArgument(`BatchEncoder.begin: sampleRate must be a uint32, got ${sampleRate}`);
    }
    const incLen = incarnation.length;
    if (incLen > 0 && !isValidId(incarnation, MAX_INCARNATION_LENGTH)) {
      throw invalidArgument(
        `BatchEncoder.begin: incarnation must be 1..64 of [A-Za-z0-9._:-], got "${incarnation}"`,
      );
    }
    const buf = this.buf;
    let p = FRAME_HEADER_SIZE;
    buf[4] = MessageType.BATCH;
    buf[p++] = BatchTag.SEQ;
    p = writeVarint(buf, p, seq);
    if (incLen > 0) {
      buf[p++] = BatchTag.INCARNATION;
      buf[p++] = incLen;
      p += buf.write(incarnation, p, 'latin1');
    }
    if (sampleRate !== 0) {
      buf[p++] = BatchTag.SAMPLE_RATE;
      p = writeVarint(buf, p, sampleRate);
    }
    this.pos = p;
    this.count = 0;
    this.open = true;
  }

  /**
   * Appends `src[start, end)` as one record. Returns false, appending nothing, when the
   * frame would exceed maxFrameBytes: finish() this batch and append to the next one. On an
   * empty batch, false means the record can never be sent (drop it and count it).
   */
  append(src: Uint8Array, start = 0, end: number = src.length): boolean {
    if (!this.open)
      throw new LinkProtocolError(LinkErrorCode.INVALID_STATE, 'BatchEncoder.append before begin');
    const len = end - start;
    if (start < 0 || len < 0 || end > src.length) {
      throw invalidArgument(`BatchEncoder.append: bad range [${start}, ${end}) of ${src.length}`);
    }
    let p = this.pos;
    const need = p + 1 + (len < 0x80 ? 1 : len < 0x4000 ? 2 : varintSize(len)) + len;
    // Room for the resent mark an agent appends when it sends this frame again.
    if (need - LENGTH_SIZE > this.maxFrame - RESENT_MARK_BYTES) return false;
    if (need > this.buf.length) this.grow(need);
    const buf = this.buf;
    buf[p++] = BatchTag.RECORD;
    if (len < 0x80) {
      buf[p++] = len;
    } else if (len < 0x4000) {
      buf[p++] = (len & 0x7f) | 0x80;
      buf[p++] = len >>> 7;
    } else {
      p = writeVarint(buf, p, len);
    }
    // Buffer#copy, called on plain Uint8Arrays too: no subarray object per record, and
    // measured several times faster than set() or a byte loop even for 30-byte records.
    p += bufferCopy.call(src, buf, p, start, end);
    this.pos = p;
    this.count++;
    return true;
  }

  /**
   * Appends, in order, as many of the Frame Streams data frames in `src[start, end)` as fit
   * (each a 4-byte big-endian length and its payload; the caller vouches the range holds
   * whole frames), as records: at most `maxRecords` of them, and the frame no larger than
   * `maxBytes` (frameSize) nor the frame limit. Returns the offset after the last frame
   * taken: `start` when the first one does not fit this way (append() it on its own).
   *
   * One copy for the whole run, then each 4-byte length is overwritten in place by the
   * record's tag and its length as a 3-byte varint: the same size, so nothing moves. A
   * padded varint is legal protobuf (batch-view.ts and protobufjs read it); it costs one
   * byte more than minimal for most records. Lengths of 2^21 and more end the run.
   */
  appendFramed(src: Buffer, start: number, end: number, maxRecords: number, maxBytes: number): number {
    if (!this.open)
      throw new LinkProtocolError(LinkErrorCode.INVALID_STATE, 'BatchEncoder.appendFramed before begin');
    if (start < 0 || start > end || end > src.length) {
      throw invalidArgument(`BatchEncoder.appendFramed: bad range [${start}, ${end}) of ${src.length}`);
    }
    const pos = this.pos;
    // Largest frameSize allowed: the caller's cut and room for the resent mark under the limit.
    const cap = Math.min(maxBytes, this.maxFrame - RESENT_MARK_BYTES + LENGTH_SIZE);
    let p = start;
    let n = 0;
    while (n < maxRecords && end - p >= 4) {
      const len = readU32(src, p);
      const next = p + 4 + len;
      if (len >= 0x200000 || next > end || pos + (next - start) > cap) break;
      p = next;
      n++;
    }
    if (n === 0) return start;
    const need = pos + (p - start);
    if (need > this.buf.length) this.grow(need);
    const buf = this.buf;
    bufferCopy.call(src, buf, pos, start, p);
    for (let q = pos; q < need; ) {
      const len = readU32(buf, q);
      buf[q] = BatchTag.RECORD;
      buf[q + 1] = (len & 0x7f) | 0x80;
      buf[q + 2] = ((len >>> 7) & 0x7f) | 0x80;
      buf[q + 3] = len >>> 14;
      q += 4 + len;
    }
    this.pos = need;
    this.count += n;
    return p;
  }

  /**
   * Ends the batch and returns its whole link frame in a new Buffer of exactly its size,
   * owned by the caller (the agent keeps it until acknowledged). The encoder's own buffer is
   * reused by the next begin(). `alloc` (optional) supplies that Buffer, given its size.
   */
  finish(alloc?: (size: number) => Buffer): Buffer {
    if (!this.open)
      throw new LinkProtocolError(LinkErrorCode.INVALID_STATE, 'BatchEncoder.finish before begin');
    this.open = false;
    this.buf.writeUInt32BE(this.pos - LENGTH_SIZE, 0);
    const out = alloc === undefined ? Buffer.allocUnsafe(this.pos) : alloc(this.pos);
    if (out.length !== this.pos) {
      throw new LinkProtocolError(
        LinkErrorCode.INVALID_STATE,
        'BatchEncoder.finish: alloc returned the wrong size',
      );
    }
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  private grow(need: number): void {
    const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/**
 * A copy of the Batch link frame `frame` with `resent = true` appended (protobuf fields may come
 * in any order; a receiver reading the field twice keeps the last). The agent sends this instead
 * of the stored frame when the batch may have reached an enricher before (LINK.md "Re-sends").
 * Call it on the stored (unmarked) frame each time.
 */
export function markResent(frame: Buffer): Buffer {
  const n = frame.length;
  const out = Buffer.allocUnsafe(n + RESENT_MARK_BYTES);
  frame.copy(out, 0, 0, n);
  out[n] = BatchTag.RESENT;
  out[n + 1] = 1;
  out.writeUInt32BE(n + RESENT_MARK_BYTES - LENGTH_SIZE, 0);
  return out;
}
