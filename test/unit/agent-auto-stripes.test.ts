// --active-connections auto (agent/link/auto-stripes.ts): grows only on sustained pressure
// (full windows while the backlog does not shrink), multiplicatively while the pressure
// persists right after a grow, shrinks by one only after a longer idle spell, ignores the
// periods right after a change, never passes its maximum, and makes a bounded number of
// changes per 10 minutes. Pure: evidence handed in, time as numbers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CHANGE_WINDOW_MS,
  GROW_COOLDOWN_PERIODS,
  GROW_PERIODS,
  grownCount,
  MAX_CHANGES_PER_WINDOW,
  SHRINK_COOLDOWN_PERIODS,
  SHRINK_PERIODS,
  StripeController,
  type StripeEvidence,
} from '../../agent/link/auto-stripes';

const PERIOD = 2_000;
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

/**
 * A closed loop: an agent offering `load` pods' worth (a function of the period) to distinct
 * pods of capacity 1, one per stripe. Evidence as the client would sample it: every window
 * full and the backlog holding while load > N; occupancy load/N otherwise, nothing queued.
 */
function plant(c: StripeController, load: (k: number) => number, periods: number, from = 0): number[] {
  let backlog = 0;
  const out: number[] = [];
  for (let k = from; k < from + periods; k++) {
    const n = c.current;
    const l = load(k);
    const start = backlog;
    backlog = l > n ? Math.min(320, backlog + (l - n) * 100) : Math.max(0, backlog - (n - l) * 100);
    const e: StripeEvidence =
      l > n
        ? { backlogStart: start, backlogEnd: backlog, saturatedShare: 1, occupancy: 1, ackLatency: 0.05 }
        : {
            backlogStart: start,
            backlogEnd: backlog,
            saturatedShare: l >= n ? 1 : 0,
            occupancy: Math.min(1, l / n),
            ackLatency: 0.01,
          };
    out.push(c.decide(e, k * PERIOD));
  }
  return out;
}

const changesIn = (xs: number[], first = 1) =>
  xs.reduce((a, x, i) => a + (x !== (i === 0 ? first : xs[i - 1]) ? 1 : 0), 0);

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

test('grownCount: +1 to start a streak, x1.5 rounded up (at least +1) within one, capped by max', () => {
  assert.deepEqual(
    [1, 2, 3, 5].map((n) => grownCount(n, true, 8)),
    [2, 3, 5, 8],
  );
  assert.equal(grownCount(5, false, 8), 6);
  assert.equal(grownCount(5, true, 6), 6);
});

test('sustained pressure: 1 -> 2 after GROW_PERIODS, then a multiplicative step per period after each cooldown (slow start)', () => {
  const c = new StripeController(8);
  const out = feed(c, pressure, 12);
  const step = GROW_COOLDOWN_PERIODS + 1;
  const at = (n: number) => out.indexOf(n);
  assert.equal(at(2), GROW_PERIODS - 1);
  assert.equal(at(3), at(2) + step, `${out}`);
  assert.equal(at(5), at(3) + step, `${out}`);
  assert.equal(at(8), at(5) + step, `${out}`);
  assert.equal(at(4), -1, 'multiplicative: 3 -> 5, not 4');
  assert.equal(Math.max(...out), 8);
  // With the 2 s period of the client: 3 stripes after 4 periods (8 s), where one-by-one with
  // two periods of evidence per step and a cooldown took 5 (5 s periods: ≈26 s on the bed).
  assert.ok(at(3) + 1 <= 4, `${out}`);
});

test('a pause in the pressure ends the streak: the next grow is by one, after GROW_PERIODS again', () => {
  const c = new StripeController(8);
  feed(c, pressure, GROW_PERIODS); // -> 2
  const half = { ...pressure, saturatedShare: 0.5 };
  const out = feed(c, half, GROW_COOLDOWN_PERIODS + 1, GROW_PERIODS); // cooldown, then no pressure
  assert.deepEqual(out, Array(out.length).fill(2));
  const again = feed(c, pressure, GROW_PERIODS, 10);
  assert.deepEqual(again, [...Array(GROW_PERIODS - 1).fill(2), 3]);
});

test('the periods right after a change are not evidence (a new stripe filling its window)', () => {
  const c = new StripeController(8);
  feed(c, pressure, GROW_PERIODS);
  assert.equal(c.current, 2);
  // The cooldown period lacks pressure (the new connection was dialing): the streak survives.
  const out = [
    ...feed(c, { ...pressure, saturatedShare: 0 }, GROW_COOLDOWN_PERIODS, 10),
    ...feed(c, pressure, 1, 20),
  ];
  assert.deepEqual(out, [...Array(GROW_COOLDOWN_PERIODS).fill(2), 3]);
});

test('auto returns to one connection after SHRINK_PERIODS idle periods per step, one step at a time', () => {
  const c = new StripeController(3);
  feed(c, pressure, 20);
  assert.equal(c.current, 3);
  const out = feed(c, idle, 3 * (SHRINK_PERIODS + SHRINK_COOLDOWN_PERIODS), 20);
  assert.equal(out.at(-1), 1);
  assert.equal(out.indexOf(2), SHRINK_PERIODS - 1, `no early shrink: ${out}`);
  assert.ok(out.indexOf(1) - out.indexOf(2) >= SHRINK_COOLDOWN_PERIODS + SHRINK_PERIODS, `${out}`);
  assert.ok(
    out.every((n, i) => i === 0 || n >= out[i - 1]! - 1),
    'shrinks by one',
  );
});

test('hysteresis: a half-busy link (between the grow and shrink thresholds) keeps its count', () => {
  const c = new StripeController(3);
  feed(c, pressure, GROW_PERIODS);
  assert.equal(c.current, 2);
  const halfBusy = { backlogStart: 0, backlogEnd: 0, saturatedShare: 0.3, occupancy: 0.6, ackLatency: 0.05 };
  assert.deepEqual(feed(c, halfBusy, 30, 10), Array(30).fill(2));
});

test('closed loop, steady load of 2.5 pods: reaches 3 stripes within 4 periods and then never changes (no oscillation)', () => {
  const c = new StripeController(3);
  const out = plant(c, () => 2.5, 300); // 10 minutes
  assert.ok(out.indexOf(3) <= 3, `${out.slice(0, 10)}`);
  assert.deepEqual(out.slice(out.indexOf(3)), Array(300 - out.indexOf(3)).fill(3));
  assert.equal(changesIn(out), 2);
});

test('closed loop, steady loads 1.5..7.5 with max 8: settles within a few periods, at most one stripe above the need, then holds', () => {
  for (const load of [1.5, 2.5, 3.5, 4.5, 6.5, 7.5]) {
    const c = new StripeController(8);
    const out = plant(c, () => load, 300);
    const settled = out.findIndex((n, i) => out.slice(i).every((m) => m === n));
    assert.ok(
      settled >= 0 && settled <= 8,
      `load ${load}: settled at period ${settled}: ${out.slice(0, 12)}`,
    );
    const n = out.at(-1)!;
    assert.ok(n >= Math.ceil(load) && n <= Math.ceil(load) + 1, `load ${load}: ${n} stripes`);
    assert.ok(changesIn(out) <= 4, `load ${load}: ${changesIn(out)} changes`);
  }
});

test('closed loop, load drops after a busy spell: back to one connection, bounded changes, no re-grow', () => {
  const c = new StripeController(8);
  const load = (k: number) => (k < 60 ? 4.5 : 0.2);
  // 1 -> 2 -> 3 -> 5, then one by one: the 7th change waits for the 10-minute budget.
  const out = plant(c, load, 400);
  assert.equal(out.at(-1), 1);
  assert.ok(changesIn(out) <= MAX_CHANGES_PER_WINDOW + 4, `${changesIn(out)} changes`);
  const after = out.slice(60);
  assert.ok(
    after.every((n, i) => i === 0 || n <= after[i - 1]!),
    'no grow once the load dropped',
  );
  // In any 10 minutes (300 periods of 2 s), the change budget holds.
  const changeTimes = out.flatMap((n, i) => (n !== (i === 0 ? 1 : out[i - 1]) ? [i * PERIOD] : []));
  for (const t of changeTimes)
    assert.ok(
      changeTimes.filter((u) => u >= t && u < t + CHANGE_WINDOW_MS).length <= MAX_CHANGES_PER_WINDOW,
      `${changeTimes}`,
    );
});

test('auto makes at most MAX_CHANGES_PER_WINDOW changes per 10 minutes under flapping load', () => {
  const c = new StripeController(8);
  let changes = 0;
  let last = c.current;
  let t = 0;
  // Alternate pressure and idle spells for 10 minutes.
  while (t < CHANGE_WINDOW_MS) {
    for (const e of [pressure, idle]) {
      for (let k = 0; k < SHRINK_PERIODS + SHRINK_COOLDOWN_PERIODS + 1; k++, t += PERIOD) {
        const n = c.decide(e, t);
        if (n !== last && t < CHANGE_WINDOW_MS) changes++;
        last = n;
      }
    }
  }
  assert.ok(changes <= MAX_CHANGES_PER_WINDOW, `${changes} changes in 10 minutes`);
});
