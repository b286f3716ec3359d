// The agent's run path: a read's complete Frame Streams data frames go from the decoder
// (onDataRun) through the Batcher (addFramed) into the batch with one copy
// (BatchEncoder.appendFramed). Whatever the chunking, sizes and limits, the records, their
// order and the drops are those of the frame-by-frame path, every batch keeps the limits,
// and protobufjs (the reference) and BatchView read the batches alike.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, type BatcherOptions } from '../../agent/batcher';
import { SimClock } from '../../loadtest/sim-clock';
import { FrameDecoder } from '../../proto/framestream/decoder';
import { BatchEncoder } from '../../proto/link/batch-encoder';
import { decodeBatch } from '../../proto/link/batch-view';
import { LENGTH_SIZE, MAX_LINK_FRAME, RESENT_MARK_BYTES } from '../../proto/link/constants';
import { BatchType } from '../../proto/link/schema';
import { bytes, control, data, prng, randomChunks, START, start } from '../support/fstrm-builder';
import { randInt as randBelow, randomBytes } from '../support/link-builder';

const randInt = (rand: () => number, lo: number, hi: number) => lo + randBelow(rand, hi - lo + 1);

/** Frame Streams data frames of the given payloads, back to back. */
const framed = (payloads: Buffer[]) => Buffer.concat(payloads.flatMap((p) => [u32(p.length), p]));
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** Both readers of a batch frame: protobufjs's records and BatchView's, which must agree. */
function recordsOf(frame: Buffer): string[] {
  const body = frame.subarray(LENGTH_SIZE + 1);
  const ref = (BatchType.decode(body) as unknown as { records: Uint8Array[] }).records.map((r) =>
    Buffer.from(r).toString('hex'),
  );
  const view: string[] = [];
  decodeBatch(body, 0, body.length, (b, s, e) => view.push(b.toString('hex', s, e)));
  assert.deepEqual(view, ref);
  return ref;
}

test('appendFramed: one copy of a run, records read back by protobufjs and BatchView, padded lengths', () => {
  const rand = prng(7);
  for (const sizes of [[0], [1, 127, 128, 129], [16383, 16384, 70000], [5, 0, 300]]) {
    const payloads = sizes.map((n) => randomBytes(rand, n));
    const enc = new BatchEncoder();
    enc.begin(9, 'inc-1', 0);
    const src = Buffer.concat([Buffer.from('xx'), framed(payloads), Buffer.from('yy')]);
    const end = src.length - 2;
    assert.equal(enc.appendFramed(src, 2, end, 1000, MAX_LINK_FRAME), end);
    assert.equal(enc.recordCount, payloads.length);
    // Each record costs exactly its Frame Streams framing: tag + 3-byte varint = 4 bytes.
    const frame = enc.finish();
    assert.deepEqual(
      recordsOf(frame),
      payloads.map((p) => p.toString('hex')),
    );
    // The source is not touched (the run is rewritten in the batch, not in place).
    assert.deepEqual(src.subarray(2, end), framed(payloads));
  }
});

test('appendFramed stops at maxRecords, maxBytes, the frame limit and 2^21-byte records', () => {
  const payloads = [10, 20, 30, 40].map((n) => Buffer.alloc(n, n));
  const src = framed(payloads);
  const after = (k: number) => payloads.slice(0, k).reduce((s, p) => s + 4 + p.length, 0);
  const enc = new BatchEncoder();
  enc.begin(1, '', 0);
  const base = enc.frameSize;
  assert.equal(enc.appendFramed(src, 0, src.length, 2, MAX_LINK_FRAME), after(2));
  assert.equal(enc.recordCount, 2);
  // frameSize may reach maxBytes exactly, never pass it.
  enc.begin(1, '', 0);
  assert.equal(enc.appendFramed(src, 0, src.length, 100, base + after(3)), after(3));
  enc.begin(1, '', 0);
  assert.equal(enc.appendFramed(src, 0, src.length, 100, base + after(3) - 1), after(2));
  // Nothing fits: start comes back and nothing was appended.
  enc.begin(1, '', 0);
  assert.equal(enc.appendFramed(src, 0, src.length, 100, base + 5), 0);
  assert.equal(enc.recordCount, 0);
  assert.equal(enc.frameSize, base);
  // The frame limit keeps room for the resent mark, as append() does.
  const limited = new BatchEncoder({ maxFrameBytes: 1000 });
  limited.begin(1, '', 0);
  const b0 = limited.frameSize;
  const fill = 1000 - RESENT_MARK_BYTES + LENGTH_SIZE - b0 - 4;
  const big = framed([Buffer.alloc(fill + 1), Buffer.alloc(fill)]);
  assert.equal(limited.appendFramed(big, 0, big.length, 100, MAX_LINK_FRAME), 0);
  assert.equal(limited.appendFramed(big, 4 + fill + 1, big.length, 100, MAX_LINK_FRAME), big.length);
  assert.equal(limited.finish().readUInt32BE(0), 1000 - RESENT_MARK_BYTES);
  // A length that needs a 4-byte varint ends the run (append() takes it on its own).
  const huge = framed([Buffer.alloc(3), Buffer.alloc(2 ** 21)]);
  enc.begin(1, '', 0);
  assert.equal(enc.appendFramed(huge, 0, huge.length, 100, MAX_LINK_FRAME), 7);
  // Misuse is refused, as append()'s is.
  assert.throws(() => new BatchEncoder().appendFramed(src, 0, src.length, 1, 1000), {
    code: 'LINK_INVALID_STATE',
  });
  assert.throws(() => enc.appendFramed(src, 5, src.length + 1, 1, 1000), { code: 'LINK_INVALID_ARGUMENT' });
});

test('decoder runs: the same frames, order and stats as frame by frame, at any chunking', () => {
  const rand = prng(11);
  let runs = 0;
  for (let round = 0; round < 200; round++) {
    const parts: Buffer[] = [start()];
    const expected: string[] = [];
    const n = randInt(rand, 0, 40);
    for (let i = 0; i < n; i++) {
      const r = rand();
      if (r < 0.05) {
        parts.push(data(Buffer.alloc(300, 1))); // over the limit below: skipped, counted
      } else if (r < 0.08) {
        parts.push(control(START)); // a control frame between data frames
        expected.push('C');
      } else {
        const p = randomBytes(rand, randInt(rand, 1, 200));
        parts.push(data(p));
        expected.push(p.toString('hex'));
      }
    }
    const input = bytes(...parts);
    const got: string[] = [];
    const dec = new FrameDecoder({
      maxDataFrameSize: 250,
      onData: (b, s, e) => got.push(b.toString('hex', s, e)),
      onDataRun: (b, s, e, frames) => {
        runs++;
        let k = 0;
        for (let p = s; p < e; k++) {
          const len = b.readUInt32BE(p);
          got.push(b.toString('hex', p + 4, p + 4 + len));
          p += 4 + len;
        }
        assert.equal(k, frames);
      },
      onControl: () => got.push('C'),
    });
    for (const c of randomChunks(input, rand, 1 + randInt(rand, 0, 600))) dec.write(c);
    dec.end();
    assert.deepEqual(got, ['C', ...expected]);
    const plain = new FrameDecoder({ maxDataFrameSize: 250, onData: () => {}, onControl: () => {} });
    plain.write(input);
    assert.deepEqual(dec.stats, plain.stats);
  }
  assert.ok(runs > 500, `only ${runs} runs`); // most frames came as runs, not one by one
  assert.throws(() => new FrameDecoder({ onData: () => {}, onControl: () => {}, onDataRun: 5 as never }), {
    code: 'FSTRM_INVALID_ARGUMENT',
    message: /onDataRun/,
  });
});

interface Sealed {
  records: string[];
  size: number;
}

function batcher(over: Partial<BatcherOptions>) {
  const sealed: Sealed[] = [];
  const clock = new SimClock();
  const b = new Batcher({
    incarnation: 'i',
    sampleRate: 0,
    maxRecords: 1000,
    maxBytes: 1 << 20,
    lingerMs: 50,
    firstSeq: 1,
    frameLimit: { maxFrameBytes: MAX_LINK_FRAME },
    onSeal: (frame) => sealed.push({ records: recordsOf(frame), size: frame.length }),
    clock,
    ...over,
  });
  return { b, sealed, clock };
}

test('addFramed: every record once, in order, within the limits; oversize counted as add() does', async () => {
  const rand = prng(3);
  for (let round = 0; round < 150; round++) {
    const maxRecords = randInt(rand, 1, 30);
    const maxBytes = randInt(rand, 1024, 6000);
    const frameLimit = { maxFrameBytes: randInt(rand, 600, 8000) };
    const run = batcher({ maxRecords, maxBytes, frameLimit });
    const one = batcher({ maxRecords, maxBytes, frameLimit });
    const payloads: Buffer[] = [];
    for (let i = randInt(rand, 1, 120); i > 0; i--) {
      payloads.push(randomBytes(rand, rand() < 0.03 ? randInt(rand, 8000, 9000) : randInt(rand, 0, 400)));
    }
    // Fed in a few runs, as reads bring them.
    let oversize = 0;
    for (let i = 0; i < payloads.length; ) {
      const k = randInt(rand, 1, 40);
      const src = framed(payloads.slice(i, i + k));
      oversize += run.b.addFramed(src, 0, src.length);
      i += k;
    }
    let refused = 0;
    for (const p of payloads) if (!one.b.add(p, 0, p.length)) refused++;
    run.b.flush();
    one.b.flush();
    assert.equal(oversize, refused);
    assert.deepEqual(
      run.sealed.flatMap((s) => s.records),
      one.sealed.flatMap((s) => s.records),
    );
    for (const s of run.sealed) {
      assert.ok(s.records.length >= 1 && s.records.length <= maxRecords);
      assert.ok(s.size - LENGTH_SIZE <= frameLimit.maxFrameBytes - RESENT_MARK_BYTES);
      // Past maxBytes only a batch of one record that could not go anywhere else.
      assert.ok(s.size <= maxBytes || s.records.length === 1, `${s.size} > ${maxBytes}`);
    }
  }
});

test('addFramed: a batch is sealed when full by records, or lingerMs after its first record', async () => {
  const { b, sealed, clock } = batcher({ maxRecords: 4 });
  const src = framed([1, 2, 3, 4, 5, 6].map((n) => Buffer.alloc(n, n)));
  assert.equal(b.addFramed(src, 0, src.length), 0);
  assert.equal(sealed.length, 1);
  assert.equal(sealed[0]!.records.length, 4);
  await clock.run(49);
  assert.equal(sealed.length, 1);
  await clock.run(50);
  assert.equal(sealed.length, 2);
  assert.deepEqual(sealed[1]!.records, ['0505050505', '060606060606']);
  assert.equal(b.pending, 0);
});
