// Every data frame of every real capture (unbound, bind, knot, kresd, dnsdist, pdns),
// decoded by decodeDnstap and by the protobufjs reference: zero mismatches allowed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDnstap } from '../../proto/dnstap/decoder';
import { Dnstap } from '../../proto/dnstap/schema';
import { ABSENT, DnstapView, MESSAGE_TYPE_NAMES } from '../../proto/dnstap/view';
import { diffView, snapshot } from '../support/dnstap-compare';
import { loadFixtures } from '../support/dnstap-frames';

const fixtures = loadFixtures();

test('fixtures: there are captures from every producer', () => {
  const names = fixtures.map((f) => f.name).join(' ');
  for (const producer of ['unbound', 'bind', 'knot', 'kresd', 'dnsdist', 'pdns']) {
    assert.match(names, new RegExp(producer));
  }
});

for (const fixture of fixtures) {
  test(`fixtures: ${fixture.name}: every frame agrees with protobufjs`, (t) => {
    const view = new DnstapView();
    const types = new Map<string, number>();
    let mismatches = 0;
    let withQuery = 0;
    let withResponse = 0;
    for (const [i, frame] of fixture.frames.entries()) {
      decodeDnstap(frame, 0, frame.length, view);
      const ref = Dnstap.decode(frame) as unknown as { [key: string]: unknown };
      const diff = diffView(view, ref);
      if (diff.length > 0) {
        mismatches++;
        if (mismatches <= 5) t.diagnostic(`frame ${i}: ${diff.join('; ')}`);
      }
      const name = MESSAGE_TYPE_NAMES[view.type] ?? String(view.type);
      types.set(name, (types.get(name) ?? 0) + 1);
      if (view.queryMessageOff !== ABSENT) withQuery++;
      if (view.responseMessageOff !== ABSENT) withResponse++;
    }
    t.diagnostic(
      `${fixture.name}: ${fixture.frames.length} frames, ${mismatches} mismatches, ` +
        `${withQuery} with query_message, ${withResponse} with response_message, types ` +
        [...types].map(([k, n]) => `${k}=${n}`).join(' '),
    );
    assert.ok(fixture.frames.length > 0);
    assert.equal(mismatches, 0);
  });
}

test('fixtures: the comparison is not vacuous: a query frame differs from a response frame', () => {
  const frames = fixtures[0].frames;
  const view = new DnstapView();
  decodeDnstap(frames[0], 0, frames[0].length, view);
  const other = frames.find((f) => !f.equals(frames[0]))!;
  const diff = diffView(view, Dnstap.decode(other) as never);
  assert.ok(diff.length > 0);
});

test('fixtures: decoding inside a larger buffer reads only [start, end)', () => {
  const view = new DnstapView();
  const alone = new DnstapView();
  for (const fixture of fixtures) {
    for (const frame of fixture.frames.slice(0, 50)) {
      // Surround the frame with bytes that would change the result if they were read.
      const big = Buffer.alloc(frame.length + 40, 0x78);
      frame.copy(big, 17);
      decodeDnstap(big, 17, 17 + frame.length, view);
      decodeDnstap(frame, 0, frame.length, alone);
      const a = snapshot(view);
      const b = snapshot(alone);
      for (const key of Object.keys(a)) {
        if (key.endsWith('Off') && a[key] !== ABSENT) a[key] = (a[key] as number) - 17;
      }
      assert.deepEqual(a, b, `${fixture.name}`);
    }
  }
});

test('fixtures: one view reused across frames carries nothing over', () => {
  const reused = new DnstapView();
  for (const fixture of fixtures) {
    for (const frame of fixture.frames) {
      decodeDnstap(frame, 0, frame.length, reused);
      const fresh = new DnstapView();
      decodeDnstap(frame, 0, frame.length, fresh);
      assert.deepEqual(snapshot(reused), snapshot(fresh));
    }
  }
});
