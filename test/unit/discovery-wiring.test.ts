// attachDiscovery: what the link client is told in service and direct mode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReadyEndpoint } from '../../agent/discovery/endpoints';
import { EndpointWatcher } from '../../agent/discovery/k8s-watcher';
import { spreadOrder } from '../../agent/discovery/spread';
import { parseDiscoveryTarget } from '../../agent/discovery/target';
import {
  attachDiscovery,
  type DiscoveryMode,
  SERVICE_SWITCH_DELAY_MS,
  SERVICE_SWITCH_SPREAD_MS,
} from '../../agent/discovery/wiring';
import { SimClock } from '../../loadtest/sim-clock';

const SERVICE = { host: 'enricher.snowtap.svc', port: 7400 };
const ep = (i: number): ReadyEndpoint => ({ address: `10.1.0.${i}`, port: 7400, podName: `e-${i}` });
const none = { added: [], removed: [], notReady: 0, terminating: 0 };

function setup(
  mode: DiscoveryMode,
  agentKey = 'resolver-0',
  clock = new SimClock(),
  random = () => 0.5,
  carriers: string[] = [],
) {
  const w = new EndpointWatcher({ target: parseDiscoveryTarget('k8s://snowtap/enricher') }); // never started
  const calls: string[] = [];
  const link = {
    setEndpoints: (eps: readonly { host: string; port: number }[]) =>
      calls.push(`set ${eps.map((e) => `${e.host}:${e.port}`).join(',')}`),
    switchNow: () => calls.push('switch'),
    switchToward: (ids: ReadonlySet<string>, share: number) =>
      calls.push(`toward ${[...ids].join(',')} ${share.toFixed(3)}`),
    carriers: () => carriers,
  };
  const detach = attachDiscovery(w, link, { mode, service: SERVICE, agentKey, clock, random });
  const emit = (list: ReadyEndpoint[]) => w.emit('endpoints', list, none);
  return { calls, emit, detach };
}

test('service mode: pods joining move their share of stripes toward them at once (enricher ids are pod names); pods leaving move nobody', () => {
  const s = setup('service', 'resolver-0', new SimClock(), () => 0.5, ['e-1']);
  s.emit([ep(1), ep(2)]);
  assert.deepEqual(s.calls, [], 'the first list is what the Service already balances over');
  s.emit([ep(1), ep(2), ep(3), ep(4)]);
  assert.deepEqual(s.calls, ['toward e-3,e-4 0.500']);
  s.emit([ep(1), ep(3), ep(4)]);
  s.emit([ep(1), ep(3), ep(4)]);
  assert.equal(s.calls.length, 1, 'a pod leaving, or the same set again: nothing');
  s.emit([ep(1), ep(3), ep(4), ep(5)]);
  assert.deepEqual(s.calls.at(-1), 'toward e-5 0.250');
});

test('service mode, enricher ids that are not the pod names: every stripe switches once, after kube-proxy had time to write the rules', async () => {
  const clock = new SimClock();
  const s = setup('service', 'resolver-0', clock, () => 0.5, ['enricher-a']);
  s.emit([ep(1), ep(2)]);
  await clock.run(10_000);
  assert.deepEqual(s.calls, [], 'the first list is what the Service already balances over');
  // Two pods join within a second: one switch, SERVICE_SWITCH_DELAY_MS + half the spread later.
  s.emit([ep(1), ep(2), ep(3)]);
  await clock.run(10_500);
  s.emit([ep(1), ep(2), ep(3), ep(4)]);
  const due = 10_000 + SERVICE_SWITCH_DELAY_MS + 0.5 * SERVICE_SWITCH_SPREAD_MS;
  await clock.run(due - 1);
  assert.deepEqual(s.calls, [], 'not before kube-proxy had its sync period');
  await clock.run(due);
  assert.deepEqual(s.calls, ['switch']);
  // A pod leaving, or the same set again: nothing.
  s.emit([ep(2), ep(3), ep(4)]);
  s.emit([ep(2), ep(3), ep(4)]);
  await clock.run(60_000);
  assert.deepEqual(s.calls, ['switch']);
  // One leaves and another joins: a switch (a new pod to reach).
  s.emit([ep(2), ep(3), ep(5)]);
  await clock.run(70_000);
  assert.deepEqual(s.calls, ['switch', 'switch']);
  // Detached with a switch pending: it never comes.
  s.emit([ep(2), ep(3), ep(5), ep(6)]);
  s.detach();
  await clock.run(80_000);
  s.emit([ep(7)]);
  assert.equal(s.calls.length, 2);
});

test('direct mode: pod addresses in this agent order; switch only when its first choice changes', () => {
  const before = [ep(1), ep(2), ep(3)];
  const after = [...before, ep(4)];
  // One agent for which the new pod wins, one for which it does not.
  let winner = '';
  let loser = '';
  for (let i = 0; (winner === '' || loser === '') && i < 1000; i++) {
    const key = `resolver-${i}`;
    if (spreadOrder(after, key)[0]!.address === '10.1.0.4') winner ||= key;
    else loser ||= key;
  }
  for (const [key, switches] of [
    [winner, true],
    [loser, false],
  ] as const) {
    const s = setup('direct', key);
    s.emit(before);
    const order = spreadOrder(before, key).map((e) => `${e.address}:7400`);
    assert.deepEqual(s.calls, [`set ${order.join(',')}`, 'switch'], 'the first list: go to our first choice');
    s.calls.length = 0;
    s.emit(after);
    assert.equal(s.calls.length, switches ? 2 : 1, key);
    assert.equal(s.calls.includes('switch'), switches);
  }
});

test('direct mode: no ready pod -> back to the Service address', () => {
  const s = setup('direct');
  s.emit([ep(1)]);
  s.emit([]);
  assert.deepEqual(s.calls, ['set 10.1.0.1:7400', 'switch', 'set enricher.snowtap.svc:7400', 'switch']);
});
