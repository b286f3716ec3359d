// Incremental Frame Streams decoder: bytes in (any chunking), whole frames out, in order.
//
// Complete frames are delivered straight from the caller's chunk (no copy). Only a frame
// cut by a chunk boundary is carried over (proto/kit ChunkDecoder, shared with the link
// decoder: carry-over, re-entrancy, failure latch), so there is no Buffer.concat per chunk
// and no allocation per data frame. Oversized data frames are skipped as their bytes stream
// past, never buffered.
//
// Runs: an owner that can take several frames at once (the agent copies them into a batch in
// one go) passes onDataRun, and each stretch of complete, acceptable data frames in a chunk
// is handed over as one run, still in Frame Streams framing (each payload after its 4-byte
// length). A frame carried over a chunk boundary still goes to onData on its own.
//
// Backpressure: write() returns nothing and never queues frames. An owner whose sink is
// full pauses its source (socket.pause(), stop reading the file) and resumes it later.

import { readU32 } from '../kit/bytes';
import { ChunkDecoder } from '../kit/chunk-decoder';
import {
  CONTROL_FRAME_HEADER_SIZE,
  DATA_FRAME_HEADER_SIZE,
  DECODER_INITIAL_BUFFER_SIZE,
  DEFAULT_MAX_DATA_FRAME_SIZE,
  MAX_CONFIGURABLE_DATA_FRAME_SIZE,
} from './constants';
import { type ControlFrame, checkControlLength, decodeControlBody } from './control';
import { checkIntOption, FramestreamError, FramestreamErrorCode, rejectUnknownOptions } from './errors';

/** A data frame payload is `buf[start, end)`; valid only until the callback returns. */
export type DataFrameHandler = (buf: Buffer, start: number, end: number) => void;

/**
 * `frames` (>= 1) complete data frames, `buf[start, end)`, each a 4-byte big-endian length and
 * its payload (none oversized, no control frame between them); valid only during the call.
 */
export type DataRunHandler = (buf: Buffer, start: number, end: number, frames: number) => void;

export interface FrameDecoderOptions {
  /** Largest accepted payload; larger frames are skipped and counted. Default 1 MiB. */
  maxDataFrameSize?: number;
  onData: DataFrameHandler;
  /** Optional: complete data frames in a chunk come here as runs instead of one by one. */
  onDataRun?: DataRunHandler;
  onControl: (frame: ControlFrame) => void;
  /** Told about each skipped oversized frame: its announced length and stream offset. */
  onOversize?: (length: number, offset: number) => void;
}

const OPTION_KEYS = ['maxDataFrameSize', 'onData', 'onDataRun', 'onControl', 'onOversize'] as const;

export interface FrameDecoderStats {
  bytesIn: number;
  dataFrames: number;
  dataBytes: number;
  controlFrames: number;
  oversizeFrames: number;
  oversizeBytes: number;
}

const CARRY_OVER = { initial: DECODER_INITIAL_BUFFER_SIZE, max: Infinity, shrinkAbove: Infinity };
const MISUSE = {
  error: (message: string) => new FramestreamError(FramestreamErrorCode.INVALID_STATE, message),
  reentrantWrite: 'FrameDecoder used re-entrantly from one of its callbacks',
  reentrantEnd: 'FrameDecoder.end() called from one of its callbacks',
  writeAfterEnd: 'FrameDecoder used after end()',
};

export class FrameDecoder extends ChunkDecoder {
  readonly stats: FrameDecoderStats = {
    bytesIn: 0,
    dataFrames: 0,
    dataBytes: 0,
    controlFrames: 0,
    oversizeFrames: 0,
    oversizeBytes: 0,
  };
  readonly maxDataFrameSize: number;
  private readonly onData: DataFrameHandler;
  private readonly onDataRun: DataRunHandler | undefined;
  private readonly onControl: (frame: ControlFrame) => void;
  private readonly onOversize: ((length: number, offset: number) => void) | undefined;
  /** Bytes of an oversized data frame still to be skipped. */
  private skip = 0;

  constructor(options: FrameDecoderOptions) {
    super(CARRY_OVER, MISUSE);
    rejectUnknownOptions('FrameDecoder', options, OPTION_KEYS);
    if (typeof options?.onData !== 'function' || typeof options.onControl !== 'function') {
      throw new FramestreamError(
        FramestreamErrorCode.INVALID_ARGUMENT,
        'FrameDecoder: onData and onControl are required',
      );
    }
    this.maxDataFrameSize = checkIntOption(
      'FrameDecoder',
      'maxDataFrameSize',
      options.maxDataFrameSize ?? DEFAULT_MAX_DATA_FRAME_SIZE,
      1,
      MAX_CONFIGURABLE_DATA_FRAME_SIZE,
    );
    if (options.onDataRun !== undefined && typeof options.onDataRun !== 'function') {
      throw new FramestreamError(
        FramestreamErrorCode.INVALID_ARGUMENT,
        'FrameDecoder: onDataRun must be a function',
      );
    }
    this.onData = options.onData;
    this.onDataRun = options.onDataRun;
    this.onControl = options.onControl;
    this.onOversize = options.onOversize;
  }

  // write(chunk) parses every complete frame in it, in order, calling onData/onControl for
  // each; it throws FramestreamError for a fatal control frame problem, after which the
  // decoder is failed. end() throws FSTRM_TRUNCATED when input ended inside a frame.

  protected decode(src: Buffer, base: number): void {
    const n = src.length;
    let off = 0;
    if (this.skip > 0) {
      off = Math.min(this.skip, n);
      this.skip -= off;
    }
    if (off < n && this.held > 0) off = this.completeHeld(src, off, n);
    if (off < n) off = this.parse(src, off, n, base);
    if (off < n) this.keep(src, off, n, base);
  }

  protected truncation(): FramestreamError | null {
    if (this.skip > 0) {
      return new FramestreamError(
        FramestreamErrorCode.TRUNCATED,
        `input ended inside an oversized data frame, ${this.skip} bytes short`,
      );
    }
    return this.held > 0 ? this.truncated() : null;
  }

  private truncated(): FramestreamError {
    const held = this.held;
    let what: string;
    if (held < DATA_FRAME_HEADER_SIZE) {
      what = `${held} of the 4 bytes of a frame length`;
    } else if (readU32(this.buf, 0) !== 0) {
      what = `${held - DATA_FRAME_HEADER_SIZE} of ${readU32(this.buf, 0)} payload bytes of a data frame`;
    } else if (held < CONTROL_FRAME_HEADER_SIZE) {
      what = `${held} of the 8 header bytes of a control frame`;
    } else {
      what = `${held - CONTROL_FRAME_HEADER_SIZE} of ${readU32(this.buf, 4)} bytes of a control frame`;
    }
    return new FramestreamError(
      FramestreamErrorCode.TRUNCATED,
      `input ended inside a frame at offset ${this.heldStart}: got ${what} (${held} bytes pending)`,
      { offset: this.heldStart },
    );
  }

  /** The frame loop. Returns the offset of the first byte not consumed. */
  private parse(src: Buffer, off: number, end: number, base: number): number {
    const max = this.maxDataFrameSize;
    const onData = this.onData;
    const onRun = this.onDataRun;
    const stats = this.stats;
    while (end - off >= DATA_FRAME_HEADER_SIZE) {
      const len = readU32(src, off);
      if (len !== 0) {
        const start = off + DATA_FRAME_HEADER_SIZE;
        if (len > max) {
          this.noteOversize(len, base + off);
          if (end - start < len) {
            this.skip = len - (end - start);
            return end;
          }
          off = start + len;
          continue;
        }
        if (end - start < len) break;
        if (onRun !== undefined) {
          // The run goes on over the next complete, acceptable data frames.
          const first = off;
          let p = start + len;
          let frames = 1;
          let bytes = len;
          while (end - p >= DATA_FRAME_HEADER_SIZE) {
            const l = readU32(src, p);
            if (l === 0 || l > max || end - p - DATA_FRAME_HEADER_SIZE < l) break;
            p += DATA_FRAME_HEADER_SIZE + l;
            frames++;
            bytes += l;
          }
          off = p;
          stats.dataFrames += frames;
          stats.dataBytes += bytes;
          onRun(src, first, p, frames);
          continue;
        }
        off = start + len;
        stats.dataFrames++;
        stats.dataBytes += len;
        onData(src, start, off);
      } else {
        if (end - off < CONTROL_FRAME_HEADER_SIZE) break;
        const clen = readU32(src, off + 4);
        checkControlLength(clen, base + off);
        if (end - off - CONTROL_FRAME_HEADER_SIZE < clen) break;
        const frame = decodeControlBody(
          src,
          off + CONTROL_FRAME_HEADER_SIZE,
          off + CONTROL_FRAME_HEADER_SIZE + clen,
          base + off,
        );
        off += CONTROL_FRAME_HEADER_SIZE + clen;
        stats.controlFrames++;
        this.onControl(frame);
      }
    }
    return off;
  }

  /** Completes the carried-over partial frame from `src`; returns the new offset in src. */
  private completeHeld(src: Buffer, off: number, n: number): number {
    off = this.fill(src, off, n, DATA_FRAME_HEADER_SIZE);
    if (this.held < DATA_FRAME_HEADER_SIZE) return off;
    const len = readU32(this.buf, 0);
    let need: number;
    if (len !== 0) {
      if (len > this.maxDataFrameSize) {
        this.noteOversize(len, this.heldStart);
        this.skip = len - (this.held - DATA_FRAME_HEADER_SIZE);
        this.held = 0;
        const take = Math.min(this.skip, n - off);
        this.skip -= take;
        return off + take;
      }
      need = DATA_FRAME_HEADER_SIZE + len;
    } else {
      off = this.fill(src, off, n, CONTROL_FRAME_HEADER_SIZE);
      if (this.held < CONTROL_FRAME_HEADER_SIZE) return off;
      const clen = readU32(this.buf, 4);
      checkControlLength(clen, this.heldStart);
      need = CONTROL_FRAME_HEADER_SIZE + clen;
    }
    off = this.fill(src, off, n, need);
    if (this.held < need) return off;
    // The frame is whole: release the carry-over before the callback.
    this.held = 0;
    if (len !== 0) {
      this.stats.dataFrames++;
      this.stats.dataBytes += len;
      this.onData(this.buf, DATA_FRAME_HEADER_SIZE, need);
    } else {
      const frame = decodeControlBody(this.buf, CONTROL_FRAME_HEADER_SIZE, need, this.heldStart);
      this.stats.controlFrames++;
      this.onControl(frame);
    }
    return off;
  }

  private noteOversize(len: number, offset: number): void {
    this.stats.oversizeFrames++;
    this.stats.oversizeBytes += len;
    this.onOversize?.(len, offset);
  }
}
