// The four fuzz targets, in-process: Frame Streams (FrameDecoder + ReaderSession, wired as
// common/framestream-connection.ts wires them), the link protocol (LinkFrameDecoder,
// decodeControl, BatchView, the handshake, both sides), DNS messages (tryParseDnsMessage and
// the answers text) and the policy document (parsePolicyData, tablesFromData, load.ts).
// Each case returns an outcome label ("valid", "in-sync", "rejected:CODE", ...); only an
// exception the target does not expect escapes, and the runner counts it as a crash.

import { gzipSync } from 'node:zlib';
import { parsePolicyData, tablesFromData } from '../../enricher/policy/document';
import { PolicyError } from '../../enricher/policy/errors';
import { loadPolicyDocument } from '../../enricher/policy/load';
import {
  ANSWERS_TEXT_MAX_BYTES,
  ANSWERS_TEXT_SLACK,
  AnswersWriter,
  answersText,
  FLAGS_TEXT_MAX_LENGTH,
  flagsText,
} from '../../proto/dns/answers';
import { isDnsParseError } from '../../proto/dns/errors';
import { nameToString } from '../../proto/dns/name';
import { parseDnsMessage, tryParseDnsMessage } from '../../proto/dns/parser';
import { DnsView } from '../../proto/dns/view';
import { ControlType, DNSTAP_CONTENT_TYPE } from '../../proto/framestream/constants';
import { type ControlFrame, decodeControlFrame, encodeControlFrame } from '../../proto/framestream/control';
import { FrameDecoder } from '../../proto/framestream/decoder';
import { encodeDataFrame } from '../../proto/framestream/encoder';
import { FramestreamError, FramestreamErrorCode, isFramestreamError } from '../../proto/framestream/errors';
import { ReaderSession } from '../../proto/framestream/reader';
import { BatchView, decodeBatch } from '../../proto/link/batch-view';
import { Accepts, MessageType } from '../../proto/link/constants';
import { decodeControl } from '../../proto/link/control';
import { LinkFrameDecoder } from '../../proto/link/decoder';
import { isLinkProtocolError } from '../../proto/link/errors';
import { checkWelcome, EnricherHandshake, makeHello } from '../../proto/link/handshake';
import { frame as linkFrame, Pb, varint } from '../../test/support/link-builder';
import { randInt } from '../prng';
import { samplePolicy } from '../synthetic';
import { chunks, type LengthField, mutate, pick, type Rand, type Seed } from './mutate';

/** Thrown by a target when an invariant breaks (not a parse error): counted as a crash. */
export class InvariantError extends Error {}

function invariant(ok: boolean, message: string): void {
  if (!ok) throw new InvariantError(message);
}

// ---------------------------------------------------------------- Frame Streams

/** Small on purpose: oversized frames (skipped, counted) come cheap. */
export const FUZZ_MAX_DATA_FRAME = 512;
export const SENTINEL = Buffer.from('snowtap-fuzz-sentinel');
const STOP = encodeControlFrame(ControlType.STOP);

/**
 * The receiver as common/framestream-connection.ts builds it: decoder -> session; an
 * oversized frame before START is garbage (UNEXPECTED_DATA), after it is skipped and counted.
 */
export class FstrmModel {
  readonly session: ReaderSession;
  readonly decoder: FrameDecoder;
  dataCalls = 0;
  controlCalls = 0;
  oversizeCalls = 0;
  sentinels = 0;
  lastWasSentinel = false;

  constructor(
    misuse: Rand | null = null,
    mode: 'stream' | 'file' = 'stream',
    maxDataFrameSize = FUZZ_MAX_DATA_FRAME,
  ) {
    this.session = new ReaderSession({ mode });
    this.decoder = new FrameDecoder({
      maxDataFrameSize,
      onData: (buf, start, end) => {
        this.session.onData();
        this.dataCalls++;
        this.lastWasSentinel = end - start === SENTINEL.length && SENTINEL.equals(buf.subarray(start, end));
        if (this.lastWasSentinel) this.sentinels++;
        if (misuse !== null) {
          if (misuse() < 0.02) {
            // Misuse from a callback: refused with INVALID_STATE, the stream goes on.
            expectCode(() => this.decoder.write(Buffer.alloc(0)), FramestreamErrorCode.INVALID_STATE);
            expectCode(() => this.decoder.end(), FramestreamErrorCode.INVALID_STATE);
          }
        }
      },
      onControl: (f: ControlFrame) => {
        this.controlCalls++;
        this.lastWasSentinel = false;
        this.session.onControl(f);
      },
      onOversize: (length, offset) => {
        if (!this.session.streaming) {
          throw new FramestreamError(
            FramestreamErrorCode.UNEXPECTED_DATA,
            `data frame of ${length} bytes at offset ${offset} outside START..STOP`,
          );
        }
        this.oversizeCalls++;
        this.lastWasSentinel = false;
      },
    });
  }

  write(b: Uint8Array): void {
    this.decoder.write(b);
  }
}

function expectCode(fn: () => void, code: string): void {
  try {
    fn();
  } catch (err) {
    invariant((err as { code?: string }).code === code, `expected ${code}, got ${(err as Error).message}`);
    return;
  }
  throw new InvariantError(`expected ${code}, got no error`);
}

/** After a fatal error every call rethrows that same error. */
function expectSameFailure(fn: () => void, failure: unknown): void {
  try {
    fn();
  } catch (err) {
    invariant(err === failure, `a failed parser threw something else: ${(err as Error).message}`);
    return;
  }
  throw new InvariantError('a failed parser accepted another call');
}

function fstrmSeed(parts: (Buffer | ['data', number] | ['ctl', number, string[]])[]): Seed {
  const bufs: Buffer[] = [];
  const lengths: LengthField[] = [];
  let at = 0;
  for (const p of parts) {
    let b: Buffer;
    if (Buffer.isBuffer(p)) b = p;
    else if (p[0] === 'data') {
      const payload = Buffer.alloc(p[1]);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + p[1]) & 0xff;
      b = Buffer.concat([
        Buffer.from([p[1] >>> 24, (p[1] >>> 16) & 0xff, (p[1] >>> 8) & 0xff, p[1] & 0xff]),
        payload,
      ]);
      lengths.push({ at, width: 4 });
    } else {
      b = encodeControlFrame(p[1] as 1, p[2]);
      lengths.push({ at, width: 4 }, { at: at + 4, width: 4 }, { at: at + 8, width: 4 });
      let f = at + 12;
      for (const ct of p[2]) {
        lengths.push({ at: f, width: 4 }, { at: f + 4, width: 4 });
        f += 8 + ct.length;
      }
    }
    bufs.push(b);
    at += b.length;
  }
  return { bytes: Buffer.concat(bufs), lengths };
}

export function fstrmSeeds(): Seed[] {
  const ct = DNSTAP_CONTENT_TYPE;
  const S = ControlType.START;
  const R = ControlType.READY;
  return [
    fstrmSeed([
      ['ctl', S, [ct]],
      ['data', 1],
      ['data', 40],
      ['data', 200],
    ]),
    fstrmSeed([
      ['ctl', R, [ct]],
      ['ctl', S, [ct]],
      ['data', 12],
      ['data', 511],
    ]),
    fstrmSeed([
      ['ctl', R, ['other/type', ct]],
      ['ctl', S, []],
      ['data', 3],
    ]),
    fstrmSeed([
      ['ctl', S, []],
      ['data', 512],
      ['data', 513],
      ['data', 7],
    ]),
    fstrmSeed([
      ['ctl', S, [ct]],
      ['data', 2000],
      ['data', 5],
      ['data', 600],
      ['data', 1],
    ]),
    fstrmSeed([
      ['ctl', S, [ct]],
      ...Array.from({ length: 20 }, (_, i) => ['data', 1 + i] as ['data', number]),
    ]),
    fstrmSeed([
      ['ctl', R, [ct]],
      ['ctl', S, [ct]],
    ]),
    fstrmSeed([
      ['ctl', S, ['x'.repeat(256)]],
      ['data', 9],
    ]),
    fstrmSeed([['ctl', S, [ct]], encodeDataFrame(SENTINEL), ['data', 64]]),
    fstrmSeed([['ctl', S, [ct]], ['data', 5], STOP]),
    fstrmSeed([
      ['ctl', S, [ct]],
      ['data', 20_000],
      ['data', 5],
    ]),
    // START whose control length counts 3 stray bytes after the type
    { bytes: Buffer.from([0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 1]), lengths: [{ at: 4, width: 4 }] },
  ];
}

/** The bytes every case ends with: a sentinel data frame, then STOP. */
export const FSTRM_TAIL = Buffer.concat([encodeDataFrame(SENTINEL), STOP]);

export function fstrmCase(rand: Rand, seeds: Seed[]): string {
  const { seed, bytes, mutated } = mutate(rand, seeds);
  const r = rand();
  // Mostly a socket stream; 10 % a capture file (START first); 5 % a 1 MiB frame limit.
  const model = new FstrmModel(
    rand() < 0.2 ? rand : null,
    r < 0.1 ? 'file' : 'stream',
    r > 0.95 ? 1 << 20 : FUZZ_MAX_DATA_FRAME,
  );
  if (rand() < 0.03) fuzzWholeControlFrame(rand, bytes);
  const withTail = rand() < 0.95;
  let written = 0;
  try {
    for (const c of chunks(rand, withTail ? Buffer.concat([bytes, FSTRM_TAIL]) : bytes)) {
      model.write(rand() < 0.1 ? new Uint8Array(c.buffer, c.byteOffset, c.byteLength) : c);
      written += c.length;
    }
    model.decoder.end();
  } catch (err) {
    if (!isFramestreamError(err)) throw err;
    if (err.code !== FramestreamErrorCode.INVALID_STATE) {
      expectSameFailure(() => model.decoder.write(bytes), err);
      expectSameFailure(() => model.decoder.end(), err);
    }
    if (model.session.state === 'failed') {
      for (const f of [
        () => model.session.onData(),
        () => model.session.end(),
        () => model.session.onControl({ type: 2, contentTypes: [] }),
      ])
        expectCode(f, (model.session as unknown as { failure: { code: string } }).failure.code);
    }
    return `rejected:${err.code}`;
  } finally {
    // A callback that threw (the session refusing a frame) was still counted by the decoder.
    const st = model.decoder.stats;
    invariant(
      st.dataFrames - model.dataCalls <= 1 && st.oversizeFrames - model.oversizeCalls <= 1,
      'decoder counters disagree with the frames delivered',
    );
  }
  const st = model.decoder.stats;
  invariant(st.bytesIn === written, 'bytesIn differs from the bytes written');
  invariant(st.controlFrames === model.controlCalls, 'control frame count differs');
  invariant(st.oversizeFrames === model.oversizeCalls, 'oversize count differs');
  model.decoder.end(); // twice: a no-op
  expectCode(() => model.decoder.write(bytes), FramestreamErrorCode.INVALID_STATE);
  let clean: boolean;
  try {
    clean = model.session.end();
  } catch (err) {
    if (!isFramestreamError(err)) throw err;
    return `rejected:${err.code}`; // a file without STOP
  }
  if (clean && model.sentinels > 0 && withTail) {
    invariant(
      mutated || model.oversizeCalls === countOversize(bytes, model.decoder.maxDataFrameSize),
      'valid seed lost an oversize count',
    );
    return mutated ? 'in-sync' : 'valid';
  }
  invariant(mutated || seed.bad === true || !withTail, 'an unmutated seed did not decode cleanly');
  return !withTail
    ? clean
      ? 'finished-without-tail'
      : 'unfinished-without-tail'
    : clean
      ? 'realigned'
      : 'swallowed-stop';
}

/** decodeControlFrame (a whole frame in one buffer) on a slice of the case. */
function fuzzWholeControlFrame(rand: Rand, bytes: Buffer): void {
  const a = randInt(rand, bytes.length + 1);
  const slice = bytes.subarray(a, a + randInt(rand, 64));
  try {
    decodeControlFrame(slice);
  } catch (err) {
    if (!isFramestreamError(err)) throw err;
  }
}

function countOversize(stream: Buffer, max: number): number {
  let n = 0;
  for (let at = 0; at + 4 <= stream.length; ) {
    const len = stream.readUInt32BE(at);
    if (len === 0) at += 8 + stream.readUInt32BE(at + 4);
    else {
      if (len > max) n++;
      at += 4 + len;
    }
  }
  return n;
}

// ---------------------------------------------------------------- link protocol

/** Positions of the tags and length varints of a well-formed protobuf body. */
function pbLengths(body: Buffer, base: number, out: LengthField[]): void {
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let s = 1;
    while (p < body.length) {
      const b = body[p++]!;
      v += (b & 0x7f) * s;
      s *= 128;
      if (b < 0x80) break;
    }
    return v;
  };
  while (p < body.length) {
    out.push({ at: base + p, width: 'varint' });
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) {
      out.push({ at: base + p, width: 'varint' });
      varint();
    } else if (wire === 2) {
      out.push({ at: base + p, width: 'varint' });
      p += varint();
    } else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else return;
  }
}

function linkSeed(frames: Buffer[]): Seed {
  const lengths: LengthField[] = [];
  let at = 0;
  for (const f of frames) {
    lengths.push({ at, width: 4 }, { at: at + 4, width: 1 });
    pbLengths(f.subarray(5), at + 5, lengths);
    at += f.length;
  }
  return { bytes: Buffer.concat(frames), lengths };
}

const TOKEN = 'fuzz-token';
export const HELLO_SETTINGS = { agentId: 'agent-fuzz', incarnation: 'inc-1', authToken: TOKEN };

function helloFrame(
  o: {
    v?: number;
    min?: number;
    agent?: string;
    inc?: string;
    ct?: string;
    token?: string;
    soft?: string;
  } = {},
): Buffer {
  const pb = new Pb().uint(1, o.v ?? 1);
  if (o.min !== undefined) pb.uint(2, o.min);
  pb.len(3, o.agent ?? 'agent-fuzz')
    .len(4, o.inc ?? 'inc-1')
    .len(5, o.ct ?? DNSTAP_CONTENT_TYPE);
  pb.len(6, o.token ?? TOKEN);
  if (o.soft !== undefined) pb.len(7, o.soft);
  return linkFrame(MessageType.HELLO, pb);
}

function batch(seq: number | bigint, records: (string | Buffer)[], inc?: string, rate?: number): Buffer {
  const pb = new Pb();
  if (BigInt(seq) !== 0n) pb.uint(1, seq);
  if (inc !== undefined) pb.len(2, inc);
  if (rate !== undefined) pb.uint(3, rate);
  for (const r of records) pb.len(4, r);
  return linkFrame(MessageType.BATCH, pb);
}

const PING = (nonce: number | bigint) => linkFrame(MessageType.PING, new Pb().uint(1, nonce));
const GOODBYE = linkFrame(MessageType.GOODBYE, new Pb().len(1, 'done'));
export const LINK_SENTINEL_NONCE = 0x5e17;
/** What every enricher-side case ends with: a Ping with the sentinel nonce, then Goodbye. */
export const LINK_TAIL = Buffer.concat([PING(LINK_SENTINEL_NONCE), GOODBYE]);

export function linkEnricherSeeds(): Seed[] {
  const rec = (n: number) => Buffer.alloc(n, 0x41);
  return [
    linkSeed([helloFrame(), batch(1, ['abc', rec(100), ''])]),
    linkSeed([helloFrame({ min: 1, soft: 'snowtap 0.1' }), batch(2, [rec(10)], 'inc-0', 4), PING(1)]),
    linkSeed([helloFrame(), batch(3, []), batch(4, [rec(1)], 'inc-1', 1), linkFrame(MessageType.PONG)]),
    linkSeed([helloFrame({ v: 2, min: 1 }), batch(2n ** 40n, [rec(300)])]),
    linkSeed([helloFrame({ v: 3, min: 2 })]),
    linkSeed([helloFrame({ token: 'wrong' })]),
    linkSeed([helloFrame({ token: '' })]),
    linkSeed([helloFrame({ ct: 'text/plain' })]),
    linkSeed([helloFrame({ agent: 'bad agent' })]),
    linkSeed([helloFrame({ inc: '' })]),
    linkSeed([
      helloFrame(),
      linkFrame(
        MessageType.BATCH,
        new Pb().uint(1, 5).fixed32(9, 1).fixed64(10, 2).len(11, 'x').uint(12, 3).len(4, 'r'),
      ),
    ]),
    { ...linkSeed([helloFrame(), batch(7, ['r'], 'bad inc!')]), bad: true },
    { ...linkSeed([helloFrame(), batch(8, ['r'], undefined, 2 ** 32)]), bad: true },
    { ...linkSeed([helloFrame(), batch(9, ['r'], 'i'.repeat(65))]), bad: true },
    { ...linkSeed([helloFrame(), batch(2n ** 60n, ['r'])]), bad: true },
    linkSeed([
      helloFrame(),
      linkFrame(MessageType.BATCH, new Pb().uint(1, 10).len(4, 'rec', 0, 2).len(4, 'x', 2, 3)),
    ]),
  ];
}

function ackFrame(seqs: number[]): Buffer {
  const packed: number[] = [];
  for (const s of seqs) {
    let v = s;
    while (v >= 0x80) {
      packed.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    packed.push(v);
  }
  return linkFrame(MessageType.ACK, new Pb().len(1, packed));
}

function welcomeFrame(
  o: { v?: number; id?: string; inflight?: number; ka?: number; max?: number } = {},
): Buffer {
  const pb = new Pb().uint(1, o.v ?? 1).len(2, o.id ?? 'enr-0');
  if (o.inflight !== undefined) pb.uint(3, o.inflight);
  if (o.ka !== undefined) pb.uint(4, o.ka);
  if (o.max !== undefined) pb.uint(5, o.max);
  return linkFrame(MessageType.WELCOME, pb);
}

export function linkAgentSeeds(): Seed[] {
  const reject = linkFrame(
    MessageType.REJECT,
    new Pb().uint(1, 8).len(2, 'overloaded').uint(3, 1).uint(4, 1).uint(5, 250),
  );
  return [
    linkSeed([welcomeFrame({ inflight: 32, ka: 15000 }), ackFrame([1, 2, 300]), PING(9), GOODBYE]),
    linkSeed([
      welcomeFrame({ max: 1 << 20 }),
      linkFrame(MessageType.DRAIN, new Pb().len(1, 'shutdown').uint(2, 20000)),
      reject,
    ]),
    linkSeed([welcomeFrame({ v: 2 }), ackFrame([])]),
    linkSeed([welcomeFrame({ ka: 10 })]),
    linkSeed([welcomeFrame({ max: 100 })]),
    linkSeed([welcomeFrame({ id: '' })]),
    linkSeed([reject]),
    linkSeed([
      welcomeFrame({ inflight: 0, ka: 0, max: 0 }),
      linkFrame(MessageType.PONG, new Pb().uint(1, 3)),
      linkFrame(MessageType.ACK, new Pb().uint(1, 5)),
    ]),
    {
      ...linkSeed([welcomeFrame(), linkFrame(MessageType.ACK, new Pb().len(1, varint(2n ** 60n)))]),
      bad: true,
    },
  ];
}

const handshake = new EnricherHandshake({ enricherId: 'enr-fuzz', authToken: TOKEN, maxFrameBytes: 1 << 20 });
const hello = makeHello(HELLO_SETTINGS);
const batchView = new BatchView();
/** Every 8th batch of the run goes through decodeBatch (the callback form) instead. */
let batchesSeen = 0;

/**
 * The enricher's side of a connection as enricher/server/link-connection.ts runs it.
 * Returns 'open' | 'refused:<reject code>' | 'closed' (Goodbye) as the stream ends.
 */
export class LinkEnricherModel {
  state: 'hello' | 'open' | 'refused' | 'closed' = 'hello';
  refusedCode = 0;
  batches = 0;
  records = 0;
  lastPing = -1;
  /** Try write()/end() from inside onFrame once (refused: INVALID_STATE). */
  misuse = false;
  readonly decoder = new LinkFrameDecoder({
    maxFrameBytes: 1 << 20,
    accept: Accepts.ENRICHER_AWAIT_HELLO,
    onFrame: (type, buf, start, end) => this.onFrame(type, buf, start, end),
  });

  /**
   * Like the server: after a Reject it reads nothing more (state CLOSING). After a Goodbye
   * it keeps decoding until its close, so what follows may or may not be counted there
   * (it depends on pending flushes): the owner treats errors in state 'closed' as either.
   */
  write(chunk: Uint8Array): void {
    if (this.state === 'refused') return;
    try {
      this.decoder.write(chunk);
    } catch (err) {
      // The rest of the chunk after a Reject is never looked at by the server.
      if ((this.state as string) !== 'refused') throw err;
    }
  }

  end(): void {
    if (this.state === 'refused') return;
    this.decoder.end();
  }

  private onFrame(type: number, buf: Buffer, start: number, end: number): void {
    if (this.state === 'refused' || this.state === 'closed') return;
    if (type === MessageType.HELLO) {
      const verdict = handshake.answer(decodeControl(MessageType.HELLO, buf, start, end));
      if (!verdict.ok) {
        this.state = 'refused';
        this.refusedCode = verdict.reject.code;
        this.decoder.accept(Accepts.ANY);
        return;
      }
      this.state = 'open';
      this.decoder.accept(Accepts.ENRICHER_OPEN);
    } else if (type === MessageType.BATCH) {
      let n = 0;
      let v: BatchView;
      if (++batchesSeen % 8 === 0) v = decodeBatch(buf, start, end, () => void n++);
      else {
        v = batchView.parse(buf, start, end);
        while (v.nextRecord()) n++;
      }
      invariant(n === v.recordCount, 'BatchView record count differs from the records walked');
      this.batches++;
      this.records += n;
      void v.incarnation;
      if (this.misuse) {
        this.misuse = false;
        expectCode(() => this.decoder.write(Buffer.alloc(1)), 'LINK_INVALID_STATE');
        expectCode(() => this.decoder.end(), 'LINK_INVALID_STATE');
      }
    } else if (type === MessageType.PING) {
      this.lastPing = decodeControl(MessageType.PING, buf, start, end).nonce;
    } else if (type === MessageType.GOODBYE) {
      decodeControl(MessageType.GOODBYE, buf, start, end);
      this.state = 'closed';
      this.decoder.accept(Accepts.CLOSED);
    }
  }
}

/**
 * Runs a whole enricher-side stream through the model: 'valid' / 'in-sync' (the sentinel
 * Ping after the case was read, then Goodbye), 'refused:<code>' (handshake refused: a
 * clean Reject), 'rejected:<LINK code>' (fatal, Reject PROTOCOL_ERROR and close; errors
 * after the peer's Goodbye are 'after-goodbye:<code>'), 'no-hello' (EOF inside the Hello).
 */
export function linkEnricherOutcome(model: LinkEnricherModel, parts: Buffer[]): string {
  try {
    for (const c of parts) model.write(c);
    model.end();
  } catch (err) {
    if (!isLinkProtocolError(err)) throw err;
    expectSameFailure(() => model.decoder.write(Buffer.alloc(1)), err);
    expectSameFailure(() => model.decoder.end(), err);
    if (model.state === 'closed') return `after-goodbye:${err.code}`;
    if (model.state === 'hello' && err.code === 'LINK_TRUNCATED') return 'no-hello';
    return `rejected:${err.code}`;
  }
  if (model.state !== 'refused') {
    model.end(); // twice: a no-op
    expectCode(() => model.decoder.write(Buffer.alloc(1)), 'LINK_INVALID_STATE');
    void model.decoder.bufferedBytes;
  }
  if (model.state === 'refused') return `refused:${model.refusedCode}`;
  if (model.state === 'closed') return model.lastPing === LINK_SENTINEL_NONCE ? 'in-sync' : 'realigned';
  return model.state === 'hello' ? 'no-hello' : 'swallowed-goodbye';
}

export function linkEnricherCase(rand: Rand, seeds: Seed[]): string {
  const { seed, bytes, mutated } = mutate(rand, seeds);
  if (rand() < 0.0005) return bigBatchCase(rand);
  const model = new LinkEnricherModel();
  model.misuse = rand() < 0.05;
  const parts = chunks(rand, Buffer.concat([bytes, LINK_TAIL])).map((c) =>
    rand() < 0.1 ? new Uint8Array(c.buffer, c.byteOffset, c.byteLength) : c,
  );
  const outcome = linkEnricherOutcome(model, parts as Buffer[]);
  if (!mutated && seed.bad !== true)
    invariant(outcome === 'in-sync' || outcome.startsWith('refused:'), `unmutated seed: ${outcome}`);
  return !mutated && outcome === 'in-sync' ? 'valid' : outcome;
}

/** A Batch above 1 MiB cut in two chunks: the carry-over buffer grows, then is given back. */
function bigBatchCase(rand: Rand): string {
  const n = (1 << 20) + randInt(rand, 4096);
  const head = new Pb()
    .uint(1, 1)
    .tag(4, 2)
    .raw(...varint(n))
    .buffer();
  const f = Buffer.alloc(5 + head.length + n, 0x41);
  f.writeUInt32BE(1 + head.length + n, 0);
  f[4] = MessageType.BATCH;
  head.copy(f, 5);
  let records = 0;
  const d = new LinkFrameDecoder({
    accept: Accepts.ENRICHER_OPEN,
    onFrame: (_t, buf, start, end) => {
      records += new BatchView().parse(buf, start, end).recordCount;
    },
  });
  const cut = 1 + randInt(rand, f.length - 1);
  d.write(f.subarray(0, cut));
  d.write(f.subarray(cut));
  d.end();
  invariant(records === 1, 'the big batch lost its record');
  return 'big-batch';
}

/** The agent's side: Welcome checked against our Hello, then Ack/Drain/Ping/Pong/Reject/Goodbye. */
export function linkAgentCase(rand: Rand, seeds: Seed[]): string {
  const { seed, bytes, mutated } = mutate(rand, seeds);
  if (rand() < 0.001) {
    // decodeControl called on a body above MAX_CONTROL_BODY (the decoder never passes one).
    expectCode(() => decodeControl(MessageType.PING, Buffer.alloc(64 * 1024 + 1)), 'LINK_FRAME_TOO_LARGE');
  }
  let state = 'await' as 'await' | 'open' | 'closed';
  let sawSentinel = false;
  const decoder: LinkFrameDecoder = new LinkFrameDecoder({
    accept: Accepts.AGENT_AWAIT_WELCOME,
    onFrame: (type, buf, start, end) => {
      if (state === 'closed') return;
      switch (type) {
        case MessageType.WELCOME: {
          const agreed = checkWelcome(decodeControl(MessageType.WELCOME, buf, start, end), hello, 64);
          invariant(
            agreed.maxInFlightBatches >= 1 && agreed.maxInFlightBatches <= 64,
            'window outside 1..64',
          );
          state = 'open';
          decoder.accept(Accepts.AGENT_OPEN);
          return;
        }
        case MessageType.REJECT:
        case MessageType.GOODBYE:
          decodeControl(type, buf, start, end);
          state = 'closed';
          decoder.accept(Accepts.CLOSED);
          return;
        case MessageType.PING:
          sawSentinel = decodeControl(MessageType.PING, buf, start, end).nonce === LINK_SENTINEL_NONCE;
          return;
        default:
          decodeControl(type as 5, buf, start, end);
      }
    },
  });
  try {
    for (const c of chunks(rand, Buffer.concat([bytes, LINK_TAIL]))) decoder.write(c);
    decoder.end();
  } catch (err) {
    if (!isLinkProtocolError(err)) throw err;
    // After Reject or Goodbye the agent takes nothing more: the tail's Ping is refused.
    if ((state as string) === 'closed') return `after-close:${err.code}`;
    invariant(
      mutated || seed.bad === true || err.code === 'LINK_BAD_WELCOME',
      `unmutated agent seed: ${err.code}`,
    );
    return `rejected:${err.code}`;
  }
  if ((state as string) === 'closed')
    return sawSentinel ? (mutated ? 'in-sync' : 'valid') : mutated ? 'closed' : 'valid-closed';
  invariant(mutated || seed.bad === true, 'an unmutated agent-side seed did not end in sync');
  return 'swallowed-goodbye';
}

// ---------------------------------------------------------------- DNS messages

class DnsB {
  readonly b: number[] = [];
  readonly lengths: LengthField[] = [];
  u8(v: number): this {
    this.b.push(v & 0xff);
    return this;
  }
  u16(v: number, isLength = false): this {
    if (isLength) this.lengths.push({ at: this.b.length, width: 2 });
    this.b.push((v >> 8) & 0xff, v & 0xff);
    return this;
  }
  u32(v: number): this {
    return this.u16(Math.floor(v / 65536)).u16(v & 0xffff);
  }
  bytes(x: number[] | Buffer): this {
    for (const v of x) this.b.push(v);
    return this;
  }
  /** Labels as latin1 strings; `ptr` ends the name with a compression pointer instead of the root. */
  name(labels: (string | Buffer)[], ptr?: number): this {
    for (const l of labels) {
      const lb = typeof l === 'string' ? Buffer.from(l, 'latin1') : l;
      this.lengths.push({ at: this.b.length, width: 1 });
      this.b.push(lb.length, ...lb);
    }
    if (ptr !== undefined) {
      this.lengths.push({ at: this.b.length, width: 2 });
      this.u16(0xc000 | ptr);
    } else this.b.push(0);
    return this;
  }
  header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): this {
    return this.u16(id).u16(flags).u16(qd, true).u16(an, true).u16(ns, true).u16(ar, true);
  }
  /** An RR whose owner is a pointer to the question name (offset 12). */
  rr(type: number, rdata: (d: DnsB) => void, owner: 'ptr' | string[] = 'ptr', klass = 1): this {
    if (owner === 'ptr') this.u16(0xc00c);
    else this.name(owner);
    this.u16(type).u16(klass).u32(3600);
    const at = this.b.length;
    this.u16(0, true);
    const start = this.b.length;
    rdata(this);
    const len = this.b.length - start;
    this.b[at] = len >> 8;
    this.b[at + 1] = len & 0xff;
    return this;
  }
  opt(options: [number, number[]][], udp = 1232, ttl = 0x8000): this {
    this.u8(0).u16(41).u16(udp).u32(ttl);
    const at = this.b.length;
    this.u16(0, true);
    const start = this.b.length;
    for (const [code, data] of options) {
      this.u16(code).u16(data.length, true).bytes(data);
    }
    const len = this.b.length - start;
    this.b[at] = len >> 8;
    this.b[at + 1] = len & 0xff;
    return this;
  }
  seed(): Seed {
    return { bytes: Buffer.from(this.b), lengths: this.lengths };
  }
}

export function dnsSeeds(): Seed[] {
  const q = (d: DnsB, labels: (string | Buffer)[] = ['www', 'Example', 'com'], t = 1) =>
    d.name(labels).u16(t).u16(1);
  const seeds: Seed[] = [];
  // query with ECS v4 and v6
  let d = new DnsB().header(0x1234, 0x0100, 1, 0, 0, 1);
  seeds.push(
    q(d)
      .opt([
        [8, [0, 1, 24, 0, 10, 1, 2]],
        [10, [1, 2, 3, 4, 5, 6, 7, 8]],
      ])
      .seed(),
  );
  d = new DnsB().header(7, 0x0120, 1, 0, 0, 1);
  seeds.push(
    q(d, ['a'], 28)
      .opt([[8, [0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0]]])
      .seed(),
  );
  // response with every rendered type
  d = new DnsB().header(9, 0x8580, 1, 12, 1, 2);
  q(d, ['host', 'Ex\\am.ple', 'org'], 255)
    .rr(1, (x) => x.bytes([192, 0, 2, 1]))
    .rr(28, (x) => x.bytes([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))
    .rr(5, (x) => x.name(['alias', 'x'], 12))
    .rr(2, (x) => x.name(['ns1'], 12))
    .rr(12, (x) => x.name(['p;tr', 'a b', Buffer.from([0, 0x7f, 0xff, 0x2e])]))
    .rr(39, (x) => x.name([], 12))
    .rr(15, (x) => x.u16(10).name(['mx'], 12))
    .rr(33, (x) => x.u16(1).u16(2).u16(53).name(['srv'], 12))
    .rr(6, (x) => x.name(['m'], 12).name(['r', 'mail']).u32(1).u32(2).u32(3).u32(4).u32(5))
    .rr(16, (x) => x.u8(5).bytes(Buffer.from('a"b\\;')).u8(2).bytes([0, 0xff]).u8(0))
    .rr(99, (x) => x.bytes([1, 2, 3]))
    .rr(1, (x) => x.bytes([1, 2, 3]));
  d.rr(6, (x) => x.name(['a'], 12).name(['b'], 12).u32(1).u32(2).u32(3).u32(4).u32(0xffffffff));
  d.rr(1, (x) => x.bytes([10, 0, 0, 1]), ['glue', 'x']).opt([], 4096, 0x01008000);
  seeds.push(d.seed());
  // a CNAME chain with long names, no EDNS
  d = new DnsB().header(3, 0x8183, 1, 3, 0, 0);
  q(d, ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)])
    .rr(5, (x) => x.name(['z'.repeat(63)], 12))
    .rr(5, (x) => x.name(['y'], 12))
    .rr(28, (x) => x.bytes(Buffer.alloc(16)));
  seeds.push(d.seed());
  // two questions, the root name, a header only
  d = new DnsB().header(4, 0x0000, 2, 0, 0, 0);
  seeds.push(q(q(d, [], 2), ['second'], 6).seed());
  seeds.push(new DnsB().header(5, 0x7800, 0, 0, 0, 0).seed());
  // TXT with many strings, MX/SRV with short RDATA, long answers list (truncation)
  d = new DnsB().header(6, 0x8400, 1, 40, 0, 0);
  q(d, ['t'], 16);
  for (let i = 0; i < 40; i++) d.rr(16, (x) => x.u8(30).bytes(Buffer.alloc(30, 0x61 + (i % 26))));
  seeds.push(d.seed());
  d = new DnsB().header(8, 0x8400, 1, 4, 0, 0);
  q(d, ['s'], 33)
    .rr(15, (x) => x.u16(1))
    .rr(33, (x) => x.u16(1).u16(2))
    .rr(2, (x) => x.bytes([3, 0x61]))
    .rr(6, (x) => x.name([], 12).name([]).u32(1));
  seeds.push(d.seed());
  // non-root OPT owner, a second OPT, ECS with bits past SOURCE, a question name looping on
  // itself, an answer owner over 255 octets, a CNAME chain of pointers past the jump limit
  d = new DnsB().header(10, 0, 1, 0, 0, 2);
  q(d).bytes([1, 0x78]).opt([]);
  seeds.push({ ...d.seed(), bad: true });
  d = new DnsB().header(11, 0, 1, 0, 0, 2);
  seeds.push({ ...q(d).opt([]).opt([]).seed(), bad: true });
  d = new DnsB().header(12, 0, 1, 0, 0, 1);
  seeds.push({
    ...q(d)
      .opt([[8, [0, 1, 23, 0, 10, 1, 3]]])
      .seed(),
    bad: true,
  });
  seeds.push({
    ...new DnsB().header(13, 0, 1, 0, 0, 0).bytes([1, 0x61, 0xc0, 12, 0, 1, 0, 1]).seed(),
    bad: true,
  });
  d = new DnsB().header(14, 0x8000, 1, 1, 0, 0);
  q(d, ['o']).rr(1, (x) => x.bytes([1, 2, 3, 4]), [
    'a'.repeat(63),
    'b'.repeat(63),
    'c'.repeat(63),
    'd'.repeat(63),
    'e'.repeat(10),
  ]);
  seeds.push({ ...d.seed(), bad: true });
  d = new DnsB().header(15, 0x8000, 1, 130, 0, 0);
  q(d, ['loop']);
  let prev = 12;
  for (let i = 0; i < 130; i++) {
    d.u16(0xc00c).u16(5).u16(1).u32(1).u16(2);
    const here = d.b.length;
    d.u16(0xc000 | prev);
    prev = here;
  }
  seeds.push({ ...d.seed(), bad: true });
  return seeds;
}

const view = new DnsView();
const answersDst = Buffer.alloc(ANSWERS_TEXT_MAX_BYTES + ANSWERS_TEXT_SLACK + 16);
const writers = [3, 16, 100, ANSWERS_TEXT_MAX_BYTES].map((m) => new AnswersWriter(m));
const dnsPad = Buffer.alloc(70_000);

export function dnsCase(rand: Rand, seeds: Seed[]): string {
  const { seed, bytes, mutated } = mutate(rand, seeds);
  // The message sits inside a larger buffer, as in a dnstap frame: offsets must hold.
  const off = randInt(rand, 8);
  const tail = randInt(rand, 8);
  const total = off + bytes.length + tail;
  const buf = total <= dnsPad.length ? dnsPad.subarray(0, total) : Buffer.alloc(total);
  buf.fill(0xa5, 0, off);
  bytes.copy(buf, off);
  buf.fill(0x5a, off + bytes.length);
  let code: string | null;
  if (rand() < 0.05) {
    // The throwing form: a DnsParseError with the same code, or nothing.
    try {
      parseDnsMessage(buf, off, off + bytes.length, view);
      code = null;
    } catch (err) {
      if (!isDnsParseError(err)) throw err;
      code = err.code;
    }
  } else code = tryParseDnsMessage(buf, off, off + bytes.length, view);
  invariant(flagsText(view.flags).length <= FLAGS_TEXT_MAX_LENGTH, 'flags text too long');
  if (view.hasQuestion) {
    const name = nameToString(view);
    invariant(name.length <= 1024, 'question name text longer than its bound');
  }
  const w = pick(rand, writers);
  const end = w.write(buf, view, answersDst, 8);
  if (rand() < 0.01)
    invariant(
      answersText(buf, view).length <= ANSWERS_TEXT_MAX_BYTES + ANSWERS_TEXT_SLACK,
      'answersText too long',
    );
  invariant(end - 8 <= w.maxBytes + ANSWERS_TEXT_SLACK, 'answers text overran its slack');
  if (code !== null) {
    invariant(mutated || seed.bad === true, `an unmutated DNS seed was refused: ${code}`);
    return `rejected:${code}`;
  }
  if (!mutated) invariant(view.answersOff >= 0, 'an unmutated DNS seed lost its answers');
  return mutated ? 'parsed' : 'valid';
}

// ---------------------------------------------------------------- policy document

export function policySeeds(): Seed[] {
  const docs: object[] = [
    samplePolicy(),
    {
      version: 'v2',
      domains: [
        { suffix: '', category: 'root', action: 'log' },
        { suffix: 'Example.COM.', category: 'c', action: 'a' },
        { suffix: '*.wild.example', category: 'w', action: 'block' },
        { suffix: 'xn--bcher-kva.example', category: 'idn', action: 'log' },
        { suffix: 'a\\.b.example', category: 'esc', action: 'log' },
      ],
      networks: [
        { cidr: '10.0.0.0/8', tenant: 't1' },
        { cidr: '10.1.0.0/16', tenant: 't2' },
        { cidr: '192.0.2.7/32', tenant: 'host' },
        { cidr: '2001:db8::/32', tenant: 't6' },
        { cidr: '::ffff:10.2.0.0/112', tenant: 'mapped' },
        { cidr: '::/0', tenant: 'all6' },
        { cidr: '0.0.0.0/0', tenant: 'all4' },
        { cidr: 'fe80::1/128', tenant: 'll' },
      ],
    },
    { version: 'min' },
    { version: 'empty', domains: [], networks: [] },
  ];
  return docs.map((doc) => ({ bytes: Buffer.from(JSON.stringify(doc)), lengths: [] }));
}

const ODD_STRINGS = [
  '',
  '.',
  '..',
  'a..b',
  '*',
  '*.',
  '-a.example',
  'a-.example',
  'A.B',
  'é.example',
  'ß',
  '\u0000',
  ' ',
  'a b',
  'x'.repeat(64),
  `${'a.'.repeat(130)}com`,
  'x'.repeat(1025),
  '10.0.0.0/8',
  '10.0.0.1/8',
  '1.2.3.4/33',
  '1.2.3.4/',
  '/8',
  '01.2.3.4/8',
  '1.2.3.4/08',
  '256.0.0.0/8',
  '1.2.3',
  '::',
  '::1/128',
  '::/129',
  '1:2:3:4:5:6:7:8:9/64',
  'fe80::1%eth0/64',
  '2001:db8::/-1',
  '2001:db8:::1/64',
  '::ffff:1.2.3.4/120',
  '1::2::3',
  'gggg::/16',
  '2001:0db8:0000:0000:0000:0000:0000:0001',
  '::ffff:1.2.3/128',
  '0.0.0.0/0',
  '1.2.3.4/32',
  'a\\',
  'a\\065b',
  '\\.',
  'a\\300',
  'x.\\\\',
  '_srv._tcp.example',
  'www.example.com',
  '10.1.0.0/16',
  '2001:db8::/32',
  'sample-2',
];
const ODD_VALUES: unknown[] = [null, true, 0, -1, 1.5, 1e308, [], {}, [1], { a: 1 }, ...ODD_STRINGS];

/** A fresh value each time: a shared object edited in place later would make cycles (x.Suffix = x). */
function randomValue(rand: Rand): unknown {
  return rand() < 0.7 ? pick(rand, ODD_STRINGS) : structuredClone(pick(rand, ODD_VALUES));
}

/** One structural edit of a JSON value (in place where possible); returns the new root. */
function editJson(rand: Rand, root: unknown): unknown {
  // Walk to a random container.
  let node: unknown = root;
  let parent: Record<string, unknown> | unknown[] | null = null;
  let key: string | number = '';
  for (let depth = 0; depth < 3 && typeof node === 'object' && node !== null && rand() < 0.75; depth++) {
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    parent = node as Record<string, unknown>;
    key = pick(rand, keys);
    node = (node as Record<string, unknown>)[key];
  }
  const set = (v: unknown) => {
    if (parent === null) root = v;
    else (parent as Record<string | number, unknown>)[key] = v;
  };
  switch (randInt(rand, 7)) {
    case 0:
      set(randomValue(rand));
      break;
    case 1:
      if (parent !== null && !Array.isArray(parent)) delete parent[key as string];
      else if (Array.isArray(parent)) parent.splice(key as number, 1);
      break;
    case 2:
      if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
        (node as Record<string, unknown>)[
          pick(rand, ['extra', 'suffix', 'cidr', 'tenant', 'version', 'Suffix'])
        ] = randomValue(rand);
      } else set(randomValue(rand));
      break;
    case 3:
      // duplicate an entry (POLICY_DUPLICATE) or append a fresh one
      if (Array.isArray(node) && node.length > 0) node.push(JSON.parse(JSON.stringify(pick(rand, node))));
      else if (Array.isArray(parent)) parent.push(JSON.parse(JSON.stringify(node)));
      break;
    case 4:
      if (Array.isArray(node)) {
        node.push(
          rand() < 0.5
            ? { suffix: pick(rand, ODD_STRINGS), category: 'c', action: 'a' }
            : { cidr: pick(rand, ODD_STRINGS), tenant: 't' },
        );
      } else set(randomValue(rand));
      break;
    case 5:
      if (typeof node === 'string')
        set(node + pick(rand, ['.', '/', ':', '\\', 'x', '.example', '/24', '::']));
      else set(randomValue(rand));
      break;
    default:
      if (typeof node === 'string' && node.length > 0) {
        const at = randInt(rand, node.length);
        set(node.slice(0, at) + node.slice(at + 1));
      } else set(randomValue(rand));
  }
  return root;
}

export interface PolicyCase {
  bytes: Buffer;
  maxDocumentBytes: number | undefined;
  mutated: boolean;
}

export function policyInput(rand: Rand, seeds: Seed[]): PolicyCase {
  let bytes: Buffer;
  let mutated = true;
  const r = rand();
  if (r < 0.04) {
    bytes = pick(rand, seeds).bytes;
    mutated = false;
  } else if (r < 0.35) {
    bytes = mutate(rand, seeds).bytes; // byte-level: mostly dies in JSON.parse
  } else {
    let doc: unknown = JSON.parse(pick(rand, seeds).bytes.toString());
    const edits = 1 + randInt(rand, 3);
    for (let i = 0; i < edits; i++) doc = editJson(rand, doc);
    bytes = Buffer.from(JSON.stringify(doc) ?? 'null');
    if (rand() < 0.05) bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    if (rand() < 0.02) bytes = Buffer.concat([bytes, Buffer.from([0xc3])]); // bad UTF-8
  }
  if (rand() < 0.05) {
    bytes = gzipSync(bytes, { level: 1 });
    if (rand() < 0.3) {
      bytes = mutate(rand, [{ bytes, lengths: [] }]).bytes;
      mutated = true;
    }
  }
  const maxDocumentBytes = rand() < 0.03 ? 1 + randInt(rand, 200) : undefined;
  return { bytes, maxDocumentBytes, mutated: mutated || maxDocumentBytes !== undefined };
}

export function policyOutcome(
  tables: ReturnType<typeof tablesFromData> | null,
  err: unknown,
  c: PolicyCase,
): string {
  if (err !== null) {
    if (!(err instanceof PolicyError)) throw err;
    invariant(c.mutated, `an unmutated policy seed was refused: ${(err as Error).message}`);
    return `rejected:${err.code}`;
  }
  invariant(tables !== null && typeof tables.version === 'string', 'a loaded policy has no version');
  return c.mutated ? 'loaded' : 'valid';
}

export function policyCase(rand: Rand, seeds: Seed[]): string {
  const c = policyInput(rand, seeds);
  let tables = null;
  let err: unknown = null;
  try {
    tables = tablesFromData(parsePolicyData(c.bytes, 'fuzz', { maxDocumentBytes: c.maxDocumentBytes }));
  } catch (e) {
    err = e;
  }
  return policyOutcome(tables, err, c);
}

/** load.ts, the path the enricher takes: parse in a worker thread (or inline). */
export async function policyLoadCase(rand: Rand, seeds: Seed[], worker: boolean): Promise<string> {
  const c = policyInput(rand, seeds);
  let tables = null;
  let err: unknown = null;
  try {
    // transferBytes needs a Buffer that spans its whole ArrayBuffer, as an HTTP body does.
    const own = Buffer.alloc(c.bytes.length); // not from the pool: its own ArrayBuffer
    c.bytes.copy(own);
    tables = await loadPolicyDocument(own, 'fuzz', {
      worker,
      maxDocumentBytes: c.maxDocumentBytes,
      transferBytes: true,
    });
  } catch (e) {
    err = e;
  }
  return policyOutcome(tables, err, c);
}
