// FramePool (agent/frame-pool.ts) and its use: sealed frames are carved from reused buffers;
// an acknowledged batch gives its frame back only once every socket write handed that Buffer
// has completed (agent/link/batch-write.ts counts them), so a stalled or half-open connection
// that still holds the frame in its write queue never sees the memory change under it; and a
// reused frame carries exactly the new batch's bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher } from '../../agent/batcher';
import { BatchBuffer, type OutBatch } from '../../agent/buffer';
import { FramePool } from '../../agent/frame-pool';
import { type BatchSink, writeBatch } from '../../agent/link/batch-write';
import { createLogger } from '../../common/log';
import { SimClock } from '../../loadtest/sim-clock';
import { BatchView, MAX_LINK_FRAME } from '../../proto/link';

/** Length (4 bytes) and message type (1) in front of a link frame's body (LINK.md). */
const FRAME_HEADER_SIZE = 5;

/**
 * A socket's write side as the agent uses it: keeps every chunk it was handed (as Node does
 * until the write completes) and fires the callbacks only when told (complete()).
 */
class FakeSocket implements BatchSink {
  readonly chunks: Buffer[] = [];
  private readonly pending: ((err?: Error | null) => void)[] = [];
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean {
    this.chunks.push(chunk);
    if (cb !== undefined) this.pending.push(cb);
    return true;
  }
  /** The pending writes complete (or, with `err`, fail / are cancelled by a destroy). */
  complete(err?: Error): void {
    for (const cb of this.pending.splice(0)) cb(err ?? null);
  }
  get outstanding(): number {
    return this.pending.length;
  }
}

/** A batcher sealing into the pool and a buffer giving frames back to it, as agent.ts wires them. */
function rig(pool: FramePool) {
  const sealed: Buffer[] = [];
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
      sealed.push(frame);
      buffer.add(frame, seq, 'inc', records, true);
    },
    clock: new SimClock(),
  });
  /** Seals one batch of 3 records tagged `tag` and takes it for sending. */
  const next = (tag: string): OutBatch => {
    for (let i = 0; i < 3; i++) {
      const r = Buffer.from(`${tag} record ${i}`);
      assert.ok(batcher.add(r, 0, r.length));
    }
    const b = buffer.take();
    assert.ok(b !== null);
    return b;
  };
  /** What LinkConnection.send does with a batch, on `sock`. */
  const send = (sock: FakeSocket, b: OutBatch): void => {
    b.sends++;
    writeBatch(sock, b);
  };
  return { sealed, buffer, next, send };
}

/** The records of a Batch link frame, as text. */
function recordsOf(frame: Buffer): string[] {
  const view = new BatchView();
  view.parse(frame, FRAME_HEADER_SIZE, frame.length);
  const out: string[] = [];
  view.forEachRecord((buf, start, end) => out.push(buf.toString('latin1', start, end)));
  return out;
}

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

test('a full free list keeps the newest: large buffers from a burst do not block smaller batches for good', () => {
  const pool = new FramePool();
  const big = Array.from({ length: 4 }, () => pool.take(1 << 20)); // 4 MiB: the byte cap
  for (const f of big) pool.give(f);
  assert.equal(pool.freeCount, 4);
  const small = pool.take(100_000); // fits none of the free ones (mostly empty): a new one
  assert.equal(pool.allocated, 5);
  pool.give(small); // evicts the oldest large one
  assert.equal(pool.freeCount, 4);
  assert.equal(pool.take(100_000).buffer, small.buffer, 'the smaller buffer is reused');
  assert.equal(pool.take(1 << 20).buffer, big[3]!.buffer, 'the newest large one is still there');
});

test('a frame acknowledged after its write completed is reused, bytes exact', () => {
  const pool = new FramePool();
  const { sealed, buffer, next, send } = rig(pool);
  const sock = new FakeSocket();
  for (let round = 0; round < 5; round++) {
    const b = next(`round ${round}`);
    assert.equal(b.seq, round + 1);
    send(sock, b);
    assert.equal(sock.chunks.at(-1), sealed.at(-1), 'the first send writes the stored frame itself');
    assert.deepEqual(
      recordsOf(sealed.at(-1)!),
      [0, 1, 2].map((i) => `round ${round} record ${i}`),
    );
    sock.complete();
    buffer.acked(b);
  }
  assert.equal(pool.allocated, 1, 'one buffer serves every batch acknowledged in turn');
  assert.equal(pool.reused, 4);
  // A batch taken but not acknowledged keeps its memory: the next one gets a new buffer.
  send(sock, next('x'));
  sock.complete();
  next('y');
  assert.notEqual(sealed.at(-1)!.buffer, sealed.at(-2)!.buffer);
});

test('half-open first connection: acknowledged via another connection, the frame is not reused until the first write completes', () => {
  const pool = new FramePool();
  const { sealed, buffer, next, send } = rig(pool);
  const a = new FakeSocket(); // stalled / half-open: its write never completes on its own
  const b = new FakeSocket();
  const batch = next('first');
  send(a, batch);
  const held = a.chunks[0]!;
  assert.equal(held, sealed[0], 'connection A holds the stored frame itself');
  const before = Buffer.from(held);
  // A is given up on; its unacknowledged batch is re-sent on B, which acknowledges it.
  buffer.requeue([batch]);
  assert.equal(buffer.take(), batch);
  send(b, batch);
  assert.notEqual(b.chunks[0]!.buffer, held.buffer, 'the re-send is a copy');
  b.complete();
  buffer.acked(batch);
  assert.equal(buffer.framesHeld, 1, 'acknowledged, held for the write still outstanding on A');
  assert.equal(pool.freeCount, 0);
  // Many more batches sealed, sent and acknowledged on B: none may take A's memory.
  for (let round = 0; round < 20; round++) {
    const later = next(`later ${round}`);
    assert.notEqual(sealed.at(-1)!.buffer, held.buffer);
    send(b, later);
    b.complete();
    buffer.acked(later);
  }
  assert.deepEqual(held, before, 'the bytes A still has to send are unchanged');
  assert.deepEqual(
    recordsOf(held),
    [0, 1, 2].map((i) => `first record ${i}`),
  );
  // A's write ends at last (cancelled by its destroy): now the memory may be reused.
  a.complete(Object.assign(new Error('write cancelled'), { code: 'ECANCELED' }));
  assert.equal(buffer.framesHeld, 0);
  assert.equal(pool.freeCount, 2, "A's frame is back, beside the one the later batches cycled through");
  next('after 1');
  next('after 2');
  assert.ok(
    sealed.at(-1)!.buffer === held.buffer || sealed.at(-2)!.buffer === held.buffer,
    "A's memory is reused once its write completed",
  );
});

test('an ack read before its own write callback ran (same connection): reused only after the callback', () => {
  const pool = new FramePool();
  const { sealed, buffer, next, send } = rig(pool);
  const sock = new FakeSocket();
  const first = next('one');
  send(sock, first);
  buffer.acked(first); // sends === 1, yet the write has not reported completion
  assert.equal(buffer.framesHeld, 1);
  const second = next('two');
  assert.notEqual(sealed[1]!.buffer, sealed[0]!.buffer, 'no reuse while the write is outstanding');
  assert.deepEqual(
    recordsOf(sealed[0]!),
    [0, 1, 2].map((i) => `one record ${i}`),
  );
  sock.complete(); // both writes done (the second one's batch is not acknowledged: kept)
  assert.equal(buffer.framesHeld, 0);
  assert.equal(sock.outstanding, 0);
  next('three');
  assert.equal(sealed[2]!.buffer, sealed[0]!.buffer, 'reused after the callback');
  assert.ok(second.frame !== null);
  assert.deepEqual(
    recordsOf(second.frame!),
    [0, 1, 2].map((i) => `two record ${i}`),
  );
});

test('two outstanding writes of the same frame: reused only after both callbacks', () => {
  const pool = new FramePool();
  const { sealed, buffer, next } = rig(pool);
  const a = new FakeSocket();
  const c = new FakeSocket();
  const batch = next('twice');
  // Not what LinkConnection does (a second send is a marked copy), but the count must hold
  // for any number of writes of the stored frame.
  batch.sends = 1;
  writeBatch(a, batch);
  writeBatch(c, batch);
  assert.equal(batch.socketWrites, 2);
  buffer.acked(batch);
  a.complete();
  next('x');
  assert.notEqual(sealed[1]!.buffer, sealed[0]!.buffer, 'one write still outstanding');
  c.complete();
  assert.equal(pool.freeCount, 1);
});

test('a full buffer gives dropped frames back (drop-newest and drop-oldest), but not one a socket may still send', () => {
  for (const whenFull of ['drop-newest', 'drop-oldest'] as const) {
    const pool = new FramePool();
    let dropped = 0;
    const buffer = new BatchBuffer({
      bufferBytes: 3 * 20_000,
      whenFull,
      log: createLogger('test', 'silent'),
      onDrop: (_reason, records) => (dropped += records),
      pool,
    });
    const frame = (tag: number): Buffer => pool.take(20_000).fill(tag);
    for (let seq = 1; seq <= 3; seq++) buffer.add(frame(seq), seq, 'inc', 1, true);
    assert.equal(pool.freeCount, 0);
    buffer.add(frame(4), 4, 'inc', 1, true); // full: one batch is dropped, its memory comes back
    assert.equal(dropped, 1, whenFull);
    assert.equal(pool.freeCount, 1, `${whenFull}: the dropped frame is free for the next batch`);
    buffer.add(frame(5), 5, 'inc', 1, true);
    assert.equal(pool.allocated, 4, `${whenFull}: the fifth batch reused the dropped one's buffer`);
    assert.equal(pool.reused, 1);
  }
  // Sent on a connection whose write has not completed, then re-queued (the connection
  // closed) and dropped by drop-oldest: that memory never goes back, whatever comes later.
  const pool = new FramePool();
  const buffer = new BatchBuffer({
    bufferBytes: 2 * 20_000,
    whenFull: 'drop-oldest',
    log: createLogger('test', 'silent'),
    onDrop: () => {},
    pool,
  });
  buffer.add(pool.take(20_000).fill(1), 1, 'inc', 1, true);
  const b = buffer.take()!;
  const stalled = new FakeSocket();
  b.sends++;
  writeBatch(stalled, b);
  buffer.requeue([b]);
  buffer.add(pool.take(20_000).fill(2), 2, 'inc', 1, true);
  buffer.add(pool.take(20_000).fill(3), 3, 'inc', 1, true); // evicts batch 1
  assert.equal(pool.freeCount, 0, 'batch 1 is still in the stalled socket’s write queue');
  for (let seq = 4; seq < 10; seq++) buffer.add(pool.take(20_000).fill(seq), seq, 'inc', 1, true);
  assert.ok(
    stalled.chunks[0]!.every((x) => x === 1),
    'the bytes the stalled socket holds are unchanged',
  );
  stalled.complete();
  assert.ok(stalled.chunks[0]!.every((x) => x === 1));
});
