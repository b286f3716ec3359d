// --active-connections auto (agent/link/auto-stripes.ts): grows only on sustained pressure
// (full windows while the backlog does not shrink), shrinks only after a longer idle spell,
// waits out a cooldown after every change, never passes its maximum, and makes a bounded
// number of changes per 10 minutes. Pure: evidence handed in, time as numbers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CHANGE_WINDOW_MS,
  COOLDOWN_PERIODS,
  GROW_PERIODS,
  MAX_CHANGES_PER_WINDOW,
  SHRINK_PERIODS,
  StripeController,
  type StripeEvidence,
} from '../../agent/link/auto-stripes';

const PERIOD = 5_000;
const pressure: StripeEvidence = {
  backlogStart: 10,
  backlogEnd: 20,
  saturatedShare: 1,
  occupancy: 1,
  ackLatency: 0.05,
};
const idle: StripeEvidence = {
  backlogStart: 0,
  backlogEnd: 0,
  saturatedShare: 0,
  occupancy: 0.05,
  ackLatency: 0.005,
};

/** Feeds `e` for `periods` periods from period `from`; returns the counts decided. */
function feed(c: StripeController, e: StripeEvidence, periods: number, from = 0): number[] {
  return Array.from({ length: periods }, (_, k) => c.decide(e, (from + k) * PERIOD));
}

test('auto grows by one after GROW_PERIODS periods of full windows and a growing backlog', () => {
  const c = new StripeController(4);
  const out = feed(c, pressure, GROW_PERIODS);
  assert.deepEqual(out, [...Array(GROW_PERIODS - 1).fill(1), 2]);
});

test('regression (real bed, replay): a backlog pinned at the buffer bound, a batch down at period end, still counts as pressure', () => {
  const c = new StripeController(4);
  const pinned = [
    { ...pressure, backlogStart: 320, backlogEnd: 319 },
    { ...pressure, backlogStart: 319, backlogEnd: 318 },
  ];
  assert.deepEqual(
    pinned.map((e, k) => c.decide(e, k * PERIOD)),
    [1, 2],
  );
});

test('auto does not grow while the backlog drains, even with full windows', () => {
  const c = new StripeController(4);
  const draining = { ...pressure, backlogStart: 30, backlogEnd: 20 }; // a third gone in one period
  assert.deepEqual(feed(c, draining, 10), Array(10).fill(1));
});

test('auto does not grow when some window has room (not every connection saturated)', () => {
  const c = new StripeController(4);
  assert.deepEqual(feed(c, { ...pressure, saturatedShare: 0.5 }, 10), Array(10).fill(1));
});

test('auto waits COOLDOWN_PERIODS after a change and stops at its maximum', () => {
  const c = new StripeController(3);
  const out = feed(c, pressure, 20);
  assert.equal(out.indexOf(2), GROW_PERIODS - 1);
  assert.ok(out.indexOf(3) - out.indexOf(2) > COOLDOWN_PERIODS, `cooldown respected: ${out}`);
  assert.equal(Math.max(...out), 3);
});

test('auto returns to one connection after SHRINK_PERIODS idle periods per step', () => {
  const c = new StripeController(3);
  feed(c, pressure, 20);
  assert.equal(c.current, 3);
  const out = feed(c, idle, 40, 20);
  assert.equal(out.at(-1), 1);
  assert.ok(out.indexOf(2) >= SHRINK_PERIODS - 1, `no early shrink: ${out}`);
});

test('hysteresis: a half-busy link (between the grow and shrink thresholds) keeps its count', () => {
  const c = new StripeController(3);
  feed(c, pressure, GROW_PERIODS);
  assert.equal(c.current, 2);
  const halfBusy = { backlogStart: 0, backlogEnd: 0, saturatedShare: 0.3, occupancy: 0.6, ackLatency: 0.05 };
  assert.deepEqual(feed(c, halfBusy, 30, 10), Array(30).fill(2));
});

test('auto makes at most MAX_CHANGES_PER_WINDOW changes per 10 minutes under flapping load', () => {
  const c = new StripeController(8);
  let changes = 0;
  let last = c.current;
  let t = 0;
  // Alternate long pressure and idle spells for 10 minutes.
  while (t < CHANGE_WINDOW_MS) {
    for (const e of [pressure, idle]) {
      for (let k = 0; k < SHRINK_PERIODS + COOLDOWN_PERIODS + 1; k++, t += PERIOD) {
        const n = c.decide(e, t);
        if (n !== last && t < CHANGE_WINDOW_MS) changes++;
        last = n;
      }
    }
  }
  assert.ok(changes <= MAX_CHANGES_PER_WINDOW, `${changes} changes in 10 minutes`);
});
