// Receiver and sender session state machines: handshakes, content type negotiation,
// protocol violations with their codes, and a writer talking to a reader in memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDecoder } from '../../proto/framestream/decoder';
import { FramePacker } from '../../proto/framestream/encoder';
import { FramestreamError, type FramestreamErrorCode } from '../../proto/framestream/errors';
import { ReaderSession, type ReaderSessionOptions } from '../../proto/framestream/reader';
import { WriterSession } from '../../proto/framestream/writer';
import * as B from '../support/fstrm-builder';

interface Outcome {
  replies: B.RefEvent[];
  replyBytes: Buffer;
  data: string[];
  session: ReaderSession;
  clean: boolean;
}

/** Feeds builder bytes through FrameDecoder + ReaderSession, like a connection owner. */
function receive(input: Buffer, options: ReaderSessionOptions = {}): Outcome {
  const session = new ReaderSession(options);
  const replies: Buffer[] = [];
  const data: string[] = [];
  const decoder = new FrameDecoder({
    onData: (buf, s, e) => {
      session.onData();
      data.push(buf.toString('latin1', s, e));
    },
    onControl: (f) => {
      const reply = session.onControl(f);
      if (reply) replies.push(reply);
    },
  });
  decoder.write(input);
  decoder.end();
  const clean = session.end();
  const replyBytes = Buffer.concat(replies);
  return { replies: B.splitFrames(replyBytes), replyBytes, data, session, clean };
}

function rejects(
  input: Buffer,
  code: FramestreamErrorCode,
  message?: RegExp,
  options?: ReaderSessionOptions,
): void {
  assert.throws(
    () => receive(input, options),
    (err) => err instanceof FramestreamError && err.code === code && (!message || message.test(err.message)),
  );
}

const types = (o: Outcome) => o.replies.map((r) => (r.kind === 'control' ? [r.type, ...r.contentTypes] : r));

test('bidirectional: READY -> ACCEPT(dnstap), START, data, STOP -> FINISH', () => {
  const o = receive(B.bytes(B.ready('other', B.CT_DNSTAP), B.start(), B.data('q1'), B.data('q2'), B.stop()));
  assert.deepEqual(types(o), [[B.ACCEPT, B.CT_DNSTAP], [B.FINISH]]);
  assert.deepEqual(o.replyBytes, B.bytes(B.accept(B.CT_DNSTAP), B.finish()));
  assert.deepEqual(o.data, ['q1', 'q2']);
  assert.equal(o.session.bidirectional, true);
  assert.equal(o.session.state, 'finished');
  assert.equal(o.clean, true);
});

test('READY and START without content types are accepted (libfstrm behaviour)', () => {
  const o = receive(B.bytes(B.ready(), B.start(null), B.data('x'), B.stop()));
  assert.deepEqual(types(o), [[B.ACCEPT, B.CT_DNSTAP], [B.FINISH]]);
});

test('unidirectional: START first, no replies at all', () => {
  const o = receive(B.bytes(B.start(), B.data('a'), B.stop()));
  assert.deepEqual(o.replies, []);
  assert.equal(o.session.bidirectional, false);
  assert.deepEqual(o.data, ['a']);
  assert.equal(o.clean, true);
});

test('a stream that closes without STOP is reported as not clean (stream mode)', () => {
  const o = receive(B.bytes(B.start(), B.data('a')));
  assert.equal(o.clean, false);
  assert.equal(o.session.state, 'streaming');
});

test('STOP right after the handshake still gets FINISH', () => {
  const o = receive(B.bytes(B.ready(B.CT_DNSTAP), B.stop()));
  assert.deepEqual(types(o), [[B.ACCEPT, B.CT_DNSTAP], [B.FINISH]]);
});

test('protocol violations give their codes', () => {
  const { bytes, data, ready, start, stop, CT_DNSTAP } = B;
  rejects(bytes(ready('protobuf:other.Thing', 'json')), 'FSTRM_CONTENT_TYPE_MISMATCH', /json/);
  rejects(bytes(start('protobuf:other.Thing')), 'FSTRM_CONTENT_TYPE_MISMATCH');
  rejects(bytes(ready(CT_DNSTAP), start('other')), 'FSTRM_CONTENT_TYPE_MISMATCH');
  rejects(bytes(data('early')), 'FSTRM_UNEXPECTED_DATA', /before START/);
  rejects(bytes(ready(CT_DNSTAP), data('early')), 'FSTRM_UNEXPECTED_DATA', /before START/);
  rejects(bytes(start(), data('a'), stop(), data('late')), 'FSTRM_UNEXPECTED_DATA', /after STOP/);
  rejects(bytes(start(), data('a'), start()), 'FSTRM_UNEXPECTED_CONTROL', /START/);
  rejects(bytes(start(), ready(CT_DNSTAP)), 'FSTRM_UNEXPECTED_CONTROL', /READY/);
  rejects(bytes(ready(CT_DNSTAP), ready(CT_DNSTAP)), 'FSTRM_UNEXPECTED_CONTROL');
  rejects(bytes(B.accept(CT_DNSTAP)), 'FSTRM_UNEXPECTED_CONTROL', /ACCEPT/);
  rejects(bytes(start(), B.finish()), 'FSTRM_UNEXPECTED_CONTROL', /FINISH/);
  rejects(bytes(stop()), 'FSTRM_UNEXPECTED_CONTROL', /STOP/);
  rejects(bytes(start(), stop(), stop()), 'FSTRM_UNEXPECTED_CONTROL');
});

test('file mode: START..STOP then EOF is clean; READY, data before START, missing STOP are errors', () => {
  const file = { mode: 'file' } as const;
  const o = receive(B.file(['a', 'b']), file);
  assert.deepEqual(o.data, ['a', 'b']);
  assert.deepEqual(o.replies, []);
  rejects(B.bytes(B.ready(B.CT_DNSTAP), B.start()), 'FSTRM_UNEXPECTED_CONTROL', /file mode/, file);
  rejects(B.bytes(B.data('a'), B.start()), 'FSTRM_UNEXPECTED_DATA', undefined, file);
  rejects(B.bytes(B.start(), B.data('a')), 'FSTRM_TRUNCATED', /without a STOP/, file);
  rejects(Buffer.alloc(0), 'FSTRM_TRUNCATED', /before its START/, file);
});

test('a failed session keeps failing with the same error', () => {
  const s = new ReaderSession();
  assert.throws(() => s.onData(), { code: 'FSTRM_UNEXPECTED_DATA' });
  assert.throws(() => s.onControl({ type: 2, contentTypes: [] }), { code: 'FSTRM_UNEXPECTED_DATA' });
  assert.equal(s.state, 'failed');
  assert.throws(() => new ReaderSession({ mode: 'udp' as 'file' }), { code: 'FSTRM_INVALID_ARGUMENT' });
});

test('writer, bidirectional: READY, ACCEPT -> START, STOP, FINISH', () => {
  const w = new WriterSession();
  assert.deepEqual(w.open(), B.ready(B.CT_DNSTAP));
  assert.equal(w.streaming, false);
  assert.deepEqual(w.onControl({ type: B.ACCEPT, contentTypes: [B.CT_DNSTAP] }), B.start());
  assert.equal(w.streaming, true);
  assert.deepEqual(w.stop(), B.stop());
  assert.equal(w.state, 'awaiting-finish');
  assert.equal(w.onControl({ type: B.FINISH, contentTypes: [] }), null);
  assert.equal(w.state, 'finished');
});

test('writer, unidirectional: START at once, finished after STOP', () => {
  const uni = new WriterSession({ bidirectional: false });
  assert.deepEqual(uni.open(), B.start());
  assert.deepEqual(uni.stop(), B.stop());
  assert.equal(uni.state, 'finished');
});

test('writer: an ACCEPT without our content type is refused', () => {
  const mismatch = new WriterSession();
  mismatch.open();
  assert.throws(() => mismatch.onControl({ type: B.ACCEPT, contentTypes: ['json'] }), {
    code: 'FSTRM_CONTENT_TYPE_MISMATCH',
  });
});

test('writer: FINISH before ACCEPT is refused', () => {
  const early = new WriterSession();
  early.open();
  assert.throws(() => early.onControl({ type: B.FINISH, contentTypes: [] }), {
    code: 'FSTRM_UNEXPECTED_CONTROL',
  });
});

test('writer: stop() before open() is refused', () => {
  assert.throws(() => new WriterSession().stop(), { code: 'FSTRM_INVALID_STATE' });
});

/** Writer and reader exchange bytes through queues, in random chunks, until both finish. */
function roundTrip(
  bidirectional: boolean,
  payloads: Buffer[],
  seed: number,
): { got: string[]; reader: ReaderSession } {
  const rand = B.prng(seed);
  const toReader: Buffer[] = [];
  const toWriter: Buffer[] = [];
  const writer = new WriterSession({ bidirectional });
  const reader = new ReaderSession();
  const got: string[] = [];
  const readerDecoder = new FrameDecoder({
    onData: (b, s, e) => {
      reader.onData();
      got.push(b.toString('latin1', s, e));
    },
    onControl: (f) => {
      const r = reader.onControl(f);
      if (r) toWriter.push(r);
    },
  });
  const writerDecoder = new FrameDecoder({
    onData: () => assert.fail('the receiver never sends data'),
    onControl: (f) => {
      const r = writer.onControl(f);
      if (r) toReader.push(r);
    },
  });
  const pump = () => {
    while (toReader.length > 0 || toWriter.length > 0) {
      for (const c of B.randomChunks(Buffer.concat(toReader.splice(0)), rand, 13)) readerDecoder.write(c);
      for (const c of B.randomChunks(Buffer.concat(toWriter.splice(0)), rand, 5)) writerDecoder.write(c);
    }
  };
  toReader.push(writer.open());
  pump();
  assert.equal(writer.streaming, true);
  const packer = new FramePacker({ capacity: 200 });
  for (const p of payloads) {
    if (!packer.append(p)) {
      toReader.push(packer.take());
      packer.append(p);
    }
  }
  toReader.push(packer.take(), writer.stop());
  pump();
  assert.equal(writer.state, 'finished');
  assert.equal(reader.end(), true);
  return { got, reader };
}

test('round trip: writer and reader state machines, bidirectional and unidirectional', () => {
  const payloads = Array.from({ length: 300 }, (_, i) => Buffer.from(`record-${i}-${'z'.repeat(i % 37)}`));
  for (const bidirectional of [true, false]) {
    for (const seed of [1, 2, 3]) {
      const { got, reader } = roundTrip(bidirectional, payloads, seed);
      assert.deepEqual(
        got,
        payloads.map((p) => p.toString('latin1')),
      );
      assert.equal(reader.bidirectional, bidirectional);
      assert.equal(reader.dataFrames, payloads.length);
    }
  }
});
