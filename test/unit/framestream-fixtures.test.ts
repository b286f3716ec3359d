// Real captures from unbound, bind, knot, kresd, dnsdist and pdns: frame counts, content
// type, and identical output however the bytes are chunked (two writes split around every
// frame boundary, byte by byte, random chunks), checked against the independent reference splitter.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ControlFrame } from '../../proto/framestream/control';
import { FrameDecoder } from '../../proto/framestream/decoder';
import { readFrameStreamFile } from '../../proto/framestream/file';
import {
  CT_DNSTAP,
  prng,
  type RefEvent,
  randomChunks,
  START,
  STOP,
  splitFrames,
} from '../support/fstrm-builder';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');

const KNOWN_COUNTS: Record<string, number> = {
  'bind-auth-unix': 630,
  'dnsdist-spoof-unix': 624,
  'knot-auth-unix': 628,
  'kresd-local-unix': 636,
  'pdns-forward-unix': 498,
  'unbound-local-tcp': 624,
  'unbound-local-unix-bulk': 13002,
  'unbound-local-unix': 628,
};

function load(name: string): Buffer {
  return readFileSync(path.join(FIXTURES, `${name}.fstrm`));
}

/**
 * Two-write split points where the decoder's carry-over matters: every byte from 12 before to 4
 * after each frame's payload start and end (length prefixes, escapes, control headers), and a
 * stride of 53 bytes between. Every position of every fixture was O(n^2) (8 s of the unit tier);
 * every split position is still tested on synthetic streams (unit/framestream-decoder,
 * unit/kit-chunk-decoder).
 */
function splitPoints(input: Buffer, ref: RefEvent[]): number[] {
  const at = new Set<number>();
  const add = (k: number) => {
    if (k >= 1 && k < input.length) at.add(k);
  };
  for (const e of ref) {
    const end = e.kind === 'data' ? e.offset + e.length : e.offset;
    for (let d = -12; d <= 4; d++) {
      add(e.offset + d);
      add(end + d);
    }
  }
  for (let k = 1; k < input.length; k += 53) add(k);
  return [...at].sort((x, y) => x - y);
}

/**
 * Checks decoder output against the reference event list as it is produced, without
 * allocating per frame: a payload delivered straight from a chunk must sit at the right
 * place of that chunk (same memory as the input); one delivered from the decoder's carry
 * buffer is compared byte for byte with the input.
 */
class Checker {
  i = 0;
  bad: string[] = [];
  chunk: Buffer | null = null;
  chunkStart = 0;
  readonly decoder: FrameDecoder;

  constructor(
    readonly input: Buffer,
    readonly ref: RefEvent[],
  ) {
    this.decoder = new FrameDecoder({
      onData: (buf, start, end) => this.data(buf, start, end),
      onControl: (frame) => this.control(frame),
    });
  }

  feed(chunk: Buffer, absStart: number): void {
    this.chunk = chunk;
    this.chunkStart = absStart;
    this.decoder.write(chunk);
  }

  private next(): RefEvent | undefined {
    const e = this.ref[this.i++];
    if (e === undefined) this.bad.push(`extra event #${this.i - 1}`);
    return e;
  }

  private data(buf: Buffer, start: number, end: number): void {
    const e = this.next();
    if (e === undefined) return;
    if (e.kind !== 'data' || e.length !== end - start) {
      this.bad.push(`event #${this.i - 1}: data of ${end - start} bytes, expected ${JSON.stringify(e)}`);
      return;
    }
    if (buf === this.chunk) {
      if (this.chunkStart + start !== e.offset)
        this.bad.push(`event #${this.i - 1}: payload at wrong offset`);
    } else if (buf.compare(this.input, e.offset, e.offset + e.length, start, end) !== 0) {
      this.bad.push(`event #${this.i - 1}: carried payload differs`);
    }
  }

  private control(frame: ControlFrame): void {
    const e = this.next();
    if (e === undefined) return;
    if (
      e.kind !== 'control' ||
      e.type !== frame.type ||
      e.contentTypes.join('\n') !== frame.contentTypes.join('\n')
    ) {
      this.bad.push(`event #${this.i - 1}: control ${JSON.stringify(frame)}, expected ${JSON.stringify(e)}`);
    }
  }

  finish(label: string): void {
    this.decoder.end();
    if (this.i !== this.ref.length) this.bad.push(`${this.i} events, expected ${this.ref.length}`);
    if (this.bad.length > 0) assert.fail(`${label}: ${this.bad.slice(0, 5).join('; ')}`);
  }
}

for (const [name, count] of Object.entries(KNOWN_COUNTS)) {
  test(`fixture ${name}: ${count} data frames, dnstap START first, STOP last`, () => {
    const input = load(name);
    const ref = splitFrames(input);
    assert.equal(ref.filter((e) => e.kind === 'data').length, count);
    assert.deepEqual(ref[0], { kind: 'control', offset: 0, type: START, contentTypes: [CT_DNSTAP] });
    const last = ref.at(-1);
    assert.ok(last?.kind === 'control' && last.type === STOP, 'last frame is STOP');

    const c = new Checker(input, ref);
    c.feed(input, 0);
    c.finish('one shot');
    assert.equal(c.decoder.stats.dataFrames, count);
    assert.equal(c.decoder.stats.controlFrames, 2);
    assert.equal(c.decoder.stats.oversizeFrames, 0);
  });

  test(`fixture ${name}: readFrameStreamFile counts ${count} frames with small and default blocks`, async () => {
    const file = path.join(FIXTURES, `${name}.fstrm`);
    const size = load(name).length;
    for (const blockSize of [4093, undefined]) {
      let frames = 0;
      let payloadBytes = 0;
      const result = await readFrameStreamFile(
        file,
        (_buf, start, end) => {
          frames++;
          payloadBytes += end - start;
        },
        { blockSize },
      );
      assert.deepEqual(result, { frames: count, bytes: size, payloadBytes, oversize: 0 });
      assert.equal(frames, count);
    }
  });

  if (name.endsWith('-bulk')) {
    test(`fixture ${name}: random chunkings give identical output`, () => {
      const input = load(name);
      const ref = splitFrames(input);
      const rand = prng(0xb01c);
      for (const maxChunk of [7, 300, 5000, 65536]) {
        const c = new Checker(input, ref);
        let at = 0;
        for (const chunk of randomChunks(input, rand, maxChunk)) {
          c.feed(chunk, at);
          at += chunk.length;
        }
        c.finish(`max chunk ${maxChunk}`);
      }
    });
    continue;
  }

  test(`fixture ${name}: split into two writes around every frame's header and end, and every 53rd byte, gives identical output`, () => {
    const input = load(name);
    const ref = splitFrames(input);
    for (const k of splitPoints(input, ref)) {
      const c = new Checker(input, ref);
      c.feed(input.subarray(0, k), 0);
      c.feed(input.subarray(k), k);
      c.finish(`split at ${k}`);
    }
  });

  test(`fixture ${name}: byte by byte gives identical output`, () => {
    const input = load(name);
    const c = new Checker(input, splitFrames(input));
    for (let k = 0; k < input.length; k++) c.feed(input.subarray(k, k + 1), k);
    c.finish('byte by byte');
  });
}
