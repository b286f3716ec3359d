// LinkFrameDecoder on streams built with the independent test builder: every split point,
// byte by byte, limits checked as soon as a header is in, type masks, truncation, hints for
// a wrong peer, and a seeded fuzz run that may only ever produce LinkProtocolError.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchView } from '../../proto/link/batch-view';
import { Accepts, MAX_CONTROL_BODY, MAX_LINK_FRAME, type MessageTypeCode } from '../../proto/link/constants';
import { decodeControl } from '../../proto/link/control';
import {
  DECODER_SHRINK_ABOVE,
  LinkFrameDecoder,
  type LinkFrameDecoderOptions,
} from '../../proto/link/decoder';
import { type LinkErrorCode, LinkProtocolError } from '../../proto/link/errors';
import {
  batchFrame,
  everySplit,
  frame,
  oneOfEach,
  Pb,
  prng,
  randInt,
  randomBytes,
  randomChunks,
  splitLinkFrames,
  T,
  u32be,
} from '../support/link-builder';

type Opts = Omit<LinkFrameDecoderOptions, 'onFrame'>;

function decode(chunks: Uint8Array[], opts: Opts = {}): string[] {
  const events: string[] = [];
  const d = new LinkFrameDecoder({
    ...opts,
    onFrame: (t, b, s, e) => events.push(`${t}:${b.toString('hex', s, e)}`),
  });
  for (const c of chunks) d.write(c);
  d.end();
  return events;
}

function throwsCode(fn: () => unknown, code: LinkErrorCode, message?: RegExp): LinkProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof LinkProtocolError, `expected LinkProtocolError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.name, 'LinkProtocolError');
  if (message) assert.match(caught.message, message);
  return caught;
}

test('one frame of each type comes out identically however the stream is split', () => {
  const input = oneOfEach();
  const expected = splitLinkFrames(input).map((f) => `${f.type}:${f.body.toString('hex')}`);
  assert.equal(expected.length, 9);
  assert.deepEqual(
    expected.map((e) => Number(e.split(':')[0])),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  for (const chunks of everySplit(input)) assert.deepEqual(decode(chunks), expected);
});

test('random chunkings of many frames deliver the same frames and stats', () => {
  const rand = prng(7);
  const parts: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const records = Array.from({ length: randInt(rand, 20) }, () => randomBytes(rand, randInt(rand, 400)));
    parts.push(
      rand() < 0.5 ? batchFrame({ seq: i + 1, records }) : frame(T.ACK, new Pb().len(1, [i & 0x7f])),
    );
  }
  const input = Buffer.concat(parts);
  const expected = splitLinkFrames(input).map((f) => `${f.type}:${f.body.toString('hex')}`);
  for (const max of [1, 7, 100, 4096, 70000]) {
    const events: string[] = [];
    const d = new LinkFrameDecoder({
      onFrame: (t, b, s, e) => events.push(`${t}:${b.toString('hex', s, e)}`),
    });
    for (const c of randomChunks(input, rand, max)) d.write(c);
    d.end();
    assert.deepEqual(events, expected);
    assert.equal(d.stats.frames, 300);
    assert.equal(d.stats.bytesIn, input.length);
    assert.equal(d.stats.bodyBytes, input.length - 300 * 5);
    assert.equal(d.bufferedBytes, 0);
  }
});

test('Uint8Array chunks are accepted and frames inside one chunk are not copied', () => {
  const input = oneOfEach();
  const seen: Buffer[] = [];
  const d = new LinkFrameDecoder({ onFrame: (_t, b) => seen.push(b) });
  d.write(new Uint8Array(input.buffer, input.byteOffset, input.length));
  assert.equal(seen.length, 9);
  for (const b of seen) assert.equal(b.buffer, input.buffer);
});

test('a length of 0 is refused after 4 bytes', () => {
  const d = new LinkFrameDecoder({ onFrame: () => assert.fail() });
  d.write(Buffer.alloc(0)); // an empty chunk is harmless
  throwsCode(() => d.write(Buffer.from(u32be(0))), 'LINK_EMPTY_FRAME', /offset 0/);
  // The failure is sticky.
  throwsCode(() => d.write(Buffer.from([1])), 'LINK_EMPTY_FRAME');
  throwsCode(() => d.end(), 'LINK_EMPTY_FRAME');
});

test('a frame above maxFrameBytes is refused from its length alone', () => {
  throwsCode(() => decode([Buffer.from(u32be(MAX_LINK_FRAME + 1))]), 'LINK_FRAME_TOO_LARGE', /exceeds/);
  // Split inside the length: the carried-over path checks too.
  const lie = Buffer.from(u32be(200_000));
  throwsCode(
    () => decode([lie.subarray(0, 2), lie.subarray(2)], { maxFrameBytes: 100_000 }),
    'LINK_FRAME_TOO_LARGE',
  );
  // Exactly the limit is fine.
  const max = 1 + MAX_CONTROL_BODY + 10;
  const ok = frame(T.BATCH, Buffer.alloc(max - 1));
  assert.equal(decode([ok], { maxFrameBytes: max }).length, 1);
  throwsCode(
    () => decode([frame(T.BATCH, Buffer.alloc(max))], { maxFrameBytes: max }),
    'LINK_FRAME_TOO_LARGE',
  );
});

test('a control body above MAX_CONTROL_BODY is refused once the type byte is in; a Batch is not', () => {
  const atLimit = frame(T.GOODBYE, Buffer.alloc(MAX_CONTROL_BODY));
  assert.equal(decode([atLimit]).length, 1);
  const header = Buffer.from([...u32be(MAX_CONTROL_BODY + 2), T.GOODBYE]);
  const e = throwsCode(() => decode([header]), 'LINK_FRAME_TOO_LARGE', /Goodbye body/);
  assert.equal(e.offset, 0);
  assert.equal(
    decode([frame(T.BATCH, new Pb().uint(1, 1).len(4, Buffer.alloc(MAX_CONTROL_BODY * 2)))]).length,
    1,
  );
});

test('unknown type bytes are refused', () => {
  for (const type of [0, 10, 0x7f, 0x80, 0xff]) {
    throwsCode(() => decode([frame(type, [1, 2])]), 'LINK_UNKNOWN_TYPE', /unknown message type/);
  }
  // After good frames, the offset points at the bad one.
  const e = throwsCode(() => decode([Buffer.concat([frame(T.PING), frame(0x42)])]), 'LINK_UNKNOWN_TYPE');
  assert.equal(e.offset, 5);
});

test('the accept mask refuses a Batch before the handshake and can change inside onFrame', () => {
  const hello = frame(T.HELLO, new Pb().uint(1, 1));
  const batch = batchFrame({ seq: 1, records: ['a'] });
  throwsCode(
    () => decode([Buffer.concat([batch])], { accept: Accepts.ENRICHER_AWAIT_HELLO }),
    'LINK_UNEXPECTED_TYPE',
    /Batch not allowed/,
  );
  // The big batch header is refused before its body: nothing is buffered for it.
  const d0 = new LinkFrameDecoder({ accept: Accepts.ENRICHER_AWAIT_HELLO, onFrame: () => {} });
  throwsCode(() => d0.write(Buffer.from([...u32be(MAX_LINK_FRAME), T.BATCH])), 'LINK_UNEXPECTED_TYPE');
  for (const chunks of everySplit(Buffer.concat([hello, batch, frame(T.PING)]))) {
    const types: number[] = [];
    const d = new LinkFrameDecoder({
      accept: Accepts.ENRICHER_AWAIT_HELLO,
      onFrame: (t) => {
        types.push(t);
        if (t === T.HELLO) d.accept(Accepts.ENRICHER_OPEN);
      },
    });
    for (const c of chunks) d.write(c);
    d.end();
    assert.deepEqual(types, [T.HELLO, T.BATCH, T.PING]);
  }
  // The agent never takes a Hello or a Batch.
  throwsCode(() => decode([hello], { accept: Accepts.AGENT_OPEN }), 'LINK_UNEXPECTED_TYPE');
  throwsCode(() => decode([batch], { accept: Accepts.AGENT_AWAIT_WELCOME }), 'LINK_UNEXPECTED_TYPE');
  throwsCode(() => decode([frame(T.PING)], { accept: Accepts.CLOSED }), 'LINK_UNEXPECTED_TYPE');
});

test('input that ends inside a frame is LINK_TRUNCATED; at a boundary it is fine', () => {
  const input = oneOfEach();
  const boundaries = new Set<number>([0]);
  let at = 0;
  for (const f of splitLinkFrames(input)) boundaries.add((at += 5 + f.body.length));
  for (let k = 0; k <= input.length; k++) {
    if (boundaries.has(k)) decode([input.subarray(0, k)]);
    else throwsCode(() => decode([input.subarray(0, k)]), 'LINK_TRUNCATED', /input ended inside/);
  }
});

test('misuse: write after end, write from onFrame', () => {
  const d = new LinkFrameDecoder({ onFrame: () => {} });
  d.end();
  d.end();
  throwsCode(() => d.write(frame(T.PING)), 'LINK_INVALID_STATE');
  const r = new LinkFrameDecoder({ onFrame: () => r.write(frame(T.PING)) });
  throwsCode(() => r.write(frame(T.PING)), 'LINK_INVALID_STATE', /from onFrame/);
  throwsCode(
    () => new LinkFrameDecoder({ onFrame: () => {}, maxFrame: 1 } as never),
    'LINK_INVALID_ARGUMENT',
    /maxFrame/,
  );
  throwsCode(() => new LinkFrameDecoder({ onFrame: () => {}, maxFrameBytes: 100 }), 'LINK_INVALID_ARGUMENT');
  throwsCode(() => new LinkFrameDecoder({} as never), 'LINK_INVALID_ARGUMENT', /onFrame/);
});

test('a wrong peer on the first bytes is named in the error', () => {
  const tls = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);
  throwsCode(() => decode([tls]), 'LINK_FRAME_TOO_LARGE', /TLS/);
  throwsCode(() => decode([Buffer.from('GET /metrics HTTP/1.1\r\n')]), 'LINK_FRAME_TOO_LARGE', /HTTP/);
  const fstrmReady = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x1e, 0, 0, 0, 4]);
  throwsCode(() => decode([fstrmReady]), 'LINK_EMPTY_FRAME', /Frame Streams/);
});

test('the carry-over buffer is given back after a big frame split across chunks', () => {
  const big = batchFrame({ seq: 1, records: [Buffer.alloc(DECODER_SHRINK_ABOVE * 2, 1)] });
  let got = 0;
  const d = new LinkFrameDecoder({ onFrame: (_t, _b, s, e) => (got = e - s) });
  for (const c of randomChunks(big, prng(1), 65536)) d.write(c);
  assert.equal(got, big.length - 5);
  assert.ok((d as unknown as { buf: Buffer }).buf.length <= DECODER_SHRINK_ABOVE);
});

/** Decodes a body as the enricher or agent would; only LinkProtocolError may escape. */
function consume(type: MessageTypeCode, b: Buffer, s: number, e: number, view: BatchView): void {
  if (type === T.BATCH) {
    view.parse(b, s, e);
    while (view.nextRecord()) assert.ok(view.recordEnd <= e);
  } else {
    decodeControl(type, b, s, e);
  }
}

test('fuzz: garbage and mutated streams produce frames or LinkProtocolError, nothing else', () => {
  const rand = prng(20240611);
  const valid = oneOfEach();
  const view = new BatchView();
  let errors = 0;
  let frames = 0;
  for (let i = 0; i < 4000; i++) {
    let input: Buffer;
    if (i % 4 === 0) {
      input = randomBytes(rand, randInt(rand, 64));
      if (rand() < 0.5 && input.length > 5) input.writeUInt32BE(randInt(rand, 60), 0);
    } else {
      input = Buffer.from(valid);
      for (let m = 1 + randInt(rand, 4); m > 0; m--) input[randInt(rand, input.length)] = randInt(rand, 256);
      if (rand() < 0.2) input = input.subarray(0, randInt(rand, input.length));
    }
    try {
      const d = new LinkFrameDecoder({
        maxFrameBytes: 1 << 20,
        onFrame: (t, b, s, e) => {
          frames++;
          consume(t, b, s, e, view);
        },
      });
      for (const c of randomChunks(input, rand, 1 + randInt(rand, 40))) d.write(c);
      d.end();
    } catch (err) {
      if (!(err instanceof LinkProtocolError)) throw err;
      assert.match(err.code, /^LINK_/);
      errors++;
    }
  }
  assert.ok(errors > 1000 && frames > 1000, `errors ${errors}, frames ${frames}`);
});
