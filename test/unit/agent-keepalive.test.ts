// The link keepalive (agent/link/keepalive.ts) in simulated time: one behaviour per test.
// Interval 1,000 ms: checks every 500 ms, a Ping after 1 s without sending, dead after 3 s
// without receiving (KEEPALIVE_MISSES).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Keepalive } from '../../agent/link/keepalive';
import { SimClock } from '../../loadtest/sim-clock';
import { KEEPALIVE_MISSES } from '../../proto/link';

function setup() {
  const clock = new SimClock();
  const pings: number[] = [];
  const deaths: number[] = [];
  const k = new Keepalive(clock, {
    ping: () => {
      pings.push(clock.now());
      k.sent();
    },
    dead: (silent) => deaths.push(silent),
  });
  return { clock, k, pings, deaths };
}

test('a Ping goes out after one interval without sending', async () => {
  const { clock, k, pings } = setup();
  k.start(1000);
  await clock.run(999);
  assert.deepEqual(pings, []);
  await clock.run(1000);
  assert.deepEqual(pings, [1000]);
});

test('no Ping while frames are being sent', async () => {
  const { clock, k, pings } = setup();
  k.start(1000);
  for (let t = 400; t <= 2800; t += 400) {
    await clock.run(t);
    k.sent();
    k.received();
  }
  assert.deepEqual(pings, []);
});

test('the peer is dead after KEEPALIVE_MISSES silent intervals, not before', async () => {
  const { clock, k, deaths } = setup();
  k.start(1000);
  await clock.run(KEEPALIVE_MISSES * 1000 - 1);
  assert.deepEqual(deaths, []);
  await clock.run(KEEPALIVE_MISSES * 1000);
  assert.deepEqual(deaths, [3000]);
});

test('anything received resets the dead-peer count', async () => {
  const { clock, k, deaths } = setup();
  k.start(1000);
  await clock.run(2500);
  k.received();
  await clock.run(5000);
  assert.deepEqual(deaths, []);
  await clock.run(5500);
  assert.deepEqual(deaths, [3000]);
});

test('after dead, no more checks run', async () => {
  const { clock, k, pings, deaths } = setup();
  k.start(1000);
  await clock.run(10_000);
  assert.equal(deaths.length, 1);
  assert.deepEqual(pings, [1000, 2000], 'pings until declared dead at 3 s');
});

test('stop() cancels the checks; interval 0 never starts them', async () => {
  const a = setup();
  a.k.start(1000);
  a.k.stop();
  await a.clock.run(10_000);
  assert.deepEqual([a.pings, a.deaths], [[], []]);
  const b = setup();
  b.k.start(0);
  await b.clock.run(10_000);
  assert.deepEqual([b.pings, b.deaths], [[], []]);
});

test('short intervals are checked every 250 ms at most', async () => {
  const { clock, k, pings } = setup();
  k.start(100);
  await clock.run(249);
  assert.deepEqual(pings, []);
  await clock.run(250);
  assert.deepEqual(pings, [250]);
});
