// FrameDecoder on inputs built with the independent test builder: frame delivery,
// oversized frames, limits, malformed control frames, truncation, pause/resume, and a
// seeded fuzz run that must only ever produce FramestreamError.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDecoder, type FrameDecoderOptions } from '../../proto/framestream/decoder';
import { FramestreamError, type FramestreamErrorCode } from '../../proto/framestream/errors';
import { ReaderSession } from '../../proto/framestream/reader';
import {
  bytes,
  CT_DNSTAP,
  control,
  ct,
  data,
  field,
  prng,
  randomChunks,
  ready,
  START,
  STOP,
  start,
  stop,
  u32,
} from '../support/fstrm-builder';

type Opts = Omit<FrameDecoderOptions, 'onData' | 'onControl'>;

/** Decodes chunks into readable events: "D:<payload latin1>" and "C:<type>:<types>". */
function decode(chunks: Uint8Array[], opts: Opts = {}): { events: string[]; decoder: FrameDecoder } {
  const events: string[] = [];
  const decoder = new FrameDecoder({
    ...opts,
    onData: (buf, s, e) => events.push(`D:${buf.toString('latin1', s, e)}`),
    onControl: (f) => events.push(`C:${f.type}:${f.contentTypes.join(',')}`),
  });
  for (const c of chunks) decoder.write(c);
  decoder.end();
  return { events, decoder };
}

function everySplit(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [[input]];
  for (let k = 1; k < input.length; k++) out.push([input.subarray(0, k), input.subarray(k)]);
  out.push([...input].map((b) => Buffer.from([b])));
  return out;
}

function throwsCode(fn: () => unknown, code: FramestreamErrorCode, message?: RegExp): FramestreamError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FramestreamError, `expected FramestreamError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.name, 'FramestreamError');
  if (message) assert.match(caught.message, message);
  return caught;
}

const HEADER_CTRL = `C:${START}:${CT_DNSTAP}`;
const TRAILER_CTRL = `C:${STOP}:`;

test('data and control frames come out in order however the input is split', () => {
  const input = bytes(start(), data('a'), data('hello'), data('x'.repeat(300)), stop());
  const expected = [HEADER_CTRL, 'D:a', 'D:hello', `D:${'x'.repeat(300)}`, TRAILER_CTRL];
  for (const chunks of everySplit(input)) assert.deepEqual(decode(chunks).events, expected);
});

test('Uint8Array chunks (not Buffers) are accepted', () => {
  const input = bytes(start(), data('abc'), stop());
  const view = new Uint8Array(input.buffer.slice(input.byteOffset, input.byteOffset + input.length));
  assert.deepEqual(decode([view.subarray(0, 9), view.subarray(9)]).events, [
    HEADER_CTRL,
    'D:abc',
    TRAILER_CTRL,
  ]);
});

test('oversized data frame in the middle is skipped and counted at every split, later frames decode', () => {
  const big = 'B'.repeat(1000);
  const input = bytes(start(), data('before'), data(big), data('after'), stop());
  for (const chunks of everySplit(input)) {
    const seen: number[][] = [];
    const { events, decoder } = decode(chunks, {
      maxDataFrameSize: 100,
      onOversize: (len, offset) => seen.push([len, offset]),
    });
    assert.deepEqual(events, [HEADER_CTRL, 'D:before', 'D:after', TRAILER_CTRL]);
    assert.equal(decoder.stats.oversizeFrames, 1);
    assert.equal(decoder.stats.oversizeBytes, 1000);
    assert.deepEqual(seen, [[1000, start().length + data('before').length]]);
  }
});

test('oversized frame arriving over many chunks is not buffered', () => {
  const input = bytes(data('x'.repeat(50_000)), data('ok'));
  const events: string[] = [];
  const decoder = new FrameDecoder({
    maxDataFrameSize: 1000,
    onData: (b, s, e) => events.push(b.toString('latin1', s, e)),
    onControl: () => {},
  });
  for (const c of randomChunks(input, prng(7), 700)) {
    decoder.write(c);
    assert.ok(decoder.bufferedBytes < 8, `buffered ${decoder.bufferedBytes}`);
  }
  decoder.end();
  assert.deepEqual(events, ['ok']);
});

test('a frame exactly at the limit is delivered; larger limits than the default are allowed', () => {
  assert.deepEqual(decode([data('12345')], { maxDataFrameSize: 5 }).events, ['D:12345']);
  assert.equal(decode([data('123456')], { maxDataFrameSize: 5 }).decoder.stats.oversizeFrames, 1);
  const twoMiB = Buffer.alloc(2 * 1024 * 1024, 0x61);
  assert.equal(decode([data(twoMiB)]).decoder.stats.oversizeFrames, 1);
  const big = decode(randomChunks(data(twoMiB), prng(3), 65536), { maxDataFrameSize: 4 * 1024 * 1024 });
  assert.equal(big.decoder.stats.dataFrames, 1);
  assert.equal(big.decoder.stats.dataBytes, twoMiB.length);
});

test('invalid options are rejected naming the field', () => {
  throwsCode(() => decode([], { maxDataFrameSize: 0 }), 'FSTRM_INVALID_ARGUMENT', /maxDataFrameSize/);
  throwsCode(
    () =>
      new FrameDecoder({ maxFrameSize: 5, onData() {}, onControl() {} } as unknown as FrameDecoderOptions),
    'FSTRM_INVALID_ARGUMENT',
    /unknown option "maxFrameSize"/,
  );
});

test('control frame larger than 512 bytes: FSTRM_CONTROL_TOO_LARGE from its header alone', () => {
  throwsCode(() => decode([bytes(u32(0), u32(513))]), 'FSTRM_CONTROL_TOO_LARGE');
  throwsCode(() => decode([bytes(u32(0), u32(0xffffffff))]), 'FSTRM_CONTROL_TOO_LARGE');
  // Exactly 512 is still fine: READY with two content types filling it.
  const at512 = control(4, [ct('a'.repeat(250)), ct('b'.repeat(242))]);
  assert.equal(at512.readUInt32BE(4), 512);
  assert.equal(decode([at512]).decoder.stats.controlFrames, 1);
});

test('malformed control frames: each gives its code, at every split point', () => {
  const cases: [string, Buffer, FramestreamErrorCode][] = [
    ['unknown control type', control(6), 'FSTRM_UNKNOWN_CONTROL'],
    ['control type 0', control(0), 'FSTRM_UNKNOWN_CONTROL'],
    ['control shorter than its type', bytes(u32(0), u32(2), [0, 2]), 'FSTRM_CONTROL_MALFORMED'],
    ['field length past the end', control(START, [field(1, CT_DNSTAP, 100)]), 'FSTRM_CONTROL_MALFORMED'],
    ['field header cut short', control(START, [u32(1)]), 'FSTRM_CONTROL_MALFORMED'],
    ['unknown field type', control(START, [field(2, 'x')]), 'FSTRM_CONTROL_MALFORMED'],
    ['START with two content types', control(START, [ct('a'), ct('b')]), 'FSTRM_CONTROL_MALFORMED'],
    ['STOP with a content type', control(STOP, [ct(CT_DNSTAP)]), 'FSTRM_CONTROL_MALFORMED'],
    ['content type above 256 bytes', control(4, [ct('c'.repeat(257))]), 'FSTRM_CONTROL_MALFORMED'],
  ];
  for (const [what, frame, code] of cases) {
    for (const chunks of everySplit(bytes(data('ok'), frame, data('never')))) {
      const err = throwsCode(() => decode(chunks), code);
      assert.equal(err.offset, data('ok').length, what);
    }
  }
});

test('truncated input: end() throws FSTRM_TRUNCATED saying how much was pending', () => {
  const whole = bytes(start(), data('0123456789'), stop());
  const cut = whole.length - stop().length - 4; // inside the data frame's payload
  const err = throwsCode(() => decode([whole.subarray(0, cut)]), 'FSTRM_TRUNCATED', /6 of 10 payload bytes/);
  assert.equal(err.offset, start().length);
  throwsCode(() => decode([whole.subarray(0, whole.length - 3)]), 'FSTRM_TRUNCATED', /control frame/);
  throwsCode(() => decode([u32(5).subarray(0, 2)]), 'FSTRM_TRUNCATED', /2 of the 4 bytes/);
  throwsCode(
    () => decode([data('x'.repeat(200)).subarray(0, 50)], { maxDataFrameSize: 10 }),
    'FSTRM_TRUNCATED',
  );
  assert.deepEqual(decode([whole]).events.length, 3);
});

test('after a failure the decoder rethrows the same error; re-entrant use is refused', () => {
  const decoder = new FrameDecoder({ onData() {}, onControl() {} });
  const first = throwsCode(() => decoder.write(control(9)), 'FSTRM_UNKNOWN_CONTROL');
  assert.throws(
    () => decoder.write(data('x')),
    (e) => e === first,
  );
  assert.throws(
    () => decoder.end(),
    (e) => e === first,
  );

  const inner = new FrameDecoder({ onData: () => inner.write(data('y')), onControl() {} });
  throwsCode(() => inner.write(data('x')), 'FSTRM_INVALID_STATE', /re-entrantly/);
});

test('garbage bytes give a FramestreamError, never a generic exception', () => {
  const garbage: [Buffer, FramestreamErrorCode][] = [
    // "GET " reads as a ~1.2 GB data frame: skipped as oversized, then the input ends inside it.
    [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'FSTRM_TRUNCATED'],
    [bytes(u32(0), Buffer.from('\xff\xff\xff\xffjunk', 'latin1')), 'FSTRM_CONTROL_TOO_LARGE'],
    [bytes(u32(0), u32(8), u32(2), u32(1)), 'FSTRM_CONTROL_MALFORMED'],
    [bytes(u32(0), u32(4), u32(0x7fffffff)), 'FSTRM_UNKNOWN_CONTROL'],
  ];
  for (const [g, code] of garbage) {
    for (const chunks of everySplit(g)) throwsCode(() => decode(chunks), code);
  }
});

test('fuzz: random and mutated input through decoder + session only throws FramestreamError', () => {
  const rand = prng(0x5eed);
  const valid = bytes(ready(CT_DNSTAP), start(), data('abc'), data('x'.repeat(40)), stop());
  let failures = 0;
  let frames = 0;
  for (let i = 0; i < 4000; i++) {
    let input: Buffer;
    if (i % 2 === 0) {
      input = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
    } else {
      input = Buffer.from(valid);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) input[Math.floor(rand() * input.length)] = Math.floor(rand() * 256);
      input = input.subarray(0, Math.floor(rand() * (input.length + 1)));
    }
    const session = new ReaderSession();
    const decoder = new FrameDecoder({
      maxDataFrameSize: 1 + Math.floor(rand() * 100),
      onData: () => {
        session.onData();
        frames++;
      },
      onControl: (f) => session.onControl(f),
    });
    try {
      for (const c of randomChunks(input, rand, 16)) decoder.write(c);
      decoder.end();
      session.end();
    } catch (err) {
      if (!(err instanceof FramestreamError)) throw err;
      failures++;
    }
  }
  assert.ok(failures > 1000, `only ${failures} inputs failed`);
  assert.ok(frames > 0);
});
