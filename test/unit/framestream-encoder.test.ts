// Data frame encoding and the FramePacker, checked against the independent test builder.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeDataFrame,
  encodeFinish,
  encodeReady,
  encodeStart,
  encodeStop,
  FramePacker,
  writeDataFrameInto,
} from '../../proto/framestream/encoder';
import { FramestreamError } from '../../proto/framestream/errors';
import { bytes, CT_DNSTAP, data, finish, prng, ready, start, stop } from '../support/fstrm-builder';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FramestreamError, `not a FramestreamError: ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

test('encodeDataFrame and writeDataFrameInto match the builder', () => {
  assert.deepEqual(encodeDataFrame(Buffer.from('hello')), data('hello'));
  const big = Buffer.alloc(70_000, 7);
  assert.deepEqual(encodeDataFrame(big), data(big));

  const target = Buffer.alloc(32, 0xee);
  const src = Buffer.from('--payload--');
  const next = writeDataFrameInto(target, 3, src, 2, 9);
  assert.equal(next, 3 + 4 + 7);
  assert.deepEqual(target.subarray(3, next), data('payload'));
  assert.equal(target[2], 0xee);
  assert.equal(target[next], 0xee);
});

test('empty payloads and frames that do not fit are refused', () => {
  assert.equal(
    code(() => encodeDataFrame(Buffer.alloc(0))),
    'FSTRM_FRAME_TOO_LARGE',
  );
  assert.equal(
    code(() => writeDataFrameInto(Buffer.alloc(8), 2, Buffer.from('abc'))),
    'FSTRM_INVALID_ARGUMENT',
  );
  assert.equal(writeDataFrameInto(Buffer.alloc(8), 1, Buffer.from('abc')), 8);
});

test('control encoders match the builder', () => {
  assert.deepEqual(encodeReady([CT_DNSTAP]), ready(CT_DNSTAP));
  assert.deepEqual(encodeStart(CT_DNSTAP), start());
  assert.deepEqual(encodeStart(), start(null));
  assert.deepEqual(encodeStop(), stop());
  assert.deepEqual(encodeFinish(), finish());
});

test('FramePacker batches concatenate to exactly the frames appended', () => {
  const rand = prng(42);
  const payloads = Array.from({ length: 2000 }, (_, i) =>
    Buffer.alloc(1 + Math.floor(rand() * 300), i & 0xff),
  );
  const packer = new FramePacker({ capacity: 1024 });
  const batches: Buffer[] = [];
  let frames = 0;
  for (const [i, p] of payloads.entries()) {
    // Alternate the two ways of filling a batch.
    if (i % 2 === 0) {
      if (!packer.append(p)) {
        frames += packer.frames;
        batches.push(packer.take());
        assert.ok(packer.append(p));
      }
    } else {
      let at = packer.reserve(p.length);
      if (at < 0) {
        frames += packer.frames;
        batches.push(packer.take());
        at = packer.reserve(p.length);
      }
      p.copy(packer.buffer, at);
    }
  }
  frames += packer.frames;
  batches.push(packer.take());
  assert.equal(frames, payloads.length);
  assert.ok(batches.every((b) => b.length <= 1024));
  assert.deepEqual(Buffer.concat(batches), bytes(...payloads.map((p) => data(p))));
});

test('FramePacker: a payload above the capacity gets a batch of its own; limits are enforced', () => {
  const packer = new FramePacker({ capacity: 64, maxDataFrameSize: 1000 });
  assert.ok(packer.append(Buffer.from('small')));
  assert.equal(packer.append(Buffer.alloc(500, 1)), false);
  assert.deepEqual(packer.take(), data('small'));
  assert.ok(packer.append(Buffer.alloc(500, 1)));
  assert.deepEqual(packer.take(), data(Buffer.alloc(500, 1)));
  assert.equal(
    code(() => packer.append(Buffer.alloc(1001))),
    'FSTRM_FRAME_TOO_LARGE',
  );
  assert.equal(
    code(() => packer.append(Buffer.alloc(0))),
    'FSTRM_FRAME_TOO_LARGE',
  );
  assert.equal(
    code(() => new FramePacker({ capacity: 1 })),
    'FSTRM_INVALID_ARGUMENT',
  );
  assert.equal(packer.length, 0);
});

test('FramePacker.takeView reuses one buffer; take() hands batches over untouched', () => {
  const packer = new FramePacker({ capacity: 64 });
  packer.append(Buffer.from('one'));
  const first = packer.takeView();
  assert.deepEqual(first, data('one'));
  packer.append(Buffer.from('two'));
  assert.deepEqual(first, data('two'), 'the view is overwritten by the next batch');
  const owned = packer.take();
  packer.append(Buffer.from('333'));
  assert.deepEqual(owned, data('two'));
  assert.ok(packer.appendRaw(stop()));
  assert.deepEqual(packer.take(), bytes(data('333'), stop()));
});
