// Drain on overload (enricher/server/overload.ts): hysteresis, rate limit, per-agent cooldown,
// heaviest first, disabled = state only; and the agent's side in simulated time (the real
// LinkClient on a SimClock behind a modelled ClusterIP): a drained active connection is
// replaced as a switch, and the next carrier is on another pod.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchBuffer } from '../../agent/buffer';
import { LinkClient } from '../../agent/link';
import { silentLogger } from '../../common/log';
import {
  OverloadController,
  OverloadOptionError,
  resolveOverloadOptions,
} from '../../enricher/server/overload';
import { prng } from '../../loadtest/prng';
import { SimClock } from '../../loadtest/sim-clock';
import { SIM_SERVICE, type SimConnection, SimNet } from '../../loadtest/sim-link';

const conns = (n: number, bytes = (i: number) => 1000 + i) =>
  Array.from({ length: n }, (_, i) => ({ agentId: `agent-${i}`, recentBytes: bytes(i) }));

/** Ticks once a second from `from` for `seconds` at `u`; returns every drain list. */
function run(c: OverloadController, from: number, seconds: number, u: number, n = 8) {
  const out: string[][] = [];
  for (let s = 1; s <= seconds; s++) out.push(c.tick(from + s * 1000, u, conns(n)).map((x) => x.agentId));
  return out;
}

const OPTS = {
  high: 0.9,
  low: 0.7,
  enterMs: 5000,
  leaveMs: 5000,
  fraction: 0.25,
  intervalMs: 5000,
  cooldownMs: 60_000,
};

test('overload: entered once the mean over enterMs reaches high; a deep dip keeps the mean below', () => {
  const c = new OverloadController(OPTS);
  c.tick(0, 0.2, []);
  run(c, 0, 4, 0.95);
  assert.equal(c.state, 'normal', '4 s above high is not yet 5 s');
  c.tick(5000, 0.5, conns(8)); // the 5 s mean: 0.86 < 0.9
  assert.equal(c.state, 'normal');
  const drains = run(c, 5000, 4, 0.95);
  assert.equal(c.state, 'normal');
  assert.deepEqual(drains.flat(), []);
  const next = c.tick(10_000, 0.95, conns(8));
  assert.equal(c.state, 'overloaded');
  assert.equal(c.episodes, 1);
  assert.equal(next.length, 2, 'ceil(0.25 x 8) agents asked at once');
});

test('overload: at most ceil(fraction x carrying) per interval, heaviest first, each agent once per cooldown', () => {
  const c = new OverloadController(OPTS);
  c.tick(0, 1, []);
  const rounds = run(c, 0, 60, 1);
  const asked = rounds.flat();
  // Entered at 5 s; rounds at 5, 10, ..., 60 s: 12 rounds x 2, but 8 agents only, then the cooldown holds.
  assert.equal(asked.length, 8);
  assert.equal(new Set(asked).size, 8, 'no agent asked twice within the cooldown');
  const nonEmpty = rounds.map((r, i) => [i + 1, r] as const).filter(([, r]) => r.length > 0);
  assert.deepEqual(
    nonEmpty.map(([s]) => s),
    [5, 10, 15, 20],
  );
  for (const [, r] of nonEmpty) assert.equal(r.length, 2);
  assert.deepEqual(nonEmpty[0]![1], ['agent-7', 'agent-6'], 'heaviest first');
  // After the cooldown the same agents may be asked again.
  const later = run(c, 64_000, 10, 1).flat();
  assert.ok(later.length > 0 && later.length <= 4, `after the cooldown: ${later}`);
  assert.equal(c.drainsRequested, 8 + later.length);
});

test('overload: left once the mean over leaveMs falls below low (hysteresis); between low and high it stays', () => {
  const c = new OverloadController({ ...OPTS, cooldownMs: 0 });
  c.tick(0, 1, []);
  run(c, 0, 6, 1);
  assert.equal(c.state, 'overloaded');
  run(c, 6000, 30, 0.8); // relieved below high but not below low
  assert.equal(c.state, 'overloaded', 'between low and high the state holds');
  run(c, 36_000, 1, 0.5);
  assert.equal(c.state, 'overloaded', 'one relieved second: the 5 s mean is 0.74');
  const drains = run(c, 37_000, 1, 0.5);
  assert.equal(c.state, 'normal', 'two: the mean is 0.68 < 0.7');
  assert.deepEqual(drains.flat(), [], 'no drain on the tick that leaves');
  assert.equal(c.overloadedMs, 33_000);
  assert.deepEqual(run(c, 38_000, 4, 0.95).flat(), [], 'a new episode needs a whole enterMs again');
  assert.equal(c.state, 'normal');
});

test('overload: late ticks (a loaded node fires the 1 s timer every 1.3 s) still fill the window', () => {
  // Regression: ticks were dropped once their start left the window, so with 1.3 s ticks the
  // covered time never reached enterMs and a pod at utilisation 1 never counted as overloaded.
  const c = new OverloadController({ ...OPTS, enterMs: 10_000 });
  c.tick(0, 1, []);
  let t = 0;
  for (let i = 0; i < 9; i++) c.tick((t += 1300), 1, conns(4));
  assert.equal(c.state, 'overloaded', `after ${t} ms at 1`);
});

test('overload: an oscillating load (5 s hot, 5 s cool between low and high) is one episode, not many', () => {
  const c = new OverloadController({ ...OPTS, cooldownMs: 0 });
  c.tick(0, 1, []);
  for (let t = 1; t <= 120; t++) c.tick(t * 1000, Math.floor(t / 5) % 2 === 0 ? 1 : 0.8, conns(4));
  assert.equal(c.episodes, 1);
  assert.equal(c.state, 'overloaded');
});

test('overload: one round drains at most one connection per agent (stripes); none when nothing carries', () => {
  const c = new OverloadController({ ...OPTS, fraction: 1 });
  c.tick(0, 1, []);
  run(c, 0, 4, 1, 0);
  const striped = [
    { agentId: 'a', recentBytes: 5 },
    { agentId: 'a', recentBytes: 4 },
    { agentId: 'b', recentBytes: 3 },
  ];
  assert.deepEqual(
    c.tick(5000, 1, striped).map((x) => x.recentBytes),
    [5, 3],
  );
  const d = new OverloadController(OPTS);
  d.tick(0, 1, []);
  assert.deepEqual(run(d, 0, 10, 1, 0).flat(), []);
  assert.equal(d.state, 'overloaded');
});

test('overload: disabled keeps the state and the time overloaded, asks nobody', () => {
  const c = new OverloadController({ ...OPTS, enabled: false });
  c.tick(0, 1, []);
  assert.deepEqual(run(c, 0, 30, 1).flat(), []);
  assert.equal(c.state, 'overloaded');
  assert.equal(c.drainsRequested, 0);
  assert.ok(c.overloadedMs >= 24_000);
});

test('overload options: defaults, ranges named, low above high refused', () => {
  assert.equal(resolveOverloadOptions().enabled, true);
  assert.throws(() => resolveOverloadOptions({ high: 1.5 }), /high must be a number in \[0.05, 1\]/);
  assert.throws(() => resolveOverloadOptions({ fraction: 0 }), OverloadOptionError);
  assert.throws(() => resolveOverloadOptions({ low: 0.95, high: 0.9 }), /low \(0.95\) must not exceed high/);
  assert.throws(() => resolveOverloadOptions({ intervalMs: Number.NaN }), /intervalMs/);
});

function agent(clock: SimClock, net: SimNet, seed: number) {
  const log = silentLogger();
  const buffer = new BatchBuffer({ bufferBytes: 1 << 20, whenFull: 'drop-newest', log, onDrop: () => {} });
  return new LinkClient({
    endpoints: [SIM_SERVICE],
    agentId: `agent-${seed}`,
    incarnation: 'sim-00000001',
    maxInFlight: 32,
    handshakeTimeoutMs: 10_000,
    switchIntervalMs: 0,
    switchJitter: 0.2,
    retireTimeoutMs: 20_000,
    backoffStartMs: 100,
    backoffMaxMs: 10_000,
    configRetryMs: 30_000,
    buffer,
    log,
    clock,
    random: prng(seed),
    connect: net.connector(),
  });
}

test('agent, simulated: an overload Drain is a switch; the next carrier is on another pod, the standby carries meanwhile', async () => {
  let moved = 0;
  let viaStandby = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const clock = new SimClock();
    const net = new SimNet(clock, prng(seed));
    for (let i = 0; i < 3; i++) net.addPod(1);
    const c = agent(clock, net, seed);
    c.start();
    await clock.run(1_000);
    const drained = c.active as SimConnection;
    const standby = c.standby as SimConnection | null;
    assert.ok(drained !== null && standby !== null, 'active and standby up');
    const from = drained.pod!.id;
    drained.drain(10_000, 'overload');
    // Make-before-break: something already handshaken carries on in the same instant.
    assert.equal(c.active, standby, 'the standby carries at once');
    if (standby.pod!.id !== from) viaStandby++;
    await clock.run(clock.now() + 1_000);
    const now = c.active as SimConnection;
    assert.ok(now !== null && now.state === 'open');
    assert.notEqual(now, drained);
    if (now.pod!.id !== from) moved++;
    assert.equal(c.roles().active, 1);
    const closing = c.close();
    await clock.run(clock.now() + 10_000);
    await closing;
  }
  // Up to MAX_COLLISION_REDIALS re-dials away from the pod that asked: (1/3)^4 stay.
  assert.ok(moved >= 38, `moved off the overloaded pod in ${moved} of 40 (standby elsewhere: ${viaStandby})`);
});
