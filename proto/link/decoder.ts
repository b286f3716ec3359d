// Incremental link frame decoder: bytes in (any chunking), whole frames out, in order, as
// (type, buf, start, end) with the protobuf body at buf[start, end).
//
// Frames that lie whole inside a chunk are delivered straight from it (no copy). Only a
// frame cut by a chunk boundary is carried over (proto/kit ChunkDecoder, shared with the
// Frame Streams decoder: carry-over, re-entrancy, failure latch), so there is no
// Buffer.concat per chunk. Each header is checked the moment its
// 5 bytes are in: length, type, the type allowed in the current state, the size limit of
// that type. So a peer can make us buffer at most the limit of a frame we agreed to take:
// 64 KiB before the handshake (only Hello is allowed then), a Batch frame after it.
//
// Every error is fatal (errors.ts says why): the decoder then rethrows it on every call.
// There is no pause(): the in-flight window bounds what an agent may send unacknowledged,
// and an owner whose pipeline is full simply stops reading the socket (TCP backpressure).

import { readU32 } from '../kit/bytes';
import { ChunkDecoder } from '../kit/chunk-decoder';
import { checkInt } from '../kit/options';
import {
  Accepts,
  FRAME_HEADER_SIZE,
  LENGTH_SIZE,
  MAX_CONTROL_BODY,
  MAX_LINK_FRAME,
  MessageType,
  type MessageTypeCode,
  messageTypeName,
} from './constants';
import { guessPeer, invalidArgument, LinkErrorCode, LinkProtocolError } from './errors';

/** A frame's body is buf[start, end); valid only until the handler returns. */
export type LinkFrameHandler = (type: MessageTypeCode, buf: Buffer, start: number, end: number) => void;

export interface LinkFrameDecoderOptions {
  onFrame: LinkFrameHandler;
  /** Largest frame length N accepted (what the enricher puts in Welcome). Default MAX_LINK_FRAME. */
  maxFrameBytes?: number;
  /** Mask of accepted types (constants.ts Accepts / typeMask); default: every type. */
  accept?: number;
}

export interface LinkFrameDecoderStats {
  bytesIn: number;
  frames: number;
  /** Body bytes delivered. */
  bodyBytes: number;
}

/** Carry-over buffer: initial size, and above what size it is given back after a frame. */
export const DECODER_INITIAL_BUFFER_SIZE = 64 * 1024;
export const DECODER_SHRINK_ABOVE = 1024 * 1024;

const CARRY_OVER = {
  initial: DECODER_INITIAL_BUFFER_SIZE,
  max: LENGTH_SIZE + MAX_LINK_FRAME,
  shrinkAbove: DECODER_SHRINK_ABOVE,
};
const MISUSE = {
  error: (message: string) => new LinkProtocolError(LinkErrorCode.INVALID_STATE, message),
  reentrantWrite: 'write() called from onFrame',
  reentrantEnd: 'end() called from onFrame',
  writeAfterEnd: 'write() after end()',
};

export class LinkFrameDecoder extends ChunkDecoder {
  readonly stats: LinkFrameDecoderStats = { bytesIn: 0, frames: 0, bodyBytes: 0 };
  readonly maxFrameBytes: number;
  private readonly onFrame: LinkFrameHandler;
  private mask: number;

  constructor(options: LinkFrameDecoderOptions) {
    super(CARRY_OVER, MISUSE);
    for (const key of Object.keys(options ?? {})) {
      if (key !== 'onFrame' && key !== 'maxFrameBytes' && key !== 'accept') {
        throw invalidArgument(
          `LinkFrameDecoder: unknown option "${key}" (known: onFrame, maxFrameBytes, accept)`,
        );
      }
    }
    if (typeof options?.onFrame !== 'function')
      throw invalidArgument('LinkFrameDecoder: onFrame is required');
    const max = options.maxFrameBytes ?? MAX_LINK_FRAME;
    const field = 'LinkFrameDecoder: maxFrameBytes';
    this.maxFrameBytes = checkInt(field, max, 1 + MAX_CONTROL_BODY, MAX_LINK_FRAME, invalidArgument);
    this.onFrame = options.onFrame;
    this.mask = options.accept ?? Accepts.ANY;
  }

  /**
   * Sets the types accepted from now on, including the rest of the chunk being decoded when
   * called from onFrame (e.g. Accepts.ENRICHER_OPEN right after answering a Hello).
   */
  accept(mask: number): void {
    this.mask = mask;
  }

  // write(chunk) delivers every complete frame in it and throws LinkProtocolError (fatal) on
  // a bad one; end() throws LINK_TRUNCATED when input ended inside a frame.

  protected decode(src: Buffer, base: number): void {
    const n = src.length;
    let off = 0;
    if (this.held > 0) off = this.completeHeld(src, n);
    if (off < n && this.held === 0) off = this.parse(src, off, n, base);
    if (off < n) this.keep(src, off, n, base);
  }

  protected truncation(): LinkProtocolError | null {
    if (this.held === 0) return null;
    const what = this.held < FRAME_HEADER_SIZE ? 'header' : `${readU32(this.buf, 0)}-byte frame`;
    return new LinkProtocolError(
      LinkErrorCode.TRUNCATED,
      `input ended inside a ${what} at offset ${this.heldStart} (${this.held} bytes pending)`,
      { offset: this.heldStart },
    );
  }

  /** The frame loop over a chunk. Returns the offset of the first byte not consumed. */
  private parse(src: Buffer, off: number, end: number, base: number): number {
    while (end - off >= FRAME_HEADER_SIZE) {
      const n = readU32(src, off);
      this.checkHeader(n, src[off + 4]!, src, off, base + off);
      const frameEnd = off + LENGTH_SIZE + n;
      if (frameEnd > end) break;
      this.deliver(src, off, frameEnd);
      off = frameEnd;
    }
    // Four bytes already condemn an impossible length; no need to wait for the fifth.
    if (end - off >= LENGTH_SIZE) this.checkLength(readU32(src, off), src, off, base + off);
    return off;
  }

  /** Completes the carried-over frame from the start of src; returns the offset in src. */
  private completeHeld(src: Buffer, n: number): number {
    let off = this.fill(src, 0, n, FRAME_HEADER_SIZE);
    if (this.held < LENGTH_SIZE) return off;
    const len = readU32(this.buf, 0);
    if (this.held < FRAME_HEADER_SIZE) {
      this.checkLength(len, this.buf, 0, this.heldStart);
      return off;
    }
    this.checkHeader(len, this.buf[4]!, this.buf, 0, this.heldStart);
    off = this.fill(src, off, n, LENGTH_SIZE + len);
    if (this.held < LENGTH_SIZE + len) return off;
    this.held = 0;
    this.deliver(this.buf, 0, LENGTH_SIZE + len);
    this.shrink();
    return off;
  }

  private deliver(buf: Buffer, frameStart: number, frameEnd: number): void {
    this.stats.frames++;
    this.stats.bodyBytes += frameEnd - frameStart - FRAME_HEADER_SIZE;
    this.onFrame(buf[frameStart + 4] as MessageTypeCode, buf, frameStart + FRAME_HEADER_SIZE, frameEnd);
  }

  private checkLength(n: number, buf: Buffer, at: number, offset: number): void {
    if (n === 0) {
      const hint = offset === 0 ? guessPeer(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!) : '';
      throw new LinkProtocolError(LinkErrorCode.EMPTY_FRAME, `frame length 0 at offset ${offset}${hint}`, {
        offset,
      });
    }
    if (n > this.maxFrameBytes) {
      const hint = offset === 0 ? guessPeer(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!) : '';
      throw new LinkProtocolError(
        LinkErrorCode.FRAME_TOO_LARGE,
        `frame length ${n} at offset ${offset} exceeds the limit of ${this.maxFrameBytes}${hint}`,
        { offset },
      );
    }
  }

  private checkHeader(n: number, type: number, buf: Buffer, at: number, offset: number): void {
    this.checkLength(n, buf, at, offset);
    if (!(type >= MessageType.HELLO && type <= MessageType.GOODBYE)) {
      throw new LinkProtocolError(
        LinkErrorCode.UNKNOWN_TYPE,
        `unknown message type ${messageTypeName(type)} at offset ${offset}`,
        { offset },
      );
    }
    if ((this.mask & (1 << type)) === 0) {
      throw new LinkProtocolError(
        LinkErrorCode.UNEXPECTED_TYPE,
        `${messageTypeName(type)} not allowed here (offset ${offset})`,
        { offset },
      );
    }
    if (type !== MessageType.BATCH && n - 1 > MAX_CONTROL_BODY) {
      throw new LinkProtocolError(
        LinkErrorCode.FRAME_TOO_LARGE,
        `${messageTypeName(type)} body of ${n - 1} bytes at offset ${offset} exceeds ${MAX_CONTROL_BODY}`,
        { offset },
      );
    }
  }
}
