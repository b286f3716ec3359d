// FramePool (agent/frame-pool.ts) and its use: sealed frames are carved from reused buffers,
// only batches acknowledged from memory give theirs back, and a reused frame carries exactly
// the new batch's bytes (the same bytes a fresh Buffer would have).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher } from '../../agent/batcher';
import { BatchBuffer } from '../../agent/buffer';
import { FramePool } from '../../agent/frame-pool';
import { createLogger } from '../../common/log';
import { SimClock } from '../../loadtest/sim-clock';
import { BatchView, MAX_LINK_FRAME } from '../../proto/link';

/** Length (4 bytes) and message type (1) in front of a link frame's body (LINK.md). */
const FRAME_HEADER_SIZE = 5;

test('take() reuses a given-back buffer of a fitting size, not a foreign or too-large one', () => {
  const pool = new FramePool();
  const a = pool.take(100_000);
  assert.equal(a.length, 100_000);
  assert.equal(pool.allocated, 1);
  pool.give(a);
  pool.give(a); // twice: one entry
  assert.equal(pool.freeCount, 1);
  const b = pool.take(99_000);
  assert.equal(b.buffer, a.buffer, 'same memory reused');
  assert.equal(b.length, 99_000);
  assert.equal(pool.reused, 1);
  pool.give(b);
  const small = pool.take(10_000); // the free 112 KiB buffer would be mostly empty: a new one
  assert.notEqual(small.buffer, a.buffer);
  assert.equal(pool.allocated, 2);
  pool.give(Buffer.alloc(100_000)); // not the pool's
  pool.give(small.subarray(1)); // not the start of a pool buffer
  assert.equal(pool.freeCount, 1);
});

test('at most 8 buffers wait for reuse', () => {
  const pool = new FramePool();
  const frames = Array.from({ length: 12 }, () => pool.take(1000));
  for (const f of frames) pool.give(f);
  assert.equal(pool.freeCount, 8);
});

test('acknowledged batches give their frames back and the next batches reuse them, bytes exact', () => {
  const pool = new FramePool();
  const sealed: { frame: Buffer; seq: number }[] = [];
  const buffer = new BatchBuffer({
    bufferBytes: 1 << 20,
    whenFull: 'drop-newest',
    log: createLogger('test', 'silent'),
    onDrop: () => assert.fail('no drop expected'),
    pool,
  });
  const batcher = new Batcher({
    incarnation: 'inc',
    sampleRate: 0,
    maxRecords: 3,
    maxBytes: 1 << 20,
    lingerMs: 100,
    firstSeq: 1,
    frameLimit: { maxFrameBytes: MAX_LINK_FRAME },
    alloc: (size) => pool.take(size),
    onSeal: (frame, seq, records) => {
      sealed.push({ frame, seq });
      buffer.add(frame, seq, 'inc', records, true);
    },
    clock: new SimClock(),
  });
  const view = new BatchView();
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3; i++) {
      const r = Buffer.from(`round ${round} record ${i}`);
      assert.ok(batcher.add(r, 0, r.length));
    }
    const b = buffer.take()!;
    assert.equal(b.seq, round + 1);
    const frame = sealed.at(-1)!.frame;
    view.parse(frame, FRAME_HEADER_SIZE, frame.length);
    assert.equal(view.seq, round + 1);
    assert.equal(view.recordCount, 3);
    buffer.acked(b);
  }
  assert.equal(pool.allocated, 1, 'one buffer serves every batch acknowledged in turn');
  assert.equal(pool.reused, 4);
  // A batch taken but not acknowledged keeps its memory: the next one gets a new buffer.
  for (let i = 0; i < 3; i++) batcher.add(Buffer.from('x'), 0, 1);
  buffer.take();
  for (let i = 0; i < 3; i++) batcher.add(Buffer.from('y'), 0, 1);
  assert.notEqual(sealed.at(-1)!.frame.buffer, sealed.at(-2)!.frame.buffer);
});
