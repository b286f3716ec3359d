// proto/kit ChunkDecoder, the carry-over shared by the Frame Streams and link decoders,
// tested through a toy protocol (a length byte, then that many body bytes; length 0xff is a
// fatal error): every split point, frames larger than the initial buffer, the growth cap,
// shrinking, re-entrancy, the failure latch and end().

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkDecoder } from '../../proto/kit/index';

class ToyError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

class ToyDecoder extends ChunkDecoder {
  readonly stats = { bytesIn: 0 };
  constructor(
    readonly onFrame: (body: string, offset: number) => void,
    sizes = { initial: 4, max: 64, shrinkAbove: 16 },
  ) {
    super(sizes, {
      error: (m) => new ToyError('INVALID_STATE', m),
      reentrantWrite: 'write from a callback',
      reentrantEnd: 'end from a callback',
      writeAfterEnd: 'write after end',
    });
  }
  get capacity(): number {
    return this.buf.length;
  }
  protected truncation(): Error | null {
    return this.held === 0 ? null : new ToyError('TRUNCATED', `${this.held} bytes at ${this.heldStart}`);
  }
  protected decode(src: Buffer, base: number): void {
    const n = src.length;
    let off = 0;
    if (this.held > 0) {
      off = this.fill(src, 0, n, 1);
      const need = 1 + this.check(this.buf[0]!, this.heldStart);
      off = this.fill(src, off, n, need);
      if (this.held < need) return;
      this.held = 0;
      this.onFrame(this.buf.toString('latin1', 1, need), this.heldStart);
      this.shrink();
    }
    while (off < n) {
      const len = this.check(src[off]!, base + off);
      if (n - off - 1 < len) break;
      this.onFrame(src.toString('latin1', off + 1, off + 1 + len), base + off);
      off += 1 + len;
    }
    if (off < n) this.keep(src, off, n, base);
  }
  private check(len: number, offset: number): number {
    if (len === 0xff) throw new ToyError('BAD', `bad length at ${offset}`);
    return len;
  }
}

const frame = (body: string) => Buffer.concat([Buffer.of(body.length), Buffer.from(body, 'latin1')]);

function* everySplit(input: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++)
      yield [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
  }
}

test('every split into three chunks gives the same frames at the same offsets', () => {
  const bodies = ['a', '', 'hello world', 'x'.repeat(40), 'z'];
  const input = Buffer.concat(bodies.map(frame));
  const expected: [string, number][] = [];
  let at = 0;
  for (const b of bodies) {
    expected.push([b, at]);
    at += 1 + b.length;
  }
  for (const chunks of everySplit(input)) {
    const got: [string, number][] = [];
    const d = new ToyDecoder((b, o) => got.push([b, o]));
    for (const c of chunks) d.write(c);
    d.end();
    assert.deepEqual(got, expected);
    assert.equal(d.bufferedBytes, 0);
  }
});

test('byte by byte: only the cut frame is held, and a large carried frame grows then gives back the buffer', () => {
  const got: string[] = [];
  const d = new ToyDecoder((b) => got.push(b));
  const big = 'y'.repeat(40);
  const input = Buffer.concat([frame(big), frame('ok')]);
  let maxCapacity = 0;
  for (let i = 0; i < input.length; i++) {
    d.write(input.subarray(i, i + 1));
    maxCapacity = Math.max(maxCapacity, d.capacity);
    if (i < 40) assert.equal(d.bufferedBytes, i + 1);
  }
  assert.deepEqual(got, [big, 'ok']);
  assert.ok(maxCapacity >= 41 && maxCapacity <= 64, `grew to ${maxCapacity}`);
  assert.equal(d.capacity, 4, 'shrunk back to the initial size after the big frame');
});

test('Uint8Array chunks that are not Buffers are read in place', () => {
  const got: string[] = [];
  const d = new ToyDecoder((b) => got.push(b));
  const bytes = new Uint8Array(frame('abc'));
  d.write(bytes.subarray(0, 2));
  d.write(bytes.subarray(2));
  assert.deepEqual(got, ['abc']);
});

test('write() and end() from a callback throw the protocol misuse error', () => {
  const inner = new ToyDecoder(() => inner.write(frame('x')));
  assert.throws(() => inner.write(frame('a')), { code: 'INVALID_STATE', message: 'write from a callback' });
  const ender = new ToyDecoder(() => ender.end());
  assert.throws(() => ender.write(frame('a')), { code: 'INVALID_STATE', message: 'end from a callback' });
});

test('the first error fails the decoder: every later call rethrows it', () => {
  const d = new ToyDecoder(() => {});
  let first: unknown;
  try {
    d.write(Buffer.of(1, 0x61, 0xff));
  } catch (err) {
    first = err;
  }
  assert.ok(first instanceof ToyError && first.code === 'BAD');
  assert.throws(
    () => d.write(frame('a')),
    (e) => e === first,
  );
  assert.throws(
    () => d.end(),
    (e) => e === first,
  );
});

test('end() inside a frame throws the truncation error, once latched; after end() writes throw', () => {
  const cut = new ToyDecoder(() => {});
  cut.write(Buffer.concat([frame('ab'), Buffer.of(5, 0x61)]));
  assert.throws(() => cut.end(), { code: 'TRUNCATED', message: '2 bytes at 3' });
  assert.throws(() => cut.end(), { code: 'TRUNCATED' });

  const clean = new ToyDecoder(() => {});
  clean.write(frame('ab'));
  clean.end();
  clean.end();
  assert.throws(() => clean.write(frame('c')), { code: 'INVALID_STATE', message: 'write after end' });
});
