// The short form of `npm run fuzz` (loadtest/fuzz.ts): 20,000 mutated cases for each of
// Frame Streams, the link protocol and DNS messages, 8,000 for the policy document (the
// slowest), with a fixed seed,
// part of them over real TCP sockets against the dnstap server and the enricher's link
// server. Asserts 0 crashes and hangs, the servers' counters equal to the model's (every bad
// item counted), the sentinel after resyncable bad items decoded, and V8 branch coverage of
// each parser's files above a floor. The long form runs 1,000,000 cases each.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failures, formatResult, fuzzWithCoverage } from '../../loadtest/fuzz';

const CASES = 20_000;
/** The policy target is the slowest (~0.8 ms a case): fewer, to keep the test near 30 s. */
const POLICY_CASES = 8_000;
const SEED = 20261206;
/** The short run reaches 93-99 % per target; the long run is held to 90 % too. */
const FLOOR = 90;

test('fuzz, short form: 0 crashes, counters and sync hold, branch coverage >= 90 %', {
  timeout: 180_000,
}, async () => {
  const result = await fuzzWithCoverage({ cases: CASES, seed: SEED, policyCases: POLICY_CASES }, 170_000);
  const text = formatResult(result, false);
  console.log(text);
  assert.deepEqual(failures(result, FLOOR), [], text);
  for (const t of result.reports) {
    const cases = t.target === 'policy' ? POLICY_CASES : CASES;
    assert.equal(t.cases, cases, `${t.target}: all cases ran`);
    assert.equal(t.crashes, 0);
    // Mutated input must mostly be refused, and refused by a documented error code.
    const rejected = Object.entries(t.outcomes)
      .filter(([k]) => /^(socket )?(rejected|refused):/.test(k))
      .reduce((s, [, v]) => s + v, 0);
    assert.ok(rejected > cases * 0.3, `${t.target}: only ${rejected} cases refused`);
    assert.ok((t.outcomes['valid'] ?? 0) > 0, `${t.target}: no unmutated seed went through`);
  }
  const fstrm = result.reports.find((t) => t.target === 'framestream')!;
  assert.ok(fstrm.socketCases >= 1000 && fstrm.socketConnections >= 2);
  assert.ok((fstrm.outcomes['socket in-sync-after-bad-frames'] ?? 0) > 100, 'resync over the socket shown');
  const link = result.reports.find((t) => t.target === 'link')!;
  assert.ok(link.socketConnections >= 100);
  assert.ok((link.outcomes['socket in-sync'] ?? 0) > 0, 'some link cases stay in sync over the socket');
});
