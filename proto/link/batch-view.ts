// BatchView: the enricher's hot path, a received Batch body walked in place.
//
// parse() validates the whole body first, so a bad batch is refused before any of its
// records is used (no half-written batch), and reads the header fields wherever they are;
// the records are then handed out as offsets into the caller's buffer, with no allocation.
// Any legal protobuf encoding is accepted, as protobuf requires: any field order, unknown
// fields skipped, repeated scalars (the last one wins), padded varints.

import { BatchTag, isIdChar, MAX_INCARNATION_LENGTH } from './constants';
import { LinkErrorCode, LinkProtocolError } from './errors';
import { readVarint, skipField, VARINT } from './varint';

/** A record is `buf[start, end)`; `index` counts from 0 in batch order. */
export type RecordHandler = (buf: Buffer, start: number, end: number, index: number) => void;

function bad(message: string, offset: number): LinkProtocolError {
  return new LinkProtocolError(LinkErrorCode.BAD_MESSAGE, `malformed Batch: ${message}`, { offset });
}

/**
 * A Batch body, walked in place. Reusable: parse() resets it, so a connection keeps one.
 * Offsets are absolute in `buf`; everything is valid only while the caller's buffer is.
 */
export class BatchView {
  buf: Buffer = Buffer.alloc(0);
  seq = 0;
  /** 0 when absent: treat as 1. */
  sampleRate = 0;
  /** Incarnation bytes are buf[incarnationStart, incarnationEnd); equal when absent. */
  incarnationStart = 0;
  incarnationEnd = 0;
  recordCount = 0;
  /** Batch.resent (field 5): the agent says this batch may have been received before. */
  resent = false;
  /** After nextRecord() returned true: the record is buf[recordStart, recordEnd). */
  recordStart = 0;
  recordEnd = 0;
  recordIndex = -1;
  private end = 0;
  private firstRecord = 0;
  private cursor = 0;

  /** The batch's incarnation, '' when absent (then the connection's Hello incarnation applies). */
  get incarnation(): string {
    return this.buf.toString('utf8', this.incarnationStart, this.incarnationEnd);
  }

  /**
   * Validates the body `buf[start, end)` and reads its header fields. Throws LINK_BAD_MESSAGE
   * when it is not a valid Batch: truncated field, bad wire type, seq absent, 0 or above
   * 2^53-1, a sample rate above 2^32-1, a known field with the wrong wire type, an
   * incarnation outside the id alphabet (it becomes part of every record_id).
   */
  parse(buf: Buffer, start: number, end: number): this {
    if (!(start >= 0 && start <= end && end <= buf.length)) {
      throw new LinkProtocolError(
        LinkErrorCode.INVALID_ARGUMENT,
        `BatchView.parse: bad range [${start}, ${end}) of ${buf.length}`,
      );
    }
    this.buf = buf;
    this.end = end;
    this.cursor = end; // until parse succeeds, nextRecord() yields nothing
    this.seq = 0;
    this.sampleRate = 0;
    this.incarnationStart = this.incarnationEnd = start;
    this.recordCount = 0;
    this.resent = false;
    this.firstRecord = end;
    this.recordIndex = -1;
    let p = start;
    while (p < end) {
      const at = p;
      let tag = buf[p]!;
      if (tag < 0x80) p++;
      else {
        tag = readVarint(buf, p, end);
        if (tag < 0) throw bad('truncated or oversized tag', at);
        p = VARINT.next;
      }
      if (tag === BatchTag.RECORD || tag === BatchTag.INCARNATION) {
        const len = readVarint(buf, p, end);
        if (len < 0 || end - VARINT.next < len) throw bad('length-delimited field runs past the end', at);
        p = VARINT.next;
        if (tag === BatchTag.RECORD) {
          if (this.recordCount++ === 0) this.firstRecord = at;
        } else {
          if (len > MAX_INCARNATION_LENGTH)
            throw bad(`incarnation longer than ${MAX_INCARNATION_LENGTH}`, at);
          for (let i = p; i < p + len; i++) {
            if (!isIdChar(buf[i]!)) throw bad('incarnation has a byte outside [A-Za-z0-9._:-]', at);
          }
          this.incarnationStart = p;
          this.incarnationEnd = p + len;
        }
        p += len;
      } else if (tag === BatchTag.SEQ || tag === BatchTag.SAMPLE_RATE || tag === BatchTag.RESENT) {
        const v = readVarint(buf, p, end);
        if (v < 0) throw bad('truncated or oversized varint', at);
        p = VARINT.next;
        if (tag === BatchTag.SEQ) this.seq = v;
        else if (tag === BatchTag.RESENT) this.resent = v !== 0;
        else if (v > 0xffffffff) throw bad(`sample_rate ${v} exceeds 2^32-1`, at);
        else this.sampleRate = v;
      } else {
        const field = Math.floor(tag / 8);
        if (field >= 1 && field <= 5) throw bad(`field ${field} with wire type ${tag & 7}`, at);
        p = skipField(buf, p, end, tag);
        if (p < 0) throw bad(`unknown field ${field} (wire type ${tag & 7}) is malformed`, at);
      }
    }
    if (this.seq < 1) throw bad('seq is absent or 0', start);
    this.cursor = this.firstRecord;
    return this;
  }

  /** Moves to the next record; false after the last. No allocation. */
  nextRecord(): boolean {
    const buf = this.buf;
    const end = this.end;
    let p = this.cursor;
    while (p < end) {
      let tag = buf[p++]!;
      // A padded (multi-byte) tag is legal protobuf; parse() accepted it, so honour it here.
      if (tag >= 0x80) {
        tag = readVarint(buf, p - 1, end);
        p = VARINT.next;
      }
      if (tag === BatchTag.RECORD) {
        let len = buf[p]!;
        if (len < 0x80) p++;
        else {
          len = readVarint(buf, p, end);
          p = VARINT.next;
        }
        this.recordStart = p;
        this.recordEnd = this.cursor = p + len;
        this.recordIndex++;
        return true;
      }
      // Another field between records: parse() validated it, so skipping cannot fail.
      p = skipField(buf, p, end, tag);
    }
    this.cursor = end;
    return false;
  }

  /** Calls onRecord for every record from the current position on; returns how many. */
  forEachRecord(onRecord: RecordHandler): number {
    let n = 0;
    while (this.nextRecord()) {
      onRecord(this.buf, this.recordStart, this.recordEnd, this.recordIndex);
      n++;
    }
    return n;
  }
}

/** Parses the Batch body `buf[start, end)` and hands every record to onRecord in order. */
export function decodeBatch(buf: Buffer, start: number, end: number, onRecord: RecordHandler): BatchView {
  const view = new BatchView().parse(buf, start, end);
  view.forEachRecord(onRecord);
  return view;
}

/**
 * The prefix of every record_id of a batch; a record's id is the prefix + its index.
 * `<agent_id>/<incarnation>/<seq>/`: the alphabet of ids (LINK.md) has no '/', so ids of
 * different agents, incarnations or batches can never collide.
 */
export function recordIdPrefix(agentId: string, incarnation: string, seq: number): string {
  return `${agentId}/${incarnation}/${seq}/`;
}
