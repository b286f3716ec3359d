// attachDiscovery: what the link client is told in service and direct mode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReadyEndpoint } from '../../agent/discovery/endpoints';
import { EndpointWatcher } from '../../agent/discovery/k8s-watcher';
import { spreadOrder } from '../../agent/discovery/spread';
import { parseDiscoveryTarget } from '../../agent/discovery/target';
import { attachDiscovery, type DiscoveryMode } from '../../agent/discovery/wiring';

const SERVICE = { host: 'enricher.snowtap.svc', port: 7400 };
const ep = (i: number): ReadyEndpoint => ({ address: `10.1.0.${i}`, port: 7400, podName: `e-${i}` });
const none = { added: [], removed: [], notReady: 0, terminating: 0 };

function setup(mode: DiscoveryMode, agentKey = 'resolver-0') {
  const w = new EndpointWatcher({ target: parseDiscoveryTarget('k8s://snowtap/enricher') }); // never started
  const calls: string[] = [];
  const link = {
    setEndpoints: (eps: readonly { host: string; port: number }[]) =>
      calls.push(`set ${eps.map((e) => `${e.host}:${e.port}`).join(',')}`),
    switchNow: () => calls.push('switch'),
  };
  const detach = attachDiscovery(w, link, { mode, service: SERVICE, agentKey });
  const emit = (list: ReadyEndpoint[]) => w.emit('endpoints', list, none);
  return { calls, emit, detach };
}

test('service mode: every change after the first list switches the idle connection; addresses untouched', () => {
  const s = setup('service');
  s.emit([ep(1), ep(2)]);
  assert.deepEqual(s.calls, []);
  s.emit([ep(1), ep(2), ep(3)]);
  s.emit([ep(2), ep(3)]);
  assert.deepEqual(s.calls, ['switch', 'switch']);
  s.detach();
  s.emit([ep(3)]);
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
