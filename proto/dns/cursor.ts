// A bounds-checked reader over one DNS message inside a larger buffer (buf[start..end)).
// Every read checks against `end`, never against buf.length: a dnstap frame carries the
// message in the middle of a bigger buffer, and the bytes after it belong to someone else.
// One Cursor is reused for every message (reset/release), so reading allocates nothing.
//
// Errors accumulate instead of being thrown (the pattern of Go's cryptobyte.String): the
// first failure records a typed code and its offset, moves `pos` to `end` so every later
// read fails too, and reads return 0. The parser checks `error` before it commits a field
// and turns it into one DnsParseError (or returns the code) at the end. Why not throw at the
// failing read: in Node 20 every `throw` makes V8 build a message object (source location
// from a stack walk), ~2 µs per malformed message even with a pre-built error object;
// a garbage flood would make the error path 25x slower than a successful parse.

import type { DnsErrorCode } from './errors';

const EMPTY = Buffer.alloc(0);

export class Cursor {
  buf: Buffer = EMPTY;
  /** First byte of the DNS message (offset 0 for compression pointers). */
  start = 0;
  /** Next byte to read (absolute index into buf). */
  pos = 0;
  /** One past the last byte of the message. */
  end = 0;
  /** The first failure, or null while everything read so far was in bounds and valid. */
  error: DnsErrorCode | null = null;
  /** Offset of the first failure relative to `start`; -1 while `error` is null. */
  errorOffset = -1;

  /** Points the cursor at buf[start..end); the caller guarantees 0 <= start <= end <= buf.length. */
  reset(buf: Buffer, start: number, end: number): void {
    this.buf = buf;
    this.start = start;
    this.pos = start;
    this.end = end;
    this.error = null;
    this.errorOffset = -1;
  }

  /** Drops the reference to the last buffer so a reused cursor does not keep it alive. */
  release(): void {
    this.buf = EMPTY;
    this.start = 0;
    this.pos = 0;
    this.end = 0;
  }

  /** Bytes left before `end`. */
  remaining(): number {
    return this.end - this.pos;
  }

  /**
   * Records a failure at absolute index `at` (the first one wins) and exhausts the cursor.
   * Returns false so callers can write `return cur.fail(...)`.
   */
  fail(code: DnsErrorCode, at: number): false {
    if (this.error === null) {
      this.error = code;
      this.errorOffset = at - this.start;
    }
    this.pos = this.end;
    return false;
  }

  /** True when n more bytes are available; otherwise records DNS_TRUNCATED. */
  need(n: number): boolean {
    return this.end - this.pos >= n || this.fail('DNS_TRUNCATED', this.pos);
  }

  u8(): number {
    const p = this.pos;
    if (p >= this.end) return this.truncated();
    this.pos = p + 1;
    return this.buf[p];
  }

  u16(): number {
    const p = this.pos;
    if (this.end - p < 2) return this.truncated();
    this.pos = p + 2;
    const b = this.buf;
    return (b[p] << 8) | b[p + 1];
  }

  u32(): number {
    const p = this.pos;
    if (this.end - p < 4) return this.truncated();
    this.pos = p + 4;
    const b = this.buf;
    // `* 0x1000000` instead of `<< 24` keeps the top bit from making the result negative.
    return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  /** Advances n bytes; false (and DNS_TRUNCATED recorded) when fewer remain. */
  advance(n: number): boolean {
    if (this.end - this.pos < n) return this.fail('DNS_TRUNCATED', this.pos);
    this.pos += n;
    return true;
  }

  private truncated(): number {
    this.fail('DNS_TRUNCATED', this.pos);
    return 0;
  }
}
