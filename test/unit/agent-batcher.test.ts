// Batcher in simulated time (a SimClock as its linger clock): a batch is sealed when it is
// full by records or bytes, or --batch-linger-ms after its first record, whichever comes
// first; seqs count up from firstSeq. No real timers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, type BatcherOptions } from '../../agent/batcher';
import { SimClock } from '../../loadtest/sim-clock';
import { MAX_LINK_FRAME } from '../../proto/link';

interface Sealed {
  seq: number;
  records: number;
  at: number;
}

function batcher(over: Partial<BatcherOptions> = {}) {
  const clock = new SimClock();
  const sealed: Sealed[] = [];
  const b = new Batcher({
    incarnation: '',
    sampleRate: 0,
    maxRecords: 4,
    maxBytes: 1 << 20,
    lingerMs: 100,
    firstSeq: 7,
    frameLimit: { maxFrameBytes: MAX_LINK_FRAME },
    onSeal: (_frame, seq, records) => sealed.push({ seq, records, at: clock.now() }),
    clock,
    ...over,
  });
  return { b, clock, sealed };
}

const rec = (n = 10) => Buffer.alloc(n, 0x61);
const add = (b: Batcher, r: Buffer) => b.add(r, 0, r.length);

test('linger: a batch with records is sealed lingerMs after its first record, not before', async () => {
  const { b, clock, sealed } = batcher();
  add(b, rec());
  await clock.run(50);
  add(b, rec());
  await clock.run(99);
  assert.deepEqual(sealed, []);
  await clock.run(100);
  assert.deepEqual(sealed, [{ seq: 7, records: 2, at: 100 }]);
});

test('a batch full by records is sealed at once and its linger timer is cancelled', async () => {
  const { b, clock, sealed } = batcher();
  for (let i = 0; i < 4; i++) add(b, rec());
  assert.deepEqual(sealed, [{ seq: 7, records: 4, at: 0 }]);
  await clock.run(1000);
  assert.equal(sealed.length, 1);
});

test('a record that would take the batch past maxBytes starts the next batch', () => {
  const { b, sealed } = batcher({ maxBytes: 100 });
  add(b, rec(40));
  add(b, rec(40));
  assert.equal(sealed.length, 0);
  add(b, rec(40));
  assert.deepEqual(
    sealed.map((s) => s.records),
    [2],
  );
  assert.equal(b.pending, 1);
});

test('seqs count up from firstSeq, one per sealed batch', () => {
  const { b, sealed } = batcher({ maxRecords: 1 });
  for (let i = 0; i < 3; i++) add(b, rec());
  assert.deepEqual(
    sealed.map((s) => s.seq),
    [7, 8, 9],
  );
  assert.equal(b.seq, 10);
});

test('a record larger than the agreed frame limit is refused (the caller counts it)', () => {
  const { b, sealed } = batcher({ frameLimit: { maxFrameBytes: 256 } });
  assert.equal(add(b, rec(300)), false);
  assert.equal(add(b, rec(10)), true);
  assert.deepEqual(sealed, []);
});

test('close() stops the linger timer: nothing is sealed afterwards', async () => {
  const { b, clock, sealed } = batcher();
  add(b, rec());
  b.close();
  await clock.run(1000);
  assert.deepEqual(sealed, []);
});
