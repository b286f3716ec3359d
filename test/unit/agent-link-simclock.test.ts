// The link client in simulated time (common/clock.ts injected): the real LinkClient on a
// SimClock with socket-less connections (loadtest/sim-link.ts) behind a modelled ClusterIP.
// Stripes switch on their own jittered timers; a stripe landing on a pod another stripe uses
// re-dials, at most MAX_COLLISION_REDIALS times in a row; the fleet simulator is
// deterministic for a seed. No sockets, no real timers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchBuffer } from '../../agent/buffer';
import {
  COLLISION_ROUND_DELAY_MS,
  COLLISION_ROUNDS,
  LinkClient,
  MAX_COLLISION_REDIALS,
  SEEK_REDIAL_DELAY_MS,
  SEEK_WITHIN_MS,
} from '../../agent/link';
import { silentLogger } from '../../common/log';
import { prng } from '../../loadtest/prng';
import { SimClock } from '../../loadtest/sim-clock';
import { SIM_SERVICE, type SimConnection, SimNet } from '../../loadtest/sim-link';
import { type SimulateOptions, simulate } from '../../loadtest/simulate';

function client(
  clock: SimClock,
  net: SimNet,
  activeConnections: number,
  switchIntervalMs = 30_000,
  saturatedSwitch?: number,
  seed = 42,
) {
  const log = silentLogger();
  const buffer = new BatchBuffer({ bufferBytes: 1 << 20, whenFull: 'drop-newest', log, onDrop: () => {} });
  return new LinkClient({
    endpoints: [SIM_SERVICE],
    agentId: 'agent-sim',
    incarnation: 'sim-00000001',
    maxInFlight: 32,
    handshakeTimeoutMs: 10_000,
    switchIntervalMs,
    switchJitter: 0.2,
    saturatedSwitch,
    retireTimeoutMs: 20_000,
    backoffStartMs: 100,
    backoffMaxMs: 10_000,
    configRetryMs: 30_000,
    activeConnections,
    buffer,
    log,
    clock,
    random: prng(seed),
    connect: net.connector(),
  });
}

/** close() waits for Goodbyes that only simulated time delivers. */
async function closeIn(clock: SimClock, c: LinkClient): Promise<void> {
  const closing = c.close();
  await clock.run(clock.now() + 10_000);
  await closing;
}

test('simulated clock: three stripes each switch on their own jittered timer (about once per interval)', async () => {
  const clock = new SimClock();
  const net = new SimNet(clock, prng(1));
  for (let i = 0; i < 6; i++) net.addPod(1);
  const c = client(clock, net, 3);
  c.start();
  await clock.run(10 * 60_000);
  const switches = c.stripeStats.map((s) => s.switches);
  // 10 minutes at 30 s ± 20 %: 17..25 switches per stripe.
  for (const n of switches) assert.ok(n >= 17 && n <= 25, `switches per stripe: ${switches}`);
  assert.equal(c.roles().active, 3);
  await closeIn(clock, c);
});

/**
 * From now on every active connection's window reads full (a pod that does not keep up):
 * `model` marks it as the fleet simulator does (acknowledged at once when it retires);
 * `unacked` puts batches in it that are never acknowledged (they stay in flight when it retires).
 */
function holdWindowsFull(clock: SimClock, c: LinkClient, how: 'model' | 'unacked'): void {
  const fill = () => {
    for (const s of c.stripes) {
      const conn = s.active as SimConnection | null;
      if (conn === null) continue;
      if (how === 'model') conn.windowFull = true;
      else for (let seq = 0; conn.window.size < 32; seq++) conn.window.set(seq, {} as never);
    }
    clock.setTimeout(fill, 100);
  };
  fill();
}

test('simulated clock: saturated switch: a window that stays full moves the agent at half its interval; a window with room keeps it', async () => {
  const run = async (full: 'model' | 'unacked' | null, saturatedSwitch: number) => {
    const clock = new SimClock();
    const net = new SimNet(clock, prng(1));
    for (let i = 0; i < 3; i++) net.addPod(1);
    const c = client(clock, net, 1, 30_000, saturatedSwitch);
    c.start();
    if (full !== null) holdWindowsFull(clock, c, full);
    await clock.run(10 * 60_000);
    const r = { switches: c.stats.switches, early: c.stats.saturatedSwitches };
    await closeIn(clock, c);
    return r;
  };
  // 10 minutes at 30 s ± 20 %: 17..25 switches; early ones at 5 of 10 samples: 12..18 s apart.
  const calm = await run(null, 0.5);
  assert.equal(calm.early, 0, 'no early switch while the window has room');
  assert.ok(calm.switches >= 17 && calm.switches <= 25, `switches: ${calm.switches}`);
  const saturated = await run('model', 0.5);
  assert.ok(saturated.switches >= 33 && saturated.switches <= 50, `switches: ${saturated.switches}`);
  assert.ok(saturated.early >= saturated.switches - 1, `early: ${saturated.early} of ${saturated.switches}`);
  const off = await run('model', 1);
  assert.equal(off.early, 0, '1 turns it off');
  assert.ok(off.switches >= 17 && off.switches <= 25, `switches: ${off.switches}`);
  // Windows left behind are never acknowledged: the first two early switches leave them on the
  // standby, then on a retiring connection; after that the stripe keeps to its interval.
  const stuck = await run('unacked', 0.5);
  assert.ok(
    stuck.early >= 1 && stuck.early <= 2,
    `early switches with a window still retiring: ${stuck.early}`,
  );
  assert.ok(stuck.switches >= 17 && stuck.switches <= 26, `switches: ${stuck.switches}`);
});

test('simulated clock: with one pod, a colliding stripe re-dials MAX_COLLISION_REDIALS times, then accepts', async () => {
  const clock = new SimClock();
  const net = new SimNet(clock, prng(1));
  net.addPod(1);
  const c = client(clock, net, 2, 0);
  c.start();
  await clock.run(1_000);
  assert.equal(c.roles().active, 2, 'both stripes carry traffic on the only pod');
  assert.equal(c.stats.collisions, MAX_COLLISION_REDIALS + 1);
  await closeIn(clock, c);
});

test('simulated clock: with one pod, the colliding stripe tries COLLISION_ROUNDS more rounds (2, 4, 8, 16 s), then stays', async () => {
  const clock = new SimClock();
  const net = new SimNet(clock, prng(1));
  net.addPod(1);
  const c = client(clock, net, 2, 0);
  c.start();
  await clock.run(COLLISION_ROUND_DELAY_MS * 2 ** COLLISION_ROUNDS + 1_000);
  assert.equal(c.stats.collisions, (MAX_COLLISION_REDIALS + 1) * (1 + COLLISION_ROUNDS));
  await clock.run(clock.now() + 10 * 60_000);
  assert.equal(c.stats.collisions, (MAX_COLLISION_REDIALS + 1) * (1 + COLLISION_ROUNDS), 'bounded');
  assert.equal(c.roles().active, 2);
  await closeIn(clock, c);
});

test('simulated clock: three stripes over three pods end on three distinct pods within 31 s, for every seed (no switching)', async () => {
  let exhausted = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const clock = new SimClock();
    const net = new SimNet(clock, prng(seed));
    for (let i = 0; i < 3; i++) net.addPod(1);
    const c = client(clock, net, 3, 0);
    c.start();
    await clock.run(1_000);
    // A first round that ended on a used pod (every re-dial collided): later rounds fix it.
    const ids = () => c.stripes.map((s) => s.active?.agreed?.enricherId);
    if (new Set(ids()).size < 3) exhausted++;
    await clock.run(31_000);
    assert.equal(new Set(ids()).size, 3, `seed ${seed}: ${ids()}`);
    await closeIn(clock, c);
  }
  assert.ok(exhausted > 0, 'some seed exhausted its first round (the case under test)');
});

test('simulated clock: stripes over a list of pod addresses keep to disjoint addresses (no collision at any switch)', async () => {
  const clock = new SimClock();
  const net = new SimNet(clock, prng(1));
  const pods = Array.from({ length: 6 }, () => net.addPod(1));
  const c = client(clock, net, 3, 10_000);
  c.setEndpoints(pods.map((p) => ({ host: p.id, port: SIM_SERVICE.port })));
  c.start();
  await clock.run(10 * 60_000);
  assert.ok(c.stats.switches >= 3 * 50, `switches: ${c.stats.switches}`);
  assert.equal(c.stats.collisions, 0);
  await closeIn(clock, c);
});

/** A Zipf(1) fleet through the Service, 800 k records/s pods, 20 % switch jitter. */
function zipfFleet(
  o: Pick<
    SimulateOptions,
    'agents' | 'totalRate' | 'pods' | 'scale' | 'switchIntervalS' | 'durationS' | 'seed'
  >,
) {
  return {
    ...o,
    rates: { kind: 'zipf' as const, s: 1 },
    podCapacity: 800_000,
    switchJitter: 0.2,
    mode: 'service' as const,
  };
}

test('simulate: the same seed gives the same figures; striping lowers per-pod max/mean for Zipf agents', async () => {
  const o = zipfFleet({
    agents: 40,
    totalRate: 4_000_000,
    pods: 4,
    scale: [{ atS: 40, pods: 6 }],
    switchIntervalS: 10,
    durationS: 120,
    seed: 3,
  });
  const a = await simulate({ ...o, activeConnections: 1 });
  const b = await simulate({ ...o, activeConnections: 1 });
  assert.deepEqual(
    a.samples.map((s) => s.maxMean),
    b.samples.map((s) => s.maxMean),
  );
  const striped = await simulate({ ...o, activeConnections: 3 });
  assert.ok(striped.steady.maxMean < a.steady.maxMean, `${striped.steady.maxMean} < ${a.steady.maxMean}`);
  assert.ok(a.scale[0]!.fairShareS !== null, 'newcomers reach their share');
});

/** 100 Zipf agents on 10 pods at 94 % of capacity (overloaded), 15 pods from 30 s; one connection each. */
const overloadedScaleUp = () => ({
  ...zipfFleet({
    agents: 100,
    totalRate: 7_500_000,
    pods: 10,
    scale: [{ atS: 30, pods: 15 }],
    switchIntervalS: 30,
    durationS: 75,
    seed: 1,
  }),
  activeConnections: 1,
});
const fairShareS = (r: { scale: { fairShareS: number | null }[] }) =>
  r.scale[0]!.fairShareS ?? Number.POSITIVE_INFINITY;

test("simulate: drain on overload (the enricher's own controller) brings newcomers to their share sooner after a scale-up", async () => {
  // Drains alone (the agents' saturated switch has its own test below).
  const o = { ...overloadedScaleUp(), saturatedSwitch: 1 };
  const on = await simulate(o);
  const off = await simulate({ ...o, overloadDrain: false });
  assert.equal(off.overloadDrains, 0);
  assert.ok(on.overloadDrains > 0);
  const [a, b] = [fairShareS(on), fairShareS(off)];
  assert.ok(a * 2 <= b, `fair share after ${a} s with drains, ${b} s without`);
});

test("simulate: the agents' saturated switch (windows full on overloaded pods) brings newcomers to their share sooner", async () => {
  const o = { ...overloadedScaleUp(), overloadDrain: false };
  const [a, b] = [
    fairShareS(await simulate({ ...o, saturatedSwitch: 0.5 })),
    fairShareS(await simulate({ ...o, saturatedSwitch: 1 })),
  ];
  // Seed 1: 22 s with it, 31 s without.
  assert.ok(a * 1.3 <= b, `fair share after ${a} s with it, ${b} s without`);
});

/** sim-validate's fleet: 6 agents at 3,000 records/s, 3 pods, a 2 s switch, batches as a file replay seals them. */
const validationFleet = (o: Partial<SimulateOptions> = {}): SimulateOptions => ({
  agents: 6,
  rates: { kind: 'list', values: [3000] },
  totalRate: 18_000,
  pods: 3,
  podCapacity: 1e12,
  scale: [],
  switchIntervalS: 2,
  switchJitter: 0.2,
  activeConnections: 3,
  mode: 'service',
  durationS: 120,
  seed: 1,
  ...o,
});
const BATCHES = { blockRecords: 2000, batchRecords: 1000, lingerMs: 50 };
const spread = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
};

test('simulate, batch traffic: every record offered is received once; per-second shares carry the batch-count noise the fluid split lacks', async () => {
  const batches = await simulate(validationFleet({ batches: BATCHES }));
  const fluid = await simulate(validationFleet({ subSamples: 10 }));
  const steady = (r: typeof batches) => r.samples.filter((s) => s.t > 10);
  // Received per second / offered, over the steady part: nothing lost, nothing twice.
  const delivered = steady(batches).map((s) => s.delivered);
  const mean = delivered.reduce((a, b) => a + b, 0) / delivered.length;
  assert.ok(Math.abs(mean - 1) < 0.02, `received / offered ${mean}`);
  // A pod-second holds ~6 batches of 1,000 records: its share moves in steps of ~1/18.
  const [b, f] = [
    spread(steady(batches).flatMap((s) => s.shares)),
    spread(steady(fluid).flatMap((s) => s.shares)),
  ];
  assert.ok(b > 1.3 * f, `per-second share spread ${b.toFixed(3)} (batches) vs ${f.toFixed(3)} (fluid)`);
});

test("simulate, batch traffic: a pod takes no more than its capacity (its windows fill); the agent's other stripe carries the rest", async () => {
  // One agent offering 20,000 records/s over two stripes to two pods of 6,000 each.
  const r = await simulate(
    validationFleet({
      agents: 1,
      rates: { kind: 'list', values: [20_000] },
      pods: 2,
      podCapacity: 6000,
      activeConnections: 2,
      switchIntervalS: 0,
      overloadDrain: false,
      batches: BATCHES,
    }),
  );
  const tail = r.samples.filter((s) => s.t > 20);
  const perPod = tail.map((s) => s.delivered * 20_000);
  const m = perPod.reduce((a, b) => a + b, 0) / perPod.length;
  // Both pods at capacity: 12,000 records/s received, within a batch per second.
  assert.ok(Math.abs(m - 12_000) < 1000, `received ${m} records/s`);
  for (const s of tail) assert.ok(Math.abs(s.shares[0]! - 0.5) < 0.2, `shares ${s.shares}`);
});

test('simulated clock: switchToward: a stripe re-dials until it lands on a pod that joined, also while kube-proxy still lacks it; gives up after SEEK_WITHIN_MS', async () => {
  const clock = new SimClock();
  const net = new SimNet(clock, prng(5));
  for (let i = 0; i < 3; i++) net.addPod(1);
  const c = client(clock, net, 1, 600_000);
  c.start();
  await clock.run(5_000);
  const before = c.carriers();
  assert.equal(before.length, 1);
  // pod-3 joins; kube-proxy writes it 1.5 s after the agent heard (not ready for picks until then).
  const joined = net.addPod(1);
  joined.ready = false;
  clock.setTimeout(() => (joined.ready = true), 1_500);
  const dialsBefore = net.newConnections.reduce((a, b) => a + b, 0);
  c.switchToward(new Set([joined.id]), 1);
  await clock.run(5_000 + 1_400);
  assert.notDeepEqual(c.carriers(), [joined.id], 'not before the rules have it');
  await clock.run(5_000 + 1_500 + 5 * SEEK_REDIAL_DELAY_MS);
  assert.deepEqual(c.carriers(), [joined.id]);
  assert.equal(c.stats.joinSwitches, 1);
  const dials = net.newConnections.reduce((a, b) => a + b, 0) - dialsBefore;
  assert.ok(dials >= 2 && dials <= 2 + 1_500 / SEEK_REDIAL_DELAY_MS + 4, `dials while seeking: ${dials}`);
  // Already on one of them: nothing to do.
  c.switchToward(new Set([joined.id]), 1);
  await clock.run(20_000);
  assert.deepEqual(c.carriers(), [joined.id]);
  // A pod name no enricher has: re-dials for SEEK_WITHIN_MS, then stays where it landed.
  const t0 = clock.now();
  const d0 = net.newConnections.reduce((a, b) => a + b, 0);
  c.switchToward(new Set(['pod-none']), 1);
  await clock.run(t0 + SEEK_WITHIN_MS + 5_000);
  const d1 = net.newConnections.reduce((a, b) => a + b, 0);
  await clock.run(t0 + 60_000);
  assert.equal(
    net.newConnections.reduce((a, b) => a + b, 0),
    d1,
    'no more dials after giving up',
  );
  assert.ok(d1 - d0 <= SEEK_WITHIN_MS / SEEK_REDIAL_DELAY_MS + 3, `dials: ${d1 - d0}`);
  assert.equal(c.carriers().length, 1, 'it carries on');
  assert.equal(c.stats.joinSwitches, 1);
  await closeIn(clock, c);
});

test('simulated clock: switchToward with share 0.5 moves about half of 200 stripes, each onto a joined pod', async () => {
  const clock = new SimClock();
  const net = new SimNet(clock, prng(9));
  for (let i = 0; i < 2; i++) net.addPod(1);
  const clients = Array.from({ length: 200 }, (_, i) => client(clock, net, 1, 600_000, undefined, 100 + i));
  for (const c of clients) c.start();
  await clock.run(5_000);
  const fresh = new Set([net.addPod(1).id, net.addPod(1).id]);
  for (const c of clients) c.switchToward(fresh, 0.5);
  await clock.run(10_000);
  const on = clients.filter((c) => fresh.has(c.carriers()[0]!)).length;
  // Binomial(200, 0.5): 100 ± 7; 4 standard deviations either side.
  assert.ok(on >= 72 && on <= 128, `${on} of 200 moved`);
  assert.equal(
    clients.reduce((n, c) => n + c.stats.joinSwitches, 0),
    on,
  );
  for (const c of clients) await closeIn(clock, c);
});
