// The part that the Frame Streams decoder and the link decoder share: their hardest
// invariant. Bytes arrive in chunks cut anywhere; frames that lie whole in a chunk are the
// subclass's business (delivered straight from the chunk, no copy), and only a frame cut by
// a chunk boundary is carried over here, in one buffer reused for the decoder's life (no
// Buffer.concat per chunk). Around that:
//   - re-entrancy: write()/end() from inside a frame callback throw (the callback gets a
//     view into a buffer the running write() is still walking);
//   - failure latch: the first error thrown by decode() fails the decoder for good, and
//     every later call rethrows it (a stream that lost sync cannot be resumed);
//   - end(): after it, writes throw; it throws the subclass's truncation error when input
//     ended inside a frame.
// The frame loops stay in the subclasses: this class is touched once per chunk, not per frame.

/** The misuse messages, per decoder (each protocol wraps them in its own error type). */
export interface ChunkDecoderMisuse {
  /** Builds the protocol's INVALID_STATE error. */
  error: (message: string) => Error;
  reentrantWrite: string;
  reentrantEnd: string;
  writeAfterEnd: string;
}

export interface CarryOverSizes {
  /** Initial size of the carry-over buffer. */
  initial: number;
  /** The buffer never grows beyond this (the largest frame the decoder can hold). */
  max: number;
  /** After a carried frame is delivered, a buffer larger than this is given back. */
  shrinkAbove: number;
}

export abstract class ChunkDecoder {
  /** Carry-over: buf[0, held) is the start of a frame cut by a chunk boundary... */
  protected buf: Buffer;
  protected held = 0;
  /** ...which starts at this offset of the stream. */
  protected heldStart = 0;
  private busy = false;
  private ended = false;
  private failure: unknown = null;

  constructor(
    private readonly sizes: CarryOverSizes,
    private readonly misuse: ChunkDecoderMisuse,
  ) {
    this.buf = Buffer.allocUnsafe(sizes.initial);
  }

  /** Bytes of an incomplete frame held back. */
  get bufferedBytes(): number {
    return this.held;
  }

  /**
   * Decodes `chunk`: every complete frame in it is delivered, a cut one carried over. Throws
   * the subclass's (fatal) error for a bad frame; the decoder then rethrows it on every call.
   */
  write(chunk: Uint8Array): void {
    if (this.failure !== null) throw this.failure;
    if (this.busy) throw this.misuse.error(this.misuse.reentrantWrite);
    if (this.ended) throw this.misuse.error(this.misuse.writeAfterEnd);
    this.busy = true;
    const src = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const base = this.stats.bytesIn;
    this.stats.bytesIn += src.length;
    try {
      this.decode(src, base);
    } catch (err) {
      this.failure = err;
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Declares end of input; throws the subclass's truncation error when it cut a frame. */
  end(): void {
    if (this.failure !== null) throw this.failure;
    if (this.busy) throw this.misuse.error(this.misuse.reentrantEnd);
    if (this.ended) return;
    this.ended = true;
    const err = this.truncation();
    if (err !== null) {
      this.failure = err;
      throw err;
    }
  }

  /** Decodes src (whole), whose first byte is at stream offset `base`. */
  protected abstract decode(src: Buffer, base: number): void;

  /** The decoder's counters; `bytesIn` (the stream offset of the next chunk) is counted here. */
  abstract readonly stats: { bytesIn: number };

  /** The error for input that ended inside a frame, or null when nothing is pending. */
  protected abstract truncation(): Error | null;

  /** Copies src[off, n) into the carry-over until it holds `target` bytes; returns the new off. */
  protected fill(src: Buffer, off: number, n: number, target: number): number {
    if (this.held >= target) return off;
    if (this.buf.length < target) {
      const grown = Buffer.allocUnsafe(Math.min(Math.max(target, this.buf.length * 2), this.sizes.max));
      this.buf.copy(grown, 0, 0, this.held);
      this.buf = grown;
    }
    const take = Math.min(target - this.held, n - off);
    src.copy(this.buf, this.held, off, off + take);
    this.held += take;
    return off + take;
  }

  /** Keeps the rest of the chunk, src[off, n) at stream offset base + off, for the next one. */
  protected keep(src: Buffer, off: number, n: number, base: number): void {
    if (this.held === 0) this.heldStart = base + off;
    this.fill(src, off, n, this.held + n - off);
  }

  /** Gives back a carry-over buffer grown large by one big frame (call after delivering it). */
  protected shrink(): void {
    if (this.buf.length > this.sizes.shrinkAbove) this.buf = Buffer.allocUnsafe(this.sizes.initial);
  }
}
