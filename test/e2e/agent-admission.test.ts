// Sampling (--sample N, every|random) and the rate limit (--rate-limit): the units with a
// fake clock, and through the agent: counts within tolerance, sample_rate carried in every
// batch, rate-limited records dropped and counted on live input, throttled (not dropped)
// when replaying a file.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Sampler, TokenBucket } from '../../agent/admission';
import {
  agentSuite,
  BULK,
  BULK_FRAMES,
  fixturePayloads,
  makeAgent,
  Producer,
  payload,
  uniquePayloads,
  waitFor,
} from '../support/agent-harness';
import { FakeEnricher } from '../support/fake-enricher';

const { dir, fakes } = agentSuite('agent-admission-');

async function fake(): Promise<FakeEnricher> {
  const f = await FakeEnricher.start();
  fakes.push(f);
  return f;
}

test('Sampler every: exactly every Nth record, the first one included; N=1 keeps all', () => {
  const s = new Sampler(10, 'every');
  const kept = Array.from({ length: 1000 }, (_, i) => (s.keep() ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(
    kept,
    Array.from({ length: 100 }, (_, i) => i * 10),
  );
  assert.equal(s.sampleRate, 10);
  const all = new Sampler(1, 'every');
  assert.ok(Array.from({ length: 50 }, () => all.keep()).every(Boolean));
  assert.equal(all.sampleRate, 0);
});

test('Sampler random: about 1/N kept (within 5 standard deviations)', () => {
  const s = new Sampler(10, 'random');
  let kept = 0;
  for (let i = 0; i < 100_000; i++) if (s.keep()) kept++;
  assert.ok(Math.abs(kept - 10_000) < 5 * Math.sqrt(100_000 * 0.1 * 0.9), `${kept} kept`);
});

test('TokenBucket: a burst of one second, then the rate; debt for file replay', () => {
  let now = 0;
  const b = new TokenBucket(100, () => now);
  let ok = 0;
  for (let i = 0; i < 150; i++) if (b.take()) ok++;
  assert.equal(ok, 100);
  now += 500;
  ok = 0;
  for (let i = 0; i < 150; i++) if (b.take()) ok++;
  assert.equal(ok, 50);
  now += 10_000; // a long quiet spell refills one second's worth, no more
  ok = 0;
  for (let i = 0; i < 500; i++) if (b.take()) ok++;
  assert.equal(ok, 100);
  for (let i = 0; i < 30; i++) b.takeDebt();
  assert.equal(b.debtMs(), 300);
  now += 300;
  assert.equal(b.debtMs(), 0);
});

for (const mode of ['every', 'random'] as const) {
  test(`--sample 10 --sample-mode ${mode}: ~1/10 of the bulk fixture delivered, sample_rate=10 in every batch`, async () => {
    const f = await fake();
    const agent = makeAgent(f, { inputFile: BULK, sample: 10, sampleMode: mode });
    await agent.start();
    assert.equal(await agent.replay(), true);
    const got = uniquePayloads(f);
    assert.ok(f.batches.every((b) => b.sampleRate === 10));
    assert.equal(agent.counters.sampledOut + got.length, BULK_FRAMES);
    if (mode === 'every') {
      const want = await fixturePayloads();
      assert.equal(got.length, Math.ceil(BULK_FRAMES / 10));
      for (let i = 0; i < got.length; i++) assert.ok(got[i]!.equals(want[i * 10]!), `record ${i}`);
    } else {
      const sd = Math.sqrt(BULK_FRAMES * 0.1 * 0.9);
      assert.ok(Math.abs(got.length - BULK_FRAMES / 10) < 5 * sd, `${got.length} kept`);
    }
  });
}

test('--rate-limit on live input: excess dropped and counted (reason rate_limit)', async () => {
  const f = await fake();
  const sock = path.join(dir, 'rate.sock');
  const t0 = performance.now(); // the bucket starts full when the agent is made
  const agent = makeAgent(f, { dnstapSocket: sock, rateLimit: 500 });
  await agent.start();
  const p = await Producer.open(sock);
  await p.send(Array.from({ length: 3000 }, (_, i) => payload(i)));
  await waitFor(() => agent.counters.recordsIn === 3000, 'all received');
  const secs = (performance.now() - t0) / 1000;
  await p.stop();
  const dropped = agent.counters.dropped.rate_limit;
  const kept = 3000 - dropped;
  // One second's burst, plus the rate for the time since the bucket was made.
  assert.ok(kept >= 500 && kept <= 500 + 500 * secs + 5, `${kept} kept in ${secs.toFixed(3)} s`);
  await waitFor(() => agent.client.stats.recordsAcked === kept, 'the kept records acked');
});

test('--rate-limit on --input-file: the replay is throttled, nothing dropped', async () => {
  const f = await fake();
  const agent = makeAgent(f, { inputFile: BULK, rateLimit: 10_000 });
  await agent.start();
  const t0 = Date.now();
  assert.equal(await agent.replay(), true);
  const ms = Date.now() - t0;
  // 10 000 from the burst, the remaining 3002 at 10 000/s: about 0.3 s at least.
  assert.ok(ms >= 250, `${ms} ms`);
  assert.equal(agent.counters.dropped.rate_limit, 0);
  assert.equal(uniquePayloads(f).length, BULK_FRAMES);
});
