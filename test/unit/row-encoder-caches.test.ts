// The row encoder caches runs that repeat from row to row (issue 11 step 6): record_id's head
// per source and seq, the sample_rate..enricher_id run per source, the message_type..family run
// per message type (with the identity it holds), mnemonic words. A row from a long-lived
// pipeline, whose caches hold whatever the rows before it left there, must equal the row a
// fresh pipeline writes for the same frame (it fills every cache from scratch).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordPipeline } from '../../enricher/pipeline/pipeline';
import { MAX_ROW_BYTES, RowSource } from '../../enricher/pipeline/row-encoder';
import { prng, randInt } from '../../loadtest/prng';
import { dnstapFrame, type FrameSpec } from '../support/chunk-builder';

function sink() {
  const s = {
    rowTarget: Buffer.alloc(MAX_ROW_BYTES, 0x5a),
    end: 0,
    full: false,
    whenDrained: () => Promise.resolve(),
    beginRow: () => 0,
    endRow: (e: number) => {
      s.end = e;
      return true;
    },
  };
  return s;
}

test('cached runs: every row of a long-lived pipeline equals the row of a fresh one', () => {
  const rand = prng(0x11e6);
  const pick = <T>(xs: readonly T[]): T => xs[randInt(rand, xs.length)]!;
  const identities = [
    undefined,
    Buffer.from('ns1'),
    Buffer.from('unbound-peer'),
    Buffer.from('unbound-pee2'),
    Buffer.from('caf\u00e9,ns', 'latin1'),
    Buffer.from('q"uote'),
    Buffer.alloc(0),
    Buffer.alloc(300, 0x61),
    Buffer.alloc(1500, 0x62),
  ];
  const sources = [
    new RowSource('file-0123456789abcdef', ''),
    new RowSource('agent-7/inc-1', 'agent-7', 1),
    new RowSource('agent-7/inc-2', 'agent-7', 16),
    new RowSource('we,ird"source', 'ag"ent', 4_000_000_000),
  ];
  const names = [
    ['www', 'tap', 'test'],
    ['q0000048', 'w', 'tap', 'test'],
    ['a,b', 'example'],
    ['UPPER', 'x'],
  ];
  const long = sink();
  const longPipe = new RecordPipeline(long, 'conv-1', () => null);
  let rows = 0;
  for (let i = 0; i < 3000; i++) {
    const spec: FrameSpec = {
      identity: pick(identities),
      type: pick([1, 2, 5, 6, 5, 6, 6, 15, 16, 99]),
      family: pick([undefined, 1, 2, 1, 7]),
      protocol: pick([undefined, 1, 2, 1, 9]),
      queryAddress: pick([
        undefined,
        Buffer.from([127, 0, 0, 1]),
        Buffer.from([10, 200, 3, 255]),
        Buffer.alloc(16, 1),
      ]),
      responseAddress: pick([undefined, Buffer.from([0, 0, 0, 0]), Buffer.from([198, 51, 100, 17])]),
      queryPort: pick([undefined, 0, 9, 53, 99, 100, 999, 1000, 57348, 65535, 70000]),
      responsePort: pick([undefined, 53, 5300]),
      queryTime: pick([
        undefined,
        [1_795_000_000 + randInt(rand, 3), randInt(rand, 1_000_000_000)] as [number, number],
      ]),
      responseTime: pick([
        undefined,
        [1_795_000_000 + randInt(rand, 3), randInt(rand, 1_000_000_000)] as [number, number],
      ]),
      qname: pick([undefined, ...names.map((n) => n.map((l) => Buffer.from(l)))]),
      qtype: pick([1, 28, 5, 65, 300, 65535]),
      qclass: pick([1, 3, 254, 4000]),
      rcode: pick([0, 3, 5, 11]),
      dnsId: randInt(rand, 65536),
      flags: pick([0, 0x0100, 0x0580, 0x8000]),
      opcode: pick([0, 2, 6, 15]),
      edns: pick([undefined, { udpSize: 1232, dnssecOk: true }, { udpSize: 512 }]),
    };
    const frame = dnstapFrame(spec);
    const src = pick(sources);
    const seq = pick([0, 1, 7, 1_000_000]);
    const index = randInt(rand, 2_000_000);
    const a = longPipe.process(frame, 0, frame.length, src, seq, index);
    const fresh = sink();
    const b = new RecordPipeline(fresh, 'conv-1', () => null).process(
      frame,
      0,
      frame.length,
      src,
      seq,
      index,
    );
    assert.equal(a, b);
    if (!a) continue;
    rows++;
    const got = long.rowTarget.toString('latin1', 0, long.end);
    const want = fresh.rowTarget.toString('latin1', 0, fresh.end);
    assert.equal(
      got,
      want,
      `row ${i}: ${JSON.stringify(spec, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v))}`,
    );
  }
  assert.ok(rows > 2500, `${rows} rows compared`);
  // Identity truncations are counted per row, cached or not.
  assert.ok(longPipe.identityTruncated > 0);
});
