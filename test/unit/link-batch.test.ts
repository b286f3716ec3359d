// The hand-written Batch codec against the independent builder and against protobufjs on
// link.proto, both directions: canonical bytes, unusual but legal encodings (any field
// order, unknown fields, padded varints, repeats), every truncation, malformed bodies, the
// frame size limit, and real dnstap payloads from the fixtures as records.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BatchEncoder, markResent } from '../../proto/link/batch-encoder';
import { BatchView, decodeBatch, recordIdPrefix } from '../../proto/link/batch-view';
import { MAX_CONTROL_BODY, MAX_LINK_FRAME, RESENT_MARK_BYTES } from '../../proto/link/constants';
import { LinkFrameDecoder } from '../../proto/link/decoder';
import { LinkProtocolError } from '../../proto/link/errors';
import { BatchType } from '../../proto/link/schema';
import {
  type BatchFields,
  batchBody,
  batchFrame,
  fstrmPayloads,
  Pb,
  prng,
  randInt,
  randomBytes,
  randomChunks,
} from '../support/link-builder';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');

type Decoded = { seq: number; incarnation: string; sampleRate: number; records: string[] };

function viewOf(body: Buffer): Decoded {
  const records: string[] = [];
  const v = decodeBatch(body, 0, body.length, (b, s, e, i) => {
    assert.equal(i, records.length);
    records.push(b.toString('hex', s, e));
  });
  assert.equal(v.recordCount, records.length);
  return { seq: v.seq, incarnation: v.incarnation, sampleRate: v.sampleRate, records };
}

function reference(body: Uint8Array): Decoded {
  const m = BatchType.toObject(BatchType.decode(body), { longs: Number, defaults: true }) as {
    seq: number;
    incarnation: string;
    sampleRate: number;
    records: Uint8Array[];
  };
  const records = m.records.map((r) => Buffer.from(r).toString('hex'));
  return { seq: m.seq, incarnation: m.incarnation, sampleRate: m.sampleRate, records };
}

function encode(f: BatchFields, enc = new BatchEncoder()): Buffer {
  enc.begin(Number(f.seq), f.incarnation ?? '', f.sampleRate ?? 0);
  for (const r of f.records) assert.ok(enc.append(typeof r === 'string' ? Buffer.from(r, 'latin1') : r));
  assert.equal(enc.recordCount, f.records.length);
  return enc.finish();
}

function badBatch(body: Buffer, message?: RegExp): void {
  assert.throws(
    () => new BatchView().parse(body, 0, body.length),
    (e: unknown) =>
      e instanceof LinkProtocolError &&
      e.code === 'LINK_BAD_MESSAGE' &&
      (!message || message.test(e.message)),
  );
}

const SIZES = [0, 1, 64, 65, 127, 128, 129, 16383, 16384, 70000];
const SEQS = [1, 127, 128, 2 ** 32, 2 ** 53 - 1];

test('encoder frames equal the builder byte for byte, and protobufjs bytes for the body', () => {
  const enc = new BatchEncoder({ initialCapacity: 256 });
  for (const seq of SEQS) {
    for (const incarnation of ['', 'x', '2024-06-11T10:00:00Z.a1b2c3d4'.replace(/[^A-Za-z0-9._:-]/g, '-')]) {
      for (const sampleRate of [0, 1, 10, 0xffffffff]) {
        const records = SIZES.map((n, i) => Buffer.alloc(n, i + seq));
        const f: BatchFields = { seq, incarnation, sampleRate, records };
        const frame = encode(f, enc);
        assert.deepEqual(frame, batchFrame(f));
        const ref = BatchType.encode({ seq, incarnation, sampleRate, records }).finish();
        assert.deepEqual(frame.subarray(5), Buffer.from(ref));
        assert.deepEqual(reference(frame.subarray(5)), viewOf(frame.subarray(5)));
      }
    }
  }
});

test('protobufjs-encoded random batches decode to the same fields and records', () => {
  const rand = prng(99);
  for (let i = 0; i < 500; i++) {
    const msg = {
      seq: 1 + Math.floor(2 ** (rand() * 53)) - 1,
      incarnation: rand() < 0.5 ? '' : `i${randInt(rand, 1e6)}`,
      sampleRate: rand() < 0.5 ? 0 : randInt(rand, 2 ** 32),
      records: Array.from({ length: randInt(rand, 30) }, () => randomBytes(rand, randInt(rand, 300))),
    };
    const body = Buffer.from(BatchType.encode(msg).finish());
    assert.deepEqual(viewOf(body), reference(body));
    assert.deepEqual(encode(msg).subarray(5), body);
  }
});

test('legal but unusual encodings: any order, unknown fields, padded varints, repeats', () => {
  const cases: [string, Pb][] = [
    ['records first, header last', new Pb().len(4, 'r0').len(4, 'r1').uint(3, 5).len(2, 'inc').uint(1, 9)],
    [
      'unknown fields of every wire type between records',
      new Pb()
        .uint(1, 3)
        .uint(15, 2n ** 63n)
        .len(4, 'a')
        .fixed64(6, 1, 2)
        .len(4, 'b')
        .fixed32(7, 9)
        .len(99, 'zz'),
    ],
    ['a large unknown field number', new Pb().tag(536870911, 0).raw(1).uint(1, 4).len(4, 'q')],
    [
      'padded tags, lengths and values',
      new Pb().uint(1, 5, 10).len(4, 'abc', 3).len(4, 'de', 1, 2).uint(3, 2, 5),
    ],
    [
      'repeated scalars: the last wins',
      new Pb().uint(1, 5).len(2, 'old').len(4, 'x').uint(1, 6).len(2, 'new'),
    ],
    ['no records', new Pb().uint(1, 1)],
  ];
  for (const [name, pb] of cases) {
    const body = pb.buffer();
    assert.deepEqual(viewOf(body), reference(body), name);
  }
});

test('every truncation agrees with protobufjs: refused mid-field, a shorter batch at a boundary', () => {
  const body = batchBody({
    seq: 300,
    incarnation: 'inc',
    sampleRate: 200,
    records: ['abc', 'x'.repeat(200), 'z'],
  });
  for (let k = 0; k < body.length; k++) {
    const cut = body.subarray(0, k);
    let ref: Decoded | null = null;
    try {
      ref = reference(cut);
    } catch {}
    if (ref === null || ref.seq === 0) badBatch(cut);
    else assert.deepEqual(viewOf(cut), ref, `cut at ${k}`);
  }
});

test('malformed or rule-breaking bodies are LINK_BAD_MESSAGE', () => {
  badBatch(new Pb().len(4, 'a').buffer(), /seq is absent/);
  badBatch(new Pb().uint(1, 0).buffer(), /seq is absent or 0/);
  badBatch(new Pb().uint(1, 2n ** 53n).buffer(), /varint/);
  badBatch(
    new Pb()
      .uint(1, 1)
      .uint(3, 2n ** 32n)
      .buffer(),
    /sample_rate/,
  );
  badBatch(new Pb().uint(1, 1).len(2, 'a/b').buffer(), /incarnation/);
  badBatch(new Pb().uint(1, 1).len(2, 'x'.repeat(65)).buffer(), /incarnation longer/);
  badBatch(new Pb().uint(1, 1).tag(4, 0).raw(3).buffer(), /field 4 with wire type 0/);
  badBatch(new Pb().len(1, 'x').buffer(), /field 1 with wire type 2/);
  badBatch(new Pb().uint(1, 1).tag(9, 3).buffer(), /unknown field 9/); // a group
  badBatch(new Pb().uint(1, 1).tag(9, 6).buffer(), /wire type 6/);
  badBatch(new Pb().uint(1, 1).tag(0, 0).raw(1).buffer(), /field 0/);
  badBatch(new Pb().uint(1, 1).raw(0x22, 0x05, 1, 2).buffer(), /runs past/);
  badBatch(
    new Pb().uint(1, 1).raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01).buffer(),
    /tag/,
  );
});

test('fuzz: random bodies parse or fail with LINK_BAD_MESSAGE only', () => {
  const rand = prng(5);
  const base = batchBody({ seq: 77, incarnation: 'i-1', records: ['hello', 'world!', 'x'.repeat(130)] });
  const view = new BatchView();
  for (let i = 0; i < 5000; i++) {
    const body = i % 2 === 0 ? randomBytes(rand, randInt(rand, 40)) : Buffer.from(base);
    if (i % 2 === 1)
      for (let m = 1 + randInt(rand, 3); m > 0; m--) body[randInt(rand, body.length)] = randInt(rand, 256);
    try {
      view.parse(body, 0, body.length);
      let n = 0;
      while (view.nextRecord()) {
        assert.ok(view.recordStart <= view.recordEnd && view.recordEnd <= body.length);
        n++;
      }
      assert.equal(n, view.recordCount);
    } catch (err) {
      assert.ok(err instanceof LinkProtocolError && err.code === 'LINK_BAD_MESSAGE', String(err));
    }
  }
});

test('append refuses a record that would pass maxFrameBytes; exactly the limit fits', () => {
  const max = MAX_CONTROL_BODY + 1000;
  const enc = new BatchEncoder({ maxFrameBytes: max, initialCapacity: 1024 });
  enc.begin(1, '', 0);
  // Frame length N = 1 type + 2 seq + (1 tag + 3 length + n) = max - 2 (room for the resent mark).
  const fits = max - RESENT_MARK_BYTES - 7;
  assert.equal(enc.append(Buffer.alloc(fits + 1)), false);
  assert.equal(enc.recordCount, 0);
  assert.equal(enc.append(Buffer.alloc(fits)), true);
  assert.equal(enc.frameSize, max - RESENT_MARK_BYTES + 4);
  assert.equal(enc.append(Buffer.alloc(0)), false);
  const frame = enc.finish();
  assert.equal(frame.readUInt32BE(0), max - RESENT_MARK_BYTES);
  // Marked as a re-send it is exactly the limit, still accepted.
  assert.equal(markResent(frame).readUInt32BE(0), max);
  assert.equal(new BatchEncoder().maxFrameBytes, MAX_LINK_FRAME);
  // Lowering the limit applies to the next append.
  enc.begin(2, '', 0);
  enc.maxFrameBytes = 200;
  assert.equal(enc.append(Buffer.alloc(200)), false);
  assert.equal(enc.append(Buffer.alloc(194)), false); // 200 bytes: no room for the mark
  assert.equal(enc.append(Buffer.alloc(150)), true);
  assert.throws(
    () => {
      enc.maxFrameBytes = 10;
    },
    { code: 'LINK_INVALID_ARGUMENT', message: /maxFrameBytes/ },
  );
});

test('append() and finish() before begin() are refused', () => {
  const enc = new BatchEncoder();
  assert.throws(() => enc.append(Buffer.from('a')), { code: 'LINK_INVALID_STATE' });
  assert.throws(() => enc.finish(), { code: 'LINK_INVALID_STATE' });
});

test('finish returns an owned copy; the encoder can be reused', () => {
  const enc = new BatchEncoder();
  const a = encode({ seq: 1, records: ['first'] }, enc);
  const b = encode({ seq: 2, records: ['second!'] }, enc);
  assert.deepEqual(viewOf(a.subarray(5)).records, [Buffer.from('first').toString('hex')]);
  assert.deepEqual(viewOf(b.subarray(5)).records, [Buffer.from('second!').toString('hex')]);
});

test('append takes a range of a Buffer or a plain Uint8Array', () => {
  const enc = new BatchEncoder();
  enc.begin(3, '', 0);
  const src = Buffer.from('0123456789');
  enc.append(src, 2, 5);
  enc.append(new Uint8Array([7, 8, 9]), 1); // a plain Uint8Array, not a Buffer
  assert.deepEqual(viewOf(enc.finish().subarray(5)).records, ['323334', '0809']);
});

test('append refuses a range outside the source', () => {
  const enc = new BatchEncoder();
  const src = Buffer.from('0123456789');
  enc.begin(4, '', 0);
  assert.throws(() => enc.append(src, 5, 11), { code: 'LINK_INVALID_ARGUMENT' });
  assert.throws(() => enc.append(src, 5, 4), { code: 'LINK_INVALID_ARGUMENT' });
});

test('begin refuses a bad seq, incarnation or sample rate', () => {
  const enc = new BatchEncoder();
  for (const [seq, inc, rate] of [
    [0, '', 0],
    [2 ** 53, '', 0],
    [1.5, '', 0],
    [1, 'a/b', 0],
    [1, 'x'.repeat(65), 0],
    [1, '', -1],
    [1, '', 2 ** 32],
  ] as const) {
    assert.throws(
      () => enc.begin(seq, inc, rate),
      { code: 'LINK_INVALID_ARGUMENT' },
      `${seq} ${inc} ${rate}`,
    );
  }
});

test('the constructor refuses an out-of-range maxFrameBytes and unknown options', () => {
  assert.throws(() => new BatchEncoder({ maxFrameBytes: MAX_LINK_FRAME + 1 }), {
    code: 'LINK_INVALID_ARGUMENT',
  });
  assert.throws(() => new BatchEncoder({ capacity: 1 } as never), {
    code: 'LINK_INVALID_ARGUMENT',
    message: /capacity/,
  });
});

test('real dnstap payloads from every fixture travel through encoder, frame decoder and view unchanged', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.fstrm'));
  assert.ok(files.length >= 5);
  const rand = prng(3);
  for (const file of files) {
    const payloads = fstrmPayloads(readFileSync(path.join(FIXTURES, file)));
    const enc = new BatchEncoder();
    const frames: Buffer[] = [];
    for (let i = 0; i < payloads.length; i += 100) {
      frames.push(
        encode({ seq: frames.length + 1, incarnation: 'inc', records: payloads.slice(i, i + 100) }, enc),
      );
    }
    const out: Buffer[] = [];
    const view = new BatchView();
    const d = new LinkFrameDecoder({
      onFrame: (_t, b, s, e) => {
        view.parse(b, s, e);
        assert.equal(view.seq, Math.floor(out.length / 100) + 1);
        while (view.nextRecord()) out.push(Buffer.from(b.subarray(view.recordStart, view.recordEnd)));
      },
    });
    for (const c of randomChunks(Buffer.concat(frames), rand, 9000)) d.write(c);
    d.end();
    assert.equal(out.length, payloads.length, file);
    for (let i = 0; i < out.length; i++) assert.deepEqual(out[i], payloads[i], `${file} record ${i}`);
  }
});

test('a view is reusable and record ids have the documented shape', () => {
  const view = new BatchView();
  const one = batchBody({ seq: 5, incarnation: 'i1', sampleRate: 4, records: ['a', 'b'] });
  const two = batchBody({ seq: 6, records: ['c'] });
  view.parse(one, 0, one.length);
  assert.ok(view.nextRecord());
  view.parse(two, 0, two.length);
  assert.deepEqual([view.seq, view.incarnation, view.sampleRate, view.recordCount], [6, '', 0, 1]);
  assert.ok(view.nextRecord());
  assert.equal(view.recordIndex, 0);
  assert.equal(two.toString('latin1', view.recordStart, view.recordEnd), 'c');
  assert.equal(view.nextRecord(), false);
  assert.equal(view.nextRecord(), false);
  // Offsets are absolute: a body in the middle of a bigger buffer.
  const padded = Buffer.concat([Buffer.from('xxxx'), one, Buffer.from('yy')]);
  view.parse(padded, 4, 4 + one.length);
  assert.equal(view.incarnation, 'i1');
  assert.equal(
    view.forEachRecord(() => {}),
    2,
  );
  // A failed parse leaves nothing to iterate, not the previous batch's records.
  const broken = Buffer.concat([batchBody({ seq: 9, records: ['a', 'b'] }), Buffer.from([0x22, 0x09])]);
  assert.throws(() => view.parse(broken, 0, broken.length), { code: 'LINK_BAD_MESSAGE' });
  assert.equal(view.nextRecord(), false);
  assert.throws(() => view.parse(one, 0, one.length + 1), { code: 'LINK_INVALID_ARGUMENT' });
  assert.equal(recordIdPrefix('resolver-7f9c', 'i1', 5) + 1, 'resolver-7f9c/i1/5/1');
});

test('markResent appends resent = true: protobufjs reads it, BatchView reports it, records unchanged', () => {
  const frame = encode({ seq: 7, incarnation: 'inc-1', sampleRate: 3, records: ['a', 'bc', ''] });
  const view = new BatchView().parse(frame, 5, frame.length);
  assert.equal(view.resent, false);
  const marked = markResent(frame);
  assert.equal(marked.readUInt32BE(0), marked.length - 4);
  assert.deepEqual(marked.subarray(0, frame.length).subarray(4), frame.subarray(4));
  const again = new BatchView().parse(marked, 5, marked.length);
  assert.equal(again.resent, true);
  assert.equal(again.seq, 7);
  assert.equal(again.sampleRate, 3);
  const records: string[] = [];
  again.forEachRecord((b, s, e) => records.push(b.toString('utf8', s, e)));
  assert.deepEqual(records, ['a', 'bc', '']);
  const pb = BatchType.decode(marked.subarray(5)) as unknown as { resent: boolean; seq: unknown };
  assert.equal(pb.resent, true);
  // Written by protobufjs with resent true (field 5 after the records): the same bytes.
  const ref = BatchType.encode({
    seq: 7,
    incarnation: 'inc-1',
    sampleRate: 3,
    records: ['a', 'bc', ''].map((r) => Buffer.from(r)),
    resent: true,
  }).finish();
  assert.deepEqual(marked.subarray(5), Buffer.from(ref));
  // The original frame is not modified.
  assert.equal(new BatchView().parse(frame, 5, frame.length).resent, false);
});
