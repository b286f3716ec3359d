// Incremental Frame Streams decoder: bytes in (any chunking), whole frames out, in order.
//
// Complete frames are delivered straight from the caller's chunk (no copy). Only a frame
// cut by a chunk boundary is carried over, in one growing buffer that is reused for the
// life of the decoder, so there is no Buffer.concat per chunk and no allocation per data
// frame. Oversized data frames are skipped as their bytes stream past, never buffered.
//
// Backpressure: write() returns nothing and never queues frames. An owner whose sink is
// full pauses its source (socket.pause(), stop reading the file) and resumes it later. If
// it must stop mid-chunk, it calls decoder.pause() from inside onData/onControl: decoding
// stops after that frame and the rest of the chunk is kept (copied) until resume(). While
// paused, write() only appends, so the owner must pause its source too: `bufferedBytes`
// tells it how much it let in.

import { readU32 } from '../kit/index';
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

export interface FrameDecoderOptions {
  /** Largest accepted payload; larger frames are skipped and counted. Default 1 MiB. */
  maxDataFrameSize?: number;
  onData: DataFrameHandler;
  onControl: (frame: ControlFrame) => void;
  /** Told about each skipped oversized frame: its announced length and stream offset. */
  onOversize?: (length: number, offset: number) => void;
}

const OPTION_KEYS = ['maxDataFrameSize', 'onData', 'onControl', 'onOversize'] as const;

export interface FrameDecoderStats {
  bytesIn: number;
  dataFrames: number;
  dataBytes: number;
  controlFrames: number;
  oversizeFrames: number;
  oversizeBytes: number;
}

function invalidState(message: string): FramestreamError {
  return new FramestreamError(FramestreamErrorCode.INVALID_STATE, message);
}

export class FrameDecoder {
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
  private readonly onControl: (frame: ControlFrame) => void;
  private readonly onOversize: ((length: number, offset: number) => void) | undefined;
  /** Carry-over bytes: `buf[0, held)` starts at stream offset `heldStart`. */
  private buf: Buffer = Buffer.allocUnsafe(DECODER_INITIAL_BUFFER_SIZE);
  private held = 0;
  private heldStart = 0;
  /** Bytes of an oversized data frame still to be skipped. */
  private skip = 0;
  private paused = false;
  private busy = false;
  private ended = false;
  private failure: unknown = null;

  constructor(options: FrameDecoderOptions) {
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
    this.onData = options.onData;
    this.onControl = options.onControl;
    this.onOversize = options.onOversize;
  }

  /** True after pause() until resume(). */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Bytes held back: a partial frame, plus everything written while paused. */
  get bufferedBytes(): number {
    return this.held;
  }

  /**
   * Parses every complete frame in `chunk`, in order, calling onData/onControl for each.
   * Throws FramestreamError for a fatal control frame problem; after that the decoder is
   * failed and every further call rethrows the same error.
   */
  write(chunk: Uint8Array): void {
    this.enter();
    const src = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = src.length;
    const base = this.stats.bytesIn;
    this.stats.bytesIn += n;
    try {
      let off = 0;
      if (this.skip > 0) {
        off = Math.min(this.skip, n);
        this.skip -= off;
      }
      if (off < n && !this.paused && this.held > 0) off = this.completeHeld(src, off, n);
      if (off < n && !this.paused) off = this.parse(src, off, n, base);
      if (off < n) this.append(src, off, n, base);
    } catch (err) {
      this.failure = err;
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Stops delivering frames after the current one; call from a callback or between writes. */
  pause(): void {
    this.paused = true;
  }

  /** Delivers the frames buffered while paused (until paused again), then accepts writes. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Called from inside a callback: the running parse loop simply carries on.
    if (this.busy || this.held === 0) return;
    this.enter();
    try {
      const off = this.parse(this.buf, 0, this.held, this.heldStart);
      if (off > 0) {
        this.buf.copyWithin(0, off, this.held);
        this.held -= off;
        this.heldStart += off;
      }
    } catch (err) {
      this.failure = err;
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Declares end of input. Throws FSTRM_TRUNCATED when it cut a frame. */
  end(): void {
    if (this.failure !== null) throw this.failure;
    if (this.ended) return;
    if (this.busy) throw invalidState('FrameDecoder.end() called from one of its callbacks');
    if (this.paused && this.held > 0) {
      throw invalidState(`end() while paused with ${this.held} bytes buffered; resume() first`);
    }
    this.ended = true;
    if (this.skip > 0) {
      this.failure = new FramestreamError(
        FramestreamErrorCode.TRUNCATED,
        `input ended inside an oversized data frame, ${this.skip} bytes short`,
      );
    } else if (this.held > 0) {
      this.failure = this.truncated();
    }
    if (this.failure !== null) throw this.failure;
  }

  private enter(): void {
    if (this.failure !== null) throw this.failure;
    if (this.busy) throw invalidState('FrameDecoder used re-entrantly from one of its callbacks');
    if (this.ended) throw invalidState('FrameDecoder used after end()');
    this.busy = true;
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
      if (this.paused) break;
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
    // The frame is whole: release the carry-over before the callback so a pause() in it
    // keeps only the bytes that follow.
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

  /** Copies from src until the carry-over holds `target` bytes (or src runs out). */
  private fill(src: Buffer, off: number, n: number, target: number): number {
    if (this.held >= target) return off;
    this.reserve(target);
    const take = Math.min(target - this.held, n - off);
    src.copy(this.buf, this.held, off, off + take);
    this.held += take;
    return off + take;
  }

  private append(src: Buffer, off: number, n: number, base: number): void {
    if (this.held === 0) this.heldStart = base + off;
    this.reserve(this.held + n - off);
    src.copy(this.buf, this.held, off, n);
    this.held += n - off;
  }

  private reserve(size: number): void {
    if (this.buf.length >= size) return;
    const grown = Buffer.allocUnsafe(Math.max(size, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.held);
    this.buf = grown;
  }

  private noteOversize(len: number, offset: number): void {
    this.stats.oversizeFrames++;
    this.stats.oversizeBytes += len;
    this.onOversize?.(len, offset);
  }
}
